package message

import (
	"bytes"
	"strings"
)

// field is one header field found by walkHeader: raw[start:end] is the whole
// field, folded lines and final line break included; its value starts at
// valueStart (just after the colon).
type field struct {
	name              []byte
	start, valueStart int
	end               int
}

// walkHeader scans the header block that starts at raw[start] and calls fn
// for each field while fn returns true. The header ends at the first empty
// line (RFC 5322 2.1; a bare LF counts as a line break, as messages given
// to APPEND may have them); it returns the offset just past that line, or
// end when there is none (the whole part is header).
//
// A line that is neither a field nor a continuation (no colon) is skipped
// and the header goes on, as Dovecot does. Fields past MaxHeaderParse octets
// are not reported, but the header still runs to its blank line, so a huge
// header costs one linear scan.
func walkHeader(raw []byte, start, end int, fn func(f field) bool) (bodyStart int) {
	start, end = max(start, 0), min(end, len(raw)) // offsets from a blob are not trusted
	budget := start + MaxHeaderParse
	cur := field{start: -1}
	report := fn != nil
	flush := func(at int) {
		if cur.start >= 0 && report {
			cur.end = at
			if !fn(cur) {
				report = false
			}
		}
		cur.start = -1
	}
	pos := start
	for pos < end {
		lineEnd := end
		if nl := bytes.IndexByte(raw[pos:end], '\n'); nl >= 0 {
			lineEnd = pos + nl + 1
		}
		c := raw[pos]
		if c == '\n' || (c == '\r' && pos+1 < end && raw[pos+1] == '\n') {
			flush(pos)
			return lineEnd
		}
		if c == ' ' || c == '\t' {
			pos = lineEnd // RFC 5322 2.2.3: a folded continuation line
			continue
		}
		flush(pos)
		if report && pos < budget {
			if colon := bytes.IndexByte(raw[pos:lineEnd], ':'); colon > 0 {
				name := bytes.TrimRight(raw[pos:pos+colon], " \t") // obs-optional (RFC 5322 4.5.8)
				if len(name) > 0 {
					cur = field{name: name, start: pos, valueStart: pos + colon + 1}
				}
			}
		}
		pos = lineEnd
	}
	flush(end)
	return end
}

// fieldValue is a field's value unfolded (RFC 5322 2.2.3: CR and LF
// removed), NULs dropped, blanks trimmed at both ends.
func fieldValue(raw []byte, f field) string {
	v := clamp(raw, f.valueStart, f.end)
	if len(v) > MaxHeaderParse {
		v = v[:MaxHeaderParse] // a field folded over megabytes: keep the start
	}
	var b strings.Builder
	b.Grow(len(v))
	for _, c := range v {
		if c != '\r' && c != '\n' && c != 0 {
			b.WriteByte(c)
		}
	}
	return strings.Trim(b.String(), " \t")
}

// fieldIs compares a field name with a lower-case name, ignoring ASCII case
// (RFC 5322 1.2.2).
func fieldIs(name []byte, lower string) bool {
	if len(name) != len(lower) {
		return false
	}
	for i, c := range name {
		if lowerASCII(c) != lower[i] {
			return false
		}
	}
	return true
}

// mimeLexer reads the structured MIME fields: Content-Type (RFC 2045 5.1),
// Content-Transfer-Encoding (6.1), Content-Disposition (RFC 2183 2),
// Content-Language (RFC 3282). It is lenient: comments are skipped
// anywhere, 8-bit octets are accepted in tokens, unquoted values with
// tspecials are taken up to the next ";".
type mimeLexer struct {
	s   string
	pos int
}

// skipCFWS skips blanks and (nested) comments (RFC 5322 3.2.2).
func (l *mimeLexer) skipCFWS() {
	for l.pos < len(l.s) {
		switch l.s[l.pos] {
		case ' ', '\t', '\r', '\n':
			l.pos++
		case '(':
			l.pos = skipComment(l.s, l.pos)
		default:
			return
		}
	}
}

// skipComment returns the offset after the comment that opens at s[i],
// nested comments and quoted-pairs included; an unclosed comment runs to the
// end. Depth needs no cap: it is a counter, not recursion.
func skipComment(s string, i int) int {
	depth := 0
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return len(s)
}

