package client

import (
	"errors"
	"io"
	"strings"
	"testing"

	"posthorn/protocol/smtp"
	"posthorn/protocol/textline"
)

func TestParseReply(t *testing.T) {
	tests := []struct {
		lines []string
		want  smtp.Reply
		err   bool
	}{
		{lines: []string{"250 OK"}, want: smtp.Reply{Code: 250, Text: "OK"}},
		{lines: []string{"250 2.1.0 Sender OK"}, want: smtp.Reply{Code: 250, Enhanced: "2.1.0", Text: "Sender OK"}},
		{lines: []string{"550 5.1.1"}, want: smtp.Reply{Code: 550, Enhanced: "5.1.1"}},
		{lines: []string{"451 4.123.999 x"}, want: smtp.Reply{Code: 451, Enhanced: "4.123.999", Text: "x"}},
		// RFC 3463 2: the class must match the first digit, subject and
		// detail have one to three digits.
		{lines: []string{"550 4.1.1 odd"}, want: smtp.Reply{Code: 550, Text: "4.1.1 odd"}},
		{lines: []string{"250 2.1.1000 x"}, want: smtp.Reply{Code: 250, Text: "2.1.1000 x"}},
		{lines: []string{"250 2.1. x"}, want: smtp.Reply{Code: 250, Text: "2.1. x"}},
		{lines: []string{"250 2.1.0.1 x"}, want: smtp.Reply{Code: 250, Text: "2.1.0.1 x"}},
		{lines: []string{"250 2.1.0x"}, want: smtp.Reply{Code: 250, Text: "2.1.0x"}},
		{lines: []string{"354 3.0.0 go"}, want: smtp.Reply{Code: 354, Text: "3.0.0 go"}},
		// RFC 5321 4.2: a bare code, with or without SP.
		{lines: []string{"250"}, want: smtp.Reply{Code: 250}},
		{lines: []string{"250 "}, want: smtp.Reply{Code: 250}},
		// Codes RFC 5321 does not list are kept (4.2: handled by first digit).
		{lines: []string{"299 odd"}, want: smtp.Reply{Code: 299, Text: "odd"}},
		// Multi-line, enhanced code repeated on each line (RFC 2034 3).
		{lines: []string{"550-5.1.1 No such", "550-5.1.1", "550 5.1.1 user"}, want: smtp.Reply{Code: 550, Enhanced: "5.1.1", Text: "No such\n\nuser"}},
		{lines: []string{"250-mx.test", "250-PIPELINING", "250 SIZE 100"}, want: smtp.Reply{Code: 250, Text: "mx.test\nPIPELINING\nSIZE 100"}},
		{lines: []string{"250-", "250 x"}, want: smtp.Reply{Code: 250, Text: "\nx"}},
		// Text is made printable ASCII.
		{lines: []string{"550 5.1.1 M\xc3\xbcller \x1b[31m\tx"}, want: smtp.Reply{Code: 550, Enhanced: "5.1.1", Text: "M??ller ?[31m\tx"}},
		{lines: nil, err: true},
		{lines: []string{""}, err: true},
		{lines: []string{"25"}, err: true},
		{lines: []string{"2500 x"}, err: true},
		{lines: []string{"25x OK"}, err: true},
		{lines: []string{"600 OK"}, err: true},
		{lines: []string{"199 OK"}, err: true},
		{lines: []string{"-250 OK"}, err: true},
		{lines: []string{"250-OK"}, err: true},         // unterminated
		{lines: []string{"250 a", "250 b"}, err: true}, // two replies
		{lines: []string{"250-a", "251 b"}, err: true}, // different codes
		{lines: []string{"250-a", "250"}, want: smtp.Reply{Code: 250, Text: "a\n"}},
		{lines: []string{"250", "250 b"}, err: true}, // bare code mid-reply
		{lines: []string{"250 " + strings.Repeat("x", MaxReplyLine)}, err: true},
		{lines: append(make([]string, MaxReplyLines), "250 x"), err: true},
	}
	for _, tt := range tests {
		got, err := ParseReply(tt.lines)
		if tt.err {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Errorf("ParseReply(%q) = %+v, %v; want a *ProtocolError", tt.lines, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseReply(%q) = %+v, %v; want %+v", tt.lines, got, err, tt.want)
		}
	}
}

func TestReadReplyLines(t *testing.T) {
	tests := []struct {
		in    string
		lines []string
		err   bool
	}{
		{in: "250 OK\r\n", lines: []string{"250 OK"}},
		{in: "250-a\r\n250-b\r\n250 c\r\n250 next\r\n", lines: []string{"250-a", "250-b", "250 c"}},
		{in: "250 OK\n", lines: []string{"250 OK"}}, // bare LF tolerated when reading
		{in: "hello-world\r\n", lines: []string{"hello-world"}},
		{in: "250-a\r\n", err: true},
		{in: "", err: true},
		{in: "250 " + strings.Repeat("x", MaxReplyLine) + "\r\n", err: true},
		{in: strings.Repeat("250-x\r\n", MaxReplyLines+1), err: true},
	}
	for _, tt := range tests {
		r := textline.NewReader(strings.NewReader(tt.in), 0)
		lines, err := readReplyLines(r)
		if tt.err != (err != nil) || strings.Join(lines, "|") != strings.Join(tt.lines, "|") {
			t.Errorf("readReplyLines(%q) = %q, %v", tt.in, lines, err)
		}
	}
	r := textline.NewReader(strings.NewReader(""), 0)
	if _, err := readReplyLines(r); err != io.EOF {
		t.Errorf("at EOF: %v", err)
	}
}
