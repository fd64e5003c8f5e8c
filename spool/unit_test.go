package spool

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const m, M = 5 * time.Minute, time.Hour
	for _, tc := range []struct {
		attempts int
		want     time.Duration
	}{
		{0, 5 * time.Minute},
		{1, 5 * time.Minute},
		{2, 10 * time.Minute},
		{3, 20 * time.Minute},
		{4, 40 * time.Minute},
		{5, time.Hour},
		{6, time.Hour},
		{100, time.Hour}, // no overflow
	} {
		if got := backoff(tc.attempts, m, M); got != tc.want {
			t.Errorf("backoff(%d) = %v, want %v", tc.attempts, got, tc.want)
		}
	}
	if got := backoff(3, time.Hour, time.Hour); got != time.Hour {
		t.Errorf("min = max: %v", got)
	}
}

func TestJitter(t *testing.T) {
	for _, tc := range []struct {
		u    float64
		want time.Duration
	}{
		{0, 90 * time.Second},
		{0.5, 100 * time.Second},
		{0.999999, 110 * time.Second},
	} {
		got := withJitter(100*time.Second, tc.u)
		if d := got - tc.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("withJitter(100s, %v) = %v, want %v", tc.u, got, tc.want)
		}
	}
}

func TestNextAttempt(t *testing.T) {
	s := &Spool{opts: Options{RetryMin: 5 * time.Minute, RetryMax: time.Hour,
		DelayWarning: 4 * time.Hour, MaxLifetime: 5 * 24 * time.Hour}}
	rnd := rand.New(rand.NewPCG(7, 7))
	arrival := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		age      time.Duration
		attempts int
		warn     bool
		lo, hi   time.Duration // of next - now
	}{
		{"first retry", time.Minute, 1, true, 270 * time.Second, 330 * time.Second},
		{"third retry", time.Hour, 3, true, 18 * time.Minute, 22 * time.Minute},
		{"capped", 2 * time.Hour, 10, false, 54 * time.Minute, 66 * time.Minute},
		{"stops at the delay warning", 4*time.Hour - 10*time.Minute, 10, true, 10 * time.Minute, 10 * time.Minute},
		{"warning sent: no stop", 4*time.Hour - 10*time.Minute, 10, false, 54 * time.Minute, 66 * time.Minute},
		{"stops at expiry", 5*24*time.Hour - time.Minute, 30, false, time.Minute, time.Minute},
	} {
		now := arrival.Add(tc.age)
		got := s.nextAttempt(now, arrival, tc.attempts, tc.warn, rnd.Float64()).Sub(now)
		if got < tc.lo || got > tc.hi {
			t.Errorf("%s: next in %v, want [%v, %v]", tc.name, got, tc.lo, tc.hi)
		}
	}
}

func TestStatusCode(t *testing.T) {
	for _, tc := range []struct {
		res   *result
		class byte
		want  string
	}{
		{&result{Code: 550, Enhanced: "5.1.1"}, '5', "5.1.1"},
		{&result{Code: 550}, '5', "5.0.0"},
		{&result{Code: 451, Enhanced: "4.2.0"}, '4', "4.2.0"},
		{&result{Code: 554, Enhanced: "5.7.1"}, '4', "4.7.1"}, // a refused greeting defers
		{&result{Code: 250, Enhanced: "2.0.0"}, '2', "2.0.0"},
		{&result{Code: 250}, '2', "2.0.0"},
		{&result{Enhanced: "4.4.1"}, '5', "5.4.1"},
		{&result{Enhanced: "5.1.10"}, '5', "5.1.10"},
		{nil, '4', "4.0.0"},
	} {
		if got := statusCode(tc.res, tc.class); got != tc.want {
			t.Errorf("statusCode(%+v, %c) = %q, want %q", tc.res, tc.class, got, tc.want)
		}
	}
}

func TestWantsNotice(t *testing.T) {
	for _, tc := range []struct {
		notify  []string
		keyword string
		want    bool
	}{
		{nil, "FAILURE", true},
		{nil, "DELAY", true},
		{nil, "SUCCESS", false},
		{[]string{"NEVER"}, "FAILURE", false},
		{[]string{"NEVER"}, "DELAY", false},
		{[]string{"SUCCESS"}, "SUCCESS", true},
		{[]string{"SUCCESS"}, "FAILURE", false},
		{[]string{"FAILURE"}, "DELAY", false},
	} {
		if got := wantsNotice(tc.notify, tc.keyword); got != tc.want {
			t.Errorf("wantsNotice(%v, %s) = %v", tc.notify, tc.keyword, got)
		}
	}
}

func TestKeys(t *testing.T) {
	k := rcptKey{"0ABCDEF123456", 70000}
	got, ok := parseRcptKey(k.bytes())
	if !ok || got != k {
		t.Fatalf("rcpt key round trip: %v %v", got, ok)
	}
	when := time.Unix(1700000000, 123456789)
	tm, got, ok := parseScheduleKey(scheduleKey(when, k))
	if !ok || got != k || !tm.Equal(when) {
		t.Fatalf("schedule key round trip: %v %v %v", tm, got, ok)
	}
	// Keys sort by time first.
	a, b := scheduleKey(when, rcptKey{"Z", 0}), scheduleKey(when.Add(time.Nanosecond), rcptKey{"A", 0})
	if string(a) >= string(b) {
		t.Error("schedule keys do not sort by time")
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"0ABCDEF123456": true, "a.b-c_d": true, "": false, "a b": false,
		"a\x00b": false, "a/b": false, string(make([]byte, 65)): false,
	} {
		if validID(id) != want {
			t.Errorf("validID(%q) != %v", id, want)
		}
	}
}

func TestRouteDomain(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM.":         "example.com",
		"[192.0.2.1]":          "[192.0.2.1]",
		"bücher.example":       "xn--bcher-kva.example",
		"MÜNCHEN.de":           "xn--mnchen-3ya.de",
		"例え.テスト":               "xn--r8jz45g.xn--zckzah",
		"ليهمابتكلموشعربي؟.eg": "xn--egbpdaj6bu4bxfgehfvwxn.eg",
	} {
		if got := routeDomain(in); got != want {
			t.Errorf("routeDomain(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"[192.0.2.1]":        "192.0.2.1",
		"[IPv6:2001:db8::1]": "2001:db8::1",
		"[ipv6:::1]":         "::1",
		"[2001:db8::1]":      "",
		"[IPv6:192.0.2.1]":   "",
		"[999.1.1.1]":        "",
		"[tag:stuff]":        "",
	} {
		a, ok := parseLiteral(in)
		if (want == "") == ok || (ok && a != netip.MustParseAddr(want)) {
			t.Errorf("parseLiteral(%q) = %v, %v; want %q", in, a, ok, want)
		}
	}
}
