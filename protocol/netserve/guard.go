package netserve

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Guard coordinates one session with the shutdown of its Server. A session
// is idle while it waits for the client's next command and busy while it
// runs one; it says which with Idle and Busy, each of which reports whether
// shutdown has begun. At shutdown an idle session is woken at once (its
// read deadline is set to now), and a busy one gets Config.ShutdownGrace to
// finish its command (its deadline is set to now plus the grace).
//
// The usual loop sets the read deadline for the next command, then calls
// Idle (so that an interrupt in between is not overwritten), reads, and
// calls Busy; a read that failed after shutdown began is the interrupt.
type Guard struct {
	mu       sync.Mutex
	conn     net.Conn
	busy     bool
	stopping bool
	// limit is the end of the grace (Unix nanoseconds), 0 before shutdown
	// reaches a busy session.
	limit atomic.Int64
}

// NewGuard returns a Guard for a session on conn.
func NewGuard(conn net.Conn) *Guard { return &Guard{conn: conn} }

// interrupt begins the shutdown of the session.
func (g *Guard) interrupt(grace time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopping = true
	if g.busy {
		limit := time.Now().Add(grace)
		g.limit.Store(limit.UnixNano())
		g.conn.SetDeadline(limit)
	} else {
		g.conn.SetReadDeadline(time.Now())
	}
}

func (g *Guard) setBusy(b bool) (stopping bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.busy = b
	return g.stopping
}

// Idle marks the session as waiting for the client and reports whether
// shutdown has begun.
func (g *Guard) Idle() (stopping bool) { return g.setBusy(false) }

// Busy marks the session as running a command and reports whether shutdown
// has begun.
func (g *Guard) Busy() (stopping bool) { return g.setBusy(true) }

// Stopping reports whether shutdown has begun.
func (g *Guard) Stopping() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stopping
}

// SetConn replaces the connection that shutdown sets deadlines on, after
// STARTTLS has wrapped it.
func (g *Guard) SetConn(c net.Conn) {
	g.mu.Lock()
	g.conn = c
	g.mu.Unlock()
}

// Cap returns deadline, or the end of the shutdown grace if that is sooner,
// so that a busy session's own deadlines cannot outlast the grace.
func (g *Guard) Cap(deadline time.Time) time.Time {
	if limit := g.limit.Load(); limit != 0 && limit < deadline.UnixNano() {
		return time.Unix(0, limit)
	}
	return deadline
}
