package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// The relay benchmark: messages submitted to a relay for sinkRcpt, relayed
// over SMTP to the in-process sink on sinkIP, which counts them.
//
//   - posthorn: submission port with AUTH PLAIN (bench@bench.example, over
//     plaintext: loopback allows it), the spool finds the sink through
//     benchDNS (MX sink.test → mx.sink.test → sinkIP) and outbound_port.
//   - Postfix: port 25, no AUTH (mynetworks = 127.0.0.0/8), relayhost =
//     [sinkIP]:port, no DNS. The cheaper path for Postfix, on purpose: it
//     needs no SASL setup and does no DNS.
//
// "relayed" is the time from the start of the load until the sink has all
// N messages (each counted once, by the number in its Subject).

const (
	relayHostname = "relay.bench.example"
	relayUser     = benchRcpt // bench@bench.example
	relayPass     = "pw"
	// relayWait bounds the wait for the sink after the last 250.
	relayWait = 5 * time.Minute
	// queueWait bounds the wait for an empty queue after the sink has all.
	queueWait = 30 * time.Second
)

// relayFlags are posthorn's -o flags for the relay benchmark.
func relayFlags(dir, smtpAddr, subAddr, sinkPort, dnsAddr string) []string {
	var args []string
	for _, kv := range []string{
		"hostname=" + relayHostname, "domains=" + benchDomain, "data_dir=" + dir,
		"smtp_listen=" + smtpAddr, "submission_listen=" + subAddr, "submissions_listen=",
		"pop3_listen=", "pop3s_listen=", "imap_listen=", "imaps_listen=",
		"outbound_port=" + sinkPort, "dns_resolvers=" + dnsAddr,
		"max_connections_per_ip=1000", "log_level=warn",
	} {
		args = append(args, "-o", kv)
	}
	return args
}

// relaySpec is the relay load: from bench@bench.example to rcpt@sink.test.
func relaySpec(spec loadSpec, auth bool) loadSpec {
	spec.from, spec.rcpt = relayUser, sinkRcpt
	if auth {
		spec.authUser, spec.authPass = relayUser, relayPass
	}
	return spec
}

// Relay paths (the "client" column of the relay table).
const (
	pathSubmission = "go-loadgen → 587 AUTH"
	pathMynetworks = "go-loadgen → 25 mynetworks"
)

