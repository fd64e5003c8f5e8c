package mailbox

import (
	"sync"
	"sync/atomic"
)

// FeedBuffer is the channel buffer of each Subscription. A subscriber more
// than FeedBuffer events behind loses events and sees Overflowed.
const FeedBuffer = 1024

// ChangeKind says what happened.
type ChangeKind int

const (
	ChangeExists  ChangeKind = iota + 1 // a new message (UID) in Folder
	ChangeFlags                         // flags of UID changed; Flags and ModSeq are the new values
	ChangeExpunge                       // UID removed
	ChangeFolder                        // folder created, deleted or renamed
)

// String names the kind for logs and test failures.
func (k ChangeKind) String() string {
	switch k {
	case ChangeExists:
		return "exists"
	case ChangeFlags:
		return "flags"
	case ChangeExpunge:
		return "expunge"
	case ChangeFolder:
		return "folder"
	}
	return "unknown"
}

// Change is one event on an account's change feed, published after the commit.
//
// Exists, Flags and Expunge carry the folder, the UID and the MODSEQ of the
// change (for Expunge the folder's new HIGHESTMODSEQ). Folder events carry
// the folder's name; after a rename Folder is the old name and NewName the
// new one (one event per renamed folder, children included); a subscriber
// learns whether a folder was created or deleted by looking it up. Flags is
// shared between subscribers and must not be modified.
type Change struct {
	Kind    ChangeKind
	Folder  string
	UID     uint32
	ModSeq  uint64
	Flags   []string
	NewName string // ChangeFolder after RenameFolder: the new name
}

// feed is an account's in-memory publish/subscribe hub. Publishing never
// blocks: it runs inside the commit (tx.OnCommit), in commit order.
type feed struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

// Subscription is one subscriber of an account's changes.
type Subscription struct {
	c        chan Change
	overflow atomic.Bool
	feed     *feed
}

// Subscribe returns a subscription to every change of the account. The channel has a
// bounded buffer; a subscriber that falls behind gets Overflowed() == true and must
// resynchronise from the store. Close with Unsubscribe.
//
// The channel is also closed when the account is closed (DeleteUser,
// Store.Close); a subscription taken after that starts closed.
func (a *Account) Subscribe() *Subscription {
	return a.feed.subscribe()
}

// C is the channel of changes, in commit order.
func (s *Subscription) C() <-chan Change { return s.c }

// Overflowed reports whether a change was dropped because the channel was
// full. It stays true until ClearOverflow.
func (s *Subscription) Overflowed() bool { return s.overflow.Load() }

// ClearOverflow resets the overflow flag and reports whether it was set. To
// resynchronise, call it first, then re-read the store: changes published
// after that are delivered again (and may repeat what the re-read saw, so
// applying a change must be idempotent: compare UIDs and MODSEQs).
func (s *Subscription) ClearOverflow() bool { return s.overflow.Swap(false) }

// Sync returns once every change published before the call is in the
// channel. A publish hands a change to one subscriber after another, so
// another subscriber may already be acting on a change this one has not
// got yet; a subscriber calls Sync before draining its channel to be sure
// it is not behind anything another has already seen.
func (s *Subscription) Sync() {
	f := s.feed
	f.mu.Lock() // publish holds it while it hands changes out
	defer f.mu.Unlock()
}

// Unsubscribe stops the subscription and closes its channel. It may be
// called more than once.
func (s *Subscription) Unsubscribe() {
	f := s.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[s]; ok {
		delete(f.subs, s)
		close(s.c)
	}
}

func (f *feed) subscribe() *Subscription {
	s := &Subscription{c: make(chan Change, FeedBuffer), feed: f}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		close(s.c)
		return s
	}
	if f.subs == nil {
		f.subs = make(map[*Subscription]struct{})
	}
	f.subs[s] = struct{}{}
	return s
}

// publish sends changes to every subscriber without blocking; a full channel
// loses the change and marks the subscriber overflowed.
func (f *feed) publish(changes ...Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		for _, ch := range changes {
			select {
			case s.c <- ch:
			default:
				s.overflow.Store(true)
			}
		}
	}
}

// close closes every subscription.
func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for s := range f.subs {
		close(s.c)
	}
	f.subs = nil
}
