package mailbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTestBolt(t *testing.T, open func(path string) (*bolt.DB, error)) *bolt.DB {
	t.Helper()
	db, err := open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("b"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return db
}

func plainBolt(path string) (*bolt.DB, error) {
	return bolt.Open(path, 0o600, BoltOptions(false))
}

// blockCommitter occupies the committer until release is closed, so that
// the next Updates queue up and form one batch.
func blockCommitter(t *testing.T, c *Committer) (release func(), wait func()) {
	started := make(chan struct{})
	rel := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.Update(context.Background(), func(tx *bolt.Tx) error {
			select {
			case <-started:
			default:
				close(started)
			}
			<-rel
			return nil
		})
	}()
	<-started
	return func() { close(rel) }, func() {
		if err := <-done; err != nil {
			t.Errorf("blocker: %v", err)
		}
	}
}

// waitQueued waits until n requests are queued.
func waitQueued(t *testing.T, c *Committer, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		q := len(c.queue)
		c.mu.Unlock()
		if q >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("queue never reached %d", n)
}

func TestCommitterBatchIsolatesErrors(t *testing.T) {
	db := openTestBolt(t, plainBolt)
	defer db.Close()
	c := NewCommitter(db, CommitterOptions{})
	defer c.Close()

	release, wait := blockCommitter(t, c)
	var calls [5]atomic.Int32
	txs := make([]*bolt.Tx, 5)
	errBad := errors.New("bad")
	results := make([]error, 5)
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			results[i] = c.Update(context.Background(), func(tx *bolt.Tx) error {
				calls[i].Add(1)
				txs[i] = tx
				b := tx.Bucket([]byte("b"))
				if err := b.Put([]byte{byte(i)}, []byte("v")); err != nil {
					return err
				}
				switch i {
				case 1:
					return errBad // after writing: the write must vanish
				case 3:
					panic("boom")
				}
				return nil
			})
		})
		waitQueued(t, c, i+1)
	}
	release()
	wait()
	wg.Wait()

	for i, err := range results {
		switch i {
		case 1:
			if !errors.Is(err, errBad) {
				t.Errorf("fn 1: %v; want its own error", err)
			}
		case 3:
			if err == nil {
				t.Error("fn 3 panicked but got no error")
			}
		default:
			if err != nil {
				t.Errorf("fn %d: %v; want nil", i, err)
			}
		}
	}
	// 0 ran thrice (rolled back after 1 and after 3), 2 twice, 4 once: one
	// transaction committed 0, 2 and 4 together.
	for i, want := range []int32{3, 1, 2, 1, 1} {
		if got := calls[i].Load(); got != want {
			t.Errorf("fn %d ran %d times; want %d", i, got, want)
		}
	}
	if txs[0] != txs[2] || txs[2] != txs[4] {
		t.Error("survivors did not share one transaction")
	}
	db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("b"))
		for i := range 5 {
			if got := b.Get([]byte{byte(i)}) != nil; got != (i%2 == 0) {
				t.Errorf("key %d present=%v", i, got)
			}
		}
		return nil
	})
}

func TestCommitterBatchLimits(t *testing.T) {
	db := openTestBolt(t, plainBolt)
	defer db.Close()
	c := NewCommitter(db, CommitterOptions{MaxBatch: 3, MaxBatchBytes: 100})
	defer c.Close()
	release, wait := blockCommitter(t, c)
	var mu sync.Mutex
	batches := map[*bolt.Tx][]int{}
	sizes := []int{10, 10, 10, 10, 90, 200, 5}
	var wg sync.WaitGroup
	for i, size := range sizes {
		wg.Go(func() {
			err := c.UpdateSized(context.Background(), size, func(tx *bolt.Tx) error {
				mu.Lock()
				batches[tx] = append(batches[tx], i)
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
		waitQueued(t, c, i+1)
	}
	release()
	wait()
	wg.Wait()
	var got [][]int
	for _, b := range batches {
		got = append(got, b)
	}
	slices.SortFunc(got, func(a, b []int) int { return a[0] - b[0] })
	want := [][]int{{0, 1, 2}, {3, 4}, {5}, {6}} // count cap, byte cap, oversized alone
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("batches %v; want %v", got, want)
	}
}

func TestCommitterContext(t *testing.T) {
	db := openTestBolt(t, plainBolt)
	defer db.Close()
	c := NewCommitter(db, CommitterOptions{})
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	if err := c.Update(ctx, func(*bolt.Tx) error { ran = true; return nil }); !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("cancelled: %v ran=%v", err, ran)
	}
	// Withdrawn while queued: never runs.
	release, wait := blockCommitter(t, c)
	ctx, cancel = context.WithCancel(context.Background())
	var ran2 atomic.Bool
	errc := make(chan error, 1)
	go func() {
		errc <- c.Update(ctx, func(*bolt.Tx) error { ran2.Store(true); return nil })
	}()
	waitQueued(t, c, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("withdrawn: %v", err)
	}
	release()
	wait()
	if ran2.Load() {
		t.Fatal("withdrawn fn ran")
	}
}

func TestCommitterCloseDrains(t *testing.T) {
	db := openTestBolt(t, plainBolt)
	defer db.Close()
	c := NewCommitter(db, CommitterOptions{})
	release, wait := blockCommitter(t, c)
	errc := make(chan error, 1)
	go func() {
		errc <- c.Update(context.Background(), func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("b")).Put([]byte("k"), []byte("v"))
		})
	}()
	waitQueued(t, c, 1)
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	release()
	wait()
	<-closed
	if err := <-errc; err != nil {
		t.Fatalf("queued update: %v", err)
	}
	if err := c.Update(context.Background(), func(*bolt.Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestCommitterFsyncFailure breaks the file under bbolt: the commit fails,
// the committer stays failed (no retry-then-OK), and OnFail fires once.
func TestCommitterFsyncFailure(t *testing.T) {
	var file *os.File
	db := openTestBolt(t, func(path string) (*bolt.DB, error) {
		opts := BoltOptions(false)
		opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		}
		return bolt.Open(path, 0o600, opts)
	})
	var failures atomic.Int32
	c := NewCommitter(db, CommitterOptions{OnFail: func(error) { failures.Add(1) }})
	put := func(k string) error {
		return c.Update(context.Background(), func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("b")).Put([]byte(k), make([]byte, 100))
		})
	}
	if err := put("ok"); err != nil {
		t.Fatal(err)
	}
	file.Close() // every write and fsync now fails
	if err := put("lost"); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("commit on a broken file: %v; want ErrStoreFailed", err)
	}
	if err := put("later"); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("later update: %v; want ErrStoreFailed", err)
	}
	if !errors.Is(c.Err(), ErrStoreFailed) || failures.Load() != 1 {
		t.Fatalf("Err %v, OnFail ran %d times", c.Err(), failures.Load())
	}
	c.Close()
}

