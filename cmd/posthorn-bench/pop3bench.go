package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"posthorn/mailbox"
)

// The POP3 benchmark: download rate of S concurrent sessions, each on its
// own account (posthorn locks a maildrop for one session, RFC 1939 4;
// another gets -ERR [IN-USE]), each retrieving every one of the M messages
// of its INBOX.
//
// Setup, once per invocation: S accounts pop1@bench.example .. popS@ are
// created with "posthorn user add"; posthorn is started with SMTP on
// loopback and M messages (the -size body plus headers) are sent with
// go-loadgen, each to all S accounts in one transaction (S RCPTs); posthorn
// is stopped and its store is opened with the mailbox package to read every
// stored message back: their sizes and CRC-32Cs are what the POP3 client
// must retrieve, and, for Dovecot, the very same bytes are written as files
// into S Maildirs (cur/, with ,S= and ,W= in the name, as Dovecot's own
// deliveries do).
//
// Each round then starts a fresh posthorn (POP3 only) and a fresh Dovecot
// master on the same data, both at once, and runs against each a first
// pass (cold: posthorn derives each account's PBKDF2 password hash once,
// Dovecot builds its index files in round 1), then -pop3-passes measured
// passes, alternating between the servers (pop3Round). The rate is the
// messages retrieved by all sessions in the measured passes divided by the
// sum of their times, each from the first connect to the last QUIT's +OK.

const (
	pop3Pass      = "pw"
	pop3Client    = "go-pop3"
	pop3SMTPLoads = 10 // SMTP sessions that fill the maildrops
)

// pop3User is the address of account i (0-based) of the POP3 load.
func pop3User(i int) string { return fmt.Sprintf("pop%d@%s", i+1, benchDomain) }

// pop3Flags are posthorn's -o flags for the POP3 benchmark: SMTP (setup
// only) and POP3 on loopback, every other listener off.
func pop3Flags(dir, smtpAddr, pop3Addr string) []string {
	var args []string
	for _, kv := range []string{
		"hostname=" + benchDomain, "domains=" + benchDomain, "data_dir=" + dir,
		"smtp_listen=" + smtpAddr, "submission_listen=", "submissions_listen=",
		"pop3_listen=" + pop3Addr, "pop3s_listen=", "imap_listen=", "imaps_listen=",
		"max_connections_per_ip=1000", "log_level=warn",
	} {
		args = append(args, "-o", kv)
	}
	return args
}

// pop3Data is the prepared data of the POP3 benchmark.
type pop3Data struct {
	dir      string // posthorn's data dir
	accounts []pop3Account
	bytes    int64          // octets of one account's messages
	dovecot  *dovecotLayout // nil: no Dovecot comparison
}

// pop3Prepare creates the accounts, fills them over SMTP and exports the
// stored messages (see above).
func pop3Prepare(ctx context.Context, o options, tmp string, body *message, withDovecot bool, out io.Writer) (*pop3Data, error) {
	data := &pop3Data{dir: filepath.Join(tmp, "pop3-posthorn")}
	if err := os.MkdirAll(data.dir, 0o700); err != nil {
		return nil, err
	}
	users := make([]string, o.pop3Sessions)
	t0 := time.Now()
	for i := range users {
		users[i] = pop3User(i)
		add := exec.CommandContext(ctx, o.bin, append(pop3Flags(data.dir, "", ""), "user", "add", users[i])...)
		add.Stdin = strings.NewReader(pop3Pass + "\n")
		if b, err := add.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("posthorn user add %s: %v: %s", users[i], err, strings.TrimSpace(string(b)))
		}
	}
	tUsers := time.Since(t0)

	smtpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	srv, err := startServe(ctx, o.bin, pop3Flags(data.dir, smtpAddr, ""), smtpAddr, data.dir+"-fill.log")
	if err != nil {
		return nil, err
	}
	spec := loadSpec{
		sessions: min(pop3SMTPLoads, o.pop3Messages), messages: o.pop3Messages, perIP: o.perIP, body: body,
		rcpt: users[0], rcpts: users,
	}
	c, lerr := runLoad(ctx, smtpAddr, spec)
	serr := srv.stop()
	if lerr != nil {
		return nil, fmt.Errorf("filling the maildrops: %w; %d accepted; server log: %s", lerr, c.n, tail(srv.logPath))
	}
	if serr != nil {
		return nil, serr
	}
	fmt.Fprintf(out, "pop3 setup: %d accounts in %.1fs; %d messages × %d RCPTs over SMTP (%d sessions) in %.2fs = %.0f deliveries/s\n",
		len(users), tUsers.Seconds(), c.n, len(users), spec.sessions, c.d.Seconds(), rate(c.n*len(users), c.d))

	if withDovecot {
		l := newDovecotLayout(filepath.Join(tmp, "pop3-dovecot"))
		data.dovecot = &l
		if err := dovecotDirs(l); err != nil {
			return nil, err
		}
	}
	t0 = time.Now()
	if err := data.export(users, o.pop3Messages); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	what := "read back from posthorn's store"
	if withDovecot {
		what += ", written into the Dovecot Maildirs"
	}
	fmt.Fprintf(out, "pop3 setup: %d × %d messages (%d octets per maildrop) %s in %.2fs\n",
		len(users), o.pop3Messages, data.bytes, what, time.Since(t0).Seconds())
	return data, nil
}

