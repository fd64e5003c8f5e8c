package spool

import (
	"context"
	"log/slog"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"posthorn/protocol/smtp"
	"posthorn/spool/dsn"
)

// outcomeKind is what an attempt means for a recipient.
type outcomeKind int

const (
	delivered outcomeKind = iota // a next hop took responsibility (2yz)
	permanent                    // 5yz or a permanent route error: bounce
	temporary                    // 4yz, no connection, DNS failure: retry
)

// outcome is one recipient's result of one attempt.
type outcome struct {
	kind    outcomeKind
	res     *result
	relayed bool // delivered to a next hop that did not offer DSN
}

// backoff is the wait before retry number attempts+1: RetryMin doubled for
// each attempt after the first, capped at RetryMax (RFC 5321 4.5.4.1: "The
// sender MUST delay retrying"; the parameters "MUST be configurable").
func backoff(attempts int, retryMin, retryMax time.Duration) time.Duration {
	d := retryMin
	for i := 1; i < attempts && d < retryMax; i++ {
		d *= 2
	}
	return min(d, retryMax)
}

// withJitter scales d by 1 ± jitter, u being uniform in [0, 1).
func withJitter(d time.Duration, u float64) time.Duration {
	return time.Duration(float64(d) * (1 + jitter*(2*u-1)))
}

// nextAttempt is when a recipient deferred now for the attempts-th time
// is tried again, u in [0, 1) choosing the jitter. It is never later than
// the message's expiry, nor than its delay warning when that is still to
// be sent, so both happen on time.
func (s *Spool) nextAttempt(now, arrival time.Time, attempts int, warnPending bool, u float64) time.Time {
	next := now.Add(withJitter(backoff(attempts, s.opts.RetryMin, s.opts.RetryMax), u))
	deadlines := []time.Time{arrival.Add(s.opts.MaxLifetime)}
	if warnPending {
		deadlines = append(deadlines, arrival.Add(s.opts.DelayWarning))
	}
	for _, d := range deadlines {
		if now.Before(d) && next.After(d) {
			next = d
		}
	}
	return next
}

// RFC 3461 4.1 NOTIFY keywords; 6.1: without NOTIFY, "FAILURE,DELAY".
func wantsNotice(notify []string, keyword string) bool {
	if len(notify) == 0 {
		return keyword == "FAILURE" || keyword == "DELAY"
	}
	return slices.Contains(notify, keyword)
}

// statusCode is the RFC 3463 code of a result in the class given: the
// reply's enhanced code when it has one of that class, else class.0.0 —
// or, for a local result, its own code moved to that class.
func statusCode(res *result, class byte) string {
	if res != nil && len(res.Enhanced) >= 5 && res.Enhanced[1] == '.' {
		if res.Enhanced[0] == class {
			return res.Enhanced
		}
		if res.Code == 0 || class == '4' {
			return string(class) + res.Enhanced[1:]
		}
	}
	return string(class) + ".0.0"
}

// Per-recipient log statuses.
const (
	logSent     = "sent"
	logDeferred = "deferred"
	logBounced  = "bounced"
)

