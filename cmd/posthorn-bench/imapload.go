package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// mixResult is one mix load.
type mixResult struct {
	cycles, cmds   int
	d              time.Duration
	cpu, clientCPU time.Duration
	mem, anon      int64
	login          []time.Duration // LOGIN to its OK
	cycle          []time.Duration // connect to LOGOUT's OK
}

func (m mixResult) latency() string {
	q := func(v []time.Duration, f float64) time.Duration {
		if len(v) == 0 {
			return 0
		}
		v = slices.Clone(v)
		slices.Sort(v)
		return v[min(len(v)-1, int(f*float64(len(v))))].Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("cycle p50 %s p99 %s, LOGIN p50 %s p99 %s", q(m.cycle, 0.5), q(m.cycle, 0.99), q(m.login, 0.5), q(m.login, 0.99))
}

// runMix runs the mix load against t: an unmeasured warm-up cycle per
// client (first logins, Dovecot's index files), then the measured loops.
func runMix(parent context.Context, t *imapTarget, d *imapData, o imapOptions) (mixResult, error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	type clientStats struct {
		cycles, cmds int
		login, cycle []time.Duration
		end          time.Time
	}
	stats := make([]clientStats, o.clients)
	var wg sync.WaitGroup
	var ready sync.WaitGroup
	ready.Add(o.clients)
	startc := make(chan struct{})
	var t0 time.Time
	for i := range o.clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%8))}
			var st clientStats
			_, err := mixCycle(ctx, t.addr, local, mixUser(i), d, rng)
			ready.Done()
			if err != nil {
				cancel(fmt.Errorf("client %d warm-up: %w", i+1, err))
				return
			}
			<-startc
			for ctx.Err() == nil && time.Since(t0) < o.duration {
				c0 := time.Now()
				r, err := mixCycle(ctx, t.addr, local, mixUser(i), d, rng)
				st.cmds += r.cmds
				if err != nil {
					cancel(fmt.Errorf("client %d (%s): %w", i+1, mixUser(i), err))
					break
				}
				st.cycles++
				st.login = append(st.login, r.login)
				st.cycle = append(st.cycle, time.Since(c0))
			}
			st.end = time.Now()
			stats[i] = st
		})
	}
	ready.Wait()
	var res mixResult
	mem := startSampler(t.mem)
	var anon *sampler
	if t.anon != nil {
		anon = startSampler(t.anon)
	}
	cpu0 := t.cpu()
	self0, _ := procCPU(os.Getpid())
	t0 = time.Now()
	close(startc)
	wg.Wait()
	self1, _ := procCPU(os.Getpid())
	res.cpu = t.cpu() - cpu0
	res.clientCPU = self1 - self0
	res.mem = mem.stop()
	if anon != nil {
		res.anon = anon.stop()
	}
	if ctx.Err() != nil {
		return res, context.Cause(ctx)
	}
	var end time.Time
	for _, st := range stats {
		res.cycles += st.cycles
		res.cmds += st.cmds
		res.login = append(res.login, st.login...)
		res.cycle = append(res.cycle, st.cycle...)
		if st.end.After(end) {
			end = st.end
		}
	}
	res.d = end.Sub(t0)
	return res, nil
}

// cycleResult is one mix cycle.
type cycleResult struct {
	cmds  int
	login time.Duration
}

