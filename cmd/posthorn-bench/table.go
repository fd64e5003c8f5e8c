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
	server, client     string
	sessions, messages int
	accepted           time.Duration // until the last final 250
	stored             time.Duration // until every message was in the mailbox
	hwm                int64         // posthorn: VmHWM at the end (bytes); 0: n/a
	maxRSS             int64         // max sampled every 100 ms: posthorn VmRSS, Postfix Σ PSS
	cpu                time.Duration // server CPU (user + system) during the load
	note               string
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

func key(server, client string, sessions int) string {
	return fmt.Sprintf("%s|%s|%d", server, client, sessions)
}

// add records a successful result, or counts and prints a failure.
func (t *table) add(r result, err error, out io.Writer) {
	if err != nil {
		t.failures++
		fmt.Fprintf(out, "FAILED %s %s %d sessions: %v\n", r.server, r.client, r.sessions, err)
		return
	}
	k := key(r.server, r.client, r.sessions)
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
}

func (t *table) summary(k string) summary {
	var s summary
	for _, r := range t.rows[k] {
		s.accept = append(s.accept, rate(r.messages, r.accepted))
		s.stored = append(s.stored, rate(r.messages, r.stored))
		s.hwm = append(s.hwm, float64(r.hwm))
		s.rss = append(s.rss, float64(r.maxRSS))
		s.cpu = append(s.cpu, float64(r.cpu.Microseconds())/float64(r.messages))
	}
	return s
}

func (t *table) print(out io.Writer, o options, body *message) {
	fmt.Fprintf(out, "SMTP ingest, %d-byte messages (%d-byte body), fsync on (group commit); median of %d run(s)\n",
		body.headerLen+len(body.raw), len(body.raw), o.runs)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "server\tclient\tsessions\tmessages\taccept msg/s\tstored msg/s\tserver CPU/msg\tpeak RSS (VmHWM)\tmax RSS (100 ms)\truns (stored msg/s)\tnote")
	for _, k := range t.keys {
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
	for _, k := range t.keys {
		r := t.rows[k][0]
		if r.server != "posthorn" {
			continue
		}
		pk := key("postfix", r.client, r.sessions)
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
	if t.failures > 0 {
		fmt.Fprintf(out, "%d load(s) FAILED (see above); they are not in the table\n", t.failures)
	}
}
