// Command posthorn-bench measures the real posthorn binary on loopback and
// compares it with Debian's Postfix and Dovecot when they are installed:
//
//   - ingest: SMTP ingest with fsync on (the store's group commit) against
//     Postfix delivering into a Maildir;
//   - relay: messages submitted for a remote domain and relayed over SMTP to
//     a sink in this tool (sink.go) on 127.0.0.9, against Postfix relaying
//     the same load to the same kind of sink (relaybench.go);
//   - pop3: POP3 download rate, 20 concurrent sessions on 20 accounts each
//     retrieving all 1,000 messages of its maildrop, against Debian's
//     Dovecot serving the same messages from Maildirs (pop3bench.go);
//   - imap: an IMAP command mix of 10 clients (LOGIN per cycle, SELECT,
//     FETCH, STORE, SEARCH, APPEND, EXPUNGE, LOGOUT), a 100,000-message
//     folder, and memory per idle connection, against Debian's Dovecot
//     (imapbench.go, imapclient.go).
//
// Usage:
//
//	go run ./cmd/posthorn-bench -bin bin/posthorn [-bench ingest,relay,pop3,imap] [-sessions 1,50] [-messages N] [-runs 3]
//
// Clients: go-loadgen, the small SMTP client in this directory (EHLO, AUTH
// PLAIN for the relay load to posthorn, PIPELINING of MAIL+RCPT+DATA,
// dot-stuffing, every reply checked), and for ingest also Postfix's
// smtp-source when /usr/sbin/smtp-source exists, so both servers are
// measured by the same third-party client; for pop3, go-pop3
// (pop3client.go: pipelined RETRs, byte-stuffing undone, every message's
// size and CRC-32C checked), the same for posthorn and Dovecot.
//
// "stored" means: posthorn, the final 250 after DATA (posthorn answers it only
// once the message is fsync'd in the account's bbolt file); Postfix, the
// message is a file in the Maildir (new/ + cur/), written by virtual(8) after
// the queue manager picked it up from Postfix's (also fsync'd) queue.
// "relayed" means the sink has received all N messages.
//
// Everything listens and connects on 127.0.0.0/8 only. Every process the tool
// starts is stopped by its own PID (posthorn, Dovecot's master) or by
// "postfix -c DIR stop" on the private Postfix instance it created; temp
// dirs are removed unless -keep.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Addresses used for every load.
const (
	benchDomain = "bench.example"
	benchRcpt   = "bench@" + benchDomain
	benchFrom   = "a@" + benchDomain
	benchHelo   = "client.bench.example"
	smtpSource  = "/usr/sbin/smtp-source"
)

