package main

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Abuse controls against the real binary (ROBUSTNESS.md: "1000 connections
// from one address: 421 4.7.0 over the per-address cap; other addresses
// still served"; "repeated bad passwords: 535 5.7.8 with growing delay, then
// disconnect; same reply and timing for unknown user and bad password").
// 127.0.0.2 floods and guesses; 127.0.0.3 is a user going about its
// business at the same time; 127.0.0.4 is a stranger to the account. Linux
// routes all of 127/8 to lo, so a dialer bound to these source addresses
// reaches the listeners on 127.0.0.1.

const (
	abuseFlooder  = "127.0.0.2"
	abuseGood     = "127.0.0.3"
	abuseStranger = "127.0.0.4"

	abusePerIP        = 5  // max_connections_per_ip
	abuseRate         = 60 // max_connection_rate_per_ip: one a second
	abuseFloodPerPort = 40 // concurrent connections the flooder opens per listener
	abuseLockout      = 6  // auth_lockout_failures
	abuseSoftErrors   = 3  // soft_error_limit
	abuseHardErrors   = 5  // hard_error_limit
	abuseDelay        = 150 * time.Millisecond
	abuseDelayMax     = 600 * time.Millisecond
	abuseErrorDelay   = 100 * time.Millisecond
	// abuseWindow (auth_failure_window) must hold the flooder's six
	// failures, each a PBKDF2 check plus its growing wait, on a loaded
	// machine; it is also how long the lockout lasts.
	abuseWindow = 10 * time.Second
)

// abuseReplies are the exact refusals, per protocol.
var abuseReplies = map[string]struct{ greeting, capRefusal, rateRefusal string }{
	"smtp": {"220 ", "421 4.7.0 mx.example.org Too many connections, try again later\r\n", "421 4.7.0 mx.example.org Too many connection attempts, try again later\r\n"},
	"pop3": {"+OK ", "-ERR [SYS/TEMP] Too many connections, try again later\r\n", "-ERR [SYS/TEMP] Too many connection attempts, try again later\r\n"},
	"imap": {"* OK ", "* BYE Too many connections, try again later\r\n", "* BYE Too many connection attempts, try again later\r\n"},
}

// abuseConn is a client connection from a chosen loopback address.
type abuseConn struct {
	c  net.Conn
	br *bufio.Reader
}

// abuseConnect connects from src to the proto listener at addr and reads
// the greeting. A refusal by the per-address cap is retried for a while:
// the sessions of connections the client has just closed may still be
// ending on the server side.
func abuseConnect(src, addr, proto string) (*abuseConn, error) {
	want := abuseReplies[proto]
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		a, err := abuseDial(src, addr)
		if err != nil {
			return nil, err
		}
		l, err := a.line()
		switch {
		case err != nil:
		case strings.HasPrefix(l, want.greeting):
			return a, nil
		case l == want.capRefusal && time.Now().Before(deadline):
			a.c.Close()
			continue
		default:
			err = fmt.Errorf("greeting: %q", l)
		}
		a.c.Close()
		return nil, err
	}
}

func abuseDial(src, addr string) (*abuseConn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	return &abuseConn{c: c, br: bufio.NewReader(c)}, nil
}

// line returns the next line with its CRLF, for byte-exact comparisons.
func (a *abuseConn) line() (string, error) {
	l, err := a.br.ReadString('\n')
	if err != nil {
		return l, fmt.Errorf("read: %w (got %q)", err, l)
	}
	return l, nil
}

// cmd sends a line and returns the reply line.
func (a *abuseConn) cmd(line string) (string, error) {
	if _, err := io.WriteString(a.c, line+"\r\n"); err != nil {
		return "", err
	}
	return a.line()
}

// expect reads a line and checks its start.
func (a *abuseConn) expect(prefix string) (string, error) {
	l, err := a.line()
	if err == nil && !strings.HasPrefix(l, prefix) {
		err = fmt.Errorf("got %q, want %q...", l, prefix)
	}
	return l, err
}

// cmdExpect sends a line and checks the start of the reply.
func (a *abuseConn) cmdExpect(line, prefix string) (string, error) {
	if _, err := io.WriteString(a.c, line+"\r\n"); err != nil {
		return "", err
	}
	return a.expect(prefix)
}

