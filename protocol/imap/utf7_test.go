package imap

import (
	"errors"
	"testing"
)

func TestUTF7(t *testing.T) {
	// RFC 3501 5.1.3 and RFC 9051 A.1 examples, and edge cases.
	pairs := []struct{ utf8, utf7 string }{
		{"", ""},
		{"INBOX", "INBOX"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"台北日本語", "&U,BTF2XlZyyKng-"},
		{"☺!", "&Jjo-!"},
		{"&", "&-"},
		{"A&B&&", "A&-B&-&-"},
		{"☺&", "&Jjo-&-"},
		{"ä", "&AOQ-"},
		{"\x00", "&AAA-"},
		{"\t", "&AAk-"},
		{"\U0001F600", "&2D3eAA-"}, // surrogate pair
		{"a\U0001F600b€", "a&2D3eAA-b&IKw-"},
		{"Entw\u00fcrfe", "Entw&APw-rfe"},
	}
	for _, p := range pairs {
		if got := EncodeUTF7(p.utf8); got != p.utf7 {
			t.Errorf("EncodeUTF7(%q) = %q, want %q", p.utf8, got, p.utf7)
		}
		if got, err := DecodeUTF7(p.utf7); err != nil || got != p.utf8 {
			t.Errorf("DecodeUTF7(%q) = %q, %v, want %q", p.utf7, got, err, p.utf8)
		}
	}
	bad := []string{
		"&Jjo!",              // no shift back before "!" (RFC 9051 A.1)
		"&U,BTFw-&ZeVnLIqe-", // superfluous shift (RFC 9051 A.1)
		"&AGE-",              // "a" encoded
		"&ACY-",              // "&" encoded
		"&",                  // unterminated
		"&Jjo",               // unterminated
		"&Jj-",               // leftover bits not a whole unit
		"&Jjp-",              // non-zero padding bits
		"&JjoA-",             // a superfluous sixth-bit char
		"&2D0-",              // lone high surrogate
		"&3gA-",              // lone low surrogate
		"&2D3YPQ-",           // high surrogate followed by a high one
		"&Jj/-",              // "/" is not modified base64
		"&Jj=-",              // padding
		"caf\xc3\xa9",        // 8-bit octets must be encoded
		"a\tb",               // so must controls
		"a\x7fb",
	}
	for _, s := range bad {
		if got, err := DecodeUTF7(s); !errors.Is(err, ErrUTF7) {
			t.Errorf("DecodeUTF7(%q) = %q, %v; want ErrUTF7", s, got, err)
		}
	}
	if got := EncodeUTF7("a\xffb"); got != "a&,,0-b" {
		t.Errorf("invalid UTF-8 encodes as U+FFFD: %q", got)
	}
}

func TestUTF7NoAllocationForASCII(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		EncodeUTF7("INBOX/Sent Items")
		DecodeUTF7("INBOX/Sent Items")
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
