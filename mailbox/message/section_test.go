package message

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSections(t *testing.T) {
	fwd := load(t, "forward.eml")
	fwdHeader := string(fwd[:strings.Index(string(fwd), "\r\n\r\n")+4])
	inner := "From: Frank <frank@example.org>\r\nTo: Dave <dave@example.com>\r\nSubject: Lunch\r\n" +
		"Date: Wed, 2 Oct 2024 09:00:00 +0000\r\nMessage-ID: <lunch@example.org>\r\n" +
		"Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
	innerText := "--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nLunch at noon?\r\n" +
		"--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<b>Lunch</b> at noon?\r\n--inner--\r\n"
	simple := load(t, "simple.eml")
	simpleHeader := string(simple[:strings.Index(string(simple), "\r\n\r\n")+4])
	digest := load(t, "digest.eml")

	cases := []struct {
		raw  []byte
		spec string
		want string
		err  error
	}{
		{fwd, "", string(fwd), nil},
		{fwd, "HEADER", fwdHeader, nil},
		{fwd, "TEXT", string(fwd[len(fwdHeader):]), nil},
		{fwd, "1", "See below.", nil},
		{fwd, "1.MIME", "Content-Type: text/plain\r\n\r\n", nil},
		{fwd, "2", inner + innerText, nil},
		{fwd, "2.MIME", "Content-Type: message/rfc822\r\nContent-Description: Forwarded message\r\n\r\n", nil},
		{fwd, "2.HEADER", inner, nil},
		{fwd, "2.TEXT", innerText, nil},
		{fwd, "2.1", "Lunch at noon?", nil},
		{fwd, "2.2", "<b>Lunch</b> at noon?", nil},
		{fwd, "2.2.MIME", "Content-Type: text/html; charset=utf-8\r\n\r\n", nil},
		// RFC 9051 6.4.5.1: matching is case-insensitive, order is the
		// header's, the blank line is included.
		{fwd, "2.HEADER.FIELDS (subject FROM)", "From: Frank <frank@example.org>\r\nSubject: Lunch\r\n\r\n", nil},
		{fwd, "header.fields.not (Date Message-ID MIME-Version Content-Type From)",
			"To: eve@example.com\r\nSubject: Fwd: Lunch\r\n\r\n", nil},
		{fwd, `HEADER.FIELDS ("X-None")`, "\r\n", nil},
		{fwd, "3", "", ErrNoSection},
		{fwd, "1.HEADER", "", ErrNoSection}, // not a message/rfc822 part
		{fwd, "1.1", "", ErrNoSection},
		{fwd, "2.3", "", ErrNoSection},
		{fwd, "2.1.1", "", ErrNoSection},
		// A non-multipart message has one part: its body; its MIME header
		// is the message header.
		{simple, "1", "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n", nil},
		{simple, "1.MIME", simpleHeader, nil},
		{simple, "2", "", ErrNoSection},
		// Parts of a message/rfc822 part are those of the message inside.
		{digest, "1.1", "first message", nil},
		{digest, "1.HEADER", "From: a@example.com\r\nSubject: one\r\n\r\n", nil},
		{digest, "1.MIME", "\r\n", nil},
		// No blank line: none is added (RFC 9051 6.4.5.1).
		{[]byte("Subject: x\r\nFrom: y"), "HEADER.FIELDS (From Subject)", "Subject: x\r\nFrom: y", nil},
		{[]byte("Subject: x\r\n folded\r\nTo: z\r\n\r\nbody"), "HEADER.FIELDS (Subject)", "Subject: x\r\n folded\r\n\r\n", nil},
		{[]byte("Subject: x\nTo: z\n\nbody"), "HEADER.FIELDS (TO)", "To: z\n\n", nil},
	}
	for _, c := range cases {
		p := Parse(c.raw)
		got, err := p.Section(c.raw, c.spec)
		if !errors.Is(err, c.err) || string(got) != c.want {
			t.Errorf("BODY[%s] = %q, %v; want %q, %v", c.spec, got, err, c.want, c.err)
		}
	}
}

