package sasl

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"strings"
	"sync"
	"time"

	"posthorn/protocol/netserve"
)

// Limiter defaults (DefaultLimiterConfig) and bounds.
const (
	// LimiterBase is the wait after the first failure; it doubles with each
	// further one (auth_failure_delay).
	LimiterBase = 200 * time.Millisecond
	// LimiterMax caps the wait (auth_failure_delay_max). With a 15 s cap
	// and the lockout, one address tries at most LimiterLockout passwords
	// per LimiterWindow.
	LimiterMax = 15 * time.Second
	// LimiterWindow is how long a failure counts (auth_failure_window), and
	// how long a lockout lasts.
	LimiterWindow = 15 * time.Minute
	// LimiterLockout is the count of failures from one address within the
	// window that locks the address out (auth_lockout_failures), as
	// fail2ban's maxretry within findtime.
	LimiterLockout = 10
	// LimiterMaxLockout is the largest lockout count accepted: each record
	// keeps at most this many recent failures.
	LimiterMaxLockout = 64
	// LimiterMaxEntries bounds each table (addresses, identities, known
	// logins); the least recently used entry is evicted first.
	LimiterMaxEntries = 10000
	// LimiterRemember is how long an address that logged in as an identity
	// stays exempt from the delays caused by that identity's failures.
	LimiterRemember = 30 * 24 * time.Hour
)

// LimiterConfig is the policy of a Limiter.
type LimiterConfig struct {
	// Delay is the wait after the first failure, doubled for each further
	// one up to MaxDelay.
	Delay    time.Duration
	MaxDelay time.Duration
	// Window is how long a failure counts, and how long a lockout lasts.
	Window time.Duration
	// Lockout is the count of failures from one address within Window
	// that refuses every attempt from it, unchecked, for Window; 0 never
	// locks an address out. At most LimiterMaxLockout.
	Lockout int
}

// DefaultLimiterConfig is the policy of NewLimiter.
func DefaultLimiterConfig() LimiterConfig {
	return LimiterConfig{Delay: LimiterBase, MaxDelay: LimiterMax, Window: LimiterWindow, Lockout: LimiterLockout}
}

// Limiter slows failed authentications, per client address and per
// identity, for every protocol, and locks out an address that keeps failing,
// against online dictionary attacks (RFC 4422 6.2). The policy is the
// server's; RFC 4954 9 only asks that a connection not be dropped before 3
// failed attempts, which a delay respects.
//
// Counting: a failure counts for Window, for its address (an IPv6 client by
// its /64) and for its identity. With n failures counted, each attempt from
// that address, or for that identity, waits Delay*2^(n-1), at most MaxDelay;
// the larger of the two waits applies. Failures age out one by one (a
// sliding window, not a quiet period), so a client retrying a stale password
// every few minutes stays at a small wait instead of climbing forever.
//
// Lockout: once an address has Lockout failures within Window, Locked
// reports it for Window; the protocol code then refuses every attempt from
// that address without checking it (a right password too, or the refusal
// would tell it apart), on every protocol, and nothing is counted until the
// lockout ends, after which the address starts afresh. Identities are never
// locked out: that would hand any attacker a way to lock a user out.
//
// Success forgives what the authenticated identity's own mistakes cost: this
// address's failures for that identity and the identity's failures from this
// address, but not the address's failures for other identities (logging in
// to one's own account between guesses at others gains nothing). It also
// remembers the address as one the identity logs in from: for
// LimiterRemember, attempts for the identity from there are not slowed by
// the identity's failures from elsewhere, so that guessing at a user's
// password from other addresses does not slow the user down. Nothing is
// learnt from this: the exemption applies only where the right password has
// already been given.
//
// The Limiter knows nothing of why an attempt failed: an unknown user and a
// wrong password count the same. Loopback and private addresses are treated
// like any other. Memory is bounded by LimiterMaxEntries per table, each
// record holding at most max(Lockout, failures to reach MaxDelay) times.
//
// Use: the protocol code first asks Locked and refuses a locked address.
// The mechanisms verify inside Server.Next, and the identity is known only
// once Next has parsed it, so the protocol code calls Next, then sleeps
// Delay(ip, srv.Identity()) before sending the outcome, on success and
// failure alike (Delay does not depend on this attempt's result, so to the
// client this is the same as waiting before verifying, and the reply time
// says nothing), then reports Failure (for ErrAuthFailed, and for
// ErrMalformed if it likes) or Success. The sleep should end early if the
// connection's context is cancelled. A Limiter is safe for concurrent use.
type Limiter struct {
	cfg   LimiterConfig
	slots int // failures kept per record
	now   func() time.Time

	mu    sync.Mutex
	addrs *lru[netip.Prefix, *record]
	ids   *lru[[sha256.Size]byte, *record]
	known *lru[[sha256.Size]byte, time.Time] // (address, identity) → last login
}

