package dnsmx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"posthorn/dnsmx/dnstest"
)

func newResolver(srv *dnstest.Server) *DNSResolver {
	return NewResolver([]string{srv.Addr()}, 2*time.Second)
}

func mxString(mxs []*net.MX) string {
	s := ""
	for _, mx := range mxs {
		s += fmt.Sprintf("%d %s;", mx.Pref, mx.Host)
	}
	return s
}

func TestLookupMXAnswerOrder(t *testing.T) {
	srv := dnstest.New(t)
	srv.Set("a.test", dns.TypeMX, dnstest.MX(20, "mx2.a.test"), dnstest.MX(10, "MX1.a.test"))
	mxs, err := newResolver(srv).LookupMX(t.Context(), "A.test.")
	if err != nil {
		t.Fatal(err)
	}
	// Raw: answer order, owner's spelling, absolute names.
	if got, want := mxString(mxs), "20 mx2.a.test.;10 MX1.a.test.;"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	q := srv.Queries()
	if len(q) != 1 || q[0].Name != "a.test." || q[0].Type != dns.TypeMX || q[0].Net != "udp" || !q[0].RD || !q[0].EDNS0 {
		t.Errorf("queries %+v, want one recursive EDNS0 MX query over UDP", q)
	}
}

func TestLookupErrorClasses(t *testing.T) {
	srv := dnstest.New(t)
	srv.SetAddrs("noaaaa.test", "127.0.0.2") // exists, MX NODATA
	srv.SetRcode("servfail.test", dns.RcodeServerFailure)
	srv.SetRcode("refused.test", dns.RcodeRefused)
	srv.SetMismatch("mismatch.test")
	srv.Set("mismatch.test", dns.TypeMX, dnstest.MX(10, "mx.test"))
	r := newResolver(srv)
	tests := []struct {
		domain string
		want   error
	}{
		{"nx.test", ErrNXDomain},
		{"noaaaa.test", ErrNoRecords},
		{"servfail.test", ErrTemporary},
		{"refused.test", ErrTemporary},
		{"mismatch.test", ErrTemporary}, // RFC 5452 9.1: the question must match
		{"bad..name", ErrNXDomain},
		{"", ErrNXDomain},
	}
	for _, tt := range tests {
		_, err := r.LookupMX(t.Context(), tt.domain)
		if !errors.Is(err, tt.want) {
			t.Errorf("LookupMX(%q) = %v, want %v", tt.domain, err, tt.want)
		}
	}
	// Attempts: a SERVFAIL is asked DefaultAttempts times.
	if n := srv.Count("servfail.test", dns.TypeMX, ""); n != DefaultAttempts {
		t.Errorf("servfail.test asked %d times, want %d", n, DefaultAttempts)
	}
}

func TestServersTriedInOrder(t *testing.T) {
	bad, good := dnstest.New(t), dnstest.New(t)
	bad.SetRcode("a.test", dns.RcodeServerFailure)
	good.Set("a.test", dns.TypeMX, dnstest.MX(10, "mx.a.test"))
	r := NewResolver([]string{bad.Addr(), good.Addr()}, time.Second)
	mxs, err := r.LookupMX(t.Context(), "a.test")
	if err != nil || mxString(mxs) != "10 mx.a.test.;" {
		t.Fatalf("got %q, %v", mxString(mxs), err)
	}
	if bad.Count("a.test", dns.TypeMX, "") != 1 || good.Count("a.test", dns.TypeMX, "") != 1 {
		t.Errorf("bad asked %d, good asked %d; want 1 and 1",
			bad.Count("a.test", dns.TypeMX, ""), good.Count("a.test", dns.TypeMX, ""))
	}

	// NXDOMAIN is an answer: the next server is not asked.
	bad.SetRcode("a.test", dns.RcodeNameError)
	if _, err := r.LookupMX(t.Context(), "a.test"); !errors.Is(err, ErrNXDomain) {
		t.Errorf("got %v, want ErrNXDomain", err)
	}
	if n := good.Count("a.test", dns.TypeMX, ""); n != 1 {
		t.Errorf("good asked %d times, want 1", n)
	}
}

