package sasl

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for Limiter tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestLimiter() (*Limiter, *fakeClock) {
	c := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	return NewLimiter(c.now), c
}

var (
	ip1 = netip.MustParseAddr("192.0.2.1")
	ip2 = netip.MustParseAddr("192.0.2.2")
	lo  = netip.MustParseAddr("127.0.0.1")
)

func TestLimiterBackoff(t *testing.T) {
	l, clock := newTestLimiter()
	ms := time.Millisecond
	want := []time.Duration{0, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 12800 * ms, 15 * time.Second, 15 * time.Second}
	for i, w := range want {
		if got := l.Delay(lo, "user"); got != w {
			t.Fatalf("after %d failures: Delay = %v, want %v", i, got, w)
		}
		l.Failure(lo, "user")
		clock.advance(time.Second)
	}
	// Many more failures stay at the cap.
	for range 200 {
		l.Failure(lo, "user")
	}
	if got := l.Delay(lo, "user"); got != LimiterMax {
		t.Fatalf("after 210 failures: Delay = %v", got)
	}
}

func TestLimiterPerAddressAndIdentity(t *testing.T) {
	l, _ := newTestLimiter()
	// Three identities from one address: the address is slowed.
	for _, id := range []string{"a", "b", "c"} {
		l.Failure(ip1, id)
	}
	if got := l.Delay(ip1, "d"); got != 800*time.Millisecond {
		t.Errorf("address after 3 failures: %v", got)
	}
	if got := l.Delay(ip2, "d"); got != 0 {
		t.Errorf("other address, other identity: %v", got)
	}
	// The identity is slowed from any address, case-insensitively.
	l.Failure(ip2, "Victim")
	l.Failure(netip.MustParseAddr("198.51.100.7"), "victim")
	if got := l.Delay(netip.MustParseAddr("203.0.113.9"), "VICTIM"); got != 400*time.Millisecond {
		t.Errorf("identity after 2 failures: %v", got)
	}
	// The larger of the two applies.
	if got := l.Delay(ip1, "victim"); got != 800*time.Millisecond {
		t.Errorf("max of address and identity: %v", got)
	}
	// Before the identity is known only the address counts.
	if got := l.Delay(ip2, ""); got != 200*time.Millisecond {
		t.Errorf("address only: %v", got)
	}
}

func TestLimiterAddressKeys(t *testing.T) {
	l, _ := newTestLimiter()
	l.Failure(netip.MustParseAddr("2001:db8:1:2::1"), "")
	for addr, want := range map[string]time.Duration{
		"2001:db8:1:2::ffff":   200 * time.Millisecond, // same /64
		"2001:db8:1:2:aaaa::1": 200 * time.Millisecond,
		"2001:db8:1:3::1":      0, // next /64
		"fe80::1%eth0":         0,
		"2001:db8:1:2::1%eth0": 200 * time.Millisecond, // zone ignored
		"::ffff:192.0.2.1":     0,
		"192.0.2.1":            0,
	} {
		if got := l.Delay(netip.MustParseAddr(addr), ""); got != want {
			t.Errorf("Delay(%s) = %v, want %v", addr, got, want)
		}
	}
	l.Failure(netip.MustParseAddr("::ffff:192.0.2.1"), "")
	if got := l.Delay(ip1, ""); got != 200*time.Millisecond {
		t.Errorf("IPv4-mapped and IPv4 differ: %v", got)
	}
	if got := l.Delay(ip2, ""); got != 0 {
		t.Errorf("neighbouring IPv4 address slowed: %v", got)
	}
	// An invalid address and an empty identity record nothing.
	l.Failure(netip.Addr{}, "")
	if got := l.Delay(netip.Addr{}, ""); got != 0 {
		t.Errorf("zero Addr: %v", got)
	}
}

func TestLimiterForget(t *testing.T) {
	l, clock := newTestLimiter()
	l.Failure(ip1, "user")
	l.Failure(ip1, "user")
	clock.advance(LimiterForget - time.Second)
	if got := l.Delay(ip1, "user"); got != 400*time.Millisecond {
		t.Fatalf("before the quiet period ends: %v", got)
	}
	// A failure restarts the quiet period and counts on.
	l.Failure(ip1, "user")
	clock.advance(LimiterForget - time.Second)
	if got := l.Delay(ip1, "user"); got != 800*time.Millisecond {
		t.Fatalf("count after a failure within the period: %v", got)
	}
	clock.advance(time.Second)
	if got := l.Delay(ip1, "user"); got != 0 {
		t.Fatalf("after the quiet period: %v", got)
	}
	// Counting starts over.
	l.Failure(ip1, "user")
	if got := l.Delay(ip1, "user"); got != 200*time.Millisecond {
		t.Fatalf("first failure after forgetting: %v", got)
	}
	if n := l.addrs.len() + l.ids.len(); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
}