// NewLimiter returns a Limiter with DefaultLimiterConfig, reading the time
// from now (time.Now if nil); tests pass a fake clock.
func NewLimiter(now func() time.Time) *Limiter {
	return NewLimiterWith(DefaultLimiterConfig(), now)
}

// NewLimiterWith returns a Limiter with the policy cfg. A Delay, MaxDelay or
// Window that is not positive takes its default; MaxDelay is at least Delay;
// Lockout is clamped to 0..LimiterMaxLockout.
func NewLimiterWith(cfg LimiterConfig, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	d := DefaultLimiterConfig()
	if cfg.Delay <= 0 {
		cfg.Delay = d.Delay
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = d.MaxDelay
	}
	cfg.MaxDelay = max(cfg.MaxDelay, cfg.Delay)
	if cfg.Window <= 0 {
		cfg.Window = d.Window
	}
	cfg.Lockout = min(max(cfg.Lockout, 0), LimiterMaxLockout)
	l := &Limiter{
		cfg:   cfg,
		now:   now,
		addrs: newLRU[netip.Prefix, *record](LimiterMaxEntries),
		ids:   newLRU[[sha256.Size]byte, *record](LimiterMaxEntries),
		known: newLRU[[sha256.Size]byte, time.Time](LimiterMaxEntries),
	}
	// Beyond the count that reaches MaxDelay (and the lockout) more
	// failures change nothing, so no more are kept.
	steps := 1
	for w := cfg.Delay; w < cfg.MaxDelay && steps < LimiterMaxLockout; w *= 2 {
		steps++
	}
	l.slots = max(steps, cfg.Lockout)
	return l
}

// Config returns the policy in effect.
func (l *Limiter) Config() LimiterConfig { return l.cfg }

