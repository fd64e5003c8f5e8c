package imap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"
)

// conn is a fake client: the decoder reads in, and continuation requests
// are counted.
type conn struct {
	dec   *Decoder
	conts int
}

func newConn(in string, lim Limits) *conn {
	return &conn{dec: NewDecoder(bufio.NewReaderSize(strings.NewReader(in), 4096), lim)}
}

func (c *conn) cont() error { c.conts++; return nil }

func (c *conn) read(t *testing.T) Command {
	t.Helper()
	cmd, err := c.dec.ReadCommand(c.cont)
	if err != nil {
		t.Fatalf("ReadCommand: %v", err)
	}
	return cmd
}

func (c *conn) readErr(t *testing.T) *DecodeError {
	t.Helper()
	_, err := c.dec.ReadCommand(c.cont)
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("ReadCommand error = %v, want *DecodeError", err)
	}
	return de
}

func TestReadCommandForms(t *testing.T) {
	tests := []struct {
		name, in        string
		tag, cmd, bytes string
		conts           int
	}{
		{"simple", "a1 NOOP\r\n", "a1", "NOOP", "a1 NOOP\r\n", 0},
		{"lower-case name", "a1 noop\r\n", "a1", "NOOP", "a1 noop\r\n", 0},
		{"uid prefix", "x uid fetch 1:* FLAGS\r\n", "x", "UID FETCH", "x uid fetch 1:* FLAGS\r\n", 0},
		{"uid alone", "x UID\r\n", "x", "UID", "x UID\r\n", 0},
		{"bare LF", "a NOOP\n", "a", "NOOP", "a NOOP\r\n", 0},
		{"sync literals", "a LOGIN {4}\r\nfred {3}\r\nfoo\r\n", "a", "LOGIN",
			"a LOGIN {4}\r\nfred {3}\r\nfoo\r\n", 2},
		{"LITERAL+", "a LOGIN {4+}\r\nfred {3+}\r\nfoo\r\n", "a", "LOGIN",
			"a LOGIN {4+}\r\nfred {3+}\r\nfoo\r\n", 0},
		{"empty literals", "a LOGIN {0}\r\n {0+}\r\n\r\n", "a", "LOGIN", "a LOGIN {0}\r\n {0+}\r\n\r\n", 1},
		{"literal with CRLF inside", "a X {4}\r\n\r\n\r\n\r\n", "a", "X", "a X {4}\r\n\r\n\r\n\r\n", 1},
		{"literal8", "a APPEND INBOX ~{3}\r\na\x00b\r\n", "a", "APPEND", "a APPEND INBOX ~{3}\r\na\x00b\r\n", 1},
		{"marker mid-line is not a literal", "a X {3} y\r\n", "a", "X", "a X {3} y\r\n", 0},
		{"tag with ]", "a] NOOP\r\n", "a]", "NOOP", "a] NOOP\r\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConn(tt.in, Limits{})
			cmd := c.read(t)
			if cmd.Tag != tt.tag || cmd.Name != tt.cmd || string(cmd.Bytes()) != tt.bytes || c.conts != tt.conts {
				t.Errorf("got tag %q name %q bytes %q conts %d; want %q %q %q %d",
					cmd.Tag, cmd.Name, cmd.Bytes(), c.conts, tt.tag, tt.cmd, tt.bytes, tt.conts)
			}
			if _, err := c.dec.ReadCommand(c.cont); err != io.EOF {
				t.Errorf("after the command: %v, want io.EOF", err)
			}
		})
	}
}

