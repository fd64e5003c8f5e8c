package dnsmx

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"posthorn/dnsmx/dnstest"
)

// reverse is a deterministic Shuffle: each run of equal preference is
// reversed, so a test can tell that runs, and only runs, were shuffled.
func reverse(n int, swap func(i, j int)) {
	for i := range n / 2 {
		swap(i, n-1-i)
	}
}

// routeString renders a route as "pref name addr,addr; ..." for comparison.
func routeString(r Route) string {
	var parts []string
	for _, h := range r.Hosts {
		var addrs []string
		for _, a := range h.Addrs {
			addrs = append(addrs, a.String())
		}
		parts = append(parts, fmt.Sprintf("%d %s %s", h.Preference, h.Name, strings.Join(addrs, ",")))
	}
	s := strings.Join(parts, "; ")
	if r.Implicit {
		s = "implicit: " + s
	}
	return s
}

// wantRouteError checks that err is a *RouteError with the given class.
func wantRouteError(t *testing.T, err error, permanent bool, enhanced string, cause error) {
	t.Helper()
	var re *RouteError
	if !errors.As(err, &re) {
		t.Fatalf("got %v (%T), want *RouteError", err, err)
	}
	if re.Permanent != permanent || re.Enhanced != enhanced || !errors.Is(err, cause) {
		t.Errorf("got permanent=%v enhanced=%s err=%v; want %v %s %v", re.Permanent, re.Enhanced, err, permanent, enhanced, cause)
	}
	if strings.Contains(re.Msg, "127.0.0.1") {
		t.Errorf("Msg %q names the resolver", re.Msg)
	}
}

func TestRouteOrderAndShuffle(t *testing.T) {
	srv := dnstest.New(t)
	srv.Set("a.test", dns.TypeMX,
		dnstest.MX(20, "c.a.test"), dnstest.MX(10, "a.a.test"), dnstest.MX(10, "b.a.test"),
		dnstest.MX(30, "d.a.test"), dnstest.MX(20, "e.a.test"))
	for i, h := range []string{"a", "b", "c", "d", "e"} {
		srv.SetAddrs(h+".a.test", fmt.Sprintf("127.0.0.%d", i+2))
	}
	var runs []int
	opts := RouteOptions{Shuffle: func(n int, swap func(i, j int)) {
		runs = append(runs, n)
		reverse(n, swap)
	}}
	route, err := LookupRoute(t.Context(), newResolver(srv), "a.test", opts)
	if err != nil {
		t.Fatal(err)
	}
	// Sorted by preference, answer order kept, then each run reversed.
	want := "10 b.a.test 127.0.0.3; 10 a.a.test 127.0.0.2; 20 e.a.test 127.0.0.6; 20 c.a.test 127.0.0.4; 30 d.a.test 127.0.0.5"
	if got := routeString(route); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if !slices.Equal(runs, []int{2, 2}) {
		t.Errorf("shuffled runs %v, want [2 2]", runs)
	}
}

func TestRouteDefaultShuffleRandomizes(t *testing.T) {
	srv := dnstest.New(t)
	srv.Set("a.test", dns.TypeMX, dnstest.MX(10, "x.a.test"), dnstest.MX(10, "y.a.test"))
	srv.SetAddrs("x.a.test", "127.0.0.2")
	srv.SetAddrs("y.a.test", "127.0.0.3")
	r := newResolver(srv)
	firsts := map[string]int{}
	for range 40 { // both orders fail to appear with probability 2^-39
		route, err := LookupRoute(t.Context(), r, "a.test", RouteOptions{})
		if err != nil || len(route.Hosts) != 2 {
			t.Fatalf("got %s, %v", routeString(route), err)
		}
		firsts[route.Hosts[0].Name]++
	}
	if len(firsts) != 2 {
		t.Errorf("first hosts %v: equal preferences not shuffled", firsts)
	}
}

