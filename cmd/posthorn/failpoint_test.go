package main

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"posthorn/dnsmx/dnstest"
	"posthorn/mailbox/failpoint"
)

// The failpoint tests crash the real binary (built with -tags failpoint) at
// each durable step, or make a commit fail as a failed fsync would, then
// restart it and check the invariants of DESIGN.md with `posthorn check`:
// nothing acknowledged is lost, UIDVALIDITY does not change, UIDNEXT and
// HIGHESTMODSEQ never go back, the spool and the mailboxes agree, and the
// store opens cleanly. docs/reliability.md lists what each shows.

var fpBuild struct {
	once sync.Once
	bin  string
	err  error
}

// failpointBinary builds posthorn with failpoints, once per test binary.
func failpointBinary(t *testing.T) string {
	t.Helper()
	fpBuild.once.Do(func() {
		fpBuild.bin = filepath.Join(filepath.Dir(posthornBin), "posthorn-failpoint")
		out, err := exec.Command("go", "build", "-tags", "failpoint", "-o", fpBuild.bin, ".").CombinedOutput()
		if err != nil {
			fpBuild.err = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if fpBuild.err != nil {
		t.Fatalf("building the failpoint binary: %v", fpBuild.err)
	}
	return fpBuild.bin
}

// newFailpointInstance is newInstance running the failpoint build.
func newFailpointInstance(t *testing.T, extra ...string) *instance {
	in := newInstance(t, extra...)
	in.bin = failpointBinary(t)
	return in
}

// startWith starts the server with POSTHORN_FAILPOINTS set to spec ("" for
// none).
func (in *instance) startWith(spec string) {
	in.t.Helper()
	in.env = []string{"POSTHORN_FAILPOINTS=" + spec}
	in.start()
}

// waitFailpoint waits for the process to die at the named failpoint.
func (in *instance) waitFailpoint(name string) {
	in.t.Helper()
	select {
	case <-in.exited:
	case <-time.After(30 * time.Second):
		in.t.Fatalf("posthorn still running; failpoint %s never fired:\n%s", name, in.logs())
	}
	in.cmd = nil
	if !strings.Contains(in.logs(), "failpoint "+name+": kill") {
		in.t.Fatalf("posthorn exited (%v), but not at failpoint %s:\n%s", in.waitErr, name, in.logs())
	}
}

// fpIMAP is the smallest IMAP client the failpoint tests need: one command
// at a time, replies without literals.
type fpIMAP struct {
	*fpLines
	tag int
}

func dialFpIMAP(t *testing.T, addr, user, pass string) *fpIMAP {
	t.Helper()
	s := &fpIMAP{fpLines: dialFpLines(t, addr)}
	if line := s.send("", func(string) bool { return true }); !strings.HasPrefix(line, "* OK") {
		t.Fatalf("greeting %q", line)
	}
	s.must("LOGIN %s %s", user, pass)
	return s
}

// do sends a command (literal, if not empty, as a LITERAL+ argument after
// the command text) and returns the untagged lines and the tagged status
// line; err is set if the connection broke first.
func (s *fpIMAP) do(literal string, format string, args ...any) ([]string, string, error) {
	s.tag++
	tag := "f" + strconv.Itoa(s.tag)
	cmd := tag + " " + fmt.Sprintf(format, args...)
	if literal != "" {
		cmd += fmt.Sprintf(" {%d+}\r\n%s", len(literal), literal)
	}
	if _, err := s.c.Write([]byte(cmd + "\r\n")); err != nil {
		return nil, "", err
	}
	var lines []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return lines, "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, tag+" ") {
			return lines, line[len(tag)+1:], nil
		}
		lines = append(lines, line)
	}
}

func (s *fpIMAP) must(format string, args ...any) []string {
	s.t.Helper()
	lines, status, err := s.do("", format, args...)
	if err != nil || !strings.HasPrefix(status, "OK") {
		s.t.Fatalf("%s: %q %v (%q)", fmt.Sprintf(format, args...), status, err, lines)
	}
	return lines
}

var appendUIDRE = regexp.MustCompile(`\[APPENDUID (\d+) (\d+)\]`)

// appendUID appends and returns the APPENDUID (RFC 4315 3) of the OK.
func (s *fpIMAP) appendUID(folder, msg string) (validity, uid uint64) {
	s.t.Helper()
	_, status, err := s.do(msg, "APPEND %s", folder)
	m := appendUIDRE.FindStringSubmatch(status)
	if err != nil || m == nil {
		s.t.Fatalf("APPEND: %q %v", status, err)
	}
	v, _ := strconv.ParseUint(m[1], 10, 32)
	u, _ := strconv.ParseUint(m[2], 10, 32)
	return v, u
}

const fpUser, fpPass = "fp@example.org", "fp-secret"

func imapFailpointInstance(t *testing.T) (*instance, string) {
	imapAddr := freePort(t)
	in := newFailpointInstance(t, "-o", "imap_listen="+imapAddr)
	in.extraPorts = []string{imapAddr}
	in.mustCLI(fpPass+"\n", "user", "add", fpUser)
	return in, imapAddr
}

func fpMessage(n int) string {
	return fmt.Sprintf("From: a@example.net\r\nSubject: fp %d\r\nX-Token: fp-%d\r\n\r\nbody %d\r\n", n, n, n)
}

// ROBUSTNESS.md "kill -9 right after the fsync, before the 250": the
// message is there, once.
func TestFailpointSMTPDurable(t *testing.T) {
	in := newFailpointInstance(t)
	in.mustCLI(fpPass+"\n", "user", "add", fpUser)
	in.startWith(failpoint.SMTPDurable + "=2*kill")
	if err := sendOne(in.smtp, "a@example.net", []string{fpUser}, fpMessage(1)); err != nil {
		t.Fatalf("first message: %v", err)
	}
	err := sendOne(in.smtp, "a@example.net", []string{fpUser}, fpMessage(2))
	if err == nil {
		t.Fatal("the second message got its 250 although the server was killed before it")
	}
	in.waitFailpoint(failpoint.SMTPDurable)
	in.checkStore()
	msgs := in.inbox(fpUser, "INBOX")
	if len(msgs) != 2 || !strings.Contains(string(msgs[0]), "X-Token: fp-1\r\n") || !strings.Contains(string(msgs[1]), "X-Token: fp-2\r\n") {
		t.Fatalf("INBOX after the crash has %d messages, want fp-1 and fp-2 once each", len(msgs))
	}
	// The client saw no 250 and retries: a duplicate, never a loss.
	in.startWith("")
	if err := sendOne(in.smtp, "a@example.net", []string{fpUser}, fpMessage(2)); err != nil {
		t.Fatal(err)
	}
	in.stop()
	if n := len(in.inbox(fpUser, "INBOX")); n != 3 {
		t.Fatalf("after the retry INBOX has %d messages, want 3", n)
	}
}

// ROBUSTNESS.md "fsync error": no 250 for the message whose commit failed,
// then nothing more accepted (never retry-then-OK), and after a restart the
// store opens with every acknowledged message.
func TestFailpointFsyncError(t *testing.T) {
	imapAddr := freePort(t)
	in := newFailpointInstance(t, "-o", "imap_listen="+imapAddr)
	in.extraPorts = []string{imapAddr}
	in.mustCLI(fpPass+"\n", "user", "add", fpUser)
	// Commit 1 delivers the first message; commit 2 fails.
	in.startWith(failpoint.Commit + "=2*error")
	if err := sendOne(in.smtp, "a@example.net", []string{fpUser}, fpMessage(1)); err != nil {
		t.Fatal(err)
	}
	err := sendOne(in.smtp, "a@example.net", []string{fpUser}, fpMessage(2))
	if !fpReply(err, "451", "4.3.0 Local error") {
		t.Fatalf("message 2 after a failed commit: %v, want 451 4.3.0", err)
	}
	err = sendOne(in.smtp, "a@example.net", []string{fpUser}, fpMessage(3))
	if !fpReply(err, "451", "4.3.0 Mail store unavailable") {
		t.Fatalf("message 3 after the store failed: %v, want 451 4.3.0 at MAIL", err)
	}
	// IMAP is refused too: the store is read-only until a restart.
	s := dialFpIMAP(t, imapAddr, fpUser, fpPass)
	if _, status, err := s.do(fpMessage(4), "APPEND INBOX"); err != nil || !strings.HasPrefix(status, "NO") {
		t.Fatalf("APPEND after the store failed: %q %v, want NO", status, err)
	}
	if !strings.Contains(in.logs(), "store is now read-only until restart") {
		t.Errorf("no log line says the store stopped:\n%s", in.logs())
	}
	in.stop()
	in.checkStore()
	msgs := in.inbox(fpUser, "INBOX")
	if len(msgs) != 1 || !strings.Contains(string(msgs[0]), "X-Token: fp-1\r\n") {
		t.Fatalf("INBOX has %d messages, want only fp-1 (the one acknowledged)", len(msgs))
	}
	in.startWith("")
	if err := sendOne(in.smtp, "a@example.net", []string{fpUser}, fpMessage(2)); err != nil {
		t.Fatalf("after a restart mail is accepted again: %v", err)
	}
}

// fpReply reports whether net/smtp's err carries the reply code and text.
func fpReply(err error, code, text string) bool {
	return err != nil && strings.HasPrefix(err.Error(), code+" ") && strings.Contains(err.Error(), text)
}

// ROBUSTNESS.md "crash during APPEND": UIDVALIDITY unchanged, and a UID
// once given out (or committed) never comes again.
func TestFailpointAppend(t *testing.T) {
	in, imapAddr := imapFailpointInstance(t)
	in.startWith("")
	s := dialFpIMAP(t, imapAddr, fpUser, fpPass)
	validity, last := uint64(0), uint64(0)
	for i := 1; i <= 3; i++ {
		validity, last = s.appendUID("INBOX", fpMessage(i))
	}
	in.kill()
	before := in.checkStore()

	// Killed inside the transaction: nothing committed, nothing told.
	in.startWith(failpoint.AppendTx + "=kill")
	s = dialFpIMAP(t, imapAddr, fpUser, fpPass)
	if _, status, err := s.do(fpMessage(4), "APPEND INBOX"); err == nil {
		t.Fatalf("APPEND answered %q although killed inside its transaction", status)
	}
	in.waitFailpoint(failpoint.AppendTx)
	mid := in.checkStore()
	checkMonotonic(t, before, mid)
	if got := mid[fpUser+" INBOX"]; got.messages != 3 {
		t.Fatalf("INBOX after a crash inside APPEND: %+v, want 3 messages", got)
	}

	// Killed after the commit, before the OK: the message is kept and its
	// UID is spent.
	in.startWith(failpoint.AppendDurable + "=kill")
	s = dialFpIMAP(t, imapAddr, fpUser, fpPass)
	if _, status, err := s.do(fpMessage(5), "APPEND INBOX"); err == nil {
		t.Fatalf("APPEND answered %q although killed before its OK", status)
	}
	in.waitFailpoint(failpoint.AppendDurable)
	after := in.checkStore()
	checkMonotonic(t, mid, after)
	if got := after[fpUser+" INBOX"]; got.messages != 4 || got.uidNext <= last+1 {
		t.Fatalf("INBOX after a crash before APPEND's OK: %+v, want 4 messages and UIDNEXT above %d", got, last+1)
	}

	in.startWith("")
	s = dialFpIMAP(t, imapAddr, fpUser, fpPass)
	v, uid := s.appendUID("INBOX", fpMessage(6))
	if v != validity || uid <= last+1 {
		t.Fatalf("APPENDUID %d %d after the crashes; want UIDVALIDITY %d and a UID above %d (the committed one)", v, uid, validity, last+1)
	}
	lines := s.must("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)")
	want := fmt.Sprintf("(MESSAGES 5 UIDNEXT %d UIDVALIDITY %d)", uid+1, validity)
	if len(lines) != 1 || !strings.HasSuffix(lines[0], want) {
		t.Fatalf("STATUS %q, want %s", lines, want)
	}
}

// A crash inside an EXPUNGE's transaction, after the first message went,
// undoes all of it: no half expunge, flags kept, MODSEQ not back.
func TestFailpointExpunge(t *testing.T) {
	in, imapAddr := imapFailpointInstance(t)
	in.startWith("")
	s := dialFpIMAP(t, imapAddr, fpUser, fpPass)
	for i := 1; i <= 4; i++ {
		s.appendUID("INBOX", fpMessage(i))
	}
	s.must("SELECT INBOX")
	s.must(`STORE 1:3 +FLAGS (\Deleted)`)
	in.kill()
	before := in.checkStore()

	in.startWith(failpoint.ExpungeTx + "=kill")
	s = dialFpIMAP(t, imapAddr, fpUser, fpPass)
	s.must("SELECT INBOX")
	if _, status, err := s.do("", "EXPUNGE"); err == nil {
		t.Fatalf("EXPUNGE answered %q although killed inside it", status)
	}
	in.waitFailpoint(failpoint.ExpungeTx)
	after := in.checkStore()
	checkMonotonic(t, before, after)
	if got := after[fpUser+" INBOX"]; got.messages != 4 {
		t.Fatalf("INBOX after a crash inside EXPUNGE: %+v, want all 4 messages", got)
	}

	in.startWith("")
	s = dialFpIMAP(t, imapAddr, fpUser, fpPass)
	s.must("SELECT INBOX")
	lines := s.must(`UID SEARCH DELETED`)
	if len(lines) != 1 || lines[0] != "* SEARCH 1 2 3" {
		t.Fatalf("after the crash \\Deleted is on %q, want UIDs 1 2 3", lines)
	}
	lines = s.must("EXPUNGE")
	if n := strings.Count(strings.Join(lines, "|"), " EXPUNGE"); n != 3 {
		t.Fatalf("EXPUNGE after restart: %q", lines)
	}
	in.kill()
	final := in.checkStore()
	checkMonotonic(t, after, final)
	if got := final[fpUser+" INBOX"]; got.messages != 1 || got.modSeq <= after[fpUser+" INBOX"].modSeq {
		t.Fatalf("INBOX after EXPUNGE: %+v, want 1 message and a higher HIGHESTMODSEQ", got)
	}
}

// A crash in the middle of renaming a folder tree leaves the old tree whole
// (one transaction): every folder and message where it was.
func TestFailpointRename(t *testing.T) {
	in, imapAddr := imapFailpointInstance(t)
	in.startWith("")
	s := dialFpIMAP(t, imapAddr, fpUser, fpPass)
	s.must("CREATE Projects/2026")
	s.appendUID("Projects", fpMessage(1))
	s.appendUID("Projects/2026", fpMessage(2))
	in.kill()
	before := in.checkStore()

	in.startWith(failpoint.RenameTx + "=kill")
	s = dialFpIMAP(t, imapAddr, fpUser, fpPass)
	if _, status, err := s.do("", "RENAME Projects Done"); err == nil {
		t.Fatalf("RENAME answered %q although killed inside it", status)
	}
	in.waitFailpoint(failpoint.RenameTx)
	after := in.checkStore()
	checkMonotonic(t, before, after)
	for _, f := range []string{"Projects", "Projects/2026"} {
		if after[fpUser+" "+f] != before[fpUser+" "+f] {
			t.Errorf("%s after the crash: %+v, before %+v", f, after[fpUser+" "+f], before[fpUser+" "+f])
		}
	}
	for _, f := range []string{"Done", "Done/2026"} {
		if _, ok := after[fpUser+" "+f]; ok {
			t.Errorf("%s exists after a crash inside the RENAME", f)
		}
	}
	// And the RENAME works after the restart.
	in.startWith("")
	s = dialFpIMAP(t, imapAddr, fpUser, fpPass)
	s.must("RENAME Projects Done")
	in.kill()
	final := in.checkStore()
	if final[fpUser+" Done"].messages != 1 || final[fpUser+" Done/2026"].messages != 1 {
		t.Fatalf("after RENAME: %+v", final)
	}
}

// fpPOP3 runs one POP3 exchange: command, then the status line (and the
// lines of a multi-line answer when multi).
type fpPOP3 struct{ *fpLines }

func dialFpPOP3(t *testing.T, addr string) *fpPOP3 {
	t.Helper()
	p := &fpPOP3{dialFpLines(t, addr)}
	if line := p.send("", pop3Last); !strings.HasPrefix(line, "+OK") {
		t.Fatalf("greeting %q", line)
	}
	p.must("USER " + fpUser)
	p.must("PASS " + fpPass)
	return p
}

func (p *fpPOP3) do(cmd string, multi bool) (string, []string, error) {
	if _, err := p.c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", nil, err
	}
	status, err := p.r.ReadString('\n')
	if err != nil || !multi || !strings.HasPrefix(status, "+OK") {
		return strings.TrimRight(status, "\r\n"), nil, err
	}
	var lines []string
	for {
		line, err := p.r.ReadString('\n')
		if err != nil {
			return status, lines, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "." {
			return strings.TrimRight(status, "\r\n"), lines, nil
		}
		lines = append(lines, line)
	}
}

func (p *fpPOP3) must(cmd string) string {
	p.t.Helper()
	status, _, err := p.do(cmd, false)
	if err != nil || !strings.HasPrefix(status, "+OK") {
		p.t.Fatalf("%s: %q %v", cmd, status, err)
	}
	return status
}

func (p *fpPOP3) uidl() []string {
	p.t.Helper()
	status, lines, err := p.do("UIDL", true)
	if err != nil || !strings.HasPrefix(status, "+OK") {
		p.t.Fatalf("UIDL: %q %v", status, err)
	}
	return lines
}

// POP3's UPDATE state (RFC 1939 6): a crash inside the deletion commit
// deletes nothing; a crash after it, before QUIT's +OK, leaves them all
// deleted. Never some of them; the UIDL of what stays does not change.
func TestFailpointPOP3Update(t *testing.T) {
	pop3Addr := freePort(t)
	in := newFailpointInstance(t, "-o", "pop3_listen="+pop3Addr)
	in.extraPorts = []string{pop3Addr}
	in.mustCLI(fpPass+"\n", "user", "add", fpUser)
	in.startWith("")
	for i := 1; i <= 4; i++ {
		if err := sendOne(in.smtp, "a@example.net", []string{fpUser}, fpMessage(i)); err != nil {
			t.Fatal(err)
		}
	}
	uidl := dialFpPOP3(t, pop3Addr).uidl()
	in.kill()

	deleteAndQuit := func(point string) {
		in.startWith(point + "=kill")
		p := dialFpPOP3(t, pop3Addr)
		p.must("DELE 1")
		p.must("DELE 2")
		if status, _, err := p.do("QUIT", false); err == nil {
			t.Fatalf("QUIT answered %q although killed in UPDATE", status)
		}
		in.waitFailpoint(point)
	}
	deleteAndQuit(failpoint.ExpungeTx)
	if got := in.checkStore()[fpUser+" INBOX"]; got.messages != 4 {
		t.Fatalf("after a crash inside UPDATE: %+v, want all 4 messages", got)
	}
	in.startWith("")
	if got := dialFpPOP3(t, pop3Addr).uidl(); strings.Join(got, "|") != strings.Join(uidl, "|") {
		t.Fatalf("UIDL changed across the crash: %q, was %q", got, uidl)
	}
	in.kill()

	deleteAndQuit(failpoint.POP3Durable)
	if got := in.checkStore()[fpUser+" INBOX"]; got.messages != 2 {
		t.Fatalf("after a crash before QUIT's +OK: %+v, want the 2 deletions done", got)
	}
	in.startWith("")
	got := dialFpPOP3(t, pop3Addr).uidl()
	// The survivors were messages 3 and 4; they are 1 and 2 now, with the
	// same unique-ids (RFC 1939 7: a unique-id never changes).
	want := []string{"1 " + strings.Fields(uidl[2])[1], "2 " + strings.Fields(uidl[3])[1]}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("UIDL after the deletions %q, want %q", got, want)
	}
}

