package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"posthorn/mailbox"
	mimemsg "posthorn/mailbox/message"
)

// The IMAP benchmark (-bench imap), three parts, each against posthorn and,
// where Debian's dovecot-imapd is installed, against Dovecot on the same
// messages:
//
//   - mix: -imap-clients clients, each on its own account holding
//     -imap-messages messages, loop for -imap-duration over a cycle like
//     imaptest's default profile: connect, LOGIN, SELECT INBOX, FETCH 1:*
//     FLAGS, three FETCH n BODY.PEEK[] of random messages, STORE +FLAGS
//     (\Seen) on two, SEARCH UNSEEN, SEARCH SUBJECT, APPEND of a 4 KiB
//     message, STORE +FLAGS.SILENT (\Deleted) on one and EXPUNGE, LOGOUT:
//     13 commands. Every tagged response must be OK, every fetched body
//     must be one of the account's messages (size and CRC-32C), FETCH 1:*
//     must return EXISTS responses and EXPUNGE must remove exactly one.
//   - big: one account with -imap-big messages, -imap-needles of them
//     holding the word "needle": LOGIN, SELECT INBOX, UID FETCH 1:* FLAGS
//     (every response counted), SEARCH TEXT "needle" (the needles must be
//     found), LOGOUT, twice (first and second session).
//   - idle: up to -imap-idle connections held open, first after the
//     greeting only, then after LOGIN + SELECT INBOX; the server's memory
//     before and after, per connection.
//
// The messages are written straight into posthorn's store with the mailbox
// package while posthorn is stopped (Account.Append, many at once, with
// the IMAP server's parse), and the same bytes into Maildirs for Dovecot.

// imapOptions are the -imap-* flags.
type imapOptions struct {
	clients, messages, big, needles, bigSize, idle, idleDovecot int
	duration                                                    time.Duration
	parts                                                       string
}

func imapFlags(fs *flag.FlagSet, o *imapOptions) {
	fs.IntVar(&o.clients, "imap-clients", 10, "imap: concurrent mix clients, one account each")
	fs.DurationVar(&o.duration, "imap-duration", 10*time.Second, "imap: how long the mix clients loop")
	fs.IntVar(&o.messages, "imap-messages", 100, "imap: messages in each mix account")
	fs.IntVar(&o.big, "imap-big", 100_000, "imap: messages in the large folder")
	fs.IntVar(&o.bigSize, "imap-big-size", 2048, "imap: body bytes of the large folder's messages")
	fs.IntVar(&o.needles, "imap-needles", 5, "imap: messages of the large folder that SEARCH TEXT must find")
	fs.IntVar(&o.idle, "imap-idle", 10_000, "imap: idle connections to open (the server may refuse some)")
	fs.IntVar(&o.idleDovecot, "imap-idle-dovecot", 2000, "imap: at most this many idle connections to Dovecot (a process per logged-in one)")
	fs.StringVar(&o.parts, "imap-parts", "mix,big,idle", "imap: parts to run")
}

func (o imapOptions) valid() bool {
	return o.clients >= 1 && o.clients <= 1000 && o.duration > 0 && o.duration <= time.Hour &&
		o.messages >= 2 && o.messages <= 100_000 && o.big >= 1 && o.big <= 2_000_000 &&
		o.needles >= 0 && o.needles <= o.big && o.bigSize >= 16 && o.bigSize <= 1<<20 &&
		o.idle >= 0 && o.idle <= 100_000 && o.idleDovecot >= 0
}

func (o imapOptions) part(p string) bool { return slices.Contains(strings.Split(o.parts, ","), p) }

const (
	imapPass      = "pw"
	imapClient    = "go-imap"
	imapIdlePerAc = 20 // protocol/imap/server DefaultLimits().PerAccountConnections
	imapIdleMsgs  = 10
	dovecotIMAP   = "/usr/lib/dovecot/imap"
)

func mixUser(i int) string  { return fmt.Sprintf("imap%d@%s", i+1, benchDomain) }
func idleUser(i int) string { return fmt.Sprintf("idle%d@%s", i+1, benchDomain) }

