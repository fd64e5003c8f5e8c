// Package failpoint marks the durable steps of Posthorn (a commit, the
// point between a commit and the reply that acknowledges it) so that tests
// can crash the process or inject an error exactly there.
//
// In a normal build Inject is an empty function the compiler removes; the
// points cost nothing. Built with `-tags failpoint`, the binary reads
// POSTHORN_FAILPOINTS from its environment at the first Inject:
//
//	POSTHORN_FAILPOINTS='smtp.data.durable=kill;mailbox.commit=3*error'
//
// Each entry is name=action, where action is one of
//
//	kill        SIGKILL this process, as a crash or kill -9 would
//	error       Inject returns ErrInjected (an I/O error, syscall.EIO)
//	sleep(DUR)  pause for DUR (a time.ParseDuration string), then go on
//
// optionally prefixed with N* to fire on the Nth time the point is reached
// only (counted per point, from 1). An unknown name is not an error: the
// tests name points, and a point that is never reached simply never fires.
//
// Go makes its own system calls, so LD_PRELOAD fault injectors cannot reach
// these steps (ROBUSTNESS.md); a build-tagged hook is the portable way.
package failpoint

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrInjected is what an `error` action returns. It wraps syscall.EIO, so
// code that tells a full disk (ENOSPC) from a failed write sees a failed
// write, the case that must stop the store.
var ErrInjected = fmt.Errorf("failpoint: injected fault: %w", syscall.EIO)

// IsInjected reports whether err came from a failpoint.
func IsInjected(err error) bool { return errors.Is(err, ErrInjected) }

// The points. Each is reached at one durable step; docs/reliability.md says
// what a crash at each must leave behind.
const (
	// Commit is reached before each commit of an account's mailbox file;
	// `error` there is taken as a failed write or fsync.
	Commit = "mailbox.commit"
	// DirectoryCommit and SpoolCommit are the same for the directory of
	// accounts and aliases and for the outbound queue.
	DirectoryCommit = "directory.commit"
	SpoolCommit     = "spool.commit"
	// SMTPDurable: a message is fsync'd for every recipient (mailboxes and
	// spool) and the 250 is not yet sent.
	SMTPDurable = "smtp.data.durable"
	// AppendTx: inside APPEND's transaction, the message and its UID
	// written but not committed.
	AppendTx = "mailbox.append.tx"
	// AppendDurable: APPEND is committed, its OK not yet sent.
	AppendDurable = "mailbox.append.durable"
	// ExpungeTx: inside an expunge's transaction (IMAP EXPUNGE, MOVE's
	// removal, POP3's UPDATE), after the first message is removed.
	ExpungeTx = "mailbox.expunge.tx"
	// POP3Durable: POP3's UPDATE deletions committed, +OK not yet sent.
	POP3Durable = "pop3.update.durable"
	// RenameTx: inside a RENAME's transaction, after the first folder of
	// the tree has its new name.
	RenameTx = "mailbox.rename.tx"
	// RemoteAccepted: the remote MX answered 250 to the final dot and the
	// spool has not yet recorded the recipient as delivered.
	RemoteAccepted = "spool.remote.accepted"
)