// fpCount is how many messages with the X-Token the MX accepted for bob.
func fpCount(mx *rbFakeMX, token string) int {
	n := 0
	for _, tx := range mx.delivered("bob@remote.test") {
		if strings.Contains(tx.data, "X-Token: "+token+"\r\n") {
			n++
		}
	}
	return n
}

// fpRemote starts a DNS server with remote.test's MX at the fake MX of
// robustness_outbound_test.go on 127.0.0.5 and returns the options
// pointing posthorn at them.
func fpRemote(t *testing.T) (*rbFakeMX, []string) {
	addr := freePortOn(t, "127.0.0.5")
	sink := rbNewFakeMX(t, addr)
	_, port, _ := net.SplitHostPort(addr)
	d := dnstest.New(t)
	d.Set("remote.test", dns.TypeMX, dnstest.MX(10, "mx.remote.test"))
	d.SetAddrs("mx.remote.test", "127.0.0.5")
	return sink, []string{"-o", "dns_resolvers=" + d.Addr(), "-o", "outbound_port=" + port,
		"-o", "retry_min=200ms", "-o", "retry_max=1s"}
}

// ROBUSTNESS.md "kill -9 after the remote 250, before the spool marks it
// done": delivered again after the restart; not lost.
func TestFailpointRemoteAccepted(t *testing.T) {
	sink, opts := fpRemote(t)
	in := newFailpointInstance(t, opts...)
	in.mustCLI(fpPass+"\n", "user", "add", fpUser)
	in.startWith(failpoint.RemoteAccepted + "=kill")
	// The queue may deliver, and the failpoint kill the server, before
	// sendmail has its answer over the control socket.
	if _, errOut, code := in.cli(fpMessage(1), "sendmail", "-f", fpUser, "bob@remote.test"); code != 0 && !strings.Contains(errOut, "control socket: EOF") {
		t.Fatalf("sendmail: exit %d: %s", code, errOut)
	}
	in.waitFailpoint(failpoint.RemoteAccepted)
	if n := fpCount(sink, "fp-1"); n != 1 {
		t.Fatalf("the sink has fp-1 %d times before the restart, want 1", n)
	}
	if out := in.mustCLI("", "queue", "list"); !strings.Contains(out, "bob@remote.test") {
		t.Fatalf("after the crash the recipient is not queued:\n%s", out)
	}
	in.checkStore()
	in.startWith("")
	waitQueue(t, in, "the queue to drain", 30*time.Second, queueEmpty)
	if n := fpCount(sink, "fp-1"); n != 2 {
		t.Fatalf("the sink has fp-1 %d times, want 2 (sent again after the crash)", n)
	}
	in.stop()
	in.checkStore()
}