// dovecotDirs creates the Dovecot peer's directories (the mail tree owned
// by vmailUID).
func dovecotDirs(l dovecotLayout) error {
	for _, d := range []string{l.dir, filepath.Join(l.dir, "run"), filepath.Join(l.dir, "state"), l.mail} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return os.Chown(l.mail, vmailUID, vmailUID)
}

// export reads every account's INBOX from posthorn's (stopped) store: the
// expected sums for the client, and the Dovecot Maildir files.
func (d *pop3Data) export(users []string, messages int) error {
	st, err := mailbox.Open(d.dir, mailbox.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	var users0 strings.Builder
	for ai, u := range users {
		acc, err := st.Account(u)
		if err != nil {
			return err
		}
		var uids []uint32
		err = acc.ForEachMessage(mailbox.InboxName, 1, func(m mailbox.MessageInfo) error {
			uids = append(uids, m.UID)
			return nil
		})
		if err != nil {
			return err
		}
		if len(uids) != messages {
			return fmt.Errorf("%s: INBOX holds %d messages, %d were sent", u, len(uids), messages)
		}
		md := ""
		if d.dovecot != nil {
			local, _, _ := strings.Cut(u, "@")
			md = d.dovecot.maildir(local)
			for _, sub := range []string{"", "cur", "new", "tmp"} {
				if err := mkdirOwned(filepath.Join(md, sub)); err != nil {
					return err
				}
			}
			if err := os.Chown(filepath.Dir(md), vmailUID, vmailUID); err != nil {
				return err
			}
			users0.WriteString(d.dovecot.passwdLine(u, pop3Pass))
		}
		acct := pop3Account{user: u, pass: pop3Pass}
		var total int64
		for i, uid := range uids {
			raw, err := acc.Raw(mailbox.InboxName, uid)
			if err != nil {
				return err
			}
			acct.want = append(acct.want, sumOf(raw))
			total += int64(len(raw))
			if md != "" {
				if err := writeMaildirFile(md, i, raw); err != nil {
					return err
				}
			}
		}
		sortSums(acct.want)
		if ai == 0 {
			d.bytes = total
		}
		d.accounts = append(d.accounts, acct)
	}
	if d.dovecot != nil {
		return os.WriteFile(d.dovecot.users, []byte(users0.String()), 0o644)
	}
	return nil
}

func mkdirOwned(p string) error {
	if err := os.MkdirAll(p, 0o700); err != nil {
		return err
	}
	return os.Chown(p, vmailUID, vmailUID)
}

// writeMaildirFile writes message i (0-based) of a maildrop into its
// Maildir's cur/, unflagged, named as Dovecot names what it delivers
// (time.M<usec>P<pid>.host,S=size,W=virtual size:2,). The times increase
// with i, so Dovecot numbers the messages in posthorn's order. The stored
// message has CRLF line ends, so its virtual (CRLF) size is its size.
func writeMaildirFile(md string, i int, raw []byte) error {
	name := fmt.Sprintf("%d.M%dP%d.posthorn-bench,S=%d,W=%d:2,", 1_700_000_000+i, i%1_000_000, os.Getpid(), len(raw), len(raw))
	p := filepath.Join(md, "cur", name)
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		return err
	}
	return os.Chown(p, vmailUID, vmailUID)
}

// waitPOP3Greeting waits until addr answers with a POP3 "+OK" greeting,
// then quits that probe session.
func waitPOP3Greeting(ctx context.Context, addr string, died <-chan struct{}, limit time.Duration) error {
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
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(c)
			var l string
			if l, err = readLine(br); err == nil {
				if strings.HasPrefix(l, "+OK") {
					io.WriteString(c, "QUIT\r\n")
					readLine(br)
					io.Copy(io.Discard, br)
					c.Close()
					return nil
				}
				err = fmt.Errorf("greeting %q", l)
			}
			c.Close()
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no +OK from %s: %v", addr, last)
}

// pop3Target is one server of a POP3 round.
type pop3Target struct {
	res    result
	addr   string
	cpu    func() time.Duration // CPU time of the server's processes so far
	mem    *sampler             // posthorn: VmRSS; Dovecot: ΣPSS
	anon   *sampler             // posthorn: RssAnon
	stop   func() error
	log    func() string // the end of the server's log
	first  pop3Run
	passes []pop3Run
	err    error
}