func TestTimeoutIsTemporary(t *testing.T) {
	srv := dnstest.New(t)
	srv.Drop("slow.test")
	r := NewResolver([]string{srv.Addr()}, 50*time.Millisecond)
	start := time.Now()
	_, err := r.LookupMX(t.Context(), "slow.test")
	if !errors.Is(err, ErrTemporary) {
		t.Fatalf("got %v, want ErrTemporary", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	if n := srv.Count("slow.test", dns.TypeMX, "udp"); n != DefaultAttempts {
		t.Errorf("asked %d times, want %d", n, DefaultAttempts)
	}

	// A delay longer than the timeout is a timeout too; a shorter one is not.
	srv.SetDelay("late.test", 300*time.Millisecond)
	srv.Set("late.test", dns.TypeMX, dnstest.MX(10, "mx.late.test"))
	if _, err := r.LookupMX(t.Context(), "late.test"); !errors.Is(err, ErrTemporary) {
		t.Errorf("late: got %v, want ErrTemporary", err)
	}
	r.Timeout = 2 * time.Second
	if _, err := r.LookupMX(t.Context(), "late.test"); err != nil {
		t.Errorf("late with a long timeout: %v", err)
	}
}

func TestContextCancelled(t *testing.T) {
	srv := dnstest.New(t)
	srv.Drop("slow.test")
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := newResolver(srv).LookupIP(ctx, "slow.test")
	if !errors.Is(err, ErrTemporary) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want ErrTemporary wrapping DeadlineExceeded", err)
	}
}

func TestTruncatedRetriesOverTCP(t *testing.T) {
	srv := dnstest.New(t)
	srv.SetTruncate("a.test")
	srv.Set("a.test", dns.TypeMX, dnstest.MX(10, "mx.a.test"))
	mxs, err := newResolver(srv).LookupMX(t.Context(), "a.test")
	if err != nil || mxString(mxs) != "10 mx.a.test.;" {
		t.Fatalf("got %q, %v", mxString(mxs), err)
	}
	if u, c := srv.Count("a.test", dns.TypeMX, "udp"), srv.Count("a.test", dns.TypeMX, "tcp"); u != 1 || c != 1 {
		t.Errorf("udp %d, tcp %d; want 1 and 1", u, c)
	}
}

func TestLargeAnswerOverTCP(t *testing.T) {
	srv := dnstest.New(t)
	var addrs []string
	for i := range 300 { // 300 A records do not fit in 4096 octets
		addrs = append(addrs, fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	srv.SetAddrs("big.test", addrs...)
	got, err := newResolver(srv).LookupIP(t.Context(), "big.test")
	if err != nil || len(got) != 300 {
		t.Fatalf("got %d addresses, %v", len(got), err)
	}
	if n := srv.Count("big.test", dns.TypeA, "tcp"); n != 1 {
		t.Errorf("tcp queries %d, want 1", n)
	}
}

// TestTruncatedTCPFails: a UDP server that always sets TC, with nothing on
// TCP, is a temporary failure, never a truncated answer taken as complete.
func TestTruncatedTCPFails(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			req := new(dns.Msg)
			if req.Unpack(buf[:n]) != nil {
				continue
			}
			m := new(dns.Msg)
			m.SetReply(req)
			m.Truncated = true
			m.Answer = []dns.RR{&dns.MX{Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeMX, Class: dns.ClassINET, Ttl: 60}, Preference: 10, Mx: "partial.test."}}
			out, _ := m.Pack()
			_, _ = pc.WriteTo(out, from)
		}
	}()
	r := NewResolver([]string{pc.LocalAddr().String()}, 500*time.Millisecond)
	mxs, err := r.LookupMX(t.Context(), "a.test")
	if !errors.Is(err, ErrTemporary) {
		t.Errorf("got %q, %v; want ErrTemporary", mxString(mxs), err)
	}
}

func TestFormErrRetriesWithoutEDNS(t *testing.T) {
	srv := dnstest.New(t)
	srv.SetRcode("old.test", dns.RcodeFormatError)
	_, err := newResolver(srv).LookupMX(t.Context(), "old.test")
	if !errors.Is(err, ErrTemporary) {
		t.Fatalf("got %v, want ErrTemporary", err)
	}
	q := srv.Queries()
	if len(q) < 2 || !q[0].EDNS0 || q[1].EDNS0 {
		t.Errorf("queries %+v: want one with EDNS0, then one without", q)
	}
}

