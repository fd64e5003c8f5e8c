package netserve

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// RateLimiterEntries bounds the addresses a RateLimiter keeps; the least
// recently seen is forgotten first (which only gives it a full bucket).
const RateLimiterEntries = 10000

// IPv6Prefix is the prefix length an IPv6 client is counted by, for the
// per-address caps and rates: one host commonly holds a whole /64 (RFC
// 7421), and counting single addresses would let it rotate through them.
const IPv6Prefix = 64

// RateLimiter limits how often one client address may open a connection,
// as Postfix's smtpd_client_connection_rate_limit (max_connection_rate_per_ip).
// Each address has a token bucket that holds PerMinute tokens and refills
// at PerMinute a minute: a client may open PerMinute connections at once,
// then one every 60s/PerMinute. A connection refused by a cap or by the
// rate takes no token. (The bucket is kept as GCRA's theoretical arrival
// time, in integer time: no rounding.)
//
// One RateLimiter is meant to be shared by every Server of the process, so
// that a client cannot spread its connections over the services to escape
// it. Loopback and private addresses are treated like any other. A nil
// *RateLimiter allows everything. Safe for concurrent use.
type RateLimiter struct {
	perMinute int
	interval  time.Duration // between tokens: a minute / perMinute
	burst     time.Duration // (perMinute-1) intervals
	max       int
	now       func() time.Time

	mu      sync.Mutex
	buckets map[netip.Prefix]*list.Element
	order   *list.List // of *bucket; front: most recently seen
}

// bucket is one address's state: tat is when its bucket will be full again
// (GCRA's theoretical arrival time); each connection moves it one interval
// on, and a connection is refused while tat is more than a full bucket's
// worth of intervals ahead.
type bucket struct {
	key netip.Prefix
	tat time.Time
}

// NewRateLimiter returns a RateLimiter that allows perMinute connections a
// minute per address, reading the time from now (time.Now if nil). It
// returns nil (no limit) if perMinute is not positive.
func NewRateLimiter(perMinute int, now func() time.Time) *RateLimiter {
	if perMinute <= 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &RateLimiter{
		perMinute: perMinute,
		interval:  time.Minute / time.Duration(perMinute),
		burst:     time.Duration(perMinute-1) * (time.Minute / time.Duration(perMinute)),
		max:       RateLimiterEntries,
		now:       now,
		buckets:   make(map[netip.Prefix]*list.Element),
		order:     list.New(),
	}
}

// Allow takes a token for a connection from ip and reports whether there
// was one.
func (r *RateLimiter) Allow(ip netip.Addr) bool {
	if r == nil {
		return true
	}
	k, ok := ClientKey(ip)
	if !ok {
		return true
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	el, ok := r.buckets[k]
	if !ok {
		r.buckets[k] = r.order.PushFront(&bucket{key: k, tat: now.Add(r.interval)})
		for r.order.Len() > r.max {
			oldest := r.order.Back()
			r.order.Remove(oldest)
			delete(r.buckets, oldest.Value.(*bucket).key)
		}
		return true
	}
	r.order.MoveToFront(el)
	b := el.Value.(*bucket)
	tat := b.tat
	if tat.Before(now) {
		tat = now // a full bucket holds no more
	}
	if tat.Sub(now) > r.burst {
		return false
	}
	b.tat = tat.Add(r.interval)
	return true
}

// ClientKey is what the per-address limits count a client by: the address
// for IPv4 (IPv4-mapped IPv6 included), its /64 for IPv6 (IPv6Prefix).
// It reports false for an invalid address.
func ClientKey(ip netip.Addr) (netip.Prefix, bool) {
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
