package mailbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"

	bolt "go.etcd.io/bbolt"

	"posthorn/mailbox/failpoint"
)

// Group-commit defaults.
const (
	// DefaultMaxBatch bounds the functions run in one transaction, so one
	// commit's latency stays bounded however many callers queue.
	DefaultMaxBatch = 256
	// DefaultMaxBatchBytes bounds the declared payload of one transaction:
	// bbolt keeps every dirty page in memory until the commit.
	DefaultMaxBatchBytes = 32 << 20
)

// CommitterOptions configure a Committer.
type CommitterOptions struct {
	// MaxBatch is the most functions per transaction; 0 means DefaultMaxBatch.
	MaxBatch int
	// MaxBatchBytes is the most declared bytes (UpdateSized) per
	// transaction; a single larger function still runs, alone. 0 means
	// DefaultMaxBatchBytes.
	MaxBatchBytes int
	// Logger receives commit failures and recovered panics; nil discards.
	Logger *slog.Logger
	// Failpoint names the failpoint reached before each commit of this
	// file (package failpoint); "" means failpoint.Commit.
	Failpoint string
	// OnFail is called once, after the first failed commit, with its error.
	// The Store uses it to fail every other file too.
	OnFail func(error)

	// afterCommit runs after each successful commit (benchmarks use it to
	// simulate a disk with a slower fsync).
	afterCommit func()
}

// A Committer runs read-write transactions on one bbolt file with group
// commit: the functions of concurrent callers run in one transaction and
// share one commit (one pair of fdatasyncs). There is no artificial delay:
// an idle Committer starts a transaction at once, so a lone caller waits for
// one commit; callers that arrive while a commit is in flight queue and the
// next transaction takes all of them (up to MaxBatch and MaxBatchBytes).
//
// After a failed commit the Committer is failed for good: every later Update
// returns an error wrapping ErrStoreFailed. It never retries, because after
// an fsync error Linux may already have dropped the dirty pages and a later
// successful fsync would prove nothing (the "fsyncgate" problem).
//
// The transaction runs on the Committer's own goroutine. A Committer is safe
// for concurrent use.
type Committer struct {
	db   *bolt.DB
	opts CommitterOptions
	log  *slog.Logger

	mu      sync.Mutex
	queue   []*commitRequest
	running bool  // a run goroutine is draining the queue
	closed  bool  // Close was called: no new requests
	failed  error // the commit error that failed the Committer
	wg      sync.WaitGroup

	// committing is the ID of the transaction inside tx.Commit, 0 when
	// none. bbolt shows a commit to new readers as soon as it has written
	// the meta page: before the fdatasync, before Commit returns and
	// before the OnCommit functions run. WaitCommitted lets a reader that
	// saw it wait for the rest (commitMu guards committing and done).
	commitMu   sync.Mutex
	committing int
	done       chan struct{} // closed when committing is over
}

// Request states, so that a caller whose context ends can withdraw a request
// that has not started, and must wait for one that has.
const (
	requestQueued int32 = iota
	requestTaken
	requestWithdrawn
)

type commitRequest struct {
	fn    func(*bolt.Tx) error
	size  int
	state atomic.Int32
	done  chan error // buffered: the runner never blocks on it
}

// NewCommitter returns a group committer for db. The caller keeps owning db:
// Close the Committer before closing db.
func NewCommitter(db *bolt.DB, opts CommitterOptions) *Committer {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if opts.Failpoint == "" {
		opts.Failpoint = failpoint.Commit
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Committer{db: db, opts: opts, log: log}
}

// Update runs fn in a read-write transaction shared with other callers and
// returns once that transaction is durably committed (or failed).
//
// fn may be called more than once: if another function of the same batch
// fails, the transaction is rolled back and the rest of the batch runs again
// without it. So fn must derive everything from tx and set its results
// afresh on each call; side effects that must follow the commit go in
// tx.OnCommit (they run in commit order, before Update returns). fn must not
// commit or roll back tx, must not block, and must not call Update itself.
//
// If fn returns an error, its changes are undone, the others' are not, and
// Update returns that error. A panic in fn is recovered and returned as an
// error. If the context ends before fn has started, Update returns the
// context's error and fn never runs; once fn has started, Update waits for
// the commit (one fsync) whatever the context says.
func (c *Committer) Update(ctx context.Context, fn func(*bolt.Tx) error) error {
	return c.UpdateSized(ctx, 0, fn)
}

// UpdateSized is Update with a hint of how many bytes fn writes, for the
// MaxBatchBytes bound.
func (c *Committer) UpdateSized(ctx context.Context, size int, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &commitRequest{fn: fn, size: size, done: make(chan error, 1)}
	c.mu.Lock()
	if c.failed != nil {
		c.mu.Unlock()
		return failedError(c.failed)
	}
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.queue = append(c.queue, r)
	if !c.running {
		c.running = true
		c.wg.Add(1)
		go c.run()
	}
	c.mu.Unlock()

	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(requestQueued, requestWithdrawn) {
			return ctx.Err()
		}
		return <-r.done
	}
}

// Err returns nil, or the error that failed the Committer.
func (c *Committer) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed != nil {
		return failedError(c.failed)
	}
	return nil
}

// Fail puts the Committer into the failed state (if it is not already) as
// if a commit had failed with err: queued and later Updates return
// ErrStoreFailed. OnFail is not called.
func (c *Committer) Fail(err error) {
	c.fail(err, false)
}

// Close waits for every queued function to be committed and makes later
// Updates return ErrClosed. It does not close the database.
func (c *Committer) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait()
	return nil
}

