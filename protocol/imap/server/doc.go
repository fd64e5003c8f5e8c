// Package server is Posthorn's IMAP server: IMAP4rev2 (RFC 9051) with
// IMAP4rev1 (RFC 3501) compatibility, over the wire codec of
// posthorn/protocol/imap and an Account (satisfied by *mailbox.Account).
//
// # Structure
//
//	server.go   Config, Limits, listeners, connection caps, shutdown
//	session.go  the state machine: one command table (verb → handler and
//	            allowed states), the read loop, replies and error limits
//	view.go     the selected mailbox as this session sees it: message
//	            sequence numbers ↔ UIDs, and the changes of other sessions
//	            (change feed) waiting to be reported
//	auth.go     STARTTLS, LOGIN, AUTHENTICATE
//	commands.go CAPABILITY, NOOP, LOGOUT, ENABLE, ID, NAMESPACE
//	mailbox.go  CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS
//	list.go     LIST (LIST-EXTENDED, LIST-STATUS, SPECIAL-USE), LSUB
//	select.go   SELECT, EXAMINE, CLOSE, UNSELECT, EXPUNGE, CHECK
//	fetch.go    FETCH arguments; fetchdata.go writes the FETCH responses
//	store.go    STORE
//	search.go   SEARCH arguments; searchexec.go evaluates them
//	append.go   APPEND
//	copy.go     COPY, MOVE
//	idle.go     IDLE
//
// # Decisions
//
//   - The hierarchy delimiter is "/" (mailbox.HierarchyDelimiter); one
//     personal namespace with prefix "" (RFC 2342).
//   - Changes from other sessions, delivery and POP3 arrive on the
//     account's change feed and are applied to the session's view by UID
//     and MODSEQ, so each is reported once and our own changes are not
//     echoed. They are reported after each command; EXPUNGE never during
//     FETCH, STORE or SEARCH (RFC 9051 7.5.1), IDLE pushes them at once.
//   - \Recent (IMAP4rev1 only; RFC 9051 removed it): a message is recent
//     to the first session that selects its mailbox read-write after it
//     arrived, tracked in memory per account and folder.
//   - A message expunged by another session but not yet reported is
//     skipped by FETCH and SEARCH, which then complete with
//     OK [EXPUNGEISSUED] (RFC 9051 7.1); never another message's data.
//   - A mailbox deleted or renamed under a session that has it selected
//     ends that session with BYE (RFC 9051 7.1.5).
//
// RFCs: 9051 (IMAP4rev2), 3501 (IMAP4rev1), 2177 (IDLE), 4315 (UIDPLUS),
// 6851 (MOVE), 5161 (ENABLE), 2971 (ID), 3691 (UNSELECT), 5258
// (LIST-EXTENDED), 6154 (SPECIAL-USE), 5819 (LIST-STATUS), 2342
// (NAMESPACE), 4731 (ESEARCH), 5182 (SEARCHRES), 7888 (LITERAL+), 4959
// (SASL-IR), 3516 (BINARY), 7889 (APPENDLIMIT), 8438 (STATUS=SIZE), 6855
// (UTF8=ACCEPT), 8314 (implicit TLS).
package server
