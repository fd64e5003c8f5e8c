package server

import (
	"context"
	"errors"
	"sync"
)

// Message is one message of a maildrop snapshot.
type Message struct {
	// UID identifies the message in the maildrop; UIDs ascend and are never
	// reused under one UIDValidity (they make the UIDL unique-id).
	UID uint32
	// Size is the message's size as sent to the client: every line ending
	// in CRLF, a final CRLF, byte-stuffing not counted (RFC 1939 11; see
	// pop3.WireSize). For a message stored with CRLF line ends, its length.
	Size int64
}

// Maildrop is one account's maildrop, opened by one session.
type Maildrop interface {
	// UIDValidity and Messages describe the maildrop as it was when it
	// was opened. The server calls each once and keeps the result; mail
	// that arrives later is not shown to this session (RFC 1939 4: message
	// numbers are fixed for the session).
	UIDValidity() uint32
	Messages() []Message
	// Read returns the message's bytes as stored. A message removed by
	// another party since Open gives ErrNoMessage.
	Read(ctx context.Context, uid uint32) ([]byte, error)
	// Delete removes the messages, durably, before it returns nil (RFC
	// 1939 6: called only in the UPDATE state, after QUIT). UIDs already
	// gone are skipped.
	Delete(ctx context.Context, uids []uint32) error
	// Close releases what Open acquired. The server calls it once.
	Close() error
}

// Backend opens maildrops.
type Backend interface {
	// Open opens the maildrop of an authenticated account (as the
	// sasl.Credentials returned it). The server holds the account's lock
	// in Locks while the Maildrop is open.
	Open(ctx context.Context, account string) (Maildrop, error)
}

// ErrNoMessage is returned by Maildrop.Read for a message that is gone.
var ErrNoMessage = errors.New("pop3: message no longer in the maildrop")

// Locks holds the exclusive lock of each maildrop that a POP3 session has
// open (RFC 1939 4: "the POP3 server then acquires an exclusive-access lock
// on the maildrop"). One Locks is shared by every POP3 listener of a
// process, so that port 110 and port 995 exclude each other. IMAP sessions
// do not take it: they see POP3's deletions through the store's change feed.
// A Locks is safe for concurrent use; the zero value is not, use NewLocks.
type Locks struct {
	mu   sync.Mutex
	held map[string]struct{}
}

// NewLocks returns an empty lock table.
func NewLocks() *Locks { return &Locks{held: make(map[string]struct{})} }

// TryLock takes the lock of account and reports whether it was free.
func (l *Locks) TryLock(account string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.held[account]; ok {
		return false
	}
	l.held[account] = struct{}{}
	return true
}

// Unlock releases the lock of account.
func (l *Locks) Unlock(account string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.held, account)
}

// Held returns how many maildrops are locked.
func (l *Locks) Held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}
