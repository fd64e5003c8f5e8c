package message

import (
	"errors"
	"strconv"
)

// imapChecker validates rendered BODY, BODYSTRUCTURE and ENVELOPE against
// the grammar of RFC 9051 9, strictly, so the fuzzers can assert that no
// input makes Posthorn send what a client's parser would reject.
type imapChecker struct {
	s   []byte
	pos int
	err error
}

var errGrammar = errors.New("grammar")

func checkBody(b []byte, extended bool) error {
	c := &imapChecker{s: b}
	c.body(extended, 0)
	if c.err == nil && c.pos != len(c.s) {
		c.fail()
	}
	return c.err
}

func checkEnvelope(b []byte) error {
	c := &imapChecker{s: b}
	c.envelope()
	if c.err == nil && c.pos != len(c.s) {
		c.fail()
	}
	return c.err
}

func (c *imapChecker) fail() {
	if c.err == nil {
		c.err = errors.New("grammar error at " + strconv.Itoa(c.pos) + ": " + string(c.s[min(c.pos, len(c.s)):min(c.pos+20, len(c.s))]))
	}
	c.pos = len(c.s)
}

func (c *imapChecker) peek() byte {
	if c.pos < len(c.s) {
		return c.s[c.pos]
	}
	return 0
}

func (c *imapChecker) lit(t string) {
	if c.err != nil || len(c.s)-c.pos < len(t) || string(c.s[c.pos:c.pos+len(t)]) != t {
		c.fail()
		return
	}
	c.pos += len(t)
}

func (c *imapChecker) number() {
	start := c.pos
	for c.pos < len(c.s) && '0' <= c.s[c.pos] && c.s[c.pos] <= '9' {
		c.pos++
	}
	if c.pos == start {
		c.fail()
	}
}

// str reads string = quoted / literal and returns its value.
func (c *imapChecker) str() string {
	if c.err != nil {
		return ""
	}
	switch c.peek() {
	case '"':
		var v []byte
		for c.pos++; c.pos < len(c.s); c.pos++ {
			ch := c.s[c.pos]
			switch {
			case ch == '"':
				c.pos++
				return string(v)
			case ch == '\\':
				c.pos++
				if c.pos >= len(c.s) || (c.s[c.pos] != '"' && c.s[c.pos] != '\\') {
					c.fail()
					return ""
				}
				v = append(v, c.s[c.pos])
			case ch == 0 || ch == '\r' || ch == '\n' || ch >= 0x80:
				c.fail() // QUOTED-CHAR is 7-bit TEXT-CHAR here
				return ""
			default:
				v = append(v, ch)
			}
		}
	case '{':
		c.pos++
		start := c.pos
		c.number()
		n, _ := strconv.Atoi(string(c.s[start:c.pos]))
		c.lit("}\r\n")
		if c.err != nil || len(c.s)-c.pos < n {
			c.fail()
			return ""
		}
		v := c.s[c.pos : c.pos+n]
		for _, ch := range v {
			if ch == 0 {
				c.fail()
			}
		}
		c.pos += n
		return string(v)
	}
	c.fail()
	return ""
}

func (c *imapChecker) nstring() {
	if c.peek() == 'N' {
		c.lit("NIL")
		return
	}
	c.str()
}

func (c *imapChecker) params() {
	if c.peek() == 'N' {
		c.lit("NIL")
		return
	}
	c.lit("(")
	for {
		c.str()
		c.lit(" ")
		c.str()
		if c.peek() != ' ' || c.err != nil {
			break
		}
		c.lit(" ")
	}
	c.lit(")")
}

func (c *imapChecker) body(ext bool, depth int) {
	if depth > 4*MaxDepth {
		c.fail()
		return
	}
	c.lit("(")
	if c.peek() == '(' {
		for c.peek() == '(' && c.err == nil {
			c.body(ext, depth+1)
		}
		c.lit(" ")
		c.str()
		if ext {
			c.lit(" ")
			c.params()
			c.extTail()
		}
		c.lit(")")
		return
	}
	typ := c.str()
	c.lit(" ")
	sub := c.str()
	c.lit(" ")
	c.params()
	c.lit(" ")
	c.nstring()
	c.lit(" ")
	c.nstring()
	c.lit(" ")
	c.str()
	c.lit(" ")
	c.number()
	switch {
	case equalFoldASCII(typ, "message") && (equalFoldASCII(sub, "rfc822") || equalFoldASCII(sub, "global")):
		c.lit(" ")
		c.envelope()
		c.lit(" ")
		c.body(ext, depth+1)
		c.lit(" ")
		c.number()
	case equalFoldASCII(typ, "text"):
		c.lit(" ")
		c.number()
	}
	if ext {
		c.lit(" ")
		c.nstring()
		c.extTail()
	}
	c.lit(")")
}

func (c *imapChecker) extTail() {
	c.lit(" ")
	if c.peek() == '(' {
		c.lit("(")
		c.str()
		c.lit(" ")
		c.params()
		c.lit(")")
	} else {
		c.lit("NIL")
	}
	c.lit(" ")
	if c.peek() == '(' {
		c.lit("(")
		c.str()
		for c.peek() == ' ' && c.err == nil {
			c.lit(" ")
			c.str()
		}
		c.lit(")")
	} else {
		c.nstring()
	}
	c.lit(" ")
	c.nstring()
}

func (c *imapChecker) envelope() {
	c.lit("(")
	c.nstring()
	c.lit(" ")
	c.nstring()
	for i := 0; i < 6; i++ {
		c.lit(" ")
		if c.peek() == 'N' {
			c.lit("NIL")
			continue
		}
		c.lit("(")
		for c.err == nil {
			c.lit("(")
			c.nstring()
			c.lit(" ")
			c.nstring()
			c.lit(" ")
			c.nstring()
			c.lit(" ")
			c.nstring()
			c.lit(")")
			if c.peek() != '(' {
				break
			}
		}
		c.lit(")")
	}
	c.lit(" ")
	c.nstring()
	c.lit(" ")
	c.nstring()
	c.lit(")")
}
