package message

import "errors"

// Limits that bound the work Parse does on hostile input (docs/ROBUSTNESS:
// "100k address headers, 1 MB header, MIME nested 10k deep → bounded CPU and
// memory"). A message beyond them still parses; the excess is not expanded.
const (
	// MaxDepth is the deepest nesting expanded. The root is depth 0; a
	// multipart or message/rfc822 part at depth MaxDepth is not split and is
	// described as text/plain, so the work is at most MaxDepth passes over
	// the message.
	MaxDepth = 50
	// MaxParts caps the parts of one message (encapsulated messages count).
	// Once reached, multiparts stop listing further body parts and no more
	// parts are expanded.
	MaxParts = 10000
	// MaxHeaderParse is how many octets of one header block are examined
	// for fields. The header still extends to its blank line; fields past
	// this point are ignored by Parse and by the search helpers.
	MaxHeaderParse = 1 << 20
	// MaxAddresses caps the addresses (group markers included) kept per
	// address field of an envelope.
	MaxAddresses = 10000
	// maxParams caps the parameters kept per Content-Type or
	// Content-Disposition field (RFC 2231 sections count one each).
	maxParams = 256
	// maxLanguages caps the Content-Language tags kept.
	maxLanguages = 64
)

// Errors of the section and decoding helpers. The IMAP server maps them to
// its replies.
var (
	// ErrSectionSyntax: the section spec does not follow RFC 9051 9
	// (section-spec); the command is BAD.
	ErrSectionSyntax = errors.New("message: bad section specification")
	// ErrNoSection: the section names a part the message does not have.
	// RFC 9051 does not make this an error; servers return an empty string.
	ErrNoSection = errors.New("message: no such section")
	// ErrUnknownCTE: BINARY on a part whose Content-Transfer-Encoding is not
	// known (RFC 3516 4.3: NO [UNKNOWN-CTE]).
	ErrUnknownCTE = errors.New("message: unknown content-transfer-encoding")
	// ErrNotLeaf: BINARY on a multipart or message part (RFC 9051 6.4.5:
	// "can only be requested for leaf body parts").
	ErrNotLeaf = errors.New("message: not a leaf body part")
)

// Param is one Content-Type or Content-Disposition parameter. Name is lower
// case. RFC 2231 sections are already joined: "name*0", "name*1" become
// "name"; if any section was extended ("name*" or "name*0*") the name is
// "name*" and Value is the decoded text converted to UTF-8, as RFC 9051
// 7.5.2 (body parameter parenthesized list) asks servers to return it.
type Param struct {
	Name, Value string
}

// AddressKind tells a mailbox from the group markers of RFC 9051 7.5.2.
type AddressKind uint8

const (
	// Mailbox is an ordinary address: (name adl mailbox host).
	Mailbox AddressKind = iota
	// GroupStart opens a group: (NIL NIL groupname NIL); Mailbox holds the
	// group name.
	GroupStart
	// GroupEnd closes a group: (NIL NIL NIL NIL).
	GroupEnd
)

// Address is one element of an envelope address list (RFC 9051 7.5.2
// ENVELOPE). The strings are as in the header: Name is the phrase with
// RFC 5322 quoting removed but RFC 2047 encoded-words kept; Mailbox is the
// local part without quoting; Host is the domain ("" when the address had
// none); Adl is the obsolete route ("@a,@b") or "".
type Address struct {
	Kind                     AddressKind
	Name, Adl, Mailbox, Host string
}

// Envelope holds the RFC 5322 fields of a message that ENVELOPE returns, raw
// (unfolded, CR and LF removed, surrounding blanks trimmed). An absent or
// empty field is "", rendered as NIL. Sender and ReplyTo are kept as found;
// the default to From (RFC 9051 7.5.2) is applied when rendering.
type Envelope struct {
	Date, Subject                      string
	From, Sender, ReplyTo, To, Cc, Bcc []Address
	InReplyTo, MessageID               string
}

// Part is one node of a message's MIME tree. Offsets index the raw message
// the tree was parsed from: the header (including its blank line) is
// raw[HeaderStart:BodyStart], the body raw[BodyStart:End].
//
// The root is the message itself. A multipart part has its body parts as
// Children. A message/rfc822 or message/global part has one child, the
// encapsulated message, whose header starts at the part's BodyStart.
// Message nodes (the root and encapsulated messages) have an Env.
//
// Parse makes Type, Subtype, Encoding and Disposition lower case (RFC 2045
// 5.1 and 6.1: they are case-insensitive); the other strings are as in the
// header. The methods compare without case all the same, for hand-made trees.
type Part struct {
	HeaderStart, BodyStart, End int

	Type, Subtype     string
	Params            []Param
	ID                string // Content-ID
	Description       string // Content-Description
	Encoding          string // Content-Transfer-Encoding; "" means 7bit
	MD5               string // Content-MD5
	Disposition       string // Content-Disposition type (RFC 2183)
	DispositionParams []Param
	Language          []string // Content-Language tags (RFC 3282)
	Location          string   // Content-Location (RFC 2557)
	Lines             int      // LF count of the body, for text/* and message/*

	Env      *Envelope
	Children []*Part
}

// Size is the body size in octets, in its transfer encoding (RFC 9051
// 7.5.2 body size).
func (p *Part) Size() int { return p.End - p.BodyStart }

// IsMultipart reports a multipart/* part.
func (p *Part) IsMultipart() bool { return equalFoldASCII(p.Type, "multipart") }

// IsMessage reports a message/rfc822 or message/global part, whose
// BODYSTRUCTURE carries an envelope, a body and a line count
// (RFC 9051 9 body-type-msg).
func (p *Part) IsMessage() bool {
	return equalFoldASCII(p.Type, "message") &&
		(equalFoldASCII(p.Subtype, "rfc822") || equalFoldASCII(p.Subtype, "global"))
}

// IsText reports a text/* part (RFC 9051 9 body-type-text).
func (p *Part) IsText() bool { return equalFoldASCII(p.Type, "text") }

// Header returns the part's header block, blank line included.
func (p *Part) Header(raw []byte) []byte { return clamp(raw, p.HeaderStart, p.BodyStart) }

// Body returns the part's body in its transfer encoding.
func (p *Part) Body(raw []byte) []byte { return clamp(raw, p.BodyStart, p.End) }

// Param returns the value of the named parameter of the Content-Type
// ("charset", "name", "boundary"), preferring the RFC 2231 form "name*".
func (p *Part) Param(name string) string { return paramValue(p.Params, name) }

// Filename is the file name a client would show: the disposition's
// "filename" parameter, else the Content-Type "name" (RFC 2183 2.3).
func (p *Part) Filename() string {
	if v := paramValue(p.DispositionParams, "filename"); v != "" {
		return v
	}
	return paramValue(p.Params, "name")
}

func paramValue(params []Param, name string) string {
	var plain string
	for _, pr := range params {
		if len(pr.Name) == len(name)+1 && pr.Name[len(name)] == '*' && equalFoldASCII(pr.Name[:len(name)], name) {
			return pr.Value
		}
		if plain == "" && equalFoldASCII(pr.Name, name) {
			plain = pr.Value
		}
	}
	return plain
}

// clamp slices raw[start:end] without trusting the offsets: a blob decoded
// from the store may not match the raw message it is used with.
func clamp(raw []byte, start, end int) []byte {
	if start < 0 {
		start = 0
	}
	if end > len(raw) {
		end = len(raw)
	}
	if start > end {
		return raw[:0:0]
	}
	return raw[start:end:end]
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}
