package main

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestSink sends a load through go-loadgen to the sink and checks that it
// counts every message once, and a second copy as a duplicate.
func TestSink(t *testing.T) {
	sk, err := startSink(30)
	if err != nil {
		t.Skip(err) // no 127.0.0.9 here
	}
	defer sk.close()
	spec := relaySpec(loadSpec{sessions: 3, messages: 30, perIP: 2, body: makeBody(5000)}, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	sk.start(t0)
	c, err := runLoad(ctx, sk.addr, spec)
	if err != nil || c.n != 30 {
		t.Fatalf("load: %d messages, %v", c.n, err)
	}
	select {
	case <-sk.done:
	default:
		t.Fatalf("sink not done after every 250: %s", sk.stats())
	}
	st := sk.stats()
	if st.distinct != 30 || st.dups != 0 || st.other != 0 || st.conns != 3 || st.allAt <= 0 || st.allAt > time.Since(t0) {
		t.Errorf("stats %+v", st)
	}
	// The same numbers again are duplicates; AUTH is not offered.
	spec.messages = 2
	if _, err := runLoad(ctx, sk.addr, spec); err != nil {
		t.Fatal(err)
	}
	spec.authUser, spec.authPass = "u", "p"
	if _, err := runLoad(ctx, sk.addr, spec); err == nil || !strings.Contains(err.Error(), "502") {
		t.Errorf("AUTH at the sink: %v", err)
	}
	if st := sk.stats(); st.dups != 2 || st.distinct != 30 {
		t.Errorf("after a second load: %+v", st)
	}
	if err := sk.close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func TestReadData(t *testing.T) {
	long := strings.Repeat("x", 70000)
	for _, tc := range []struct {
		data string
		num  int
	}{
		{"Subject: posthorn-bench message 17\r\n\r\nbody\r\n.\r\n", 17},
		{"Received: x\r\n" + subjectPrefix + "3\r\n\r\n" + subjectPrefix + "4\r\n.\r\n", 3},
		{"A: b\r\n\r\n" + subjectPrefix + "4\r\n..\r\n.\r\n", 0},
		// A line of 70,000 octets ending in "." is not the end of data.
		{"A: b\r\n\r\n" + long + ".\r\n" + long + "\r\n.\r\n", 0},
		{"Subject: posthorn-bench message x\r\n\r\n.\r\n", 0},
	} {
		// The sink's buffer size, so that the long lines overflow it.
		r := bufio.NewReaderSize(strings.NewReader(tc.data+"trailing"), 64<<10)
		n, err := readData(r)
		rest, _ := r.ReadString(0)
		if err != nil || n != tc.num || rest != "trailing" {
			t.Errorf("%.60q: got %d %v, rest %.20q", tc.data, n, err, rest)
		}
	}
}

func TestDNSAnswer(t *testing.T) {
	q := func(name string, qt uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qt)
		return answer(m)
	}
	if m := q("Sink.Test.", dns.TypeMX); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].(*dns.MX).Mx != sinkHost+"." {
		t.Errorf("MX: %v", m)
	}
	if m := q(sinkHost+".", dns.TypeA); len(m.Answer) != 1 || !m.Answer[0].(*dns.A).A.Equal(net.ParseIP(sinkIP)) {
		t.Errorf("A: %v", m)
	}
	if m := q(sinkHost+".", dns.TypeAAAA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
		t.Errorf("AAAA (NODATA): %v", m)
	}
	if m := q("other.test.", dns.TypeMX); m.Rcode != dns.RcodeNameError {
		t.Errorf("other name: %v", m)
	}
	// Over the network, as posthorn asks.
	d, err := startDNS()
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: 5 * time.Second}
		m := new(dns.Msg)
		m.SetQuestion(sinkDomain+".", dns.TypeMX)
		r, _, err := c.Exchange(m, d.addr)
		if err != nil || len(r.Answer) != 1 {
			t.Errorf("%s: %v %v", network, r, err)
		}
	}
	if n := d.queries.Load(); n != 2 {
		t.Errorf("%d queries counted", n)
	}
}

func TestMainCfRelay(t *testing.T) {
	cf := mainCf("/d", "/d/etc", "/d/spool", "/d/data", "/d/mail", "127.0.0.9:2525")
	for _, want := range []string{"\nrelayhost = [127.0.0.9]:2525\n", "\nsmtp_dns_support_level = disabled\n",
		"\nsmtp_tls_security_level = none\n", "\nsmtp_address_preference = ipv4\n", "\nmynetworks = 127.0.0.0/8\n"} {
		if !strings.Contains(cf, want) {
			t.Errorf("relay main.cf lacks %q", strings.TrimSpace(want))
		}
	}
	if strings.Contains(mainCf("/d", "/d/etc", "/d/spool", "/d/data", "/d/mail", ""), "relayhost") {
		t.Error("ingest main.cf has a relayhost")
	}
	if strings.Contains(cf, "default_destination_concurrency_limit") {
		t.Error("the destination concurrency is to stay at its default")
	}
}
