package dnsmx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Resolver is the DNS the outbound queue needs. Names are absolute or
// relative DNS names in ASCII (IDNA A-labels); both mean the same name.
type Resolver interface {
	// LookupMX returns the MX records of domain after following CNAMEs
	// (RFC 5321 5.1: "If a CNAME record is found, the resulting name is
	// processed as if it were the initial name"), in answer order and
	// unfiltered: a null MX (RFC 7505) comes back as Host ".".
	LookupMX(ctx context.Context, domain string) ([]*net.MX, error)
	// LookupIP returns the A and AAAA addresses of host, CNAMEs followed.
	LookupIP(ctx context.Context, host string) ([]netip.Addr, error)
}

// Error classes of Resolver, tested with errors.Is. Errors carry the name,
// the record type and the cause after the class.
var (
	// ErrNXDomain: the name does not exist (rcode NXDOMAIN, RFC 1035 4.1.1;
	// after CNAMEs it is about the chain's last name, RFC 6604 3). Permanent.
	// A string that cannot be a domain name gets this class too.
	ErrNXDomain = errors.New("dnsmx: no such domain")
	// ErrNoRecords: the name exists but has no record of the asked type
	// (NOERROR with an empty answer, "NODATA", RFC 2308 2.2). Permanent.
	ErrNoRecords = errors.New("dnsmx: no records of that type")
	// ErrTemporary: SERVFAIL, REFUSED, timeout, network error, a truncated
	// answer whose TCP retry failed, a mismatched reply, a CNAME chain
	// longer than MaxCNAMEs, or a cancelled context. Retry later
	// (RFC 5321 5.1: "the message MUST be queued and retried later").
	ErrTemporary = errors.New("dnsmx: temporary DNS failure")
)

const (
	// MaxCNAMEs bounds how many CNAMEs one lookup follows, so that a loop
	// or a long chain costs a fixed number of queries.
	MaxCNAMEs = 8
	// EDNSBufferSize is the UDP payload size advertised in EDNS0
	// (RFC 6891 6.2.5); larger answers come truncated and are fetched over
	// TCP (RFC 7766 5).
	EDNSBufferSize = 4096
	// DefaultTimeout bounds one query to one server when none is given.
	DefaultTimeout = 5 * time.Second
	// DefaultAttempts is how many times the server list is tried, as the
	// "attempts" option of resolv.conf(5), so one lost UDP datagram does
	// not defer a whole domain.
	DefaultAttempts = 2
)

// DNSResolver is a Resolver that sends recursive queries (RD set) to
// recursive servers with github.com/miekg/dns: UDP with EDNS0, TCP when an
// answer comes back truncated, servers tried in order.
type DNSResolver struct {
	// Servers are "host:port" addresses, tried in order.
	Servers []string
	// Timeout bounds each query to one server (dial, write and read).
	Timeout time.Duration
	// Attempts is how many rounds over Servers are made before giving up.
	Attempts int
}

// NewResolver returns a DNSResolver that asks servers ("host:port") in order
// with timeout per query; timeout <= 0 means DefaultTimeout.
func NewResolver(servers []string, timeout time.Duration) *DNSResolver {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &DNSResolver{
		Servers:  append([]string(nil), servers...),
		Timeout:  timeout,
		Attempts: DefaultAttempts,
	}
}

// SystemServers returns the name servers of /etc/resolv.conf as "host:port".
func SystemServers() ([]string, error) {
	return serversFromFile("/etc/resolv.conf")
}

func serversFromFile(path string) ([]string, error) {
	conf, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("dnsmx: reading %s: %w", path, err)
	}
	servers := make([]string, 0, len(conf.Servers))
	for _, s := range conf.Servers {
		servers = append(servers, net.JoinHostPort(s, conf.Port))
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("dnsmx: no nameserver in %s", path)
	}
	return servers, nil
}

