package spool

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// CheckResult is what Check found in the spool file.
type CheckResult struct {
	Messages int // message records
	Queued   int // recipients still to be delivered
	Problems []string
}

// Check verifies the spool file in one read transaction: bbolt's own page
// check if pages is set (only while nothing writes; see
// mailbox.Account.Check), and that records, bodies and the schedule agree: every message has
// its body and recipients, every queued recipient has exactly the schedule
// entry its record names, and no schedule entry, body, recipient or notice
// is left without its record. A nil error with Problems empty means the
// spool is consistent, so nothing accepted is stranded: a queued recipient
// without a schedule entry would never be tried again. Safe while the
// spool runs.
func (s *Spool) Check(pages bool) (CheckResult, error) {
	var out CheckResult
	err := s.db.View(func(tx *bolt.Tx) error {
		problem := func(format string, args ...any) {
			if len(out.Problems) < 100 {
				out.Problems = append(out.Problems, fmt.Sprintf(format, args...))
			}
		}
		if pages {
			for err := range tx.Check() {
				problem("bbolt: %v", err)
			}
		}
		b := buckets(tx)
		if b.messages == nil || b.bodies == nil || b.rcpts == nil || b.schedule == nil || b.notices == nil {
			problem("spool buckets missing")
			return nil
		}
		err := b.messages.ForEach(func(k, v []byte) error {
			out.Messages++
			id := string(k)
			var m msgRecord
			if _, err := getJSON(b.messages, k, &m); err != nil {
				problem("%s: %v", id, err)
				return nil
			}
			if b.bodies.Get(k) == nil {
				problem("%s: no body", id)
			}
			n := 0
			err := b.eachRcpt(id, func(rk rcptKey, r *rcptRecord) error {
				n++
				if rk.idx >= m.Rcpts {
					problem("%s: recipient %d of %d", id, rk.idx, m.Rcpts)
				}
				if r.Status == StatusQueued {
					out.Queued++
					if b.schedule.Get(scheduleKey(r.Next, rk)) == nil {
						problem("%s: recipient %d queued but not scheduled", id, rk.idx)
					}
				}
				return nil
			})
			if err != nil {
				problem("%s: %v", id, err)
			}
			if n == 0 {
				problem("%s: no recipients", id)
			}
			return nil
		})
		if err != nil {
			return err
		}
		scheduled := 0
		_ = b.schedule.ForEach(func(k, _ []byte) error {
			scheduled++
			at, rk, ok := parseScheduleKey(k)
			if !ok {
				problem("schedule key %x", k)
				return nil
			}
			var r rcptRecord
			found, err := getJSON(b.rcpts, rk.bytes(), &r)
			switch {
			case err != nil:
				problem("%s: %v", rk.id, err)
			case !found:
				problem("%s: recipient %d scheduled but has no record", rk.id, rk.idx)
			case r.Status != StatusQueued || !r.Next.Equal(at):
				problem("%s: recipient %d: stale schedule entry", rk.id, rk.idx)
			}
			return nil
		})
		if scheduled != out.Queued {
			problem("%d schedule entries for %d queued recipients", scheduled, out.Queued)
		}
		orphans := func(bk *bolt.Bucket, what string) {
			_ = bk.ForEach(func(k, _ []byte) error {
				id := k
				if rk, ok := parseRcptKey(k); ok && bk == b.rcpts {
					id = []byte(rk.id)
				}
				if b.messages.Get(id) == nil {
					problem("%s %q without its message", what, k)
				}
				return nil
			})
		}
		orphans(b.bodies, "body")
		orphans(b.rcpts, "recipient")
		orphans(b.notices, "notice")
		return nil
	})
	return out, err
}

// Err returns nil, or the commit error that failed the spool file: after a
// failed fsync nothing more may be queued until a restart (see
// mailbox.Committer).
func (s *Spool) Err() error { return s.committer.Err() }
