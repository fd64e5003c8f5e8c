package server

import (
	"testing"

	"posthorn/protocol/imap"
)

// FuzzSearchProgram: the SEARCH program parser (RFC 9051 6.4.4, RFC 4731
// RETURN options) never panics, and what it accepts is a tree no deeper
// than maxSearchDepth, with sequence sets and sizes in range.
func FuzzSearchProgram(f *testing.F) {
	for _, s := range []string{
		"ALL", "UNSEEN", "1:* UID 2,4:7", "OR FROM alice SUBJECT \"hi there\"",
		"NOT (SEEN FLAGGED) LARGER 100 SMALLER 4000", "SINCE 1-Feb-1994 BEFORE 3-Mar-2026",
		"SENTON 26-Nov-2026 HEADER X-Spam yes", "CHARSET UTF-8 BODY grüße", "CHARSET KOI8-R TEXT x",
		"RETURN (MIN MAX COUNT ALL SAVE) KEYWORD $Forwarded", "RETURN () $", "TEXT {3+}\r\nabc",
		"((((((((ALL))))))))", "OR OR OR A B C D", "NOT NOT NOT NOT SEEN", "", "(", "UID *:1", "LARGER 99999999999999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 4096 {
			return
		}
		p := imap.NewParser([]byte(" " + in))
		_, key, err := parseSearch(p)
		if err != nil {
			if key != nil {
				t.Fatalf("error %v with a program", err)
			}
			return
		}
		if key == nil {
			t.Fatal("no program and no error")
		}
		var depth func(k *searchKey) int
		depth = func(k *searchKey) int {
			d := 0
			for _, s := range k.sub {
				d = max(d, depth(s))
			}
			if k.size < 0 {
				t.Fatalf("negative size %d", k.size)
			}
			return d + 1
		}
		if d := depth(key); d > maxSearchDepth+2 {
			t.Fatalf("program %d deep, limit %d", d, maxSearchDepth)
		}
	})
}