// mixCycle is one cycle of the mix (the package comment above).
func mixCycle(ctx context.Context, addr string, local net.Addr, user string, d *imapData, rng *rand.Rand) (r cycleResult, err error) {
	c, err := dialIMAP(ctx, addr, local, 30*time.Second)
	if err != nil {
		return r, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	defer func() { r.cmds = c.ok }()
	l0 := time.Now()
	if err := c.login(user, imapPass); err != nil {
		return r, err
	}
	r.login = time.Since(l0)
	n, err := c.selectBox("INBOX")
	if err != nil {
		return r, err
	}
	if n < 2 {
		return r, fmt.Errorf("SELECT: %d messages", n)
	}
	got := 0
	err = c.fetch("FETCH 1:* FLAGS", func(seq int, resp *imapResp) error {
		if _, ok := fetchFlags(resp.line); !ok {
			return fmt.Errorf("no FLAGS in %.100q", resp.line)
		}
		got++
		return nil
	})
	if err != nil {
		return r, err
	}
	if got != n {
		return r, fmt.Errorf("FETCH 1:* FLAGS: %d responses, %d messages", got, n)
	}
	for range 3 {
		seq := 1 + rng.IntN(n)
		bodies := 0
		err := c.fetch("FETCH "+strconv.Itoa(seq)+" BODY.PEEK[]", func(s int, resp *imapResp) error {
			if len(resp.lits) != 1 {
				return fmt.Errorf("%d literals in a BODY[] response", len(resp.lits))
			}
			if !d.known[sumOf(resp.lits[0])] {
				return fmt.Errorf("message %d: %d octets, not one of the account's messages", s, len(resp.lits[0]))
			}
			bodies++
			return nil
		})
		if err != nil {
			return r, err
		}
		if bodies != 1 {
			return r, fmt.Errorf("FETCH %d BODY.PEEK[]: %d bodies", seq, bodies)
		}
	}
	a := 1 + rng.IntN(n)
	b := 1 + (a+rng.IntN(n-1))%n // != a
	if _, err := c.store(fmt.Sprintf("%d,%d", a, b), `+FLAGS (\Seen)`); err != nil {
		return r, err
	}
	for _, crit := range []string{"UNSEEN", fmt.Sprintf("SUBJECT %q", fmt.Sprintf("x%d", rng.IntN(10)))} {
		found, err := c.search(crit)
		if err != nil {
			return r, err
		}
		for _, f := range found {
			if f < 1 || f > n {
				return r, fmt.Errorf("SEARCH %s: %d of %d messages", crit, f, n)
			}
		}
	}
	if err := c.appendMsg("INBOX", "", d.appended); err != nil {
		return r, err
	}
	if _, err := c.store(strconv.Itoa(1+rng.IntN(n)), `+FLAGS.SILENT (\Deleted)`); err != nil {
		return r, err
	}
	gone, err := c.expunge()
	if err != nil {
		return r, err
	}
	if gone != 1 {
		return r, fmt.Errorf("EXPUNGE removed %d messages, want 1", gone)
	}
	return r, c.logout()
}

// bigPass is one session on the large folder.
type bigPass struct {
	login, sel, fetch, search time.Duration
	fetched, found            int
}

func runBig(ctx context.Context, addr string, o imapOptions) (bigPass, error) {
	var p bigPass
	c, err := dialIMAP(ctx, addr, nil, 10*time.Minute)
	if err != nil {
		return p, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	t0 := time.Now()
	if err := c.login(bigUser, imapPass); err != nil {
		return p, err
	}
	p.login = time.Since(t0)
	t0 = time.Now()
	n, err := c.selectBox("INBOX")
	p.sel = time.Since(t0)
	if err != nil {
		return p, err
	}
	if n != o.big {
		return p, fmt.Errorf("SELECT: %d messages, want %d", n, o.big)
	}
	t0 = time.Now()
	err = c.fetch("UID FETCH 1:* FLAGS", func(int, *imapResp) error { p.fetched++; return nil })
	p.fetch = time.Since(t0)
	if err != nil {
		return p, err
	}
	if p.fetched != o.big {
		return p, fmt.Errorf("UID FETCH 1:* FLAGS: %d responses, want %d", p.fetched, o.big)
	}
	t0 = time.Now()
	found, err := c.search(`TEXT "needle"`)
	p.search = time.Since(t0)
	if err != nil {
		return p, err
	}
	p.found = len(found)
	if p.found != o.needles {
		return p, fmt.Errorf(`SEARCH TEXT "needle": %d found, want %d`, p.found, o.needles)
	}
	return p, c.logout()
}

// idleResult is one idle measurement.
type idleResult struct {
	login                 bool
	opened                int
	refused               string // the first refusal, if any
	before, after         int64  // memory (VmRSS or ΣPSS)
	anonBefore, anonAfter int64  // posthorn RssAnon
	openTime              time.Duration
	server                string
}

func (r idleResult) what() string {
	if r.login {
		return "after LOGIN+SELECT"
	}
	return "after the greeting"
}

func (r idleResult) refusedText() string {
	if r.refused == "" {
		return ""
	}
	return " (then refused: " + r.refused + ")"
}

func (r idleResult) perConn() float64 {
	if r.opened == 0 {
		return 0
	}
	return float64(r.after-r.before) / float64(r.opened)
}

func (r idleResult) anonText() string {
	if r.server != "posthorn" || r.opened == 0 {
		return ""
	}
	return fmt.Sprintf(" (RssAnon %s → %s = %.1f KiB)", mib(r.anonBefore), mib(r.anonAfter), float64(r.anonAfter-r.anonBefore)/float64(r.opened)/1024)
}

// runIdle opens up to n connections (after the greeting, or after LOGIN
// and SELECT INBOX), 16 at a time from 127.0.0.1-8, until the server
// refuses one; holds them for 2 s; reads the server's memory; closes them.
func runIdle(ctx context.Context, t *imapTarget, d *imapData, n int, login bool) (idleResult, error) {
	r := idleResult{login: login, server: t.server}
	settle := func() {
		runtime.GC()
		time.Sleep(2 * time.Second)
	}
	settle()
	r.before = t.mem()
	if t.anon != nil {
		r.anonBefore = t.anon()
	}
	conns := make([]*imapConn, n)
	var next atomic.Int64
	var refusedOnce sync.Once
	var stopOpen atomic.Bool
	var firstErr error
	var errOnce sync.Once
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+w%8))}
			for !stopOpen.Load() && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := dialIMAP(ctx, t.addr, local, time.Minute)
				if err == nil && login {
					if err = c.login(idleUser(i/imapIdlePerAc), imapPass); err == nil {
						_, err = c.selectBox("INBOX")
					}
					if err != nil {
						c.Close()
					}
				}
				if err != nil {
					if errors.Is(err, errRefused) || strings.Contains(err.Error(), "LOGIN: ") {
						refusedOnce.Do(func() { r.refused = err.Error() })
						stopOpen.Store(true)
						return
					}
					errOnce.Do(func() { firstErr = fmt.Errorf("connection %d: %w", i+1, err) })
					stopOpen.Store(true)
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	r.openTime = time.Since(t0)
	for _, c := range conns {
		if c != nil {
			r.opened++
		}
	}
	if firstErr == nil {
		settle()
		r.after = t.mem()
		if t.anon != nil {
			r.anonAfter = t.anon()
		}
		// Still there? Every connection must answer NOOP.
		for _, c := range conns {
			if c != nil && firstErr == nil {
				if err := c.cmd(nil, "NOOP"); err != nil {
					firstErr = fmt.Errorf("after the wait: %w", err)
				}
			}
		}
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	time.Sleep(time.Second)
	return r, firstErr
}

// printIMAP prints the IMAP tables.
func printIMAP(out io.Writer, o options, d *imapData, mix map[string][]mixResult, big map[string][]bigPass, bigMem, bigAnon map[string]int64, idle map[string][]idleResult) {
	servers := []string{"posthorn", "dovecot"}
	if len(mix) > 0 {
		fmt.Fprintf(out, "IMAP mix: %d clients, one account each (%d messages of %d octets), %s per run, 13 commands per cycle; median of %d run(s)\n",
			o.imap.clients, o.imap.messages, len(d.mixMsgs[0]), o.imap.duration, o.runs)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "server\tclient\tclients\tcommands/s\tcycles/s\tserver CPU/cycle\tclient CPU/cycle\tpeak memory\truns (commands/s)\tlatency")
		med := map[string]float64{}
		for _, s := range servers {
			rs := mix[s]
			if len(rs) == 0 {
				continue
			}
			var cps, cyc, cpu, ccpu, mem, anon []float64
			var each []string
			for _, r := range rs {
				cps = append(cps, rate(r.cmds, r.d))
				cyc = append(cyc, rate(r.cycles, r.d))
				cpu = append(cpu, float64(r.cpu.Microseconds())/float64(max(1, r.cycles)))
				ccpu = append(ccpu, float64(r.clientCPU.Microseconds())/float64(max(1, r.cycles)))
				mem = append(mem, float64(r.mem))
				anon = append(anon, float64(r.anon))
				each = append(each, fmt.Sprintf("%.0f", rate(r.cmds, r.d)))
			}
			med[s] = median(cps)
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.1f\t%.0f µs\t%.0f µs\t%s\t%s\t%s\n", s, imapClient, o.imap.clients,
				median(cps), median(cyc), median(cpu), median(ccpu), memText(s, int64(median(mem)), int64(median(anon))),
				strings.Join(each, " "), rs[len(rs)-1].latency())
		}
		tw.Flush()
		if med["dovecot"] > 0 {
			fmt.Fprintf(out, "ratio posthorn/dovecot, commands/s: %.2fx\n", med["posthorn"]/med["dovecot"])
		}
		fmt.Fprintln(out)
	}
	if len(big) > 0 {
		fmt.Fprintf(out, "IMAP large folder: %d messages (%d-octet bodies), %d with \"needle\"; first and second session\n", o.imap.big, o.imap.bigSize, o.imap.needles)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "server\tsession\tLOGIN\tSELECT INBOX\tUID FETCH 1:* FLAGS\tSEARCH TEXT \"needle\"\tpeak memory")
		for _, s := range servers {
			for i, p := range big[s] {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", s, i+1, ms(p.login), ms(p.sel), ms(p.fetch), ms(p.search), memText(s, bigMem[s], bigAnon[s]))
			}
		}
		tw.Flush()
		fmt.Fprintln(out)
	}
	if len(idle) > 0 {
		fmt.Fprintf(out, "IMAP idle connections (asked for %d)\n", o.imap.idle)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "server\tstate\topen\tmemory before\tafter\tper connection\topened in\tnote")
		for _, s := range servers {
			for _, r := range idle[s] {
				per := fmt.Sprintf("%.1f KiB", r.perConn()/1024)
				if s == "posthorn" {
					per += fmt.Sprintf(" (RssAnon %.1f KiB)", float64(r.anonAfter-r.anonBefore)/float64(max(1, r.opened))/1024)
				}
				note := ""
				if r.refused != "" {
					note = "then refused"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", s, r.what(), r.opened, mib(r.before), mib(r.after), per, ms(r.openTime), note)
			}
		}
		tw.Flush()
		fmt.Fprintln(out, "memory: posthorn VmRSS (RssAnon: without its mmap'd store files); Dovecot: ΣPSS of the master and its children.")
	}
}
