package spool

import (
	"context"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"
)

// job is one message's due recipients at one domain: one SMTP transaction.
type job struct {
	id    string
	rcpts []uint32
}

// domainWork is the work waiting for one destination domain.
type domainWork struct {
	name    string
	jobs    []*job
	open    map[string]*job // the last queued job per message, while it has room
	workers int
}

// deadDomain is a domain that could not be reached: until the time given,
// its jobs are deferred with the same reason without a new connection
// attempt (RFC 5321 4.5.4.1: "keep a list of hosts it cannot reach").
type deadDomain struct {
	until  time.Time
	reason *result
}

// idleWait is how long the scheduler sleeps with nothing due; Enqueue,
// Flush and finished workers wake it earlier.
const idleWait = time.Minute

// Run delivers queued mail until ctx ends. Then it starts no new attempt,
// lets those in flight finish for up to ShutdownGrace (then cancels them)
// and records their results before it returns. Run may be called once at
// a time.
func (s *Spool) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer s.running.Store(false)
	if s.closed.Load() {
		return ErrClosed
	}
	// Attempts get their own context, which outlives ctx by the grace
	// period, so a transaction in progress is not cut at the first signal.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	if err := s.spreadOverdue(); err != nil {
		return err
	}
	s.noticeRetry = s.now()
	for {
		next := s.dispatch(ctx, work)
		if s.retryNotices(work) && (next.IsZero() || s.noticeRetry.Before(next)) {
			next = s.noticeRetry
		}
		wait := idleWait
		if !next.IsZero() {
			wait = min(max(next.Sub(s.now()), time.Millisecond), idleWait)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			s.drain(cancelWork)
			return nil
		case <-s.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// drain waits for the workers, cancelling their attempts after the grace
// period.
func (s *Spool) drain(cancelWork context.CancelFunc) {
	done := make(chan struct{})
	go func() {
		s.workers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(s.opts.ShutdownGrace):
		s.log.Warn("cancelling delivery attempts still in flight at shutdown")
		cancelWork()
		<-done
	}
	// Jobs still waiting for a worker stay due on disk; forget them here
	// so that a later Run takes them again.
	s.mu.Lock()
	clear(s.inflight)
	clear(s.domains)
	s.order = nil
	s.mu.Unlock()
}

// dispatch takes the due recipients into domain queues, starts workers,
// and returns when the next recipient not yet taken is due (zero: none).
func (s *Spool) dispatch(ctx, work context.Context) time.Time {
	now := s.now()
	if err := s.committer.Err(); err != nil {
		// After a failed fsync the file takes no more writes until a
		// restart: results could not be recorded, so every delivery
		// would be repeated. Deliver nothing; the queue stays on disk.
		if !s.stalled.Swap(true) {
			s.log.Error("queue stopped until restart: its file failed a commit", slog.Any("err", err))
		}
		return now.Add(idleWait)
	}
	var next time.Time
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSchedule).Cursor()
		taken := 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			t, rk, ok := parseScheduleKey(k)
			if !ok {
				continue
			}
			if _, busy := s.inflight[rk]; busy {
				continue
			}
			if t.After(now) || taken >= maxCollect {
				next = t
				if taken >= maxCollect {
					// Look again once workers have made room.
					next = now.Add(time.Second)
				}
				return nil
			}
			s.inflight[rk] = struct{}{}
			s.addJob(string(v), rk)
			taken++
		}
		return nil
	})
	if err != nil {
		s.log.Error("reading the schedule failed", slog.Any("err", err))
		return now.Add(s.opts.RetryMin)
	}
	s.startWorkers(ctx, work)
	return next
}

// addJob puts recipient k of domain into its message's open job there, or
// a new one. Called with s.mu held.
func (s *Spool) addJob(domain string, k rcptKey) {
	dw := s.domains[domain]
	if dw == nil {
		dw = &domainWork{name: domain, open: make(map[string]*job)}
		s.domains[domain] = dw
		s.order = append(s.order, domain)
	}
	j := dw.open[k.id]
	if j == nil || len(j.rcpts) >= maxRcptsPerTransaction {
		j = &job{id: k.id}
		dw.jobs = append(dw.jobs, j)
		dw.open[k.id] = j
	}
	j.rcpts = append(j.rcpts, k.idx)
}

// startWorkers starts a worker for every domain that has waiting jobs and
// room for one more: one per jobsPerWorker jobs waiting, at most PerDomain
// per domain and Concurrency in all. Called with s.mu held.
func (s *Spool) startWorkers(ctx, work context.Context) {
	if ctx.Err() != nil {
		return
	}
	kept := s.order[:0]
	for _, name := range s.order {
		dw := s.domains[name]
		if dw == nil {
			continue
		}
		if len(dw.jobs) == 0 && dw.workers == 0 {
			delete(s.domains, name)
			continue
		}
		kept = append(kept, name)
		for s.active < s.opts.Concurrency && dw.workers < s.opts.PerDomain &&
			len(dw.jobs) > 0 && (dw.workers == 0 || len(dw.jobs) > dw.workers*jobsPerWorker) {
			dw.workers++
			s.active++
			s.workers.Add(1)
			go s.runDomain(ctx, work, dw)
		}
	}
	s.order = kept
}

// takeJob hands the next job of dw to a worker; nil when there is none or
// the queue is stopping.
func (s *Spool) takeJob(ctx context.Context, dw *domainWork) *job {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(dw.jobs) == 0 || ctx.Err() != nil {
		return nil
	}
	j := dw.jobs[0]
	dw.jobs[0] = nil
	dw.jobs = dw.jobs[1:]
	if dw.open[j.id] == j {
		delete(dw.open, j.id)
	}
	return j
}

// takeAllJobs hands every waiting job of dw to one worker (when the
// domain's route failed, they all share its fate).
func (s *Spool) takeAllJobs(dw *domainWork) []*job {
	s.mu.Lock()
	defer s.mu.Unlock()
	jobs := dw.jobs
	dw.jobs = nil
	clear(dw.open)
	return jobs
}

// release forgets that the recipients of j are in flight.
func (s *Spool) release(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, idx := range j.rcpts {
		delete(s.inflight, rcptKey{j.id, idx})
	}
}

// workerDone ends a worker: if the queue is stopping, the jobs it left are
// given back (they stay due on disk); otherwise other domains may start.
func (s *Spool) workerDone(ctx, work context.Context, dw *domainWork) {
	var left []*job
	if ctx.Err() != nil {
		left = s.takeAllJobs(dw)
	}
	for _, j := range left {
		s.release(j)
	}
	s.mu.Lock()
	dw.workers--
	s.active--
	s.startWorkers(ctx, work)
	s.mu.Unlock()
	s.workers.Done()
	s.signal()
}

// markDead and deadReason keep the unreachable-domain cache.
func (s *Spool) markDead(domain string, reason *result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for name, d := range s.dead {
		if !now.Before(d.until) {
			delete(s.dead, name)
		}
	}
	s.dead[domain] = deadDomain{until: now.Add(s.opts.RetryMin), reason: reason}
}

func (s *Spool) deadReason(domain string) *result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.dead[domain]; ok && s.now().Before(d.until) {
		return d.reason
	}
	return nil
}