type options struct {
	ingest      bool // -bench ingest
	relay       bool // -bench relay
	pop3        bool // -bench pop3
	imapOn      bool // -bench imap
	bin         string
	messages    int
	sessions    []int
	runs        int
	size        int
	perIP       int
	skipPostfix bool
	keep        bool
	coldAuth    bool
	dir         string
	timeout     time.Duration

	pop3Sessions, pop3Messages, pop3Window, pop3Passes int
	skipDovecot                                        bool

	imap imapOptions // -imap-* (imapbench.go)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("posthorn-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var sessions, benches string
	fs.StringVar(&benches, "bench", "ingest,relay,pop3,imap", "benchmarks to run: ingest (store local mail), relay (submission to a loopback sink), pop3 (download rate), imap (command mix, large folder, idle connections)")
	fs.StringVar(&o.bin, "bin", "bin/posthorn", "posthorn binary to benchmark")
	fs.IntVar(&o.messages, "messages", 0, "messages per load (0: 500 for 1 session, 2000 otherwise)")
	fs.StringVar(&sessions, "sessions", "1,50", "comma-separated concurrent SMTP sessions per load")
	fs.IntVar(&o.runs, "runs", 1, "rounds of every load; the table shows medians")
	fs.IntVar(&o.size, "size", 4096, "message body bytes (as smtp-source -l)")
	fs.IntVar(&o.perIP, "per-ip", 16, "max sessions per loopback source address (spreads 50 sessions over 127.0.0.1-4 for both servers)")
	fs.BoolVar(&o.skipPostfix, "skip-postfix", false, "do not run the Postfix comparison")
	fs.BoolVar(&o.coldAuth, "cold-auth", false, "relay: no untimed login before the load, so every session's AUTH misses posthorn's credential cache")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dirs (data, configs, logs)")
	fs.StringVar(&o.dir, "dir", "", "parent of the temp dir, on the disk to measure (default $TMPDIR or /tmp)")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Minute, "overall time limit")
	fs.IntVar(&o.pop3Sessions, "pop3-sessions", 20, "pop3: concurrent POP3 sessions, one account each")
	fs.IntVar(&o.pop3Messages, "pop3-messages", 1000, "pop3: messages in each account's maildrop, all retrieved by its session")
	fs.IntVar(&o.pop3Window, "pop3-window", 16, "pop3: RETR commands a session keeps outstanding (pipelined)")
	fs.IntVar(&o.pop3Passes, "pop3-passes", 3, "pop3: measured passes per run and server (after one unmeasured first pass)")
	fs.BoolVar(&o.skipDovecot, "skip-dovecot", false, "pop3, imap: do not run the Dovecot comparison")
	imapFlags(fs, &o.imap)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, f := range strings.Split(benches, ",") {
		switch strings.TrimSpace(f) {
		case benchIngest:
			o.ingest = true
		case benchRelay:
			o.relay = true
		case benchPOP3:
			o.pop3 = true
		case benchIMAP:
			o.imapOn = true
		default:
			fmt.Fprintf(stderr, "posthorn-bench: bad -bench entry %q (ingest, relay, pop3, imap)\n", f)
			return 2
		}
	}
	for _, f := range strings.Split(sessions, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1000 {
			fmt.Fprintf(stderr, "posthorn-bench: bad -sessions entry %q (1-1000)\n", f)
			return 2
		}
		o.sessions = append(o.sessions, n)
	}
	if o.runs < 1 || o.runs > 20 || o.messages < 0 || o.messages > 1_000_000 ||
		o.size < 16 || o.size > 10<<20 || o.perIP < 1 || o.perIP > 1000 || o.timeout <= 0 ||
		o.pop3Sessions < 1 || o.pop3Sessions > 100 || o.pop3Messages < 1 || o.pop3Messages > 100_000 ||
		o.pop3Window < 1 || o.pop3Window > 1000 || o.pop3Passes < 1 || o.pop3Passes > 20 || !o.imap.valid() {
		fmt.Fprintln(stderr, "posthorn-bench: flag out of range")
		return 2
	}
	bin, err := filepath.Abs(o.bin)
	if err == nil {
		_, err = os.Stat(bin)
	}
	if err != nil {
		fmt.Fprintf(stderr, "posthorn-bench: -bin: %v (run make build)\n", err)
		return 2
	}
	o.bin = bin

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	ctx, cancel := context.WithTimeoutCause(ctx, o.timeout, fmt.Errorf("stopped: -timeout %s exceeded", o.timeout))
	defer cancel()

	if err := bench(ctx, o, stdout); err != nil {
		fmt.Fprintln(stderr, "posthorn-bench:", err)
		return 1
	}
	return 0
}

