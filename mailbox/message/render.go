package message

import "strconv"

// Rendering follows the grammar of RFC 9051 9 (body, envelope) exactly.
//
// Case: the media type, subtype, transfer encoding, parameter names and
// disposition type are written in upper case, as in the examples of
// RFC 9051 7.5.2 and as Cyrus and Gmail do; parameter values and all other
// strings are as in the header. (Dovecot writes these as received; RFC 5234
// 2.3 makes the quoted keywords of the grammar case-insensitive and
// RFC 2045 5.1 makes the values so, so clients compare without case.)
//
// Strings: NUL, CR and LF are dropped (they cannot appear in IMAP strings;
// CR and LF are folding). A value with 8-bit octets is sent as a literal,
// which IMAP4rev1 clients accept too; all others as quoted strings.

// emptyBody stands in for a missing body where the grammar requires one
// (only in a hand-made or damaged tree).
func emptyBody(ext bool) string {
	if ext {
		return `("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)`
	}
	return `("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0)`
}

// nilEnvelope stands in for a missing envelope.
const nilEnvelope = "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"

// BodyStructure renders the part as RFC 9051 9 "body": with extension data
// (body-ext-1part, body-ext-mpart) for BODYSTRUCTURE when extended is true,
// without for BODY. For a message, call it on the root Part.
func (p *Part) BodyStructure(extended bool) []byte {
	return p.appendBody(make([]byte, 0, 256), extended)
}

func (p *Part) appendBody(b []byte, ext bool) []byte {
	b = append(b, '(')
	if p.IsMultipart() {
		// body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
		if len(p.Children) == 0 {
			b = append(b, emptyBody(ext)...)
		}
		for _, c := range p.Children {
			b = c.appendBody(b, ext)
		}
		b = append(b, ' ')
		b = appendUpper(b, p.Subtype)
		if ext {
			b = append(b, ' ')
			b = appendParams(b, p.Params, false)
			b = p.appendExtTail(b)
		}
		return append(b, ')')
	}
	// body-type-basic / body-type-msg / body-type-text
	b = appendUpper(b, p.Type)
	b = append(b, ' ')
	b = appendUpper(b, p.Subtype)
	b = append(b, ' ')
	b = appendParams(b, p.Params, p.IsText())
	b = append(b, ' ')
	b = appendNString(b, p.ID)
	b = append(b, ' ')
	b = appendNString(b, p.Description)
	b = append(b, ' ')
	if p.Encoding == "" {
		b = append(b, `"7BIT"`...) // RFC 2045 6.1 default
	} else {
		b = appendUpper(b, p.Encoding)
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(max(p.Size(), 0)), 10)
	switch {
	case p.IsMessage():
		// body-type-msg: ... SP envelope SP body SP body-fld-lines
		b = append(b, ' ')
		if len(p.Children) > 0 {
			b = p.Children[0].appendEnvelope(b)
			b = append(b, ' ')
			b = p.Children[0].appendBody(b, ext)
		} else {
			b = append(b, nilEnvelope+" "...)
			b = append(b, emptyBody(ext)...)
		}
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(p.Lines), 10)
	case p.IsText():
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(p.Lines), 10)
	}
	if ext {
		// body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
		b = append(b, ' ')
		b = appendNString(b, p.MD5)
		b = p.appendExtTail(b)
	}
	return append(b, ')')
}

// appendExtTail writes SP body-fld-dsp SP body-fld-lang SP body-fld-loc.
func (p *Part) appendExtTail(b []byte) []byte {
	b = append(b, ' ')
	if p.Disposition == "" {
		b = append(b, "NIL"...)
	} else {
		b = append(b, '(')
		b = appendUpper(b, p.Disposition)
		b = append(b, ' ')
		b = appendParams(b, p.DispositionParams, false)
		b = append(b, ')')
	}
	b = append(b, ' ')
	switch len(p.Language) {
	case 0:
		b = append(b, "NIL"...)
	case 1:
		b = appendString(b, p.Language[0])
	default:
		b = append(b, '(')
		for i, l := range p.Language {
			if i > 0 {
				b = append(b, ' ')
			}
			b = appendString(b, l)
		}
		b = append(b, ')')
	}
	b = append(b, ' ')
	return appendNString(b, p.Location)
}

