package spool

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"

	"posthorn/protocol/smtp"
)

// Enqueue stores the message and one record per recipient, each due at
// once, and returns when they are on disk (committed and fsync'd through
// the group committer): the SMTP server's 250 follows it (RFC 5321 6.1).
func (s *Spool) Enqueue(ctx context.Context, m Message, raw []byte) error {
	if len(m.Rcpts) == 0 || len(raw) == 0 {
		return fmt.Errorf("%w: no recipients or empty message", ErrInvalid)
	}
	if m.ID != "" && !validID(m.ID) {
		return fmt.Errorf("%w: queue ID %q", ErrInvalid, m.ID)
	}
	for _, r := range m.Rcpts {
		if r.Path.Null || r.Path.Domain == "" {
			return fmt.Errorf("%w: recipient %q has no domain", ErrInvalid, r.Path.String())
		}
	}
	now := s.now()
	if m.Arrival.IsZero() {
		m.Arrival = now
	}
	wanted := m.ID
	if wanted == "" {
		wanted = s.newID()
	}
	msg := msgRecord{
		From:     toPathRecord(m.From),
		Body:     m.Mail.Body,
		SMTPUTF8: m.Mail.SMTPUTF8,
		Ret:      m.Mail.Ret,
		EnvID:    m.Mail.EnvID,
		Arrival:  m.Arrival,
		Size:     len(raw),
		Rcpts:    uint32(len(m.Rcpts)),
	}
	var id string
	err := s.update(ctx, len(raw), func(tx *bolt.Tx) error {
		b := buckets(tx)
		id = uniqueID(b.messages, wanted)
		if err := putJSON(b.messages, []byte(id), &msg); err != nil {
			return err
		}
		if err := b.bodies.Put([]byte(id), raw); err != nil {
			return err
		}
		for i, rc := range m.Rcpts {
			r := &rcptRecord{
				Path:   toPathRecord(rc.Path),
				Notify: rc.Params.Notify,
				ORcpt:  rc.Params.ORcpt,
				Domain: routeDomain(rc.Path.Domain),
				Status: StatusQueued,
				Next:   now,
			}
			if err := b.putRcpt(rcptKey{id, uint32(i)}, nil, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("spool: enqueue: %w", err)
	}
	if id != wanted {
		s.log.Warn("queue ID taken; stored under another", slog.String("queue_id", wanted), slog.String("stored_as", id))
	}
	s.signal()
	return nil
}

// List returns every message in the queue, by ID (the oldest first for
// the SMTP server's IDs), each with the recipients still queued: like
// Postfix's mailq, a listing shows what is left to do; the recipients
// already sent or bounced are in the log, and Show has them all.
func (s *Spool) List() ([]Entry, error) {
	var entries []Entry
	err := s.db.View(func(tx *bolt.Tx) error {
		b := buckets(tx)
		return b.messages.ForEach(func(k, v []byte) error {
			e, err := readEntry(b, string(k), true)
			if err != nil {
				return err
			}
			entries = append(entries, e)
			return nil
		})
	})
	return entries, err
}

// Show returns one message's entry, with all its recipients, and its raw
// bytes.
func (s *Spool) Show(id string) (Entry, []byte, error) {
	var e Entry
	var raw []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := buckets(tx)
		if b.messages.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		var err error
		if e, err = readEntry(b, id, false); err != nil {
			return err
		}
		raw = bytes.Clone(b.bodies.Get([]byte(id)))
		return nil
	})
	return e, raw, err
}

// readEntry reads message id, with only its queued recipients if
// queuedOnly.
func readEntry(b txBuckets, id string, queuedOnly bool) (Entry, error) {
	var m msgRecord
	if _, err := getJSON(b.messages, []byte(id), &m); err != nil {
		return Entry{}, err
	}
	e := Entry{
		ID:      id,
		From:    m.From.path(),
		Mail:    smtp.MailParams{Size: int64(m.Size), Body: m.Body, SMTPUTF8: m.SMTPUTF8, Ret: m.Ret, EnvID: m.EnvID},
		Arrival: m.Arrival,
		Size:    m.Size,
	}
	err := b.eachRcpt(id, func(k rcptKey, r *rcptRecord) error {
		if queuedOnly && r.Status != StatusQueued {
			return nil
		}
		re := RcptEntry{
			Path:        r.Path.path(),
			Params:      smtp.RcptParams{Notify: r.Notify, ORcpt: r.ORcpt},
			Status:      r.Status,
			Attempts:    r.Attempts,
			NextAttempt: r.Next,
			LastAttempt: r.Last,
			LastReply:   r.Reply.String(),
		}
		if r.Reply != nil {
			re.Relay = r.Reply.Relay
		}
		e.Rcpts = append(e.Rcpts, re)
		return nil
	})
	return e, err
}

// Delete removes a message and all its recipients (`posthorn queue
// delete`). An attempt in flight still finishes, but its result is not
// recorded and no DSN is sent.
func (s *Spool) Delete(id string) error {
	err := s.update(context.Background(), 0, func(tx *bolt.Tx) error {
		b := buckets(tx)
		if b.messages.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		return b.deleteMessage(id)
	})
	if err == nil {
		s.log.Info("deleted by administrator", slog.String("queue_id", id))
	}
	return err
}

// Flush makes every queued recipient due now (`posthorn queue flush`).
// The change is durable, so a flush while no server runs takes effect at
// the next start.
func (s *Spool) Flush() {
	s.mu.Lock()
	clear(s.dead) // a flush is a request to try again now
	s.mu.Unlock()
	if err := s.reschedule(func(i, n int, now time.Time) time.Time { return now }, false); err != nil {
		s.log.Error("queue flush failed", slog.Any("err", err))
	}
	s.signal()
}

// spreadOverdue gives the recipients whose next attempt passed while no
// queue ran (a restart, a long stop) new times, so that a restart with a
// large queue does not open every connection at once: the first
// restartBurst messages stay due now, the rest follow restartStep apart
// (closer if that would take longer than RetryMin), in their old order.
// The recipients of one message keep one time, so they still share a
// transaction. Future attempts keep their times.
func (s *Spool) spreadOverdue() error {
	return s.reschedule(func(i, n int, now time.Time) time.Time {
		if i < restartBurst {
			return now
		}
		step := min(restartStep, s.opts.RetryMin/time.Duration(n-restartBurst))
		return now.Add(time.Duration(i-restartBurst+1) * step)
	}, true)
}

// reschedule moves queued recipients to when(i, n, now), i counting the
// n messages in the order of their first recipient in the schedule;
// overdueOnly limits it to recipients due before now.
func (s *Spool) reschedule(when func(i, n int, now time.Time) time.Time, overdueOnly bool) error {
	return s.update(context.Background(), 0, func(tx *bolt.Tx) error {
		b := buckets(tx)
		now := s.now()
		type entry struct {
			key  []byte
			rcpt rcptKey
		}
		var due []entry
		msgIndex := map[string]int{}
		c := b.schedule.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			t, rk, ok := parseScheduleKey(k)
			if overdueOnly && ok && !t.Before(now) {
				break
			}
			due = append(due, entry{bytes.Clone(k), rk})
			if _, seen := msgIndex[rk.id]; !seen {
				msgIndex[rk.id] = len(msgIndex)
			}
		}
		for _, e := range due {
			var r rcptRecord
			found, err := getJSON(b.rcpts, e.rcpt.bytes(), &r)
			if err != nil || !found || r.Status != StatusQueued {
				// An index entry without its record: drop it.
				if err := b.schedule.Delete(e.key); err != nil {
					return err
				}
				continue
			}
			old := r
			r.Next = when(msgIndex[e.rcpt.id], len(msgIndex), now)
			if err := b.putRcpt(e.rcpt, &old, &r); err != nil {
				return err
			}
		}
		return nil
	})
}