func TestReadCommandArgs(t *testing.T) {
	c := newConn("a LOGIN {4}\r\nfred {7+}\r\nfat man\r\nb APPEND inbox (\\Seen) ~{3}\r\na\x00b\r\n", Limits{})
	cmd := c.read(t)
	p := cmd.Args()
	var user, pass string
	err := p.SP()
	if err == nil {
		user, err = p.AString()
	}
	if err == nil {
		err = p.SP()
	}
	if err == nil {
		pass, err = p.AString()
	}
	if err == nil {
		err = p.End()
	}
	if err != nil || user != "fred" || pass != "fat man" {
		t.Fatalf("LOGIN args %q %q: %v", user, pass, err)
	}

	cmd = c.read(t)
	p = cmd.Args()
	if err := p.SP(); err != nil {
		t.Fatal(err)
	}
	mbox, err := p.Mailbox()
	if err != nil || mbox != "INBOX" {
		t.Fatalf("Mailbox = %q, %v", mbox, err)
	}
	p.SP()
	flags, err := p.FlagList()
	if err != nil || len(flags) != 1 || flags[0] != FlagSeen {
		t.Fatalf("FlagList = %q, %v", flags, err)
	}
	p.SP()
	data, binary, err := p.Literal(true)
	if err != nil || !binary || string(data) != "a\x00b" || p.End() != nil {
		t.Fatalf("Literal = %q %v %v", data, binary, err)
	}
}

func TestReadCommandPipelined(t *testing.T) {
	c := newConn("a NOOP\r\nb LOGIN {1+}\r\nx y\r\nc LOGOUT\r\n", Limits{})
	for _, want := range []string{"NOOP", "LOGIN", "LOGOUT"} {
		if cmd := c.read(t); cmd.Name != want {
			t.Fatalf("got %q, want %q", cmd.Name, want)
		}
	}
}

func TestReadCommandEOF(t *testing.T) {
	for in, want := range map[string]error{
		"":                   io.EOF,
		"a NOOP":             io.ErrUnexpectedEOF,
		"a LOGIN {5}\r\nab":  io.ErrUnexpectedEOF,
		"a LOGIN {2}\r\nab":  io.ErrUnexpectedEOF,
		"a LOGIN {2+}\r\nab": io.ErrUnexpectedEOF,
	} {
		c := newConn(in, Limits{})
		if _, err := c.dec.ReadCommand(c.cont); err != want {
			t.Errorf("%q: %v, want %v", in, err, want)
		}
	}
}

func TestReadCommandContinueError(t *testing.T) {
	boom := errors.New("write failed")
	d := NewDecoder(bufio.NewReader(strings.NewReader("a LOGIN {1}\r\nx y\r\n")), Limits{})
	if _, err := d.ReadCommand(func() error { return boom }); err != boom {
		t.Fatalf("got %v, want the continuation's error", err)
	}
}

