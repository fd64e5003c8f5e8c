package sasl

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"posthorn/protocol/fakeclock"
	"posthorn/protocol/netserve"
)

func newTestLimiter() (*Limiter, *fakeclock.Clock) {
	c := fakeclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	return NewLimiter(c.Now), c
}

var (
	ip1 = netip.MustParseAddr("192.0.2.1")
	ip2 = netip.MustParseAddr("192.0.2.2")
	lo  = netip.MustParseAddr("127.0.0.1")
)

func TestLimiterBackoff(t *testing.T) {
	cfg := DefaultLimiterConfig()
	cfg.Lockout = 0
	clock := fakeclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	l := NewLimiterWith(cfg, clock.Now)
	ms := time.Millisecond
	want := []time.Duration{0, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 12800 * ms, 15 * time.Second, 15 * time.Second}
	for i, w := range want {
		if got := l.Delay(lo, "user"); got != w {
			t.Fatalf("after %d failures: Delay = %v, want %v", i, got, w)
		}
		l.Failure(lo, "user")
		clock.Advance(time.Second)
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

func TestLimiterWindow(t *testing.T) {
	l, clock := newTestLimiter()
	l.Failure(ip1, "user")
	l.Failure(ip1, "user")
	clock.Advance(LimiterWindow - time.Second)
	if got := l.Delay(ip1, "user"); got != 400*time.Millisecond {
		t.Fatalf("within the window: %v", got)
	}
	l.Failure(ip1, "user")
	if got := l.Delay(ip1, "user"); got != 800*time.Millisecond {
		t.Fatalf("three within the window: %v", got)
	}
	// Failures age out one by one: the first two go, the third stays.
	clock.Advance(time.Second)
	if got := l.Delay(ip1, "user"); got != 200*time.Millisecond {
		t.Fatalf("after the first two aged out: %v", got)
	}
	clock.Advance(LimiterWindow - time.Second)
	if got := l.Delay(ip1, "user"); got != 0 {
		t.Fatalf("after all aged out: %v", got)
	}
	if n := l.addrs.len() + l.ids.len(); n != 0 {
		t.Fatalf("%d entries left, want 0", n)
	}
}

// TestLimiterStaleClient: a client retrying an old password every five
// minutes for a day (a phone after a password change, behind the office's
// NAT) keeps a small wait and never locks the address out, as a count
// reset only by a quiet period would.
func TestLimiterStaleClient(t *testing.T) {
	l, clock := newTestLimiter()
	for i := range 24 * 12 {
		if _, locked := l.Locked(ip1); locked {
			t.Fatalf("locked out after %d failures five minutes apart", i)
		}
		if got := l.Delay(ip1, "phone"); got > 800*time.Millisecond {
			t.Fatalf("after %d failures five minutes apart: Delay = %v", i, got)
		}
		l.Failure(ip1, "phone")
		clock.Advance(5 * time.Minute)
	}
}

func TestLimiterLockout(t *testing.T) {
	l, clock := newTestLimiter()
	start := clock.Now()
	for i := range LimiterLockout {
		if _, locked := l.Locked(ip1); locked {
			t.Fatalf("locked after %d failures", i)
		}
		// Different identities: the address is what is locked.
		if got := l.Failure(ip1, fmt.Sprintf("user%d", i)); got != (i == LimiterLockout-1) {
			t.Fatalf("failure %d: Failure = %v", i+1, got)
		}
		clock.Advance(time.Second)
	}
	until, locked := l.Locked(ip1)
	if want := start.Add(time.Duration(LimiterLockout-1) * time.Second).Add(LimiterWindow); !locked || !until.Equal(want) {
		t.Fatalf("Locked = %v, %v; want true, %v", until, locked, want)
	}
	if _, locked := l.Locked(ip2); locked {
		t.Fatal("another address is locked too")
	}
	// Identities are never locked, and another address logs in freely
	// as one the locked address tried.
	if got := l.Delay(ip2, "user0"); got != 200*time.Millisecond {
		t.Fatalf("identity tried once from the locked address: %v", got)
	}
	// Failures that were in flight at the lockout do not extend it.
	clock.Advance(LimiterWindow / 2)
	if l.Failure(ip1, "late") {
		t.Fatal("a failure during the lockout locked again")
	}
	clock.Advance(LimiterWindow / 2)
	if _, locked := l.Locked(ip1); locked {
		t.Fatal("still locked after the window")
	}
	// The address starts afresh.
	if got := l.Delay(ip1, ""); got != 0 {
		t.Fatalf("Delay after the lockout = %v", got)
	}
	if l.Failure(ip1, "again") {
		t.Fatal("one failure after the lockout locked again")
	}
}

func TestLimiterLockoutOff(t *testing.T) {
	cfg := DefaultLimiterConfig()
	cfg.Lockout = 0
	l := NewLimiterWith(cfg, nil)
	for range 1000 {
		if l.Failure(ip1, "user") {
			t.Fatal("locked out with Lockout 0")
		}
	}
	if _, locked := l.Locked(ip1); locked {
		t.Fatal("Locked with Lockout 0")
	}
	if got := l.Delay(ip1, ""); got != LimiterMax {
		t.Fatalf("Delay = %v", got)
	}
	// The record keeps only as many failures as reach the cap.
	k, _ := netserve.ClientKey(ip1)
	r, _ := l.addrs.get(k)
	if len(r.recent) != l.slots || l.slots != 8 {
		t.Fatalf("record holds %d failures, slots %d; want 8", len(r.recent), l.slots)
	}
}

func TestLimiterConfig(t *testing.T) {
	l := NewLimiterWith(LimiterConfig{Delay: time.Second, MaxDelay: time.Millisecond, Lockout: 1000}, nil)
	want := LimiterConfig{Delay: time.Second, MaxDelay: time.Second, Window: LimiterWindow, Lockout: LimiterMaxLockout}
	if got := l.Config(); got != want {
		t.Fatalf("Config = %+v, want %+v", got, want)
	}
	if l.slots != LimiterMaxLockout {
		t.Fatalf("slots = %d", l.slots)
	}
	if got := NewLimiterWith(LimiterConfig{}, nil).Config(); got != (LimiterConfig{Delay: LimiterBase, MaxDelay: LimiterMax, Window: LimiterWindow}) {
		t.Fatalf("zero config: %+v", got)
	}
}

func TestLimiterSuccess(t *testing.T) {
	l, _ := newTestLimiter()
	l.Failure(ip1, "user")
	l.Failure(ip1, "user")
	l.Failure(ip1, "other")
	l.Failure(ip2, "user")
	l.Success(ip1, "USER")
	// The address keeps its failure for another identity.
	if got := l.Delay(ip1, ""); got != 200*time.Millisecond {
		t.Errorf("address after success: %v", got)
	}
	if got := l.Delay(ip2, ""); got != 200*time.Millisecond {
		t.Errorf("other address after success: %v", got) // ip2's own record stays
	}
	// The identity keeps its failure from ip2.
	if got := l.Delay(netip.MustParseAddr("198.51.100.1"), "user"); got != 200*time.Millisecond {
		t.Errorf("identity after success: %v", got)
	}
	if got := l.Delay(netip.MustParseAddr("198.51.100.1"), "other"); got != 200*time.Millisecond {
		t.Errorf("other identity after success: %v", got)
	}
}

// TestLimiterSuccessDoesNotLaunder: logging in to one's own account between
// guesses at others does not clear the address's record.
func TestLimiterSuccessDoesNotLaunder(t *testing.T) {
	l, _ := newTestLimiter()
	for i := range LimiterLockout - 1 {
		l.Failure(ip1, fmt.Sprintf("victim%d", i))
		l.Success(ip1, "attacker")
	}
	if !l.Failure(ip1, "victim") {
		t.Fatal("the lockout-th failure did not lock the address")
	}
}

// TestLimiterKnownAddress: guessing at a user's password from elsewhere
// does not slow the user down where the user has logged in before.
func TestLimiterKnownAddress(t *testing.T) {
	l, clock := newTestLimiter()
	home, attacker, travel := ip1, ip2, netip.MustParseAddr("198.51.100.1")
	l.Success(home, "victim")
	for range 5 {
		l.Failure(attacker, "Victim")
	}
	if got := l.Delay(home, "victim"); got != 0 {
		t.Errorf("from a known address: %v", got)
	}
	if got := l.Delay(travel, "victim"); got != 3200*time.Millisecond {
		t.Errorf("from an unknown address: %v", got)
	}
	// Known for LimiterRemember after the last login.
	clock.Advance(LimiterWindow - time.Minute)
	l.Success(home, "victim")
	clock.Advance(LimiterRemember - time.Minute)
	for range 5 {
		l.Failure(attacker, "victim")
	}
	if got := l.Delay(home, "victim"); got != 0 {
		t.Errorf("known address, within LimiterRemember: %v", got)
	}
	clock.Advance(time.Minute)
	if got := l.Delay(home, "victim"); got != 3200*time.Millisecond {
		t.Errorf("known address, after LimiterRemember: %v", got)
	}
}

func TestLimiterBounded(t *testing.T) {
	l, clock := newTestLimiter()
	first := netip.MustParseAddr("10.0.0.0")
	addr := first
	for i := range LimiterMaxEntries + 100 {
		l.Failure(addr, fmt.Sprintf("user%d", i))
		addr = addr.Next()
		clock.Advance(time.Millisecond)
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
	l.addrs = newLRU[netip.Prefix, *record](2)
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

// The servers ask a Limiter they may not have: a nil one locks nobody out.
func TestNilLimiterLocksNothing(t *testing.T) {
	var l *Limiter
	if _, locked := l.Locked(netip.MustParseAddr("192.0.2.1")); locked {
		t.Error("a nil Limiter locked an address out")
	}
}
