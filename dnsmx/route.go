package dnsmx

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Host is one mail exchanger to try.
type Host struct {
	// Name is the exchange's name, lowercase, without a trailing dot; for
	// an implicit MX it is the domain itself.
	Name string
	// Preference is the MX preference; 0 for an implicit MX.
	Preference uint16
	// Addrs are the addresses to try in order; never empty in a Route
	// returned by LookupRoute.
	Addrs []netip.Addr
}

// Route is the ordered list of hosts to try for a domain.
type Route struct {
	Hosts []Host
	// Implicit is set when the domain has no MX records and its own
	// A/AAAA records are used (RFC 5321 5.1, "implicit MX").
	Implicit bool
}

// Enhanced status codes (RFC 3463) of a RouteError.
const (
	EnhBadDestSystem = "5.1.2"  // X.1.2 Bad destination system address: NXDOMAIN, no MX and no address
	EnhNullMX        = "5.1.10" // X.1.10 Recipient address has null MX (RFC 7505 4.1)
	EnhNoRoute       = "5.4.4"  // X.4.4 Unable to route: no MX host has an address
	EnhRoutingLoop   = "5.4.6"  // X.4.6 Routing loop detected: the MX records point at us
	EnhDNSTemporary  = "4.4.3"  // X.4.3 Directory server failure: retry later
)

// Causes of a RouteError besides the Resolver classes.
var (
	ErrNullMX      = errors.New("dnsmx: null MX")
	ErrRoutingLoop = errors.New("dnsmx: MX points to this host")
)

// RouteError is why a domain has no route. Permanent errors bounce the
// recipients with Enhanced; temporary ones defer them.
type RouteError struct {
	Permanent bool
	Enhanced  string // "5.1.2", "5.1.10", "5.4.4", "5.4.6" or "4.4.3"
	// Msg is meant for a DSN or a log: it names the domain and the cause,
	// but never a resolver address or a Go error text.
	Msg string
	// Err is the cause: ErrNXDomain, ErrNoRecords, ErrTemporary (each with
	// the details), ErrNullMX or ErrRoutingLoop.
	Err error
}

func (e *RouteError) Error() string {
	if e.Err == nil {
		return e.Enhanced + " " + e.Msg
	}
	return e.Enhanced + " " + e.Msg + " (" + e.Err.Error() + ")"
}

func (e *RouteError) Unwrap() error { return e.Err }

// Defaults of RouteOptions.
const (
	DefaultMaxHosts        = 10
	DefaultMaxAddrsPerHost = 4
)

// RouteOptions tunes LookupRoute. The zero value is usable.
type RouteOptions struct {
	// SelfNames are the names by which this host is known in mail
	// transactions (its hostname, ...); compared without case and trailing
	// dot.
	SelfNames []string
	// SelfAddrs are the addresses this host receives mail on. Posthorn's
	// tests run "remote" servers on other 127.0.0.x addresses, so list the
	// addresses the SMTP listener is bound to, not all of 127.0.0.0/8.
	SelfAddrs []netip.Addr
	// Self, if set, is asked too, once per host after its address lookup
	// (addrs is empty if the lookup failed).
	Self func(host string, addrs []netip.Addr) bool

	// Shuffle randomizes hosts of equal preference; nil means
	// math/rand/v2.Shuffle. Tests pass a deterministic one.
	Shuffle func(n int, swap func(i, j int))

	// MaxHosts bounds the MX hosts resolved and returned (0: DefaultMaxHosts).
	MaxHosts int
	// MaxAddrsPerHost bounds each host's addresses (0: DefaultMaxAddrsPerHost).
	MaxAddrsPerHost int
	// PreferIPv6 starts each host's interleaved address list with IPv6
	// instead of IPv4.
	PreferIPv6 bool
}