func TestReadCommandRefused(t *testing.T) {
	big := strings.Repeat("x", 5000)
	deep := "a X " + strings.Repeat("(", 33) + "\r\n"
	many := "a FETCH " + strings.Repeat("1,", DefaultArgs) + "1 FLAGS\r\n"
	refuseUnknown := func(cmd string, arg int) int64 {
		if cmd == "LOGIN" || cmd == "APPEND" {
			return DefaultLiteral
		}
		return -1
	}
	tests := []struct {
		name   string
		in     string
		lim    Limits
		err    error
		tag    string
		inSync bool
		status Status
		code   Code
	}{
		{"line too long", "a NOOP " + strings.Repeat("x", MinLine) + "\r\nb NOOP\r\n", Limits{Line: 100},
			ErrLineTooLong, "", false, StatusBYE, ""},
		{"sync literal too large", "a LOGIN {65537}\r\nb NOOP\r\n", Limits{},
			ErrLiteralTooLarge, "a", true, StatusNO, CodeTooBig},
		{"4000000000 octets", "a LOGIN {4000000000}\r\nb NOOP\r\n", Limits{},
			ErrLiteralTooLarge, "a", true, StatusNO, CodeTooBig},
		{"size beyond int64", "a LOGIN {99999999999999999999999}\r\nb NOOP\r\n", Limits{},
			ErrLiteralTooLarge, "a", true, StatusNO, CodeTooBig},
		{"LITERAL- cap, drained", "a LOGIN {5000+}\r\n" + big + " {3+}\r\nabc\r\nb NOOP\r\n", Limits{},
			ErrNonSyncTooLarge, "a", true, StatusBAD, CodeTooBig},
		{"LITERAL- cap then sync literal", "a LOGIN {5000+}\r\n" + big + " {3}\r\nb NOOP\r\n", Limits{},
			ErrNonSyncTooLarge, "a", true, StatusBAD, CodeTooBig},
		{"LITERAL- cap, not drainable", "a LOGIN {5000+}\r\n" + big + "\r\nb NOOP\r\n", Limits{Drain: 1000},
			ErrNonSyncTooLarge, "a", false, StatusBYE, CodeTooBig},
		{"4000000000 octets non-sync", "a LOGIN {4000000000+}\r\n", Limits{},
			ErrNonSyncTooLarge, "a", false, StatusBYE, CodeTooBig},
		{"LITERAL+ over literal limit, drained", "a LOGIN {70000+}\r\n" + strings.Repeat("y", 70000) + "\r\nb NOOP\r\n",
			Limits{NonSync: math.MaxInt64}, ErrLiteralTooLarge, "a", true, StatusNO, CodeTooBig},
		{"unknown command literal", "a BLURDYBLOOP {102856}\r\nb NOOP\r\n", Limits{LiteralLimit: refuseUnknown},
			ErrLiteralRefused, "a", true, StatusBAD, ""},
		{"command too large", "a APPEND x {900000}\r\nb NOOP\r\n",
			Limits{Command: 100000, LiteralLimit: func(string, int) int64 { return 1 << 20 }},
			ErrCommandTooLarge, "a", true, StatusNO, CodeTooBig},
		{"too deep", deep + "b NOOP\r\n", Limits{}, ErrTooDeep, "a", true, StatusBAD, ""},
		{"too deep, literal drained", "a X (((( {2+}\r\n))\r\nb NOOP\r\n", Limits{Depth: 3},
			ErrTooDeep, "a", true, StatusBAD, ""},
		{"too many items", many + "b NOOP\r\n", Limits{}, ErrTooManyArgs, "a", true, StatusBAD, ""},
		{"bad tag", "+ NOOP\r\nb NOOP\r\n", Limits{}, ErrBadTag, "", true, StatusBAD, ""},
		{"bad tag before literal", "a{ LOGIN {5}\r\nb NOOP\r\n", Limits{}, ErrBadTag, "", true, StatusBAD, ""},
		{"empty line", "\r\nb NOOP\r\n", Limits{}, ErrBadTag, "", true, StatusBAD, ""},
		{"no command name", "a\r\nb NOOP\r\n", Limits{}, ErrBadCommandName, "a", true, StatusBAD, ""},
		{"double space", "a  NOOP\r\nb NOOP\r\n", Limits{}, ErrBadCommandName, "a", true, StatusBAD, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConn(tt.in, tt.lim)
			de := c.readErr(t)
			if de.Err != tt.err || de.Tag != tt.tag || de.InSync != tt.inSync {
				t.Fatalf("got %v tag %q inSync %v; want %v %q %v", de.Err, de.Tag, de.InSync, tt.err, tt.tag, tt.inSync)
			}
			if !errors.Is(de, tt.err) {
				t.Errorf("errors.Is(%v, %v) = false", de, tt.err)
			}
			if st, code := de.Response(); st != tt.status || code != tt.code {
				t.Errorf("Response = %s %q, want %s %q", st, code, tt.status, tt.code)
			}
			if c.conts != 0 {
				t.Errorf("%d continuation requests sent for a refused literal", c.conts)
			}
			if tt.inSync {
				if cmd := c.read(t); cmd.Tag != "b" || cmd.Name != "NOOP" {
					t.Errorf("next command %q %q, want b NOOP", cmd.Tag, cmd.Name)
				}
			}
		})
	}
}

