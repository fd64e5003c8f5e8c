package spool

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	bolt "go.etcd.io/bbolt"

	"posthorn/dnsmx"
	"posthorn/mailbox/failpoint"
	"posthorn/protocol/smtp"
	"posthorn/protocol/smtp/client"
)

// Enhanced status codes of local results (RFC 3463), temporary class.
const (
	enhNoAnswer      = "4." + smtp.EnhNoAnswer       // X.4.1 No answer from host: refused, timed out
	enhBadConnection = "4." + smtp.EnhBadConnection  // X.4.2 Bad connection: lost during the session
	enhNoRoute       = "4." + smtp.EnhRoutingFailure // X.4.4 Unable to route
	enhProtocol      = "4." + smtp.EnhProtoOther     // X.5.0 Other protocol status: a reply that did not parse
)

// jobData is a job loaded from the store: the message and those of the
// job's recipients that are still queued.
type jobData struct {
	job   *job
	msg   msgRecord
	raw   []byte // loaded only for sending
	rcpts []loadedRcpt
}

type loadedRcpt struct {
	idx uint32
	rec rcptRecord
}

// session is an open connection to one host of a domain's route.
type session struct {
	conn  *client.Conn
	host  string // the MX name
	relay string // "host[ip]:port", for logs
}

// failure is why a domain's recipients cannot be attempted: a route error
// or no host reachable. permanent bounces them; otherwise they are deferred.
type failure struct {
	permanent bool
	res       *result
}

// runDomain is one worker for a domain: it resolves the route once,
// connects to the first host that answers, and sends the domain's jobs one
// after another over that connection (RFC 5321 4.5.4.1 prefers one copy
// per host; reusing the connection saves the setup per message).
func (s *Spool) runDomain(ctx, work context.Context, dw *domainWork) {
	defer s.workerDone(ctx, work, dw)
	var (
		rt   *dnsmx.Route
		fail *failure
		sess *session
	)
	defer func() {
		switch {
		case sess == nil:
		case ctx.Err() != nil:
			sess.conn.Close() // stopping: no wait for a QUIT reply
		default:
			sess.conn.Quit()
		}
	}()
	for {
		j := s.takeJob(ctx, dw)
		if j == nil {
			return
		}
		d := s.loadJob(j, false)
		if d == nil {
			continue
		}
		if fail == nil && sess == nil {
			if reason := s.deadReason(dw.name); reason != nil {
				fail = &failure{res: reason}
			}
		}
		if fail == nil && rt == nil {
			r, f := s.route(work, dw.name)
			rt, fail = &r, f
			if f != nil && !f.permanent {
				s.markDead(dw.name, f.res)
			}
		}
		if fail == nil && sess == nil {
			sess, fail = s.connect(work, dw.name, rt)
			if fail != nil {
				s.markDead(dw.name, fail.res)
			}
		}
		if fail != nil {
			// The domain's waiting jobs share the failure.
			s.failJob(work, d, fail)
			for _, other := range s.takeAllJobs(dw) {
				if d := s.loadJob(other, false); d != nil {
					s.failJob(work, d, fail)
				}
			}
			continue
		}
		if !s.sendJob(work, sess, d) {
			sess.conn.Close()
			sess = nil
		}
	}
}

// loadJob reads a job's message and its still-queued recipients (with the
// message bytes if withRaw). It returns nil, releasing the job, when
// nothing is left to do (the message was deleted or the recipients are
// done).
func (s *Spool) loadJob(j *job, withRaw bool) *jobData {
	d := &jobData{job: j}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := buckets(tx)
		found, err := getJSON(b.messages, []byte(j.id), &d.msg)
		if err != nil || !found {
			return err
		}
		for _, idx := range j.rcpts {
			var r rcptRecord
			found, err := getJSON(b.rcpts, rcptKey{j.id, idx}.bytes(), &r)
			if err != nil {
				return err
			}
			if found && r.Status == StatusQueued {
				d.rcpts = append(d.rcpts, loadedRcpt{idx, r})
			}
		}
		if withRaw && len(d.rcpts) > 0 {
			// Copied: the bytes of a read transaction die with it, and
			// holding one open for a whole SMTP session would block the
			// file from growing.
			d.raw = bytes.Clone(b.bodies.Get([]byte(j.id)))
		}
		return nil
	})
	if err != nil {
		s.log.Error("reading a queued message failed", slog.String("queue_id", j.id), slog.Any("err", err))
	}
	if err != nil || len(d.rcpts) == 0 || (withRaw && d.raw == nil) {
		s.release(j)
		return nil
	}
	return d
}

