package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"posthorn/mailbox"
)

// posthornFlags are the -o overrides for a server on addr with data in dir:
// SMTP on loopback only, every other listener off.
func posthornFlags(dir, addr string) []string {
	var args []string
	for _, kv := range []string{
		"hostname=" + benchDomain, "domains=" + benchDomain, "data_dir=" + dir,
		"smtp_listen=" + addr, "submission_listen=", "submissions_listen=",
		"pop3_listen=", "pop3s_listen=", "imap_listen=", "imaps_listen=", "log_level=warn",
	} {
		args = append(args, "-o", kv)
	}
	return args
}

// makeTemplate creates a data dir holding the bench account, copied for every
// run (the password hash is deliberately slow, and each run starts empty).
func makeTemplate(ctx context.Context, bin, dir string) error {
	cmd := exec.CommandContext(ctx, bin, append(posthornFlags(dir, "127.0.0.1:1"), "user", "add", benchRcpt)...)
	cmd.Stdin = strings.NewReader("pw\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("posthorn user add: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// copyDir copies the regular files and directories of src to dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil // control socket
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o600)
	})
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// server is a running posthorn serve process.
type server struct {
	cmd     *exec.Cmd
	addr    string
	logPath string
	done    chan struct{}
	waitErr error
}

func startPosthorn(ctx context.Context, bin, dir string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return startServe(ctx, bin, posthornFlags(dir, addr), addr, dir+".log")
}

// startServe runs "posthorn FLAGS serve" with its output in logPath and
// waits for the 220 greeting on addr.
func startServe(ctx context.Context, bin string, flags []string, addr, logPath string) (*server, error) {
	return startServeWith(ctx, bin, flags, addr, logPath, waitBanner)
}

// startServeWith is startServe with the greeting check wait (waitBanner for
// SMTP, waitPOP3Greeting for POP3).
func startServeWith(ctx context.Context, bin string, flags []string, addr, logPath string,
	wait func(ctx context.Context, addr string, died <-chan struct{}, limit time.Duration) error) (*server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, append(slices.Clone(flags), "serve")...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If this tool dies without cleaning up, the kernel tells posthorn to stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, addr: addr, logPath: logPath, done: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	if err := wait(ctx, addr, s.done, 30*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("posthorn did not start: %w; log: %s", err, tail(logPath))
	}
	return s, nil
}

// waitBanner waits until addr answers with a 220 greeting.
func waitBanner(ctx context.Context, addr string, died <-chan struct{}, limit time.Duration) error {
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
			code, lines, rerr := readReply(br)
			if rerr == nil && code == 220 {
				// QUIT, its 221 and the server's close: the probe session
				// is over and does not count against the per-IP cap.
				io.WriteString(c, "QUIT\r\n")
				readReply(br)
				io.Copy(io.Discard, br)
				c.Close()
				return nil
			}
			c.Close()
			if rerr == nil {
				rerr = fmt.Errorf("greeting %d %s", code, strings.Join(lines, " "))
			}
			err = rerr
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no 220 from %s: %v", addr, last)
}

// stop sends SIGTERM to this process only and waits for it to exit (the
// server drains and closes its store); SIGKILL after 40 s.
func (s *server) stop() error {
	select {
	case <-s.done:
		return fmt.Errorf("posthorn exited early: %v", s.waitErr)
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(40 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		return errors.New("posthorn did not stop within 40 s of SIGTERM; killed")
	}
	if s.waitErr != nil {
		return fmt.Errorf("posthorn exit: %v; log: %s", s.waitErr, tail(s.logPath))
	}
	return nil
}

// tail returns the last lines of a log file.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	if s == "" {
		return "(empty)"
	}
	return s
}

// sampler polls f every 100 ms and keeps the largest value.
type sampler struct {
	stopc chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	max   int64
}

func startSampler(f func() int64) *sampler {
	s := &sampler{stopc: make(chan struct{})}
	s.wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			s.max = max(s.max, f())
			select {
			case <-s.stopc:
				s.max = max(s.max, f())
				return
			case <-t.C:
			}
		}
	})
	return s
}

// stop ends the sampling (idempotent) and returns the maximum.
func (s *sampler) stop() int64 {
	s.once.Do(func() { close(s.stopc) })
	s.wg.Wait()
	return s.max
}

func procStatus(pid int, key string) int64 {
	v, _ := procField("/proc/"+strconv.Itoa(pid)+"/status", key)
	return v
}

// posthornRun starts a fresh posthorn, runs one load against it, reads its
// memory figures, stops it with SIGTERM and counts the INBOX in its store.
func posthornRun(ctx context.Context, bin, template, dir string, spec loadSpec, client string, out io.Writer, tag string) (result, error) {
	res := result{server: "posthorn", client: client, sessions: spec.sessions, messages: spec.messages}
	if err := copyDir(template, dir); err != nil {
		return res, err
	}
	srv, err := startPosthorn(ctx, bin, dir)
	if err != nil {
		return res, err
	}
	pid := srv.cmd.Process.Pid
	rss := startSampler(func() int64 { return procStatus(pid, "VmRSS:") })
	cpu0, _ := procCPU(pid)
	c, lerr := runClient(ctx, client, srv.addr, spec)
	n, d := c.n, c.d
	cpu1, _ := procCPU(pid)
	res.cpu = cpu1 - cpu0
	res.maxRSS = rss.stop()
	res.hwm = procStatus(pid, "VmHWM:")
	res.accepted, res.stored, res.note = d, d, c.note
	serr := srv.stop()
	if lerr != nil {
		return res, fmt.Errorf("%w; %d accepted; server log: %s", lerr, n, tail(srv.logPath))
	}
	if serr != nil {
		return res, serr
	}
	stored, err := countInbox(dir)
	if err != nil {
		return res, fmt.Errorf("verify: %w", err)
	}
	fmt.Fprintf(out, "%s: posthorn %-11s %2d sessions: %d msgs in %.2fs = %.0f msg/s, CPU %s, VmHWM %s%s; verified %d stored\n",
		tag, client, spec.sessions, n, d.Seconds(), rate(n, d), res.cpu, mib(res.hwm), c.latency(), stored)
	if stored != spec.messages {
		return res, fmt.Errorf("verify: INBOX holds %d messages, %d were accepted", stored, spec.messages)
	}
	return res, nil
}

// countInbox opens the stopped server's store and counts the bench INBOX.
func countInbox(dir string) (int, error) {
	st, err := mailbox.Open(dir, mailbox.Options{})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	acc, err := st.Account(benchRcpt)
	if err != nil {
		return 0, err
	}
	fi, err := acc.Folder(mailbox.InboxName)
	if err != nil {
		return 0, err
	}
	return int(fi.Messages), nil
}