// LookupRoute finds the hosts to deliver mail for domain to, following
// RFC 5321 5.1 and RFC 7505; see the package documentation for every case.
// domain is a DNS name in ASCII (the caller turns U-labels into A-labels and
// handles address literals). Errors are always *RouteError.
func LookupRoute(ctx context.Context, r Resolver, domain string, opts RouteOptions) (Route, error) {
	domain = canonical(domain)
	if !isHostname(domain) {
		return Route{}, &RouteError{Permanent: true, Enhanced: EnhBadDestSystem,
			Msg: fmt.Sprintf("%q is not a domain name", domain), Err: ErrNXDomain}
	}
	mxs, err := r.LookupMX(ctx, domain)
	switch {
	case errors.Is(err, ErrNoRecords):
		return implicitRoute(ctx, r, domain, opts)
	case errors.Is(err, ErrNXDomain):
		// RFC 5321 5.1: "If a non-existent domain error is returned, this
		// situation MUST be reported as an error."
		return Route{}, &RouteError{Permanent: true, Enhanced: EnhBadDestSystem,
			Msg: "domain " + domain + " does not exist", Err: err}
	case err != nil:
		// RFC 5321 5.1: "If a temporary error is returned, the message
		// MUST be queued and retried later." Errors of other Resolvers
		// without a class are taken as temporary too: retrying is safe.
		return Route{}, temporary("DNS lookup of MX records for "+domain+" failed", err)
	case len(mxs) == 0:
		return implicitRoute(ctx, r, domain, opts)
	}

	hosts, nullMX := mxHosts(mxs)
	if len(hosts) == 0 {
		if nullMX {
			// RFC 7505 4.1: fail at once, without connecting, with 5.1.10.
			return Route{}, &RouteError{Permanent: true, Enhanced: EnhNullMX,
				Msg: "domain " + domain + " accepts no mail (null MX)", Err: ErrNullMX}
		}
		return Route{}, &RouteError{Permanent: true, Enhanced: EnhNoRoute,
			Msg: "no usable MX host for " + domain, Err: ErrNoRecords}
	}
	sortByPreference(hosts, opts.Shuffle)

	// Cut by name before resolving, so lookups are spent on hosts we keep;
	// then by address.
	hosts = cutSelf(hosts, func(i int) bool { return opts.isSelfName(hosts[i].Name) })
	if len(hosts) > opts.maxHosts() {
		hosts = hosts[:opts.maxHosts()]
	}
	res := resolveAll(ctx, r, hosts, opts)
	hosts = cutSelf(hosts, func(i int) bool { return res[i].self })
	if len(hosts) == 0 {
		// RFC 5321 5.1: "If there are no records left at that point, it is
		// an error condition, and the message MUST be returned as
		// undeliverable."
		return Route{}, &RouteError{Permanent: true, Enhanced: EnhRoutingLoop,
			Msg: "MX records of " + domain + " point to this host", Err: ErrRoutingLoop}
	}

	var usable []Host
	var tempErr, permErr error
	for i, h := range hosts {
		switch {
		case len(h.Addrs) > 0:
			usable = append(usable, h)
		case errors.Is(res[i].err, ErrTemporary):
			tempErr = cmp.Or(tempErr, res[i].err)
		default:
			permErr = cmp.Or(permErr, res[i].err)
		}
	}
	switch {
	case len(usable) > 0:
		return Route{Hosts: usable}, nil
	case tempErr != nil:
		// A host that did not resolve now may resolve later.
		return Route{}, temporary("DNS lookup of the MX hosts of "+domain+" failed", tempErr)
	}
	// RFC 5321 5.1: "If MX records are present, but none of them are
	// usable, this situation MUST be reported as an error."
	return Route{}, &RouteError{Permanent: true, Enhanced: EnhNoRoute,
		Msg: "no MX host of " + domain + " has an address", Err: permErr}
}

// implicitRoute applies RFC 5321 5.1: "If an empty list of MXs is returned,
// the address is treated as if it was associated with an implicit MX RR, with
// a preference of 0, pointing to that host."
func implicitRoute(ctx context.Context, r Resolver, domain string, opts RouteOptions) (Route, error) {
	hosts := []Host{{Name: domain}}
	res := resolveAll(ctx, r, hosts, opts)
	switch {
	case res[0].self:
		return Route{}, &RouteError{Permanent: true, Enhanced: EnhRoutingLoop,
			Msg: "domain " + domain + " has no MX and its address is this host", Err: ErrRoutingLoop}
	case len(hosts[0].Addrs) > 0:
		return Route{Hosts: hosts, Implicit: true}, nil
	case errors.Is(res[0].err, ErrTemporary):
		return Route{}, temporary("DNS lookup of the address of "+domain+" failed", res[0].err)
	}
	// "... or the implicit MX is unusable, this situation MUST be reported
	// as an error."
	return Route{}, &RouteError{Permanent: true, Enhanced: EnhBadDestSystem,
		Msg: "domain " + domain + " has no MX and no address records", Err: res[0].err}
}

func temporary(msg string, err error) *RouteError {
	if !errors.Is(err, ErrTemporary) {
		err = fmt.Errorf("%w: %w", ErrTemporary, err)
	}
	return &RouteError{Enhanced: EnhDNSTemporary, Msg: msg, Err: err}
}

// mxHosts turns MX records into hosts: names canonical, duplicates kept once
// at their best preference, null and invalid exchanges dropped. nullMX
// reports whether a null MX was seen. RFC 7505 3: a domain with a null MX
// "MUST NOT advertise any other MX RR"; if it does anyway, the "." is taken
// as the invalid host name it is and the other records are used.
func mxHosts(mxs []*net.MX) (hosts []Host, nullMX bool) {
	seen := make(map[string]int, len(mxs))
	for _, mx := range mxs {
		if mx == nil {
			continue
		}
		name := canonical(mx.Host)
		if name == "" || name == "." {
			nullMX = true
			continue
		}
		if !isHostname(name) {
			continue
		}
		if i, ok := seen[name]; ok {
			hosts[i].Preference = min(hosts[i].Preference, mx.Pref)
			continue
		}
		seen[name] = len(hosts)
		hosts = append(hosts, Host{Name: name, Preference: mx.Pref})
	}
	return hosts, nullMX
}

