package message

import "bytes"

// Parse builds the MIME tree of a raw RFC 5322 message. It never fails:
// whatever the input, the result describes it (a message without MIME
// fields is one text/plain part, RFC 2045 5.2). Lines may end in CRLF or a
// bare LF. Work is bounded by MaxDepth, MaxParts, MaxHeaderParse and
// MaxAddresses. Parse does not keep raw: the tree holds offsets into it.
func Parse(raw []byte) *Part {
	ps := &parser{raw: raw}
	return ps.part(0, len(raw), 0, true, false)
}

type parser struct {
	raw   []byte
	parts int
}

// headerInfo is what one pass over a part's header yields: the first
// occurrence of each field Parse uses, unfolded.
type headerInfo struct {
	contentType, cte, id, desc, md5, disp, lang, loc string
	hasType                                          bool
	date, subject, inReplyTo, messageID              string
	from, sender, replyTo, to, cc, bcc               string
	has                                              uint32 // bit per field, to keep the first
}

// header field ids, the bit numbers of headerInfo.has.
const (
	hContentType = iota
	hCTE
	hID
	hDesc
	hMD5
	hDisp
	hLang
	hLoc
	hDate
	hSubject
	hInReplyTo
	hMessageID
	hFrom
	hSender
	hReplyTo
	hTo
	hCc
	hBcc
)

// fieldID maps a header field name to its id, or -1. MIME fields are
// wanted in every part; envelope fields only in messages (RFC 9051 7.5.2).
func fieldID(name []byte, message bool) int {
	var buf [32]byte
	if len(name) > len(buf) {
		return -1
	}
	for i, c := range name {
		buf[i] = lowerASCII(c)
	}
	switch string(buf[:len(name)]) {
	case "content-type":
		return hContentType
	case "content-transfer-encoding":
		return hCTE
	case "content-id":
		return hID
	case "content-description":
		return hDesc
	case "content-md5":
		return hMD5
	case "content-disposition":
		return hDisp
	case "content-language":
		return hLang
	case "content-location":
		return hLoc
	}
	if !message {
		return -1
	}
	switch string(buf[:len(name)]) {
	case "date":
		return hDate
	case "subject":
		return hSubject
	case "in-reply-to":
		return hInReplyTo
	case "message-id":
		return hMessageID
	case "from":
		return hFrom
	case "sender":
		return hSender
	case "reply-to":
		return hReplyTo
	case "to":
		return hTo
	case "cc":
		return hCc
	case "bcc":
		return hBcc
	}
	return -1
}

func (ps *parser) readHeader(start, end int, message bool) (headerInfo, int) {
	var h headerInfo
	bodyStart := walkHeader(ps.raw, start, end, func(f field) bool {
		id := fieldID(f.name, message)
		if id < 0 || h.has&(1<<id) != 0 {
			return true // RFC 5322 3.6 allows each of these once: keep the first
		}
		h.has |= 1 << id
		v := fieldValue(ps.raw, f)
		switch id {
		case hContentType:
			h.contentType, h.hasType = v, true
		case hCTE:
			h.cte = v
		case hID:
			h.id = v
		case hDesc:
			h.desc = v
		case hMD5:
			h.md5 = v
		case hDisp:
			h.disp = v
		case hLang:
			h.lang = v
		case hLoc:
			h.loc = v
		case hDate:
			h.date = v
		case hSubject:
			h.subject = v
		case hInReplyTo:
			h.inReplyTo = v
		case hMessageID:
			h.messageID = v
		case hFrom:
			h.from = v
		case hSender:
			h.sender = v
		case hReplyTo:
			h.replyTo = v
		case hTo:
			h.to = v
		case hCc:
			h.cc = v
		case hBcc:
			h.bcc = v
		}
		return true
	})
	return h, bodyStart
}