// The queue's clock, moved on in a failpoint build: with the real defaults
// (delay_warning 4h, max_queue_lifetime 5d) the sender gets the "delayed"
// DSN once past 4 hours and the "failed" one past 5 days, and the queue is
// then empty.
func TestFailpointQueueClock(t *testing.T) {
	d := dnstest.New(t)
	d.Set("remote.test", dns.TypeMX, dnstest.MX(10, "mx.remote.test"))
	d.SetAddrs("mx.remote.test", "127.0.0.5")
	refused := freePortOn(t, "127.0.0.5") // nobody listens: connection refused
	_, port, _ := net.SplitHostPort(refused)
	clock := filepath.Join(t.TempDir(), "clock")
	in := newFailpointInstance(t, "-o", "dns_resolvers="+d.Addr(), "-o", "outbound_port="+port,
		"-o", "retry_min=200ms", "-o", "retry_max=500ms")
	in.mustCLI(fpPass+"\n", "user", "add", fpUser)
	in.env = []string{"POSTHORN_CLOCK_FILE=" + clock}
	in.start()
	in.mustCLI(fpMessage(1), "sendmail", "-f", fpUser, "bob@remote.test")
	waitQueue(t, in, "a failed attempt", 20*time.Second, func(out string) bool {
		return strings.Contains(out, "Connection refused") || strings.Contains(out, "connection refused")
	})
	if n := fpInboxCount(t, in); n != 0 {
		t.Fatalf("a DSN before 4 hours: %d messages in the sender's INBOX", n)
	}
	fpSetClock(t, clock, 4*time.Hour+time.Minute)
	fpWaitInbox(t, in, 1)
	fpSetClock(t, clock, 5*24*time.Hour+time.Hour)
	fpWaitInbox(t, in, 2)
	waitQueue(t, in, "the queue to drain", 20*time.Second, queueEmpty)
	in.stop()
	msgs := in.inbox(fpUser, "INBOX")
	for i, want := range []string{"Action: delayed", "Action: failed"} {
		if !strings.Contains(string(msgs[i]), want) {
			t.Errorf("DSN %d lacks %q:\n%s", i+1, want, msgs[i])
		}
	}
	in.checkStore()
}

