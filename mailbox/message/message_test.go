package message

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// load reads a message from testdata/. The files are stored with LF line
// ends for readability and turned into CRLF, as messages arrive over SMTP;
// files named barelf*.eml keep their bare LFs (APPEND may bring them).
func load(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, "barelf") {
		raw = bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n"))
	}
	return raw
}

// The expected strings are written from the grammar of RFC 9051 9 (body,
// envelope), with the case conventions documented in render.go; sizes were
// counted separately from the files.
var goldens = []struct {
	file          string
	body, bs, env string
}{
	{
		file: "simple.eml",
		body: `("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 55 1)`,
		bs:   `("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 55 1 NIL NIL NIL NIL)`,
		env: `("Mon, 7 Feb 1994 21:52:25 -0800 (PST)" "afternoon meeting" ` +
			`(("Fred Foobar" NIL "foobar" "Blurdybloop.example")) ` +
			`(("Fred Foobar" NIL "foobar" "Blurdybloop.example")) ` +
			`(("Fred Foobar" NIL "foobar" "Blurdybloop.example")) ` +
			`((NIL NIL "mooch" "owatagu.siam.edu.example")) NIL NIL NIL "<B27397-0100000@Blurdybloop.example>")`,
	},
	{
		file: "alternative.eml",
		body: `(("TEXT" "PLAIN" ("CHARSET" "utf-8" "FORMAT" "flowed") NIL NIL "8BIT" 27 1)` +
			`("TEXT" "HTML" ("CHARSET" "iso-8859-1") NIL NIL "QUOTED-PRINTABLE" 86 1) "ALTERNATIVE")`,
		bs: `(("TEXT" "PLAIN" ("CHARSET" "utf-8" "FORMAT" "flowed") NIL NIL "8BIT" 27 1 NIL NIL NIL NIL)` +
			`("TEXT" "HTML" ("CHARSET" "iso-8859-1") NIL NIL "QUOTED-PRINTABLE" 86 1 NIL NIL NIL NIL) ` +
			`"ALTERNATIVE" ("BOUNDARY" "b1") NIL NIL NIL)`,
		// The 8-bit display name goes as a literal; the subject keeps its
		// encoded-words (RFC 9051 7.5.2), unfolded.
		env: "(\"Tue, 01 Oct 2024 10:00:00 +0200\" \"=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= aus =?UTF-8?B?S8O2bG4=?=\" " +
			"(({14}\r\nMüller, Jörg NIL \"joerg\" \"example.de\")) " +
			"(({14}\r\nMüller, Jörg NIL \"joerg\" \"example.de\")) " +
			"(({14}\r\nMüller, Jörg NIL \"joerg\" \"example.de\")) " +
			"((\"Team\" NIL \"team\" \"example.com\")) NIL NIL \"<orig@example.com>\" \"<alt-1@example.de>\")",
	},
	{
		file: "mixed.eml",
		body: `(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 24 0)` +
			`("APPLICATION" "PDF" ("NAME" "report.pdf") "<part2@example.com>" "Quarterly report" "BASE64" 28) "MIXED")`,
		bs: `(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 24 0 NIL NIL ("en-US" "de") NIL)` +
			`("APPLICATION" "PDF" ("NAME" "report.pdf") "<part2@example.com>" "Quarterly report" "BASE64" 28 ` +
			`"Q2hlY2sgSW50ZWdyaXR5IQ==" ("ATTACHMENT" ("FILENAME" "report.pdf" "SIZE" "18")) NIL "http://example.com/report.pdf") ` +
			`"MIXED" ("BOUNDARY" "----=_Part_0_12345.67890") NIL "en" NIL)`,
		env: `("Wed, 2 Oct 2024 08:15:00 +0000" "Report" ` +
			`(("Bob" NIL "bob" "example.com")) (("Bob" NIL "bob" "example.com")) (("Bob" NIL "bob" "example.com")) ` +
			`((NIL NIL "alice" "example.org")("Carol Q. Public" NIL "carol" "example.net")) ` +
			`(("Pete" NIL "pete" "silly.test")) NIL NIL "<mixed-1@example.com>")`,
	},
	{
		file: "forward.eml",
		body: `(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 10 0)` +
			`("MESSAGE" "RFC822" NIL NIL "Forwarded message" "7BIT" 359 ` +
			`("Wed, 2 Oct 2024 09:00:00 +0000" "Lunch" (("Frank" NIL "frank" "example.org")) ` +
			`(("Frank" NIL "frank" "example.org")) (("Frank" NIL "frank" "example.org")) ` +
			`(("Dave" NIL "dave" "example.com")) NIL NIL NIL "<lunch@example.org>") ` +
			`(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 14 0)("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" 21 0) "ALTERNATIVE") ` +
			`16) "MIXED")`,
		bs: `(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 10 0 NIL NIL NIL NIL)` +
			`("MESSAGE" "RFC822" NIL NIL "Forwarded message" "7BIT" 359 ` +
			`("Wed, 2 Oct 2024 09:00:00 +0000" "Lunch" (("Frank" NIL "frank" "example.org")) ` +
			`(("Frank" NIL "frank" "example.org")) (("Frank" NIL "frank" "example.org")) ` +
			`(("Dave" NIL "dave" "example.com")) NIL NIL NIL "<lunch@example.org>") ` +
			`(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 14 0 NIL NIL NIL NIL)` +
			`("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "7BIT" 21 0 NIL NIL NIL NIL) "ALTERNATIVE" ("BOUNDARY" "inner") NIL NIL NIL) ` +
			`16 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "outer") NIL NIL NIL)`,
		env: `("Thu, 3 Oct 2024 12:00:00 +0000" "Fwd: Lunch" (("Dave" NIL "dave" "example.com")) ` +
			`(("Dave" NIL "dave" "example.com")) (("Dave" NIL "dave" "example.com")) ` +
			`((NIL NIL "eve" "example.com")) NIL NIL NIL "<fwd-1@example.com>")`,
	},
	{
		// RFC 2231 sections joined; extended ones decoded to UTF-8 and
		// named "name*" (RFC 9051 7.5.2).
		file: "rfc2231.eml",
		body: `("APPLICATION" "OCTET-STREAM" ("NAME" "very long file name.txt") NIL NIL "X-UUENCODE" 18)`,
		bs: "(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"very long file name.txt\") NIL NIL \"X-UUENCODE\" 18 NIL " +
			"(\"ATTACHMENT\" (\"FILENAME*\" {23}\r\n€ rates für 2024.txt \"TITLE*\" {7}\r\nGrüße)) NIL NIL)",
		env: `(NIL "RFC 2231" ((NIL NIL "gina" "example.com")) ((NIL NIL "gina" "example.com")) ` +
			`((NIL NIL "gina" "example.com")) ((NIL NIL "hank" "example.com")) NIL NIL NIL NIL)`,
	},
	{
		// Groups (RFC 9051 7.5.2), an empty Reply-To defaulting to From,
		// a route, a quoted local part, a mailbox without host.
		file: "groups.eml",
		body: `("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 55 1)`,
		bs:   `("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 55 1 NIL NIL NIL NIL)`,
		env: `("26 Aug 76 14:29 EDT" "=?iso-8859-1?q?this=20is=20some=20text?= =?utf-8?b?w6k=?=" ` +
			`(("=?ISO-8859-1?Q?Andr=E9?= Pirard" NIL "PIRARD" "vm1.ulg.ac.be")) ` +
			`((NIL NIL "secretary" "example.com")) ` +
			`(("=?ISO-8859-1?Q?Andr=E9?= Pirard" NIL "PIRARD" "vm1.ulg.ac.be")) ` +
			`((NIL NIL "A Group" NIL)("Ed Jones" NIL "c" "a.test")(NIL NIL "joe" "where.test")("John" NIL "jdoe" "one.test")(NIL NIL NIL NIL)(NIL NIL "solo" "x.test")) ` +
			`((NIL NIL "Undisclosed recipients" NIL)(NIL NIL NIL NIL)) ` +
			`((NIL "@route1,@route2" "routed" "target.test")(NIL NIL "quoted \"local\"" "q.test")(NIL NIL "nohost" "")) ` +
			`NIL "<groups@example.com>")`,
	},
	{
		// Preamble ignored, a longer boundary is text, blanks after a
		// delimiter allowed, the missing close delimiter tolerated
		// (RFC 2046 5.1.1).
		file: "noclose.eml",
		body: `(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 26 1)("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 22 1) "MIXED")`,
		bs: `(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 26 1 NIL NIL NIL NIL)` +
			`("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 22 1 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "zz") NIL NIL NIL)`,
		env: `(NIL "no close delimiter" ((NIL NIL "ivan" "example.com")) ((NIL NIL "ivan" "example.com")) ` +
			`((NIL NIL "ivan" "example.com")) NIL NIL NIL NIL NIL)`,
	},
	{
		file: "barelf.eml",
		body: `(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 7 1)("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "BASE64" 17 1) "MIXED")`,
		bs: `(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 7 1 NIL NIL NIL NIL)` +
			`("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "BASE64" 17 1 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "lf") NIL NIL NIL)`,
		env: `(NIL "bare LF" ((NIL NIL "judy" "example.com")) ((NIL NIL "judy" "example.com")) ` +
			`((NIL NIL "judy" "example.com")) NIL NIL NIL NIL NIL)`,
	},
	{
		// RFC 2046 5.1.5: in a digest, a part without Content-Type is
		// message/rfc822.
		file: "digest.eml",
		body: `(("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 50 (NIL "one" ((NIL NIL "a" "example.com")) ` +
			`((NIL NIL "a" "example.com")) ((NIL NIL "a" "example.com")) NIL NIL NIL NIL NIL) ` +
			`("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 13 0) 3)` +
			`("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 13 0) "DIGEST")`,
		bs: `(("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 50 (NIL "one" ((NIL NIL "a" "example.com")) ` +
			`((NIL NIL "a" "example.com")) ((NIL NIL "a" "example.com")) NIL NIL NIL NIL NIL) ` +
			`("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 13 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL)` +
			`("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 13 0 NIL NIL NIL NIL) "DIGEST" ("BOUNDARY" "d") NIL NIL NIL)`,
		env: `(NIL "Digest" ((NIL NIL "list" "example.com")) ((NIL NIL "list" "example.com")) ` +
			`((NIL NIL "list" "example.com")) NIL NIL NIL NIL NIL)`,
	},
}

