package message

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
)

// toUTF8 converts text in the named charset to valid UTF-8, for searching
// (RFC 9051 6.4.4 compares decoded text) and for RFC 2231 parameter values.
//
// Charset names are looked up in the WHATWG table (htmlindex), which knows
// the labels mail uses (us-ascii, iso-8859-x, windows-125x, koi8-r, gb2312,
// gbk, gb18030, big5, shift_jis, euc-jp, iso-2022-jp, euc-kr, utf-16) and
// maps them as mail clients do (iso-8859-1 read as windows-1252, gb2312 as
// gbk), then in the IANA table. Text that is labelled UTF-8 or US-ASCII,
// or has an unknown or no charset, and is not valid UTF-8 is read as
// windows-1252, the most common mislabelled 8-bit text. The output is
// always valid UTF-8.
func toUTF8(charset string, b []byte) []byte {
	cs := strings.ToLower(strings.Trim(charset, " \t\""))
	switch cs {
	case "", "us-ascii", "ascii", "utf-8", "utf8", "unknown-8bit", "x-unknown":
		return fixUTF8(b)
	}
	if asciiOnly(b) && !strings.Contains(cs, "2022") && !strings.HasPrefix(cs, "utf-") {
		return b // ASCII reads the same in every ASCII-based charset
	}
	enc := lookupCharset(cs)
	if enc == nil {
		return fixUTF8(b)
	}
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return fixUTF8(b)
	}
	if !utf8.Valid(out) {
		out = []byte(strings.ToValidUTF8(string(out), "\uFFFD"))
	}
	return out
}

func lookupCharset(cs string) encoding.Encoding {
	if enc, err := htmlindex.Get(cs); err == nil {
		return enc
	}
	if enc, err := ianaindex.IANA.Encoding(cs); err == nil && enc != nil {
		return enc
	}
	return nil
}

// fixUTF8 returns b if it is valid UTF-8, else b read as windows-1252.
func fixUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out, err := charmap.Windows1252.NewDecoder().Bytes(b)
	if err != nil || !utf8.Valid(out) {
		return []byte(strings.ToValidUTF8(string(b), "\uFFFD"))
	}
	return out
}

func asciiOnly(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// DecodeHeader decodes the RFC 2047 encoded-words of a header value to
// UTF-8; other text is kept (8-bit text that is not UTF-8 is read as
// windows-1252). It is lenient as mail needs: encoded-words are also found
// inside quoted strings and next to other text; blanks between two
// adjacent encoded-words are dropped (RFC 2047 6.2); the octets of
// adjacent words in one charset are joined before conversion, so a
// character split across words survives; "charset*lang" is accepted
// (RFC 2231 5). Malformed words are kept as text. The result is valid UTF-8.
func DecodeHeader(s string) string {
	if !strings.Contains(s, "=?") {
		return string(fixUTF8([]byte(s)))
	}
	var out []byte
	var pend []byte // decoded octets of the current run of encoded-words
	pendCS := ""
	inRun := false
	flush := func() {
		if inRun {
			out = append(out, toUTF8(pendCS, pend)...)
			pend, inRun = pend[:0], false
		}
	}
	i := 0
	for i < len(s) {
		j := strings.Index(s[i:], "=?")
		if j < 0 {
			break
		}
		j += i
		cs, word, end, ok := encodedWord(s, j)
		if !ok {
			flush()
			out = append(out, fixUTF8([]byte(s[i:j+2]))...)
			i = j + 2
			continue
		}
		between := s[i:j]
		if !inRun || strings.Trim(between, " \t\r\n") != "" {
			flush()
			out = append(out, fixUTF8([]byte(between))...)
		}
		if inRun && !strings.EqualFold(cs, pendCS) {
			flush()
		}
		pend, pendCS, inRun = append(pend, word...), cs, true
		i = end
	}
	flush()
	out = append(out, fixUTF8([]byte(s[i:]))...)
	return string(out)
}

// encodedWord reads "=?charset?encoding?encoded-text?=" at s[j] (RFC 2047
// 2) and returns the charset, the decoded octets and the offset after it.
func encodedWord(s string, j int) (charset string, word []byte, end int, ok bool) {
	p := j + 2
	q := strings.IndexByte(s[p:], '?')
	if q <= 0 || q > 75 {
		return "", nil, 0, false
	}
	charset = s[p : p+q]
	if strings.ContainsAny(charset, " \t\r\n=") {
		return "", nil, 0, false
	}
	if star := strings.IndexByte(charset, '*'); star >= 0 {
		charset = charset[:star] // RFC 2231 5: charset*language
	}
	p += q + 1
	if p+1 >= len(s) || s[p+1] != '?' {
		return "", nil, 0, false
	}
	enc := s[p] | 0x20
	p += 2
	t := strings.IndexByte(s[p:], '?')
	if t < 0 || p+t+1 >= len(s) || s[p+t+1] != '=' {
		return "", nil, 0, false
	}
	text := s[p : p+t]
	switch enc {
	case 'b':
		base64Decode(&word, []byte(text), false)
	case 'q':
		// RFC 2047 4.2: "_" is a space, "=XX" an octet.
		for k := 0; k < len(text); k++ {
			c := text[k]
			switch {
			case c == '_':
				word = append(word, ' ')
			case c == '=' && k+2 < len(text) && isHex(text[k+1]) && isHex(text[k+2]):
				word = append(word, unhex(text[k+1])<<4|unhex(text[k+2]))
				k += 2
			default:
				word = append(word, c)
			}
		}
	default:
		return "", nil, 0, false
	}
	return charset, word, p + t + 2, true
}