func TestCNAMEChains(t *testing.T) {
	for _, cnameOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("cnameOnly=%v", cnameOnly), func(t *testing.T) {
			srv := dnstest.New(t)
			srv.SetCNAMEOnly(cnameOnly)
			// a.test -> b.test -> c.test, which has the MX.
			srv.Set("a.test", dns.TypeCNAME, dnstest.CNAME("b.test"))
			srv.Set("b.test", dns.TypeCNAME, dnstest.CNAME("c.test"))
			srv.Set("c.test", dns.TypeMX, dnstest.MX(5, "mx.c.test"))
			srv.Set("mx.c.test", dns.TypeCNAME, dnstest.CNAME("real.c.test"))
			srv.SetAddrs("real.c.test", "127.0.0.2", "::1")
			r := newResolver(srv)

			mxs, err := r.LookupMX(t.Context(), "a.test")
			if err != nil || mxString(mxs) != "5 mx.c.test.;" {
				t.Fatalf("MX: got %q, %v", mxString(mxs), err)
			}
			want := 1 // a recursive server gives the whole chain at once
			if cnameOnly {
				want = 3 // a.test, b.test, c.test
			}
			if n := len(srv.Queries()); n != want {
				t.Errorf("%d queries, want %d: %+v", n, want, srv.Queries())
			}
			addrs, err := r.LookupIP(t.Context(), "mx.c.test")
			wantAddrs := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("::1")}
			if err != nil || !slices.Equal(addrs, wantAddrs) {
				t.Errorf("IP: got %v, %v", addrs, err)
			}
			// A CNAME to a name that does not exist: NXDOMAIN is about
			// the target (RFC 6604 3).
			srv.Set("dangling.test", dns.TypeCNAME, dnstest.CNAME("gone.test"))
			if _, err := r.LookupMX(t.Context(), "dangling.test"); !errors.Is(err, ErrNXDomain) {
				t.Errorf("dangling: got %v, want ErrNXDomain", err)
			}
		})
	}
}

func TestCNAMELimits(t *testing.T) {
	for _, cnameOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("cnameOnly=%v", cnameOnly), func(t *testing.T) {
			srv := dnstest.New(t)
			srv.SetCNAMEOnly(cnameOnly)
			srv.Set("loop1.test", dns.TypeCNAME, dnstest.CNAME("loop2.test"))
			srv.Set("loop2.test", dns.TypeCNAME, dnstest.CNAME("loop1.test"))
			// c0 -> c1 -> ... -> cN with the MX at cN.
			chain := func(prefix string, n int) string {
				for i := range n {
					srv.Set(fmt.Sprintf("%s%d.test", prefix, i), dns.TypeCNAME, dnstest.CNAME(fmt.Sprintf("%s%d.test", prefix, i+1)))
				}
				srv.Set(fmt.Sprintf("%s%d.test", prefix, n), dns.TypeMX, dnstest.MX(1, "mx.test"))
				return prefix + "0.test"
			}
			r := newResolver(srv)
			if _, err := r.LookupMX(t.Context(), "loop1.test"); !errors.Is(err, ErrTemporary) {
				t.Errorf("loop: got %v, want ErrTemporary", err)
			}
			if _, err := r.LookupMX(t.Context(), chain("ok", MaxCNAMEs)); err != nil {
				t.Errorf("%d CNAMEs: %v", MaxCNAMEs, err)
			}
			if _, err := r.LookupMX(t.Context(), chain("long", MaxCNAMEs+1)); !errors.Is(err, ErrTemporary) {
				t.Errorf("%d CNAMEs: got %v, want ErrTemporary", MaxCNAMEs+1, err)
			}
		})
	}
}

func TestLookupIP(t *testing.T) {
	srv := dnstest.New(t)
	srv.SetAddrs("dual.test", "2001:db8::1", "127.0.0.2", "127.0.0.3")
	srv.SetAddrs("v6.test", "2001:db8::2")
	srv.Set("empty.test", dns.TypeMX, dnstest.MX(10, "mx.test"))
	r := newResolver(srv)

	got, err := r.LookupIP(t.Context(), "dual.test")
	want := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("2001:db8::1")}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("dual: got %v, %v; want %v", got, err, want)
	}
	got, err = r.LookupIP(t.Context(), "v6.test")
	if err != nil || !slices.Equal(got, []netip.Addr{netip.MustParseAddr("2001:db8::2")}) {
		t.Errorf("v6: got %v, %v", got, err)
	}
	if _, err := r.LookupIP(t.Context(), "empty.test"); !errors.Is(err, ErrNoRecords) {
		t.Errorf("empty: got %v, want ErrNoRecords", err)
	}
	if _, err := r.LookupIP(t.Context(), "nx.test"); !errors.Is(err, ErrNXDomain) {
		t.Errorf("nx: got %v, want ErrNXDomain", err)
	}
}

func TestServersFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	conf := "# comment\nnameserver 127.0.0.53\nnameserver ::1\noptions edns0\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := serversFromFile(path)
	if want := []string{"127.0.0.53:53", "[::1]:53"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	if err := os.WriteFile(path, []byte("search test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := serversFromFile(path); err == nil {
		t.Error("no nameserver lines: want an error")
	}
	if _, err := serversFromFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: want an error")
	}
}

func TestNoServers(t *testing.T) {
	if _, err := NewResolver(nil, 0).LookupMX(t.Context(), "a.test"); !errors.Is(err, ErrTemporary) {
		t.Errorf("got %v, want ErrTemporary", err)
	}
}
