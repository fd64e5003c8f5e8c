package client

import (
	"strings"
	"testing"

	"posthorn/protocol/textline"
)

// FuzzParseReply reads one reply from arbitrary server output: it must
// never panic, and a reply it accepts has a code of 200-599, printable
// text and an enhanced code of the reply's class.
func FuzzParseReply(f *testing.F) {
	for _, seed := range []string{
		"250 OK\r\n",
		"250-mx.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n",
		"550-5.1.1 No such\r\n550 5.1.1 user\r\n",
		"250 2.1.0 Sender OK\r\n",
		"421\r\n",
		"220 \r\n",
		"250-a\r\n251 b\r\n",
		"250 2.1.9999 x\r\n",
		"999 x\r\n",
		"250 \xff\x00\r\n",
		"250-a\n250 b\n",
		"\r\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r := textline.NewReader(strings.NewReader(in), 0)
		lines, err := readReplyLines(r)
		if err != nil {
			return
		}
		rep, err := ParseReply(lines)
		if err != nil {
			return
		}
		if rep.Code < 200 || rep.Code > 599 {
			t.Fatalf("code %d", rep.Code)
		}
		for i := 0; i < len(rep.Text); i++ {
			if c := rep.Text[i]; c != '\t' && c != '\n' && (c < ' ' || c > '~') {
				t.Fatalf("unprintable text %q", rep.Text)
			}
		}
		if rep.Enhanced != "" && int(rep.Enhanced[0]-'0') != rep.Code/100 {
			t.Fatalf("enhanced %q for %d", rep.Enhanced, rep.Code)
		}
		if strings.Count(rep.Text, "\n") != len(lines)-1 {
			t.Fatalf("%d lines, text %q", len(lines), rep.Text)
		}
	})
}
