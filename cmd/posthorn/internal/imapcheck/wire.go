package imapcheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"posthorn/protocol/imap"
)

// The client side of the wire: a whole response is read (its literals
// included) and then parsed from memory, so the parser is pure and the
// unit tests feed it bytes. Only what the checker looks at is parsed in
// detail; everything else is skipped by the grammar of RFC 9051 9.

const (
	maxLine    = 1 << 20  // one line of a response, CRLF included
	maxLiteral = 64 << 20 // one literal (bodies are far smaller)
	maxSetSize = 1 << 20  // UIDs expanded from one sequence set
)

// response is one server response.
type response struct {
	tag    string // "*" untagged, "+" continuation, else a command's tag
	num    uint32 // n of "* n EXISTS", "* n EXPUNGE", "* n FETCH"
	hasNum bool
	kind   string // upper case: OK NO BAD BYE PREAUTH EXISTS EXPUNGE FETCH SEARCH ESEARCH FLAGS ...
	code   string // status response code name, upper case: "APPENDUID"
	args   string // the rest of the response code: "1 7"
	text   string // human-readable text of a status response
	fetch  *fetchData
	search []uint32 // "* SEARCH" numbers
	esrch  *esearchData
	line   string // printable form for messages
	stamp  uint64 // logical clock when it was read (model.now)
}

// fetchData is what the checker reads from "* n FETCH (...)".
type fetchData struct {
	uid      uint32
	hasUID   bool
	flags    []string
	hasFlags bool
	body     []byte // BODY[] (the whole message)
	hasBody  bool
	bodyNil  bool
}

// esearchData is an ESEARCH response (RFC 4731 3.1, RFC 9051 7.3.4).
type esearchData struct {
	tag      string
	uid      bool
	all      []uint32
	hasAll   bool
	count    uint32
	hasCount bool
}

// readRaw reads one response: a line, and while it ends in a literal's
// "{n}", the n octets and the line that continues after them (RFC 9051
// 4.3).
func readRaw(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		line, err := readLine(br)
		if err != nil {
			return nil, err
		}
		buf = append(buf, line...)
		n, ok := literalSuffix(line)
		if !ok {
			return buf, nil
		}
		if n > maxLiteral {
			return nil, fmt.Errorf("literal of %d octets", n)
		}
		start := len(buf)
		buf = append(buf, make([]byte, n)...)
		if _, err := io.ReadFull(br, buf[start:]); err != nil {
			return nil, err
		}
	}
}

// readLine reads up to and including LF, at most maxLine octets.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		part, err := br.ReadSlice('\n')
		line = append(line, part...)
		if len(line) > maxLine {
			return nil, fmt.Errorf("response line over %d octets", maxLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return line, err
	}
}

// literalSuffix reports the size of the literal announced at the end of
// line ("{n}\r\n", "{n+}\r\n" or literal8's "~{n}\r\n").
func literalSuffix(line []byte) (int, bool) {
	l, ok := bytes.CutSuffix(line, []byte("}\r\n"))
	if !ok {
		return 0, false
	}
	l = bytes.TrimSuffix(l, []byte("+"))
	i := bytes.LastIndexByte(l, '{')
	if i < 0 || i == len(l)-1 {
		return 0, false
	}
	n, err := strconv.Atoi(string(l[i+1:]))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// printable is the first line of a response with its literals elided, for
// messages.
func printable(raw []byte) string {
	line, rest, _ := bytes.Cut(raw, []byte("\r\n"))
	s := string(line)
	if len(rest) > 0 {
		s += fmt.Sprintf(" ...(%d more octets)", len(rest))
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// cursor walks a raw response.
type cursor struct {
	b []byte
	i int
}

var errSyntax = errors.New("response syntax")

func (c *cursor) peek() byte {
	if c.i < len(c.b) {
		return c.b[c.i]
	}
	return 0
}

func (c *cursor) accept(ch byte) bool {
	if c.peek() == ch {
		c.i++
		return true
	}
	return false
}

func (c *cursor) expect(ch byte) error {
	if !c.accept(ch) {
		return fmt.Errorf("%w: expected %q at offset %d", errSyntax, ch, c.i)
	}
	return nil
}

// atom reads up to SP, a parenthesis, CR or LF ("]" too when inBracket).
func (c *cursor) atom() string {
	start := c.i
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ' ', '(', ')', '\r', '\n':
			return string(c.b[start:c.i])
		}
		c.i++
	}
	return string(c.b[start:c.i])
}

func (c *cursor) number() (uint32, error) {
	a := c.atom()
	n, err := strconv.ParseUint(a, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: number %q", errSyntax, a)
	}
	return uint32(n), nil
}

// rest returns the remainder of the current line.
func (c *cursor) rest() string {
	end := bytes.IndexByte(c.b[c.i:], '\r')
	if end < 0 {
		end = len(c.b) - c.i
	}
	s := string(c.b[c.i : c.i+end])
	c.i += end
	return s
}

// quoted reads a quoted string (RFC 9051 9, quoted).
func (c *cursor) quoted() (string, error) {
	if err := c.expect('"'); err != nil {
		return "", err
	}
	var b strings.Builder
	for c.i < len(c.b) {
		ch := c.b[c.i]
		c.i++
		switch ch {
		case '"':
			return b.String(), nil
		case '\\':
			if c.i < len(c.b) {
				b.WriteByte(c.b[c.i])
				c.i++
			}
		case '\r', '\n':
			return "", fmt.Errorf("%w: line end in quoted string", errSyntax)
		default:
			b.WriteByte(ch)
		}
	}
	return "", fmt.Errorf("%w: unterminated quoted string", errSyntax)
}

// literal reads "{n}" CRLF and n octets (and "~{n}", literal8).
func (c *cursor) literal() ([]byte, error) {
	c.accept('~')
	if err := c.expect('{'); err != nil {
		return nil, err
	}
	end := bytes.IndexByte(c.b[c.i:], '}')
	if end < 0 {
		return nil, fmt.Errorf("%w: unterminated literal size", errSyntax)
	}
	digits := strings.TrimSuffix(string(c.b[c.i:c.i+end]), "+")
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("%w: literal size %q", errSyntax, digits)
	}
	c.i += end + 1
	if !bytes.HasPrefix(c.b[c.i:], []byte("\r\n")) || len(c.b)-c.i-2 < n {
		return nil, fmt.Errorf("%w: literal of %d octets cut short", errSyntax, n)
	}
	c.i += 2
	data := c.b[c.i : c.i+n]
	c.i += n
	return data, nil
}