func TestLineLimits(t *testing.T) {
	// RFC 7162 4: 8192 octets must always fit, whatever the configuration.
	line := "a X " + strings.Repeat("x", MinLine-4) + "\r\n"
	c := newConn(line, Limits{Line: 10})
	if cmd := c.read(t); len(cmd.Bytes()) != MinLine+2 {
		t.Fatalf("got %d octets", len(cmd.Bytes()))
	}
	c = newConn("a X "+strings.Repeat("x", MinLine-3)+"\n", Limits{Line: 10})
	if de := c.readErr(t); de.Err != ErrLineTooLong {
		t.Fatalf("got %v", de.Err)
	}
}

func TestNestingHuge(t *testing.T) {
	in := "a SEARCH " + strings.Repeat("(", 100000) + strings.Repeat(")", 100000) + "\r\n"
	if de := newConn(in, Limits{}).readErr(t); de.Err != ErrLineTooLong {
		t.Errorf("default limits: %v", de.Err)
	}
	if de := newConn(in, Limits{Line: 1 << 20}).readErr(t); de.Err != ErrTooDeep || !de.InSync {
		t.Errorf("large line limit: %v in sync %v", de.Err, de.InSync)
	}
}

func TestLiteralLimitArguments(t *testing.T) {
	type call struct {
		cmd string
		arg int
	}
	var calls []call
	lim := Limits{LiteralLimit: func(cmd string, arg int) int64 {
		calls = append(calls, call{cmd, arg})
		if cmd == "APPEND" && arg > 0 {
			return 1 << 20
		}
		return 16
	}, Command: 2 << 20}
	msg := strings.Repeat("m", 300000)
	c := newConn("a APPEND {5}\r\nINBOX (\\Seen) \"01-Jan-2000 00:00:00 +0000\" {300000}\r\n"+msg+"\r\n"+
		"b UID FETCH 1 (BODY[HEADER.FIELDS ({4}\r\nFrom)])\r\n", lim)
	cmd := c.read(t)
	p := cmd.Args()
	p.SP()
	if _, err := p.Mailbox(); err != nil {
		t.Fatal(err)
	}
	p.SP()
	if _, err := p.FlagList(); err != nil {
		t.Fatal(err)
	}
	p.SP()
	if _, err := p.DateTime(); err != nil {
		t.Fatal(err)
	}
	p.SP()
	if data, _, err := p.Literal(false); err != nil || len(data) != len(msg) || p.End() != nil {
		t.Fatalf("APPEND literal: %d octets, %v", len(data), err)
	}
	c.read(t)
	want := []call{{"APPEND", 0}, {"APPEND", 3}, {"UID FETCH", 1}}
	if len(calls) != len(want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("call %d: %v, want %v", i, calls[i], want[i])
		}
	}
}

func TestAppendLiteralLimit(t *testing.T) {
	lim := Limits{Command: 4 << 20, LiteralLimit: AppendLiteralLimit(DefaultLiteral, 2<<20)}
	msg := strings.Repeat("m", 1<<20)
	c := newConn("a APPEND {5+}\r\nINBOX {1048576}\r\n"+msg+"\r\nb LOGIN {70000}\r\nc APPEND {70000}\r\n", lim)
	if cmd := c.read(t); len(cmd.Bytes()) < 1<<20 {
		t.Fatalf("APPEND message cut: %d", len(cmd.Bytes()))
	}
	for _, tag := range []string{"b", "c"} { // a LOGIN argument and an APPEND mailbox
		if de := c.readErr(t); de.Err != ErrLiteralTooLarge || de.Tag != tag || !de.InSync {
			t.Fatalf("got %v %q", de.Err, de.Tag)
		}
	}
}

func TestNilContinueRefusesSyncLiterals(t *testing.T) {
	d := NewDecoder(bufio.NewReader(strings.NewReader("a LOGIN {1}\r\nb LOGIN {1+}\r\nx y\r\n")), Limits{})
	_, err := d.ReadCommand(nil)
	if !errors.Is(err, ErrLiteralRefused) {
		t.Fatalf("got %v", err)
	}
	if cmd, err := d.ReadCommand(nil); err != nil || cmd.Tag != "b" {
		t.Fatalf("non-sync literal: %v", err)
	}
}

