package main

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// The relay benchmark's recipient domain and its MX, served by benchDNS.
const (
	sinkDomain = "sink.test"
	sinkRcpt   = "rcpt@" + sinkDomain
)

// benchDNS is a tiny DNS server on 127.0.0.1 (UDP and TCP on one port) for
// posthorn's dns_resolvers: MX sink.test → 10 mx.sink.test, A mx.sink.test
// → sinkIP. Other types at those names answer NODATA, other names NXDOMAIN.
type benchDNS struct {
	addr     string
	udp, tcp *dns.Server
	queries  atomic.Int64
}

func startDNS() (*benchDNS, error) {
	pc, ln, err := listenUDPTCP()
	if err != nil {
		return nil, err
	}
	d := &benchDNS{addr: pc.LocalAddr().String()}
	h := dns.HandlerFunc(d.serve)
	d.udp = &dns.Server{PacketConn: pc, Handler: h}
	d.tcp = &dns.Server{Listener: ln, Handler: h}
	for _, srv := range []*dns.Server{d.udp, d.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		errc := make(chan error, 1)
		go func() { errc <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-errc:
			d.close()
			pc.Close()
			ln.Close()
			return nil, err
		}
	}
	return d, nil
}

// listenUDPTCP opens UDP and TCP on one free port of 127.0.0.1.
func listenUDPTCP() (net.PacketConn, net.Listener, error) {
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
	}
	return nil, nil, errors.New("dns: no port free for both UDP and TCP on 127.0.0.1")
}

// answer builds the reply to req (one question expected).
func answer(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	if len(req.Question) != 1 {
		m.SetRcode(req, dns.RcodeFormatError)
		return m
	}
	m.SetReply(req)
	m.Authoritative, m.RecursionAvailable = true, true
	q := req.Question[0]
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: 300}
	}
	switch strings.ToLower(dns.Fqdn(q.Name)) {
	case sinkDomain + ".":
		if q.Qtype == dns.TypeMX {
			m.Answer = append(m.Answer, &dns.MX{Hdr: hdr(dns.TypeMX), Preference: 10, Mx: sinkHost + "."})
		}
	case sinkHost + ".":
		if q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.ParseIP(sinkIP).To4()})
		}
	default:
		m.Rcode = dns.RcodeNameError
	}
	return m
}

func (d *benchDNS) serve(w dns.ResponseWriter, req *dns.Msg) {
	d.queries.Add(1)
	m := answer(req)
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	_ = w.WriteMsg(m)
}

func (d *benchDNS) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range []*dns.Server{d.udp, d.tcp} {
		if srv != nil {
			_ = srv.ShutdownContext(ctx)
		}
	}
}