// imapCmd sends a tagged command and returns the untagged lines and the
// tagged completion.
func (a *abuseConn) imapCmd(tag, text string) ([]string, string, error) {
	if _, err := io.WriteString(a.c, tag+" "+text+"\r\n"); err != nil {
		return nil, "", err
	}
	var untagged []string
	for {
		l, err := a.line()
		if err != nil {
			return untagged, "", err
		}
		if strings.HasPrefix(l, tag+" ") {
			return untagged, l, nil
		}
		untagged = append(untagged, l)
	}
}

// ehlo gets through EHLO (after the greeting).
func (a *abuseConn) ehlo() error {
	if _, err := io.WriteString(a.c, "EHLO client.example\r\n"); err != nil {
		return err
	}
	for {
		l, err := a.expect("250")
		if err != nil {
			return err
		}
		if l[3] == ' ' {
			return nil
		}
	}
}

func (a *abuseConn) expectEOF() error {
	if l, err := a.br.ReadString('\n'); err != io.EOF {
		return fmt.Errorf("want EOF, got %q, %v", l, err)
	}
	return nil
}

// abuseServers are the listener addresses of the instance.
type abuseServers struct{ smtp, submission, pop3, imap string }

func (s abuseServers) addr(proto string) string {
	switch proto {
	case "smtp":
		return s.smtp
	case "pop3":
		return s.pop3
	}
	return s.imap
}