// LookupMX implements Resolver.
func (r *DNSResolver) LookupMX(ctx context.Context, domain string) ([]*net.MX, error) {
	rrs, err := r.lookup(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	mxs := make([]*net.MX, 0, len(rrs))
	for _, rr := range rrs {
		if mx, ok := rr.(*dns.MX); ok {
			mxs = append(mxs, &net.MX{Host: mx.Mx, Pref: mx.Preference})
		}
	}
	return mxs, nil
}

// LookupIP implements Resolver. The A and AAAA queries run in parallel; IPv4
// addresses come first, each family in answer order. If either query finds
// addresses, those are returned and the other's failure is ignored.
// Otherwise NXDOMAIN from either wins (the name does not exist for any
// type), then a temporary failure, then ErrNoRecords.
func (r *DNSResolver) LookupIP(ctx context.Context, host string) ([]netip.Addr, error) {
	var v6 []dns.RR
	var v6err error
	var wg sync.WaitGroup
	wg.Go(func() { v6, v6err = r.lookup(ctx, host, dns.TypeAAAA) })
	v4, v4err := r.lookup(ctx, host, dns.TypeA)
	wg.Wait()

	var addrs []netip.Addr
	for _, rr := range append(v4, v6...) {
		var ip net.IP
		switch rr := rr.(type) {
		case *dns.A:
			ip = rr.A
		case *dns.AAAA:
			ip = rr.AAAA
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) > 0 {
		return addrs, nil
	}
	switch {
	case errors.Is(v4err, ErrNXDomain):
		return nil, v4err
	case errors.Is(v6err, ErrNXDomain):
		return nil, v6err
	case errors.Is(v4err, ErrTemporary):
		return nil, v4err
	case errors.Is(v6err, ErrTemporary):
		return nil, v6err
	case v4err != nil:
		return nil, v4err
	}
	return nil, fmt.Errorf("%w: %s A/AAAA", ErrNoRecords, trimDot(host))
}

// lookup returns the records of type qtype for name, following CNAMEs: first
// inside each answer, then, when an answer ends at a CNAME without the final
// records, by querying the chain's last name.
func (r *DNSResolver) lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	typ := dns.TypeToString[qtype]
	if _, ok := dns.IsDomainName(name); !ok || name == "." {
		return nil, fmt.Errorf("%w: %q is not a domain name", ErrNXDomain, name)
	}
	qname := dns.Fqdn(name)
	followed := 0
	for {
		resp, err := r.exchange(ctx, qname, qtype)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %s: %w", ErrTemporary, trimDot(name), typ, err)
		}
		rrs, last, hops := followChain(resp.Answer, qname, qtype)
		followed += hops
		if followed > MaxCNAMEs {
			return nil, fmt.Errorf("%w: %s %s: more than %d CNAMEs", ErrTemporary, trimDot(name), typ, MaxCNAMEs)
		}
		if len(rrs) > 0 {
			return rrs, nil
		}
		if resp.Rcode == dns.RcodeNameError {
			// RFC 6604 3: after CNAMEs the rcode is about the last name.
			return nil, fmt.Errorf("%w: %s %s", ErrNXDomain, trimDot(last), typ)
		}
		if hops == 0 {
			return nil, fmt.Errorf("%w: %s %s", ErrNoRecords, trimDot(last), typ)
		}
		qname = last
	}
}

// followChain walks the CNAME chain that starts at qname through answer and
// returns the records of type qtype owned by its last name, that name, and
// how many CNAMEs it followed (stopping after MaxCNAMEs+1).
func followChain(answer []dns.RR, qname string, qtype uint16) (rrs []dns.RR, last string, hops int) {
	last = qname
	for {
		var target string
		for _, rr := range answer {
			h := rr.Header()
			if h.Class != dns.ClassINET || !strings.EqualFold(h.Name, last) {
				continue
			}
			if h.Rrtype == qtype {
				rrs = append(rrs, rr)
			} else if c, ok := rr.(*dns.CNAME); ok && target == "" {
				target = c.Target
			}
		}
		if len(rrs) > 0 || target == "" || hops > MaxCNAMEs {
			return rrs, last, hops
		}
		last = dns.Fqdn(target)
		hops++
	}
}

