// Package server is Posthorn's POP3 server: port 110 with STLS and port 995
// with implicit TLS.
//
// A session is a typed state (stateAuthorization → stateTransaction →
// stateUpdate, RFC 1939 3) and one table, commandTable, that maps each verb
// to its handler and the states in which it is allowed. Handlers return
// pop3.Reply values for -ERR; only the connection edge recovers from panics.
//
// What the server decides itself: syntax, sequence, limits, the plaintext
// password policy, the failed-login delay (sasl.Limiter), the maildrop lock
// (Locks), message numbers and deletion marks. What it asks its Backend:
// the snapshot of a maildrop (the account's INBOX), the bytes of one
// message, and the durable removal of the messages marked deleted. Protocol
// code never touches the store.
//
// A maildrop is a snapshot taken at login: message numbers and sizes do not
// change during the session (RFC 1939 4), mail that arrives meanwhile is
// seen by the next session, and messages are removed only in the UPDATE
// state after QUIT, durably before the +OK (RFC 1939 6); a session that ends
// any other way removes nothing.
//
// RFCs: 1939 (POP3), 2449 (CAPA, RESP-CODES, PIPELINING), 2595 (STLS),
// 3206 (SYS and AUTH response codes), 5034 (AUTH), 8314 (implicit TLS).
package server
