// Package dsn composes and parses delivery status notifications: the
// multipart/report messages of RFC 3464 and RFC 6522 that the outbound queue
// sends back to a sender when mail to some recipients failed, is delayed,
// or was relayed to a next hop that cannot report success itself.
//
// Compose is a pure function of a Report; Parse reads such a message back
// (it exists for tests and tools, and accepts any RFC 3464 DSN).
//
// The message Compose builds:
//
//	From: Mail Delivery System <MAILER-DAEMON@hostname>
//	To: <original envelope sender>
//	Subject: Undelivered Mail Returned to Sender | Delayed Mail (still being retried) | ...
//	Date, Message-ID
//	Auto-Submitted: auto-replied                (RFC 3834 5)
//	MIME-Version: 1.0
//	Content-Type: multipart/report; report-type=delivery-status; boundary="..."
//
//	part 1  text/plain: a human explanation, one paragraph per recipient
//	part 2  message/delivery-status: the per-message fields, then one block
//	        of per-recipient fields per recipient (RFC 3464 2.2, 2.3)
//	part 3  text/rfc822-headers (the original header), or message/rfc822
//	        (the whole original) when RET=FULL and a recipient failed
//	        (RFC 3461 6.2: a DSN without failures returns only headers)
//
// Every line ends in CRLF and is at most 998 octets (RFC 5322 2.1.1): long
// field values are folded at spaces, and an original that cannot be carried
// as message/rfc822 under that rule (a longer line, a bare CR or LF, a NUL:
// BINARYMIME content) is returned as headers only.
//
// Internationalized mail (RFC 6531): Posthorn keeps this RFC 3464 format
// for SMTPUTF8 messages rather than switching to message/global-delivery-
// status (RFC 6533). An address that is not ASCII is written raw with the
// address type "utf-8" (RFC 6533 3), the human part is UTF-8, and any part
// or header that carries 8-bit octets is labelled Content-Transfer-Encoding
// 8bit; such a DSN must itself be sent with SMTPUTF8 (HasUTF8 reports it).
//
// RFCs: 3464 (DSN format), 3461 (6.2 contents; RET), 6522 (multipart/report),
// 3463 (status codes), 3834 (Auto-Submitted), 5322 (header syntax), 2045 and
// 2046 (MIME), 6533 (utf-8 address type), 6532 (UTF-8 headers).
package dsn