// recordJob stores the outcomes of one attempt for the recipients of d in
// one transaction, logs them, and sends any DSN they call for.
func (s *Spool) recordJob(ctx context.Context, d *jobData, outs []outcome) {
	held := false
	defer func() {
		if !held {
			s.release(d.job)
		}
	}()
	now := s.now()
	ctx = context.WithoutCancel(ctx) // results must be recorded even at shutdown
	arrival := d.msg.Arrival
	age := now.Sub(arrival)
	nullSender := d.msg.From.Null
	// logged is what the transaction decided for each recipient ("" for
	// one that was no longer queued), for the log lines after the commit.
	type logged struct {
		status, code string
		attempts     int
	}
	var logs []logged
	var notice bool
	u := s.randFloat() // drawn once: fn may run more than once
	err := s.update(ctx, 0, func(tx *bolt.Tx) error {
		b := buckets(tx)
		logs, notice = logs[:0], false
		if b.messages.Get([]byte(d.job.id)) == nil {
			return nil // deleted meanwhile
		}
		recs := make([]*rcptRecord, len(d.rcpts))
		attempts, warnPending := 0, false
		for i, lr := range d.rcpts {
			var r rcptRecord
			found, err := getJSON(b.rcpts, rcptKey{d.job.id, lr.idx}.bytes(), &r)
			if err != nil {
				return err
			}
			if found && r.Status == StatusQueued {
				recs[i] = &r
				attempts = max(attempts, r.Attempts+1)
				warnPending = warnPending || !r.DelayNotified && !nullSender && wantsNotice(r.Notify, "DELAY")
			}
		}
		// One retry time for all deferred recipients of the job, so that
		// they stay together in one transaction (RFC 5321 4.5.4.1).
		next := s.nextAttempt(now, arrival, attempts, warnPending, u)
		warned := false
		for i, lr := range d.rcpts {
			k, r := rcptKey{d.job.id, lr.idx}, recs[i]
			if r == nil {
				logs = append(logs, logged{})
				continue
			}
			old := *r
			st := s.applyOutcome(r, outs[i], now, arrival, next, nullSender)
			if st == logDeferred && age >= s.opts.DelayWarning && !r.DelayNotified {
				warned = true
			}
			if err := b.putRcpt(k, &old, r); err != nil {
				return err
			}
			logs = append(logs, logged{st, r.Code, r.Attempts})
		}
		// RFC 3464: one "delayed" DSN covers every recipient of the
		// message still waiting at that moment, and is sent only once.
		final, pending := true, false
		err := b.eachRcpt(d.job.id, func(k rcptKey, r *rcptRecord) error {
			if warned && r.Status == StatusQueued && !r.DelayNotified {
				old := *r
				r.DelayNotified = true
				if !nullSender && wantsNotice(r.Notify, "DELAY") {
					r.Notice = string(dsn.Delayed)
				}
				if err := b.putRcpt(k, &old, r); err != nil {
					return err
				}
			}
			final = final && r.Status != StatusQueued
			pending = pending || r.Notice != ""
			return nil
		})
		if err != nil {
			return err
		}
		switch {
		case pending:
			notice = true
			return b.notices.Put([]byte(d.job.id), nil)
		case final:
			return b.deleteMessage(d.job.id)
		}
		return nil
	})
	if err != nil {
		// The recipients stay due on disk, so they are tried again: a
		// duplicate rather than a loss (RFC 5321 6.1). But not at once:
		// while the file cannot be written (a full disk) every attempt
		// would fail to record and the same message would go out in a
		// loop. They are held for RetryMin first.
		s.log.Error("recording delivery results failed; the recipients stay due",
			slog.String("queue_id", d.job.id), slog.Duration("retry_in", s.opts.RetryMin), slog.Any("err", err))
		held = true
		time.AfterFunc(s.opts.RetryMin, func() {
			s.release(d.job)
			s.signal()
		})
		return
	}
	for i, l := range logs {
		if l.status == "" {
			continue
		}
		res := outs[i].res
		attrs := []any{
			slog.String("queue_id", d.job.id),
			slog.String("rcpt", d.rcpts[i].rec.Path.path().String()),
			slog.String("relay", relayName(res)),
			slog.Duration("delay", age.Round(time.Millisecond)),
			slog.String("dsn", l.code),
			slog.String("status", l.status),
			slog.String("reply", res.String()),
			slog.Int("attempts", l.attempts),
		}
		if l.status == logBounced && nullSender {
			attrs = append(attrs, slog.String("note", "null sender: no DSN (RFC 5321 6.1)"))
		}
		s.log.Info("delivery", attrs...)
	}
	if notice {
		s.sendNotices(ctx, d.job.id)
	}
}

// expiredCode is the status of a recipient given up after MaxLifetime:
// RFC 3463 X.4.7 "Delivery time expired", class 5 because the queue has
// given up for good (the DSN's Action is "failed"); the last temporary
// reply stays in Diagnostic-Code.
const expiredCode = "5." + smtp.EnhDeliveryTime

// applyOutcome updates r for one attempt and returns the log status; a
// deferred recipient is due again at next.
func (s *Spool) applyOutcome(r *rcptRecord, o outcome, now, arrival, next time.Time, nullSender bool) string {
	r.Attempts++
	r.Last = now
	r.Reply = o.res
	switch o.kind {
	case delivered:
		r.Status, r.Code, r.Notice = StatusSent, statusCode(o.res, '2'), ""
		// RFC 3461 5.2.2 (b): NOTIFY=SUCCESS to a next hop without DSN.
		if o.relayed && !nullSender && wantsNotice(r.Notify, "SUCCESS") {
			r.Notice = string(dsn.Relayed)
		}
		return logSent
	case permanent:
		s.bounce(r, statusCode(o.res, '5'), nullSender)
		return logBounced
	}
	if now.Sub(arrival) >= s.opts.MaxLifetime {
		s.bounce(r, expiredCode, nullSender)
		return logBounced
	}
	r.Code = statusCode(o.res, '4')
	r.Next = next
	return logDeferred
}

// bounce makes r final with code and a "failed" DSN if one is wanted:
// never for the null sender (RFC 5321 6.1, 4.5.5: no bounce of a bounce),
// and only with FAILURE in NOTIFY (RFC 3461 4.1).
func (s *Spool) bounce(r *rcptRecord, code string, nullSender bool) {
	r.Status, r.Code, r.Notice = StatusBounced, code, ""
	if !nullSender && wantsNotice(r.Notify, "FAILURE") {
		r.Notice = string(dsn.Failed)
	}
}
