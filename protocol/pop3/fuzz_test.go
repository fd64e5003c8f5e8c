package pop3

import (
	"bytes"
	"testing"
)

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"STAT", "list 1", "TOP 1 10", "PASS  a b ", "USER j\u00f6rg", "", " ", "STAT\x00",
		"AUTH PLAIN =", "AUTH SCRAM-SHA-256 biwsbj11c2VyLHI9eA==", "STLS", "APOP a b",
		"STARTTLS", "RETR 99999999999", "\xff\xfe", "UIDL\r",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		cmd, err := ParseCommand(line)
		if err != nil {
			if _, ok := err.(Reply); !ok || err.(Reply).OK {
				t.Fatalf("error %v is not a -ERR reply", err)
			}
			return
		}
		if _, ok := commandVerbs[cmd.Verb]; !ok {
			t.Fatalf("verb %q not known", cmd.Verb)
		}
		for _, c := range []byte(cmd.Args) {
			if c < ' ' || c == 0x7f {
				t.Fatalf("control character in args %q", cmd.Args)
			}
		}
		// The verb is the line's first word, in any case; Args is the rest
		// after one space, unchanged.
		if len(line) < len(cmd.Verb) || !bytes.EqualFold(line[:len(cmd.Verb)], []byte(cmd.Verb)) {
			t.Fatalf("%q parsed as verb %q", line, cmd.Verb)
		}
		rest := line[len(cmd.Verb):]
		if len(rest) == 0 && cmd.Args != "" || len(rest) > 0 && (rest[0] != ' ' || string(rest[1:]) != cmd.Args) {
			t.Fatalf("%q parsed as %+v", line, cmd)
		}
		// Number arguments never panic and stay in range.
		for _, f := range Fields(cmd.Args) {
			if n, ok := ParseMsgNumber(f); ok && (n < 1 || n > 9999999999) {
				t.Fatalf("message number %d from %q", n, f)
			}
			if n, ok := ParseLineCount(f); ok && n < 0 {
				t.Fatalf("line count %d from %q", n, f)
			}
		}
	})
}

// commandVerbs is the set of verbs ParseCommand may return.
var commandVerbs = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, v := range verbs {
		m[v] = struct{}{}
	}
	return m
}()

// FuzzMessage checks that what the client receives of a message, RETR or
// TOP, is exactly as long as announced (RFC 1939 11), that it can always find
// the end of the response (byte-stuffing, RFC 1939 3), and that TOP's part is
// a prefix of the whole that ends at a line end.
func FuzzMessage(f *testing.F) {
	for _, s := range []string{
		"", "a", "Subject: x\r\n\r\nbody\r\n", ".\r\n", "\r\n.\r\n", "a\n.\nb", "a\r.\rb\r",
		"H: 1\r\n\r\n.\r\n..\r\n.x\r\n", "\n\n\n", "\r\r\n\r\n", "A: 1\r\n\r\nno end",
	} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, raw []byte, n uint8) {
		got, ok := receive(send(raw))
		if !ok {
			t.Fatalf("malformed response for %q", raw)
		}
		if int64(len(got)) != WireSize(raw) {
			t.Fatalf("%q: received %d octets, WireSize %d", raw, len(got), WireSize(raw))
		}
		cut := TopLength(raw, int(n))
		if cut < 0 || cut > len(raw) {
			t.Fatalf("TopLength %d of %d", cut, len(raw))
		}
		if cut > 0 && cut < len(raw) && raw[cut-1] != '\n' && raw[cut-1] != '\r' {
			t.Fatalf("TOP cuts %q inside a line at %d", raw, cut)
		}
		if cut > 0 && cut < len(raw) && raw[cut-1] == '\r' && raw[cut] == '\n' {
			t.Fatalf("TOP cuts %q inside a CRLF", raw)
		}
		top, ok := receive(send(raw[:cut]))
		if !ok || !bytes.HasPrefix(got, top) {
			t.Fatalf("TOP of %q is not a prefix of RETR: %q", raw, top)
		}
		if TopLength(raw, int(n)+1) < cut {
			t.Fatalf("TOP with more lines sends less")
		}
	})
}
