package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// result is one load against one server.
type result struct {
	bench              string // benchIngest or benchRelay
	round              int    // 1..-runs
	server, client     string
	sessions, messages int
	accepted           time.Duration // until the last final 250
	stored             time.Duration // ingest: until every message was in the mailbox; relay: at the sink
	hwm                int64         // posthorn: VmHWM at the end (bytes); 0: n/a
	maxRSS             int64         // max sampled every 100 ms: posthorn VmRSS, Postfix Σ PSS
	cpu                time.Duration // server CPU (user + system) during the load
	note               string
	sink               sinkStats     // relay
	queueEmpty         time.Duration // relay: from the sink having all to "Mail queue is empty"
	dnsQueries         int64         // relay, posthorn: questions to the bench DNS server
	bytes              int64         // pop3: octets retrieved in the measured pass
	first              time.Duration // pop3: the first (unmeasured) pass
	clientCPU          time.Duration // pop3: this tool's CPU (the client) during the measured passes
	passes             int           // pop3: measured passes (messages, bytes and stored add them up)
	maxAnon            int64         // pop3, posthorn: max RssAnon (100 ms samples): VmRSS without the mmap'd store files
}

// Benchmarks (-bench).
const (
	benchIngest = "ingest"
	benchRelay  = "relay"
	benchPOP3   = "pop3"
	benchIMAP   = "imap" // its own tables (imapbench.go)
)

