package spool

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"posthorn/protocol/fakeclock"
	"posthorn/protocol/smtp"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func openAt(t *testing.T, path string, clock *fakeclock.Clock) *Spool {
	t.Helper()
	s, err := Open(path, Options{Hostname: "mx.posthorn.test", Now: clock.Now, NoSync: true, RetryMin: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEnqueueDurableAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	clock := fakeclock.New(t0)
	s := openAt(t, path, clock)
	m := Message{
		ID:   "0ABC",
		From: smtp.Path{Local: "alice", Domain: "posthorn.test"},
		Mail: smtp.MailParams{Body: "8BITMIME", Ret: "FULL", EnvID: "env-1", SMTPUTF8: true},
		Rcpts: []Rcpt{
			{Path: smtp.Path{Local: "bob", Domain: "Remote.Test"}, Params: smtp.RcptParams{Notify: []string{"SUCCESS", "FAILURE"}, ORcpt: "rfc822;Bob@Remote.Test"}},
			{Path: smtp.Path{Local: "carol", Domain: "other.test"}},
		},
		Arrival: t0.Add(-time.Second),
	}
	raw := testMessage("0ABC")
	if err := s.Enqueue(context.Background(), m, raw); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path, clock)
	defer s.Close()
	e, got, err := s.Show("0ABC")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(raw) {
		t.Errorf("raw message changed: %q", got)
	}
	if e.ID != "0ABC" || e.From != m.From || !e.Arrival.Equal(m.Arrival) || e.Size != len(raw) {
		t.Errorf("entry %+v", e)
	}
	if e.Mail.Body != "8BITMIME" || e.Mail.Ret != "FULL" || e.Mail.EnvID != "env-1" || !e.Mail.SMTPUTF8 {
		t.Errorf("mail params %+v", e.Mail)
	}
	if len(e.Rcpts) != 2 {
		t.Fatalf("%d recipients", len(e.Rcpts))
	}
	r := e.Rcpts[0]
	if r.Path != m.Rcpts[0].Path || !slices.Equal(r.Params.Notify, []string{"SUCCESS", "FAILURE"}) ||
		r.Params.ORcpt != "rfc822;Bob@Remote.Test" || r.Status != StatusQueued || r.Attempts != 0 ||
		!r.NextAttempt.Equal(t0) || !r.LastAttempt.IsZero() || r.LastReply != "" {
		t.Errorf("recipient %+v", r)
	}
	// The index matches the records.
	due := scheduled(t, s)
	if len(due) != 2 || due[rcptKey{"0ABC", 0}] != t0 || due[rcptKey{"0ABC", 1}] != t0 {
		t.Errorf("schedule %v", due)
	}
}

// scheduled reads the schedule index.
func scheduled(t *testing.T, s *Spool) map[rcptKey]time.Time {
	t.Helper()
	out := map[rcptKey]time.Time{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSchedule).ForEach(func(k, v []byte) error {
			tm, rk, ok := parseScheduleKey(k)
			if !ok {
				return fmt.Errorf("bad key %q", k)
			}
			out[rk] = tm.UTC()
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEnqueueRejects(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "spool.db"), fakeclock.New(t0))
	defer s.Close()
	ok := Rcpt{Path: smtp.Path{Local: "b", Domain: "remote.test"}}
	for name, m := range map[string]Message{
		"no recipients": {ID: "A"},
		"bad id":        {ID: "a/../b", Rcpts: []Rcpt{ok}},
		"no domain":     {ID: "B", Rcpts: []Rcpt{{Path: smtp.Path{Local: "postmaster", Postmaster: true}}}},
	} {
		if err := s.Enqueue(context.Background(), m, []byte("x\r\n")); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := s.Enqueue(context.Background(), Message{ID: "C", Rcpts: []Rcpt{ok}}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty message: %v", err)
	}
}

func TestListShowDelete(t *testing.T) {
	clock := fakeclock.New(t0)
	s := openAt(t, filepath.Join(t.TempDir(), "spool.db"), clock)
	defer s.Close()
	rc := []Rcpt{{Path: smtp.Path{Local: "b", Domain: "remote.test"}}}
	for _, id := range []string{"B", "A", "A", ""} {
		if err := s.Enqueue(context.Background(), Message{ID: id, Rcpts: rc}, testMessage(id)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range l {
		ids = append(ids, e.ID)
	}
	gen := s.newID() // later than the generated one, same prefix length
	if len(ids) != 4 || ids[1] != "A" || ids[2] != "A-2" || ids[3] != "B" || len(ids[0]) != len(gen) {
		t.Fatalf("ids %v", ids)
	}
	if _, _, err := s.Show("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Show unknown: %v", err)
	}
	if err := s.Delete("A"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("A"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: %v", err)
	}
	if _, _, err := s.Show("A"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Show deleted: %v", err)
	}
	if n := len(scheduled(t, s)); n != 3 {
		t.Errorf("%d schedule entries after delete, want 3", n)
	}
	var rcpts int
	s.db.View(func(tx *bolt.Tx) error {
		rcpts = tx.Bucket(bucketRcpts).Stats().KeyN
		return nil
	})
	if rcpts != 3 {
		t.Errorf("%d recipient records after delete", rcpts)
	}
}

// TestRestartSpreadsOverdue: ROBUSTNESS.md "restart with 10k deferred
// messages: all kept with their retry times; retries spread out".
func TestRestartSpreadsOverdue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	clock := fakeclock.New(t0)
	s := openAt(t, path, clock)
	const n = 10000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := Message{ID: fmt.Sprintf("M%05d", i), Rcpts: []Rcpt{{Path: smtp.Path{Local: "b", Domain: "remote.test"}}}}
			errs <- s.Enqueue(context.Background(), m, []byte("Subject: x\r\n\r\nx\r\n"))
		}()
		if i%200 == 199 {
			wg.Wait()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Stagger the stored times, and put one in the future.
	future := t0.Add(2 * time.Hour)
	clock.Set(future)
	if err := s.Enqueue(context.Background(), Message{ID: "FUTURE", Rcpts: []Rcpt{{Path: smtp.Path{Local: "b", Domain: "remote.test"}}}}, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	s.Close()

	restart := t0.Add(time.Hour)
	clock.Set(restart)
	s = openAt(t, path, clock)
	defer s.Close()
	if err := s.spreadOverdue(); err != nil {
		t.Fatal(err)
	}
	due := scheduled(t, s)
	if len(due) != n+1 {
		t.Fatalf("%d scheduled after restart, want %d", len(due), n+1)
	}
	if !due[rcptKey{"FUTURE", 0}].Equal(future) {
		t.Errorf("future attempt moved to %v", due[rcptKey{"FUTURE", 0}])
	}
	// The first restartBurst at once, the rest over RetryMin (5m), in
	// their old order.
	step := 5 * time.Minute / (n - restartBurst)
	for i := range n {
		got := due[rcptKey{fmt.Sprintf("M%05d", i), 0}]
		want := restart
		if i >= restartBurst {
			want = restart.Add(time.Duration(i-restartBurst+1) * step)
		}
		if !got.Equal(want) {
			t.Fatalf("M%05d at %v, want %v", i, got, want)
		}
	}
	// The records agree with the index.
	e, _, err := s.Show("M00042")
	if err != nil || !e.Rcpts[0].NextAttempt.Equal(due[rcptKey{"M00042", 0}]) {
		t.Errorf("record next %v, index %v (%v)", e.Rcpts[0].NextAttempt, due[rcptKey{"M00042", 0}], err)
	}

	// Later, all are overdue: the one that was last stays last.
	clock.Set(future.Add(time.Hour))
	if err := s.spreadOverdue(); err != nil {
		t.Fatal(err)
	}
	due = scheduled(t, s)
	step = 5 * time.Minute / (n + 1 - restartBurst)
	if got := due[rcptKey{"FUTURE", 0}]; !got.Equal(future.Add(time.Hour).Add((n + 1 - restartBurst) * step)) {
		t.Errorf("last overdue at %v", got)
	}
}

func TestFlush(t *testing.T) {
	clock := fakeclock.New(t0)
	s := openAt(t, filepath.Join(t.TempDir(), "spool.db"), clock)
	defer s.Close()
	if err := s.Enqueue(context.Background(), Message{ID: "A", Rcpts: []Rcpt{{Path: smtp.Path{Local: "b", Domain: "remote.test"}}}}, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	// Defer it as an attempt would.
	d := s.loadJob(&job{id: "A", rcpts: []uint32{0}}, false)
	s.recordJob(context.Background(), d, []outcome{{kind: temporary, res: &result{Code: 451, Enhanced: "4.2.0", Text: "later", Host: "mx", Relay: "mx[127.0.0.1]:25"}}})
	e, _, _ := s.Show("A")
	r := e.Rcpts[0]
	if r.Status != StatusQueued || r.Attempts != 1 || !r.NextAttempt.After(t0.Add(4*time.Minute)) ||
		r.LastReply != "451 4.2.0 later" || r.Relay != "mx[127.0.0.1]:25" || !r.LastAttempt.Equal(t0) {
		t.Fatalf("after deferral %+v", r)
	}
	clock.Set(t0.Add(time.Minute))
	s.Flush()
	e, _, _ = s.Show("A")
	if !e.Rcpts[0].NextAttempt.Equal(t0.Add(time.Minute)) {
		t.Errorf("after flush next %v", e.Rcpts[0].NextAttempt)
	}
	if due := scheduled(t, s); len(due) != 1 || !due[rcptKey{"A", 0}].Equal(t0.Add(time.Minute)) {
		t.Errorf("schedule after flush %v", due)
	}
}