// sortByPreference orders hosts by preference, lowest first, and shuffles
// each run of equal preference. RFC 5321 5.1: "If there are multiple
// destinations with the same preference and there is no clear reason to
// favor one ..., then the sender-SMTP MUST randomize them".
func sortByPreference(hosts []Host, shuffle func(n int, swap func(i, j int))) {
	if shuffle == nil {
		shuffle = rand.Shuffle
	}
	slices.SortStableFunc(hosts, func(a, b Host) int { return cmp.Compare(a.Preference, b.Preference) })
	for start := 0; start < len(hosts); {
		end := start + 1
		for end < len(hosts) && hosts[end].Preference == hosts[start].Preference {
			end++
		}
		if run := hosts[start:end]; len(run) > 1 {
			shuffle(len(run), func(i, j int) { run[i], run[j] = run[j], run[i] })
		}
		start = end
	}
}

// cutSelf applies RFC 5321 5.1 to hosts sorted by preference: if host i is
// this host, "all records at that preference level and higher-numbered ones
// MUST be discarded".
func cutSelf(hosts []Host, isSelf func(i int) bool) []Host {
	for i := range hosts {
		if isSelf(i) {
			n := i
			for n > 0 && hosts[n-1].Preference == hosts[i].Preference {
				n--
			}
			return hosts[:n]
		}
	}
	return hosts
}

// resolved is the outcome of one host's address lookup.
type resolved struct {
	err  error
	self bool // the host is this host, by name, address or RouteOptions.Self
}

// resolveAll looks up the addresses of every host in parallel and fills in
// Addrs (filtered, interleaved and capped). Whether a host is this host is
// decided on all its addresses, before the cap.
func resolveAll(ctx context.Context, r Resolver, hosts []Host, opts RouteOptions) []resolved {
	res := make([]resolved, len(hosts))
	var wg sync.WaitGroup
	for i := range hosts {
		wg.Go(func() {
			h := &hosts[i]
			addrs, err := r.LookupIP(ctx, h.Name)
			all := orderAddrs(addrs, opts.PreferIPv6, len(addrs))
			res[i].self = opts.isSelf(h.Name, all)
			h.Addrs = all[:min(len(all), opts.maxAddrs())]
			switch {
			case err != nil:
				res[i].err = err
			case len(h.Addrs) == 0:
				res[i].err = fmt.Errorf("%w: %s has no usable address", ErrNoRecords, h.Name)
			}
		})
	}
	wg.Wait()
	return res
}

// orderAddrs drops addresses nothing can connect to (unspecified,
// multicast) and duplicates, then alternates the families as RFC 8305 4
// suggests, so that a cap keeps both families, and caps the list at limit.
func orderAddrs(addrs []netip.Addr, preferIPv6 bool, limit int) []netip.Addr {
	var v4, v6 []netip.Addr
	seen := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || seen[a] {
			continue
		}
		seen[a] = true
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	first, second := v4, v6
	if preferIPv6 {
		first, second = v6, v4
	}
	out := make([]netip.Addr, 0, min(limit, len(v4)+len(v6)))
	for i := 0; len(out) < limit && (i < len(first) || i < len(second)); i++ {
		if i < len(first) {
			out = append(out, first[i])
		}
		if i < len(second) && len(out) < limit {
			out = append(out, second[i])
		}
	}
	return out
}

func (o *RouteOptions) maxHosts() int {
	if o.MaxHosts > 0 {
		return o.MaxHosts
	}
	return DefaultMaxHosts
}

func (o *RouteOptions) maxAddrs() int {
	if o.MaxAddrsPerHost > 0 {
		return o.MaxAddrsPerHost
	}
	return DefaultMaxAddrsPerHost
}

// isSelfName reports whether name is one of SelfNames.
func (o *RouteOptions) isSelfName(name string) bool {
	for _, s := range o.SelfNames {
		if canonical(s) == name {
			return true
		}
	}
	return false
}

// isSelf reports whether the host name with addresses addrs is this host.
func (o *RouteOptions) isSelf(name string, addrs []netip.Addr) bool {
	if o.isSelfName(name) {
		return true
	}
	for _, s := range o.SelfAddrs {
		if slices.Contains(addrs, s.Unmap().WithZone("")) {
			return true
		}
	}
	return o.Self != nil && o.Self(name, addrs)
}

// canonical lowercases name and drops one trailing dot (except from ".").
func canonical(name string) string {
	return strings.ToLower(trimDot(name))
}

// isHostname reports whether name is a dotted LDH name as RFC 5321 4.1.2's
// Domain grammar allows (sub-domain = Let-dig [Ldh-str]), at most 253 octets
// with labels of at most 63 (RFC 1035 2.3.4). A-labels pass; U-labels and
// address literals do not.
func isHostname(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