func abusePlain(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

// abuseDeliver sends one message over SMTP from src to alice.
func abuseDeliver(src string, s abuseServers, subject string) error {
	a, err := abuseConnect(src, s.smtp, "smtp")
	if err != nil {
		return err
	}
	defer a.c.Close()
	if err := a.ehlo(); err != nil {
		return err
	}
	for _, step := range []struct{ cmd, want string }{
		{"MAIL FROM:<carol@remote.example>", "250 "},
		{"RCPT TO:<alice@example.org>", "250 "},
		{"DATA", "354 "},
		{"From: carol@remote.example\r\nSubject: " + subject + "\r\n\r\nhello\r\n.", "250 2.0.0 "},
		{"QUIT", "221 "},
	} {
		if _, err := a.cmdExpect(step.cmd, step.want); err != nil {
			return fmt.Errorf("%s: %w", strings.SplitN(step.cmd, "\r\n", 2)[0], err)
		}
	}
	return nil
}

// abusePOP3Login logs in as alice with USER/PASS, checks STAT and quits. It
// returns how long PASS took.
func abusePOP3Login(src string, s abuseServers) (time.Duration, error) {
	a, err := abuseConnect(src, s.pop3, "pop3")
	if err != nil {
		return 0, err
	}
	defer a.c.Close()
	if _, err := a.cmdExpect("USER alice@example.org", "+OK "); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := a.cmdExpect("PASS secret", "+OK Logged in"); err != nil {
		return 0, fmt.Errorf("PASS: %w", err)
	}
	took := time.Since(start)
	// RFC 1939 5: "+OK nn mm"; at least the one message delivered.
	l, err := a.cmdExpect("STAT", "+OK ")
	if err != nil || strings.HasPrefix(l, "+OK 0 ") {
		return took, fmt.Errorf("STAT: %q, %v", l, err)
	}
	_, err = a.cmdExpect("QUIT", "+OK ")
	return took, err
}

// abuseIMAPLogin logs in as alice with LOGIN, selects INBOX (at least one
// message) and logs out. It returns how long LOGIN took.
func abuseIMAPLogin(src string, s abuseServers) (time.Duration, error) {
	a, err := abuseConnect(src, s.imap, "imap")
	if err != nil {
		return 0, err
	}
	defer a.c.Close()
	start := time.Now()
	if _, r, err := a.imapCmd("a", "LOGIN alice@example.org secret"); err != nil || !strings.HasPrefix(r, "a OK ") {
		return 0, fmt.Errorf("LOGIN: %q, %v", r, err)
	}
	took := time.Since(start)
	untagged, r, err := a.imapCmd("b", "SELECT INBOX")
	if err != nil || !strings.HasPrefix(r, "b OK ") {
		return took, fmt.Errorf("SELECT: %q, %v", r, err)
	}
	exists := false
	for _, l := range untagged {
		exists = exists || (strings.HasSuffix(l, " EXISTS\r\n") && l != "* 0 EXISTS\r\n")
	}
	if !exists {
		return took, fmt.Errorf("SELECT: no messages: %q", untagged)
	}
	_, r, err = a.imapCmd("c", "LOGOUT")
	if err != nil || !strings.HasPrefix(r, "c OK") {
		return took, fmt.Errorf("LOGOUT: %q, %v", r, err)
	}
	return took, nil
}

// abuseSubmissionLogin authenticates as alice with AUTH PLAIN on the
// submission port and returns how long AUTH took.
func abuseSubmissionLogin(src string, s abuseServers) (time.Duration, error) {
	a, err := abuseConnect(src, s.submission, "smtp")
	if err != nil {
		return 0, err
	}
	defer a.c.Close()
	if err := a.ehlo(); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := a.cmdExpect("AUTH PLAIN "+abusePlain("alice@example.org", "secret"), "235 2.7.0 "); err != nil {
		return 0, fmt.Errorf("AUTH: %w", err)
	}
	took := time.Since(start)
	_, err = a.cmdExpect("QUIT", "221 ")
	return took, err
}

func abuseStart(t *testing.T) abuseServers {
	t.Helper()
	s := abuseServers{submission: freePort(t), pop3: freePort(t), imap: freePort(t)}
	in := newInstance(t,
		"-o", "submission_listen="+s.submission,
		"-o", "pop3_listen="+s.pop3,
		"-o", "imap_listen="+s.imap,
		"-o", fmt.Sprintf("max_connections_per_ip=%d", abusePerIP),
		"-o", fmt.Sprintf("max_connection_rate_per_ip=%d", abuseRate),
		"-o", "auth_failure_delay="+abuseDelay.String(),
		"-o", "auth_failure_delay_max="+abuseDelayMax.String(),
		"-o", "auth_failure_window="+abuseWindow.String(),
		"-o", fmt.Sprintf("auth_lockout_failures=%d", abuseLockout),
		"-o", fmt.Sprintf("soft_error_limit=%d", abuseSoftErrors),
		"-o", fmt.Sprintf("hard_error_limit=%d", abuseHardErrors),
		"-o", "error_delay="+abuseErrorDelay.String(),
	)
	s.smtp = in.smtp
	in.extraPorts = []string{s.submission, s.pop3, s.imap}
	in.mustCLI("secret\n", "user", "add", "alice@example.org")
	in.start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", in.logs())
		}
	})
	return s
}

// abuseFlood opens n connections from src to the listener at once and
// returns those that got a greeting, still open; every other one must have
// got exactly the cap refusal, then EOF.
func abuseFlood(t *testing.T, proto, addr, src string, n int) []*abuseConn {
	t.Helper()
	want := abuseReplies[proto]
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted []*abuseConn
		refused  int
		errs     []error
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := abuseDial(src, addr)
			if err == nil {
				var l string
				if l, err = a.line(); err == nil {
					switch {
					case strings.HasPrefix(l, want.greeting):
						mu.Lock()
						accepted = append(accepted, a)
						mu.Unlock()
						return
					case l == want.capRefusal:
						err = a.expectEOF()
					default:
						err = fmt.Errorf("got %q", l)
					}
				}
				a.c.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else {
				refused++
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, a := range accepted {
			a.c.Close()
		}
	})
	if len(errs) > 0 || len(accepted) != abusePerIP || refused != n-abusePerIP {
		t.Fatalf("%s flood of %d: %d greeted, %d refused with %q; errors %v", proto, n, len(accepted), refused, want.capRefusal, errs)
	}
	return accepted
}

