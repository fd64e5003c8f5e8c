// Package dnstest is an in-process DNS server on 127.0.0.1 for tests: UDP and
// TCP on one port, answering from a zone the test controls, with switches for
// the failures a resolver must survive (rcodes, silence, delays, truncation,
// mismatched replies). It answers like a recursive server: recursion
// available, CNAME chains inside the zone followed in one answer.
//
//	srv := dnstest.New(t)
//	srv.Set("a.test", dns.TypeMX, dnstest.MX(10, "mx.a.test"))
//	srv.SetAddrs("mx.a.test", "127.0.0.2")
//	r := dnsmx.NewResolver([]string{srv.Addr()}, time.Second)
//
// Names are compared without case and trailing dot. A name the zone does not
// hold answers NXDOMAIN; a name it holds with other types only answers
// NOERROR with an empty answer (NODATA).
package dnstest

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TTL is the TTL of records whose header leaves it zero.
const TTL = 300

// Query is one question the server received.
type Query struct {
	Name  string // lowercase, absolute
	Type  uint16
	Net   string // "udp" or "tcp"
	Id    uint16
	RD    bool // recursion desired
	EDNS0 bool // the query carried an OPT record
}

type key struct {
	name  string
	qtype uint16
}

// Server is a DNS server on 127.0.0.1; it stops when the test ends.
type Server struct {
	addr     string
	udp, tcp *dns.Server
	stop     chan struct{}

	mu        sync.Mutex
	records   map[key][]dns.RR
	names     map[string]bool // names that exist (any type, even none)
	rcodes    map[string]int
	delays    map[string]time.Duration
	drops     map[string]bool
	truncs    map[string]bool
	mismatch  map[string]bool
	cnameOnly bool
	queries   []Query
}

// New starts a server on 127.0.0.1 (UDP and TCP on the same port) and stops
// it in t.Cleanup.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		stop:     make(chan struct{}),
		records:  make(map[key][]dns.RR),
		names:    make(map[string]bool),
		rcodes:   make(map[string]int),
		delays:   make(map[string]time.Duration),
		drops:    make(map[string]bool),
		truncs:   make(map[string]bool),
		mismatch: make(map[string]bool),
	}
	pc, l := listen(t)
	s.addr = pc.LocalAddr().String()
	handler := dns.HandlerFunc(s.serveDNS)
	s.udp = &dns.Server{PacketConn: pc, Handler: handler}
	s.tcp = &dns.Server{Listener: l, Handler: handler}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
	}
	t.Cleanup(func() {
		close(s.stop) // wake delayed handlers first, or Shutdown waits for them
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.udp.ShutdownContext(ctx)
		_ = s.tcp.ShutdownContext(ctx)
	})
	return s
}

// listen opens UDP and TCP on one loopback port, retrying if the TCP side of
// the port chosen for UDP is taken.
func listen(t testing.TB) (net.PacketConn, net.Listener) {
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("dnstest: %v", err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l
		}
		pc.Close()
	}
	t.Fatal("dnstest: no port free for both UDP and TCP")
	return nil, nil
}

// Addr returns the server's "127.0.0.1:port", the same for UDP and TCP.
func (s *Server) Addr() string { return s.addr }

// Set replaces the records of type qtype at name; with no records, name
// exists with no record of that type (NODATA). The records' owner and class
// are set from name, a zero type from qtype (CNAMEs belong under
// dns.TypeCNAME), a zero TTL to TTL.
func (s *Server) Set(name string, qtype uint16, records ...dns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := canonical(name)
	s.names[n] = true
	rrs := make([]dns.RR, 0, len(records))
	for _, rr := range records {
		rr = dns.Copy(rr)
		h := rr.Header()
		h.Name, h.Class = n, dns.ClassINET
		if h.Rrtype == 0 {
			h.Rrtype = qtype
		}
		if h.Ttl == 0 {
			h.Ttl = TTL
		}
		rrs = append(rrs, rr)
	}
	s.records[key{n, qtype}] = rrs
}

// SetAddrs sets the A and AAAA records of name from textual addresses;
// a family without addresses answers NODATA. It panics on a bad address.
func (s *Server) SetAddrs(name string, addrs ...string) {
	var v4, v6 []dns.RR
	for _, a := range addrs {
		ip := netip.MustParseAddr(a)
		if ip.Is4() {
			v4 = append(v4, A(a))
		} else {
			v6 = append(v6, AAAA(a))
		}
	}
	s.Set(name, dns.TypeA, v4...)
	s.Set(name, dns.TypeAAAA, v6...)
}

// Remove deletes name and all its records, so that it answers NXDOMAIN.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := canonical(name)
	delete(s.names, n)
	for k := range s.records {
		if k.name == n {
			delete(s.records, k)
		}
	}
}

