package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Debian's Postfix, run by hand from a private config dir as the comparison
// peer: SMTP on a free loopback port, virtual(8) delivery into a Maildir
// owned by vmailUID (a bare uid, no passwd entry needed). /etc/postfix is
// only read (meta_directory: postfix-files), never written.
const (
	postfixCmd    = "/usr/sbin/postfix"
	postfixMaster = "/usr/lib/postfix/sbin/master"
	vmailUID      = 5000
)

// postfixMissing says why the Postfix comparison cannot run, or "".
func postfixMissing() string {
	for _, p := range []string{postfixCmd, postfixMaster} {
		if !fileExists(p) {
			return p + " is not installed (apt-get install postfix)"
		}
	}
	if os.Geteuid() != 0 {
		return "it needs root (Postfix daemons run as user postfix, virtual(8) delivers as a mail uid)"
	}
	if _, err := user.Lookup("postfix"); err != nil {
		return "no user postfix on this system"
	}
	return ""
}

type postfixPeer struct {
	dir, etc, spool, maildir string
	addr                     string
}

// postfixVersion is the installed Postfix's version.
func postfixVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "/usr/sbin/postconf", "-d", "-h", "mail_version").Output()
	if err != nil {
		return "Postfix (version unknown)"
	}
	return "Postfix " + strings.TrimSpace(string(out))
}

// postfixRun starts a fresh instance in dir, loads it and stops it.
func postfixRun(ctx context.Context, dir string, spec loadSpec, client string, out io.Writer, tag string) (res result, err error) {
	p, err := startPostfix(ctx, dir, "")
	if p != nil {
		defer func() {
			if serr := p.stop(); serr != nil && err == nil {
				err = fmt.Errorf("postfix stop: %w", serr)
			}
		}()
	}
	if err != nil {
		return result{server: "postfix", client: client, sessions: spec.sessions}, fmt.Errorf("postfix: %w", err)
	}
	return p.run(ctx, spec, client, out, tag)
}