func TestStoreFailsOnCommitError(t *testing.T) {
	var mu sync.Mutex
	files := map[string]*os.File{}
	opts := testOptions()
	opts.openFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		mu.Lock()
		files[filepath.Base(name)] = f
		mu.Unlock()
		return f, err
	}
	s, _ := openTestStore(t, opts)
	for _, u := range []string{"a@example.org", "b@example.org"} {
		if err := s.AddUser(u, "pw"); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := s.Account("a@example.org")
	b, _ := s.Account("b@example.org")
	m := mustAppend(t, a, "INBOX", "before")
	mu.Lock()
	files["1.db"].Close()
	mu.Unlock()
	ctx := context.Background()
	if _, err := a.Append(ctx, "INBOX", []byte("x"), nil, time.Time{}); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("append on broken file: %v", err)
	}
	// Every write of the store is refused now, other files included.
	if _, err := b.Append(ctx, "INBOX", []byte("x"), nil, time.Time{}); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("append to another account: %v", err)
	}
	wantErr(t, s.AddUser("c@example.org", "pw"), ErrStoreFailed)
	wantErr(t, s.Deliver(ctx, []string{"b@example.org"}, []byte("x"), time.Time{}), ErrStoreFailed)
	wantErr(t, s.Err(), ErrStoreFailed)
	// Reads still work.
	if raw, err := a.Raw("INBOX", m.UID); err != nil || string(raw) != "before" {
		t.Fatalf("read after failure: %q, %v", raw, err)
	}
}

// TestConcurrentAppendsDurable: 50 writers with fsync on; every append gets
// a distinct UID, each writer's UIDs ascend, and all survive a reopen.
func TestConcurrentAppendsDurable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	opts := testOptions()
	opts.NoSync = false
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser("u@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	a, _ := s.Account("u@example.org")
	sub := a.Subscribe()
	const writers, each = 50, 10
	uids := make([][]uint32, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				m, err := a.Append(context.Background(), "INBOX", fmt.Appendf(nil, "w%d-%d", w, i), nil, time.Time{})
				if err != nil {
					t.Error(err)
					return
				}
				uids[w] = append(uids[w], m.UID)
			}
		})
	}
	wg.Wait()
	all := map[uint32]bool{}
	for w, list := range uids {
		if !slices.IsSorted(list) {
			t.Errorf("writer %d UIDs not ascending: %v", w, list)
		}
		for _, u := range list {
			if all[u] {
				t.Fatalf("UID %d given twice", u)
			}
			all[u] = true
		}
	}
	events := drain(sub)
	if len(events) != writers*each {
		t.Fatalf("%d events; want %d", len(events), writers*each)
	}
	for i, e := range events { // commit order is UID order
		if e.UID != uint32(i+1) {
			t.Fatalf("event %d has UID %d", i, e.UID)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	a2, _ := s2.Account("u@example.org")
	msgs, err := a2.Messages("INBOX")
	if err != nil || len(msgs) != writers*each {
		t.Fatalf("after reopen %d messages, %v", len(msgs), err)
	}
	for i, m := range msgs {
		if m.UID != uint32(i+1) {
			t.Fatalf("message %d has UID %d", i, m.UID)
		}
	}
	wantCounts(t, a2, "INBOX", writers*each, writers*each, 0, sumSize(msgs))
}

func sumSize(msgs []MessageInfo) int64 {
	var n int64
	for _, m := range msgs {
		n += m.Size
	}
	return n
}
