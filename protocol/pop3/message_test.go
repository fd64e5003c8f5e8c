package pop3

import (
	"bytes"
	"strings"
	"testing"

	"posthorn/protocol/textline"
)

// send writes raw as a POP3 multi-line body, as the server does.
func send(raw []byte) []byte {
	var buf bytes.Buffer
	dw := textline.NewDotWriter(&buf)
	dw.Write(raw)
	dw.Close()
	return buf.Bytes()
}

// receive undoes what send did, as a client does (RFC 1939 3): split at
// CRLF, stop at ".", strip one leading "." from other lines. It reports
// false if the response is malformed (a bare CR or LF, no terminator, or
// data after it).
func receive(wire []byte) ([]byte, bool) {
	var out []byte
	for len(wire) > 0 {
		i := bytes.Index(wire, []byte("\r\n"))
		if i < 0 {
			return nil, false
		}
		line := wire[:i]
		wire = wire[i+2:]
		if bytes.ContainsAny(line, "\r\n") {
			return nil, false
		}
		if string(line) == "." {
			return out, len(wire) == 0
		}
		line = bytes.TrimPrefix(line, []byte("."))
		out = append(out, line...)
		out = append(out, "\r\n"...)
	}
	return nil, false
}

func TestWireSize(t *testing.T) {
	tests := []struct {
		raw  string
		want int64
	}{
		{"", 0},
		{"a\r\n", 3},
		{"a", 3},
		{"a\n", 3},
		{"a\r", 3},
		{"a\r\r\n", 5},
		{"\n\n", 4},
		{".\r\n..\r\n", 7}, // stuffed dots not counted (RFC 1939 11)
		{"Subject: bare\n\nline\n.dot\nend", 34},
	}
	for _, tt := range tests {
		if got := WireSize([]byte(tt.raw)); got != tt.want {
			t.Errorf("WireSize(%q) = %d, want %d", tt.raw, got, tt.want)
		}
		got, ok := receive(send([]byte(tt.raw)))
		if !ok || int64(len(got)) != tt.want {
			t.Errorf("%q: client received %q (%v), %d octets, WireSize %d", tt.raw, got, ok, len(got), tt.want)
		}
	}
}

func TestTopLength(t *testing.T) {
	const msg = "A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\nthree\r\n"
	tests := []struct {
		raw  string
		n    int
		want string
	}{
		{msg, 0, "A: 1\r\nB: 2\r\n\r\n"},
		{msg, 1, "A: 1\r\nB: 2\r\n\r\none\r\n"},
		{msg, 3, msg},
		{msg, 100, msg},
		{"A: 1\r\nB: 2\r\n", 0, "A: 1\r\nB: 2\r\n"}, // no body: all header
		{"\r\nbody\r\n", 0, "\r\n"},                 // no header
		{"A: 1\n\nx\ny\n", 1, "A: 1\n\nx\n"},        // bare LF line ends
		{"A: 1\r\r\nx\r\n", 0, "A: 1\r\r\n"},        // bare CR then CRLF: an empty line
		{"A: 1\r\n\r\nno end", 1, "A: 1\r\n\r\nno end"},
		{"", 5, ""},
	}
	for _, tt := range tests {
		if got := tt.raw[:TopLength([]byte(tt.raw), tt.n)]; got != tt.want {
			t.Errorf("TopLength(%q, %d) keeps %q, want %q", tt.raw, tt.n, got, tt.want)
		}
	}
}

func TestUniqueID(t *testing.T) {
	got := string(AppendUniqueID([]byte("x "), 0x6553f100, 0xfffffffe))
	if got != "x 6553f100fffffffe" {
		t.Fatalf("got %q", got)
	}
	if len(got)-2 != UniqueIDLength || strings.ContainsAny(got[2:], " \r\n") {
		t.Fatalf("bad unique-id %q", got)
	}
}