// startPostfix starts a fresh instance in dir. With relayTo ("IP:port"), it
// relays everything that is not local to that host instead of DNS routing.
func startPostfix(ctx context.Context, dir, relayTo string) (*postfixPeer, error) {
	p := &postfixPeer{
		dir:     dir,
		etc:     filepath.Join(dir, "etc"),
		spool:   filepath.Join(dir, "spool"),
		maildir: filepath.Join(dir, "mail", "bench", "Maildir"),
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p.addr = addr
	data, mail := filepath.Join(dir, "data"), filepath.Join(dir, "mail")
	for _, d := range []string{p.etc, p.spool, data, mail} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	pu, err := user.Lookup("postfix")
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(pu.Uid)
	gid, _ := strconv.Atoi(pu.Gid)
	if err := os.Chown(data, uid, gid); err != nil {
		return nil, err
	}
	if err := os.Chown(mail, vmailUID, vmailUID); err != nil {
		return nil, err
	}
	_, port, _ := strings.Cut(addr, ":")
	if err := os.WriteFile(filepath.Join(p.etc, "main.cf"), []byte(mainCf(dir, p.etc, p.spool, data, mail, relayTo)), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(p.etc, "master.cf"), []byte(masterCf(port)), 0o644); err != nil {
		return nil, err
	}
	// check creates the queue directories with their owners and modes; it
	// may warn about the temp dir's parents, which is harmless here.
	p.postfix(ctx, postfixCmd, "check")
	if out, err := p.postfix(ctx, postfixCmd, "start"); err != nil {
		return p, fmt.Errorf("postfix start: %v: %s", err, strings.TrimSpace(out))
	}
	if err := waitBanner(ctx, addr, nil, 30*time.Second); err != nil {
		return p, fmt.Errorf("%w; maillog: %s", err, tail(filepath.Join(dir, "maillog")))
	}
	return p, nil
}

// postfix runs a Postfix command on this instance's config dir.
func (p *postfixPeer) postfix(ctx context.Context, cmd string, args ...string) (string, error) {
	c := exec.CommandContext(ctx, cmd, append([]string{"-c", p.etc}, args...)...)
	out, err := c.CombinedOutput()
	return string(out), err
}

// mainCf is the instance's main.cf; relayTo ("IP:port", or "") adds the
// relay variant: every remote recipient goes to [IP]:port, in plaintext,
// without DNS.
func mainCf(dir, etc, spool, data, mail, relayTo string) string {
	relay := ""
	if relayTo != "" {
		host, port, _ := strings.Cut(relayTo, ":")
		relay = `# relay variant: all remote mail to the bench sink. The brackets and
# the address literal mean no MX or A lookup; the smtp client makes no DNS
# lookups at all, offers no TLS and no SASL. Destination concurrency,
# connection caching and the queue manager are left at their defaults.
relayhost = [` + host + `]:` + port + `
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtp_sasl_auth_enable = no
smtp_address_preference = ipv4
`
	}
	return `# written by posthorn-bench: loopback-only benchmark peer
compatibility_level = 3.6
config_directory = ` + etc + `
queue_directory = ` + spool + `
data_directory = ` + data + `
meta_directory = /etc/postfix
daemon_directory = /usr/lib/postfix/sbin
command_directory = /usr/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = ` + filepath.Join(dir, "maillog") + `
maillog_file_prefixes = ` + dir + `
myhostname = peer-postfix.localdomain
mydomain = localdomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
local_recipient_maps =
append_dot_mydomain = no
biff = no
message_size_limit = 52428800
# no per-client limits: the load comes from loopback
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
# no reverse DNS of the client (posthorn does none): resolver latency is not
# what is measured, and 127.0.0.2-127.0.0.x have no names
smtpd_peername_lookup = no
# delivery: virtual(8) into a Maildir (the trailing slash)
virtual_mailbox_domains = ` + benchDomain + `
virtual_mailbox_base = ` + mail + `
virtual_mailbox_maps = inline:{ {` + benchRcpt + `=bench/Maildir/} }
virtual_uid_maps = static:` + strconv.Itoa(vmailUID) + `
virtual_gid_maps = static:` + strconv.Itoa(vmailUID) + `
virtual_minimum_uid = 1000
virtual_mailbox_limit = 0
` + relay
}

// masterCf: the stock services, nothing chrooted, smtpd on the bench port.
func masterCf(port string) string {
	return `127.0.0.1:` + port + ` inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`
}

// masterPID is the PID in this instance's queue_directory/pid/master.pid,
// if that process is alive and is Postfix's master.
func (p *postfixPeer) masterPID() int {
	b, err := os.ReadFile(filepath.Join(p.spool, "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil || filepath.Base(exe) != "master" {
		return 0
	}
	return pid
}

// stop stops this instance only: "postfix -c DIR stop" signals the master
// whose PID is in this instance's queue dir; if it does not go away, that
// one PID is killed.
func (p *postfixPeer) stop() error {
	pid := p.masterPID()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := p.postfix(ctx, postfixCmd, "stop")
	if pid == 0 {
		return nil
	}
	for range 150 {
		if p.masterPID() == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	if p.masterPID() == pid {
		syscall.Kill(pid, syscall.SIGKILL)
		return fmt.Errorf("master %d still running 15 s after postfix stop (%v %s); killed", pid, err, strings.TrimSpace(out))
	}
	return nil
}

// count is the number of messages in the Maildir (new/ + cur/).
func (p *postfixPeer) count() (int, error) {
	n := 0
	for _, sub := range []string{"new", "cur"} {
		f, err := os.Open(filepath.Join(p.maildir, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return 0, err
		}
		n += len(names)
	}
	return n, nil
}

// clear deletes the delivered messages so each run counts from zero.
func (p *postfixPeer) clear() error {
	for _, sub := range []string{"new", "cur"} {
		d := filepath.Join(p.maildir, sub)
		names, err := os.ReadDir(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range names {
			if err := os.Remove(filepath.Join(d, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// children returns the PIDs whose parent is pid.
func children(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil || c == pid {
			continue
		}
		if _, ppid := procCPU(c); ppid == pid {
			out = append(out, c)
		}
	}
	return out
}

// pss is the proportional set size of the master and its children, in
// bytes (PSS, not RSS: the processes share their libraries).
func (p *postfixPeer) pss() int64 {
	master := p.masterPID()
	if master == 0 {
		return 0
	}
	total := int64(0)
	for _, pid := range append(children(master), master) {
		v, _ := procField("/proc/"+strconv.Itoa(pid)+"/smaps_rollup", "Pss:")
		total += v
	}
	return total
}

// cpu is the CPU time used so far by the master and its children, living
// (their own times) and exited (the master's cutime and cstime).
func (p *postfixPeer) cpu() time.Duration {
	master := p.masterPID()
	if master == 0 {
		return 0
	}
	var total time.Duration
	for _, pid := range append(children(master), master) {
		t, _ := procCPU(pid)
		total += t
	}
	return total
}

// run loads Postfix and waits until every message is in the Maildir.
func (p *postfixPeer) run(ctx context.Context, spec loadSpec, client string, out io.Writer, tag string) (result, error) {
	res := result{server: "postfix", client: client, sessions: spec.sessions, messages: spec.messages}
	if err := p.clear(); err != nil {
		return res, err
	}
	mem := startSampler(p.pss)
	defer mem.stop()
	cpu0 := p.cpu()
	t0 := time.Now()
	c, err := runClient(ctx, client, p.addr, spec)
	n, d := c.n, c.d
	res.accepted, res.note = d, c.note
	if err != nil {
		return res, fmt.Errorf("%w; %d accepted", err, n)
	}
	deadline := time.Now().Add(5 * time.Minute)
	got := 0
	for {
		if got, err = p.count(); err != nil {
			return res, err
		}
		if got >= spec.messages {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return res, fmt.Errorf("only %d of %d messages in the Maildir after %s", got, spec.messages, time.Since(t0).Round(time.Second))
		}
		time.Sleep(20 * time.Millisecond)
	}
	res.stored = time.Since(t0)
	res.cpu = p.cpu() - cpu0
	res.maxRSS = mem.stop()
	time.Sleep(200 * time.Millisecond) // nothing more must arrive
	if got, err = p.count(); err != nil {
		return res, err
	}
	fmt.Fprintf(out, "%s: postfix  %-11s %2d sessions: %d msgs accepted in %.2fs = %.0f msg/s, in Maildir after %.2fs = %.0f msg/s, CPU %s%s\n",
		tag, client, spec.sessions, n, d.Seconds(), rate(n, d), res.stored.Seconds(), rate(spec.messages, res.stored), res.cpu, c.latency())
	if got != spec.messages {
		return res, fmt.Errorf("Maildir holds %d messages, %d were sent", got, spec.messages)
	}
	return res, nil
}
