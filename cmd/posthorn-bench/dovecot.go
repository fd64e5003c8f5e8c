package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Debian's Dovecot (dovecot-pop3d), run by hand from a private config in
// the temp dir as the POP3 comparison peer: POP3 only, on a free loopback
// port, no TLS, a passwd-file with {PLAIN} passwords, Maildirs owned by
// vmailUID (a bare uid, no passwd entry needed). The master runs in the
// foreground (-F) as this tool's child, so it is stopped by its own PID;
// /etc/dovecot is not read.
const (
	dovecotCmd  = "/usr/sbin/dovecot"
	dovecotPOP3 = "/usr/lib/dovecot/pop3"
)

// dovecotMissing says why the Dovecot comparison cannot run, or "".
func dovecotMissing() string { return dovecotMissingFor(dovecotPOP3, "dovecot-pop3d") }

// dovecotMissingFor is dovecotMissing for the protocol binary bin of the
// Debian package pkg.
func dovecotMissingFor(bin, pkg string) string {
	for _, p := range []string{dovecotCmd, bin} {
		if !fileExists(p) {
			return p + " is not installed (apt-get install " + pkg + ")"
		}
	}
	if os.Geteuid() != 0 {
		return "it needs root (the master binds as root, mail processes run as a mail uid)"
	}
	for _, u := range []string{"dovecot", "dovenull"} {
		if _, err := user.Lookup(u); err != nil {
			return "no user " + u + " on this system"
		}
	}
	return ""
}

// dovecotVersion is the installed Dovecot's version.
func dovecotVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, dovecotCmd, "--version").Output()
	if err != nil {
		return "Dovecot (version unknown)"
	}
	return "Dovecot " + strings.TrimSpace(string(out))
}

// dovecotLayout is where a Dovecot peer keeps its files, under dir.
type dovecotLayout struct {
	dir, conf, users, mail, log string
}

func newDovecotLayout(dir string) dovecotLayout {
	return dovecotLayout{
		dir:   dir,
		conf:  filepath.Join(dir, "dovecot.conf"),
		users: filepath.Join(dir, "users"),
		mail:  filepath.Join(dir, "mail"),
		log:   filepath.Join(dir, "dovecot.log"),
	}
}

// maildir is the Maildir of the account with local part local.
func (l dovecotLayout) maildir(local string) string {
	return filepath.Join(l.mail, local, "Maildir")
}

// dovecotConf is the instance's dovecot.conf: POP3 on 127.0.0.1:port only.
// The settings beyond the defaults: plaintext logins without TLS (the
// load is on loopback, as for posthorn), the "high-performance" login
// mode (service_count = 0: a login process serves many connections, as
// Dovecot's documentation recommends for busy servers), one login process
// per CPU kept ready, no per-user connection cap, and no \Seen update on
// RETR (pop3_no_flag_updates: posthorn sets no flag either).
func dovecotConf(l dovecotLayout, port string, cpus int) string {
	return `# written by posthorn-bench: loopback-only POP3 benchmark peer (no TLS)
base_dir = ` + filepath.Join(l.dir, "run") + `
state_dir = ` + filepath.Join(l.dir, "state") + `
instance_name = posthorn-bench-dovecot
protocols = pop3
listen = 127.0.0.1
log_path = ` + l.log + `
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:` + l.mail + `/%n/Maildir
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
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = ` + port + `
  }
  inet_listener pop3s {
    port = 0
  }
  service_count = 0
  process_min_avail = ` + strconv.Itoa(max(1, cpus)) + `
}
protocol pop3 {
  mail_max_userip_connections = 1000
  pop3_no_flag_updates = yes
}
`
}

// passwdLine is one passwd-file entry: user:{PLAIN}pass:uid:gid::home.
func (l dovecotLayout) passwdLine(user, pass string) string {
	local, _, _ := strings.Cut(user, "@")
	uid := strconv.Itoa(vmailUID)
	return user + ":{PLAIN}" + pass + ":" + uid + ":" + uid + "::" + filepath.Join(l.mail, local) + "\n"
}

// dovecotPeer is a running Dovecot master.
type dovecotPeer struct {
	dovecotLayout
	addr    string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

// startDovecot writes the config for a free port and starts the master in
// the foreground; it returns once POP3 answers with +OK.
func startDovecot(ctx context.Context, l dovecotLayout) (*dovecotPeer, error) {
	conf := func(port string) string { return dovecotConf(l, port, runtime.NumCPU()) }
	return startDovecotWith(ctx, l, conf, waitPOP3Greeting)
}

// startDovecotWith is startDovecot with the config conf(port) and the
// greeting check wait (imapbench.go: IMAP).
func startDovecotWith(ctx context.Context, l dovecotLayout, conf func(port string) string,
	wait func(ctx context.Context, addr string, died <-chan struct{}, limit time.Duration) error) (*dovecotPeer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := strings.Cut(addr, ":")
	if err := os.WriteFile(l.conf, []byte(conf(port)), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(l.log+".stderr", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(dovecotCmd, "-F", "-c", l.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If this tool dies without cleaning up, the master is told to stop
	// (and it stops its children).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &dovecotPeer{dovecotLayout: l, addr: addr, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	if err := wait(ctx, addr, p.done, 30*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("dovecot did not start: %w; log: %s %s", err, tail(l.log+".stderr"), tail(l.log))
	}
	return p, nil
}

// stop sends SIGTERM to the master this tool started (it stops its own
// children) and waits for it; SIGKILL to that one PID after 15 s.
func (p *dovecotPeer) stop() error {
	select {
	case <-p.done:
		return fmt.Errorf("dovecot exited early: %v; log: %s", p.waitErr, tail(p.log))
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return errors.New("dovecot master did not stop within 15 s of SIGTERM; killed")
	}
	return nil
}

func (p *dovecotPeer) pid() int { return p.cmd.Process.Pid }

// pss is the proportional set size of the master and its children (login,
// auth, pop3, log, config, anvil, stats), in bytes.
func (p *dovecotPeer) pss() int64 {
	total := int64(0)
	for _, pid := range append(children(p.pid()), p.pid()) {
		v, _ := procField("/proc/"+strconv.Itoa(pid)+"/smaps_rollup", "Pss:")
		total += v
	}
	return total
}

// cpu is the CPU time used so far by the master and its children, living
// and exited (reaped ones are in the master's cutime and cstime).
func (p *dovecotPeer) cpu() time.Duration {
	var total time.Duration
	for _, pid := range append(children(p.pid()), p.pid()) {
		t, _ := procCPU(pid)
		total += t
	}
	return total
}
