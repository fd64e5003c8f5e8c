// Package imapcheck is an IMAP concurrency checker in the spirit of
// Dovecot's imaptest: many sessions of one account run random commands on
// a few shared folders, each keeps the state the server told it, and every
// response is checked against that state and against what all sessions
// together did. It finds what a single-session test cannot: numbering that
// drifts between sessions, updates that are lost or reported at the wrong
// time, bodies that change, UIDs that go backwards.
//
// What is checked (the contradiction messages cite the rule):
//
//   - message numbers: no response names a number above the count the
//     client knows; EXISTS never shrinks the count (RFC 9051 7.4.1); the
//     UID of a number never changes without EXPUNGE; UIDs ascend
//     (RFC 9051 2.3.1.1); no EXPUNGE while a FETCH, STORE or SEARCH (not
//     UID) is answered, nor between commands (RFC 9051 7.5.1; seen when
//     it is already read before the next command is sent);
//   - UIDs: APPENDUID and COPYUID (RFC 4315 3) give UIDs above every UID
//     any client saw in the folder before, never one UID twice; UIDNEXT is
//     above them too; UIDVALIDITY never changes; an expunged UID does not
//     come back;
//   - flags: each FLAGS value the server sends must be explainable by some
//     order of the STOREs (and FETCH BODY[]) in flight (model.go); a STORE
//     returns the flags it set (RFC 9051 6.4.6), and so does FETCH BODY[]
//     (\Seen); SEARCH on a flag agrees with the flags;
//   - updates: after NOOP, CHECK or IDLE a client has been told every flag
//     change whose command completed before it began (RFC 9051 5.2, and
//     the note of 6.4.6 for STORE .SILENT), and every expunge any client
//     had been told of, or inferred from [EXPUNGEISSUED] (RFC 9051 7.1),
//     before it began; EXPUNGE removes what had \Deleted (RFC 9051 6.4.3);
//   - bodies: every BODY[] is byte for byte what was APPENDed with its
//     token, the same at every fetch and in every copy;
//   - completions: no BAD; no NO except NO [EXPUNGEISSUED] where RFC 9051
//     7.1 allows it; FETCH and STORE return every message asked for unless
//     the completion says EXPUNGEISSUED;
//   - checkpoints: all clients stop, catch up with NOOP, then SELECT every
//     folder and fetch UID and FLAGS of all messages: every session must
//     see the same, and what each client tracked must be that.
//
// Not checked: MODSEQ (Posthorn does not offer CONDSTORE, RFC 7162, so it
// is not visible over IMAP); that NOOP reports messages appended before it
// began (the checkpoints compare message counts instead); how soon IDLE
// reports a change (only that it has by the time IDLE completes); \Recent.
package imapcheck