func (r result) kind() string {
	if r.bench == "" {
		return benchIngest
	}
	return r.bench
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// table collects results by (server, client, sessions) in first-seen order.
type table struct {
	keys     []string
	rows     map[string][]result
	failures int
}

func newTable() *table { return &table{rows: make(map[string][]result)} }

func key(bench, server, client string, sessions int) string {
	return fmt.Sprintf("%s|%s|%s|%d", bench, server, client, sessions)
}

// add records a successful result, or counts and prints a failure.
func (t *table) add(r result, err error, out io.Writer) {
	if err != nil {
		t.failures++
		fmt.Fprintf(out, "FAILED %s %s %s %d sessions: %v\n", r.kind(), r.server, r.client, r.sessions, err)
		return
	}
	k := key(r.kind(), r.server, r.client, r.sessions)
	if _, ok := t.rows[k]; !ok {
		t.keys = append(t.keys, k)
	}
	t.rows[k] = append(t.rows[k], r)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func mib(b int64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// summary of the runs of one row.
type summary struct {
	accept, stored []float64
	hwm, rss, cpu  []float64
	conns, maxOpen []float64
}

func (t *table) summary(k string) summary {
	var s summary
	for _, r := range t.rows[k] {
		s.accept = append(s.accept, rate(r.messages, r.accepted))
		s.stored = append(s.stored, rate(r.messages, r.stored))
		s.hwm = append(s.hwm, float64(r.hwm))
		s.rss = append(s.rss, float64(r.maxRSS))
		s.cpu = append(s.cpu, float64(r.cpu.Microseconds())/float64(r.messages))
		s.conns = append(s.conns, float64(r.sink.conns))
		s.maxOpen = append(s.maxOpen, float64(r.sink.maxOpen))
	}
	return s
}

// keysOf returns the row keys of one benchmark, in first-seen order.
func (t *table) keysOf(bench string) []string {
	var ks []string
	for _, k := range t.keys {
		if t.rows[k][0].kind() == bench {
			ks = append(ks, k)
		}
	}
	return ks
}

// print prints a table for each benchmark that has rows, then the failures.
func (t *table) print(out io.Writer, o options, body *message) {
	printed := false
	for _, b := range []struct {
		bench string
		print func(io.Writer, options, *message)
	}{{benchIngest, t.printIngest}, {benchRelay, t.printRelay}, {benchPOP3, t.printPOP3}} {
		if len(t.keysOf(b.bench)) == 0 {
			continue
		}
		if printed {
			fmt.Fprintln(out)
		}
		b.print(out, o, body)
		printed = true
	}
	if t.failures > 0 {
		fmt.Fprintf(out, "%d load(s) FAILED (see above); they are not in the table\n", t.failures)
	}
}

func (t *table) printIngest(out io.Writer, o options, body *message) {
	fmt.Fprintf(out, "SMTP ingest, %d-byte messages (%d-byte body), fsync on (group commit); median of %d run(s)\n",
		body.headerLen+len(body.raw), len(body.raw), o.runs)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "server\tclient\tsessions\tmessages\taccept msg/s\tstored msg/s\tserver CPU/msg\tpeak RSS (VmHWM)\tmax RSS (100 ms)\truns (stored msg/s)\tnote")
	for _, k := range t.keysOf(benchIngest) {
		rs := t.rows[k]
		r := rs[0]
		s := t.summary(k)
		var each []string
		for _, v := range s.stored {
			each = append(each, fmt.Sprintf("%.0f", v))
		}
		rss := mib(int64(median(s.rss)))
		if r.server == "postfix" && rss != "-" {
			rss += " ΣPSS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%.0f\t%.0f µs\t%s\t%s\t%s\t%s\n",
			r.server, r.client, r.sessions, r.messages, median(s.accept), median(s.stored), median(s.cpu),
			mib(int64(median(s.hwm))), rss, strings.Join(each, " "), r.note)
	}
	tw.Flush()

	var ratios []string
	for _, k := range t.keysOf(benchIngest) {
		r := t.rows[k][0]
		if r.server != "posthorn" {
			continue
		}
		pk := key(benchIngest, "postfix", r.client, r.sessions)
		if _, ok := t.rows[pk]; !ok {
			continue
		}
		ph, pf := median(t.summary(k).stored), median(t.summary(pk).stored)
		if pf > 0 {
			ratios = append(ratios, fmt.Sprintf("ratio posthorn/postfix, stored (%s, %d session(s)): %.2fx", r.client, r.sessions, ph/pf))
		}
	}
	if len(ratios) > 0 {
		fmt.Fprintln(out)
		for _, l := range ratios {
			fmt.Fprintln(out, l)
		}
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "accept: all final 250s received by the client. stored: posthorn = accept (its 250 follows the fsync);")
	fmt.Fprintln(out, "Postfix = every message is a file in the Maildir (new/ + cur/), polled every 20 ms.")
	fmt.Fprintln(out, "RSS: posthorn's one process; Postfix: sum of PSS of master and all its children.")
	fmt.Fprintln(out, "server CPU/msg: user+system time of the server's processes during the load (10 ms ticks), per message.")
}

func (t *table) printRelay(out io.Writer, o options, body *message) {
	fmt.Fprintf(out, "Relay to a loopback sink (%s), %d-byte bodies, to %s; median of %d run(s)\n",
		sinkIP, len(body.raw), sinkRcpt, o.runs)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "server\tclient → port\tsessions\tmessages\taccept msg/s\trelayed msg/s\tserver CPU/msg\tpeak memory\tsink conns (max open)\truns (relayed msg/s)\tnote")
	for _, k := range t.keysOf(benchRelay) {
		r := t.rows[k][0]
		s := t.summary(k)
		var each []string
		for _, v := range s.stored {
			each = append(each, fmt.Sprintf("%.0f", v))
		}
		mem := mib(int64(median(s.hwm))) + " VmHWM"
		if r.server == "postfix" {
			mem = mib(int64(median(s.rss))) + " ΣPSS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%.0f\t%.0f µs\t%s\t%.0f (%.0f)\t%s\t%s\n",
			r.server, r.client, r.sessions, r.messages, median(s.accept), median(s.stored), median(s.cpu),
			mem, median(s.conns), median(s.maxOpen), strings.Join(each, " "), r.note)
	}
	tw.Flush()

	var ratios []string
	for _, k := range t.keysOf(benchRelay) {
		r := t.rows[k][0]
		if r.server != "posthorn" {
			continue
		}
		pk := key(benchRelay, "postfix", pathMynetworks, r.sessions)
		if _, ok := t.rows[pk]; !ok {
			continue
		}
		ph, pf := t.summary(k), t.summary(pk)
		if median(pf.stored) > 0 && median(pf.accept) > 0 {
			ratios = append(ratios, fmt.Sprintf("ratio posthorn/postfix, %d session(s): relayed %.2fx, accept %.2fx (ratios of the medians)%s",
				r.sessions, median(ph.stored)/median(pf.stored), median(ph.accept)/median(pf.accept), t.roundRatios(k, pk, "relayed")))
		}
	}
	if len(ratios) > 0 {
		fmt.Fprintln(out)
		for _, l := range ratios {
			fmt.Fprintln(out, l)
		}
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "accept: all final 250s at the relay. relayed: from the start of the load until the sink has all N messages.")
	fmt.Fprintln(out, "posthorn: submission (587) with AUTH PLAIN, MX lookup of sink.test at the bench DNS server.")
	fmt.Fprintln(out, "Postfix: port 25 from mynetworks without AUTH, relayhost = [sink], no DNS: the cheaper path.")
	fmt.Fprintln(out, "Both queues were checked empty afterwards (posthorn queue list, postqueue -p).")
}

// roundRatios: the median and range of the per-round ratios of the stored
// (relayed, retrieved) rates of rows a and b, over the rounds both
// completed.
func (t *table) roundRatios(a, b, what string) string {
	pf := make(map[int]float64)
	for _, r := range t.rows[b] {
		pf[r.round] = rate(r.messages, r.stored)
	}
	var v []float64
	for _, r := range t.rows[a] {
		if d := pf[r.round]; d > 0 {
			v = append(v, rate(r.messages, r.stored)/d)
		}
	}
	if len(v) < 2 {
		return ""
	}
	return fmt.Sprintf("; %s per round: median %.2fx, %.2f–%.2fx", what, median(v), slices.Min(v), slices.Max(v))
}

func (t *table) printPOP3(out io.Writer, o options, body *message) {
	ks := t.keysOf(benchPOP3)
	r0 := t.rows[ks[0]][0]
	perPass := r0.messages / max(1, r0.passes)
	fmt.Fprintf(out, "POP3 download: %d sessions at once, one account each, each retrieving all %d messages of its maildrop\n", r0.sessions, perPass/r0.sessions)
	fmt.Fprintf(out, "(%.0f octets on average), %d RETRs pipelined; %d measured passes per run, median of %d run(s)\n",
		float64(r0.bytes)/float64(r0.messages), o.pop3Window, o.pop3Passes, o.runs)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "server\tclient\tsessions\tmsgs/pass\tmsg/s\tMB/s\tfirst pass msg/s\tserver CPU/msg\tclient CPU/msg\tpeak memory\truns (msg/s)\tnote")
	for _, k := range ks {
		rs := t.rows[k]
		r := rs[0]
		s := t.summary(k)
		var each, mb, first, anon, client []float64
		var eachS []string
		for _, x := range rs {
			v := rate(x.messages, x.stored)
			each = append(each, v)
			eachS = append(eachS, fmt.Sprintf("%.0f", v))
			mb = append(mb, mbps(x.bytes, x.stored))
			first = append(first, rate(x.messages/max(1, x.passes), x.first))
			anon = append(anon, float64(x.maxAnon))
			client = append(client, float64(x.clientCPU.Microseconds())/float64(x.messages))
		}
		mem := mib(int64(median(s.hwm))) + " VmHWM (RssAnon " + mib(int64(median(anon))) + ")"
		if r.server != "posthorn" {
			mem = mib(int64(median(s.rss))) + " ΣPSS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%.1f\t%.0f\t%.0f µs\t%.0f µs\t%s\t%s\t%s\n",
			r.server, r.client, r.sessions, r.messages/max(1, r.passes), median(each), median(mb), median(first), median(s.cpu), median(client),
			mem, strings.Join(eachS, " "), r.note)
	}
	tw.Flush()
	for _, k := range ks {
		r := t.rows[k][0]
		if r.server != "posthorn" {
			continue
		}
		dk := key(benchPOP3, "dovecot", r.client, r.sessions)
		if _, ok := t.rows[dk]; !ok {
			continue
		}
		ph, dc := median(t.summary(k).stored), median(t.summary(dk).stored)
		if dc > 0 {
			fmt.Fprintln(out)
			fmt.Fprintf(out, "ratio posthorn/dovecot, msg/s (%d sessions): %.2fx (ratio of the medians)%s\n", r.sessions, ph/dc, t.roundRatios(k, dk, "msg/s"))
		}
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "pass: every session connects, logs in, STAT, LIST, RETRs every message, QUIT (no DELE); a pass ends with the last")
	fmt.Fprintln(out, "QUIT's +OK. msg/s: messages retrieved by all sessions in the measured passes / the sum of their times. Both")
	fmt.Fprintln(out, "servers run at once, and their measured passes alternate. first pass: the same load right after the start")
	fmt.Fprintln(out, "(posthorn derives each account's PBKDF2 hash once; Dovecot's passwords are {PLAIN}).")
	fmt.Fprintln(out, "MB/s: 10^6 octets of messages (RFC 1939 sizes) per second. Every message was checked: size as LIST, CRC-32C as stored.")
	fmt.Fprintln(out, "memory: posthorn's VmHWM, which counts the pages of its mmap'd store files it touched, and the largest")
	fmt.Fprintln(out, "RssAnon (its own memory); Dovecot: largest sum of PSS of the master and its children (100 ms samples).")
	fmt.Fprintln(out, "server CPU/msg: user+system time of the server's processes during the measured passes, per message;")
	fmt.Fprintln(out, "client CPU/msg: the same for this tool's process (the POP3 client), which shares the machine with the server.")
}
