package server

import (
	"os/exec"
	"strings"
	"testing"

	"posthorn/protocol/transcript"
)

// interopScript drives the server with Python's imaplib, a client nobody
// here wrote (STYLE: interop). It prints one line per check.
const interopScript = `
import imaplib, sys
host, port = sys.argv[1], int(sys.argv[2])
M = imaplib.IMAP4(host, port)
print("caps", "IMAP4REV2" in M.capabilities, "IDLE" in M.capabilities)
M.login("alice@example.org", "secret")
typ, data = M.append("INBOX", r"(\Flagged)", None, b"From: x@example.org\r\nSubject: interop\r\n\r\nbody text\r\n")
print("append", typ, data[0].decode())
typ, data = M.select("INBOX")
print("select", typ, data[0].decode())
typ, data = M.search(None, "SUBJECT", "interop")
print("search", typ, data[0].decode())
typ, data = M.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)] RFC822.SIZE)")
print("fetch", typ, data[0][0].decode(), repr(data[0][1]))
typ, data = M.store("1", "+FLAGS", r"(\Deleted)")
print("store", typ, data[0].decode())
typ, data = M.expunge()
print("expunge", typ, data[0].decode())
typ, data = M.list()
print("list", typ, len(data), data[0].decode())
print("logout", M.logout()[0])
`

func TestInteropPythonImaplib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	ts := startTestServer(t, testOptions{})
	host, port, _ := strings.Cut(ts.addr, ":")
	out, err := exec.Command(py, "-c", interopScript, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
	want := []string{
		"caps True True",
		"append OK [APPENDUID * 1] APPEND completed",
		"select OK 1",
		"search OK 1",
		`fetch OK 1 (FLAGS (\Flagged \Recent) BODY[HEADER.FIELDS (SUBJECT)] {20} b'Subject: interop\r\n\r\n'`,
		`store OK 1 (FLAGS (\Deleted \Flagged \Recent))`,
		"expunge OK 1",
		`list OK 6 (\HasNoChildren) "/" INBOX`,
		"logout BYE",
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(got), len(want), out)
	}
	for i := range want {
		if !transcript.Match(want[i], got[i]) {
			t.Errorf("line %d: got %q, want %q", i+1, got[i], want[i])
		}
	}
}
