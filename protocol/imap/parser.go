package imap

import (
	"bytes"
	"math"
	"unicode/utf8"
)

// Parser reads the arguments of one command, token by token, in the order
// the command's grammar (RFC 9051 9) gives them. Each method either consumes
// its token and returns it, or consumes nothing useful and returns a
// *SyntaxError whose Msg can be the text of the BAD response. Nothing is
// skipped implicitly: separators are read with SP, and End checks that
// nothing is left.
//
// Literals appear in wire form ("{5}" CRLF "hello"); the Decoder has read
// them completely, so a Parser never waits for input. A Parser from
// NewParser works on any bytes, which is how the grammar is fuzzed.
type Parser struct {
	buf      []byte
	pos, end int
	depth    int
	maxDepth int
	utf8     bool
}

// NewParser returns a Parser over b, which holds arguments as they appear on
// the wire after the command name, without the final CRLF.
func NewParser(b []byte) *Parser {
	return &Parser{buf: b, end: len(b), maxDepth: DefaultDepth}
}

// SetUTF8 selects how Mailbox decodes names: as UTF-8 (IMAP4rev2, UTF8=ACCEPT)
// or as modified UTF-7 (IMAP4rev1). Command.Args sets it from the Decoder.
func (p *Parser) SetUTF8(on bool) { p.utf8 = on }

// Offset returns the position of the next octet, counted from the start of
// the command (Command.Args) or of the bytes (NewParser).
func (p *Parser) Offset() int { return p.pos }

func (p *Parser) fail(msg string) error { return &SyntaxError{Offset: p.pos, Msg: msg} }

func (p *Parser) failAt(pos int, msg string) error { return &SyntaxError{Offset: pos, Msg: msg} }

// Peek returns the next octet without consuming it, or 0 at the end.
func (p *Parser) Peek() byte {
	if p.pos >= p.end {
		return 0
	}
	return p.buf[p.pos]
}

// AtEnd reports whether all arguments have been read.
func (p *Parser) AtEnd() bool { return p.pos >= p.end }

// Accept consumes c if it is the next octet and reports whether it did.
func (p *Parser) Accept(c byte) bool {
	if p.pos < p.end && p.buf[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

// Expect consumes c or fails with "expected 'c'".
func (p *Parser) Expect(c byte) error {
	if p.Accept(c) {
		return nil
	}
	return p.fail("expected '" + string(rune(c)) + "'")
}

// SP consumes exactly one space (RFC 9051 2.2.1: "missing or extraneous
// spaces" are syntax errors).
func (p *Parser) SP() error {
	if p.Accept(' ') {
		return nil
	}
	return p.fail("expected SP")
}

// End fails unless all arguments have been read.
func (p *Parser) End() error {
	if p.pos < p.end {
		return p.fail("unexpected characters at end of command")
	}
	return nil
}

// run consumes the octets satisfying ok and returns them.
func (p *Parser) run(ok func(byte) bool) []byte {
	start := p.pos
	for p.pos < p.end && ok(p.buf[p.pos]) {
		p.pos++
	}
	return p.buf[start:p.pos]
}

// Atom reads an atom (1*ATOM-CHAR), as sent.
func (p *Parser) Atom() (string, error) {
	b := p.run(isAtomChar)
	if len(b) == 0 {
		return "", p.fail("expected atom")
	}
	return string(b), nil
}

// Keyword reads a grammar keyword (a FETCH attribute, SEARCH key, STATUS item,
// option name ...) and returns it upper-cased, since keywords are
// case-insensitive (RFC 9051 9). It is an atom that stops before "[" and "<",
// so "BODY.PEEK[TEXT]<0.100>" yields "BODY.PEEK" and leaves the section.
func (p *Parser) Keyword() (string, error) {
	b := p.run(isKeywordChar)
	if len(b) == 0 {
		return "", p.fail("expected keyword")
	}
	return upperASCII(b), nil
}

// AcceptKeyword consumes the keyword w (upper-case) if it comes next,
// ignoring case and not followed by more keyword octets.
func (p *Parser) AcceptKeyword(w string) bool {
	e := p.pos + len(w)
	if e > p.end || !equalFoldASCII(p.buf[p.pos:e], w) || (e < p.end && isKeywordChar(p.buf[e])) {
		return false
	}
	p.pos = e
	return true
}

// String reads a string: quoted or literal (RFC 9051 4.3).
func (p *Parser) String() (string, error) {
	b, err := p.stringBytes()
	return string(b), err
}

// AString reads an astring: 1*ASTRING-CHAR or a string.
func (p *Parser) AString() (string, error) {
	if c := p.Peek(); c == '"' || c == '{' {
		return p.String()
	}
	b := p.run(isAStringChar)
	if len(b) == 0 {
		return "", p.fail("expected atom or string")
	}
	return string(b), nil
}

// NString reads an nstring: a string, or NIL (any case), for which it returns
// ok false (RFC 9051 4.5: NIL is not the string "NIL").
func (p *Parser) NString() (s string, ok bool, err error) {
	if c := p.Peek(); c != '"' && c != '{' {
		if p.AcceptKeyword("NIL") {
			return "", false, nil
		}
		return "", false, p.fail("expected string or NIL")
	}
	s, err = p.String()
	return s, err == nil, err
}

// stringBytes reads a quoted string or literal. The result aliases the
// command unless the quoted string had escapes.
func (p *Parser) stringBytes() ([]byte, error) {
	switch p.Peek() {
	case '"':
		return p.quoted()
	case '{':
		b, _, err := p.literal(false)
		return b, err
	}
	return nil, p.fail("expected string")
}

// quoted reads DQUOTE *QUOTED-CHAR DQUOTE. QUOTED-CHAR excludes NUL, CR and
// LF; "\" may escape only DQUOTE and "\"; octets over 0x7F must form UTF-8
// (UTF8-2/3/4 of RFC 9051 9; RFC 6855 3 requires BAD for invalid UTF-8).
func (p *Parser) quoted() ([]byte, error) {
	p.pos++ // DQUOTE
	start, escapes := p.pos, false
	for {
		if p.pos >= p.end {
			return nil, p.fail("unterminated quoted string")
		}
		switch c := p.buf[p.pos]; {
		case c == '"':
			b := p.buf[start:p.pos]
			p.pos++
			if escapes {
				b = unescape(b)
			}
			return b, nil
		case c == '\\':
			if p.pos+1 >= p.end || (p.buf[p.pos+1] != '"' && p.buf[p.pos+1] != '\\') {
				return nil, p.fail(`invalid escape in quoted string (only \" and \\)`)
			}
			escapes = true
			p.pos += 2
		case c == 0:
			return nil, p.fail("NUL in quoted string")
		case c == '\r' || c == '\n':
			return nil, p.fail("CR or LF in quoted string")
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(p.buf[p.pos:p.end])
			if r == utf8.RuneError && size <= 1 {
				return nil, p.fail("invalid UTF-8 in quoted string")
			}
			p.pos += size
		default:
			p.pos++
		}
	}
}

// unescape removes the backslashes of a validated quoted string body.
func unescape(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' {
			i++
		}
		out = append(out, b[i])
	}
	return out
}

