package message

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func addTestdataSeeds(f *testing.F) {
	files, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range files {
		if !e.IsDir() {
			f.Add(load(f, e.Name()))
		}
	}
	for _, s := range []string{
		"", "\r\n", "\n\n", "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\n--a--",
		"Content-Type: message/rfc822\r\n\r\nContent-Type: message/global\r\n\r\nFrom: x",
		"Content-Type: multipart/digest; boundary=\"\"\r\n\r\n--\r\n",
		"To: g:a@b;;;:<<>>@@,,\"\\",
		"Content-Type: multipart/x; boundary=b\n\n--b\nContent-Type: multipart/y; boundary=b\n\n--b--\n--b--",
	} {
		f.Add([]byte(s))
	}
}

// checkTree asserts the offsets are ordered and nested, so every section
// is a slice of raw.
func checkTree(t *testing.T, p *Part, lo, hi, depth int) {
	if !(lo <= p.HeaderStart && p.HeaderStart <= p.BodyStart && p.BodyStart <= p.End && p.End <= hi) {
		t.Fatalf("offsets %d %d %d outside [%d, %d]", p.HeaderStart, p.BodyStart, p.End, lo, hi)
	}
	if depth > MaxDepth {
		t.Fatalf("depth %d", depth)
	}
	if p.IsMultipart() && len(p.Children) == 0 {
		t.Fatalf("multipart without parts")
	}
	for _, c := range p.Children {
		checkTree(t, c, p.BodyStart, p.End, depth+1)
	}
}

func FuzzParse(f *testing.F) {
	addTestdataSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := Parse(raw)
		checkTree(t, p, 0, len(raw), 0)
		q, err := Decode(Encode(p))
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip: %v", err)
		}
		for _, ext := range []bool{false, true} {
			if err := checkBody(p.BodyStructure(ext), ext); err != nil {
				t.Fatalf("BodyStructure(%v) = %q: %v", ext, p.BodyStructure(ext), err)
			}
		}
		if err := checkEnvelope(p.Envelope()); err != nil {
			t.Fatalf("Envelope = %q: %v", p.Envelope(), err)
		}
		for _, spec := range []string{"", "HEADER", "TEXT", "1", "1.MIME", "2", "1.1", "1.HEADER", "2.TEXT",
			"HEADER.FIELDS (From Subject)", "1.HEADER.FIELDS.NOT (To)"} {
			b, err := p.Section(raw, spec)
			if err == nil && !strings.Contains(spec, "FIELDS") && len(b) > 0 && !bytes.Contains(raw, b) {
				t.Fatalf("BODY[%s] not in raw", spec)
			}
		}
		for _, path := range [][]int{nil, {1}, {2}, {1, 1}, {1, 2}, {2, 1}} {
			if part, err := p.Lookup(path); err == nil {
				b, err := part.Decoded(raw)
				n, err2 := part.DecodedSize(raw)
				if (err == nil) != (err2 == nil) || n != len(b) {
					t.Fatalf("BINARY.SIZE %d, BINARY %d octets (%v, %v)", n, len(b), err, err2)
				}
			}
		}
		text := p.BodyText(raw, 1000)
		if len(text) > 1000 || !utf8.Valid(text) {
			t.Fatalf("BodyText %d octets, valid %v", len(text), utf8.Valid(text))
		}
		for _, v := range p.HeaderValue(raw, "subject") {
			if !utf8.ValidString(v) {
				t.Fatalf("HeaderValue %q", v)
			}
		}
	})
}

func FuzzDecodeBlob(f *testing.F) {
	files, _ := os.ReadDir("testdata")
	for _, e := range files {
		if !e.IsDir() {
			blob := ParseBlob(load(f, e.Name()))
			f.Add(blob)
			f.Add(blob[:len(blob)/2])
		}
	}
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, blob []byte) {
		p, err := Decode(blob)
		if err != nil {
			return
		}
		// A decoded blob may not match the raw message; nothing may panic
		// and the output must still be grammatical.
		raw := []byte("Subject: short\r\n\r\nbody")
		for _, ext := range []bool{false, true} {
			if err := checkBody(p.BodyStructure(ext), ext); err != nil {
				t.Fatalf("BodyStructure: %v", err)
			}
		}
		if err := checkEnvelope(p.Envelope()); err != nil {
			t.Fatalf("Envelope: %v", err)
		}
		p.Section(raw, "1.2.HEADER.FIELDS (a)")
		p.Section(raw, "1.MIME")
		p.BodyText(raw, 100)
		if part, err := p.Lookup([]int{1}); err == nil {
			part.Decoded(raw)
		}
		if !bytes.Equal(Encode(p), blob) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzEncodedWord(f *testing.F) {
	for _, s := range []string{"=?utf-8?q?a?= =?utf-8?b?w6k=?=", "=?iso-2022-jp?B?GyRCJUYlOSVIGyhC?=",
		"=?x?q?=?=", "=?=?=?", "caf\xe9", "=?utf-16?b?//4=?="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := DecodeHeader(s)
		if !utf8.ValidString(out) {
			t.Fatalf("DecodeHeader(%q) = %q: not UTF-8", s, out)
		}
		if !strings.Contains(s, "=?") && utf8.ValidString(s) && out != s {
			t.Fatalf("DecodeHeader(%q) = %q: changed plain text", s, out)
		}
	})
}

func FuzzParseSection(f *testing.F) {
	for _, s := range []string{"", "1.2.MIME", "HEADER.FIELDS (a \"b\")", "2.HEADER.FIELDS.NOT (x)", "1.0"} {
		f.Add(s)
	}
	raw := load(f, "forward.eml")
	p := Parse(raw)
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := ParseSection(s)
		if err != nil {
			return
		}
		if _, err := p.FetchSection(raw, spec); err != nil && err != ErrNoSection {
			t.Fatalf("FetchSection(%q): %v", s, err)
		}
	})
}