func TestLimiterForgetOnFailure(t *testing.T) {
	l, clock := newTestLimiter()
	for range 5 {
		l.Failure(ip1, "user")
	}
	clock.advance(LimiterForget)
	l.Failure(ip1, "user") // stale record: starts over, not 6
	if got := l.Delay(ip1, "user"); got != 200*time.Millisecond {
		t.Fatalf("Delay = %v", got)
	}
}

func TestLimiterSuccess(t *testing.T) {
	l, _ := newTestLimiter()
	l.Failure(ip1, "user")
	l.Failure(ip1, "other")
	l.Failure(ip2, "user")
	l.Success(ip1, "USER")
	if got := l.Delay(ip1, ""); got != 0 {
		t.Errorf("address after success: %v", got)
	}
	if got := l.Delay(ip2, "user"); got != 200*time.Millisecond {
		t.Errorf("other address after success: %v", got) // ip2's own record stays
	}
	if got := l.Delay(netip.MustParseAddr("198.51.100.1"), "user"); got != 0 {
		t.Errorf("identity after success: %v", got)
	}
	if got := l.Delay(netip.MustParseAddr("198.51.100.1"), "other"); got != 200*time.Millisecond {
		t.Errorf("other identity after success: %v", got)
	}
}

func TestLimiterBounded(t *testing.T) {
	l, clock := newTestLimiter()
	first := netip.MustParseAddr("10.0.0.0")
	addr := first
	for i := range LimiterMaxEntries + 100 {
		l.Failure(addr, fmt.Sprintf("user%d", i))
		addr = addr.Next()
		clock.advance(time.Millisecond)
	}
	if l.addrs.len() != LimiterMaxEntries || len(l.addrs.entries) != LimiterMaxEntries ||
		l.ids.len() != LimiterMaxEntries || len(l.ids.entries) != LimiterMaxEntries {
		t.Fatalf("tables hold %d/%d addresses, %d/%d identities; cap %d",
			l.addrs.len(), len(l.addrs.entries), l.ids.len(), len(l.ids.entries), LimiterMaxEntries)
	}
	// The oldest went first; the newest are kept.
	if got := l.Delay(first, ""); got != 0 {
		t.Errorf("oldest address kept: %v", got)
	}
	if got := l.Delay(addr.Prev(), ""); got != 200*time.Millisecond {
		t.Errorf("newest address evicted: %v", got)
	}
	if got := l.Delay(netip.Addr{}, fmt.Sprintf("user%d", LimiterMaxEntries+99)); got != 200*time.Millisecond {
		t.Errorf("newest identity evicted: %v", got)
	}
}

// TestLimiterEvictsLeastRecentlyFailed: a repeat failure moves an entry to
// the front, so it outlives newer one-off entries.
func TestLimiterEvictsLeastRecentlyFailed(t *testing.T) {
	l, _ := newTestLimiter()
	l.addrs = newFailureTable[netip.Prefix](2)
	a, b, c := ip1, ip2, netip.MustParseAddr("192.0.2.3")
	l.Failure(a, "")
	l.Failure(b, "")
	l.Failure(a, "") // a is now the most recent
	l.Failure(c, "") // evicts b
	if l.Delay(a, "") != 400*time.Millisecond || l.Delay(b, "") != 0 || l.Delay(c, "") != 200*time.Millisecond {
		t.Errorf("delays a=%v b=%v c=%v", l.Delay(a, ""), l.Delay(b, ""), l.Delay(c, ""))
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := NewLimiter(nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(g)})
			for i := range 200 {
				id := fmt.Sprintf("u%d", i%7)
				l.Delay(ip, id)
				if i%5 == 0 {
					l.Success(ip, id)
				} else {
					l.Failure(ip, id)
				}
			}
		}()
	}
	wg.Wait()
}