// Literal reads a literal or, when binary is allowed, a literal8 (RFC 3516
// 4.4, for APPEND) and reports which it was. The octets alias the command.
// A literal may not contain NUL (CHAR8, RFC 9051 9); a literal8 may.
func (p *Parser) Literal(allowBinary bool) (data []byte, binary bool, err error) {
	if p.Peek() == '~' {
		if !allowBinary {
			return nil, false, p.fail("literal8 not allowed here")
		}
		return p.literal(true)
	}
	if p.Peek() != '{' {
		return nil, false, p.fail("expected literal")
	}
	return p.literal(false)
}

// literal reads ["~"] "{" number64 ["+"] "}" CRLF and the octets.
func (p *Parser) literal(binary bool) ([]byte, bool, error) {
	start := p.pos
	if binary {
		p.pos++
	}
	if err := p.Expect('{'); err != nil {
		return nil, false, err
	}
	n, err := p.Number64()
	if err != nil {
		return nil, false, err
	}
	p.Accept('+')
	if err := p.Expect('}'); err != nil {
		return nil, false, err
	}
	if p.end-p.pos < 2 || p.buf[p.pos] != '\r' || p.buf[p.pos+1] != '\n' {
		return nil, false, p.fail("expected CRLF after literal size")
	}
	p.pos += 2
	if int64(p.end-p.pos) < n {
		return nil, false, p.failAt(start, "literal longer than the command")
	}
	data := p.buf[p.pos : p.pos+int(n)]
	if !binary {
		if i := bytes.IndexByte(data, 0); i >= 0 {
			return nil, false, p.failAt(p.pos+i, "NUL in literal (use literal8)")
		}
	}
	p.pos += int(n)
	return data, binary, nil
}

// digits reads 1*DIGIT (leading zeros allowed, as "number" permits),
// saturating above maxVal, and reports whether it overflowed.
func (p *Parser) digits(maxVal uint64) (v uint64, overflow bool, err error) {
	start := p.pos
	for p.pos < p.end && p.buf[p.pos] >= '0' && p.buf[p.pos] <= '9' {
		d := uint64(p.buf[p.pos] - '0')
		if v > (maxVal-d)/10 {
			overflow = true
		} else {
			v = v*10 + d
		}
		p.pos++
	}
	if p.pos == start {
		return 0, false, p.fail("expected number")
	}
	return v, overflow, nil
}

// Number reads a number: unsigned 32-bit (RFC 9051 9).
func (p *Parser) Number() (uint32, error) {
	start := p.pos
	v, over, err := p.digits(math.MaxUint32)
	if err == nil && over {
		err = p.failAt(start, "number out of range")
	}
	return uint32(v), err
}

// NzNumber reads an nz-number: digit-nz *DIGIT, below 2^32.
func (p *Parser) NzNumber() (uint32, error) {
	if c := p.Peek(); c < '1' || c > '9' {
		return 0, p.fail("expected non-zero number")
	}
	return p.Number()
}

// Number64 reads a number64: unsigned 63-bit (RFC 9051 9).
func (p *Parser) Number64() (int64, error) {
	start := p.pos
	v, over, err := p.digits(math.MaxInt64)
	if err == nil && over {
		err = p.failAt(start, "number out of range")
	}
	return int64(v), err
}

// List reads a parenthesised list (RFC 9051 4.4), calling item for each
// element; item reads one element and nothing else. The empty list "()" is
// accepted; a handler that needs an element checks its count. Nesting beyond
// Limits.Depth fails, so recursion through item is bounded.
func (p *Parser) List(item func(p *Parser) error) error {
	if err := p.Expect('('); err != nil {
		return err
	}
	if p.depth >= p.maxDepth {
		return p.fail("lists nested too deeply")
	}
	p.depth++
	defer func() { p.depth-- }()
	if p.Accept(')') {
		return nil
	}
	for {
		if err := item(p); err != nil {
			return err
		}
		if p.Accept(')') {
			return nil
		}
		if !p.Accept(' ') {
			return p.fail("expected SP or ')'")
		}
	}
}
