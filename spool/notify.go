package spool

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"

	bolt "go.etcd.io/bbolt"

	"posthorn/spool/dsn"
)

// sendNotices composes the DSN for the recipients of message id that have
// a notice pending, hands it to Options.Bounce and, once that succeeded,
// clears the notices (removing the message if it is then done). One DSN
// covers every recipient pending at that moment (RFC 3464 2: a DSN may
// report on several recipients). If Bounce fails the notices stay pending
// and retryNotices tries again later: a DSN is never lost, and at worst
// sent twice after a crash.
func (s *Spool) sendNotices(ctx context.Context, id string) {
	s.noticeMu.Lock()
	defer s.noticeMu.Unlock()
	now := s.now()
	var (
		msg      msgRecord
		raw      []byte
		included = map[uint32]string{} // recipient index → action reported
		report   dsn.Report
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		b := buckets(tx)
		found, err := getJSON(b.messages, []byte(id), &msg)
		if err != nil || !found {
			return err
		}
		raw = bytes.Clone(b.bodies.Get([]byte(id)))
		return b.eachRcpt(id, func(k rcptKey, r *rcptRecord) error {
			if r.Notice == "" {
				return nil
			}
			included[k.idx] = r.Notice
			report.Recipients = append(report.Recipients, s.recipientReport(r, msg))
			return nil
		})
	})
	if err != nil {
		s.log.Error("reading a message for its DSN failed", slog.String("queue_id", id), slog.Any("err", err))
		return
	}
	if len(included) > 0 && !msg.From.Null {
		report.ReportingMTA = s.opts.Hostname
		report.Sender = msg.From.path().String()
		report.Date = now
		report.MessageID = id + "." + strconv.FormatInt(now.UnixMicro(), 36) + ".dsn@" + s.opts.Hostname
		report.EnvID = msg.EnvID
		report.Arrival = msg.Arrival
		report.Ret = msg.Ret
		report.Original = raw
		out := dsn.Compose(report)
		var err error
		if s.opts.Bounce != nil {
			err = s.opts.Bounce(ctx, msg.From.path(), out)
		}
		switch {
		case s.opts.Bounce == nil:
			s.log.Warn("no bounce handler; DSN dropped", slog.String("queue_id", id))
		case err != nil:
			// The notices stay pending; retryNotices tries again.
			s.log.Error("handing off a DSN failed; will retry", slog.String("queue_id", id), slog.Any("err", err))
			return
		default:
			s.log.Info("DSN sent", slog.String("queue_id", id), slog.String("to", report.Sender),
				slog.Int("recipients", len(report.Recipients)), slog.String("action", actionOf(report)))
		}
	}
	err = s.update(context.WithoutCancel(ctx), 0, func(tx *bolt.Tx) error {
		b := buckets(tx)
		if b.messages.Get([]byte(id)) == nil {
			return nil
		}
		final, pending := true, false
		err := b.eachRcpt(id, func(k rcptKey, r *rcptRecord) error {
			if action, ok := included[k.idx]; ok && r.Notice == action {
				old := *r
				r.Notice = ""
				if err := b.putRcpt(k, &old, r); err != nil {
					return err
				}
			}
			final = final && r.Status != StatusQueued
			pending = pending || r.Notice != ""
			return nil
		})
		switch {
		case err != nil:
			return err
		case pending:
			return nil
		case final:
			return b.deleteMessage(id)
		}
		return b.notices.Delete([]byte(id))
	})
	if err != nil {
		s.log.Error("recording a sent DSN failed", slog.String("queue_id", id), slog.Any("err", err))
	}
}

// recipientReport is the per-recipient part of a DSN for r.
func (s *Spool) recipientReport(r *rcptRecord, msg msgRecord) dsn.Recipient {
	rc := dsn.Recipient{
		Original:    r.ORcpt,
		Final:       r.Path.path().String(),
		Action:      dsn.Action(r.Notice),
		Status:      r.Code,
		LastAttempt: r.Last,
	}
	class := map[dsn.Action]byte{dsn.Failed: '5', dsn.Delayed: '4'}[rc.Action]
	if class == 0 {
		class = '2'
	}
	// A status of the wrong class (a "delayed" recipient last bounced by
	// nothing yet, say) is made to match the action (RFC 3464 2.3.4).
	if len(rc.Status) < 5 || rc.Status[0] != class {
		rc.Status = statusCode(r.Reply, class)
	}
	if res := r.Reply; res != nil {
		switch {
		case res.Code != 0:
			rc.RemoteMTA = res.Host
			rc.DiagnosticType = dsn.DiagnosticSMTP
			rc.Diagnostic = res.String()
		case res.Text != "":
			rc.DiagnosticType = dsn.DiagnosticLocal
			rc.Diagnostic = res.Text
		}
	}
	if rc.Action == dsn.Delayed {
		rc.WillRetryUntil = msg.Arrival.Add(s.opts.MaxLifetime)
	}
	return rc
}

// actionOf is the most severe action of a DSN, for the log.
func actionOf(r dsn.Report) string {
	action := dsn.Relayed
	for _, rc := range r.Recipients {
		if rc.Action == dsn.Failed {
			return string(dsn.Failed)
		}
		if rc.Action == dsn.Delayed {
			action = dsn.Delayed
		}
	}
	return string(action)
}

// retryNotices sends the DSNs still pending (after a failed hand-off or a
// restart), at most once per RetryMin. It reports whether any are pending
// afterwards, for which the scheduler wakes at s.noticeRetry.
func (s *Spool) retryNotices(ctx context.Context) bool {
	ids, err := s.pendingNotices()
	if err != nil {
		s.log.Error("reading pending DSNs failed", slog.Any("err", err))
		return false
	}
	if len(ids) == 0 || s.now().Before(s.noticeRetry) {
		return len(ids) > 0
	}
	s.noticeRetry = s.now().Add(s.opts.RetryMin)
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		s.sendNotices(ctx, id)
	}
	ids, err = s.pendingNotices()
	return err == nil && len(ids) > 0
}

func (s *Spool) pendingNotices() ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNotices).ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	})
	return ids, err
}
