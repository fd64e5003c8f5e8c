// Package server is Posthorn's receiving SMTP state machine: the MX service on
// port 25 and, with authentication, submission on 587 and 465.
//
// A session is a typed state (stateConnected → stateReady → stateMail →
// stateRcpt, plus stateBDAT while a chunked transaction is open) and one
// table, commandTable, that maps each verb to its handler and the states in
// which it is allowed. Handlers return smtp.Reply values; only the connection
// edge recovers from panics (421 4.3.0).
//
// What the server decides itself: syntax, sequence, limits, the strict DATA
// and BDAT readers, trace headers and loop detection. What it asks its
// Backend: whether a sender or recipient is acceptable and how to make a
// message durable. Protocol code never touches the store.
//
// RFCs: 5321 (SMTP), 1870 (SIZE), 2034 (ENHANCEDSTATUSCODES), 2920
// (PIPELINING), 3030 (CHUNKING), 3207 (STARTTLS), 3461 (DSN), 3463 (enhanced
// codes), 6152 (8BITMIME), 6531 (SMTPUTF8).
package server