// part parses raw[start:end] as one MIME entity: header, then body. message
// says it is a message (root or encapsulated) and gets an envelope;
// inDigest selects the RFC 2046 5.1.5 default type message/rfc822.
func (ps *parser) part(start, end, depth int, message, inDigest bool) *Part {
	ps.parts++
	h, bodyStart := ps.readHeader(start, end, message)
	p := &Part{HeaderStart: start, BodyStart: bodyStart, End: end}

	ok := false
	if h.hasType {
		p.Type, p.Subtype, p.Params, ok = parseMediaType(h.contentType)
	}
	if !ok {
		// RFC 2045 5.2 and RFC 2046 5.1.5: the default Content-Type, also
		// used for one that cannot be parsed.
		p.Type, p.Subtype, p.Params = "text", "plain", nil
		if inDigest {
			p.Type, p.Subtype = "message", "rfc822"
		}
	}
	p.Encoding = parseSingleToken(h.cte)
	p.ID, p.Description, p.MD5, p.Location = h.id, h.desc, h.md5, h.loc
	p.Disposition, p.DispositionParams = parseDisposition(h.disp)
	p.Language = parseLanguages(h.lang)
	if message {
		p.Env = &Envelope{
			Date: h.date, Subject: h.subject, InReplyTo: h.inReplyTo, MessageID: h.messageID,
			From: parseAddressList(h.from), Sender: parseAddressList(h.sender),
			ReplyTo: parseAddressList(h.replyTo), To: parseAddressList(h.to),
			Cc: parseAddressList(h.cc), Bcc: parseAddressList(h.bcc),
		}
	}

	expand := depth < MaxDepth && ps.parts < MaxParts
	switch {
	case p.IsMultipart():
		boundary := paramValue(p.Params, "boundary")
		if expand && boundary != "" {
			ps.multipart(p, boundary, depth)
		}
		if len(p.Children) == 0 {
			// Too deep, no boundary, or no body part found: RFC 9051 9
			// needs 1*body in a multipart, so describe it as text.
			p.Type, p.Subtype, p.Params = "text", "plain", nil
		}
	case p.IsMessage():
		switch {
		case !identityEncoding(p.Encoding):
			// RFC 2046 5.2.1 allows only 7bit, 8bit and binary; an encoded
			// message cannot be sliced from raw. body-type-basic must not
			// be MESSAGE/RFC822 (RFC 9051 9), so call it what it is.
			p.Type, p.Subtype, p.Params = "application", "octet-stream", nil
		case !expand:
			p.Type, p.Subtype, p.Params = "text", "plain", nil
		default:
			p.Children = []*Part{ps.part(bodyStart, end, depth+1, true, false)}
		}
	}
	if p.IsText() || p.IsMessage() {
		// RFC 9051 7.5.2: size in text lines. As Dovecot, the number of
		// line feeds.
		p.Lines = bytes.Count(p.Body(ps.raw), []byte{'\n'})
	}
	return p
}

func identityEncoding(cte string) bool {
	return cte == "" || cte == "7bit" || cte == "8bit" || cte == "binary"
}

// multipart splits p's body at its boundary (RFC 2046 5.1.1). The preamble
// before the first delimiter and the epilogue after the close delimiter are
// not parts. The line break before a delimiter belongs to the delimiter, not
// to the part. A missing close delimiter ends the last part at the end of
// the body.
func (ps *parser) multipart(p *Part, boundary string, depth int) {
	raw := ps.raw
	dash := "--" + boundary
	digest := p.Subtype == "digest"
	partStart := -1 // start of the current part; -1 in the preamble
	pos := p.BodyStart
	for pos < p.End {
		i := bytes.Index(raw[pos:p.End], []byte(dash))
		if i < 0 {
			break
		}
		lineStart := pos + i
		pos = lineStart + len(dash)
		if lineStart > p.BodyStart && raw[lineStart-1] != '\n' {
			continue // not at the start of a line
		}
		closing, lineEnd, ok := delimiterLine(raw, pos, p.End)
		if !ok {
			continue
		}
		if partStart >= 0 {
			ps.addChild(p, partStart, lineBreakStart(raw, partStart, lineStart), depth, digest)
		}
		pos, partStart = lineEnd, lineEnd
		if closing || ps.parts >= MaxParts {
			return
		}
	}
	if partStart >= 0 {
		ps.addChild(p, partStart, p.End, depth, digest) // no close delimiter
	}
}

func (ps *parser) addChild(p *Part, start, end, depth int, digest bool) {
	p.Children = append(p.Children, ps.part(start, end, depth+1, false, digest))
}

// delimiterLine checks what follows "--boundary" at raw[pos]: an optional
// "--" (close delimiter), optional blanks, then the end of the line
// (RFC 2046 5.1.1; a boundary followed by anything else is a longer
// boundary or text). It returns the offset after the line break.
func delimiterLine(raw []byte, pos, end int) (closing bool, lineEnd int, ok bool) {
	if pos+1 < end && raw[pos] == '-' && raw[pos+1] == '-' {
		closing = true
		pos += 2
	}
	for pos < end && (raw[pos] == ' ' || raw[pos] == '\t') {
		pos++
	}
	switch {
	case pos == end:
		return closing, end, true
	case raw[pos] == '\n':
		return closing, pos + 1, true
	case raw[pos] == '\r' && pos+1 < end && raw[pos+1] == '\n':
		return closing, pos + 2, true
	case raw[pos] == '\r' && pos+1 == end:
		return closing, end, true
	}
	return false, 0, false
}

// lineBreakStart returns where the line break before a delimiter line at
// lineStart begins (CRLF or bare LF), not before partStart.
func lineBreakStart(raw []byte, partStart, lineStart int) int {
	end := lineStart
	if end > partStart && raw[end-1] == '\n' {
		end--
		if end > partStart && raw[end-1] == '\r' {
			end--
		}
	}
	return end
}