func TestParseSection(t *testing.T) {
	good := []struct {
		in   string
		want SectionSpec
	}{
		{"", SectionSpec{}},
		{"header", SectionSpec{Text: "HEADER"}},
		{"1.2.3", SectionSpec{Part: []int{1, 2, 3}}},
		{"4.2.TEXT", SectionSpec{Part: []int{4, 2}, Text: "TEXT"}},
		{"1.MIME", SectionSpec{Part: []int{1}, Text: "MIME"}},
		{`HEADER.FIELDS ("From" To)`, SectionSpec{Text: "HEADER.FIELDS", Fields: []string{"From", "To"}}},
		{`2.HEADER.FIELDS.NOT (X-A)`, SectionSpec{Part: []int{2}, Text: "HEADER.FIELDS.NOT", Fields: []string{"X-A"}}},
	}
	for _, c := range good {
		got, err := ParseSection(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseSection(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"0", "01", "1.", "1..2", ".1", "MIME", "HEADER ", "TEXT x", "FOO",
		"HEADER.FIELDS", "HEADER.FIELDS ()", "HEADER.FIELDS (a b", "HEADER.FIELDS (a  b)", "HEADER.FIELDS (a{)",
		`HEADER.FIELDS ("a)`, "1.2.HEADERX", "9999999999", "1 "} {
		if _, err := ParseSection(in); !errors.Is(err, ErrSectionSyntax) {
			t.Errorf("ParseSection(%q) err = %v; want ErrSectionSyntax", in, err)
		}
	}
}

func TestLookupAndDecoded(t *testing.T) {
	mixed := load(t, "mixed.eml")
	alt := load(t, "alternative.eml")
	lf := load(t, "barelf.eml")
	cases := []struct {
		raw  []byte
		path []int
		want string
		err  error
	}{
		{mixed, []int{1}, "See the attached report.", nil},
		{mixed, []int{2}, "%PDF-1.4\n%\xc3\xa4\xc3\xbc\xc3\xb6\xc3\x9f\n", nil},
		{mixed, nil, "", ErrNotLeaf},
		{alt, []int{2}, "<p>Gr\xfc\xdfe aus K\xf6ln, STRA\xdfE und ein sehr langer Satz, der umbrochen wird.</p>", nil},
		{lf, []int{2}, "élèphant", nil},
		{load(t, "rfc2231.eml"), []int{1}, "", ErrUnknownCTE},
		{load(t, "forward.eml"), []int{2}, "", ErrNotLeaf},
	}
	for _, c := range cases {
		root := Parse(c.raw)
		p, err := root.Lookup(c.path)
		if err != nil {
			t.Fatalf("Lookup(%v): %v", c.path, err)
		}
		got, err := p.Decoded(c.raw)
		if !errors.Is(err, c.err) || string(got) != c.want {
			t.Errorf("BINARY[%v] = %q, %v; want %q, %v", c.path, got, err, c.want, c.err)
		}
		size, err := p.DecodedSize(c.raw)
		if !errors.Is(err, c.err) || size != len(c.want) {
			t.Errorf("BINARY.SIZE[%v] = %d, %v; want %d", c.path, size, err, len(c.want))
		}
	}
}

func TestDecodeCTE(t *testing.T) {
	for _, c := range []struct{ cte, in, want string }{
		{"quoted-printable", "a=\r\nb", "ab"},
		{"quoted-printable", "a  \r\nb\t\n", "a\r\nb\n"},
		{"quoted-printable", "=4", "=4"},
		{"quoted-printable", "=zz=3d=3D", "=zz=="},
		{"quoted-printable", "x= \r\ny", "xy"},
		{"quoted-printable", "end=", "end"},
		{"base64", "aGVs\r\nbG8=", "hello"},
		{"base64", "aGVsbG8", "hello"},         // padding missing
		{"base64", "aGk=aGk=", "hihi"},         // concatenated chunks
		{"base64", "a*G!V sbG8=\r\n", "hello"}, // RFC 2045 6.8: others ignored
		{"8bit", "as is\r\n", "as is\r\n"},
	} {
		got, err := decodeCTE(c.cte, []byte(c.in))
		if err != nil || string(got) != c.want {
			t.Errorf("%s %q = %q, %v; want %q", c.cte, c.in, got, err, c.want)
		}
		if c.cte == "base64" {
			if n := base64Decode(nil, []byte(c.in), true); n != len(c.want) {
				t.Errorf("base64 count %q = %d; want %d", c.in, n, len(c.want))
			}
		}
	}
}
