package spool

import (
	"strings"
	"testing"
	"time"
)

func newCheckHarness(t *testing.T) *harness {
	h := newHarness(t, nil)
	h.enqueue("A1", "a@example.org", "b@remote.test", "c@remote.test")
	h.enqueue("A2", "a@example.org", "d@remote.test")
	return h
}

func TestCheck(t *testing.T) {
	c, err := newCheckHarness(t).spool.Check(true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Messages != 2 || c.Queued != 3 || len(c.Problems) != 0 {
		t.Fatalf("Check = %+v, want 2 messages, 3 queued, no problems", c)
	}
	for _, tc := range []struct {
		name    string
		corrupt func(b txBuckets) error
		want    string
	}{
		{"unscheduled recipient", func(b txBuckets) error {
			k, _ := b.schedule.Cursor().First()
			return b.schedule.Delete(k)
		}, "queued but not scheduled"},
		{"stale schedule entry", func(b txBuckets) error {
			return b.schedule.Put(scheduleKey(time.Unix(5, 0), rcptKey{"A1", 0}), []byte("remote.test"))
		}, "stale schedule entry"},
		{"body missing", func(b txBuckets) error { return b.bodies.Delete([]byte("A2")) }, "A2: no body"},
		{"orphan recipient", func(b txBuckets) error {
			return b.rcpts.Put(rcptKey{"ZZ", 0}.bytes(), []byte(`{"status":"sent"}`))
		}, "without its message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newCheckHarness(t)
			tx, err := h.spool.db.Begin(true)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.corrupt(buckets(tx)); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			c, err := h.spool.Check(true)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(c.Problems, "\n"), tc.want) {
				t.Errorf("problems %q, want one with %q", c.Problems, tc.want)
			}
		})
	}
}