// route finds the hosts for domain: an address literal goes to that
// address (RFC 5321 5.1: "the address ... is used"), anything else is
// looked up through dnsmx.
func (s *Spool) route(ctx context.Context, domain string) (dnsmx.Route, *failure) {
	if strings.HasPrefix(domain, "[") {
		a, ok := parseLiteral(domain)
		if !ok {
			return dnsmx.Route{}, &failure{permanent: true,
				res: &result{Enhanced: dnsmx.EnhBadDestSystem, Text: "unsupported address literal " + domain}}
		}
		if slices.Contains(s.opts.SelfAddrs, a) {
			return dnsmx.Route{}, &failure{permanent: true,
				res: &result{Enhanced: dnsmx.EnhRoutingLoop, Text: "mail for " + domain + " loops back to myself"}}
		}
		return dnsmx.Route{Hosts: []dnsmx.Host{{Name: domain, Addrs: []netip.Addr{a}}}}, nil
	}
	rt, err := dnsmx.LookupRoute(ctx, s.opts.Resolver, domain, dnsmx.RouteOptions{
		SelfNames: s.selfNames(),
		SelfAddrs: s.opts.SelfAddrs,
		Shuffle:   s.shuffle,
	})
	if err == nil {
		return rt, nil
	}
	var re *dnsmx.RouteError
	if !errors.As(err, &re) {
		re = &dnsmx.RouteError{Enhanced: dnsmx.EnhDNSTemporary, Msg: "DNS lookup for " + domain + " failed"}
	}
	return dnsmx.Route{}, &failure{permanent: re.Permanent, res: &result{Enhanced: re.Enhanced, Text: re.Msg}}
}

func (s *Spool) selfNames() []string {
	return append([]string{s.opts.Hostname}, s.opts.SelfHosts...)
}

// shuffle randomizes MX hosts of equal preference with the spool's Rand.
func (s *Spool) shuffle(n int, swap func(i, j int)) {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	s.opts.Rand.Shuffle(n, swap)
}

// parseLiteral reads "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC 5321 4.1.3).
func parseLiteral(lit string) (netip.Addr, bool) {
	inner := strings.TrimSuffix(strings.TrimPrefix(lit, "["), "]")
	if len(inner) > 5 && strings.EqualFold(inner[:5], "IPv6:") {
		a, err := netip.ParseAddr(inner[5:])
		return a, err == nil && a.Is6() && a.Zone() == ""
	}
	a, err := netip.ParseAddr(inner)
	return a, err == nil && a.Is4()
}

// connect tries every address of every host in order until one gives a
// usable session (RFC 5321 5.1: "try each of the addresses"). A refused
// connection, a greeting other than 2yz, or any other setup failure moves
// on; a failed STARTTLS handshake is retried once on the same address in
// plaintext (opportunistic TLS). The failure returned is the last one.
func (s *Spool) connect(ctx context.Context, domain string, rt *dnsmx.Route) (*session, *failure) {
	cfg := client.Config{LocalName: s.opts.Hostname, TLS: s.opts.TLS, LocalAddr: s.opts.LocalAddr, Logger: s.log}
	last := &result{Enhanced: enhNoRoute, Text: "no host to try for " + domain}
	for _, h := range rt.Hosts {
		for _, a := range h.Addrs {
			ap := netip.AddrPortFrom(a, uint16(s.opts.OutboundPort))
			relay := h.Name + "[" + a.String() + "]:" + strconv.Itoa(s.opts.OutboundPort)
			conn, err := client.Dial(ctx, "tcp", ap.String(), cfg, client.DialOptions{})
			var tlsErr *client.TLSError
			if errors.As(err, &tlsErr) {
				s.log.Info("STARTTLS failed; retrying without TLS", slog.String("relay", relay), slog.Any("err", tlsErr.Err))
				conn, err = client.Dial(ctx, "tcp", ap.String(), cfg, client.DialOptions{NoTLS: true})
			}
			if err == nil {
				return &session{conn: conn, host: h.Name, relay: relay}, nil
			}
			last = dialFailure(err, h.Name, relay)
			s.log.Debug("connection failed", slog.String("relay", relay), slog.String("reply", last.String()))
			if ctx.Err() != nil {
				return nil, &failure{res: last}
			}
		}
	}
	return nil, &failure{res: last}
}

