package message

import "strings"

// parseAddressList reads an RFC 5322 3.4 address-list for ENVELOPE. It is
// lenient where mail is broken in practice (junk is skipped up to the next
// comma; unclosed quotes, comments and angle brackets end at the end of the
// field; a name without "@" is a mailbox without host) and keeps names raw:
// RFC 2047 encoded-words are not decoded, as IMAP returns them as they are.
// Obsolete forms (RFC 5322 4.4: routes, CFWS around dots) are accepted.
// At most MaxAddresses addresses are kept, plus a group end marker.
func parseAddressList(v string) []Address {
	if v == "" {
		return nil
	}
	a := &addrParser{s: v}
	return a.list()
}

type addrTokKind uint8

const (
	tokEOF     addrTokKind = iota
	tokAtom                // atom or dot-atom piece
	tokQuoted              // quoted-string, text unquoted
	tokLiteral             // domain-literal, brackets kept
	tokSpecial             // one of ()<>:;@\,.] and stray characters
)

type addrToken struct {
	kind  addrTokKind
	text  string
	space bool // preceded by blanks or a comment
}

func (t addrToken) is(c byte) bool { return t.kind == tokSpecial && t.text[0] == c }

type addrParser struct {
	s           string
	pos         int
	peeked      *addrToken
	lastComment string
}

func (a *addrParser) list() []Address {
	var out []Address
	inGroup := false
	for len(out) < MaxAddresses-1 {
		a.lastComment = ""
		words := a.phrase()
		t := a.next()
		switch {
		case t.kind == tokEOF:
			if len(words) > 0 {
				out = append(out, Address{Mailbox: localText(words)})
			}
			return closeGroup(out, inGroup)
		case t.is('<'):
			adl, local, host := a.angleAddr()
			name := phraseText(words)
			if local != "" || host != "" || name != "" {
				out = append(out, Address{Name: name, Adl: adl, Mailbox: local, Host: host})
			}
			a.skipJunk()
		case t.is('@'):
			a.lastComment = "" // only a comment after the addr-spec names it
			host := a.domain()
			a.peek() // reads the trailing comment, if any
			out = append(out, Address{Name: a.lastComment, Mailbox: localText(words), Host: host})
			a.skipJunk()
		case t.is(':'):
			// RFC 5322 3.4 group; groups do not nest, so a second ':' is junk.
			if !inGroup {
				out = append(out, Address{Kind: GroupStart, Mailbox: phraseText(words)})
				inGroup = true
			}
		case t.is(',') || t.is(';'):
			if len(words) > 0 {
				// "user" or "undisclosed-recipients" without a host.
				out = append(out, Address{Mailbox: localText(words)})
			}
			if t.is(';') && inGroup {
				out = append(out, Address{Kind: GroupEnd})
				inGroup = false
			}
		}
		// Any other token (a stray ">" or "]") is dropped.
	}
	return closeGroup(out, inGroup)
}

func closeGroup(out []Address, inGroup bool) []Address {
	if inGroup {
		out = append(out, Address{Kind: GroupEnd})
	}
	return out
}

// phrase collects words and dots (RFC 5322 obs-phrase) up to the next
// other token.
func (a *addrParser) phrase() []addrToken {
	var words []addrToken
	for {
		t := a.peek()
		if t.kind != tokAtom && t.kind != tokQuoted && !t.is('.') {
			return words
		}
		words = append(words, a.next())
	}
}

// angleAddr reads after "<": [route ":"] local-part ["@" domain] ">".
func (a *addrParser) angleAddr() (adl, local, host string) {
	if a.peek().is('@') {
		var route []string
		for a.peek().is('@') || a.peek().is(',') {
			if a.next().is('@') {
				route = append(route, "@"+a.domain())
			}
		}
		if a.peek().is(':') {
			a.next()
		}
		adl = strings.Join(route, ",")
	}
	local = localText(a.phrase())
	if a.peek().is('@') {
		a.next()
		host = a.domain()
	}
	for {
		t := a.peek()
		switch {
		case t.kind == tokEOF || t.is(',') || t.is(';'):
			return adl, local, host // unclosed "<"
		case t.is('>'):
			a.next()
			return adl, local, host
		}
		a.next()
	}
}

// domain reads dot-atom or domain-literal text, CFWS around dots dropped
// (RFC 5322 4.4 obs-domain).
func (a *addrParser) domain() string {
	var b strings.Builder
	for {
		t := a.peek()
		if t.kind != tokAtom && t.kind != tokLiteral && !t.is('.') {
			return b.String()
		}
		b.WriteString(a.next().text)
	}
}

// skipJunk drops tokens up to the next "," (consumed) or ";" (left for the
// group end) after an address.
func (a *addrParser) skipJunk() {
	for {
		t := a.peek()
		switch {
		case t.kind == tokEOF || t.is(';'):
			return
		case t.is(','):
			a.next()
			return
		}
		a.next()
	}
}

// phraseText joins the words of a display name: quoting removed (RFC 9051
// 7.5.2 addr-name), one space where the source had blanks or comments.
func phraseText(words []addrToken) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 && w.space {
			b.WriteByte(' ')
		}
		b.WriteString(w.text)
	}
	return b.String()
}

// localText joins a local part without the blanks of obs-local-part.
func localText(words []addrToken) string {
	var b strings.Builder
	for _, w := range words {
		b.WriteString(w.text)
	}
	return b.String()
}

func (a *addrParser) peek() addrToken {
	if a.peeked == nil {
		t := a.scan()
		a.peeked = &t
	}
	return *a.peeked
}

func (a *addrParser) next() addrToken {
	t := a.peek()
	a.peeked = nil
	return t
}

// scan reads one token, skipping blanks, control characters and comments
// (remembering the last comment for a name-less addr-spec, as Dovecot).
func (a *addrParser) scan() addrToken {
	space := false
	for a.pos < len(a.s) {
		c := a.s[a.pos]
		if c == '(' {
			end := skipComment(a.s, a.pos)
			inner := a.s[a.pos+1 : end]
			inner = strings.TrimSuffix(inner, ")")
			a.lastComment = strings.TrimSpace(inner)
			a.pos, space = end, true
			continue
		}
		if c > ' ' && c != 0x7f {
			break
		}
		a.pos++
		space = true
	}
	if a.pos >= len(a.s) {
		return addrToken{kind: tokEOF}
	}
	start := a.pos
	switch c := a.s[a.pos]; c {
	case '"':
		m := &mimeLexer{s: a.s, pos: a.pos}
		text := m.quoted()
		a.pos = m.pos
		return addrToken{kind: tokQuoted, text: text, space: space}
	case '[':
		end := strings.IndexByte(a.s[a.pos:], ']')
		if end < 0 {
			a.pos = len(a.s)
		} else {
			a.pos += end + 1
		}
		return addrToken{kind: tokLiteral, text: a.s[start:a.pos], space: space}
	case '(', ')', '<', '>', ']', ':', ';', '@', '\\', ',', '.':
		a.pos++
		return addrToken{kind: tokSpecial, text: a.s[start:a.pos], space: space}
	}
	for a.pos < len(a.s) {
		c := a.s[a.pos]
		if c <= ' ' || c == 0x7f || strings.IndexByte(`()<>[]:;@\,."`, c) >= 0 {
			break
		}
		a.pos++
	}
	return addrToken{kind: tokAtom, text: a.s[start:a.pos], space: space}
}