const bigUser = "big@" + benchDomain

// imapMessage is message i of a folder: a plain-text message with the
// given body; needle adds a line with the word "needle".
func imapMessage(i int, body []byte, needle bool) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Bench <%s>\r\nTo: <%s>\r\nSubject: bench x%d message %d\r\n", benchFrom, benchRcpt, i%10, i)
	fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <%d.imap@%s>\r\nMIME-Version: 1.0\r\n", time.Unix(1_700_000_000+int64(i), 0).UTC().Format(time.RFC1123Z), i, benchDomain)
	b.WriteString("Content-Type: text/plain; charset=us-ascii\r\n\r\n")
	b.Write(body)
	if needle {
		b.WriteString("There is a needle in this message.\r\n")
	}
	return b.Bytes()
}

// imapData is the prepared data.
type imapData struct {
	dir      string         // posthorn's data dir
	dovecot  *dovecotLayout // nil: no Dovecot comparison
	mixMsgs  [][]byte       // the messages of every mix account
	appended []byte         // the message the mix APPENDs
	known    map[msgSum]bool
	idleN    int // idle accounts
}

// imapPrepare creates the accounts and fills them (see above).
func imapPrepare(ctx context.Context, o options, tmp string, withDovecot bool, out io.Writer) (*imapData, error) {
	io_ := o.imap
	d := &imapData{dir: filepath.Join(tmp, "imap-posthorn"), known: make(map[msgSum]bool)}
	body := makeBody(o.size).raw
	for i := range io_.messages {
		m := imapMessage(i, body, false)
		d.mixMsgs = append(d.mixMsgs, m)
		d.known[sumOf(m)] = true
	}
	d.appended = imapMessage(io_.messages, body, false)
	d.known[sumOf(d.appended)] = true
	if withDovecot {
		l := newDovecotLayout(filepath.Join(tmp, "imap-dovecot"))
		d.dovecot = &l
		if err := dovecotDirs(l); err != nil {
			return nil, err
		}
	}
	t0 := time.Now()
	var users strings.Builder
	// Mix and big accounts: the default PBKDF2 cost.
	st, err := mailbox.Open(d.dir, mailbox.Options{Parse: mimemsg.ParseBlob, NoSync: true})
	if err != nil {
		return nil, err
	}
	fill := func(st *mailbox.Store, user string, msgs func(i int) []byte, n int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := st.AddUser(user, imapPass); err != nil {
			return err
		}
		acc, err := st.Account(user)
		if err != nil {
			return err
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make([]error, 32)
		for w := range errs {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= n || errs[w] != nil {
						return
					}
					_, errs[w] = acc.Append(ctx, mailbox.InboxName, msgs(i), nil, time.Unix(1_700_000_000+int64(i), 0))
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		// Dovecot: the same bytes, in UID order.
		if d.dovecot != nil {
			local, _, _ := strings.Cut(user, "@")
			md := d.dovecot.maildir(local)
			for _, sub := range []string{"", "cur", "new", "tmp"} {
				if err := mkdirOwned(filepath.Join(md, sub)); err != nil {
					return err
				}
			}
			if err := os.Chown(filepath.Dir(md), vmailUID, vmailUID); err != nil {
				return err
			}
			users.WriteString(d.dovecot.passwdLine(user, imapPass))
			i := 0
			err := acc.ForEachMessage(mailbox.InboxName, 1, func(m mailbox.MessageInfo) error {
				raw, err := acc.Raw(mailbox.InboxName, m.UID)
				if err != nil {
					return err
				}
				i++
				return writeMaildirFile(md, i-1, raw)
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	if io_.part("mix") {
		for i := range io_.clients {
			if err := fill(st, mixUser(i), func(i int) []byte { return d.mixMsgs[i] }, io_.messages); err != nil {
				st.Close()
				return nil, err
			}
		}
	}
	if io_.part("big") {
		bigBody := makeBody(io_.bigSize).raw
		every := max(1, io_.big/max(1, io_.needles))
		needle := func(i int) bool { return io_.needles > 0 && i%every == every/2 && i/every < io_.needles }
		if err := fill(st, bigUser, func(i int) []byte { return imapMessage(i, bigBody, needle(i)) }, io_.big); err != nil {
			st.Close()
			return nil, err
		}
	}
	if err := st.Close(); err != nil {
		return nil, err
	}
	// Idle accounts: a cheap PBKDF2 (1,000 iterations), so that hundreds of
	// first logins do not decide the setup time; memory is measured, not
	// login.
	if io_.part("idle") {
		d.idleN = (io_.idle + imapIdlePerAc - 1) / imapIdlePerAc
		st, err := mailbox.Open(d.dir, mailbox.Options{Parse: mimemsg.ParseBlob, NoSync: true, PBKDF2Iterations: 1000})
		if err != nil {
			return nil, err
		}
		for i := range d.idleN {
			if err := fill(st, idleUser(i), func(i int) []byte { return d.mixMsgs[i%len(d.mixMsgs)] }, imapIdleMsgs); err != nil {
				st.Close()
				return nil, err
			}
		}
		if err := st.Close(); err != nil {
			return nil, err
		}
	}
	if d.dovecot != nil {
		if err := os.WriteFile(d.dovecot.users, []byte(users.String()), 0o644); err != nil {
			return nil, err
		}
	}
	what := "posthorn's store (mailbox.Append, fsync off during setup)"
	if d.dovecot != nil {
		what += " and Dovecot Maildirs"
	}
	fmt.Fprintf(out, "imap setup: %d mix accounts × %d messages, big folder %d messages, %d idle accounts × %d, written into %s in %.1fs\n",
		io_.clients, io_.messages, io_.big, d.idleN, imapIdleMsgs, what, time.Since(t0).Seconds())
	return d, nil
}

// imapServeFlags are posthorn's -o flags for the IMAP benchmark: IMAP on
// loopback only, the per-IP cap and connection rate out of the way (the
// mix connects once per cycle, hundreds of times a second).
func imapServeFlags(dir, addr string) []string {
	var args []string
	for _, kv := range []string{
		"hostname=" + benchDomain, "domains=" + benchDomain, "data_dir=" + dir,
		"smtp_listen=", "submission_listen=", "submissions_listen=",
		"pop3_listen=", "pop3s_listen=", "imap_listen=" + addr, "imaps_listen=",
		"max_connections_per_ip=100000", "max_connection_rate_per_ip=0", "max_connections=20000", "max_connections_per_account=100", "log_level=warn",
	} {
		args = append(args, "-o", kv)
	}
	return args
}

// dovecotIMAPConf is the Dovecot peer's config for IMAP on 127.0.0.1:port:
// as the POP3 one (dovecotConf), with room for conns connections.
func dovecotIMAPConf(l dovecotLayout, port string, cpus, conns int) string {
	limit := strconv.Itoa(conns + 100)
	return `# written by posthorn-bench: loopback-only IMAP benchmark peer (no TLS)
base_dir = ` + filepath.Join(l.dir, "run") + `
state_dir = ` + filepath.Join(l.dir, "state") + `
instance_name = posthorn-bench-dovecot-imap
protocols = imap
listen = 127.0.0.1
log_path = ` + l.log + `
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:` + l.mail + `/%n/Maildir
default_process_limit = ` + limit + `
default_client_limit = ` + limit + `
namespace inbox {
  inbox = yes
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN ` + l.users + `
}
userdb {
  driver = passwd-file
  args = ` + l.users + `
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ` + port + `
  }
  inet_listener imaps {
    port = 0
  }
  service_count = 0
  process_min_avail = ` + strconv.Itoa(max(1, cpus)) + `
  client_limit = ` + limit + `
}
service imap {
  process_limit = ` + limit + `
}
service anvil {
  client_limit = ` + strconv.Itoa(conns+1000) + `
}
protocol imap {
  mail_max_userip_connections = ` + limit + `
}
`
}

// waitIMAPGreeting waits until addr answers with "* OK", then logs out.
func waitIMAPGreeting(ctx context.Context, addr string, died <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-died:
			return errors.New("process exited")
		default:
		}
		c, err := dialIMAP(ctx, addr, nil, 5*time.Second)
		if err == nil {
			c.logout()
			return nil
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no IMAP greeting from %s: %v", addr, last)
}

// imapTarget is a running server of one part.
type imapTarget struct {
	server string
	addr   string
	mem    func() int64 // posthorn VmRSS, Dovecot ΣPSS
	anon   func() int64 // posthorn RssAnon; nil for Dovecot
	cpu    func() time.Duration
	stop   func() error
	log    func() string
}

func startPosthornIMAP(ctx context.Context, o options, d *imapData, tag string) (*imapTarget, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	srv, err := startServeWith(ctx, o.bin, imapServeFlags(d.dir, addr), addr, d.dir+"-"+tag+".log", waitIMAPGreeting)
	if err != nil {
		return nil, err
	}
	pid := srv.cmd.Process.Pid
	return &imapTarget{
		server: "posthorn", addr: addr,
		mem:  func() int64 { return procStatus(pid, "VmRSS:") },
		anon: func() int64 { return procStatus(pid, "RssAnon:") },
		cpu:  func() time.Duration { t, _ := procCPU(pid); return t },
		stop: srv.stop,
		log:  func() string { return tail(srv.logPath) },
	}, nil
}

func startDovecotIMAP(ctx context.Context, d *imapData, conns int) (*imapTarget, error) {
	l := *d.dovecot
	p, err := startDovecotWith(ctx, l, func(port string) string {
		return dovecotIMAPConf(l, port, runtime.NumCPU(), conns)
	}, waitIMAPGreeting)
	if err != nil {
		return nil, err
	}
	return &imapTarget{
		server: "dovecot", addr: p.addr, mem: p.pss,
		cpu: func() time.Duration {
			time.Sleep(200 * time.Millisecond) // let the master reap
			return p.cpu()
		},
		stop: p.stop,
		log:  func() string { return tail(p.log) },
	}, nil
}

// imapRow is one line of the IMAP table.
type imapRow struct {
	part, server string
	cols         []string
}

// imapBench runs the IMAP benchmark; print prints its tables.
func imapBench(ctx context.Context, o options, tmp string, withDovecot bool, out io.Writer) (print func(), err error) {
	print = func() {}
	raiseNoFile(out)
	d, err := imapPrepare(ctx, o, tmp, withDovecot, out)
	if err != nil {
		return print, fmt.Errorf("imap setup: %w", err)
	}
	var failures []string
	fail := func(what string, err error) {
		failures = append(failures, what+": "+err.Error())
		fmt.Fprintf(out, "FAILED imap %s: %v\n", what, err)
	}
	servers := []string{"posthorn"}
	if d.dovecot != nil {
		servers = append(servers, "dovecot")
	}
	start := func(server, tag string, conns int) (*imapTarget, error) {
		if server == "posthorn" {
			return startPosthornIMAP(ctx, o, d, tag)
		}
		return startDovecotIMAP(ctx, d, conns)
	}
	var mixRes = map[string][]mixResult{}
	var bigRes = map[string][]bigPass{}
	var bigMem = map[string]int64{}
	var bigAnon = map[string]int64{}
	var idleRes = map[string][]idleResult{}
	if o.imap.part("mix") {
		for r := 1; r <= o.runs; r++ {
			fmt.Fprintf(out, "imap mix run %d/%d: load average %s\n", r, o.runs, loadAvg())
			for _, s := range servers {
				if ctx.Err() != nil {
					return print, context.Cause(ctx)
				}
				t, err := start(s, "mix", o.imap.clients*2)
				if err != nil {
					fail("mix "+s, err)
					continue
				}
				res, err := runMix(ctx, t, d, o.imap)
				if serr := t.stop(); err == nil && serr != nil {
					err = serr
				}
				if err != nil {
					fail("mix "+s, fmt.Errorf("%w; log: %s", err, t.log()))
					continue
				}
				mixRes[s] = append(mixRes[s], res)
				fmt.Fprintf(out, "run %d/%d: imap mix %-8s %d clients %.1fs: %d cycles, %d commands = %.0f commands/s, %.1f cycles/s, server CPU %s (client %s), peak memory %s; %s\n",
					r, o.runs, s, o.imap.clients, res.d.Seconds(), res.cycles, res.cmds, rate(res.cmds, res.d), rate(res.cycles, res.d),
					res.cpu, res.clientCPU, memText(s, res.mem, res.anon), res.latency())
			}
		}
	}
	if o.imap.part("big") {
		for _, s := range servers {
			if ctx.Err() != nil {
				return print, context.Cause(ctx)
			}
			t, err := start(s, "big", 10)
			if err != nil {
				fail("big "+s, err)
				continue
			}
			mem := startSampler(t.mem)
			var anon *sampler
			if t.anon != nil {
				anon = startSampler(t.anon)
			}
			var passes []bigPass
			for range 2 {
				p, perr := runBig(ctx, t.addr, o.imap)
				if perr != nil {
					err = perr
					break
				}
				passes = append(passes, p)
				fmt.Fprintf(out, "imap big %-8s %d messages: LOGIN %s, SELECT %s, UID FETCH 1:* FLAGS %s (%d responses), SEARCH TEXT %s (%d found)\n",
					s, o.imap.big, ms(p.login), ms(p.sel), ms(p.fetch), p.fetched, ms(p.search), p.found)
			}
			bigMem[s] = mem.stop()
			if anon != nil {
				bigAnon[s] = anon.stop()
			}
			if serr := t.stop(); err == nil && serr != nil {
				err = serr
			}
			if err != nil {
				fail("big "+s, fmt.Errorf("%w; log: %s", err, t.log()))
				continue
			}
			bigRes[s] = passes
		}
	}
	if o.imap.part("idle") && o.imap.idle > 0 {
		n := o.imap.idle
		for _, s := range servers {
			if ctx.Err() != nil {
				return print, context.Cause(ctx)
			}
			if s == "dovecot" {
				// As many as posthorn held (the same count), at most -imap-idle-dovecot.
				if rs := idleRes["posthorn"]; len(rs) > 0 {
					n = rs[0].opened
				}
				n = min(n, o.imap.idleDovecot)
				if n == 0 {
					continue
				}
			}
			t, err := start(s, "idle", n)
			if err != nil {
				fail("idle "+s, err)
				continue
			}
			for _, login := range []bool{false, true} {
				r, err := runIdle(ctx, t, d, n, login)
				if err != nil {
					fail("idle "+s, fmt.Errorf("%w; log: %s", err, t.log()))
					break
				}
				idleRes[s] = append(idleRes[s], r)
				fmt.Fprintf(out, "imap idle %-8s %s: %d of %d connections open%s; memory %s → %s = %.1f KiB per connection%s\n",
					s, r.what(), r.opened, n, r.refusedText(), mib(r.before), mib(r.after), r.perConn()/1024, r.anonText())
			}
			if err := t.stop(); err != nil {
				fail("idle "+s+" stop", err)
			}
		}
	}
	print = func() {
		fmt.Fprintln(out)
		printIMAP(out, o, d, mixRes, bigRes, bigMem, bigAnon, idleRes)
	}
	if len(failures) > 0 {
		return print, fmt.Errorf("imap: %d part(s) failed: %s", len(failures), strings.Join(failures, "; "))
	}
	return print, nil
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}

func memText(server string, mem, anon int64) string {
	if server == "posthorn" {
		return fmt.Sprintf("max VmRSS %s (RssAnon %s)", mib(mem), mib(anon))
	}
	return "max ΣPSS " + mib(mem)
}

// raiseNoFile raises this process's RLIMIT_NOFILE (inherited by the
// servers it starts) for the idle connections.
func raiseNoFile(out io.Writer) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return
	}
	want := uint64(200_000)
	n := syscall.Rlimit{Cur: max(l.Cur, want), Max: max(l.Max, want)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &n); err != nil {
		n = syscall.Rlimit{Cur: l.Max, Max: l.Max}
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &n)
	}
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	fmt.Fprintf(out, "imap: RLIMIT_NOFILE %d (inherited by the servers)\n", l.Cur)
}
