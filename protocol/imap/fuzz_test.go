package imap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

var commandSeeds = []string{
	"a NOOP\r\n",
	"a1 LOGIN fred \"fat man\"\r\n",
	"a LOGIN {4}\r\nfred {7}\r\nfat man\r\n",
	"a LOGIN {4+}\r\nfred {7+}\r\nfat man\r\nb LOGOUT\r\n",
	"a LOGIN {0}\r\n {0+}\r\n\r\n",
	"a APPEND INBOX (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {11}\r\nHello World\r\n",
	"a APPEND INBOX ~{3}\r\na\x00b\r\n",
	"a UID FETCH 1:*,$ (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)\r\n",
	"a SEARCH CHARSET UTF-8 (OR $ 1,3000:3021) TEXT {8}\r\n\xd1\x80\xd1\x83\xd1\x81\xd1\x81\r\n",
	"a LIST (SUBSCRIBED) \"\" (\"INBOX\" \"&U,BTFw-/%\") RETURN (CHILDREN STATUS (MESSAGES))\r\n",
	"a STORE 2:4 +FLAGS.SILENT (\\Deleted $Junk)\r\n",
	"a LOGIN {4000000000}\r\n",
	"a LOGIN {4000000000+}\r\nb NOOP\r\n",
	"a LOGIN {80+}\r\n" + strings.Repeat("x", 80) + " {3+}\r\nabc\r\nb NOOP\r\n",
	"a X " + strings.Repeat("(", 40) + "\r\n",
	"a X \"unterminated {3}\r\nabc\"\r\n",
	"a X \"a\x00b\"\r\n",
	"+ NOOP\r\n\r\n a\r\na\n",
	"a X {2}\r\n",
	"a X ~{3+}\r\n\x00\x00\x00 {1}\r\n}\r\n",
}

// FuzzDecodeCommand feeds arbitrary bytes to the Decoder, with a fake
// continuation, and walks every command it returns with the Parser. No input
// may panic, every error must be typed, and memory stays within the limits.
func FuzzDecodeCommand(f *testing.F) {
	for _, s := range commandSeeds {
		f.Add([]byte(s))
	}
	// Small caps, so that short inputs reach every limit (large seeds make
	// the fuzzer's minimisation slow).
	lim := Limits{Line: MinLine, Literal: 4096, NonSync: 64, Command: 32 << 10, Drain: 256, Depth: 8, Args: 500,
		LiteralLimit: func(cmd string, arg int) int64 {
			switch {
			case cmd == "APPEND" && arg > 0:
				return 16 << 10
			case cmd == "X":
				return -1
			}
			return 1024
		}}
	f.Add([]byte("La NOOP "))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Inputs stay small because the fuzzer minimises every new input in
		// time quadratic in its length; a leading "L" appends a line longer
		// than Limits.Line, which cannot go below MinLine.
		if len(data) > 4096 {
			return
		}
		if len(data) > 0 && data[0] == 'L' {
			data = append(data[1:len(data):len(data)], bytes.Repeat([]byte("x"), MinLine+10)...)
		}
		d := NewDecoder(bufio.NewReaderSize(bytes.NewReader(data), 4096), lim)
		d.SetUTF8(len(data)%2 == 0)
		for range 100 {
			cmd, err := d.ReadCommand(func() error { return nil })
			if c := cap(d.buf); int64(c) > 2*(lim.Command+int64(lim.Line)) {
				t.Fatalf("buffer capacity %d", c)
			}
			if err != nil {
				var de *DecodeError
				switch {
				case err == io.EOF || err == io.ErrUnexpectedEOF:
					return
				case errors.As(err, &de):
					if de.Tag != "" && !validTag(de.Tag) {
						t.Fatalf("invalid tag %q in error", de.Tag)
					}
					if !de.InSync {
						return
					}
					continue
				}
				t.Fatalf("untyped error %T %v", err, err)
			}
			raw := cmd.Bytes()
			if int64(len(raw)) > lim.Command || !bytes.HasSuffix(raw, []byte("\r\n")) || !validTag(cmd.Tag) || cmd.Name == "" {
				t.Fatalf("bad command %q tag %q name %q", raw, cmd.Tag, cmd.Name)
			}
			p := cmd.Args()
			walkArgs(t, &p)
		}
	})
}

// FuzzParser runs the Parser alone over arbitrary argument bytes.
func FuzzParser(f *testing.F) {
	for _, s := range commandSeeds {
		if i := strings.IndexByte(s, ' '); i >= 0 {
			f.Add([]byte(strings.TrimSuffix(s[i:], "\r\n")))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1024 {
			return // keep minimisation fast; nothing needs longer input
		}
		p := NewParser(data)
		p.SetUTF8(len(data)%2 == 1)
		walkArgs(t, p)
	})
}