// Locked reports whether attempts from ip are refused, and until when. A
// nil Limiter locks nothing out.
func (l *Limiter) Locked(ip netip.Addr) (until time.Time, locked bool) {
	k, ok := netserve.ClientKey(ip)
	if l == nil || !ok {
		return time.Time{}, false
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := pruned(l.addrs, k, now, l.cfg.Window)
	if r == nil || !now.Before(r.lockedUntil) {
		return time.Time{}, false
	}
	return r.lockedUntil, true
}

// Delay returns how long to wait before answering an attempt from ip for
// identity ("" if not known yet). It records nothing.
func (l *Limiter) Delay(ip netip.Addr, identity string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int
	ak, aok := netserve.ClientKey(ip)
	if aok {
		if r := pruned(l.addrs, ak, now, l.cfg.Window); r != nil {
			n = len(r.recent)
		}
	}
	if ik, ok := identityKey(identity); ok && !(aok && l.isKnown(ak, ik, now)) {
		if r := pruned(l.ids, ik, now, l.cfg.Window); r != nil {
			n = max(n, len(r.recent))
		}
	}
	return l.backoff(n)
}

// Failure records a failed attempt from ip for identity. It reports whether
// this failure locked the address out.
func (l *Limiter) Failure(ip netip.Addr, identity string) (lockedOut bool) {
	now := l.now()
	ak, aok := netserve.ClientKey(ip)
	ik, iok := identityKey(identity)
	l.mu.Lock()
	defer l.mu.Unlock()
	if aok {
		r := pruned(l.addrs, ak, now, l.cfg.Window)
		switch {
		case r != nil && now.Before(r.lockedUntil):
			// An attempt that passed the check before the lockout began:
			// the lockout stands as it is.
		default:
			if r == nil {
				r = &record{}
				l.addrs.put(ak, r)
			}
			l.addrs.touch(ak)
			r.add(failure{at: now.UnixNano(), tag: tagOf(ik[:], iok)}, l.slots)
			if l.cfg.Lockout > 0 && len(r.recent) >= l.cfg.Lockout {
				// The address starts afresh when the lockout ends.
				r.lockedUntil = now.Add(l.cfg.Window)
				r.recent = nil
				lockedOut = true
			}
		}
	}
	if iok {
		r := pruned(l.ids, ik, now, l.cfg.Window)
		if r == nil {
			r = &record{}
			l.ids.put(ik, r)
		}
		l.ids.touch(ik)
		r.add(failure{at: now.UnixNano(), tag: addrTag(ak, aok)}, l.slots)
	}
	return lockedOut
}

// Success records a successful login from ip as identity: it forgives the
// failures between the two and remembers the address for the identity.
func (l *Limiter) Success(ip netip.Addr, identity string) {
	now := l.now()
	ak, aok := netserve.ClientKey(ip)
	ik, iok := identityKey(identity)
	l.mu.Lock()
	defer l.mu.Unlock()
	if aok {
		if r := pruned(l.addrs, ak, now, l.cfg.Window); r != nil {
			r.forgive(tagOf(ik[:], iok))
			dropIfEmpty(l.addrs, ak, r, now)
		}
	}
	if iok {
		if r := pruned(l.ids, ik, now, l.cfg.Window); r != nil {
			r.forgive(addrTag(ak, aok))
			dropIfEmpty(l.ids, ik, r, now)
		}
	}
	if aok && iok {
		l.known.put(knownKey(ak, ik), now)
	}
}

// pruned returns k's record with failures older than window dropped, or
// nil if nothing about k is left.
func pruned[K comparable](t *lru[K, *record], k K, now time.Time, window time.Duration) *record {
	r, ok := t.get(k)
	if !ok {
		return nil
	}
	cut := now.Add(-window).UnixNano()
	i := 0
	for i < len(r.recent) && r.recent[i].at <= cut {
		i++
	}
	r.recent = r.recent[i:]
	if dropIfEmpty(t, k, r, now) {
		return nil
	}
	return r
}

// dropIfEmpty removes a record that neither counts failures nor locks.
func dropIfEmpty[K comparable](t *lru[K, *record], k K, r *record, now time.Time) bool {
	if len(r.recent) == 0 && !now.Before(r.lockedUntil) {
		t.remove(k)
		return true
	}
	return false
}

// isKnown reports whether the address logged in as the identity lately.
func (l *Limiter) isKnown(ak netip.Prefix, ik [sha256.Size]byte, now time.Time) bool {
	k := knownKey(ak, ik)
	at, ok := l.known.get(k)
	if ok && now.Sub(at) >= LimiterRemember {
		l.known.remove(k)
		return false
	}
	return ok
}

// backoff is the wait after n failures: Delay*2^(n-1), capped.
func (l *Limiter) backoff(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := l.cfg.Delay
	for i := 1; i < n && d < l.cfg.MaxDelay; i++ {
		d *= 2
	}
	return min(d, l.cfg.MaxDelay)
}

// record is what a table keeps of one address or identity.
type record struct {
	recent      []failure // within the window, oldest first
	lockedUntil time.Time // addresses only
}

// failure is one failed attempt. tag identifies the other party (the
// identity in an address's record, the address in an identity's), so that
// Success can forgive exactly the failures between the two.
type failure struct {
	at  int64 // Unix nanoseconds
	tag uint32
}

// add appends f, dropping the oldest failure beyond slots.
func (r *record) add(f failure, slots int) {
	if len(r.recent) >= slots {
		r.recent = append(r.recent[:0], r.recent[len(r.recent)-slots+1:]...)
	}
	r.recent = append(r.recent, f)
}

// forgive drops the failures with tag.
func (r *record) forgive(tag uint32) {
	kept := r.recent[:0]
	for _, f := range r.recent {
		if f.tag != tag {
			kept = append(kept, f)
		}
	}
	r.recent = kept
}

// tagOf is a short hash of a key for failure.tag; 0 when there is no key.
// A collision only forgives a stranger's failure: harmless.
func tagOf(b []byte, ok bool) uint32 {
	if !ok {
		return 0
	}
	h := sha256.Sum256(b)
	return binary.BigEndian.Uint32(h[:4]) | 1
}

// addrTag is the failure.tag of an address key.
func addrTag(ak netip.Prefix, ok bool) uint32 {
	ab := ak.Addr().As16()
	return tagOf(append(ab[:], byte(ak.Bits())), ok)
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

// knownKey is the key of an (address, identity) pair.
func knownKey(ak netip.Prefix, ik [sha256.Size]byte) [sha256.Size]byte {
	ab := ak.Addr().As16()
	b := append(append(ab[:], byte(ak.Bits())), ik[:]...)
	return sha256.Sum256(b)
}

// lru is a map bounded to max entries that evicts the least recently
// touched one, in O(1).
type lru[K comparable, V any] struct {
	max     int
	entries map[K]*list.Element
	order   *list.List // of *lruEntry; front: most recent
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, entries: make(map[K]*list.Element), order: list.New()}
}

func (t *lru[K, V]) get(k K) (V, bool) {
	el, ok := t.entries[k]
	if !ok {
		var zero V
		return zero, false
	}
	return el.Value.(*lruEntry[K, V]).val, true
}

// put sets k's value and makes it the most recent.
func (t *lru[K, V]) put(k K, v V) {
	if el, ok := t.entries[k]; ok {
		el.Value.(*lruEntry[K, V]).val = v
		t.order.MoveToFront(el)
		return
	}
	t.entries[k] = t.order.PushFront(&lruEntry[K, V]{key: k, val: v})
	for t.order.Len() > t.max {
		oldest := t.order.Back()
		t.order.Remove(oldest)
		delete(t.entries, oldest.Value.(*lruEntry[K, V]).key)
	}
}

// touch makes k the most recent.
func (t *lru[K, V]) touch(k K) {
	if el, ok := t.entries[k]; ok {
		t.order.MoveToFront(el)
	}
}

func (t *lru[K, V]) remove(k K) {
	if el, ok := t.entries[k]; ok {
		t.order.Remove(el)
		delete(t.entries, k)
	}
}

func (t *lru[K, V]) len() int { return t.order.Len() }
