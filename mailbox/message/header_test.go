package message

import (
	"reflect"
	"testing"
)

func TestParseMediaType(t *testing.T) {
	for _, c := range []struct {
		in       string
		typ, sub string
		params   []Param
		ok       bool
	}{
		{"text/plain", "text", "plain", nil, true},
		{"TEXT/HTML ; CHARSET=\"UTF-8\"", "text", "html", []Param{{"charset", "UTF-8"}}, true},
		{"multipart/mixed; boundary=----=_Part_1", "multipart", "mixed", []Param{{"boundary", "----=_Part_1"}}, true},
		{"application/pdf; name=my file.pdf; x=1", "application", "pdf", []Param{{"name", "my file.pdf"}, {"x", "1"}}, true},
		{"text/plain; charset=us-ascii (Plain text)", "text", "plain", []Param{{"charset", "us-ascii"}}, true},
		{"text (comment) / plain", "text", "plain", nil, true},
		{"text/plain; a=1; A=2", "text", "plain", []Param{{"a", "1"}}, true},
		{"text/plain; junk; a=\"q\\\"x\"", "text", "plain", []Param{{"a", "q\"x"}}, true},
		// RFC 2231 3: sections in any order, joined.
		{"x/y; n*1=b; n*0=a; n*2=c", "x", "y", []Param{{"n", "abc"}}, true},
		// RFC 2231 4: charset and language in the first section; %-escapes.
		{"x/y; n*=utf-8'en'%C3%A9t%C3%A9", "x", "y", []Param{{"n*", "été"}}, true},
		{"x/y; n*0*=iso-8859-1''%E9; n*1=t%E9", "x", "y", []Param{{"n*", "ét%E9"}}, true},
		{"x/y; n=plain; n*=utf-8''ext", "x", "y", []Param{{"n", "plain"}, {"n*", "ext"}}, true},
		{"x/y; n*01=a", "x", "y", []Param{{"n*01", "a"}}, true},
		{"text", "", "", nil, false},
		{"/plain", "", "", nil, false},
		{"", "", "", nil, false},
	} {
		typ, sub, params, ok := parseMediaType(c.in)
		if typ != c.typ || sub != c.sub || !reflect.DeepEqual(params, c.params) || ok != c.ok {
			t.Errorf("parseMediaType(%q) = %q %q %q %v; want %q %q %q %v", c.in, typ, sub, params, ok, c.typ, c.sub, c.params, c.ok)
		}
	}
}

func TestParseLanguages(t *testing.T) {
	got := parseLanguages(" en-US (American), de ,, fr")
	if want := []string{"en-US", "de", "fr"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseAddressList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []Address
	}{
		{"a@b", []Address{{Mailbox: "a", Host: "b"}}},
		{"John Doe <jdoe@machine.example>", []Address{{Name: "John Doe", Mailbox: "jdoe", Host: "machine.example"}}},
		{`"Joe Q. Public" <john.q.public@example.com>`, []Address{{Name: "Joe Q. Public", Mailbox: "john.q.public", Host: "example.com"}}},
		{"Joe Q. Public <j@x>", []Address{{Name: "Joe Q. Public", Mailbox: "j", Host: "x"}}},
		{"j@x (Joe)", []Address{{Name: "Joe", Mailbox: "j", Host: "x"}}},
		{"pete(his account)@silly.test(his host)", []Address{{Name: "his host", Mailbox: "pete", Host: "silly.test"}}},
		{"john . doe @ example . com", []Address{{Mailbox: "john.doe", Host: "example.com"}}},
		{"a@[10.0.0.1]", []Address{{Mailbox: "a", Host: "[10.0.0.1]"}}},
		{"<a@b", []Address{{Mailbox: "a", Host: "b"}}},
		{"Name <>", []Address{{Name: "Name"}}},
		{"<>", nil},
		{"a@b >junk, c@d", []Address{{Mailbox: "a", Host: "b"}, {Mailbox: "c", Host: "d"}}},
		{"G: a@b", []Address{{Kind: GroupStart, Mailbox: "G"}, {Mailbox: "a", Host: "b"}, {Kind: GroupEnd}}},
		{"G: a@b; H:;", []Address{{Kind: GroupStart, Mailbox: "G"}, {Mailbox: "a", Host: "b"}, {Kind: GroupEnd},
			{Kind: GroupStart, Mailbox: "H"}, {Kind: GroupEnd}}},
		{"=?utf-8?q?J=C3=B6rg?= <j@x>", []Address{{Name: "=?utf-8?q?J=C3=B6rg?=", Mailbox: "j", Host: "x"}}},
		{"\"unclosed <a@b>", []Address{{Mailbox: "unclosed <a@b>"}}},
		{"(unclosed comment", nil},
		{",,,", nil},
	} {
		if got := parseAddressList(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseAddressList(%q)\n got %+v\nwant %+v", c.in, got, c.want)
		}
	}
}