func fpSetClock(t *testing.T, file string, d time.Duration) {
	if err := os.WriteFile(file, []byte(d.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fpInboxCount reads the INBOX count through `posthorn check` (safe while
// the server runs).
func fpInboxCount(t *testing.T, in *instance) uint64 {
	return in.checkStore()[fpUser+" INBOX"].messages
}

func fpWaitInbox(t *testing.T, in *instance, n uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for fpInboxCount(t, in) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the sender's INBOX did not reach %d messages:\n%s", n, in.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// An fsync error in the queue's file after a remote 250: the result cannot
// be recorded, so the queue stops (it would otherwise send the message in
// a loop), new mail is refused at MAIL, and after a restart the recipient,
// still queued on disk, is sent once more: a duplicate, not a loss.
func TestFailpointSpoolFsyncError(t *testing.T) {
	sink, opts := fpRemote(t)
	in := newFailpointInstance(t, opts...)
	in.mustCLI(fpPass+"\n", "user", "add", fpUser)
	// Spool commits: 1 spreads overdue recipients at start, 2 queues the
	// message, 3 records its delivery.
	in.startWith(failpoint.SpoolCommit + "=3*error")
	in.mustCLI(fpMessage(1), "sendmail", "-f", fpUser, "bob@remote.test")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(in.logs(), "queue stopped until restart") {
		if time.Now().After(deadline) {
			t.Fatalf("the queue did not stop after the failed commit:\n%s", in.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Long enough for several retry_min rounds: no second copy.
	time.Sleep(1500 * time.Millisecond)
	if n := fpCount(sink, "fp-1"); n != 1 {
		t.Fatalf("the sink has fp-1 %d times while the queue cannot record, want 1", n)
	}
	err := sendOne(in.smtp, "a@example.net", []string{fpUser}, fpMessage(2))
	if !fpReply(err, "451", "4.3.0 Mail store unavailable") {
		t.Fatalf("mail after the queue's commit failed: %v, want 451 4.3.0 at MAIL", err)
	}
	in.stop()
	in.checkStore()
	in.startWith("")
	waitQueue(t, in, "the queue to drain", 30*time.Second, queueEmpty)
	if n := fpCount(sink, "fp-1"); n != 2 {
		t.Fatalf("the sink has fp-1 %d times after the restart, want 2", n)
	}
}

// A message for a local and a remote recipient (an alias that forwards),
// killed after its commits and before the 250: the mailbox has it and the
// spool has the remote recipient, so after the restart both agree with
// what was sent. Neither half is lost.
func TestFailpointSMTPDurableMixed(t *testing.T) {
	sink, opts := fpRemote(t)
	in := newFailpointInstance(t, opts...)
	in.mustCLI(fpPass+"\n", "user", "add", fpUser)
	in.mustCLI("", "alias", "add", "team@example.org", fpUser+",bob@remote.test")
	// Hold the queue back so the copy is still queued at the crash.
	in.startWith(failpoint.SMTPDurable + "=kill;" + failpoint.RemoteAccepted + "=sleep(1h)")
	if err := sendOne(in.smtp, "a@example.net", []string{"team@example.org"}, fpMessage(1)); err == nil {
		t.Fatal("got a 250 although the server was killed before it")
	}
	in.waitFailpoint(failpoint.SMTPDurable)
	if out := in.mustCLI("", "queue", "list"); !strings.Contains(out, "bob@remote.test") {
		t.Fatalf("the remote recipient is not queued after the crash:\n%s", out)
	}
	in.checkStore()
	in.startWith("")
	waitQueue(t, in, "the queue to drain", 30*time.Second, queueEmpty)
	in.stop()
	if msgs := in.inbox(fpUser, "INBOX"); len(msgs) != 1 || !strings.Contains(string(msgs[0]), "X-Token: fp-1\r\n") {
		t.Fatalf("INBOX has %d messages, want fp-1 once", len(msgs))
	}
	if n := fpCount(sink, "fp-1"); n < 1 {
		t.Fatal("the remote copy never arrived")
	}
}

// fpLines is a line-at-a-time client that can switch to TLS.
type fpLines struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialFpLines(t *testing.T, addr string) *fpLines {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &fpLines{t: t, c: c, r: bufio.NewReader(c)}
}

// send writes a line (unless empty) and reads lines until one for which
// last holds; it returns them joined with "\n".
func (l *fpLines) send(line string, last func(string) bool) string {
	l.t.Helper()
	if line != "" {
		if _, err := l.c.Write([]byte(line + "\r\n")); err != nil {
			l.t.Fatal(err)
		}
	}
	var out []string
	for {
		s, err := l.r.ReadString('\n')
		if err != nil {
			l.t.Fatalf("after %q: %v (read %q)", line, err, out)
		}
		s = strings.TrimRight(s, "\r\n")
		out = append(out, s)
		if last(s) {
			return strings.Join(out, "\n")
		}
	}
}

func (l *fpLines) startTLS() {
	l.t.Helper()
	tc := tls.Client(l.c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		l.t.Fatal(err)
	}
	l.c, l.r = tc, bufio.NewReader(tc)
}

func smtpLast(s string) bool { return len(s) >= 4 && s[3] == ' ' }
func pop3Last(s string) bool { return strings.HasPrefix(s, "+OK") || strings.HasPrefix(s, "-ERR") }
func taggedLast(tag string) func(string) bool {
	return func(s string) bool { return strings.HasPrefix(s, tag+" ") }
}

// ROBUSTNESS.md "AUTH/LOGIN/USER before TLS from a non-loopback address":
// the failpoint build reports loopback clients as 192.0.2.10, so the real
// binary shows what a remote client gets: 530 5.7.0, LOGINDISABLED and NO
// [PRIVACYREQUIRED], -ERR; and after STARTTLS/STLS the same login works.
func TestFailpointRemotePlaintext(t *testing.T) {
	sub, imapAddr, pop3Addr := freePort(t), freePort(t), freePort(t)
	in := newFailpointInstance(t, "-o", "submission_listen="+sub, "-o", "imap_listen="+imapAddr, "-o", "pop3_listen="+pop3Addr)
	in.extraPorts = []string{sub, imapAddr, pop3Addr}
	in.mustCLI(fpPass+"\n", "user", "add", fpUser)
	in.env = []string{"POSTHORN_LOOPBACK_AS=192.0.2.10"}
	in.start()
	plain := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+fpUser+"\x00"+fpPass))

	s := dialFpLines(t, sub)
	s.send("", smtpLast)
	if ehlo := s.send("EHLO client.example", smtpLast); !strings.Contains(ehlo, "250-AUTH SCRAM-SHA-256\n") {
		t.Errorf("EHLO before TLS offers more than SCRAM:\n%s", ehlo)
	}
	if got := s.send(plain, smtpLast); got != "530 5.7.0 Must issue a STARTTLS command first" {
		t.Errorf("AUTH PLAIN before TLS: %q", got)
	}
	s.send("STARTTLS", smtpLast)
	s.startTLS()
	s.send("EHLO client.example", smtpLast)
	if got := s.send(plain, smtpLast); !strings.HasPrefix(got, "235 2.7.0") {
		t.Errorf("AUTH PLAIN after STARTTLS: %q", got)
	}

	m := dialFpLines(t, imapAddr)
	if greet := m.send("", func(string) bool { return true }); !strings.Contains(greet, "LOGINDISABLED") {
		t.Errorf("IMAP greeting before TLS: %q", greet)
	}
	if got := m.send("a1 LOGIN "+fpUser+" "+fpPass, taggedLast("a1")); !strings.HasPrefix(got, "a1 NO [PRIVACYREQUIRED]") {
		t.Errorf("IMAP LOGIN before TLS: %q", got)
	}
	m.send("a2 STARTTLS", taggedLast("a2"))
	m.startTLS()
	if got := m.send("a3 LOGIN "+fpUser+" "+fpPass, taggedLast("a3")); !strings.HasPrefix(got, "a3 OK") {
		t.Errorf("IMAP LOGIN after STARTTLS: %q", got)
	}

	p := dialFpLines(t, pop3Addr)
	p.send("", pop3Last)
	if got := p.send("USER "+fpUser, pop3Last); got != "-ERR Plaintext authentication requires TLS, use STLS first" {
		t.Errorf("POP3 USER before TLS: %q", got)
	}
	p.send("STLS", pop3Last)
	p.startTLS()
	p.send("USER "+fpUser, pop3Last)
	if got := p.send("PASS "+fpPass, pop3Last); !strings.HasPrefix(got, "+OK") {
		t.Errorf("POP3 PASS after STLS: %q", got)
	}
}
