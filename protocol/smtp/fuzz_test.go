package smtp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// pathSeeds are realistic and hostile paths, without the "FROM:"/"TO:" prefix.
var pathSeeds = []string{
	"<>", "<a@b>", "<a@example.com>", " <a@b>", "<Postmaster>", "<postmaster@x>",
	"<User.Name+tag@Example.COM>", `<"john doe"@example.com>`, `<"a\"b\\c"@x>`,
	`<"b@c"@local>`, "<b%c@local>", "<@a,@b:x@y>", "<@hosta.int,@jkl.org:userc@d.bar.org>",
	"<a@[127.0.0.1]>", "<a@[IPv6:::1]>", "<a@[IPv6:::ffff:1.2.3.4]>", "<a@[ipv6:2001:DB8::1]>",
	"<a@[IPv6:fe80::1%eth0]>", "<a@[01.2.3.4]>", "<a@[x400:c=us]>", "<jöran@bücher.example>",
	"<用户@例子.广告>", `<"jö ran"@x>`, "<a\xff@b>", "<a@b\xc3>", "<a@b。c>", "<a\u0085@b>",
	"<a@b> SIZE=1", "<a@b> SMTPUTF8", "<jö@b> SMTPUTF8 BODY=8BITMIME", "<a@b>x", "<a b@c>",
	"a@b", "<a@b", "<", `<"`, `<"\`, "<@", "<@a:", "<a..b@c>", "<a@b.>", "<a@-b>", "<a@b_c>",
	"<" + strings.Repeat("a", 65) + "@x>", "<a@" + strings.Repeat("d.", 130) + "x>",
	"<" + strings.Repeat("@a,", 80) + "@a:x@y>", `<""@x>`, `<"a>b"@x>`, "<a@[1.2.3.4>",
	"<xn--bcher-kva@xn--bcher-kva.example>", "<a@b> NOTIFY=NEVER ORCPT=rfc822;a@b",
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"EHLO example.com", "HELO x", "MAIL FROM:<a@b> SIZE=10", "RCPT TO:<Postmaster>",
		"DATA", "BDAT 100 LAST", "QUIT", "NOOP", "RSET", "VRFY postmaster", "AUTH PLAIN AGFAYg==",
		"STARTTLS", "ehlo   x  ", "", " ", "\t", "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>", "DATA\n",
		"EHLO x\x00", "\x00", "ÉHLO", "MAIL1 x", "EHLO\tx", "RCPT TO:<jö@b>", "\x7f", "NOOP \x1b",
		strings.Repeat("A", 600), "X " + strings.Repeat("\xff", 10),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		cmd, err := ParseCommand(line)
		if err != nil {
			var r Reply
			if !errors.As(err, &r) || r.Code != CodeSyntax || r.Enhanced != "5.5.2" {
				t.Fatalf("error %v, want 500 5.5.2", err)
			}
			return
		}
		if cmd.Verb == "" {
			t.Fatal("empty verb accepted")
		}
		for i := 0; i < len(cmd.Verb); i++ {
			if c := cmd.Verb[i]; c < 'A' || c > 'Z' {
				t.Fatalf("verb %q not upper-case letters", cmd.Verb)
			}
		}
		if bytes.ContainsAny(line, "\x00\r\n") {
			t.Fatalf("line %q with NUL/CR/LF accepted", line)
		}
		if strings.HasPrefix(cmd.Arg, " ") || strings.HasSuffix(cmd.Arg, " ") {
			t.Fatalf("arg %q not trimmed", cmd.Arg)
		}
		if !strings.EqualFold(string(line[:len(cmd.Verb)]), cmd.Verb) {
			t.Fatalf("verb %q does not start line %q", cmd.Verb, line)
		}
		if !bytes.Contains(line, []byte(cmd.Arg)) {
			t.Fatalf("arg %q is not part of line %q", cmd.Arg, line)
		}
	})
}

func FuzzParsePath(f *testing.F) {
	for _, s := range pathSeeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, path string, utf8On bool) {
		checkPath := func(p Path, role string, err error) {
			if err != nil {
				var r Reply
				if !errors.As(err, &r) || r.Code < 500 || r.Code > 555 || r.Enhanced == "" || r.Text == "" {
					t.Fatalf("%s %q: bad error %#v", role, path, err)
				}
				return
			}
			if p.Null || p.Postmaster {
				if p != (Path{Null: true}) && p != (Path{Local: "postmaster", Postmaster: true}) {
					t.Fatalf("%s %q: special path with fields: %#v", role, path, p)
				}
				return
			}
			if len(p.Domain) == 0 || len(p.Domain) > MaxDomain || len(p.Local) > MaxLocalPart {
				t.Fatalf("%s %q: domain %q", role, path, p.Domain)
			}
			if p.Domain[0] != '[' && p.Domain != lowerASCII(p.Domain) {
				t.Fatalf("%s %q: domain %q not lower-cased", role, path, p.Domain)
			}
			if !utf8.ValidString(p.Local) || !utf8.ValidString(p.Domain) {
				t.Fatalf("%s %q: invalid UTF-8 accepted: %#v", role, path, p)
			}
			if strings.ContainsAny(p.Local+p.Domain, "\x00\r\n\t\x7f") {
				t.Fatalf("%s %q: control character accepted: %#v", role, path, p)
			}
			// Round trip: the rendered mailbox parses back to the same path.
			s := p.String()
			q, _, err := ParseRcpt("TO:<"+s+">", true)
			if err != nil {
				t.Fatalf("%s %q: String %q does not re-parse: %v", role, path, s, err)
			}
			if q != p {
				t.Fatalf("%s %q: String %q re-parses to %#v, want %#v", role, path, s, q, p)
			}
			if len(s)+2 > MaxPath {
				t.Fatalf("%s %q: rendered path %q over the limit", role, path, s)
			}
		}

		p, mp, err := ParseMail("FROM:" + path)
		checkPath(p, "MAIL", err)
		if err == nil && !mp.SMTPUTF8 && !isASCII(p.Local+p.Domain) {
			t.Fatalf("MAIL %q: UTF-8 address without SMTPUTF8", path)
		}
		p, _, err = ParseRcpt("TO:"+path, utf8On)
		checkPath(p, "RCPT", err)
		if err == nil {
			if p.Null {
				t.Fatalf("RCPT %q: null path accepted", path)
			}
			if !utf8On && !isASCII(p.Local+p.Domain) {
				t.Fatalf("RCPT %q: UTF-8 address without SMTPUTF8", path)
			}
		}
		if d, err := ParseDomain(path); err == nil {
			if !isASCII(d) || d == "" || strings.HasSuffix(d, ".") {
				t.Fatalf("ParseDomain(%q) = %q", path, d)
			}
			if d2, err := ParseDomain(d); err != nil || d2 != d {
				t.Fatalf("ParseDomain(%q) = %q, again %q, %v", path, d, d2, err)
			}
		}
	})
}

func FuzzParams(f *testing.F) {
	for _, s := range []string{
		"SIZE=1000", "SIZE=99999999999999999999", "BODY=8BITMIME", "BODY=binarymime", "SMTPUTF8",
		"RET=HDRS", "ENVID=QQ314159", "ENVID=a+2B", "AUTH=<>", "AUTH=e+3Dmc2@example.com",
		"SIZE=1 SIZE=2", "FOO=bar", "=x", "-", "SIZE=", "SIZE=1=2", "SMTPUTF8=1", "ENVID=a+0D+0A",
		"NOTIFY=NEVER", "NOTIFY=SUCCESS,FAILURE,DELAY", "NOTIFY=NEVER,SUCCESS", "NOTIFY=,",
		"ORCPT=rfc822;a@b", "ORCPT=utf-8;j\\x{00F6}@b", "ORCPT=x;y", "ORCPT=rfc822;", "  SIZE=1  BODY=7BIT",
		"SIZE=1\tBODY=7BIT", "BODY=\xff", "ENVID=é",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, params string) {
		for _, cmd := range []string{"MAIL", "RCPT"} {
			var err error
			var mp MailParams
			var rp RcptParams
			if cmd == "MAIL" {
				_, mp, err = ParseMail("FROM:<a@b> " + params)
			} else {
				_, rp, err = ParseRcpt("TO:<a@b> "+params, false)
			}
			if err != nil {
				var r Reply
				if !errors.As(err, &r) || (r.Code != CodeArgSyntax && r.Code != CodeParamsUnknown) || r.Enhanced != "5.5.4" {
					t.Fatalf("%s %q: error %#v", cmd, params, err)
				}
				if len(r.Bytes()) > 512 {
					t.Fatalf("%s %q: reply over 512 octets", cmd, params)
				}
				continue
			}
			// Whatever was accepted holds only what its RFC allows.
			if mp.Size < 0 {
				t.Fatalf("negative SIZE from %q", params)
			}
			switch mp.Body {
			case "", "7BIT", "8BITMIME", "BINARYMIME":
			default:
				t.Fatalf("BODY %q from %q", mp.Body, params)
			}
			if mp.Ret != "" && mp.Ret != "FULL" && mp.Ret != "HDRS" {
				t.Fatalf("RET %q from %q", mp.Ret, params)
			}
			if len(mp.EnvID) > maxEnvID || !isPrintable(mp.EnvID) || !isPrintable(mp.Auth) || !isPrintable(rp.ORcpt) {
				t.Fatalf("unprintable or long value from %q: %+v %+v", params, mp, rp)
			}
			if slicesHasDup(rp.Notify) || len(rp.Notify) > 1 && strings.Contains(strings.Join(rp.Notify, ","), "NEVER") {
				t.Fatalf("NOTIFY %v from %q", rp.Notify, params)
			}
			if rp.ORcpt != "" && !strings.HasPrefix(rp.ORcpt, "rfc822;") && !strings.HasPrefix(rp.ORcpt, "utf-8;") {
				t.Fatalf("ORCPT %q from %q", rp.ORcpt, params)
			}
		}
	})
}

func FuzzXtext(f *testing.F) {
	for _, s := range []string{"", "a", "user@example.com", "e=mc2", "+", "a b\r\n", "\x00\xff", "é", "+2B", "~!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := XtextEncode(s)
		for i := 0; i < len(enc); i++ {
			if c := enc[i]; c < '!' || c > '~' || c == '=' {
				t.Fatalf("XtextEncode(%q) = %q holds %q", s, enc, c)
			}
		}
		dec, err := XtextDecode(enc)
		if err != nil || dec != s {
			t.Fatalf("XtextDecode(XtextEncode(%q)) = %q, %v", s, dec, err)
		}
		// Decoding arbitrary input: if it succeeds, re-encoding and decoding is stable.
		if d, err := XtextDecode(s); err == nil {
			if d2, err := XtextDecode(XtextEncode(d)); err != nil || d2 != d {
				t.Fatalf("XtextDecode(%q) = %q not stable: %q, %v", s, d, d2, err)
			}
			if len(d) > len(s) {
				t.Fatalf("XtextDecode(%q) = %q grew", s, d)
			}
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func slicesHasDup(list []string) bool {
	seen := map[string]bool{}
	for _, v := range list {
		if seen[v] {
			return true
		}
		seen[v] = true
	}
	return false
}
