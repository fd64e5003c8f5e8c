package mailbox

import (
	"context"
	"sync"
	"testing"
	"time"
)

// A read that sees a commit returns only once the commit's changes are on
// the feed. bbolt shows a commit to new readers when it writes the meta
// page, before its fdatasync and before the OnCommit functions (which
// publish) run; an IMAP session that read the store there was ahead of its
// own subscription and of every other session's: it reported an expunge
// that another session's NOOP, begun after, did not (found by
// cmd/posthorn/internal/imapcheck). The test holds the commit in that
// window with an OnCommit function registered before the publishing one.
func TestReadNotAheadOfFeed(t *testing.T) {
	_, a := newTestAccount(t)
	sub := a.Subscribe()
	defer sub.Unsubscribe()
	inWindow, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	releaseCommit := func() { once.Do(func() { close(release) }) }
	defer releaseCommit() // a failing test must not leave the committer stuck
	written := make(chan error, 1)
	go func() {
		written <- a.write(context.Background(), 0, func(t *acctTx) error {
			t.tx.OnCommit(func() {
				close(inWindow)
				<-release
			})
			f, err := loadFolder(t.tx, "INBOX")
			if err != nil {
				return err
			}
			ms, err := t.nextModSeq()
			if err != nil {
				return err
			}
			raw := []byte("Subject: x\r\n\r\nx\r\n")
			m := &msgMeta{modSeq: ms, size: int64(len(raw))}
			uid, err := f.add(m, raw, nil)
			if err != nil {
				return err
			}
			t.publish(Change{Kind: ChangeExists, Folder: "INBOX", UID: uid, ModSeq: ms})
			return f.save(t.tx)
		})
	}()
	<-inWindow
	read := make(chan []MessageInfo, 1)
	go func() {
		msgs, err := a.Messages("INBOX")
		if err != nil {
			t.Error(err)
		}
		read <- msgs
	}()
	select {
	case msgs := <-read:
		t.Fatalf("a read returned %d messages while the commit's changes were not on the feed yet", len(msgs))
	case <-time.After(100 * time.Millisecond):
	}
	releaseCommit()
	if msgs := <-read; len(msgs) != 1 {
		t.Fatalf("read %d messages, want 1", len(msgs))
	}
	select {
	case c := <-sub.C():
		if c.Kind != ChangeExists {
			t.Errorf("feed: %v", c.Kind)
		}
	default:
		t.Error("the read returned before the change was on the feed")
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	// A read of an older state never waits.
	if _, err := a.Folders(); err != nil {
		t.Fatal(err)
	}
}

// Sync waits for a publish in progress: publish hands a change to one
// subscriber after another (holding the feed's lock), and an IMAP session
// that drained its channel in between was behind one that had already
// reported the change (an IDLE ended by DONE missed an expunge another
// session had reported; found by cmd/posthorn/internal/imapcheck).
func TestSyncWaitsForPublish(t *testing.T) {
	_, a := newTestAccount(t)
	sub := a.Subscribe()
	defer sub.Unsubscribe()
	a.feed.mu.Lock() // as publish does while it hands out changes
	synced := make(chan struct{})
	go func() {
		sub.Sync()
		close(synced)
	}()
	select {
	case <-synced:
		a.feed.mu.Unlock()
		t.Fatal("Sync returned while a publish was in progress")
	case <-time.After(50 * time.Millisecond):
	}
	a.feed.mu.Unlock()
	<-synced
}
