package message

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeHeader(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"}, // RFC 2047 6.2: blanks between words dropped
		{"=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab"},
		{"=?utf-8?q?a?= b", "a b"},
		{"a =?utf-8?q?b?=", "a b"},
		{"=?utf-8?q?a_b?=", "a b"},
		{"=?UTF-8?B?w6k=?=", "é"},
		{"=?utf-8?q?=C3?= =?utf-8?q?=A9?=", "é"}, // one character split over two words
		{"=?iso-8859-1?q?caf=E9?=", "café"},
		{"=?utf-8*en?q?hi?=", "hi"}, // RFC 2231 5
		{"=?x-bogus?q?hi?=", "hi"},
		{"=?utf-8?x?hi?=", "=?utf-8?x?hi?="},
		{"=?utf-8?q?unterminated", "=?utf-8?q?unterminated"},
		{"\"=?utf-8?q?J=C3=B6rg?=\" <j@x>", "\"Jörg\" <j@x>"}, // inside quotes, as mailers do
		{"=?koi8-r?b?8NLJ18XU?=", "Привет"},
		{"=?windows-1251?b?z/Do4uXy?=", "Привет"},
		{"=?iso-8859-2?b?o/NkvA==?=", "Łódź"},
		{"=?iso-2022-jp?B?GyRCJUYlOSVIGyhC?=", "テスト"},
		{"=?shift_jis?b?g2WDWINn?=", "テスト"},
		{"=?euc-jp?b?xvzL3Ljs?=", "日本語"},
		{"=?gb2312?b?xOO6ww==?=", "你好"},
		{"=?big5?b?pKSk5Q==?=", "中文"},
		{"caf\xe9", "café"},      // unlabelled 8-bit: windows-1252
		{"=?utf-8?q?=FF?=", "ÿ"}, // not UTF-8 after all: windows-1252
	} {
		if got := DecodeHeader(c.in); got != c.want {
			t.Errorf("DecodeHeader(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}

func TestHeaderValue(t *testing.T) {
	g := load(t, "groups.eml")
	p := Parse(g)
	if got := p.HeaderValue(g, "SUBJECT"); !reflect.DeepEqual(got, []string{"this is some texté"}) {
		t.Errorf("Subject = %q", got)
	}
	if got := p.HeaderValue(g, "from"); !reflect.DeepEqual(got, []string{"André Pirard <PIRARD@vm1.ulg.ac.be>"}) {
		t.Errorf("From = %q", got)
	}
	if got := p.HeaderValue(g, "X-Missing"); got != nil {
		t.Errorf("X-Missing = %q", got)
	}
	a := load(t, "alternative.eml")
	if got := Parse(a).HeaderValue(a, "Subject"); !reflect.DeepEqual(got, []string{"Grüße aus Köln"}) {
		t.Errorf("Subject = %q", got)
	}
	ht := string(Parse(a).HeaderText(a, 0))
	if !strings.Contains(ht, "From: \"Müller, Jörg\" <joerg@example.de>\n") || !strings.Contains(ht, "Subject: Grüße aus Köln\n") {
		t.Errorf("HeaderText = %q", ht)
	}
}

func TestBodyText(t *testing.T) {
	for _, c := range []struct {
		file      string
		want, not []string
	}{
		{"alternative.eml", []string{"Grüße aus Köln.\r\nStraße\n", "Grüße aus Köln, STRAßE", "umbrochen wird"}, []string{"=FC", "boundary"}},
		{"mixed.eml", []string{"See the attached report.\n"}, []string{"JVBER", "PDF"}},
		{"forward.eml", []string{"See below.\n", "Subject: Lunch\n", "Lunch at noon?\n", "<b>Lunch</b>"}, []string{"Fwd"}},
		{"barelf.eml", []string{"one\ntwo\n", "élèphant\n"}, nil},
		{"groups.eml", []string{"=?utf-8?q?x?="}, nil}, // bodies are not RFC 2047 text
	} {
		raw := load(t, c.file)
		text := string(Parse(raw).BodyText(raw, 0))
		for _, w := range c.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: BodyText lacks %q: %q", c.file, w, text)
			}
		}
		for _, n := range c.not {
			if strings.Contains(text, n) {
				t.Errorf("%s: BodyText has %q: %q", c.file, n, text)
			}
		}
	}
	raw := load(t, "alternative.eml")
	for limit := 1; limit < 40; limit++ {
		text := Parse(raw).BodyText(raw, limit)
		if len(text) > limit || !utf8.Valid(text) {
			t.Fatalf("limit %d: %q", limit, text)
		}
	}
}

func TestContainsFold(t *testing.T) {
	for _, c := range []struct {
		h, n string
		want bool
	}{
		{"Hello World", "WORLD", true},
		{"Hello World", "worlds", false},
		{"Hello", "", true},
		{"", "a", false},
		{"Grüße aus KÖLN", "köln", true},
		{"STRASSE", "straße", false},            // simple folding only, as strings.EqualFold
		{"temperature 300\u212A", "300k", true}, // KELVIN SIGN folds to k
		{"\u017Fun", "SUN", true},               // LONG S folds to s
		{"ΣΊΣΥΦΟΣ", "σίσυφος", true},
		{"abc\xff", "C\xff", true},
		{"abc\xff", "c\xfe", false},
		{"aaaaab", "AAB", true},
	} {
		if got := ContainsFold([]byte(c.h), []byte(c.n)); got != c.want {
			t.Errorf("ContainsFold(%q, %q) = %v", c.h, c.n, got)
		}
	}
}

// containsFoldNaive is the definition: some substring of haystack is
// EqualFold to needle.
func containsFoldNaive(h, n string) bool {
	if n == "" {
		return true
	}
	for i := 0; i < len(h); i++ {
		for j := i + 1; j <= len(h); j++ {
			if strings.EqualFold(h[i:j], n) {
				return true
			}
		}
	}
	return false
}

func FuzzContainsFold(f *testing.F) {
	f.Add("Grüße aus KÖLN", "köln")
	f.Add("300\u212A", "K")
	f.Add("ſ", "s")
	f.Fuzz(func(t *testing.T, h, n string) {
		if len(h) > 64 || len(n) > 16 || !utf8.ValidString(h) || !utf8.ValidString(n) {
			return
		}
		if got, want := ContainsFold([]byte(h), []byte(n)), containsFoldNaive(h, n); got != want {
			t.Fatalf("ContainsFold(%q, %q) = %v; want %v", h, n, got, want)
		}
	})
}
