package mailbox

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeAddress(t *testing.T) {
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"user@example.org", "user@example.org", true},
		{"User@Example.ORG", "user@example.org", true},
		{"first.last+tag@sub.example.org", "first.last+tag@sub.example.org", true},
		{"o'hara!#$%&*/=?^_`{|}~-@x.y", "o'hara!#$%&*/=?^_`{|}~-@x.y", true},
		{"Jörg@Bücher.example", "jörg@bücher.example", true},
		{"a@b", "a@b", true},
		{long, long, true}, // 254 octets
		{long + "d", "", false},
		{strings.Repeat("a", 65) + "@x.org", "", false},
		{"", "", false},
		{"user", "", false},
		{"@example.org", "", false},
		{"user@", "", false},
		{"a@b@c", "", false},
		{"us er@example.org", "", false},
		{"user@exa mple.org", "", false},
		{"user\t@example.org", "", false},
		{"user\x00@example.org", "", false},
		{"user\x7f@example.org", "", false},
		{"user\u0085@example.org", "", false}, // C1 control
		{"user\u00a0@example.org", "", false}, // no-break space
		{"\"quoted\"@example.org", "", false},
		{"a(b)@example.org", "", false},
		{"a<b@example.org", "", false},
		{"a,b@example.org", "", false},
		{".user@example.org", "", false},
		{"user.@example.org", "", false},
		{"us..er@example.org", "", false},
		{"user@.example.org", "", false},
		{"user@example.org.", "", false},
		{"user@example..org", "", false},
		{"user@-example.org", "", false},
		{"user@[127.0.0.1]", "", false},
		{"user@exa/mple.org", "", false},
		{"\xff@example.org", "", false},
		{"user@" + strings.Repeat("x", 64) + ".org", "", false},
	}
	for _, tt := range tests {
		got, err := NormalizeAddress(tt.in)
		if tt.ok {
			if err != nil || got != tt.want {
				t.Errorf("NormalizeAddress(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, ErrBadAddress) {
			t.Errorf("NormalizeAddress(%q) = %q, %v; want ErrBadAddress", tt.in, got, err)
		}
	}
}

func TestNormalizeAliasAddress(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"@Example.Org", "@example.org", true},
		{"Sales@Example.Org", "sales@example.org", true},
		{"@", "", false},
		{"@@example.org", "", false},
		{"example.org", "", false},
	}
	for _, tt := range tests {
		got, err := NormalizeAliasAddress(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("NormalizeAliasAddress(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestStripDetail(t *testing.T) {
	tests := []struct {
		local, delims, want string
		ok                  bool
	}{
		{"bob+lists", "+", "bob", true},
		{"bob+a+b", "+", "bob", true},
		{"bob-lists", "+", "", false},
		{"bob-lists", "+-", "bob", true},
		{"bob-x+y", "+-", "bob", true},
		{"+lists", "+", "", false},
		{"bob", "+", "", false},
		{"bob+x", "", "", false},
	}
	for _, tt := range tests {
		got, ok := stripDetail(tt.local, tt.delims)
		if got != tt.want || ok != tt.ok {
			t.Errorf("stripDetail(%q, %q) = %q, %v; want %q, %v", tt.local, tt.delims, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzNormalizeAddress(f *testing.F) {
	for _, s := range []string{
		"user@example.org", "User@Example.ORG", "a+b@c.d", "@example.org", "Jörg@Bücher.example",
		"a@b@c", "\"q\"@x", "a..b@x", "\xff@x", "ǅ@x.org", "İ@x.org", "user@example.org.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeAddress(s)
		if err != nil {
			if !errors.Is(err, ErrBadAddress) {
				t.Fatalf("error %v does not wrap ErrBadAddress", err)
			}
			return
		}
		if len(n) > MaxAddressLength || strings.Count(n, "@") != 1 || strings.HasPrefix(n, "@") {
			t.Fatalf("NormalizeAddress(%q) = %q: invalid result", s, n)
		}
		// Normalising is idempotent.
		n2, err := NormalizeAddress(n)
		if err != nil || n2 != n {
			t.Fatalf("NormalizeAddress(%q) = %q, %v; not idempotent from %q", n, n2, err, s)
		}
		if a, err := NormalizeAliasAddress(s); err != nil || a != n {
			t.Fatalf("NormalizeAliasAddress(%q) = %q, %v; want %q", s, a, err, n)
		}
	})
}
