package smtp

import (
	"strings"
	"testing"
)

func TestParseMailPath(t *testing.T) {
	long64 := strings.Repeat("a", 64)
	long65 := strings.Repeat("a", 65)
	domain249 := domainOf(249)
	domain250 := domainOf(250)
	tests := []struct {
		arg  string
		want Path
		code int
		enh  string
	}{
		{arg: "FROM:<>", want: Path{Null: true}},
		{arg: "from:<>", want: Path{Null: true}},
		{arg: "FROM:<a@example.com>", want: Path{Local: "a", Domain: "example.com"}},
		{arg: "FROM:<User.Name+tag@Example.COM>", want: Path{Local: "User.Name+tag", Domain: "example.com"}},
		{arg: "FROM: <a@b>", want: Path{Local: "a", Domain: "b"}},   // Postfix-style space
		{arg: "FROM:   <a@b>", want: Path{Local: "a", Domain: "b"}}, // several spaces
		{arg: "FROM:<!#$%&'*+-/=?^_`{|}~@x.y>", want: Path{Local: "!#$%&'*+-/=?^_`{|}~", Domain: "x.y"}},
		{arg: `FROM:<"john doe"@example.com>`, want: Path{Local: "john doe", Domain: "example.com"}},
		{arg: `FROM:<"a\"b\\c"@example.com>`, want: Path{Local: `a"b\c`, Domain: "example.com"}},
		{arg: `FROM:<"a\ b"@x>`, want: Path{Local: "a b", Domain: "x"}},
		{arg: `FROM:<"a>b"@x>`, want: Path{Local: "a>b", Domain: "x"}},
		{arg: `FROM:<""@x>`, want: Path{Local: "", Domain: "x"}},
		{arg: `FROM:<"b@c"@local>`, want: Path{Local: "b@c", Domain: "local"}},
		{arg: "FROM:<b%c@local>", want: Path{Local: "b%c", Domain: "local"}},
		{arg: "FROM:<a@[127.0.0.1]>", want: Path{Local: "a", Domain: "[127.0.0.1]"}},
		{arg: "FROM:<a@[IPv6:::1]>", want: Path{Local: "a", Domain: "[IPv6:::1]"}},
		{arg: "FROM:<a@[ipv6:2001:DB8:0:0::1]>", want: Path{Local: "a", Domain: "[IPv6:2001:db8::1]"}},
		{arg: "FROM:<a@[IPv6:::ffff:192.0.2.1]>", want: Path{Local: "a", Domain: "[IPv6:::ffff:192.0.2.1]"}},
		{arg: "FROM:<@a,@b:x@y>", want: Path{Local: "x", Domain: "y"}},
		{arg: "FROM:<@hosta.int,@jkl.org:userc@d.bar.org>", want: Path{Local: "userc", Domain: "d.bar.org"}},
		{arg: "FROM:<@[10.0.0.1]:x@y>", want: Path{Local: "x", Domain: "y"}},
		{arg: "FROM:<" + long64 + "@x>", want: Path{Local: long64, Domain: "x"}},
		{arg: "FROM:<a@" + domain250 + ">", want: Path{Local: "a", Domain: domain250}},
		{arg: "FROM:<a@xn--bcher-kva.example>", want: Path{Local: "a", Domain: "xn--bcher-kva.example"}},
		{arg: "FROM:<a@1.2.3.4>", want: Path{Local: "a", Domain: "1.2.3.4"}}, // all-numeric labels are still a Domain
		{arg: "FROM:<jöran@bücher.example> SMTPUTF8", want: Path{Local: "jöran", Domain: "bücher.example"}},
		{arg: `FROM:<"jö ran"@x> SMTPUTF8`, want: Path{Local: "jö ran", Domain: "x"}},

		// Syntax outside the address: 501 5.5.4.
		{arg: "", code: 501, enh: "5.5.4"},
		{arg: "FROM", code: 501, enh: "5.5.4"},
		{arg: "FROM:", code: 501, enh: "5.5.4"},
		{arg: "FROM a@b", code: 501, enh: "5.5.4"},
		{arg: "FROM :<a@b>", code: 501, enh: "5.5.4"},
		{arg: "TO:<a@b>", code: 501, enh: "5.5.4"},
		{arg: "FROM:a@b", code: 501, enh: "5.5.4"}, // brackets required
		{arg: "FROM: a@b", code: 501, enh: "5.5.4"},
		{arg: "FROM:\t<a@b>", code: 501, enh: "5.5.4"},
		{arg: "FROM:<a@b>x", code: 501, enh: "5.5.4"},
		{arg: "FROM:<a@b><c@d>", code: 501, enh: "5.5.4"},
		{arg: "FROM:<>\tSIZE=1", code: 501, enh: "5.5.4"},

		// Bad sender address: 501 5.1.7.
		{arg: "FROM:<", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@b", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<Postmaster>", code: 501, enh: "5.1.7"}, // only RCPT has the bare form
		{arg: "FROM:<a@>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<@b>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a b@c>", code: 501, enh: "5.1.7"},
		{arg: "FROM:< a@b>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@b >", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@b\t>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a..b@c>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<.a@c>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a.@c>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a(b)@c>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@b@c>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@-b.c>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@b-.c>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@b..c>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@b.c.>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@.b>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@b_c.d>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@" + strings.Repeat("x", 64) + ".com>", code: 501, enh: "5.1.7"},
		{arg: `FROM:<"a@b>`, code: 501, enh: "5.1.7"},
		{arg: `FROM:<"a"b@c>`, code: 501, enh: "5.1.7"},
		{arg: `FROM:<"a\`, code: 501, enh: "5.1.7"},
		{arg: "FROM:<\"a\x01\"@b>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<\"a\\\x01\"@b>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@[1.2.3.4>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@[1.2.3]>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@[256.1.1.1]>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@[01.2.3.4]>", code: 501, enh: "5.1.7"}, // leading zero: octal ambiguity
		{arg: "FROM:<a@[::1]>", code: 501, enh: "5.1.7"},      // IPv6 needs its tag
		{arg: "FROM:<a@[IPv6:1.2.3.4]>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@[IPv6:fe80::1%eth0]>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@[x400:c=us]>", code: 501, enh: "5.1.7"}, // General-address-literal
		{arg: "FROM:<a@[1.2.3.4]x>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<@a:>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<@a,b:x@y>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<@a x@y>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<@:x@y>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@bü_c> SMTPUTF8", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@b。c> SMTPUTF8", code: 501, enh: "5.1.7"},      // U+3002 ideographic full stop
		{arg: "FROM:<a\u0085b@c> SMTPUTF8", code: 501, enh: "5.1.7"}, // C1 control
		{arg: "FROM:<a\u2028b@c> SMTPUTF8", code: 501, enh: "5.1.7"},

		// RFC 5321 4.5.3.1 limits.
		{arg: "FROM:<" + long65 + "@x>", code: 501, enh: "5.1.7"},
		{arg: `FROM:<"` + long64[2:] + `"@x>`, want: Path{Local: long64[2:], Domain: "x"}},
		{arg: `FROM:<"` + long64[1:] + `"@x>`, code: 501, enh: "5.1.7"}, // quotes count
		{arg: "FROM:<a@" + domainOf(256) + ">", code: 501, enh: "5.1.7"},
		{arg: "FROM:<" + strings.Repeat("l", 64) + "@" + domainOf(191) + ">", code: 501, enh: "5.1.7"}, // 257 octets
		{arg: "FROM:<@" + domain249 + ":a@b>", want: Path{Local: "a", Domain: "b"}},                    // 256 octets
		{arg: "FROM:<@" + domain250 + ":a@b>", code: 501, enh: "5.1.7"},                                // 257 octets

		// UTF-8.
		{arg: "FROM:<jöran@example.org>", code: 550, enh: "5.6.7"},
		{arg: "FROM:<a@bücher.example>", code: 550, enh: "5.6.7"},
		{arg: "FROM:<a\xff@b> SMTPUTF8", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a\xff@b>", code: 501, enh: "5.1.7"},
		{arg: "FROM:<a@b\xc3> SMTPUTF8", code: 501, enh: "5.1.7"},
		{arg: "FROM:<\"\xed\xa0\x80\"@b> SMTPUTF8", code: 501, enh: "5.1.7"}, // surrogate
	}
	for _, tt := range tests {
		p, _, err := ParseMail(tt.arg)
		checkReply(t, tt.arg, err, tt.code, tt.enh)
		if tt.code == 0 && p != tt.want {
			t.Errorf("%q: got %#v, want %#v", tt.arg, p, tt.want)
		}
	}
}

func TestPathLimitExact(t *testing.T) {
	// A 256-octet path is accepted; 257 is refused.
	local := strings.Repeat("l", 64)
	mk := func(n int) string { // path of n octets: "<" local "@" domain ">"
		p := "<" + local + "@" + domainOf(n-len(local)-3) + ">"
		if len(p) != n {
			t.Fatalf("built %d octets, want %d", len(p), n)
		}
		return p
	}
	if _, _, err := ParseRcpt("TO:"+mk(256), false); err != nil {
		t.Errorf("256-octet path: %v", err)
	}
	_, _, err := ParseRcpt("TO:"+mk(257), false)
	checkReply(t, "257-octet path", err, 501, "5.1.3")
	_, _, err = ParseMail("FROM:" + mk(257))
	checkReply(t, "257-octet reverse path", err, 501, "5.1.7")
}

// domainOf builds a valid domain of exactly n octets (n >= 1) from labels of
// at most 63 octets.
func domainOf(n int) string {
	var labels []string
	for n > 0 {
		l := min(n, 63)
		if n-l == 1 { // a lone octet left would need a dot and a label
			l--
		}
		labels = append(labels, strings.Repeat("d", l))
		n -= l + 1
	}
	return strings.Join(labels, ".")
}

func TestParseRcptPath(t *testing.T) {
	tests := []struct {
		arg  string
		utf8 bool
		want Path
		code int
		enh  string
	}{
		{arg: "TO:<a@example.com>", want: Path{Local: "a", Domain: "example.com"}},
		{arg: "to:<a@example.com>", want: Path{Local: "a", Domain: "example.com"}},
		{arg: "TO: <a@b>", want: Path{Local: "a", Domain: "b"}},
		{arg: "TO:<Postmaster>", want: Path{Local: "postmaster", Postmaster: true}},
		{arg: "TO:<POSTMASTER>", want: Path{Local: "postmaster", Postmaster: true}},
		{arg: "TO:<postmaster> NOTIFY=NEVER", want: Path{Local: "postmaster", Postmaster: true}},
		{arg: "TO:<Postmaster@Example.com>", want: Path{Local: "Postmaster", Domain: "example.com"}},
		{arg: `TO:<"Postmaster">`, code: 501, enh: "5.1.3"},
		{arg: "TO:<@a:Postmaster>", code: 501, enh: "5.1.3"},
		{arg: "TO:<postmistress>", code: 501, enh: "5.1.3"},
		{arg: "TO:<@a,@b:x@y>", want: Path{Local: "x", Domain: "y"}},
		{arg: "TO:<b%c@local>", want: Path{Local: "b%c", Domain: "local"}},
		{arg: `TO:<"b@c"@local>`, want: Path{Local: "b@c", Domain: "local"}},
		{arg: "TO:<a@[192.0.2.1]>", want: Path{Local: "a", Domain: "[192.0.2.1]"}},
		{arg: "TO:<a@[IPv6:2001:db8::1]>", want: Path{Local: "a", Domain: "[IPv6:2001:db8::1]"}},
		{arg: "TO:<>", code: 501, enh: "5.1.3"},
		{arg: "TO:<a>", code: 501, enh: "5.1.3"},
		{arg: "TO:<" + strings.Repeat("a", 65) + "@x>", code: 501, enh: "5.1.3"},
		{arg: "TO:a@b", code: 501, enh: "5.5.4"},
		{arg: "FROM:<a@b>", code: 501, enh: "5.5.4"},
		{arg: "TO:<a b@c>", code: 501, enh: "5.1.3"},
		{arg: "TO:<jöran@bücher.example>", utf8: true, want: Path{Local: "jöran", Domain: "bücher.example"}},
		{arg: "TO:<用户@例子.广告>", utf8: true, want: Path{Local: "用户", Domain: "例子.广告"}},
		{arg: "TO:<jöran@bücher.example>", code: 553, enh: "5.6.7"},
		{arg: "TO:<a@BÜCHER.example>", utf8: true, want: Path{Local: "a", Domain: "bÜcher.example"}},
		{arg: "TO:<a\xc3@b>", utf8: true, code: 501, enh: "5.1.3"},
		{arg: "TO:<a\xc3@b>", code: 501, enh: "5.1.3"},
	}
	for _, tt := range tests {
		p, _, err := ParseRcpt(tt.arg, tt.utf8)
		checkReply(t, tt.arg, err, tt.code, tt.enh)
		if tt.code == 0 && p != tt.want {
			t.Errorf("%q: got %#v, want %#v", tt.arg, p, tt.want)
		}
	}
}

func TestPathString(t *testing.T) {
	tests := []struct {
		p    Path
		want string
	}{
		{Path{Null: true}, ""},
		{Path{Local: "postmaster", Postmaster: true}, "postmaster"},
		{Path{Local: "a", Domain: "b.c"}, "a@b.c"},
		{Path{Local: "a.b+c", Domain: "x"}, "a.b+c@x"},
		{Path{Local: "john doe", Domain: "x"}, `"john doe"@x`},
		{Path{Local: `a"b\c`, Domain: "x"}, `"a\"b\\c"@x`},
		{Path{Local: "b@c", Domain: "local"}, `"b@c"@local`},
		{Path{Local: "", Domain: "x"}, `""@x`},
		{Path{Local: ".a", Domain: "x"}, `".a"@x`},
		{Path{Local: "a..b", Domain: "x"}, `"a..b"@x`},
		{Path{Local: "a.", Domain: "x"}, `"a."@x`},
		{Path{Local: "jöran", Domain: "bücher.example"}, "jöran@bücher.example"},
		{Path{Local: "a", Domain: "[IPv6:::1]"}, "a@[IPv6:::1]"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
	// Minimal quoting: a quoted Dot-string comes back unquoted (RFC 5321 4.1.2).
	p, _, err := ParseRcpt(`TO:<"abc"@x>`, false)
	if err != nil || p.String() != "abc@x" {
		t.Errorf(`"abc"@x: %q, %v`, p.String(), err)
	}
}

func TestParseDomain(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"example.com", "example.com", true},
		{"Mail.Example.COM", "mail.example.com", true},
		{"localhost", "localhost", true},
		{"a-b.c", "a-b.c", true},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", true},
		{"123.example", "123.example", true},
		{"[192.0.2.1]", "[192.0.2.1]", true},
		{"[IPv6:2001:DB8::1]", "[IPv6:2001:db8::1]", true},
		{"[ipv6:::1]", "[IPv6:::1]", true},
		{"[192.0.2.1] (client.example)", "[192.0.2.1]", true}, // RFC 5321 4.1.1.1
		{"", "", false},
		{" ", "", false},
		{"example.com.", "", false},
		{".example.com", "", false},
		{"exa_mple.com", "", false},
		{"-a.com", "", false},
		{"a-.com", "", false},
		{"a..com", "", false},
		{"bücher.example", "", false}, // RFC 6531 3.7.1: A-labels only in EHLO
		{"a\xff", "", false},
		{"[192.0.2.1", "", false},
		{"[192.0.2.1]x", "", false},
		{"[::1]", "", false},
		{"[IPv6:::1%lo]", "", false},
		{"[tag:content]", "", false},
		{"a\tb", "", false},
		{"<a@b>", "", false},
		{strings.Repeat("a", 64) + ".com", "", false},
		{domainOf(255), domainOf(255), true},
		{domainOf(256), "", false},
		{strings.Repeat(strings.Repeat("a", 63)+".", 4) + "a", "", false}, // 257 octets
	}
	for _, tt := range tests {
		got, err := ParseDomain(tt.in)
		if !tt.ok {
			checkReply(t, tt.in, err, 501, "5.5.4")
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseDomain(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
