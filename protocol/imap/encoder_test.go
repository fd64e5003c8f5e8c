package imap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func newTestEncoder() (*Encoder, *bytes.Buffer) {
	var out bytes.Buffer
	return NewEncoder(bufio.NewWriterSize(&out, 64)), &out
}

// encode runs write on a fresh Encoder and returns the output and error.
func encode(utf8On bool, write func(e *Encoder)) (string, error) {
	e, out := newTestEncoder()
	e.SetUTF8(utf8On)
	write(e)
	err := e.Flush()
	return out.String(), err
}

func TestEncoderStrings(t *testing.T) {
	long := strings.Repeat("a", maxQuoted+1)
	tests := []struct {
		name  string
		utf8  bool
		write func(e *Encoder)
		want  string
		err   error
	}{
		{"quoted escapes", false, func(e *Encoder) { e.String(`say "hi" \o/`) }, `"say \"hi\" \\o/"`, nil},
		{"quoted empty", false, func(e *Encoder) { e.String("") }, `""`, nil},
		{"CRLF as literal", false, func(e *Encoder) { e.String("a\r\nb") }, "{4}\r\na\r\nb", nil},
		{"8-bit as literal before UTF-8", false, func(e *Encoder) { e.String("café") }, "{5}\r\ncafé", nil},
		{"UTF-8 quoted once enabled", true, func(e *Encoder) { e.String("café") }, `"café"`, nil},
		{"invalid UTF-8 as literal", true, func(e *Encoder) { e.String("a\xffb") }, "{3}\r\na\xffb", nil},
		{"long as literal", false, func(e *Encoder) { e.String(long) }, "{1025}\r\n" + long, nil},
		{"NUL refused", false, func(e *Encoder) { e.String("a\x00b") }, "", ErrBinaryString},
		{"controls quoted", false, func(e *Encoder) { e.String("a\tb") }, "\"a\tb\"", nil},
		{"astring atom", false, func(e *Encoder) { e.AString("Sent]") }, "Sent]", nil},
		{"astring space", false, func(e *Encoder) { e.AString("Sent Items") }, `"Sent Items"`, nil},
		{"astring NIL quoted", false, func(e *Encoder) { e.AString("nil") }, `"nil"`, nil},
		{"astring empty", false, func(e *Encoder) { e.AString("") }, `""`, nil},
		{"astring wildcard", false, func(e *Encoder) { e.AString("a*") }, `"a*"`, nil},
		{"nstring nil", false, func(e *Encoder) { e.NString("x", false) }, "NIL", nil},
		{"nstring", false, func(e *Encoder) { e.NString("NIL", true) }, `"NIL"`, nil},
		{"quoted forced", false, func(e *Encoder) { e.Quoted("/") }, `"/"`, nil},
		{"quoted impossible", false, func(e *Encoder) { e.Quoted("a\nb") }, "", ErrNotQuotable},
		{"literal", false, func(e *Encoder) { e.Literal([]byte("hello")) }, "{5}\r\nhello", nil},
		{"literal empty", false, func(e *Encoder) { e.Literal(nil) }, "{0}\r\n", nil},
		{"literal8", false, func(e *Encoder) { e.Literal8([]byte("a\x00b")) }, "~{3}\r\na\x00b", nil},
		{"literal from reader", false, func(e *Encoder) { e.LiteralFrom(strings.NewReader("abcdef"), 4, false) }, "{4}\r\nabcd", nil},
		{"literal from short reader", false, func(e *Encoder) { e.LiteralFrom(strings.NewReader("ab"), 4, true) }, "", ErrShortLiteral},
		{"atom", false, func(e *Encoder) { e.Atom("FETCH") }, "FETCH", nil},
		{"not an atom", false, func(e *Encoder) { e.Atom("a b") }, "", ErrNotAtom},
		{"raw", false, func(e *Encoder) { e.Raw("BODY[1.2]<0>") }, "BODY[1.2]<0>", nil},
		{"raw CRLF", false, func(e *Encoder) { e.Raw("a\r\n* BYE") }, "", ErrBadRaw},
		{"numbers", false, func(e *Encoder) { e.Number(4294967295).SP().Number64(9223372036854775807) }, "4294967295 9223372036854775807", nil},
		{"negative", false, func(e *Encoder) { e.Number64(-1) }, "", ErrNegative},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encode(tt.utf8, tt.write)
			if !errors.Is(err, tt.err) || (tt.err == nil && got != tt.want) {
				t.Errorf("got %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestEncoderMailbox(t *testing.T) {
	tests := []struct {
		name string
		utf8 bool
		want string
	}{
		{"inbox", false, "INBOX"},
		{"~peter/mail/台北/日本語", false, "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"~peter/mail/台北/日本語", true, `"~peter/mail/台北/日本語"`},
		{"A & B", false, `"A &- B"`},
		{"A&B", true, "A&B"},
		{"NIL", false, `"NIL"`},
		{"", false, `""`},
	}
	for _, tt := range tests {
		got, err := encode(tt.utf8, func(e *Encoder) { e.Mailbox(tt.name) })
		if err != nil || got != tt.want {
			t.Errorf("Mailbox(%q, utf8 %v) = %q, %v; want %q", tt.name, tt.utf8, got, err, tt.want)
		}
		// What the encoder writes, the parser reads back.
		p := NewParser([]byte(got))
		p.SetUTF8(tt.utf8)
		back, err := p.Mailbox()
		want := tt.name
		if equalFoldASCII(want, "INBOX") {
			want = "INBOX"
		}
		if err != nil || back != want || !p.AtEnd() {
			t.Errorf("parse %q = %q, %v", got, back, err)
		}
	}
}

func TestEncoderResponses(t *testing.T) {
	date := time.Date(1996, 7, 17, 2, 44, 25, 0, time.FixedZone("", -7*3600))
	set, _ := ParseSeqSet("304,319:320")
	tests := []struct {
		name  string
		write func(e *Encoder) error
		want  string
	}{
		{"tagged OK with code", func(e *Encoder) error {
			return e.StatusResponse("A142", StatusOK, CodeReadWrite, "SELECT completed")
		}, "A142 OK [READ-WRITE] SELECT completed\r\n"},
		{"untagged with code args", func(e *Encoder) error {
			return e.StatusResponse("", StatusOK, Code("UIDNEXT 4392"), "Predicted next UID")
		}, "* OK [UIDNEXT 4392] Predicted next UID\r\n"},
		{"NO TOOBIG", func(e *Encoder) error {
			return e.StatusResponse("a", StatusNO, CodeTooBig, "")
		}, "a NO [TOOBIG] NO\r\n"},
		{"text sanitised", func(e *Encoder) error {
			return e.StatusResponse("a", StatusBAD, "", "bad\r\n* OK injected\x00 é")
		}, "a BAD bad  * OK injected  ?\r\n"},
		{"code built from tokens", func(e *Encoder) error {
			return e.Tagged("A003").Atom("OK").SP().BeginCode(CodeCopyUID).SP().Number(38505).SP().
				SeqSet(set).SP().Raw("3956:3958").EndCode().SP().Text("Done").CRLF()
		}, "A003 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"},
		{"permanent flags", func(e *Encoder) error {
			return e.Untagged().Atom("OK").SP().BeginCode(CodePermanentFlags).SP().
				FlagList([]string{FlagDeleted, FlagSeen, FlagWildcard}).EndCode().SP().Text("Limited").CRLF()
		}, "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"},
		{"fetch", func(e *Encoder) error {
			return e.Untagged().Number(12).SP().Atom("FETCH").SP().BeginList().
				Atom("FLAGS").SP().FlagList([]string{FlagSeen, "$Junk"}).SP().
				Atom("INTERNALDATE").SP().DateTime(date).SP().
				Atom("RFC822.SIZE").SP().Number64(44827).SP().
				Raw("BODY[HEADER]").SP().Literal([]byte("Subject: x\r\n\r\n")).SP().
				Raw("BINARY[1]").SP().Literal8([]byte{0, 1}).SP().
				Atom("ENVELOPE").SP().BeginList().String("Wed, 17 Jul 1996").SP().Nil().EndList().
				EndList().CRLF()
		}, "* 12 FETCH (FLAGS (\\Seen $Junk) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 44827 " +
			"BODY[HEADER] {14}\r\nSubject: x\r\n\r\n BINARY[1] ~{2}\r\n\x00\x01 ENVELOPE (\"Wed, 17 Jul 1996\" NIL))\r\n"},
		{"esearch", func(e *Encoder) error {
			var all SeqSet
			for _, n := range []uint32{2, 3, 4, 10} {
				all.AddNum(n)
			}
			return e.Untagged().Atom("ESEARCH").SP().Raw("(TAG ").Quoted("A282").Raw(")").SP().
				Atom("UID").SP().Atom("ALL").SP().SeqSet(all).CRLF()
		}, "* ESEARCH (TAG \"A282\") UID ALL 2:4,10\r\n"},
		{"search date", func(e *Encoder) error { return e.Atom("SINCE").SP().Date(date).CRLF() }, "SINCE 17-Jul-1996\r\n"},
		{"continue", func(e *Encoder) error { return e.Continue("Ready") }, "+ Ready\r\n"},
		{"continue base64", func(e *Encoder) error { return e.ContinueBase64([]byte("test")) }, "+ dGVzdA==\r\n"},
		{"continue empty challenge", func(e *Encoder) error { return e.ContinueBase64(nil) }, "+ \r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, out := newTestEncoder()
			if err := tt.write(e); err != nil {
				t.Fatal(err)
			}
			if err := e.Flush(); err != nil || out.String() != tt.want {
				t.Errorf("got  %q, %v\nwant %q", out.String(), err, tt.want)
			}
		})
	}
}

func TestEncoderErrorsStick(t *testing.T) {
	for name, write := range map[string]func(e *Encoder) error{
		"bad tag":         func(e *Encoder) error { return e.Tagged("a b").Atom("OK").CRLF() },
		"plus tag":        func(e *Encoder) error { return e.Tagged("+").Atom("OK").CRLF() },
		"bad code":        func(e *Encoder) error { return e.StatusResponse("a", StatusOK, Code("A]B C"), "x") },
		"bracket in args": func(e *Encoder) error { return e.StatusResponse("a", StatusOK, Code("A B]"), "x") },
		"bad flag":        func(e *Encoder) error { return e.FlagList([]string{"\\"}).CRLF() },
		"flag with SP":    func(e *Encoder) error { return e.Flag("a b").CRLF() },
		"empty set":       func(e *Encoder) error { return e.SeqSet(SeqSet{}).CRLF() },
	} {
		e, out := newTestEncoder()
		err := write(e)
		if err == nil || e.Flush() != err {
			t.Errorf("%s: %v", name, err)
		}
		if strings.Contains(out.String(), "\r\n") {
			t.Errorf("%s: a line was completed after the error: %q", name, out.String())
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestEncoderWriteError(t *testing.T) {
	e := NewEncoder(bufio.NewWriterSize(failWriter{}, 16))
	err := e.Untagged().String(strings.Repeat("x", 100)).CRLF()
	if !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("got %v", err)
	}
}

// TestEncoderNoAllocation: a typical FETCH response line allocates nothing.
func TestEncoderNoAllocation(t *testing.T) {
	e := NewEncoder(bufio.NewWriter(io.Discard))
	flags := []string{FlagSeen, FlagFlagged}
	date := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	set := SeqSet{Ranges: []SeqRange{{1, 100}}}
	body := []byte("Subject: hi\r\n\r\n")
	n := testing.AllocsPerRun(1000, func() {
		e.Untagged().Number(4711).SP().Atom("FETCH").SP().BeginList().
			Atom("UID").SP().Number(99).SP().Atom("FLAGS").SP().FlagList(flags).SP().
			Atom("INTERNALDATE").SP().DateTime(date).SP().
			Raw("BODY[HEADER]").SP().Literal(body).SP().Atom("X").SP().SeqSet(set).SP().
			AString("Sent Items").SP().Mailbox("Entwürfe").EndList().CRLF()
	})
	if n != 0 {
		t.Errorf("%v allocations per response", n)
	}
}