// nstring reads NIL, a quoted string or a literal; nil data means NIL.
func (c *cursor) nstring() ([]byte, error) {
	switch c.peek() {
	case '"':
		s, err := c.quoted()
		return []byte(s), err
	case '{', '~':
		return c.literal()
	}
	if a := c.atom(); !strings.EqualFold(a, "NIL") {
		return nil, fmt.Errorf("%w: expected nstring, got %q", errSyntax, a)
	}
	return nil, nil
}

// skipValue skips any value: a list, string, literal, number or atom.
func (c *cursor) skipValue(depth int) error {
	if depth > 100 {
		return fmt.Errorf("%w: nested too deeply", errSyntax)
	}
	switch c.peek() {
	case '(':
		c.i++
		for {
			switch c.peek() {
			case ')':
				c.i++
				return nil
			case ' ':
				c.i++
			case 0, '\r', '\n':
				return fmt.Errorf("%w: unterminated list", errSyntax)
			default:
				if err := c.skipValue(depth + 1); err != nil {
					return err
				}
			}
		}
	case '"':
		_, err := c.quoted()
		return err
	case '{', '~':
		_, err := c.literal()
		return err
	}
	if c.atom() == "" {
		return fmt.Errorf("%w: empty value at offset %d", errSyntax, c.i)
	}
	return nil
}

// flagList reads "(" [flag *(SP flag)] ")".
func (c *cursor) flagList() ([]string, error) {
	if err := c.expect('('); err != nil {
		return nil, err
	}
	flags := []string{}
	for !c.accept(')') {
		if len(flags) > 0 {
			if err := c.expect(' '); err != nil {
				return nil, err
			}
		}
		f := c.atom()
		if f == "" {
			return nil, fmt.Errorf("%w: empty flag", errSyntax)
		}
		flags = append(flags, f)
	}
	return flags, nil
}