// SetRcode makes every question about name answer rcode (for example
// dns.RcodeServerFailure) with no records; dns.RcodeSuccess clears it.
func (s *Server) SetRcode(name string, rcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rcode == dns.RcodeSuccess {
		delete(s.rcodes, canonical(name))
		return
	}
	s.rcodes[canonical(name)] = rcode
}

// SetDelay delays answers about name by d (0 clears it).
func (s *Server) SetDelay(name string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delays[canonical(name)] = d
}

// Drop makes the server never answer questions about name, so that clients
// time out.
func (s *Server) Drop(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops[canonical(name)] = true
}

// SetTruncate makes UDP answers about name come back empty with the TC bit
// set, so that clients must ask again over TCP (RFC 7766 5). TCP answers are
// whole. Answers larger than the client's UDP size are truncated anyway.
func (s *Server) SetTruncate(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.truncs[canonical(name)] = true
}

// SetMismatch makes answers about name carry another question name, as a
// spoofed or misrouted reply would.
func (s *Server) SetMismatch(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mismatch[canonical(name)] = true
}

// SetCNAMEOnly makes answers stop at the first CNAME instead of following
// the chain inside the zone, as an authoritative server answers for a
// target in another zone; the client must ask for the target itself.
func (s *Server) SetCNAMEOnly(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cnameOnly = on
}

// Queries returns the questions received so far, in order.
func (s *Server) Queries() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Query(nil), s.queries...)
}

// Count returns how many questions for name and qtype arrived over network
// ("udp", "tcp", or "" for both).
func (s *Server) Count(name string, qtype uint16, network string) int {
	n := canonical(name)
	c := 0
	for _, q := range s.Queries() {
		if q.Name == n && q.Type == qtype && (network == "" || q.Net == network) {
			c++
		}
	}
	return c
}

func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := canonical(q.Name)
	network := "udp"
	if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}

	s.mu.Lock()
	s.queries = append(s.queries, Query{Name: name, Type: q.Qtype, Net: network, Id: req.Id,
		RD: req.RecursionDesired, EDNS0: req.IsEdns0() != nil})
	drop, delay := s.drops[name], s.delays[name]
	s.mu.Unlock()

	if drop {
		return
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-s.stop:
			return
		}
	}

	m := s.answer(req, name, network)
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	if network == "udp" {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// answer builds the reply to req, whose one question is about name.
func (s *Server) answer(req *dns.Msg, name, network string) *dns.Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := req.Question[0]
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	if s.mismatch[name] {
		m.Question[0].Name = "mismatch.invalid."
	}
	if rcode, ok := s.rcodes[name]; ok {
		m.Rcode = rcode
		return m
	}
	if s.truncs[name] && network == "udp" {
		m.Truncated = true
		return m
	}
	cur := name
	for range 16 {
		if rrs := s.records[key{cur, q.Qtype}]; len(rrs) > 0 {
			m.Answer = append(m.Answer, copyAll(rrs)...)
			return m
		}
		cname := s.records[key{cur, dns.TypeCNAME}]
		if q.Qtype == dns.TypeCNAME || len(cname) == 0 {
			if !s.names[cur] {
				m.Rcode = dns.RcodeNameError
			}
			return m
		}
		m.Answer = append(m.Answer, dns.Copy(cname[0]))
		if s.cnameOnly {
			return m
		}
		cur = canonical(cname[0].(*dns.CNAME).Target)
		if rcode, ok := s.rcodes[cur]; ok {
			m.Rcode = rcode
			return m
		}
	}
	return m
}

// MX returns an MX record with preference pref and exchange host ("." for a
// null MX, RFC 7505). Owner and class are filled in by Set.
func MX(pref uint16, host string) dns.RR {
	return &dns.MX{Hdr: dns.RR_Header{Rrtype: dns.TypeMX}, Preference: pref, Mx: dns.Fqdn(host)}
}

// A returns an A record for the IPv4 address addr; it panics on a bad one.
func A(addr string) dns.RR {
	ip := netip.MustParseAddr(addr)
	return &dns.A{Hdr: dns.RR_Header{Rrtype: dns.TypeA}, A: ip.AsSlice()}
}

// AAAA returns an AAAA record for the IPv6 address addr; it panics on a bad one.
func AAAA(addr string) dns.RR {
	ip := netip.MustParseAddr(addr)
	return &dns.AAAA{Hdr: dns.RR_Header{Rrtype: dns.TypeAAAA}, AAAA: ip.AsSlice()}
}

// CNAME returns a CNAME record pointing to target; Set it under dns.TypeCNAME.
func CNAME(target string) dns.RR {
	return &dns.CNAME{Hdr: dns.RR_Header{Rrtype: dns.TypeCNAME}, Target: dns.Fqdn(target)}
}

func copyAll(rrs []dns.RR) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
	}
	return out
}

func canonical(name string) string {
	return strings.ToLower(dns.Fqdn(name))
}
