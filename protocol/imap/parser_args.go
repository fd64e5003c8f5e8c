package imap

import (
	"time"
	"unicode/utf8"
)

// Argument types built from the tokens of parser.go.

// Flag reads a flag (RFC 9051 9): "\" atom or a keyword atom. System flags
// come back in canonical case (FlagSeen ...); keywords and flag extensions as
// sent. "\Recent" is refused: clients may not set it (RFC 9051 2.3.2, the
// "flag" rule "Does not include \Recent"), and "\*" is not a flag.
func (p *Parser) Flag() (string, error) {
	start := p.pos
	if !p.Accept('\\') {
		a, err := p.Atom()
		if err != nil {
			return "", p.failAt(start, "expected flag")
		}
		return a, nil
	}
	b := p.run(isAtomChar)
	if len(b) == 0 {
		return "", p.failAt(start, "expected flag")
	}
	for _, f := range systemFlags {
		if equalFoldASCII(b, f[1:]) {
			return f, nil
		}
	}
	if equalFoldASCII(b, "RECENT") {
		return "", p.failAt(start, `\Recent cannot be set`)
	}
	return `\` + string(b), nil
}

// FlagList reads flag-list: "(" [flag *(SP flag)] ")".
func (p *Parser) FlagList() ([]string, error) {
	var flags []string
	err := p.List(func(p *Parser) error {
		f, err := p.Flag()
		flags = append(flags, f)
		return err
	})
	return flags, err
}

// Mailbox reads a mailbox name (RFC 9051 9: "INBOX" / astring) and returns
// it decoded: any case of INBOX becomes "INBOX"; other names are decoded from
// modified UTF-7 (RFC 3501 5.1.3) unless UTF-8 is enabled, in which case they
// must be valid UTF-8 (RFC 9051 5.1, RFC 6855 3). Names with control
// characters, U+2028 or U+2029 are refused (RFC 6855 3).
func (p *Parser) Mailbox() (string, error) {
	start := p.pos
	name, err := p.AString()
	if err != nil {
		return "", err
	}
	if equalFoldASCII(name, "INBOX") {
		return "INBOX", nil
	}
	return p.decodeName(start, name)
}

// ListMailbox reads a LIST pattern (RFC 9051 9, list-mailbox: 1*list-char /
// string) and decodes it as Mailbox does, keeping "%" and "*". INBOX is not
// canonicalised: matching is the LIST handler's business (RFC 9051 6.3.9).
func (p *Parser) ListMailbox() (string, error) {
	start := p.pos
	if c := p.Peek(); c == '"' || c == '{' {
		s, err := p.String()
		if err != nil {
			return "", err
		}
		return p.decodeName(start, s)
	}
	b := p.run(isListChar)
	if len(b) == 0 {
		return "", p.fail("expected mailbox pattern")
	}
	return p.decodeName(start, string(b))
}

func (p *Parser) decodeName(start int, name string) (string, error) {
	if p.utf8 {
		if !utf8.ValidString(name) {
			return "", p.failAt(start, "mailbox name is not UTF-8")
		}
	} else {
		dec, err := DecodeUTF7(name)
		if err != nil {
			return "", p.failAt(start, "mailbox name is not valid modified UTF-7")
		}
		name = dec
	}
	if !validMailboxName(name) {
		return "", p.failAt(start, "control character in mailbox name")
	}
	return name, nil
}

// validMailboxName applies RFC 6855 3: no U+0000-U+001F, U+007F,
// U+0080-U+009F, U+2028 or U+2029.
func validMailboxName(s string) bool {
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0x2028 || r == 0x2029 {
			return false
		}
	}
	return true
}

// SeqSet reads a sequence-set (RFC 9051 9), including "*" and the SEARCHRES
// "$" (RFC 5182 3). It does not allocate per element; "1:4294967295" is one
// range.
func (p *Parser) SeqSet() (SeqSet, error) {
	start := p.pos
	b := p.run(isSeqSetChar)
	if len(b) == 0 {
		return SeqSet{}, p.fail("expected sequence set")
	}
	s, off, err := parseSeqSet(b)
	if err != nil {
		return SeqSet{}, p.failAt(start+off, err.Error())
	}
	return s, nil
}

// Date reads a date (RFC 9051 9: date-text / DQUOTE date-text DQUOTE), as
// used by SEARCH, and returns midnight UTC of that day.
func (p *Parser) Date() (time.Time, error) {
	start := p.pos
	quoted := p.Accept('"')
	b := p.run(func(c byte) bool { return c == '-' || (c >= '0' && c <= '9') || (c|0x20 >= 'a' && c|0x20 <= 'z') })
	t, err := parseDate(b)
	if err != nil {
		return time.Time{}, p.failAt(start, err.Error())
	}
	if quoted && !p.Accept('"') {
		return time.Time{}, p.fail("expected '\"' after date")
	}
	return t, nil
}

// DateTime reads a date-time (RFC 9051 9), always quoted:
// "17-Jul-1996 02:44:25 -0700".
func (p *Parser) DateTime() (time.Time, error) {
	start := p.pos
	if !p.Accept('"') {
		return time.Time{}, p.fail("expected quoted date-time")
	}
	from := p.pos
	for p.pos < p.end && p.buf[p.pos] != '"' && p.pos-from <= dateTimeLen {
		p.pos++
	}
	t, err := parseDateTime(p.buf[from:p.pos])
	if err != nil {
		return time.Time{}, p.failAt(start, err.Error())
	}
	if !p.Accept('"') {
		return time.Time{}, p.fail("expected '\"' after date-time")
	}
	return t, nil
}
