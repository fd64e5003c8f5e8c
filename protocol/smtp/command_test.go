package smtp

import (
	"errors"
	"testing"
)

// checkReply fails t unless err is a Reply with the given code and enhanced
// code; code 0 means no error is expected.
func checkReply(t *testing.T, name string, err error, code int, enh string) {
	t.Helper()
	if code == 0 {
		if err != nil {
			t.Errorf("%s: unexpected error %v", name, err)
		}
		return
	}
	var r Reply
	if !errors.As(err, &r) {
		t.Errorf("%s: error %v (%T), want Reply %d %s", name, err, err, code, enh)
		return
	}
	if r.Code != code || r.Enhanced != enh {
		t.Errorf("%s: got %d %s %q, want %d %s", name, r.Code, r.Enhanced, r.Text, code, enh)
	}
	if r.Text == "" {
		t.Errorf("%s: reply has no text", name)
	}
}

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line      string
		verb, arg string
		code      int
	}{
		{"EHLO example.com", "EHLO", "example.com", 0},
		{"ehlo example.com", "EHLO", "example.com", 0},
		{"MaIl FROM:<a@b>", "MAIL", "FROM:<a@b>", 0},
		{"QUIT", "QUIT", "", 0},
		{"quit   ", "QUIT", "", 0},
		{"NOOP \t", "NOOP", "", 0},
		{"MAIL   FROM:<a@b>  ", "MAIL", "FROM:<a@b>", 0},
		{"MAIL FROM:<\"a  b\"@c> SIZE=1", "MAIL", "FROM:<\"a  b\"@c> SIZE=1", 0},
		{"VRFY a\tb", "VRFY", "a\tb", 0},
		{"RCPT TO:<jöran@example.org>", "RCPT", "TO:<jöran@example.org>", 0},
		{"XYZZY", "XYZZY", "", 0},
		{"", "", "", 500},
		{"   ", "", "", 500},
		{"\t", "", "", 500},
		{" EHLO x", "", "", 500},
		{"EHLO\tx", "", "", 500},
		{"EHLO:x", "", "", 500},
		{"MAIL1 x", "", "", 500},
		{"EHL0 x", "", "", 500},
		{"ÉHLO x", "", "", 500},
		{"\xffHLO x", "", "", 500},
		{"EHLO x\x00y", "", "", 500},
		{"EHLO x\ry", "", "", 500},
		{"EHLO x\r", "", "", 500},
		{"DATA\n", "", "", 500},
		{"MAIL FROM:<a@b>\nRCPT TO:<c@d>", "", "", 500},
		{"NOOP \x1b[2J", "", "", 500},
		{"NOOP \x7f", "", "", 500},
		{"\x00", "", "", 500},
	}
	for _, tt := range tests {
		cmd, err := ParseCommand([]byte(tt.line))
		if tt.code != 0 {
			checkReply(t, tt.line, err, tt.code, "5.5.2")
			continue
		}
		checkReply(t, tt.line, err, 0, "")
		if cmd.Verb != tt.verb || cmd.Arg != tt.arg {
			t.Errorf("%q: got %q %q, want %q %q", tt.line, cmd.Verb, cmd.Arg, tt.verb, tt.arg)
		}
	}
}