func TestGoldens(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			raw := load(t, g.file)
			p := Parse(raw)
			for _, c := range []struct{ what, got, want string }{
				{"BODY", string(p.BodyStructure(false)), g.body},
				{"BODYSTRUCTURE", string(p.BodyStructure(true)), g.bs},
				{"ENVELOPE", string(p.Envelope()), g.env},
			} {
				if c.got != c.want {
					t.Errorf("%s\n got %s\nwant %s", c.what, c.got, c.want)
				}
			}
			// The stored form renders the same.
			q, err := Decode(Encode(p))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(q.BodyStructure(true)); got != g.bs {
				t.Errorf("decoded BODYSTRUCTURE\n got %s\nwant %s", got, g.bs)
			}
			if got := string(q.Envelope()); got != g.env {
				t.Errorf("decoded ENVELOPE\n got %s\nwant %s", got, g.env)
			}
		})
	}
}

func TestEmptyAndHeaderOnly(t *testing.T) {
	for _, c := range []struct{ raw, bs, env string }{
		{"", `("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)`,
			"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"},
		{"Subject: x", `("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)`,
			`(NIL "x" NIL NIL NIL NIL NIL NIL NIL NIL)`},
		// A multipart without boundary cannot be split: text (RFC 9051 9
		// needs 1*body in a multipart).
		{"Content-Type: multipart/mixed\r\n\r\nabc\r\n", `("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 5 1 NIL NIL NIL NIL)`,
			"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"},
		// RFC 2046 5.2.1: message/rfc822 must not be base64.
		{"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA==\r\n",
			`("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 18 NIL NIL NIL NIL)`,
			"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"},
		// An unparseable Content-Type is text/plain (RFC 2045 5.2); 8-bit
		// and quote characters in strings; comment after a value.
		{"Content-Type: garbage\r\nContent-Description: say \"hi\" \\ ok\r\nSubject: caf\xc3\xa9\r\n\r\n",
			`("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL "say \"hi\" \\ ok" "7BIT" 0 0 NIL NIL NIL NIL)`,
			"(NIL {5}\r\ncaf\xc3\xa9 NIL NIL NIL NIL NIL NIL NIL NIL)"},
		{"Content-type: text/plain; charset=us-ascii (Plain text)\r\n\r\nx",
			`("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 1 0 NIL NIL NIL NIL)`,
			"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"},
	} {
		p := Parse([]byte(c.raw))
		if got := string(p.BodyStructure(true)); got != c.bs {
			t.Errorf("%q BODYSTRUCTURE\n got %s\nwant %s", c.raw, got, c.bs)
		}
		if got := string(p.Envelope()); got != c.env {
			t.Errorf("%q ENVELOPE\n got %s\nwant %s", c.raw, got, c.env)
		}
	}
}