func failedError(cause error) error {
	return fmt.Errorf("%w (first error: %v)", ErrStoreFailed, cause)
}

func (c *Committer) fail(err error, notify bool) {
	c.mu.Lock()
	if c.failed != nil {
		c.mu.Unlock()
		return
	}
	c.failed = err
	queued := c.queue
	c.queue = nil
	c.mu.Unlock()
	for _, r := range queued {
		if r.state.CompareAndSwap(requestQueued, requestTaken) {
			r.done <- failedError(err)
		}
	}
	if notify && c.opts.OnFail != nil {
		c.opts.OnFail(err)
	}
}

// run commits batches until the queue is empty.
func (c *Committer) run() {
	defer c.wg.Done()
	for {
		batch, failed, more := c.takeBatch()
		if !more {
			return
		}
		if failed != nil {
			for _, r := range batch {
				r.done <- failedError(failed)
			}
			continue
		}
		if len(batch) > 0 {
			c.commit(batch)
			// Let the callers just answered run before the next batch is
			// taken: a writer that queues its next request at once joins
			// it instead of waiting a whole commit longer.
			runtime.Gosched()
		}
	}
}

// takeBatch removes the next batch from the queue. more is false (and the
// runner must exit) when the queue is empty.
func (c *Committer) takeBatch() (batch []*commitRequest, failed error, more bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		c.running = false
		return nil, nil, false
	}
	bytes, n := 0, 0
	for ; n < len(c.queue) && len(batch) < c.opts.MaxBatch; n++ {
		r := c.queue[n]
		if len(batch) > 0 && bytes+r.size > c.opts.MaxBatchBytes {
			break
		}
		if !r.state.CompareAndSwap(requestQueued, requestTaken) {
			continue // withdrawn by its caller
		}
		batch = append(batch, r)
		bytes += r.size
	}
	// Copy the rest so the backing array of a long burst is not kept alive.
	rest := make([]*commitRequest, len(c.queue)-n)
	copy(rest, c.queue[n:])
	c.queue = rest
	return batch, c.failed, true
}

// commit runs the batch in one transaction. A function that fails is
// answered at once and dropped; the transaction is rolled back and the rest
// runs again, so that no trace of the failed function is committed.
func (c *Committer) commit(batch []*commitRequest) {
	live := batch
	for len(live) > 0 {
		tx, err := c.db.Begin(true)
		if err != nil {
			// The database is closed or cannot grow its mapping: nothing
			// was written, so this is not an fsync failure.
			for _, r := range live {
				r.done <- fmt.Errorf("mailbox: begin transaction: %w", err)
			}
			return
		}
		failedAt := -1
		for i, r := range live {
			if err := c.call(r.fn, tx); err != nil {
				r.done <- err
				failedAt = i
				break
			}
		}
		if failedAt >= 0 {
			_ = tx.Rollback()
			live = append(live[:failedAt:failedAt], live[failedAt+1:]...)
			continue
		}
		// The failpoint stands in for a failed write or fdatasync: the
		// transaction is rolled back and the error taken as bbolt's.
		err = failpoint.Inject(c.opts.Failpoint)
		if err != nil {
			_ = tx.Rollback()
		} else {
			c.beginCommit(tx.ID())
			err = tx.Commit()
			c.endCommit()
		}
		if err != nil {
			if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
				// A full disk fails the page writes (pwrite into a grown,
				// sparse file), before the meta page that would make the
				// transaction visible is written: bbolt never overwrites
				// pages the last committed meta page refers to, so the file
				// is still the last good commit. Nothing acknowledged is at
				// risk, and the store works again once space is freed
				// (ROBUSTNESS.md: disk full is 451, then recovery).
				c.log.Error("commit failed: disk full", slog.String("path", c.db.Path()), slog.Any("err", err))
				for _, r := range live {
					r.done <- fmt.Errorf("mailbox: commit %s: %w", c.db.Path(), err)
				}
				return
			}
			// Otherwise bbolt does not say whether the write or the
			// fdatasync failed, so the error is treated as an fsync error.
			c.log.Error("commit failed; store is now read-only until restart",
				slog.String("path", c.db.Path()), slog.Any("err", err))
			// Fail first, so that a caller retrying at once is refused.
			c.fail(err, true)
			for _, r := range live {
				r.done <- fmt.Errorf("%w: commit %s: %w", ErrStoreFailed, c.db.Path(), err)
			}
			return
		}
		if c.opts.afterCommit != nil {
			c.opts.afterCommit()
		}
		for _, r := range live {
			r.done <- nil
		}
		return
	}
}

func (c *Committer) beginCommit(id int) {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	c.committing, c.done = id, make(chan struct{})
}

func (c *Committer) endCommit() {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	close(c.done)
	c.committing, c.done = 0, nil
}

// WaitCommitted returns once the transaction with the given ID (as
// bolt.Tx.ID reports it to a reader), and every one before it, has
// finished committing: Commit has returned and its OnCommit functions have
// run. A reader calls it after its read transaction has ended (a commit
// may need to remap the file, which waits for open transactions), so that
// what it read is never ahead of what OnCommit functions published.
func (c *Committer) WaitCommitted(id int) {
	c.commitMu.Lock()
	committing, done := c.committing, c.done
	c.commitMu.Unlock()
	if committing != 0 && id >= committing {
		<-done
	}
}

// call runs fn and turns a panic into an error, so one bad function cannot
// take the committer goroutine (and every waiting caller) down with it.
func (c *Committer) call(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("panic in transaction function",
				slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("mailbox: panic in transaction: %v", p)
		}
	}()
	return fn(tx)
}