// parseResponse parses one raw response as read by readRaw.
func parseResponse(raw []byte) (*response, error) {
	r := &response{line: printable(raw)}
	c := &cursor{b: raw}
	r.tag = c.atom()
	if r.tag == "" {
		return nil, fmt.Errorf("%w: no tag", errSyntax)
	}
	if r.tag == "+" {
		c.accept(' ')
		r.text = c.rest()
		return r, nil
	}
	if err := c.expect(' '); err != nil {
		return nil, err
	}
	if r.tag == "*" && c.peek() >= '0' && c.peek() <= '9' {
		n, err := c.number()
		if err != nil {
			return nil, err
		}
		r.num, r.hasNum = n, true
		if err := c.expect(' '); err != nil {
			return nil, err
		}
	}
	r.kind = strings.ToUpper(c.atom())
	var err error
	switch r.kind {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
		err = c.status(r)
	case "FETCH":
		if !r.hasNum {
			return nil, fmt.Errorf("%w: FETCH without a number", errSyntax)
		}
		if err := c.expect(' '); err != nil {
			return nil, err
		}
		r.fetch, err = c.fetchAtts()
	case "SEARCH":
		for c.accept(' ') {
			n, err := c.number()
			if err != nil {
				return nil, err
			}
			r.search = append(r.search, n)
		}
	case "ESEARCH":
		r.esrch, err = c.esearch()
	case "EXISTS", "EXPUNGE", "RECENT":
		if !r.hasNum {
			return nil, fmt.Errorf("%w: %s without a number", errSyntax, r.kind)
		}
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// status reads [SP "[" code "]"] [SP text] (RFC 9051 9, resp-text).
func (c *cursor) status(r *response) error {
	if !c.accept(' ') {
		return nil
	}
	if c.accept('[') {
		end := bytes.IndexByte(c.b[c.i:], ']')
		nl := bytes.IndexByte(c.b[c.i:], '\n')
		if end < 0 || (nl >= 0 && nl < end) {
			return fmt.Errorf("%w: unterminated response code", errSyntax)
		}
		code := string(c.b[c.i : c.i+end])
		c.i += end + 1
		name, args, _ := strings.Cut(code, " ")
		r.code, r.args = strings.ToUpper(name), args
		c.accept(' ')
	}
	r.text = c.rest()
	return nil
}

// fetchAtts reads "(" msg-att *(SP msg-att) ")" (RFC 9051 7.5.2).
func (c *cursor) fetchAtts() (*fetchData, error) {
	f := &fetchData{}
	if err := c.expect('('); err != nil {
		return nil, err
	}
	for n := 0; !c.accept(')'); n++ {
		if n > 0 {
			if err := c.expect(' '); err != nil {
				return nil, err
			}
		}
		name := strings.ToUpper(c.attName())
		if err := c.expect(' '); err != nil {
			return nil, err
		}
		switch name {
		case "UID":
			uid, err := c.number()
			if err != nil {
				return nil, err
			}
			f.uid, f.hasUID = uid, true
		case "FLAGS":
			flags, err := c.flagList()
			if err != nil {
				return nil, err
			}
			f.flags, f.hasFlags = flags, true
		case "BODY[]", "RFC822":
			body, err := c.nstring()
			if err != nil {
				return nil, err
			}
			f.body, f.hasBody, f.bodyNil = body, true, body == nil
		case "":
			return nil, fmt.Errorf("%w: empty FETCH item name", errSyntax)
		default:
			if err := c.skipValue(0); err != nil {
				return nil, err
			}
		}
	}
	return f, nil
}

// attName reads a msg-att name: an atom that may hold a "[section]" (with
// spaces and parentheses inside) and a "<origin>".
func (c *cursor) attName() string {
	start := c.i
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case '[':
			end := bytes.IndexByte(c.b[c.i:], ']')
			if end < 0 {
				c.i = len(c.b)
				return string(c.b[start:])
			}
			c.i += end + 1
			continue
		case ' ', '(', ')', '\r', '\n':
			return string(c.b[start:c.i])
		}
		c.i++
	}
	return string(c.b[start:c.i])
}

// esearch reads [SP "(" "TAG" SP tag-string ")"] [SP "UID"] *(SP name SP
// value) (RFC 4731 3.1).
func (c *cursor) esearch() (*esearchData, error) {
	e := &esearchData{}
	for c.accept(' ') {
		if c.accept('(') {
			kw := strings.ToUpper(c.atom())
			if err := c.expect(' '); err != nil {
				return nil, err
			}
			if kw != "TAG" {
				return nil, fmt.Errorf("%w: ESEARCH correlator %q", errSyntax, kw)
			}
			tag, err := c.quoted()
			if err != nil {
				return nil, err
			}
			e.tag = tag
			if err := c.expect(')'); err != nil {
				return nil, err
			}
			continue
		}
		name := strings.ToUpper(c.atom())
		if name == "UID" {
			e.uid = true
			continue
		}
		if err := c.expect(' '); err != nil {
			return nil, err
		}
		val := c.atom()
		switch name {
		case "ALL":
			set, err := ExpandSet(val)
			if err != nil {
				return nil, err
			}
			e.all, e.hasAll = set, true
		case "COUNT":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%w: COUNT %q", errSyntax, val)
			}
			e.count, e.hasCount = uint32(n), true
		}
	}
	return e, nil
}

// ExpandSet expands a sequence set without "*" ("1:3,7") into its
// numbers, in the order written: COPYUID pairs its two sets by position
// (RFC 4315 3), so imap.SeqSet, which yields numbers ascending, would lose
// the pairing.
func ExpandSet(s string) ([]uint32, error) {
	var out []uint32
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil || a == 0 {
			return nil, fmt.Errorf("%w: sequence set %q", errSyntax, s)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 32); err != nil || b == 0 {
				return nil, fmt.Errorf("%w: sequence set %q", errSyntax, s)
			}
		}
		step := uint64(1)
		if b < a {
			step = ^uint64(0) // descending range "5:3": RFC 9051 9 allows either order
		}
		for n := a; ; n += step {
			if len(out) >= maxSetSize {
				return nil, fmt.Errorf("%w: sequence set %q too large", errSyntax, s)
			}
			out = append(out, uint32(n))
			if n == b {
				break
			}
		}
	}
	return out, nil
}

// FormatSet writes numbers as a compact sequence set ("1:3,7"), in
// ascending order, each once.
func FormatSet(nums []uint32) string {
	nums = slices.Clone(nums)
	slices.Sort(nums)
	var set imap.SeqSet
	for _, n := range slices.Compact(nums) {
		set.AddNum(n)
	}
	return set.String()
}