// walkArgs reads whatever tokens come, choosing a Parser method by the next
// octet, the way handlers do, and checks that errors are syntax errors and
// that every call either consumes input or fails.
func walkArgs(t *testing.T, p *Parser) {
	var item func(p *Parser) error
	item = func(p *Parser) error {
		before := p.Offset()
		var err error
		switch c := p.Peek(); {
		case c == '(':
			err = p.List(item)
		case c == '"' && p.Offset()%3 == 0:
			_, err = p.DateTime()
		case c == '"' || c == '{':
			_, err = p.Mailbox()
		case c == '~':
			_, _, err = p.Literal(true)
		case c == '\\':
			_, err = p.Flag()
		case c >= '0' && c <= '9' && p.Offset()%2 == 0:
			_, err = p.SeqSet()
		case c >= '0' && c <= '9':
			_, err = p.Number64()
		case c == '*' || c == '%':
			_, err = p.ListMailbox()
		case c == '$':
			_, err = p.SeqSet()
		default:
			if !p.AcceptKeyword("NIL") {
				_, err = p.AString()
			}
		}
		if err == nil && p.Offset() == before {
			t.Fatalf("no progress at %d", before)
		}
		return err
	}
	for steps := 0; !p.AtEnd(); steps++ {
		if steps > 100000 {
			t.Fatal("too many steps")
		}
		if p.Accept(' ') {
			continue
		}
		if err := item(p); err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(p.buf) {
				t.Fatalf("parser error %T %v", err, err)
			}
			return
		}
	}
	if err := p.End(); err != nil {
		t.Fatal(err)
	}
}

// FuzzSeqSet: a set that parses formats to a string that parses to the same
// set, and Resolve keeps membership while sorting and merging.
func FuzzSeqSet(f *testing.F) {
	for _, s := range []string{"1", "1:3,5", "*", "7:*", "*:4,5:7", "$", "1,$", "1:4294967295",
		"4294967295:1,2", "2,4:7,9,12:*", "0", "1,,2", "$,1", "5:5,5"} {
		f.Add(s, uint32(15))
	}
	f.Fuzz(func(t *testing.T, s string, last uint32) {
		set, err := ParseSeqSet(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(s) {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		out := set.String()
		again, err := ParseSeqSet(out)
		if err != nil || !slices.Equal(again.Ranges, set.Ranges) || again.Saved != set.Saved {
			t.Fatalf("%q -> %q -> %+v, %v", s, out, again, err)
		}
		r := set.Resolve(last)
		for i, rg := range r.Ranges {
			if rg.Start == 0 || rg.Start > rg.Stop || (i > 0 && uint64(r.Ranges[i-1].Stop)+1 >= uint64(rg.Start)) {
				t.Fatalf("%q resolved with %d to unsorted or unmerged %v", s, last, r)
			}
		}
		for _, rg := range set.Ranges {
			for _, n := range []uint32{rg.Start, rg.Stop, rg.Start + 1, rg.Stop - 1, last, last + 1, 1} {
				if set.Contains(n, last) != r.Contains(n, last) {
					t.Fatalf("%q with %d: Contains(%d) differs after Resolve", s, last, n)
				}
			}
		}
	})
}

// FuzzUTF7: encoding then decoding returns valid UTF-8 input, and strict
// decoding makes the encoding canonical: whatever decodes re-encodes to
// itself.
func FuzzUTF7(f *testing.F) {
	for _, s := range []string{"", "INBOX", "~peter/mail/&U,BTFw-/&ZeVnLIqe-", "&U,BTF2XlZyyKng-", "&Jjo!",
		"&-", "&AGE-", "台北日本語", "a&b", "\U0001F600", "&2D3eAA-", "\x00\x7f\u0080"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1024 {
			return // mailbox names are short; long inputs only slow minimisation
		}
		enc := EncodeUTF7(s)
		for i := 0; i < len(enc); i++ {
			if !isPrintableASCII(rune(enc[i])) {
				t.Fatalf("EncodeUTF7(%q) = %q: not printable ASCII", s, enc)
			}
		}
		if utf8.ValidString(s) {
			if dec, err := DecodeUTF7(enc); err != nil || dec != s {
				t.Fatalf("%q -> %q -> %q, %v", s, enc, dec, err)
			}
		}
		dec, err := DecodeUTF7(s)
		if err != nil {
			if !errors.Is(err, ErrUTF7) {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if !utf8.ValidString(dec) || EncodeUTF7(dec) != s {
			t.Fatalf("%q decodes to %q, which encodes to %q", s, dec, EncodeUTF7(dec))
		}
	})
}

// FuzzDateTime: what parses formats to something that parses to the same
// instant and offset; the same for dates.
func FuzzDateTime(f *testing.F) {
	for _, s := range []string{"17-Jul-1996 02:44:25 -0700", " 1-Jan-2000 00:00:00 +0000", "31-Dec-9999 23:59:60 +9959",
		"29-Feb-2000 12:00:00 -1200", "1-Feb-1994", "01-feb-1994", "30-Feb-1994"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 256 {
			return
		}
		if tm, err := ParseDateTime(s); err == nil {
			out := FormatDateTime(tm)
			back, err := ParseDateTime(out)
			_, off1 := tm.Zone()
			_, off2 := back.Zone()
			if err != nil || !back.Equal(tm) || off1 != off2 {
				t.Fatalf("%q -> %q -> %v, %v", s, out, back, err)
			}
		}
		if d, err := ParseDate(s); err == nil {
			out := FormatDate(d)
			back, err := ParseDate(out)
			if err != nil || !back.Equal(d) {
				t.Fatalf("%q -> %q -> %v, %v", s, out, back, err)
			}
		}
		// The Parser's quoted forms agree with the plain functions.
		_, err1 := ParseDateTime(s)
		p := NewParser([]byte(`"` + s + `"`))
		_, err2 := p.DateTime()
		if err2 == nil {
			err2 = p.End()
		}
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("%q: ParseDateTime %v, Parser.DateTime %v", s, err1, err2)
		}
	})
}
