// Package client is Posthorn's sending side of SMTP, used by the spool to
// relay mail to other hosts.
//
// Dial connects, reads the greeting, says EHLO (HELO when EHLO is refused
// with 5yz, RFC 5321 3.2) and, when the server offers STARTTLS and the caller
// gave a TLS config, upgrades the connection (RFC 3207) and says EHLO again.
// Send then runs one transaction and reports an outcome for every recipient;
// the same Conn can carry several messages to one host.
//
// # Opportunistic TLS
//
// TLS on port 25 is opportunistic: a server's certificate is not checked
// (there is nothing to check it against without DANE or MTA-STS), so the
// spool passes a tls.Config with InsecureSkipVerify set. It still protects
// against passive eavesdropping. When the handshake fails, Dial returns a
// *TLSError and the caller dials again with DialOptions{NoTLS: true}: mail
// goes out in plaintext rather than not at all (ROBUSTNESS.md, Outbound).
// A 454 or other refusal of the STARTTLS command itself is handled on the
// spot: the session simply continues in plaintext (RFC 3207 4).
//
// # Outcomes
//
// Send returns one RcptResult per recipient: the RCPT reply when the
// recipient was refused, otherwise the reply after the final dot (RFC 5321
// 4.2.5: it applies to every accepted recipient). 2yz is delivered, 5yz
// permanent, anything else temporary. A connection lost after some recipient
// had an answer gives the rest a temporary result made up by the client
// (451 4.4.2, Local set); this includes a connection lost after the final dot
// and before its reply, where a retry may deliver a duplicate, which RFC 5321
// 6.1 prefers to a loss. Send returns an error instead of results only when
// the connection failed before any recipient had an answer.
//
// Some messages cannot be sent to a given server at all; Send refuses them
// for every recipient without sending a command (Local set):
//   - larger than the server's SIZE: 552 5.3.4 (RFC 1870 6.2 (2));
//   - 8-bit content to a server without 8BITMIME: 554 5.6.3 (RFC 6152 3
//     allows bouncing or converting; Posthorn does not convert);
//   - BODY=BINARYMIME: 554 5.6.3 (RFC 3030 3 needs BDAT, which this client
//     does not send);
//   - a non-ASCII address to a server without SMTPUTF8: 553 5.6.7, and an
//     SMTPUTF8 message with UTF-8 in its header: 554 5.6.9 (RFC 6531 3.2:
//     "MUST NOT transmit"). An SMTPUTF8 message whose addresses and header
//     are ASCII goes out without the parameter.
//
// # Wire details
//
// Replies are parsed by ParseReply, a pure function (RFC 5321 4.2); their
// text is made printable ASCII before it can reach a log or a DSN. With
// PIPELINING, MAIL, every RCPT and DATA go out as one group and the replies
// are matched by counting (RFC 2920 3.1). Message data is dot-stuffed and
// its line endings made CRLF by textline.DotWriter (RFC 5321 4.5.2, 2.3.8).
// Every read and write has a deadline from Timeouts (RFC 5321 4.5.3.2), and
// cancelling the context of a call closes the connection.
//
// RFCs: 5321 (SMTP), 2920 (PIPELINING), 1870 (SIZE), 6152 (8BITMIME), 6531
// (SMTPUTF8), 3461 (DSN parameters), 3207 (STARTTLS), 3463 and 2034
// (enhanced status codes), 3030 (BINARYMIME, refused).
package client
