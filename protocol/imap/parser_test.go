package imap

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// tokenCase is one input for one Parser method: the value wanted, or the
// error message wanted ("" for success), and the octets left after it.
type tokenCase struct {
	in, want, err, rest string
}

func runTokens(t *testing.T, name string, read func(p *Parser) (string, error), cases []tokenCase) {
	t.Helper()
	for _, tc := range cases {
		p := NewParser([]byte(tc.in))
		got, err := read(p)
		if tc.err != "" {
			var se *SyntaxError
			if !errors.As(err, &se) || !strings.Contains(se.Msg, tc.err) || !errors.Is(err, ErrSyntax) {
				t.Errorf("%s(%q): err %v, want %q", name, tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want || string(p.buf[p.pos:]) != tc.rest {
			t.Errorf("%s(%q) = %q, %v, rest %q; want %q, rest %q", name, tc.in, got, err, p.buf[p.pos:], tc.want, tc.rest)
		}
	}
}

func TestAtom(t *testing.T) {
	runTokens(t, "Atom", (*Parser).Atom, []tokenCase{
		{"FOO bar", "FOO", "", " bar"},
		{"a[b]", "a[b", "", "]"},
		{"x(y", "x", "", "(y"},
		{"", "", "expected atom", ""},
		{"(", "", "expected atom", ""},
		{"%", "", "expected atom", ""},
		{"\x01", "", "expected atom", ""},
		{"\xc3\xa9", "", "expected atom", ""},
	})
}

func TestKeyword(t *testing.T) {
	runTokens(t, "Keyword", (*Parser).Keyword, []tokenCase{
		{"body.peek[TEXT]<0.10>", "BODY.PEEK", "", "[TEXT]<0.10>"},
		{"rfc822.size)", "RFC822.SIZE", "", ")"},
		{"+flags.silent ", "+FLAGS.SILENT", "", " "},
		{"[", "", "expected keyword", ""},
	})
	p := NewParser([]byte("nil NILS"))
	if !p.AcceptKeyword("NIL") || p.SP() != nil || p.AcceptKeyword("NIL") {
		t.Error("AcceptKeyword")
	}
}

func TestAString(t *testing.T) {
	runTokens(t, "AString", (*Parser).AString, []tokenCase{
		{"fred foo", "fred", "", " foo"},
		{"a]b", "a]b", "", ""},
		{`"fat man"`, "fat man", "", ""},
		{`""`, "", "", ""},
		{`"a\"b\\c" x`, `a"b\c`, "", " x"},
		{`"tab	ok"`, "tab\tok", "", ""},
		{"\"caf\xc3\xa9\"", "caf\xc3\xa9", "", ""},
		{"{3}\r\nabc rest", "abc", "", " rest"},
		{"{3+}\r\nabc", "abc", "", ""},
		{"{0}\r\n", "", "", ""},
		{"{4}\r\na\r\nb", "a\r\nb", "", ""},
		{"\"a\x00b\"", "", "NUL in quoted string", ""},
		{"\"a\rb\"", "", "CR or LF in quoted string", ""},
		{"\"a\nb\"", "", "CR or LF in quoted string", ""},
		{`"a\b"`, "", "invalid escape", ""},
		{`"abc`, "", "unterminated quoted string", ""},
		{`"abc\`, "", "invalid escape", ""},
		{"\"\xff\"", "", "invalid UTF-8", ""},
		{"\"\xed\xa0\x80\"", "", "invalid UTF-8", ""}, // a UTF-16 surrogate
		{"{3}\r\na\x00b", "", "NUL in literal", ""},
		{"{5}\r\nabc", "", "literal longer than the command", ""},
		{"{3}abc", "", "expected CRLF after literal size", ""},
		{"{3", "", "expected '}'", ""},
		{"{x}\r\n", "", "expected number", ""},
		{"{99999999999999999999}\r\n", "", "number out of range", ""},
		{"~{3}\r\nabc", "~", "", "{3}\r\nabc"}, // "~" is an ASTRING-CHAR
		{"(", "", "expected atom or string", ""},
		{"", "", "expected atom or string", ""},
	})
}

func TestString(t *testing.T) {
	runTokens(t, "String", (*Parser).String, []tokenCase{
		{`"x"`, "x", "", ""},
		{"{1}\r\nx", "x", "", ""},
		{"x", "", "expected string", ""},
	})
}

func TestNString(t *testing.T) {
	read := func(p *Parser) (string, error) {
		s, ok, err := p.NString()
		if err == nil && !ok {
			return "<nil>", nil
		}
		return s, err
	}
	runTokens(t, "NString", read, []tokenCase{
		{"NIL", "<nil>", "", ""},
		{"nil)", "<nil>", "", ")"},
		{`"NIL"`, "NIL", "", ""},
		{"{0}\r\n", "", "", ""},
		{"NILS", "", "expected string or NIL", ""},
		{"foo", "", "expected string or NIL", ""},
	})
}

func TestNumbers(t *testing.T) {
	num := func(f func(p *Parser) (uint64, error)) func(p *Parser) (string, error) {
		return func(p *Parser) (string, error) {
			v, err := f(p)
			return itoa(v), err
		}
	}
	runTokens(t, "Number", num(func(p *Parser) (uint64, error) { v, err := p.Number(); return uint64(v), err }), []tokenCase{
		{"0", "0", "", ""},
		{"007 x", "7", "", " x"},
		{"4294967295", "4294967295", "", ""},
		{"4294967296", "", "number out of range", ""},
		{"x", "", "expected number", ""},
		{"-1", "", "expected number", ""},
	})
	runTokens(t, "NzNumber", num(func(p *Parser) (uint64, error) { v, err := p.NzNumber(); return uint64(v), err }), []tokenCase{
		{"1", "1", "", ""},
		{"0", "", "expected non-zero number", ""},
		{"01", "", "expected non-zero number", ""},
	})
	runTokens(t, "Number64", num(func(p *Parser) (uint64, error) { v, err := p.Number64(); return uint64(v), err }), []tokenCase{
		{"9223372036854775807", "9223372036854775807", "", ""},
		{"9223372036854775808", "", "number out of range", ""},
		{"99999999999999999999999999", "", "number out of range", ""},
	})
}

func itoa(v uint64) string { return string(appendInt(nil, int(v), 1)) }

func TestLiteral(t *testing.T) {
	tests := []struct {
		in        string
		binOK     bool
		want      string
		binary    bool
		errSubstr string
	}{
		{"{3}\r\nabc", false, "abc", false, ""},
		{"~{3}\r\na\x00c", true, "a\x00c", true, ""},
		{"~{3+}\r\nabc", true, "abc", true, ""},
		{"~{3}\r\nabc", false, "", false, "literal8 not allowed"},
		{"{3}\r\na\x00c", true, "", false, "NUL in literal"},
		{`"abc"`, true, "", false, "expected literal"},
	}
	for _, tt := range tests {
		p := NewParser([]byte(tt.in))
		data, bin, err := p.Literal(tt.binOK)
		if tt.errSubstr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errSubstr) {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.errSubstr)
			}
			continue
		}
		if err != nil || string(data) != tt.want || bin != tt.binary || !p.AtEnd() {
			t.Errorf("%q: %q %v %v", tt.in, data, bin, err)
		}
	}
}

func TestListNesting(t *testing.T) {
	var walk func(p *Parser) error
	count := 0
	walk = func(p *Parser) error {
		if p.Peek() == '(' {
			return p.List(walk)
		}
		count++
		_, err := p.Atom()
		return err
	}
	p := NewParser([]byte("(a (b c) () ((d)))"))
	if err := p.List(walk); err != nil || count != 4 || p.End() != nil {
		t.Fatalf("err %v count %d", err, count)
	}
	for in, msg := range map[string]string{
		"(a  b)": "expected atom",
		"(a b":   "expected SP or ')'",
		"a":      "expected '('",
		"(a)x":   "",
	} {
		err := NewParser([]byte(in)).List(walk)
		if (msg == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), msg)) {
			t.Errorf("%q: %v, want %q", in, err, msg)
		}
	}
	// 100k nested parentheses: refused at the depth cap, no stack growth.
	deep := NewParser([]byte(strings.Repeat("(", 100000) + strings.Repeat(")", 100000)))
	if err := deep.List(walk); err == nil || !strings.Contains(err.Error(), "nested too deeply") {
		t.Fatalf("deep: %v", err)
	}
	ok := NewParser([]byte(strings.Repeat("(", DefaultDepth) + strings.Repeat(")", DefaultDepth)))
	if err := ok.List(walk); err != nil {
		t.Fatalf("depth %d: %v", DefaultDepth, err)
	}
}

func TestFlags(t *testing.T) {
	runTokens(t, "Flag", (*Parser).Flag, []tokenCase{
		{`\seen`, FlagSeen, "", ""},
		{`\ANSWERED x`, FlagAnswered, "", " x"},
		{`\Foo`, `\Foo`, "", ""},
		{`$Junk`, "$Junk", "", ""},
		{`\Recent`, "", `\Recent cannot be set`, ""},
		{`\*`, "", "expected flag", ""},
		{`\`, "", "expected flag", ""},
		{`"x"`, "", "expected flag", ""},
	})
	p := NewParser([]byte(`(\Seen $Forwarded \draft)`))
	flags, err := p.FlagList()
	if err != nil || strings.Join(flags, " ") != `\Seen $Forwarded \Draft` {
		t.Fatalf("FlagList = %q, %v", flags, err)
	}
	if flags, err := NewParser([]byte("()")).FlagList(); err != nil || len(flags) != 0 {
		t.Fatalf("empty FlagList = %q, %v", flags, err)
	}
}

func TestMailbox(t *testing.T) {
	runTokens(t, "Mailbox", (*Parser).Mailbox, []tokenCase{
		{"inbox", "INBOX", "", ""},
		{`"InBoX"`, "INBOX", "", ""},
		{"INBOX/Sub", "INBOX/Sub", "", ""},
		{"~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語", "", ""},
		{`"A &- B"`, "A & B", "", ""},
		{"{5}\r\nNotes", "Notes", "", ""},
		{"&Jjo!", "", "not valid modified UTF-7", ""},
		{"\"caf\xc3\xa9\"", "", "not valid modified UTF-7", ""},
		{"&AAA-", "", "control character", ""},
		{"NIL", "NIL", "", ""},
	})
	utf8Mailbox := func(p *Parser) (string, error) { p.SetUTF8(true); return p.Mailbox() }
	runTokens(t, "Mailbox(UTF-8)", utf8Mailbox, []tokenCase{
		{"\"caf\xc3\xa9\"", "café", "", ""},
		{"A&B", "A&B", "", ""},
		{"{2}\r\n\xff\xfe", "", "not UTF-8", ""},
		{"\"a\u2028b\"", "", "control character", ""},
		{"\"a\u0085b\"", "", "control character", ""},
	})
	runTokens(t, "ListMailbox", (*Parser).ListMailbox, []tokenCase{
		{"% x", "%", "", " x"},
		{"INBOX/*", "INBOX/*", "", ""},
		{"&ZeVnLIqe-/%", "日本語/%", "", ""},
		{`""`, "", "", ""},
		{"(", "", "expected mailbox pattern", ""},
	})
}

func TestParserSeqSet(t *testing.T) {
	p := NewParser([]byte("1:3,5,7:* FLAGS"))
	s, err := p.SeqSet()
	if err != nil || s.String() != "1:3,5,7:*" || p.Peek() != ' ' {
		t.Fatalf("SeqSet = %v, %v", s, err)
	}
	p = NewParser([]byte("1,0"))
	_, err = p.SeqSet()
	var se *SyntaxError
	if !errors.As(err, &se) || se.Offset != 2 {
		t.Fatalf("offset of the fault: %v", err)
	}
	if _, err := NewParser([]byte("FLAGS")).SeqSet(); err == nil {
		t.Fatal("no sequence set accepted")
	}
}

func TestParserDates(t *testing.T) {
	for in, want := range map[string]string{
		"1-Feb-1994":    "1994-02-01",
		`"01-feb-1994"`: "1994-02-01",
		"31-Dec-1999 x": "1999-12-31",
	} {
		d, err := NewParser([]byte(in)).Date()
		if err != nil || d.Format(time.DateOnly) != want {
			t.Errorf("Date(%q) = %v, %v", in, d, err)
		}
	}
	for _, in := range []string{"", "30-Feb-1994", `"1-Feb-1994`, "1-Feb-94", "1-Foo-1994"} {
		if _, err := NewParser([]byte(in)).Date(); err == nil {
			t.Errorf("Date(%q) accepted", in)
		}
	}
	dt, err := NewParser([]byte(`"17-Jul-1996 02:44:25 -0700"`)).DateTime()
	if err != nil || !dt.Equal(time.Date(1996, 7, 17, 9, 44, 25, 0, time.UTC)) {
		t.Fatalf("DateTime = %v, %v", dt, err)
	}
	for _, in := range []string{`17-Jul-1996 02:44:25 -0700`, `"17-Jul-1996 02:44:25 -0700`, `"17-Jul-1996"`, `"` + strings.Repeat("1", 1000)} {
		if _, err := NewParser([]byte(in)).DateTime(); err == nil {
			t.Errorf("DateTime(%q) accepted", in)
		}
	}
}

func TestParserEnd(t *testing.T) {
	p := NewParser([]byte("a "))
	p.Atom()
	if err := p.End(); err == nil {
		t.Fatal("trailing SP accepted")
	}
	if err := p.SP(); err != nil || p.End() != nil || p.SP() == nil {
		t.Fatal("SP/End")
	}
}

// TestFetchHandlerShape parses a FETCH item list the way a handler would, to
// check that the token methods compose for the contextual parts of the
// grammar (section, header list, partial).
func TestFetchHandlerShape(t *testing.T) {
	p := NewParser([]byte(` 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From {2}` + "\r\nTo" + `)]<0.100> UID)`))
	var items []string
	err := p.SP()
	if err == nil {
		_, err = p.SeqSet()
	}
	if err == nil {
		err = p.SP()
	}
	if err == nil {
		err = p.List(func(p *Parser) error {
			kw, err := p.Keyword()
			if err != nil {
				return err
			}
			items = append(items, kw)
			if !p.Accept('[') {
				return nil
			}
			sec, err := p.Keyword()
			if err != nil {
				return err
			}
			items = append(items, sec)
			if err := p.SP(); err != nil {
				return err
			}
			if err := p.List(func(p *Parser) error {
				h, err := p.AString()
				items = append(items, h)
				return err
			}); err != nil {
				return err
			}
			if err := p.Expect(']'); err != nil {
				return err
			}
			if p.Accept('<') {
				off, _ := p.Number64()
				p.Expect('.')
				n, err := p.NzNumber()
				if err != nil {
					return err
				}
				items = append(items, itoa(uint64(off))+"."+itoa(uint64(n)))
				return p.Expect('>')
			}
			return nil
		})
	}
	if err == nil {
		err = p.End()
	}
	if got := strings.Join(items, "|"); err != nil || got != "FLAGS|BODY.PEEK|HEADER.FIELDS|From|To|0.100|UID" {
		t.Fatalf("items %q, %v", got, err)
	}
}
