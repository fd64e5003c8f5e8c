// Package dnsmx finds where mail for a domain goes: the DNS lookups of the
// outbound queue and the MX rules of RFC 5321 5.1 and RFC 7505 built on them.
//
// Two layers:
//
//   - Resolver is the DNS the queue needs (MX, A and AAAA, CNAMEs followed),
//     with errors in three classes tested with errors.Is: ErrNXDomain (the
//     name does not exist), ErrNoRecords (the name exists, no record of that
//     type) and ErrTemporary (retry later). DNSResolver implements it with
//     github.com/miekg/dns against configured recursive servers.
//   - LookupRoute turns a domain into a Route: the ordered hosts to try, each
//     with its addresses, or a *RouteError that says whether to bounce or to
//     defer and with which RFC 3463 enhanced status code.
//
// Decisions, each cited where it is made:
//
//   - MX records are sorted by preference; equal preferences are shuffled
//     (RFC 5321 5.1).
//   - No MX records: the domain's own A/AAAA records are an implicit MX of
//     preference 0 (RFC 5321 5.1). No address either: bounce 5.1.2.
//   - NXDOMAIN: bounce 5.1.2. A temporary DNS failure: defer 4.4.3.
//   - A null MX (a lone MX whose exchange is ".", RFC 7505 3): bounce 5.1.10
//     without connecting (RFC 7505 4.1). A "." published next to other MX
//     records breaks RFC 7505 3; it is ignored and the others are used.
//   - An MX naming this host, by name or address, cuts that preference and
//     every higher one (RFC 5321 5.1); nothing left: bounce 5.4.6.
//   - Hosts whose names do not resolve are dropped. If no host has an
//     address, the route fails: 4.4.3 if any lookup failed temporarily,
//     otherwise 5.4.4. A returned Host always has at least one address.
//   - Work is bounded: at most RouteOptions.MaxHosts MX hosts and
//     RouteOptions.MaxAddrsPerHost addresses per host (RFC 5321 5.1 allows a
//     limit on alternate addresses; it asks that at least two be tried).
//
// The sub-package dnstest is an in-process DNS server on loopback for tests.
//
// RFCs: 5321 (5.1 locating the target host), 7505 (null MX), 1035 (messages,
// truncation 4.2.1), 2181 (10.3 MX targets), 6891 (EDNS0), 7766 (TCP
// fallback), 6604 (rcode after CNAMEs), 3463 (enhanced status codes), 8305
// (address family interleaving).
package dnsmx