// dialFailure describes a failed connection for the log and the DSN,
// without Go error texts: RFC 3463 X.4.1 "No answer from host" for a
// connection that failed or timed out, X.4.2 "Bad connection" for one lost
// during setup, or the server's own reply.
func dialFailure(err error, host, relay string) *result {
	var re *client.ReplyError
	if errors.As(err, &re) {
		return &result{Code: re.Reply.Code, Enhanced: re.Reply.Enhanced, Text: re.Reply.Text, Host: host, Relay: relay}
	}
	var pe *client.ProtocolError
	var errno syscall.Errno
	var opErr *net.OpError
	switch {
	case errors.As(err, &pe):
		return &result{Enhanced: enhProtocol, Text: "protocol error from " + relay, Relay: relay}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &result{Enhanced: enhNoAnswer, Text: "connection refused by " + relay, Relay: relay}
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return &result{Enhanced: enhNoAnswer, Text: "connection to " + relay + " timed out", Relay: relay}
	case errors.Is(err, context.Canceled):
		return &result{Enhanced: enhBadConnection, Text: "delivery attempt to " + relay + " cancelled", Relay: relay}
	case errors.As(err, &errno):
		return &result{Enhanced: enhNoAnswer, Text: "cannot connect to " + relay + ": " + errno.Error(), Relay: relay}
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return &result{Enhanced: enhNoAnswer, Text: "cannot connect to " + relay, Relay: relay}
	}
	return &result{Enhanced: enhBadConnection, Text: "connection to " + relay + " lost", Relay: relay}
}

// sendJob runs one SMTP transaction for d over sess and records the
// results. It reports whether the connection may carry another message.
func (s *Spool) sendJob(ctx context.Context, sess *session, d *jobData) bool {
	full := s.loadJob(d.job, true)
	if full == nil {
		return true
	}
	d = full
	env := client.Envelope{
		From: d.msg.From.path(),
		Mail: smtp.MailParams{Body: d.msg.Body, SMTPUTF8: d.msg.SMTPUTF8, Ret: d.msg.Ret, EnvID: d.msg.EnvID},
	}
	for _, r := range d.rcpts {
		env.Rcpts = append(env.Rcpts, client.Rcpt{
			Path:   r.rec.Path.path(),
			Params: smtp.RcptParams{Notify: r.rec.Notify, ORcpt: r.rec.ORcpt},
		})
	}
	results, err := sess.conn.Send(ctx, env, d.raw)
	outs := make([]outcome, len(d.rcpts))
	if err != nil {
		// The connection failed before any recipient had an answer: all
		// are deferred (RFC 5321 6.1: a duplicate is better than a loss).
		res := dialFailure(err, sess.host, sess.relay)
		if res.Code == 0 && res.Enhanced == enhNoAnswer {
			res.Enhanced = enhBadConnection
		}
		for i := range outs {
			outs[i] = outcome{kind: temporary, res: res}
		}
		s.recordJob(ctx, d, outs)
		return false
	}
	// The remote has answered the final dot; until recordJob commits, a
	// crash leaves the recipients queued and they are sent again: a
	// duplicate, never a loss (RFC 5321 6.1).
	_ = failpoint.Inject(failpoint.RemoteAccepted)
	// RFC 3461 5.2.2 (b): a next hop without DSN cannot report success,
	// so we send the "relayed" DSN for NOTIFY=SUCCESS ourselves.
	_, dsnOffered := sess.conn.Extensions()["DSN"]
	for i, rr := range results {
		if i >= len(outs) {
			break
		}
		res := &result{Code: rr.Reply.Code, Enhanced: rr.Reply.Enhanced, Text: rr.Reply.Text, Host: sess.host, Relay: sess.relay}
		if rr.Local {
			// The client made this reply; the server said nothing.
			res = &result{Enhanced: rr.Reply.Enhanced, Text: rr.Reply.Text, Relay: sess.relay}
			if res.Enhanced == "" {
				res.Enhanced = strconv.Itoa(rr.Reply.Code/100) + ".0.0"
			}
		}
		switch {
		case rr.Delivered:
			outs[i] = outcome{kind: delivered, res: res, relayed: !dsnOffered}
		case rr.Permanent:
			outs[i] = outcome{kind: permanent, res: res}
		default:
			outs[i] = outcome{kind: temporary, res: res}
		}
	}
	for i := len(results); i < len(outs); i++ {
		outs[i] = outcome{kind: temporary, res: &result{Enhanced: enhBadConnection, Text: "no result from " + sess.relay, Relay: sess.relay}}
	}
	s.recordJob(ctx, d, outs)
	return sess.conn.Err() == nil
}

// failJob records the same failure for every recipient of d.
func (s *Spool) failJob(ctx context.Context, d *jobData, f *failure) {
	kind := temporary
	if f.permanent {
		kind = permanent
	}
	outs := make([]outcome, len(d.rcpts))
	for i := range outs {
		outs[i] = outcome{kind: kind, res: f.res}
	}
	s.recordJob(ctx, d, outs)
}

// relayName is the relay field of a log line.
func relayName(res *result) string {
	if res == nil || res.Relay == "" {
		return "none"
	}
	return res.Relay
}