// bench runs every load and prints the table; deferred cleanups stop every
// process it started, whatever happens.
func bench(ctx context.Context, o options, out io.Writer) (err error) {
	tmp, err := os.MkdirTemp(o.dir, "posthorn-bench-")
	if err != nil {
		return err
	}
	// Postfix's daemons (user postfix, virtual(8) as the mail uid) must be
	// able to traverse it.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	defer func() {
		if o.keep {
			fmt.Fprintln(out, "kept", tmp)
			return
		}
		if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
			err = rerr
		}
	}()

	printMachine(out)
	fmt.Fprintln(out, "temp dir (data, configs, logs):", tmp)

	haveSource := fileExists(smtpSource)
	if !haveSource && o.ingest {
		fmt.Fprintf(out, "smtp-source: not installed (%s); third-party client loads skipped (apt-get install postfix)\n", smtpSource)
	}
	withPostfix := false
	switch {
	case !o.ingest && !o.relay:
	case o.skipPostfix:
		fmt.Fprintln(out, "postfix: comparison skipped (-skip-postfix)")
	default:
		if why := postfixMissing(); why != "" {
			fmt.Fprintln(out, "postfix: comparison skipped:", why)
		} else {
			withPostfix = true
			fmt.Fprintln(out, "postfix:", postfixVersion(ctx)+", a private instance per load (fresh, like posthorn)")
		}
	}
	withDovecot := false
	switch {
	case !o.pop3:
	case o.skipDovecot:
		fmt.Fprintln(out, "dovecot: comparison skipped (-skip-dovecot)")
	default:
		if why := dovecotMissing(); why != "" {
			fmt.Fprintln(out, "dovecot: comparison skipped:", why)
		} else {
			withDovecot = true
			fmt.Fprintln(out, "dovecot:", dovecotVersion(ctx)+", a private master per round (fresh, like posthorn)")
		}
	}

	withDovecotIMAP := false
	switch {
	case !o.imapOn:
	case o.skipDovecot:
		fmt.Fprintln(out, "dovecot imap: comparison skipped (-skip-dovecot)")
	default:
		if why := dovecotMissingFor(dovecotIMAP, "dovecot-imapd"); why != "" {
			fmt.Fprintln(out, "dovecot imap: comparison skipped:", why)
		} else {
			withDovecotIMAP = true
			fmt.Fprintln(out, "dovecot imap:", dovecotVersion(ctx)+", a private master per part (fresh, like posthorn)")
		}
	}

	body := makeBody(o.size)
	table := newTable()
	// runLoads runs loads in order and records their results.
	runLoads := func(round int, loads []func() (result, error)) error {
		for _, load := range loads {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			res, err := load()
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			res.round = round
			table.add(res, err, out)
		}
		return nil
	}
	if o.ingest {
		template := filepath.Join(tmp, "template")
		if err := makeTemplate(ctx, o.bin, template); err != nil {
			return err
		}
		for r := 1; r <= o.runs; r++ {
			// The flush cost decides the 1-session figures; on a shared
			// machine it changes from minute to minute.
			fmt.Fprintf(out, "ingest run %d/%d: disk %s, load average %s\n", r, o.runs, fsyncRate(tmp), loadAvg())
			for _, s := range o.sessions {
				spec := loadSpec{sessions: s, messages: messageCount(o, s), perIP: o.perIP, body: body}
				tag := fmt.Sprintf("run %d/%d", r, o.runs)
				dir := filepath.Join(tmp, fmt.Sprintf("posthorn-r%d-s%d", r, s))
				loads := []func() (result, error){
					func() (result, error) { return posthornRun(ctx, o.bin, template, dir+"-go", spec, clientGo, out, tag) },
				}
				if haveSource {
					loads = append(loads, func() (result, error) {
						return posthornRun(ctx, o.bin, template, dir+"-ss", spec, clientSource, out, tag)
					})
				}
				pdir := filepath.Join(tmp, fmt.Sprintf("postfix-r%d-s%d", r, s))
				if withPostfix && haveSource {
					loads = append(loads, func() (result, error) {
						return postfixRun(ctx, pdir+"-ss", spec, clientSource, out, tag)
					})
				}
				if withPostfix {
					loads = append(loads, func() (result, error) { return postfixRun(ctx, pdir+"-go", spec, clientGo, out, tag) })
				}
				if err := runLoads(r, loads); err != nil {
					return err
				}
			}
		}
	}
	if o.relay {
		dnsSrv, err := startDNS()
		if err != nil {
			return fmt.Errorf("bench DNS server: %w", err)
		}
		defer dnsSrv.close()
		fmt.Fprintf(out, "relay: sink on %s, DNS for %s on %s\n", sinkIP, sinkDomain, dnsSrv.addr)
		for r := 1; r <= o.runs; r++ {
			fmt.Fprintf(out, "relay run %d/%d: disk %s, load average %s\n", r, o.runs, fsyncRate(tmp), loadAvg())
			for _, s := range o.sessions {
				spec := loadSpec{sessions: s, messages: messageCount(o, s), perIP: o.perIP, body: body}
				tag := fmt.Sprintf("run %d/%d", r, o.runs)
				loads := []func() (result, error){
					func() (result, error) {
						return posthornRelayRun(ctx, o.bin, filepath.Join(tmp, fmt.Sprintf("relay-posthorn-r%d-s%d", r, s)), spec, dnsSrv, o.coldAuth, out, tag)
					},
				}
				if withPostfix {
					loads = append(loads, func() (result, error) {
						return postfixRelayRun(ctx, filepath.Join(tmp, fmt.Sprintf("relay-postfix-r%d-s%d", r, s)), spec, out, tag)
					})
				}
				if err := runLoads(r, loads); err != nil {
					return err
				}
			}
		}
	}
	if o.pop3 {
		data, err := pop3Prepare(ctx, o, tmp, body, withDovecot, out)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return fmt.Errorf("pop3 setup: %w", err)
		}
		for r := 1; r <= o.runs; r++ {
			fmt.Fprintf(out, "pop3 run %d/%d: load average %s\n", r, o.runs, loadAvg())
			for _, t := range pop3Round(ctx, o, data, out, fmt.Sprintf("run %d/%d", r, o.runs)) {
				if ctx.Err() != nil {
					return context.Cause(ctx)
				}
				t.res.round = r
				table.add(t.res, t.err, out)
			}
		}
	}
	printIMAP, imapErr := func() {}, error(nil)
	if o.imapOn {
		printIMAP, imapErr = imapBench(ctx, o, tmp, withDovecotIMAP, out)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
	}
	fmt.Fprintln(out)
	table.print(out, o, body)
	printIMAP()
	if table.failures > 0 {
		return errors.Join(fmt.Errorf("%d load(s) failed", table.failures), imapErr)
	}
	return imapErr
}

// messageCount is the number of messages of a load with s sessions.
func messageCount(o options, s int) int {
	if o.messages > 0 {
		return o.messages
	}
	if s == 1 {
		return 500
	}
	return 2000
}

