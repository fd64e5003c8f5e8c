package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// pop3Instance runs posthorn with POP3 (STLS) and POP3S listeners and three
// messages delivered over SMTP to demo@example.org; it returns the instance
// and the messages as stored (read with the server stopped, then started
// again), which every client must receive byte for byte.
func pop3Instance(t *testing.T) (*instance, [][]byte) {
	t.Helper()
	pop3, pop3s := freePort(t), freePort(t)
	in := newInstance(t, "-o", "pop3_listen="+pop3, "-o", "pop3s_listen="+pop3s)
	in.extraPorts = []string{pop3, pop3s}
	in.mustCLI("secret\n", "user", "add", "demo@example.org")
	in.start()
	bodies := []string{
		"Subject: one\r\n\r\nplain text\r\n",
		"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n",
		"Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße, 8-bit.\r\n",
	}
	for _, b := range bodies {
		if err := sendOne(in.smtp, "sender@remote.example", []string{"demo@example.org"}, b); err != nil {
			t.Fatal(err)
		}
	}
	in.stop()
	stored := in.inbox("demo@example.org", "INBOX")
	if len(stored) != 3 {
		t.Fatalf("stored %d messages", len(stored))
	}
	in.start()
	return in, stored
}

// opt returns the value of a -o option (the last one given wins, as in posthorn).
func (in *instance) opt(key string) string {
	v := ""
	for i := 0; i+1 < len(in.opts); i++ {
		if in.opts[i] == "-o" {
			if val, ok := strings.CutPrefix(in.opts[i+1], key+"="); ok {
				v = val
			}
		}
	}
	return v
}

const poplibScript = `
import poplib, ssl, sys
host, port, tls, user, password, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
if tls == "ssl":
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    p = poplib.POP3_SSL(host, port, context=ctx, timeout=30)
else:
    p = poplib.POP3(host, port, timeout=30)
    if tls == "stls":
        ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        p.stls(context=ctx)
p.user(user)
p.pass_(password)
count, size = p.stat()
resp, listing, _ = p.list()
uidl = p.uidl()[1]
for i in range(1, count + 1):
    resp, lines, octets = p.retr(i)
    data = b"".join(l + b"\r\n" for l in lines)
    open("%s/%d.eml" % (out, i), "wb").write(data)
print("count", count, "size", size, "uidl", len(uidl))
p.quit()
`

// TestInteropPythonPoplib: USER/PASS in plaintext (loopback), after STLS,
// and over POP3S; every message byte-identical to the stored one.
func TestInteropPythonPoplib(t *testing.T) {
	py := requireTool(t, "python3")
	in, stored := pop3Instance(t)
	total := 0
	for _, m := range stored {
		total += len(m)
	}
	for _, mode := range []struct{ tls, addr string }{
		{"plain", in.opt("pop3_listen")}, {"stls", in.opt("pop3_listen")}, {"ssl", in.opt("pop3s_listen")},
	} {
		out := t.TempDir()
		host, port, _ := strings.Cut(mode.addr, ":")
		res, err := exec.Command(py, "-c", poplibScript, host, port, mode.tls, "demo@example.org", "secret", out).CombinedOutput()
		if err != nil {
			t.Fatalf("poplib %s: %v\n%s\n%s", mode.tls, err, res, in.logs())
		}
		if want := fmt.Sprintf("count 3 size %d uidl 3", total); !strings.Contains(string(res), want) {
			t.Fatalf("poplib %s: %s, want %s", mode.tls, res, want)
		}
		for i, want := range stored {
			got, _ := os.ReadFile(filepath.Join(out, fmt.Sprintf("%d.eml", i+1)))
			if !bytes.Equal(got, want) {
				t.Fatalf("poplib %s message %d:\n got %q\nwant %q", mode.tls, i+1, got, want)
			}
		}
	}
}