// pop3Round runs one round: a fresh posthorn (POP3 only) on the prepared
// data dir and, with the Dovecot comparison, a fresh Dovecot master on the
// Maildirs, both running at once; then the first pass against each, and
// the measured passes alternating between them (posthorn first in odd
// passes, Dovecot first in even ones), so that both see the same changes
// of the machine's load. Each server stops when the round ends.
func pop3Round(ctx context.Context, o options, data *pop3Data, out io.Writer, tag string) []*pop3Target {
	mk := func(server string) *pop3Target {
		return &pop3Target{res: result{bench: benchPOP3, server: server, client: pop3Client, sessions: len(data.accounts)}}
	}
	ph := mk("posthorn")
	targets := []*pop3Target{ph}
	if addr, err := freeAddr(); err != nil {
		ph.err = err
	} else if srv, err := startServeWith(ctx, o.bin, pop3Flags(data.dir, "", addr), addr, data.dir+".log", waitPOP3Greeting); err != nil {
		ph.err = err
	} else {
		pid := srv.cmd.Process.Pid
		ph.addr = addr
		ph.cpu = func() time.Duration { t, _ := procCPU(pid); return t }
		ph.mem = startSampler(func() int64 { return procStatus(pid, "VmRSS:") })
		ph.anon = startSampler(func() int64 { return procStatus(pid, "RssAnon:") })
		ph.stop = func() error {
			ph.res.maxRSS = ph.mem.stop()
			ph.res.maxAnon = ph.anon.stop()
			ph.res.hwm = procStatus(pid, "VmHWM:")
			return srv.stop()
		}
		ph.log = func() string { return tail(srv.logPath) }
	}
	if data.dovecot != nil {
		dc := mk("dovecot")
		targets = append(targets, dc)
		if p, err := startDovecot(ctx, *data.dovecot); err != nil {
			dc.err = err
		} else {
			dc.addr = p.addr
			dc.cpu = func() time.Duration {
				// Let the master reap the sessions' pop3 processes, whose
				// CPU time then moves into its cutime.
				time.Sleep(200 * time.Millisecond)
				return p.cpu()
			}
			dc.mem = startSampler(p.pss)
			dc.stop = func() error {
				dc.res.maxRSS = dc.mem.stop()
				return p.stop()
			}
			dc.log = func() string { return tail(p.log) }
		}
	}

	// pass runs one pass against t unless t has failed.
	pass := func(t *pop3Target, what string) (pop3Run, bool) {
		if t.err != nil || ctx.Err() != nil {
			return pop3Run{}, false
		}
		var cpu0, self0 time.Duration
		if what != "first" {
			cpu0 = t.cpu()
			self0, _ = procCPU(os.Getpid())
		}
		r, err := runPOP3Load(ctx, t.addr, data.accounts, o.pop3Window)
		self1, _ := procCPU(os.Getpid())
		if err == nil && r.msgs != len(data.accounts)*len(data.accounts[0].want) {
			err = fmt.Errorf("retrieved %d messages, want %d", r.msgs, len(data.accounts)*len(data.accounts[0].want))
		}
		if err != nil {
			t.err = fmt.Errorf("%s pass: %w; log: %s", what, err, t.log())
			return r, false
		}
		if what != "first" {
			t.res.clientCPU += self1 - self0
			t.res.cpu += t.cpu() - cpu0
		}
		return r, true
	}
	for _, t := range targets {
		if r, ok := pass(t, "first"); ok {
			t.first = r
			t.res.first = r.d
		}
	}
	for p := range o.pop3Passes {
		order := targets
		if p%2 == 1 {
			order = slices.Clone(targets)
			slices.Reverse(order)
		}
		for _, t := range order {
			if r, ok := pass(t, fmt.Sprintf("measured %d", p+1)); ok {
				t.passes = append(t.passes, r)
				t.res.messages += r.msgs
				t.res.bytes += r.bytes
				t.res.stored += r.d
			}
		}
	}
	for _, t := range targets {
		if t.stop == nil {
			continue
		}
		if err := t.stop(); err != nil && t.err == nil {
			t.err = fmt.Errorf("%s stop: %w", t.res.server, err)
		}
	}
	for _, t := range targets {
		if t.err != nil {
			continue
		}
		var login []time.Duration
		var each []string
		for _, r := range t.passes {
			login = append(login, r.login...)
			each = append(each, fmt.Sprintf("%.0f", rate(r.msgs, r.d)))
		}
		t.res.note = pop3Run{login: login}.loginLatency()
		t.res.passes = len(t.passes)
		mem := fmt.Sprintf("max ΣPSS %s", mib(t.res.maxRSS))
		if t.res.server == "posthorn" {
			mem = fmt.Sprintf("VmHWM %s, max RssAnon %s", mib(t.res.hwm), mib(t.res.maxAnon))
		}
		fmt.Fprintf(out, "%s: pop3 %-8s %d sessions × %d msgs: first pass %.2fs = %.0f msg/s; %d measured passes %.2fs = %.0f msg/s (%s), %.1f MB/s, CPU %s (client %s), %s; %s\n",
			tag, t.res.server, t.res.sessions, len(data.accounts[0].want), t.first.d.Seconds(), rate(t.first.msgs, t.first.d),
			len(t.passes), t.res.stored.Seconds(), rate(t.res.messages, t.res.stored), strings.Join(each, " "),
			mbps(t.res.bytes, t.res.stored), t.res.cpu, t.res.clientCPU, mem, t.res.note)
	}
	return targets
}

// mbps is octets per second in MB (10^6 octets).
func mbps(b int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(b) / 1e6 / d.Seconds()
}
