package textline

import (
	"bytes"
	"testing"
)

func TestCanonicalCRLF(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\rb", "a\r\nb"},
		{"a\r\r\nb", "a\r\n\r\nb"},
		{"\n", "\r\n"},
		{"x\r", "x\r\n"},
		{"mixed\r\nlf\nend", "mixed\r\nlf\r\nend"},
	} {
		if got := CanonicalCRLF([]byte(tc.in)); string(got) != tc.want {
			t.Errorf("CanonicalCRLF(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	clean := []byte("already\r\ncanonical\r\n")
	if got := CanonicalCRLF(clean); &got[0] != &clean[0] {
		t.Error("a canonical input was copied")
	}
}

func FuzzCanonicalCRLF(f *testing.F) {
	for _, s := range []string{"", "a\nb", "a\r\nb", "\r", "\r\r\n\n", "x\ry\nz\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := CanonicalCRLF(in)
		if hasBareLineEnd(out) {
			t.Fatalf("bare line end left in %q", out)
		}
		if !bytes.Equal(CanonicalCRLF(out), out) {
			t.Fatal("not idempotent")
		}
		strip := func(b []byte) []byte {
			return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r"), nil), []byte("\n"), nil)
		}
		if !bytes.Equal(strip(in), strip(out)) {
			t.Fatal("content other than line ends changed")
		}
	})
}
