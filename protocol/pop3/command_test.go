package pop3

import (
	"errors"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line string
		want Command
		err  error
	}{
		{"STAT", Command{Verb: "STAT"}, nil},
		{"stat", Command{Verb: "STAT"}, nil},
		{"Top 1 10", Command{Verb: "TOP", Args: "1 10"}, nil},
		{"PASS  two  spaces ", Command{Verb: "PASS", Args: " two  spaces "}, nil},
		{"LIST ", Command{Verb: "LIST"}, nil},
		{"USER j\u00f6rg@example.org", Command{Verb: "USER", Args: "j\u00f6rg@example.org"}, nil},
		{"", Command{}, ErrEmptyCommand},
		{"STAT\x00", Command{}, ErrBadCharacter},
		{"STAT\r", Command{}, ErrBadCharacter},
		{"PASS a\tb", Command{}, ErrBadCharacter},
		{"LIST\x7f", Command{}, ErrBadCharacter},
		{"STARTTLS", Command{}, ErrUnknownCommand},
		{"ST", Command{}, ErrUnknownCommand},
		{"XTND", Command{}, ErrUnknownCommand},
		{" STAT", Command{}, ErrUnknownCommand},
		{"STAT\u00e9", Command{}, ErrUnknownCommand},
		{"APOP a b", Command{Verb: "APOP", Args: "a b"}, nil},
	}
	for _, tt := range tests {
		got, err := ParseCommand([]byte(tt.line))
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("ParseCommand(%q) = %+v, %v; want %+v, %v", tt.line, got, err, tt.want, tt.err)
		}
	}
}

func TestParseNumbers(t *testing.T) {
	msg := []struct {
		in   string
		n    int
		ok   bool
		line bool // ParseLineCount's ok
	}{
		{"1", 1, true, true},
		{"0", 0, false, true},
		{"007", 7, true, true},
		{"4294967295", 4294967295, true, true},
		{"9999999999", 9999999999, true, true},
		{"99999999999", 0, false, false},
		{"", 0, false, false},
		{"-1", 0, false, false},
		{"+1", 0, false, false},
		{"1 ", 0, false, false},
		{"0x1", 0, false, false},
	}
	for _, tt := range msg {
		n, ok := ParseMsgNumber(tt.in)
		if ok != tt.ok || (ok && n != tt.n) {
			t.Errorf("ParseMsgNumber(%q) = %d, %v", tt.in, n, ok)
		}
		if _, ok := ParseLineCount(tt.in); ok != tt.line {
			t.Errorf("ParseLineCount(%q) ok = %v", tt.in, ok)
		}
	}
}

func TestFields(t *testing.T) {
	if f := Fields(""); f != nil {
		t.Errorf("Fields(\"\") = %q", f)
	}
	if f := Fields("1  2"); len(f) != 3 || f[1] != "" {
		t.Errorf("Fields(\"1  2\") = %q", f)
	}
}

func TestReply(t *testing.T) {
	tests := []struct {
		r    Reply
		want string
	}{
		{OK(""), "+OK\r\n"},
		{OK("2 320"), "+OK 2 320\r\n"},
		{Err(CodeInUse, "Do you have another POP session running?"), "-ERR [IN-USE] Do you have another POP session running?\r\n"},
		{Err(CodeSysTemp, ""), "-ERR [SYS/TEMP]\r\n"},
		{Err("", "no such message"), "-ERR no such message\r\n"},
	}
	for _, tt := range tests {
		if got := string(tt.r.AppendTo(nil)); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.r, got, tt.want)
		}
		if got := tt.r.Error(); got+"\r\n" != tt.want {
			t.Errorf("%+v: Error() = %q", tt.r, got)
		}
	}
}

func TestParseCommandAllocs(t *testing.T) {
	line := []byte("STAT")
	if n := testing.AllocsPerRun(100, func() { ParseCommand(line) }); n != 0 {
		t.Errorf("ParseCommand allocates %v times for a command without arguments", n)
	}
}
