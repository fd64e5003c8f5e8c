package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"posthorn/mailbox"
)

// The tests in this package drive the real binary, built once by TestMain,
// over loopback: what a user runs is what is tested.

var posthornBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "posthorn-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	posthornBin = filepath.Join(dir, "posthorn")
	build := exec.Command("go", "build", "-o", posthornBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building posthorn:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instance is one posthorn process with its own data_dir and ports.
type instance struct {
	t    testing.TB
	dir  string
	smtp string
	// extraPorts are other listeners start waits for (POP3, IMAP).
	extraPorts []string
	opts       []string
	// bin is the binary start runs (posthornBin unless a test needs the
	// failpoint build); env is added to its environment.
	bin     string
	env     []string
	cmd     *exec.Cmd
	logMu   sync.Mutex
	log     bytes.Buffer
	exited  chan struct{}
	waitErr error
}

// freePort returns a loopback address with a port nobody listens on now.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newInstance prepares (but does not start) an instance in a fresh data_dir.
func newInstance(t testing.TB, extra ...string) *instance {
	t.Helper()
	return newInstanceAt(t, freePort(t), extra...)
}

// newInstanceAt is newInstance with the SMTP listener at smtpAddr.
func newInstanceAt(t testing.TB, smtpAddr string, extra ...string) *instance {
	t.Helper()
	in := &instance{t: t, dir: t.TempDir()}
	in.smtp = smtpAddr
	in.opts = append([]string{
		"-o", "hostname=mx.example.org",
		"-o", "domains=example.org,example.net",
		"-o", "data_dir=" + in.dir,
		"-o", "smtp_listen=" + in.smtp,
		"-o", "submission_listen=", "-o", "submissions_listen=",
		"-o", "pop3_listen=", "-o", "pop3s_listen=",
		"-o", "imap_listen=", "-o", "imaps_listen=",
		"-o", "log_level=debug",
		// Nothing in a test may leave 127.0.0.0/8: no system resolver. Tests
		// that relay point this at their in-process DNS server.
		"-o", "dns_resolvers=127.0.0.1:9",
	}, extra...)
	return in
}

// cli runs an admin command and returns its stdout, stderr and exit code.
func (in *instance) cli(stdin string, args ...string) (string, string, int) {
	in.t.Helper()
	cmd := exec.Command(posthornBin, append(append([]string{}, in.opts...), args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		in.t.Fatalf("running posthorn %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

func (in *instance) mustCLI(stdin string, args ...string) string {
	in.t.Helper()
	out, errOut, code := in.cli(stdin, args...)
	if code != 0 {
		in.t.Fatalf("posthorn %v: exit %d: %s", args, code, errOut)
	}
	return out
}

// start runs `serve` and waits until the SMTP port answers.
func (in *instance) start() {
	in.t.Helper()
	bin := in.bin
	if bin == "" {
		bin = posthornBin
	}
	in.cmd = exec.Command(bin, append(append([]string{}, in.opts...), "serve")...)
	in.cmd.Env = append(os.Environ(), in.env...)
	in.cmd.Stdout = &lockedWriter{mu: &in.logMu, w: &in.log}
	in.cmd.Stderr = in.cmd.Stdout
	if err := in.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	in.exited = make(chan struct{})
	go func() {
		in.waitErr = in.cmd.Wait()
		close(in.exited)
	}()
	in.t.Cleanup(func() { in.kill() })
	deadline := time.Now().Add(20 * time.Second)
	for _, addr := range in.extraPorts {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				in.t.Fatalf("posthorn did not listen on %s:\n%s", addr, in.logs())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for {
		c, err := net.DialTimeout("tcp", in.smtp, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "220 ") {
				return
			}
		}
		select {
		case <-in.exited:
			in.t.Fatalf("posthorn exited at start: %v\n%s", in.waitErr, in.logs())
		default:
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("posthorn did not start listening:\n%s", in.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (in *instance) stop() {
	in.t.Helper()
	if in.cmd == nil {
		return
	}
	in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.exited:
		if in.waitErr != nil {
			in.t.Fatalf("posthorn exited with %v:\n%s", in.waitErr, in.logs())
		}
	case <-time.After(60 * time.Second):
		in.t.Fatalf("posthorn did not stop after SIGTERM:\n%s", in.logs())
	}
	in.cmd = nil
}

// kill sends SIGKILL (no cleanup at all, as a crash) and waits.
func (in *instance) kill() {
	if in.cmd == nil {
		return
	}
	in.cmd.Process.Signal(syscall.SIGKILL)
	<-in.exited
	in.cmd = nil
}

func (in *instance) logs() string {
	in.logMu.Lock()
	defer in.logMu.Unlock()
	return in.log.String()
}

// inbox opens the store (the server must be stopped) and returns the raw
// messages of an account's folder in UID order.
func (in *instance) inbox(account, folder string) [][]byte {
	in.t.Helper()
	st, err := mailbox.Open(in.dir, mailbox.Options{})
	if err != nil {
		in.t.Fatal(err)
	}
	defer st.Close()
	acc, err := st.Account(account)
	if err != nil {
		in.t.Fatal(err)
	}
	msgs, err := acc.Messages(folder)
	if err != nil {
		in.t.Fatal(err)
	}
	var out [][]byte
	for _, m := range msgs {
		raw, err := acc.Raw(folder, m.UID)
		if err != nil {
			in.t.Fatal(err)
		}
		if int64(len(raw)) != m.Size {
			in.t.Fatalf("message %d: %d bytes stored, size says %d", m.UID, len(raw), m.Size)
		}
		out = append(out, raw)
	}
	return out
}

// folderState is one folder's line of `posthorn check`.
type folderState struct{ validity, uidNext, modSeq, messages uint64 }

var checkFolderRE = regexp.MustCompile(`^folder (\S+) ("(?:[^"\\]|\\.)*") uidvalidity=(\d+) uidnext=(\d+) highestmodseq=(\d+) messages=(\d+)$`)

// checkStore runs `posthorn check`, fails the test on any problem, and
// returns each folder's counters keyed "account folder".
func (in *instance) checkStore() map[string]folderState {
	in.t.Helper()
	out, errOut, code := in.cli("", "check")
	if code != 0 || !strings.HasSuffix(out, "ok\n") {
		in.t.Fatalf("posthorn check: exit %d\n%s%s", code, out, errOut)
	}
	state := map[string]folderState{}
	for _, line := range strings.Split(out, "\n") {
		m := checkFolderRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, _ := strconv.Unquote(m[2])
		n := func(i int) uint64 { v, _ := strconv.ParseUint(m[i], 10, 64); return v }
		state[m[1]+" "+name] = folderState{n(3), n(4), n(5), n(6)}
	}
	if len(state) == 0 {
		in.t.Fatalf("posthorn check listed no folders:\n%s", out)
	}
	return state
}

// checkMonotonic: for every folder in both states, UIDVALIDITY is the same
// and UIDNEXT and HIGHESTMODSEQ did not go back (RFC 9051 2.3.1.1, RFC
// 7162 3.1.1).
func checkMonotonic(t *testing.T, before, after map[string]folderState) {
	t.Helper()
	for k, b := range before {
		a, ok := after[k]
		if !ok {
			continue
		}
		if a.validity != b.validity || a.uidNext < b.uidNext || a.modSeq < b.modSeq {
			t.Errorf("%s: before %+v, after %+v", k, b, a)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// requireTool finds a third-party client. Under CI (.ci/run installs every
// client) a missing tool is a failure; on a developer machine the test is
// skipped with the install hint.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed; .ci/run should have installed it", name)
		}
		t.Skipf("%s not installed (apt-get install %s)", name, name)
	}
	return p
}