func TestRouteImplicitMX(t *testing.T) {
	srv := dnstest.New(t)
	srv.SetAddrs("a.test", "127.0.0.2", "2001:db8::2") // no MX: NODATA
	srv.Set("empty.test", dns.TypeTXT)                 // exists, nothing useful
	srv.SetRcode("tmp.test", dns.RcodeServerFailure)
	r := newResolver(srv)

	route, err := LookupRoute(t.Context(), r, "A.Test.", RouteOptions{})
	if want := "implicit: 0 a.test 127.0.0.2,2001:db8::2"; err != nil || routeString(route) != want {
		t.Errorf("got %q, %v; want %q", routeString(route), err, want)
	}
	_, err = LookupRoute(t.Context(), r, "empty.test", RouteOptions{})
	wantRouteError(t, err, true, "5.1.2", ErrNoRecords)
}

func TestRouteNullMX(t *testing.T) {
	srv := dnstest.New(t)
	srv.Set("null.test", dns.TypeMX, dnstest.MX(0, "."))
	srv.SetAddrs("null.test", "127.0.0.2") // must not be used (RFC 5321 5.1)
	srv.Set("mixed.test", dns.TypeMX, dnstest.MX(0, "."), dnstest.MX(10, "mx.mixed.test"))
	srv.SetAddrs("mx.mixed.test", "127.0.0.3")
	r := newResolver(srv)

	_, err := LookupRoute(t.Context(), r, "null.test", RouteOptions{})
	wantRouteError(t, err, true, "5.1.10", ErrNullMX)
	// RFC 7505 4.1: no address lookups, no connection.
	if q := srv.Queries(); len(q) != 1 || q[0].Type != dns.TypeMX {
		t.Errorf("queries %+v, want only the MX query", q)
	}

	route, err := LookupRoute(t.Context(), r, "mixed.test", RouteOptions{})
	if want := "10 mx.mixed.test 127.0.0.3"; err != nil || routeString(route) != want {
		t.Errorf("mixed: got %q, %v; want %q", routeString(route), err, want)
	}
}

func TestRouteDNSFailures(t *testing.T) {
	srv := dnstest.New(t)
	srv.SetRcode("servfail.test", dns.RcodeServerFailure)
	srv.Drop("slow.test")
	srv.Set("tmpaddr.test", dns.TypeMX, dnstest.MX(10, "mx.tmpaddr.test"))
	srv.SetRcode("mx.tmpaddr.test", dns.RcodeServerFailure)
	srv.SetAddrs("noaddr.test") // NODATA for A, AAAA and MX
	r := NewResolver([]string{srv.Addr()}, 50*time.Millisecond)

	tests := []struct {
		domain    string
		permanent bool
		enhanced  string
		cause     error
	}{
		{"nx.test", true, "5.1.2", ErrNXDomain},
		{"servfail.test", false, "4.4.3", ErrTemporary},
		{"slow.test", false, "4.4.3", ErrTemporary},
		{"tmpaddr.test", false, "4.4.3", ErrTemporary},
		{"noaddr.test", true, "5.1.2", ErrNoRecords},
		{"[127.0.0.2]", true, "5.1.2", ErrNXDomain},
		{"bücher.test", true, "5.1.2", ErrNXDomain},
		{"-bad.test", true, "5.1.2", ErrNXDomain},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			_, err := LookupRoute(t.Context(), r, tt.domain, RouteOptions{})
			wantRouteError(t, err, tt.permanent, tt.enhanced, tt.cause)
		})
	}
	for _, q := range srv.Queries() {
		if strings.ContainsAny(q.Name, "[ü") || strings.HasPrefix(q.Name, "-") {
			t.Errorf("invalid domain was queried: %q", q.Name)
		}
	}
}

