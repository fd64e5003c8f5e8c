package sasl

import (
	"container/list"
	"crypto/sha256"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Limiter parameters.
const (
	// LimiterBase is the wait after the first failure; it doubles with each
	// further one.
	LimiterBase = 200 * time.Millisecond
	// LimiterMax caps the wait. With a 15 s cap and a connection cap per
	// address, one address tries at most a few passwords a second.
	LimiterMax = 15 * time.Second
	// LimiterForget is the quiet period after which failures are forgotten.
	LimiterForget = 15 * time.Minute
	// LimiterMaxEntries bounds each table (addresses, identities); the
	// least recently failed entry is evicted first.
	LimiterMaxEntries = 10000
	// IPv6Prefix is the prefix length an IPv6 client is counted by: one
	// host commonly holds a whole /64 (RFC 7421), and counting single
	// addresses would let it rotate through them.
	IPv6Prefix = 64
)

// Limiter slows failed authentications, per client address and per
// identity, for every protocol, against online dictionary attacks (RFC 4422
// 6.2). The policy is the server's; RFC 4954 9 only asks that a connection
// not be dropped before 3 failed attempts, which a delay respects.
//
// After n failures within LimiterForget of each other, each attempt from that
// address, or for that identity, waits LimiterBase*2^(n-1), at most
// LimiterMax; the larger of the two waits applies. A quiet period of
// LimiterForget forgets the failures; Success forgets them at once.
//
// The Limiter knows nothing of why an attempt failed: an unknown user and a
// wrong password count the same. Loopback and private addresses are treated
// like any other. Memory is bounded by LimiterMaxEntries per table.
//
// Use: the mechanisms verify inside Server.Next, and the identity is known
// only once Next has parsed it, so the protocol code calls Next, then sleeps
// Delay(ip, srv.Identity()) before sending the outcome, on success and
// failure alike (Delay does not depend on this attempt's result, so to the
// client this is the same as waiting before verifying, and the reply time
// says nothing), then reports Failure (for ErrAuthFailed, and for
// ErrMalformed if it likes) or Success. The sleep should end early if the
// connection's context is cancelled. A Limiter is safe for concurrent use.
type Limiter struct {
	now func() time.Time

	mu    sync.Mutex
	addrs *failureTable[netip.Prefix]
	ids   *failureTable[[sha256.Size]byte]
}

// NewLimiter returns a Limiter reading the time from now (time.Now if nil);
// tests pass a fake clock.
func NewLimiter(now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{
		now:   now,
		addrs: newFailureTable[netip.Prefix](LimiterMaxEntries),
		ids:   newFailureTable[[sha256.Size]byte](LimiterMaxEntries),
	}
}

// Delay returns how long to wait before answering an attempt from ip for
// identity ("" if not known yet). It records nothing.
func (l *Limiter) Delay(ip netip.Addr, identity string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int
	if k, ok := addrKey(ip); ok {
		n = l.addrs.failures(k, now)
	}
	if k, ok := identityKey(identity); ok {
		n = max(n, l.ids.failures(k, now))
	}
	return backoff(n)
}

// Failure records a failed attempt from ip for identity.
func (l *Limiter) Failure(ip netip.Addr, identity string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if k, ok := addrKey(ip); ok {
		l.addrs.fail(k, now)
	}
	if k, ok := identityKey(identity); ok {
		l.ids.fail(k, now)
	}
}

// Success clears the records of ip and of identity.
func (l *Limiter) Success(ip netip.Addr, identity string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k, ok := addrKey(ip); ok {
		l.addrs.remove(k)
	}
	if k, ok := identityKey(identity); ok {
		l.ids.remove(k)
	}
}

// backoff is the wait after n failures: LimiterBase*2^(n-1), capped.
func backoff(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := LimiterBase
	for i := 1; i < n && d < LimiterMax; i++ {
		d *= 2
	}
	return min(d, LimiterMax)
}

// addrKey is the table key of a client address: the address itself for IPv4
// (including IPv4-mapped IPv6), its /64 for IPv6.
func addrKey(ip netip.Addr) (netip.Prefix, bool) {
	if !ip.IsValid() {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = IPv6Prefix
	}
	p, err := ip.Prefix(bits)
	return p, err == nil
}

// identityKey is the table key of an identity: a hash of its lower-cased
// form (the store compares names case-insensitively), so a long name costs
// no more memory than a short one.
func identityKey(identity string) ([sha256.Size]byte, bool) {
	if identity == "" {
		return [sha256.Size]byte{}, false
	}
	return sha256.Sum256([]byte(strings.ToLower(identity))), true
}

// failureTable counts recent failures per key, with the entries in a list
// ordered by last failure (front: newest) so the oldest is evicted in O(1).
type failureTable[K comparable] struct {
	max     int
	entries map[K]*list.Element
	order   *list.List // of *failureEntry[K]
}

type failureEntry[K comparable] struct {
	key      K
	failures int
	last     time.Time
}

// maxCountedFailures keeps the count from growing without use: the wait is
// already at LimiterMax long before.
const maxCountedFailures = 64

func newFailureTable[K comparable](max int) *failureTable[K] {
	return &failureTable[K]{max: max, entries: make(map[K]*list.Element), order: list.New()}
}

// failures returns k's failure count, forgetting it after a quiet period.
func (t *failureTable[K]) failures(k K, now time.Time) int {
	el, ok := t.entries[k]
	if !ok {
		return 0
	}
	e := el.Value.(*failureEntry[K])
	if now.Sub(e.last) >= LimiterForget {
		t.remove(k)
		return 0
	}
	return e.failures
}

// fail counts one more failure for k at now.
func (t *failureTable[K]) fail(k K, now time.Time) {
	if el, ok := t.entries[k]; ok {
		e := el.Value.(*failureEntry[K])
		if now.Sub(e.last) >= LimiterForget {
			e.failures = 0
		}
		e.failures = min(e.failures+1, maxCountedFailures)
		e.last = now
		t.order.MoveToFront(el)
		return
	}
	t.entries[k] = t.order.PushFront(&failureEntry[K]{key: k, failures: 1, last: now})
	for t.order.Len() > t.max {
		oldest := t.order.Back()
		t.order.Remove(oldest)
		delete(t.entries, oldest.Value.(*failureEntry[K]).key)
	}
}

func (t *failureTable[K]) remove(k K) {
	if el, ok := t.entries[k]; ok {
		t.order.Remove(el)
		delete(t.entries, k)
	}
}

func (t *failureTable[K]) len() int { return t.order.Len() }