// isTSpecial: RFC 2045 5.1 tspecials.
func isTSpecial(c byte) bool {
	return strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0
}

func (l *mimeLexer) token() string {
	start := l.pos
	for l.pos < len(l.s) {
		c := l.s[l.pos]
		if c <= ' ' || c == 0x7f || isTSpecial(c) {
			break
		}
		l.pos++
	}
	return l.s[start:l.pos]
}

func (l *mimeLexer) peek() byte {
	if l.pos < len(l.s) {
		return l.s[l.pos]
	}
	return 0
}

// quoted reads a quoted-string at l.pos (which is '"') and returns it
// unquoted; an unclosed one runs to the end.
func (l *mimeLexer) quoted() string {
	var b strings.Builder
	for l.pos++; l.pos < len(l.s); l.pos++ {
		c := l.s[l.pos]
		switch {
		case c == '"':
			l.pos++
			return b.String()
		case c == '\\' && l.pos+1 < len(l.s):
			l.pos++
			b.WriteByte(l.s[l.pos])
		case c == '\r' || c == '\n':
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// skipTo moves past the next c (or to the end).
func (l *mimeLexer) skipTo(c byte) {
	if i := strings.IndexByte(l.s[l.pos:], c); i >= 0 {
		l.pos += i + 1
	} else {
		l.pos = len(l.s)
	}
}

// parseMediaType parses "type/subtype *(; param)" (RFC 2045 5.1). ok is
// false when type or subtype is missing: RFC 2045 5.2 then has the part
// taken as text/plain; charset=us-ascii.
func parseMediaType(v string) (typ, sub string, params []Param, ok bool) {
	l := &mimeLexer{s: v}
	l.skipCFWS()
	typ = strings.ToLower(l.token())
	l.skipCFWS()
	if typ == "" || l.peek() != '/' {
		return "", "", nil, false
	}
	l.pos++
	l.skipCFWS()
	sub = strings.ToLower(l.token())
	if sub == "" {
		return "", "", nil, false
	}
	return typ, sub, l.params(), true
}

// parseDisposition parses "type *(; param)" (RFC 2183 2).
func parseDisposition(v string) (typ string, params []Param) {
	l := &mimeLexer{s: v}
	l.skipCFWS()
	typ = strings.ToLower(l.token())
	if typ == "" {
		return "", nil
	}
	return typ, l.params()
}

// parseSingleToken reads one token, as for Content-Transfer-Encoding
// (RFC 2045 6.1), lower case.
func parseSingleToken(v string) string {
	l := &mimeLexer{s: v}
	l.skipCFWS()
	return strings.ToLower(l.token())
}

// parseLanguages reads Content-Language: a comma-separated list of
// language tags (RFC 3282 2).
func parseLanguages(v string) []string {
	var tags []string
	l := &mimeLexer{s: v}
	for l.pos < len(l.s) && len(tags) < maxLanguages {
		l.skipCFWS()
		start := l.pos
		for l.pos < len(l.s) && l.s[l.pos] != ',' && l.s[l.pos] != '(' && l.s[l.pos] > ' ' {
			l.pos++
		}
		if tag := l.s[start:l.pos]; tag != "" {
			tags = append(tags, tag)
		}
		l.skipCFWS()
		if l.pos < len(l.s) && l.s[l.pos] != ',' {
			l.skipTo(',')
		} else if l.pos < len(l.s) {
			l.pos++
		}
	}
	return tags
}

// params reads *(";" attribute "=" value) and joins RFC 2231 sections.
func (l *mimeLexer) params() []Param {
	var raws []rawParam
	for l.pos < len(l.s) && len(raws) < maxParams {
		l.skipCFWS()
		if l.peek() != ';' {
			l.skipTo(';') // junk after the previous item
		} else {
			l.pos++
		}
		l.skipCFWS()
		attr := strings.ToLower(l.token())
		l.skipCFWS()
		if attr == "" || l.peek() != '=' {
			continue
		}
		l.pos++
		l.skipCFWS()
		var value string
		if l.peek() == '"' {
			value = l.quoted()
		} else {
			start := l.pos
			value = l.token()
			l.skipCFWS()
			if c := l.peek(); c != ';' && c != 0 {
				// Unquoted tspecials or blanks, common in the wild
				// ("boundary=----=_Part_1", "name=my file.pdf"): take
				// everything to the next ";".
				end := strings.IndexByte(l.s[start:], ';')
				if end < 0 {
					end = len(l.s) - start
				}
				value = strings.TrimRight(l.s[start:start+end], " \t")
				l.pos = start + end
			}
		}
		raws = append(raws, splitParamName(attr, value))
	}
	return joinRFC2231(raws)
}

// rawParam is a parameter before RFC 2231 joining.
type rawParam struct {
	base     string // name without the RFC 2231 suffix
	section  int    // -1 when the name had no section number
	extended bool   // the value is charset'language'%-encoded (section 0) or %-encoded
	value    string
}

// splitParamName recognises the RFC 2231 forms "name*", "name*N" and
// "name*N*" (sections 3 and 4). Anything else is a plain name.
func splitParamName(attr, value string) rawParam {
	star := strings.IndexByte(attr, '*')
	if star <= 0 {
		return rawParam{base: attr, section: -1, value: value}
	}
	base, rest := attr[:star], attr[star+1:]
	if rest == "" {
		return rawParam{base: base, section: -1, extended: true, value: value}
	}
	ext := strings.HasSuffix(rest, "*")
	rest = strings.TrimSuffix(rest, "*")
	n := 0
	if len(rest) == 0 || len(rest) > 3 || (len(rest) > 1 && rest[0] == '0') {
		return rawParam{base: attr, section: -1, value: value}
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] < '0' || rest[i] > '9' {
			return rawParam{base: attr, section: -1, value: value}
		}
		n = n*10 + int(rest[i]-'0')
	}
	return rawParam{base: base, section: n, extended: ext, value: value}
}

// joinRFC2231 merges the sections of each RFC 2231 parameter in section
// order (RFC 2231 3: sections may appear in any order), decodes the
// %-escapes of extended sections and converts the whole to UTF-8 using the
// charset of the first section (RFC 2231 4). Plain parameters stay as
// they are; the first of two parameters with the same name wins.
func joinRFC2231(raws []rawParam) []Param {
	var out []Param
	seen := func(name string) bool {
		for _, p := range out {
			if p.Name == name {
				return true
			}
		}
		return false
	}
	for i, r := range raws {
		if !r.extended && r.section < 0 {
			if !seen(r.base) {
				out = append(out, Param{Name: r.base, Value: r.value})
			}
			continue
		}
		// An RFC 2231 parameter: gather its sections at its first one.
		first := true
		for _, q := range raws[:i] {
			if q.base == r.base && (q.extended || q.section >= 0) {
				first = false
				break
			}
		}
		if !first {
			continue
		}
		var sections []rawParam
		for _, q := range raws[i:] {
			if q.base == r.base && (q.extended || q.section >= 0) {
				sections = append(sections, q)
			}
		}
		out = appendJoined(out, r.base, sections, seen)
	}
	return out
}

func appendJoined(out []Param, base string, sections []rawParam, seen func(string) bool) []Param {
	// Insertion sort by section: at most maxParams entries.
	for i := 1; i < len(sections); i++ {
		for j := i; j > 0 && sections[j].section < sections[j-1].section; j-- {
			sections[j], sections[j-1] = sections[j-1], sections[j]
		}
	}
	var value []byte
	charset := ""
	extended := false
	last := -2
	for k, s := range sections {
		if s.section == last {
			continue // duplicate section number: keep the first
		}
		last = s.section
		v := s.value
		if s.extended {
			extended = true
			if k == 0 {
				// RFC 2231 4: charset'language'value in the first section.
				if q1 := strings.IndexByte(v, '\''); q1 >= 0 {
					if q2 := strings.IndexByte(v[q1+1:], '\''); q2 >= 0 {
						charset = v[:q1]
						v = v[q1+1+q2+1:]
					}
				}
			}
			value = appendPercentDecoded(value, v)
		} else {
			value = append(value, v...)
		}
	}
	name := base
	text := string(value)
	if extended {
		name = base + "*"
		text = string(toUTF8(charset, value))
	}
	if seen(name) {
		return out
	}
	return append(out, Param{Name: name, Value: text})
}

func appendPercentDecoded(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		dst = append(dst, s[i])
	}
	return dst
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
