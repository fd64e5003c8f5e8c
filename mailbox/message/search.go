package message

import (
	"bytes"
	"unicode"
	"unicode/utf8"
)

// Search text is decoded when SEARCH runs, not stored in the blob (as
// Dovecot does without a full-text index). Storing it would roughly double
// the store for text mail and fix today's decoding into it forever; the
// blob instead records where every part is, so SEARCH BODY/TEXT reads and
// decodes only the text/* parts and skips the attachments that make up most
// of a mailbox's octets, and SEARCH SUBJECT/FROM/HEADER read only the
// header. Each result is bounded by a caller's limit.

// DefaultSearchLimit bounds BodyText and HeaderText when the caller gives
// no limit.
const DefaultSearchLimit = 4 << 20

// HeaderValue returns the values of the fields named name (ASCII
// case-insensitive) in p's header, unfolded and decoded to UTF-8
// (RFC 2047 encoded-words and charsets; see DecodeHeader), for SEARCH
// SUBJECT, FROM, TO, CC, BCC and HEADER (RFC 9051 6.4.4). Call it on the
// root for the message header.
func (p *Part) HeaderValue(raw []byte, name string) []string {
	var vals []string
	walkHeader(raw, p.HeaderStart, min(p.BodyStart, len(raw)), func(f field) bool {
		if fieldIsFold(f.name, name) {
			vals = append(vals, DecodeHeader(fieldValue(raw, f)))
		}
		return true
	})
	return vals
}

// HeaderText returns all fields of p's header as "Name: decoded value"
// lines, at most limit octets (DefaultSearchLimit when limit <= 0), for
// SEARCH TEXT, which matches "the header (including MIME header fields) or
// body of the message" (RFC 9051 6.4.4).
func (p *Part) HeaderText(raw []byte, limit int) []byte {
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	return p.appendHeaderText(nil, raw, limit)
}

func (p *Part) appendHeaderText(out, raw []byte, limit int) []byte {
	walkHeader(raw, p.HeaderStart, min(p.BodyStart, len(raw)), func(f field) bool {
		// RFC 5322 2.2: a field name is printable US-ASCII, but a broken
		// message may have others; the search text stays valid UTF-8.
		out = append(out, fixUTF8(f.name)...)
		out = append(out, ": "...)
		out = append(out, DecodeHeader(fieldValue(raw, f))...)
		out = append(out, '\n')
		return len(out) < limit
	})
	return truncateUTF8(out, limit)
}

// BodyText returns the decoded text of the message body for SEARCH BODY
// and TEXT (RFC 9051 6.4.4): every text/* part with its transfer encoding
// removed and converted to UTF-8 (see toUTF8), and the headers and text of
// encapsulated messages, which are part of the body; other parts are
// skipped. Parts are separated by a line feed. At most limit octets
// (DefaultSearchLimit when limit <= 0). Call it on the root.
func (p *Part) BodyText(raw []byte, limit int) []byte {
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	return truncateUTF8(p.appendBodyText(nil, raw, limit), limit)
}

func (p *Part) appendBodyText(out, raw []byte, limit int) []byte {
	if len(out) >= limit {
		return out
	}
	switch {
	case p.IsMultipart():
		for _, c := range p.Children {
			out = c.appendBodyText(out, raw, limit)
		}
	case p.IsMessage():
		if len(p.Children) > 0 {
			msg := p.Children[0]
			out = msg.appendHeaderText(out, raw, limit)
			out = msg.appendBodyText(out, raw, limit)
		}
	case p.IsText():
		body := p.Body(raw)
		if len(body) > 4*limit {
			body = body[:4*limit] // base64 is 4/3 of its text; charsets at most ~3x
		}
		text, err := decodeCTE(p.Encoding, body)
		if err != nil {
			text = body // unknown encoding: search what is there
		}
		out = append(out, toUTF8(p.Param("charset"), text)...)
		out = append(out, '\n')
	}
	return out
}

// truncateUTF8 cuts b to at most limit octets, not inside a UTF-8 sequence.
func truncateUTF8(b []byte, limit int) []byte {
	if len(b) <= limit {
		return b
	}
	b = b[:limit]
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		r, size := utf8.DecodeLastRune(b)
		if r != utf8.RuneError || size > 1 {
			break
		}
		b = b[:len(b)-1]
	}
	return b
}

// ContainsFold reports whether needle occurs in haystack with Unicode
// simple case folding (the equivalence of strings.EqualFold, rune by rune):
// RFC 9051 6.4.4 SEARCH string matching is case-insensitive. Both are
// UTF-8; invalid octets match only themselves. An empty needle matches.
func ContainsFold(haystack, needle []byte) bool {
	if len(needle) == 0 {
		return true
	}
	if asciiOnly(needle) && asciiOnly(haystack) {
		return indexFoldASCII(haystack, needle) >= 0
	}
	return bytes.Contains(foldBytes(haystack), foldBytes(needle))
}

// indexFoldASCII finds needle in haystack ignoring ASCII case, without
// allocating: it jumps between occurrences of the needle's first octet.
func indexFoldASCII(h, n []byte) int {
	first := lowerASCII(n[0])
	other := upperASCII(n[0])
	for i := 0; i+len(n) <= len(h); {
		j := indexEither(h[i:len(h)-len(n)+1], first, other)
		if j < 0 {
			return -1
		}
		i += j
		k := 1
		for k < len(n) && lowerASCII(h[i+k]) == lowerASCII(n[k]) {
			k++
		}
		if k == len(n) {
			return i
		}
		i++
	}
	return -1
}

func indexEither(b []byte, x, y byte) int {
	if x == y {
		return bytes.IndexByte(b, x)
	}
	i := bytes.IndexByte(b, x)
	j := bytes.IndexByte(b, y)
	switch {
	case i < 0:
		return j
	case j < 0 || i < j:
		return i
	}
	return j
}

// foldBytes maps every rune to a canonical member of its simple case
// folding orbit (the smallest), so that two strings that are EqualFold
// become equal octets. Invalid octets are kept.
func foldBytes(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		c := b[0]
		if c < utf8.RuneSelf {
			out = append(out, upperASCII(c)) // ASCII orbits' smallest is upper case
			b = b[1:]
			continue
		}
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			out = append(out, c)
			b = b[1:]
			continue
		}
		out = utf8.AppendRune(out, foldRune(r))
		b = b[size:]
	}
	return out
}

// foldRune returns the smallest rune of r's simple folding orbit.
func foldRune(r rune) rune {
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < least {
			least = f
		}
	}
	return least
}