// exchange asks the servers in order, Attempts rounds, and returns the first
// answer that is NOERROR or NXDOMAIN. Any other rcode, a timeout or a bad
// reply moves on to the next server.
func (r *DNSResolver) exchange(ctx context.Context, qname string, qtype uint16) (*dns.Msg, error) {
	if len(r.Servers) == 0 {
		return nil, errors.New("no DNS servers configured")
	}
	attempts := max(r.Attempts, 1)
	var lastErr error
	for range attempts {
		for _, server := range r.Servers {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			resp, err := r.ask(ctx, server, qname, qtype)
			if err == nil {
				return resp, nil
			}
			lastErr = err
		}
	}
	return nil, lastErr
}

// ask sends one question to one server.
func (r *DNSResolver) ask(ctx context.Context, server, qname string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype) // random ID, RD set: the servers are recursive
	m.SetEdns0(EDNSBufferSize, false)
	resp, err := r.udpThenTCP(ctx, server, m)
	if err == nil && resp.Rcode == dns.RcodeFormatError {
		// RFC 6891 7: a server without EDNS0 answers FORMERR; ask again
		// without the OPT record.
		plain := new(dns.Msg)
		plain.SetQuestion(qname, qtype)
		resp, err = r.udpThenTCP(ctx, server, plain)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", server, err)
	}
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		return resp, nil
	}
	return nil, fmt.Errorf("%s: rcode %s", server, dns.RcodeToString[resp.Rcode])
}

// udpThenTCP sends m over UDP and, if the answer is truncated, again over
// TCP (RFC 1035 4.2.1, RFC 7766 5): a truncated answer is never used.
func (r *DNSResolver) udpThenTCP(ctx context.Context, server string, m *dns.Msg) (*dns.Msg, error) {
	resp, err := r.roundTrip(ctx, "udp", server, m)
	if err != nil || !resp.Truncated {
		return resp, err
	}
	resp, err = r.roundTrip(ctx, "tcp", server, m)
	if err != nil {
		return nil, fmt.Errorf("truncated over UDP, TCP retry failed: %w", err)
	}
	return resp, nil
}

// roundTrip makes one exchange over network and checks that the reply
// answers the question asked. miekg/dns already drops UDP replies with
// another ID and rejects them over TCP; the question is checked here
// (RFC 5452 4.1, 9.1: match ID, question name, type and class).
func (r *DNSResolver) roundTrip(ctx context.Context, network, server string, m *dns.Msg) (*dns.Msg, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	c := &dns.Client{Net: network, Timeout: timeout, UDPSize: EDNSBufferSize}
	resp, _, err := c.ExchangeContext(ctx, m, server)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if resp != nil && resp.Truncated && network == "udp" {
			// A truncated datagram may not unpack completely; only its TC
			// bit matters.
			return resp, nil
		}
		return nil, err
	}
	if err := matchReply(m, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// matchReply reports whether resp is a reply to the query q.
func matchReply(q, resp *dns.Msg) error {
	if !resp.Response || resp.Id != q.Id || resp.Opcode != dns.OpcodeQuery {
		return errors.New("reply is not a response to the query")
	}
	if len(resp.Question) != 1 {
		return fmt.Errorf("reply has %d questions", len(resp.Question))
	}
	want, got := q.Question[0], resp.Question[0]
	if !strings.EqualFold(want.Name, got.Name) || want.Qtype != got.Qtype || want.Qclass != got.Qclass {
		return fmt.Errorf("reply is for %s %s, asked %s %s", got.Name,
			dns.TypeToString[got.Qtype], want.Name, dns.TypeToString[want.Qtype])
	}
	return nil
}

// trimDot returns name without its trailing dot, for messages.
func trimDot(name string) string {
	if len(name) > 1 {
		return strings.TrimSuffix(name, ".")
	}
	return name
}