func TestReadLine(t *testing.T) {
	d := NewDecoder(bufio.NewReader(strings.NewReader("dGVzdA==\r\nDONE\n"+strings.Repeat("x", 70000)+"\r\n")), Limits{})
	for _, want := range []string{"dGVzdA==", "DONE"} {
		if line, err := d.ReadLine(); err != nil || string(line) != want {
			t.Fatalf("ReadLine = %q, %v", line, err)
		}
	}
	if _, err := d.ReadLine(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("long line: %v", err)
	}
}

// TestHugeLiteralAllocatesNothing: "a LOGIN {4000000000}" is refused before
// anything is allocated for it (ROBUSTNESS.md).
func TestHugeLiteralAllocatesNothing(t *testing.T) {
	for _, in := range []string{"a LOGIN {4000000000}\r\n", "a LOGIN {4000000000+}\r\n"} {
		src := []byte(in)
		r := bytes.NewReader(src)
		br := bufio.NewReader(r)
		d := NewDecoder(br, Limits{})
		run := func() {
			r.Reset(src)
			br.Reset(r)
			if _, err := d.ReadCommand(func() error { return nil }); !errors.Is(err, ErrLiteralTooLarge) && !errors.Is(err, ErrNonSyncTooLarge) {
				t.Fatalf("%q: %v", in, err)
			}
		}
		run()
		if n := testing.AllocsPerRun(100, run); n > 4 {
			t.Errorf("%q: %v allocations per command", in, n)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 100 {
			run()
		}
		runtime.ReadMemStats(&after)
		if d := after.TotalAlloc - before.TotalAlloc; d > 100*1024 {
			t.Errorf("%q: %d bytes allocated for 100 commands", in, d)
		}
	}
}

// TestAcceptedLiteralGrowsWithData: a large accepted literal whose octets
// never come costs memory only for what arrived.
func TestAcceptedLiteralGrowsWithData(t *testing.T) {
	lim := Limits{Command: 1 << 30, LiteralLimit: func(string, int) int64 { return 1 << 30 }}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c := newConn("a APPEND INBOX {500000000}\r\nonly a few octets", lim)
	if _, err := c.dec.ReadCommand(c.cont); err != io.ErrUnexpectedEOF {
		t.Fatalf("got %v", err)
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Errorf("%d bytes allocated", d)
	}
}

func TestBufferNotKeptAfterLargeCommand(t *testing.T) {
	lim := Limits{LiteralLimit: func(string, int) int64 { return 1 << 20 }}
	c := newConn("a APPEND INBOX {600000}\r\n"+strings.Repeat("z", 600000)+"\r\nb NOOP\r\n", lim)
	c.read(t)
	c.read(t)
	if cap(c.dec.buf) > maxKeptCapacity {
		t.Errorf("buffer of %d octets kept", cap(c.dec.buf))
	}
}

func TestFindLiteral(t *testing.T) {
	tests := []struct {
		line             string
		present, ns, bin bool
		size             int64
		start            int
	}{
		{"a {5}", true, false, false, 5, 2},
		{"a {5+}", true, true, false, 5, 2},
		{"a ~{5}", true, false, true, 5, 2},
		{"{0}", true, false, false, 0, 0},
		{"a {}", false, false, false, 0, 0},
		{"a {+}", false, false, false, 0, 0},
		{"a 5}", false, false, false, 0, 0},
		{"a {5 }", false, false, false, 0, 0},
		{"a {5}x", false, false, false, 0, 0},
		{"a {99999999999999999999}", true, false, false, math.MaxInt64, 2},
	}
	for _, tt := range tests {
		l := findLiteral([]byte(tt.line))
		if l.present != tt.present || l.nonSync != tt.ns || l.binary != tt.bin || l.size != tt.size || l.start != tt.start {
			t.Errorf("%q: %+v", tt.line, l)
		}
	}
}
