package dnstest

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

func ask(t *testing.T, s *Server, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	resp, _, err := c.Exchange(m, s.Addr())
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return resp
}

func TestZone(t *testing.T) {
	s := New(t)
	s.Set("A.test", dns.TypeMX, MX(10, "mx.a.test"))
	s.SetAddrs("mx.a.test", "127.0.0.2", "::1")
	s.Set("alias.test", dns.TypeCNAME, CNAME("mx.a.test"))

	for _, network := range []string{"udp", "tcp"} {
		resp := ask(t, s, network, "a.TEST", dns.TypeMX)
		if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 || resp.Answer[0].(*dns.MX).Mx != "mx.a.test." {
			t.Errorf("%s MX: %v", network, resp)
		}
	}
	if resp := ask(t, s, "udp", "a.test", dns.TypeA); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 {
		t.Errorf("NODATA: %v", resp)
	}
	if resp := ask(t, s, "udp", "nx.test", dns.TypeA); resp.Rcode != dns.RcodeNameError {
		t.Errorf("NXDOMAIN: %v", resp)
	}
	if resp := ask(t, s, "udp", "alias.test", dns.TypeAAAA); len(resp.Answer) != 2 || resp.Answer[1].(*dns.AAAA).AAAA.String() != "::1" {
		t.Errorf("CNAME chain: %v", resp)
	}
	s.SetCNAMEOnly(true)
	if resp := ask(t, s, "udp", "alias.test", dns.TypeAAAA); len(resp.Answer) != 1 {
		t.Errorf("CNAME only: %v", resp)
	}

	s.SetRcode("a.test", dns.RcodeServerFailure)
	if resp := ask(t, s, "udp", "a.test", dns.TypeMX); resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("SetRcode: %v", resp)
	}
	s.SetRcode("a.test", dns.RcodeSuccess)
	s.SetTruncate("a.test")
	if resp := ask(t, s, "udp", "a.test", dns.TypeMX); !resp.Truncated || len(resp.Answer) != 0 {
		t.Errorf("SetTruncate over UDP: %v", resp)
	}
	if resp := ask(t, s, "tcp", "a.test", dns.TypeMX); resp.Truncated || len(resp.Answer) != 1 {
		t.Errorf("SetTruncate over TCP: %v", resp)
	}
	s.Remove("a.test")
	if resp := ask(t, s, "tcp", "a.test", dns.TypeMX); resp.Rcode != dns.RcodeNameError {
		t.Errorf("Remove: %v", resp)
	}
	if n := s.Count("a.test", dns.TypeMX, "tcp"); n != 3 {
		t.Errorf("Count = %d, want 3", n)
	}
}

func TestDrop(t *testing.T) {
	s := New(t)
	s.Drop("slow.test")
	s.SetDelay("late.test", time.Hour) // Cleanup must not wait for it
	for _, name := range []string{"slow.test", "late.test"} {
		m := new(dns.Msg)
		m.SetQuestion(name+".", dns.TypeA)
		c := &dns.Client{Timeout: 100 * time.Millisecond}
		if _, _, err := c.Exchange(m, s.Addr()); err == nil {
			t.Errorf("%s answered", name)
		}
	}
}