// TestAbuseConnectionFlood: one address opens far more connections than
// its cap on every listener, keeps knocking, probes SMTP recipients and
// connects faster than its rate allows; another address is served all the
// while; once a token has refilled, the flooder is served again.
func TestAbuseConnectionFlood(t *testing.T) {
	s := abuseStart(t)

	// Connection flood: 40 at once per listener, while the good client
	// delivers a message and reads it over POP3 and IMAP, and the flooder
	// keeps knocking. Only the per-address cap is hit; refused connections
	// take no token of the flooder's rate.
	var held []*abuseConn
	for _, proto := range []string{"smtp", "pop3", "imap"} {
		held = append(held, abuseFlood(t, proto, s.addr(proto), abuseFlooder, abuseFloodPerPort)...)
	}
	stop := make(chan struct{})
	knocks := make(chan error, 1)
	go func() {
		n := 0
		for {
			for _, proto := range []string{"smtp", "pop3", "imap"} {
				select {
				case <-stop:
					if n == 0 {
						knocks <- errors.New("no knocks")
					} else {
						knocks <- nil
					}
					return
				case <-time.After(5 * time.Millisecond):
				}
				a, err := abuseDial(abuseFlooder, s.addr(proto))
				if err != nil {
					knocks <- err
					return
				}
				l, err := a.line()
				a.c.Close()
				if err != nil || l != abuseReplies[proto].capRefusal {
					knocks <- fmt.Errorf("%s knock %d: %q, %v", proto, n, l, err)
					return
				}
				n++
			}
		}
	}()
	// The bounds are generous for a loaded 2-core machine (the first
	// login derives alice's PBKDF2 key, 600,000 iterations); a client
	// caught in the flooder's limits would instead be refused, or wait
	// for a timeout.
	start := time.Now()
	if err := abuseDeliver(abuseGood, s, "during the flood"); err != nil {
		t.Fatalf("delivery from %s during the flood: %v", abuseGood, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("delivery from %s took %v during the flood", abuseGood, d)
	}
	if _, err := abusePOP3Login(abuseGood, s); err != nil {
		t.Fatalf("POP3 from %s during the flood: %v", abuseGood, err)
	}
	if _, err := abuseIMAPLogin(abuseGood, s); err != nil {
		t.Fatalf("IMAP from %s during the flood: %v", abuseGood, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("good client took %v during the flood", d)
	}
	close(stop)
	if err := <-knocks; err != nil {
		t.Fatal(err)
	}
	for _, a := range held {
		a.c.Close()
	}

	// Probing SMTP: unknown recipients get 550 5.1.1, delayed after
	// soft_error_limit errors, and 421 4.7.0 at hard_error_limit.
	a, err := abuseConnect(abuseFlooder, s.smtp, "smtp")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ehlo(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.cmdExpect("MAIL FROM:<probe@remote.example>", "250 "); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= abuseHardErrors; i++ {
		start := time.Now()
		l, err := a.cmd(fmt.Sprintf("RCPT TO:<nobody%d@example.org>", i))
		if err != nil || !strings.HasPrefix(l, "550 5.1.1 ") {
			t.Fatalf("RCPT %d: %q, %v", i, l, err)
		}
		if d := time.Since(start); i > abuseSoftErrors && i < abuseHardErrors && d < abuseErrorDelay {
			t.Errorf("error %d answered after %v, want at least error_delay %v", i, d, abuseErrorDelay)
		}
	}
	if l, err := a.line(); err != nil || l != "421 4.7.0 mx.example.org Too many errors, closing connection\r\n" {
		t.Fatalf("at hard_error_limit: %q, %v", l, err)
	}
	if err := a.expectEOF(); err != nil {
		t.Fatal(err)
	}

	// Connection rate: the flooder connects and disconnects until each
	// listener says "too many connection attempts" (one bucket for all
	// listeners); the good client still connects everywhere.
	rateRefused := map[string]bool{}
	for i := 0; len(rateRefused) < 3; i++ {
		if i > 3*abuseRate {
			t.Fatalf("no rate refusal after %d connections: %v", i, rateRefused)
		}
		proto := []string{"smtp", "pop3", "imap"}[i%3]
		if rateRefused[proto] {
			continue
		}
		a, err := abuseDial(abuseFlooder, s.addr(proto))
		if err != nil {
			t.Fatal(err)
		}
		l, err := a.line()
		want := abuseReplies[proto]
		switch {
		case err != nil:
			t.Fatalf("%s connection %d: %v", proto, i, err)
		case l == want.rateRefusal:
			rateRefused[proto] = true
			if err := a.expectEOF(); err != nil {
				t.Fatal(err)
			}
		case l == want.capRefusal:
			// Sessions of connections just closed may still be ending.
			time.Sleep(10 * time.Millisecond)
		case !strings.HasPrefix(l, want.greeting):
			t.Fatalf("%s connection %d: %q", proto, i, l)
		}
		a.c.Close()
	}
	for _, proto := range []string{"smtp", "pop3", "imap"} {
		start := time.Now()
		a, err := abuseConnect(abuseGood, s.addr(proto), proto)
		if err != nil {
			t.Fatalf("%s from %s after the burst: %v", proto, abuseGood, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s greeting for %s took %v after the burst", proto, abuseGood, d)
		}
		a.c.Close()
	}

	// One token refills every minute/max_connection_rate_per_ip.
	time.Sleep(time.Minute/abuseRate + 100*time.Millisecond)
	if _, err := abuseIMAPLogin(abuseFlooder, s); err != nil {
		t.Fatalf("IMAP from %s after a token refilled: %v", abuseFlooder, err)
	}
}

// TestAbuseAuthLockout: one address guesses passwords over SMTP AUTH, POP3
// and IMAP until it is locked out of all three, a right password too,
// while the account's owner logs in from her usual address without delay;
// once the lockout is over the address is served again.
func TestAbuseAuthLockout(t *testing.T) {
	s := abuseStart(t)
	// Alice's usual address: she reads her mail there before the attack.
	if err := abuseDeliver(abuseGood, s, "before the attack"); err != nil {
		t.Fatal(err)
	}
	if _, err := abusePOP3Login(abuseGood, s); err != nil {
		t.Fatal(err)
	}
	if _, err := abuseIMAPLogin(abuseGood, s); err != nil {
		t.Fatal(err)
	}

	// Password guessing on every protocol, a wrong password for alice
	// then an unknown user each time: byte-identical replies, each after
	// the wait the address's earlier failures call for (the limiter does
	// not know which kind of failure it counts).
	failures := 0
	wait := func() time.Duration { // before the answer to failure number failures+1
		d := time.Duration(0)
		if failures > 0 {
			d = abuseDelay << (failures - 1)
		}
		return min(d, abuseDelayMax)
	}
	guess := func(proto string, try func(user string) (string, error)) {
		t.Helper()
		var replies []string
		for _, user := range []string{"alice@example.org", "nobody@example.org"} {
			want := wait()
			start := time.Now()
			r, err := try(user)
			if err != nil {
				t.Fatalf("%s guess for %s: %v", proto, user, err)
			}
			if d := time.Since(start); d < want {
				t.Errorf("%s failure %d (%s) answered after %v, want at least %v", proto, failures+1, user, d, want)
			}
			failures++
			replies = append(replies, r)
		}
		if replies[0] != replies[1] {
			t.Errorf("%s: wrong password %q, unknown user %q", proto, replies[0], replies[1])
		}
	}
	a, err := abuseConnect(abuseFlooder, s.submission, "smtp")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ehlo(); err != nil {
		t.Fatal(err)
	}
	guess("smtp", func(user string) (string, error) {
		r, err := a.cmd("AUTH PLAIN " + abusePlain(user, "guess"))
		if err == nil && r != "535 5.7.8 Authentication credentials invalid\r\n" {
			err = fmt.Errorf("got %q", r)
		}
		return r, err
	})
	a.c.Close()
	a, err = abuseConnect(abuseFlooder, s.pop3, "pop3")
	if err != nil {
		t.Fatal(err)
	}
	guess("pop3", func(user string) (string, error) {
		r, err := a.cmd("USER " + user)
		if err != nil || r != "+OK Send PASS\r\n" {
			return r, fmt.Errorf("USER: %q, %v", r, err)
		}
		r, err = a.cmd("PASS guess")
		if err == nil && r != "-ERR [AUTH] Authentication failed\r\n" {
			err = fmt.Errorf("got %q", r)
		}
		return r, err
	})
	a.c.Close()
	a, err = abuseConnect(abuseFlooder, s.imap, "imap")
	if err != nil {
		t.Fatal(err)
	}
	guess("imap", func(user string) (string, error) {
		_, r, err := a.imapCmd("a", "LOGIN "+user+" guess")
		if err == nil && r != "a NO [AUTHENTICATIONFAILED] Authentication failed\r\n" {
			err = fmt.Errorf("got %q", r)
		}
		return r, err
	})
	lockedAt := time.Now()
	a.c.Close()
	if failures != abuseLockout {
		t.Fatalf("%d failures, want %d", failures, abuseLockout)
	}

	// Locked out: the right password is refused on every protocol,
	// unchecked, with a temporary reply; the session limit still applies.
	a, err = abuseConnect(abuseFlooder, s.imap, "imap")
	if err != nil {
		t.Fatal(err)
	}
	for i, tag := range []string{"a", "b", "c"} {
		_, r, err := a.imapCmd(tag, "LOGIN alice@example.org secret")
		if want := tag + " NO [UNAVAILABLE] Too many authentication failures from your address, try again later\r\n"; err != nil || r != want {
			t.Fatalf("IMAP LOGIN %d while locked out: %q, %v; want %q", i+1, r, err, want)
		}
	}
	if l, err := a.line(); err != nil || l != "* BYE Too many authentication failures\r\n" {
		t.Fatalf("after 3 refused logins: %q, %v", l, err)
	}
	if err := a.expectEOF(); err != nil {
		t.Fatal(err)
	}
	a, err = abuseConnect(abuseFlooder, s.pop3, "pop3")
	if err != nil {
		t.Fatal(err)
	}
	a.cmd("USER alice@example.org")
	if r, err := a.cmd("PASS secret"); err != nil || r != "-ERR [SYS/TEMP] Too many authentication failures from your address, try again later\r\n" {
		t.Fatalf("POP3 PASS while locked out: %q, %v", r, err)
	}
	a.c.Close()
	a, err = abuseConnect(abuseFlooder, s.submission, "smtp")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ehlo(); err != nil {
		t.Fatal(err)
	}
	if r, err := a.cmd("AUTH PLAIN " + abusePlain("alice@example.org", "secret")); err != nil || r != "454 4.7.0 Too many authentication failures from your address, try again later\r\n" {
		t.Fatalf("SMTP AUTH while locked out: %q, %v", r, err)
	}
	a.c.Close()

	// Meanwhile alice, from the address she logs in from, gets in on every
	// protocol without waiting; the guesses at her password from
	// elsewhere slow down only strangers (three failures for alice: 4 ×
	// auth_failure_delay, capped).
	identityWait := min(4*abuseDelay, abuseDelayMax)
	for proto, login := range map[string]func(string, abuseServers) (time.Duration, error){
		"imap": abuseIMAPLogin, "pop3": abusePOP3Login, "smtp": abuseSubmissionLogin,
	} {
		d, err := login(abuseGood, s)
		if err != nil {
			t.Fatalf("%s login from %s during the lockout: %v", proto, abuseGood, err)
		}
		if d >= identityWait {
			t.Errorf("%s login from %s took %v, want under %v", proto, abuseGood, d, identityWait)
		}
	}
	if d, err := abuseIMAPLogin(abuseStranger, s); err != nil || d < identityWait {
		t.Errorf("IMAP login from a stranger: %v, %v; want a wait of at least %v", d, err, identityWait)
	}

	// Once the lockout (auth_failure_window) is over, the flooder is
	// served again.
	time.Sleep(time.Until(lockedAt.Add(abuseWindow + 200*time.Millisecond)))
	if _, err := abuseIMAPLogin(abuseFlooder, s); err != nil {
		t.Fatalf("IMAP from %s after the windows: %v", abuseFlooder, err)
	}
	if _, err := abusePOP3Login(abuseFlooder, s); err != nil {
		t.Fatalf("POP3 from %s after the windows: %v", abuseFlooder, err)
	}
	if _, err := abuseSubmissionLogin(abuseFlooder, s); err != nil {
		t.Fatalf("SMTP AUTH from %s after the windows: %v", abuseFlooder, err)
	}
}