func TestRouteMXHostFailures(t *testing.T) {
	srv := dnstest.New(t)
	// One MX host does not exist, one has no address, one resolves.
	srv.Set("some.test", dns.TypeMX, dnstest.MX(10, "gone.some.test"), dnstest.MX(20, "empty.some.test"), dnstest.MX(30, "ok.some.test"))
	srv.SetAddrs("empty.some.test")
	srv.SetAddrs("ok.some.test", "127.0.0.2")
	// No MX host resolves, permanently.
	srv.Set("none.test", dns.TypeMX, dnstest.MX(10, "gone.none.test"), dnstest.MX(20, "empty.some.test"))
	// One fails permanently and one temporarily: retry later.
	srv.Set("mixed.test", dns.TypeMX, dnstest.MX(10, "gone.none.test"), dnstest.MX(20, "tmp.mixed.test"))
	srv.SetRcode("tmp.mixed.test", dns.RcodeServerFailure)
	// Only unusable addresses and an invalid exchange name.
	srv.Set("junk.test", dns.TypeMX, dnstest.MX(10, "zero.junk.test"), dnstest.MX(20, "bad_name.junk.test"))
	srv.SetAddrs("zero.junk.test", "0.0.0.0", "::", "224.0.0.1")
	r := newResolver(srv)

	route, err := LookupRoute(t.Context(), r, "some.test", RouteOptions{})
	if want := "30 ok.some.test 127.0.0.2"; err != nil || routeString(route) != want {
		t.Errorf("some: got %q, %v; want %q", routeString(route), err, want)
	}
	_, err = LookupRoute(t.Context(), r, "none.test", RouteOptions{})
	wantRouteError(t, err, true, "5.4.4", ErrNXDomain)
	_, err = LookupRoute(t.Context(), r, "mixed.test", RouteOptions{})
	wantRouteError(t, err, false, "4.4.3", ErrTemporary)
	_, err = LookupRoute(t.Context(), r, "junk.test", RouteOptions{})
	wantRouteError(t, err, true, "5.4.4", ErrNoRecords)
	if n := srv.Count("bad_name.junk.test", dns.TypeA, ""); n != 0 {
		t.Errorf("invalid exchange name queried %d times", n)
	}
}

func TestRouteCNAMEs(t *testing.T) {
	srv := dnstest.New(t)
	srv.SetCNAMEOnly(true) // make the resolver chase each step itself
	// The domain is an alias: its target's MX records apply (RFC 5321 5.1).
	srv.Set("alias.test", dns.TypeCNAME, dnstest.CNAME("real.test"))
	srv.Set("real.test", dns.TypeMX, dnstest.MX(10, "mx.real.test"))
	// The MX target is an alias too (RFC 2181 10.3 forbids it; it works).
	srv.Set("mx.real.test", dns.TypeCNAME, dnstest.CNAME("host.real.test"))
	srv.SetAddrs("host.real.test", "127.0.0.2")
	// An alias with no MX at its target: implicit MX via the chain.
	srv.Set("web.test", dns.TypeCNAME, dnstest.CNAME("host.real.test"))
	r := newResolver(srv)

	route, err := LookupRoute(t.Context(), r, "alias.test", RouteOptions{})
	if want := "10 mx.real.test 127.0.0.2"; err != nil || routeString(route) != want {
		t.Errorf("alias: got %q, %v; want %q", routeString(route), err, want)
	}
	route, err = LookupRoute(t.Context(), r, "web.test", RouteOptions{})
	if want := "implicit: 0 web.test 127.0.0.2"; err != nil || routeString(route) != want {
		t.Errorf("web: got %q, %v; want %q", routeString(route), err, want)
	}
}

func TestRouteTruncatedOverTCP(t *testing.T) {
	srv := dnstest.New(t)
	srv.SetTruncate("a.test")
	srv.SetTruncate("mx.a.test")
	srv.Set("a.test", dns.TypeMX, dnstest.MX(10, "mx.a.test"))
	srv.SetAddrs("mx.a.test", "127.0.0.2")
	route, err := LookupRoute(t.Context(), newResolver(srv), "a.test", RouteOptions{})
	if want := "10 mx.a.test 127.0.0.2"; err != nil || routeString(route) != want {
		t.Fatalf("got %q, %v; want %q", routeString(route), err, want)
	}
	for _, q := range []uint16{dns.TypeA, dns.TypeAAAA} {
		if n := srv.Count("mx.a.test", q, "tcp"); n != 1 {
			t.Errorf("%s over TCP: %d, want 1", dns.TypeToString[q], n)
		}
	}
}