// TestInteropCurlPOP3: curl's pop3:// and pop3s:// LIST and RETR.
func TestInteropCurlPOP3(t *testing.T) {
	curl := requireTool(t, "curl")
	in, stored := pop3Instance(t)
	for _, base := range []string{"pop3://" + in.opt("pop3_listen"), "pop3s://" + in.opt("pop3s_listen")} {
		list, err := exec.Command(curl, "-sS", "-k", "--max-time", "30", "-u", "demo@example.org:secret", base+"/").CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s LIST: %v\n%s", base, err, list)
		}
		want := fmt.Sprintf("1 %d\r\n2 %d\r\n3 %d\r\n", len(stored[0]), len(stored[1]), len(stored[2]))
		if string(list) != want {
			t.Fatalf("curl %s LIST: %q, want %q", base, list, want)
		}
		for i, m := range stored {
			got, err := exec.Command(curl, "-sS", "-k", "--max-time", "30", "-u", "demo@example.org:secret", fmt.Sprintf("%s/%d", base, i+1)).Output()
			if err != nil {
				t.Fatalf("curl %s RETR %d: %v", base, i+1, err)
			}
			if !bytes.Equal(got, m) {
				t.Fatalf("curl %s RETR %d:\n got %q\nwant %q", base, i+1, got, m)
			}
		}
	}
}

// TestInteropFetchmail: fetch all, keeping them; then fetch all without
// keep, which deletes them (QUIT's deletions are durable before +OK).
func TestInteropFetchmail(t *testing.T) {
	fetchmail := requireTool(t, "fetchmail")
	in, stored := pop3Instance(t)
	dir := t.TempDir()
	host, port, _ := strings.Cut(in.opt("pop3_listen"), ":")
	run := func(keep string) []string {
		t.Helper()
		out := t.TempDir()
		rc := filepath.Join(dir, "fetchmailrc")
		os.WriteFile(rc, []byte(fmt.Sprintf(
			"set no syslog\npoll %s service %s protocol pop3 auth password:\n  user \"demo@example.org\" password \"secret\" is root here\n  %s fetchall sslproto '' mda \"/bin/sh -c 'cat > %s/$$.eml'\"\n",
			host, port, keep, out)), 0o600)
		cmd := exec.Command(fetchmail, "-f", rc, "--nodetach", "--idfile", filepath.Join(dir, "ids"), "--pidfile", filepath.Join(dir, "pid"))
		cmd.Env = append(os.Environ(), "HOME="+dir, "FETCHMAILHOME="+dir)
		res, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fetchmail %s: %v\n%s\n%s", keep, err, res, in.logs())
		}
		files, _ := filepath.Glob(filepath.Join(out, "*.eml"))
		var msgs []string
		for _, f := range files {
			b, _ := os.ReadFile(f)
			msgs = append(msgs, string(b))
		}
		return msgs
	}
	check := func(got []string) {
		t.Helper()
		if len(got) != len(stored) {
			t.Fatalf("fetchmail delivered %d messages, want %d", len(got), len(stored))
		}
		// fetchmail puts a Received line of its own on top and hands the
		// MDA LF line ends; the rest must be what we stored.
		var want []string
		for _, m := range stored {
			want = append(want, strings.ReplaceAll(string(m), "\r\n", "\n"))
		}
		var norm []string
		for _, g := range got {
			norm = append(norm, dropFetchmailReceived(g))
		}
		sort.Strings(want)
		sort.Strings(norm)
		for i := range want {
			if norm[i] != want[i] {
				t.Fatalf("fetchmail message:\n got %q\nwant %q", norm[i], want[i])
			}
		}
	}
	check(run("keep"))
	check(run("keep")) // kept: all there again (fetchall)
	check(run("no keep"))
	in.stop()
	if n := len(in.inbox("demo@example.org", "INBOX")); n != 0 {
		t.Fatalf("after fetchmail without keep the INBOX has %d messages", n)
	}
}

// dropFetchmailReceived removes the Received field fetchmail adds
// ("... with POP3 (fetchmail-6.4.37) ...", with its continuation lines).
func dropFetchmailReceived(msg string) string {
	lines := strings.SplitAfter(msg, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "Received: from 127.0.0.1 ") {
			continue
		}
		j := i + 1
		for j < len(lines) && (strings.HasPrefix(lines[j], "\t") || strings.HasPrefix(lines[j], " ")) {
			j++
		}
		if strings.Contains(strings.Join(lines[i:j], ""), "(fetchmail-") {
			return strings.Join(append(lines[:i:i], lines[j:]...), "")
		}
	}
	return msg
}