// posthornRelayRun: a fresh posthorn relaying one load to a fresh sink.
// coldAuth is -cold-auth.
func posthornRelayRun(ctx context.Context, bin, dir string, spec loadSpec, dnsSrv *benchDNS, coldAuth bool, out io.Writer, tag string) (res result, err error) {
	spec = relaySpec(spec, true)
	res = result{bench: benchRelay, server: "posthorn", client: pathSubmission, sessions: spec.sessions, messages: spec.messages}
	sk, err := startSink(spec.messages)
	if err != nil {
		return res, err
	}
	defer func() {
		if serr := sk.close(); serr != nil && err == nil {
			err = fmt.Errorf("sink: %w", serr)
		}
	}()
	smtpAddr, err := freeAddr()
	if err != nil {
		return res, err
	}
	subAddr, err := freeAddr()
	if err != nil {
		return res, err
	}
	flags := relayFlags(dir, smtpAddr, subAddr, sk.port(), dnsSrv.addr)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, err
	}
	add := exec.CommandContext(ctx, bin, append(slices.Clone(flags), "user", "add", relayUser)...)
	add.Stdin = strings.NewReader(relayPass + "\n")
	if b, err := add.CombinedOutput(); err != nil {
		return res, fmt.Errorf("posthorn user add: %v: %s", err, strings.TrimSpace(string(b)))
	}
	srv, err := startServe(ctx, bin, flags, subAddr, dir+".log")
	if err != nil {
		return res, err
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.stop()
		}
	}()
	pid := srv.cmd.Process.Pid
	rss := startSampler(func() int64 { return procStatus(pid, "VmRSS:") })
	defer rss.stop()

	if !coldAuth {
		// One login before the load, untimed: the sessions' AUTHs then hit
		// posthorn's verified-credential cache instead of each computing
		// the PBKDF2 hash (600,000 iterations) at the same time.
		warm := spec
		warm.sessions, warm.messages = 1, 0
		if _, err := runLoad(ctx, subAddr, warm); err != nil {
			return res, fmt.Errorf("warm-up login: %w", err)
		}
	}
	cpu0, _ := procCPU(pid)
	q0 := dnsSrv.queries.Load()

	t0 := time.Now()
	sk.start(t0)
	c, lerr := runClient(ctx, clientGo, subAddr, spec)
	res.accepted, res.note = c.d, c.note
	if coldAuth {
		res.note = strings.TrimPrefix(res.note+", cold AUTH", ", ")
	}
	if lerr != nil {
		return res, fmt.Errorf("%w; %d accepted; server log: %s", lerr, c.n, tail(srv.logPath))
	}
	werr := waitSink(ctx, sk, t0)
	res.stored = time.Since(t0)
	cpu1, _ := procCPU(pid)
	res.cpu = cpu1 - cpu0
	res.maxRSS = rss.stop()
	res.hwm = procStatus(pid, "VmHWM:")
	res.dnsQueries = dnsSrv.queries.Load() - q0
	if werr != nil {
		q, _ := posthornQueue(ctx, bin, flags)
		return res, fmt.Errorf("%w; queue: %s; server log: %s", werr, firstLines(q, 6), tail(srv.logPath))
	}
	res.stored = sk.stats().allAt

	qd, qerr := waitQueueEmpty(ctx, func(ctx context.Context) (string, error) { return posthornQueue(ctx, bin, flags) })
	stopped = true
	serr := srv.stop()
	res.sink = sk.stats()
	res.queueEmpty = qd
	fmt.Fprintf(out, "%s: relay posthorn %2d sessions: %d accepted in %.2fs = %.0f msg/s, at sink after %.2fs = %.0f msg/s, CPU %s, VmHWM %s%s%s; %s; DNS queries %d; queue empty %s after\n",
		tag, spec.sessions, c.n, c.d.Seconds(), rate(c.n, c.d), res.stored.Seconds(), rate(spec.messages, res.stored),
		res.cpu, mib(res.hwm), c.latency(), authLatency(c.auth), res.sink, res.dnsQueries, qd.Round(time.Millisecond))
	return res, relayCheck(res, qerr, serr)
}

// postfixRelayRun: a fresh Postfix relaying one load to a fresh sink.
func postfixRelayRun(ctx context.Context, dir string, spec loadSpec, out io.Writer, tag string) (res result, err error) {
	spec = relaySpec(spec, false)
	res = result{bench: benchRelay, server: "postfix", client: pathMynetworks, sessions: spec.sessions, messages: spec.messages}
	sk, err := startSink(spec.messages)
	if err != nil {
		return res, err
	}
	defer func() {
		if serr := sk.close(); serr != nil && err == nil {
			err = fmt.Errorf("sink: %w", serr)
		}
	}()
	p, err := startPostfix(ctx, dir, sk.addr)
	if p != nil {
		defer func() {
			if serr := p.stop(); serr != nil && err == nil {
				err = fmt.Errorf("postfix stop: %w", serr)
			}
		}()
	}
	if err != nil {
		return res, fmt.Errorf("postfix: %w", err)
	}
	mem := startSampler(p.pss)
	defer mem.stop()
	cpu0 := p.cpu()

	t0 := time.Now()
	sk.start(t0)
	c, lerr := runClient(ctx, clientGo, p.addr, spec)
	res.accepted, res.note = c.d, c.note
	if lerr != nil {
		return res, fmt.Errorf("%w; %d accepted; maillog: %s", lerr, c.n, tail(p.dir+"/maillog"))
	}
	werr := waitSink(ctx, sk, t0)
	res.stored = time.Since(t0)
	res.cpu = p.cpu() - cpu0
	res.maxRSS = mem.stop()
	if werr != nil {
		q, _ := p.queue(ctx)
		return res, fmt.Errorf("%w; queue: %s; maillog: %s", werr, firstLines(q, 6), tail(p.dir+"/maillog"))
	}
	res.stored = sk.stats().allAt

	qd, qerr := waitQueueEmpty(ctx, p.queue)
	res.sink = sk.stats()
	res.queueEmpty = qd
	fmt.Fprintf(out, "%s: relay postfix  %2d sessions: %d accepted in %.2fs = %.0f msg/s, at sink after %.2fs = %.0f msg/s, CPU %s, max ΣPSS %s%s; %s; queue empty %s after\n",
		tag, spec.sessions, c.n, c.d.Seconds(), rate(c.n, c.d), res.stored.Seconds(), rate(spec.messages, res.stored),
		res.cpu, mib(res.maxRSS), c.latency(), res.sink, qd.Round(time.Millisecond))
	return res, relayCheck(res, qerr, nil)
}

