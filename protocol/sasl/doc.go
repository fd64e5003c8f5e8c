// Package sasl is the server side of SASL (RFC 4422) shared by SMTP AUTH
// (RFC 4954), POP3 AUTH (RFC 5034) and IMAP AUTHENTICATE (RFC 9051 6.2.2),
// plus the failed-login throttle those protocols share.
//
// Nothing here touches a connection. The protocol code reads a client line,
// checks it with IsAbort, base64-decodes it and passes the raw bytes to
// Server.Next; it base64-encodes the raw challenge Next returns. The exchange
// is driven like this:
//
//	srv, err := sasl.NewServer(name, creds) // after checking sasl.Offered(name, plaintextOK)
//	challenge, done, err := srv.Next(ctx, initial) // initial is nil when the client sent none
//	for err == nil && !done {
//		send(challenge) // SMTP "334 ", IMAP "+ ", POP3 "+ " with base64(challenge)
//		line := read()
//		if sasl.IsAbort(line) { err = sasl.ErrAborted; break }
//		resp, decErr := base64.StdEncoding.DecodeString(line) // decErr → ErrMalformed
//		challenge, done, err = srv.Next(ctx, resp)
//	}
//	// done: srv.Account() is authenticated.
//
// An empty initial response (SMTP "AUTH PLAIN =", RFC 4954 4; IMAP SASL-IR "=",
// RFC 4959 3) is passed as an empty non-nil slice; an absent one as nil. When
// Next returns done=false the challenge is never nil, though it may be empty
// (SMTP "334 ", RFC 4954 4).
//
// SCRAM-SHA-256 sends additional data with success (RFC 5802 5.2, 2b). None
// of the three protocols here carries it in the success reply (RFC 5034 4
// forbids it for POP3), so it is sent as a challenge and the client answers
// with an empty response (RFC 4422 5, 2b): Next returns the server-final
// message "v=..." with done=false, and only the following empty response
// gives done=true.
//
// Errors: ErrAuthFailed for bad credentials, identical for an unknown user
// and a wrong password (RFC 4422 3.6: the outcome must be able to hide which);
// ErrMalformed for a response that breaks the mechanism's syntax or limits;
// ErrAborted for a client "*" (detected by the protocol code with IsAbort);
// ErrUnknownMechanism from NewServer; anything else is a server-side failure
// (the store could not be read) and maps to a temporary failure reply. Every
// error ends the exchange.
//
// Mechanisms: SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding (the
// -PLUS variant is not offered), PLAIN (RFC 4616) and LOGIN
// (draft-murchison-sasl-login-00). None allows proxy authorization: an
// authorization identity must be empty or equal to the authentication
// identity. No SASLprep (RFC 4013) is applied: names go to the store as
// received and passwords are hashed as received, which matches what clients
// send for ASCII passwords.
//
// Limiter slows repeated failures per client address and per identity, and
// locks out an address that keeps failing.
//
// RFCs: 4422, 4616, 5802, 7677, 4954 (context), 5034 (context), 9051 (context);
// draft-murchison-sasl-login-00.
package sasl