// appendParams writes body-fld-param. Text parts without a charset get
// CHARSET US-ASCII (RFC 2046 4.1.2 default), as Dovecot and Cyrus do.
func appendParams(b []byte, params []Param, text bool) []byte {
	addCharset := text && paramValue(params, "charset") == ""
	if len(params) == 0 && !addCharset {
		return append(b, "NIL"...)
	}
	b = append(b, '(')
	if addCharset {
		b = append(b, `"CHARSET" "US-ASCII"`...)
	}
	for i, pr := range params {
		if i > 0 || addCharset {
			b = append(b, ' ')
		}
		b = appendUpper(b, pr.Name)
		b = append(b, ' ')
		b = appendString(b, pr.Value)
	}
	return append(b, ')')
}

// Envelope renders the message's ENVELOPE (RFC 9051 7.5.2 and 9 envelope).
// Call it on the root Part, or on the child of a message/rfc822 part.
func (p *Part) Envelope() []byte {
	return p.appendEnvelope(make([]byte, 0, 256))
}

func (p *Part) appendEnvelope(b []byte) []byte {
	e := p.Env
	if e == nil {
		return append(b, nilEnvelope...)
	}
	// RFC 9051 7.5.2: an absent or empty Sender or Reply-To takes the
	// value of From.
	sender, replyTo := e.Sender, e.ReplyTo
	if len(sender) == 0 {
		sender = e.From
	}
	if len(replyTo) == 0 {
		replyTo = e.From
	}
	b = append(b, '(')
	b = appendNString(b, e.Date)
	b = append(b, ' ')
	b = appendNString(b, e.Subject)
	for _, list := range [...][]Address{e.From, sender, replyTo, e.To, e.Cc, e.Bcc} {
		b = append(b, ' ')
		b = appendAddressList(b, list)
	}
	b = append(b, ' ')
	b = appendNString(b, e.InReplyTo)
	b = append(b, ' ')
	b = appendNString(b, e.MessageID)
	return append(b, ')')
}

// appendAddressList writes "(" 1*address ")" / nil.
func appendAddressList(b []byte, list []Address) []byte {
	if len(list) == 0 {
		return append(b, "NIL"...)
	}
	b = append(b, '(')
	for _, a := range list {
		switch a.Kind {
		case GroupStart:
			b = append(b, "(NIL NIL "...)
			b = appendString(b, a.Mailbox)
			b = append(b, " NIL)"...)
		case GroupEnd:
			b = append(b, "(NIL NIL NIL NIL)"...)
		default:
			b = append(b, '(')
			b = appendNString(b, a.Name)
			b = append(b, ' ')
			b = appendNString(b, a.Adl)
			b = append(b, ' ')
			b = appendString(b, a.Mailbox)
			b = append(b, ' ')
			b = appendString(b, a.Host)
			b = append(b, ')')
		}
	}
	return append(b, ')')
}

// appendNString writes NIL for "" and a string otherwise.
func appendNString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "NIL"...)
	}
	return appendString(b, s)
}

func appendUpper(b []byte, s string) []byte {
	u := []byte(s)
	for i, c := range u {
		u[i] = upperASCII(c)
	}
	return appendString(b, string(u))
}

// appendString writes an IMAP string (RFC 9051 9 string = quoted /
// literal): quoted when every octet is 7-bit, else a literal.
func appendString(b []byte, s string) []byte {
	literal := false
	n := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == 0 || c == '\r' || c == '\n':
			continue
		case c >= 0x80:
			literal = true
		}
		n++
	}
	if literal {
		b = append(b, '{')
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, "}\r\n"...)
		for i := 0; i < len(s); i++ {
			if c := s[i]; c != 0 && c != '\r' && c != '\n' {
				b = append(b, c)
			}
		}
		return b
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0, '\r', '\n':
		case '"', '\\':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