// relayCheck turns what was seen after the load into the run's verdict.
func relayCheck(res result, qerr, serr error) error {
	switch {
	case qerr != nil:
		return qerr
	case serr != nil:
		return serr
	case res.sink.dups > 0:
		return fmt.Errorf("the sink received %d messages twice", res.sink.dups)
	}
	return nil
}

// waitSink waits until the sink has every message, at most relayWait.
func waitSink(ctx context.Context, sk *sink, t0 time.Time) error {
	timer := time.NewTimer(relayWait)
	defer timer.Stop()
	select {
	case <-sk.done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-timer.C:
		st := sk.stats()
		return fmt.Errorf("only %d of %d messages at the sink after %s (%s)", st.distinct, sk.want, time.Since(t0).Round(time.Second), st)
	}
}

// waitQueueEmpty polls list (a mailq) every 100 ms until it prints "Mail
// queue is empty", at most queueWait; it returns how long that took.
func waitQueueEmpty(ctx context.Context, list func(context.Context) (string, error)) (time.Duration, error) {
	t0 := time.Now()
	for {
		q, err := list(ctx)
		if err == nil && strings.Contains(q, "Mail queue is empty") {
			return time.Since(t0), nil
		}
		if time.Since(t0) > queueWait || ctx.Err() != nil {
			if err != nil {
				return time.Since(t0), fmt.Errorf("queue list: %v: %s", err, firstLines(q, 6))
			}
			return time.Since(t0), fmt.Errorf("queue not empty %s after the sink had every message: %s", queueWait, firstLines(q, 6))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// posthornQueue runs "posthorn FLAGS queue list" (through the running
// server's control socket).
func posthornQueue(ctx context.Context, bin string, flags []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, bin, append(slices.Clone(flags), "queue", "list")...).CombinedOutput()
	return string(b), err
}

// queue runs Postfix's mailq for this instance: "postqueue -c DIR -p".
func (p *postfixPeer) queue(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return p.postfix(ctx, postqueueCmd, "-p")
}

const postqueueCmd = "/usr/sbin/postqueue"

func firstLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = append(l[:n], "...")
	}
	return strings.Join(l, " | ")
}

// authLatency summarises AUTH-to-235 times, one per session.
func authLatency(d []time.Duration) string {
	if len(d) == 0 {
		return ""
	}
	l := slices.Clone(d)
	slices.Sort(l)
	return fmt.Sprintf(", AUTH→235 p50 %s max %s", l[len(l)/2].Round(10*time.Microsecond), l[len(l)-1].Round(10*time.Microsecond))
}

func (s sinkStats) String() string {
	t := fmt.Sprintf("sink: %d connections (%d open at most)", s.conns, s.maxOpen)
	if s.dups > 0 {
		t += fmt.Sprintf(", %d DUPLICATES", s.dups)
	}
	if s.other > 0 {
		t += fmt.Sprintf(", %d other messages", s.other)
	}
	return t
}