func TestRouteSelf(t *testing.T) {
	srv := dnstest.New(t)
	srv.Set("a.test", dns.TypeMX,
		dnstest.MX(10, "best.a.test"), dnstest.MX(20, "peer.a.test"), dnstest.MX(20, "us.example"),
		dnstest.MX(30, "backup.a.test"))
	srv.SetAddrs("best.a.test", "127.0.0.2")
	srv.SetAddrs("peer.a.test", "127.0.0.3")
	srv.SetAddrs("us.example", "127.0.0.9")
	srv.SetAddrs("backup.a.test", "127.0.0.4")
	srv.Set("loop.test", dns.TypeMX, dnstest.MX(10, "us.example"), dnstest.MX(20, "backup.a.test"))
	srv.Set("alias.test", dns.TypeMX, dnstest.MX(5, "other-name.example"))
	srv.SetAddrs("other-name.example", "2001:db8::9", "127.0.0.9")
	srv.SetAddrs("implicit.test", "127.0.0.9")
	r := newResolver(srv)

	byName := RouteOptions{SelfNames: []string{"US.example."}, Shuffle: reverse}
	byAddr := RouteOptions{SelfAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.9")}, Shuffle: reverse}
	byFunc := RouteOptions{Self: func(host string, addrs []netip.Addr) bool {
		return slices.Contains(addrs, netip.MustParseAddr("127.0.0.9"))
	}}
	for name, opts := range map[string]RouteOptions{"name": byName, "addr": byAddr, "func": byFunc} {
		t.Run(name, func(t *testing.T) {
			// RFC 5321 5.1: us at 20 drops both 20s (peer.a.test comes
			// first after reverse) and the 30.
			route, err := LookupRoute(t.Context(), r, "a.test", opts)
			if want := "10 best.a.test 127.0.0.2"; err != nil || routeString(route) != want {
				t.Errorf("got %q, %v; want %q", routeString(route), err, want)
			}
			// Us at the best preference: nothing left.
			_, err = LookupRoute(t.Context(), r, "loop.test", opts)
			wantRouteError(t, err, true, "5.4.6", ErrRoutingLoop)
		})
	}
	// By address, whatever the name.
	_, err := LookupRoute(t.Context(), r, "alias.test", byAddr)
	wantRouteError(t, err, true, "5.4.6", ErrRoutingLoop)
	// Implicit MX that is us.
	_, err = LookupRoute(t.Context(), r, "implicit.test", byAddr)
	wantRouteError(t, err, true, "5.4.6", ErrRoutingLoop)
	// By name, the cut comes before address lookups of dropped hosts.
	backup, us := srv.Count("backup.a.test", dns.TypeA, ""), srv.Count("us.example", dns.TypeA, "")
	if _, err := LookupRoute(t.Context(), r, "a.test", byName); err != nil {
		t.Fatal(err)
	}
	if srv.Count("backup.a.test", dns.TypeA, "") != backup || srv.Count("us.example", dns.TypeA, "") != us {
		t.Errorf("hosts cut by name were resolved")
	}
}

func TestRouteAddresses(t *testing.T) {
	srv := dnstest.New(t)
	srv.Set("a.test", dns.TypeMX, dnstest.MX(10, "mx.a.test"), dnstest.MX(20, "v6.a.test"), dnstest.MX(30, "mx.a.test"))
	srv.SetAddrs("mx.a.test", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.2", "::ffff:127.0.0.5",
		"2001:db8::1", "2001:db8::2")
	srv.SetAddrs("v6.a.test", "::1")
	r := newResolver(srv)

	route, err := LookupRoute(t.Context(), r, "a.test", RouteOptions{})
	// Duplicate MX kept once at its best preference; addresses deduplicated,
	// families interleaved, capped at 4.
	want := "10 mx.a.test 127.0.0.2,2001:db8::1,127.0.0.3,2001:db8::2; 20 v6.a.test ::1"
	if err != nil || routeString(route) != want {
		t.Errorf("got  %q, %v\nwant %q", routeString(route), err, want)
	}
	route, err = LookupRoute(t.Context(), r, "a.test", RouteOptions{PreferIPv6: true, MaxAddrsPerHost: 3})
	want = "10 mx.a.test 2001:db8::1,127.0.0.2,2001:db8::2; 20 v6.a.test ::1"
	if err != nil || routeString(route) != want {
		t.Errorf("got  %q, %v\nwant %q", routeString(route), err, want)
	}
	route, err = LookupRoute(t.Context(), r, "a.test", RouteOptions{MaxAddrsPerHost: 100})
	want = "10 mx.a.test 127.0.0.2,2001:db8::1,127.0.0.3,2001:db8::2,127.0.0.4,127.0.0.5; 20 v6.a.test ::1"
	if err != nil || routeString(route) != want {
		t.Errorf("got  %q, %v\nwant %q", routeString(route), err, want)
	}
}

func TestRouteMaxHosts(t *testing.T) {
	srv := dnstest.New(t)
	var mxs []dns.RR
	for i := range 15 {
		name := fmt.Sprintf("mx%02d.a.test", i)
		mxs = append(mxs, dnstest.MX(uint16(i), name))
		srv.SetAddrs(name, "127.0.0.2")
	}
	srv.Set("a.test", dns.TypeMX, mxs...)
	r := newResolver(srv)
	for _, tt := range []struct{ max, want int }{{0, DefaultMaxHosts}, {3, 3}, {20, 15}} {
		route, err := LookupRoute(t.Context(), r, "a.test", RouteOptions{MaxHosts: tt.max})
		if err != nil || len(route.Hosts) != tt.want || route.Hosts[0].Name != "mx00.a.test" {
			t.Errorf("MaxHosts %d: got %d hosts (%s), %v; want %d", tt.max, len(route.Hosts), routeString(route), err, tt.want)
		}
	}
	if n := srv.Count("mx14.a.test", dns.TypeA, ""); n != 1 {
		t.Errorf("mx14 resolved %d times, want 1 (only with MaxHosts 20)", n)
	}
}

func TestOrderAddrs(t *testing.T) {
	p := netip.MustParseAddr
	in := []netip.Addr{p("::1"), p("10.0.0.1"), p("fe80::1%eth0"), p("10.0.0.2"), {}, p("ff02::1")}
	got := orderAddrs(in, false, 10)
	want := []netip.Addr{p("10.0.0.1"), p("::1"), p("10.0.0.2"), p("fe80::1")}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := orderAddrs(in, true, 1); !slices.Equal(got, []netip.Addr{p("::1")}) {
		t.Errorf("PreferIPv6, limit 1: got %v", got)
	}
}

func TestIsHostname(t *testing.T) {
	good := []string{"a", "a.test", "xn--bcher-kva.test", "1.2.3.4", "a-b.c0", strings.Repeat("a", 63) + ".test"}
	bad := []string{"", ".", "a..b", ".a", "a.", "-a.test", "a-.test", "a_b.test", "[1.2.3.4]", "bücher.test",
		strings.Repeat("a", 64) + ".test", strings.Repeat("a.", 127) + "ab"}
	for _, s := range good {
		if !isHostname(s) {
			t.Errorf("isHostname(%q) = false", s)
		}
	}
	for _, s := range bad {
		if isHostname(s) {
			t.Errorf("isHostname(%q) = true", s)
		}
	}
}