// Client kinds.
const (
	clientGo     = "go-loadgen"
	clientSource = "smtp-source"
)

// clientRun is what a client reports of one load.
type clientRun struct {
	n    int           // final 250s
	d    time.Duration // until the last one
	note string
	lat  []time.Duration // go-loadgen: end of DATA to its 250, per message
	auth []time.Duration // go-loadgen with AUTH: AUTH to its 235, per session
}

// latency summarises clientRun.lat.
func (c clientRun) latency() string {
	if len(c.lat) == 0 {
		return ""
	}
	l := slices.Clone(c.lat)
	slices.Sort(l)
	q := func(f float64) time.Duration {
		return l[min(len(l)-1, int(f*float64(len(l))))].Round(10 * time.Microsecond)
	}
	return fmt.Sprintf(", 250 after DATA p50 %s p99 %s", q(0.5), q(0.99))
}

// runClient runs one load against addr with the given client.
func runClient(ctx context.Context, client, addr string, spec loadSpec) (clientRun, error) {
	relayed := ""
	if spec.sessions > spec.perIP {
		relayed = fmt.Sprintf("%d source IPs", sourceIPs(spec))
	}
	switch client {
	case clientGo:
		c, err := runLoad(ctx, addr, spec)
		c.note = relayed
		return c, err
	case clientSource:
		target := addr
		if relayed != "" {
			// smtp-source cannot choose its source address: a splice
			// relay spreads its sessions over 127.0.0.x.
			rl, err := startRelay(addr, spec.perIP, spec.sessions)
			if err != nil {
				return clientRun{}, err
			}
			defer rl.close()
			target = rl.addr
			relayed += " via relay"
		}
		n, d, err := runSmtpSource(ctx, target, spec)
		return clientRun{n: n, d: d, note: relayed}, err
	}
	return clientRun{}, fmt.Errorf("unknown client %q", client)
}

// runSmtpSource runs Postfix's smtp-source, one connection per session kept
// for many messages (-d). It exits non-zero on any unexpected reply.
func runSmtpSource(ctx context.Context, addr string, spec loadSpec) (int, time.Duration, error) {
	cmd := exec.CommandContext(ctx, smtpSource, "-d", "-M", benchHelo,
		"-l", strconv.Itoa(len(spec.body.raw)), "-m", strconv.Itoa(spec.messages),
		"-s", strconv.Itoa(spec.sessions), "-f", benchFrom, "-t", benchRcpt, addr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var buf limitedBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return 0, d, fmt.Errorf("smtp-source: %v: %s", err, strings.TrimSpace(buf.String()))
	}
	return spec.messages, d, nil
}

// limitedBuffer keeps the first 64 KiB written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 64<<10 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// printMachine prints what the figures depend on.
func printMachine(out io.Writer) {
	fmt.Fprintf(out, "machine: %d CPUs (GOMAXPROCS %d), %s RAM, load average %s, %s/%s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), memTotal(), loadAvg(), runtime.GOOS, runtime.GOARCH)
}

// fsyncRate measures 4 KiB write + fdatasync pairs per second in dir (at
// most 2000 of them or 1 s): what a commit that must be durable costs here.
func fsyncRate(dir string) string {
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		return "fdatasync probe: " + err.Error()
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	t0 := time.Now()
	n := 0
	for ; n < 2000 && time.Since(t0) < time.Second; n++ {
		if _, err := f.WriteAt(buf, int64(n%64)*4096); err != nil {
			return "fdatasync probe: " + err.Error()
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return "fdatasync probe: " + err.Error()
		}
	}
	return fmt.Sprintf("%.0f fdatasync/s (4 KiB writes)", float64(n)/time.Since(t0).Seconds())
}

func memTotal() string {
	v, err := procField("/proc/meminfo", "MemTotal:")
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f GiB", float64(v)/(1<<30))
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// procCPU is the CPU time (user + system, with waited-for children) of pid.
// The second result is its parent's PID.
func procCPU(pid int) (time.Duration, int) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0
	}
	// pid (comm) state ppid ... utime stime cutime cstime: comm may hold
	// spaces and parentheses, so split after the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return 0, 0
	}
	ppid, _ := strconv.Atoi(f[1])
	var ticks int64
	for _, v := range f[11:15] {
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, ppid
}

// userHZ is the unit of the times in /proc/PID/stat (USER_HZ, 100 on Linux).
const userHZ = 100

// procField reads a "Key:   N kB" line of a /proc file, in bytes.
func procField(path, key string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			v, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			if len(f) > 1 && f[1] == "kB" {
				v <<= 10
			}
			return v, nil
		}
	}
	return 0, errors.New(path + ": no " + key)
}
