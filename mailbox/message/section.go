package message

import (
	"bytes"
	"strings"
)

// SectionSpec is a parsed RFC 9051 9 section-spec: part numbers, then an
// optional text specifier.
type SectionSpec struct {
	Part []int // 1-based part numbers; empty for the message itself
	// Text is "", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT"
	// or "MIME" (upper case).
	Text   string
	Fields []string // field names for HEADER.FIELDS and HEADER.FIELDS.NOT
}

// maxSectionParts bounds the part numbers of a section spec; deeper than
// the tree can be there is no such part.
const maxSectionParts = 2*MaxDepth + 2

// ParseSection parses the text between the brackets of BODY[...] (RFC 9051
// 9 section-spec): "", "HEADER", "TEXT", "1", "1.2", "1.2.MIME",
// "2.HEADER", "HEADER.FIELDS (From To)", "3.HEADER.FIELDS.NOT (Received)".
// Keywords are case-insensitive; field names may be atoms or quoted
// strings. Literals are not accepted here: a wire parser that reads them
// builds the SectionSpec itself.
func ParseSection(s string) (SectionSpec, error) {
	var spec SectionSpec
	for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
		// nz-number: no leading zero, fits in 32 bits.
		i, n := 0, 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			if i == 9 {
				return spec, ErrSectionSyntax
			}
			n = n*10 + int(s[i]-'0')
			i++
		}
		if s[0] == '0' {
			return spec, ErrSectionSyntax
		}
		if len(spec.Part) == maxSectionParts {
			return spec, ErrNoSection
		}
		spec.Part = append(spec.Part, n)
		s = s[i:]
		if s == "" {
			return spec, nil
		}
		if s[0] != '.' || len(s) == 1 {
			return spec, ErrSectionSyntax
		}
		s = s[1:]
	}
	word, rest, spaced := strings.Cut(s, " ")
	spec.Text = strings.ToUpper(word)
	switch spec.Text {
	case "":
		if len(spec.Part) > 0 || spaced {
			return spec, ErrSectionSyntax
		}
	case "HEADER", "TEXT":
		if spaced {
			return spec, ErrSectionSyntax
		}
	case "MIME":
		// RFC 9051 6.4.5.1: MIME must follow a part number.
		if len(spec.Part) == 0 || spaced {
			return spec, ErrSectionSyntax
		}
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		fields, err := parseHeaderList(rest)
		if err != nil {
			return spec, err
		}
		spec.Fields = fields
	default:
		return spec, ErrSectionSyntax
	}
	return spec, nil
}

// parseHeaderList reads header-list = "(" header-fld-name *(SP
// header-fld-name) ")" with header-fld-name = astring.
func parseHeaderList(s string) ([]string, error) {
	if len(s) < 3 || s[0] != '(' || s[len(s)-1] != ')' {
		return nil, ErrSectionSyntax
	}
	s = s[1 : len(s)-1]
	var names []string
	for s != "" {
		var name string
		if s[0] == '"' {
			l := &mimeLexer{s: s}
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return nil, ErrSectionSyntax
			}
			name = l.quoted()
			s = s[end+1:]
		} else {
			end := strings.IndexByte(s, ' ')
			if end < 0 {
				end = len(s)
			}
			name = s[:end]
			if strings.ContainsAny(name, "(){\"%*\\") || name == "" {
				return nil, ErrSectionSyntax
			}
			for i := 0; i < len(name); i++ {
				if name[i] < 0x21 || name[i] > 0x7e {
					return nil, ErrSectionSyntax
				}
			}
			s = s[end:]
		}
		names = append(names, name)
		if s != "" {
			if s[0] != ' ' || len(s) == 1 {
				return nil, ErrSectionSyntax
			}
			s = s[1:]
		}
	}
	if len(names) == 0 {
		return nil, ErrSectionSyntax
	}
	return names, nil
}

// Section resolves a BODY[section] spec (see ParseSection) on the message
// raw whose tree p is, and returns its bytes: a slice of raw, except for
// HEADER.FIELDS and HEADER.FIELDS.NOT, which build a new one. A partial
// fetch <origin.count> is the caller's slice of the result.
func (p *Part) Section(raw []byte, spec string) ([]byte, error) {
	s, err := ParseSection(spec)
	if err != nil {
		return nil, err
	}
	return p.FetchSection(raw, s)
}

// FetchSection is Section for a parsed spec (RFC 9051 6.4.5.1).
func (p *Part) FetchSection(raw []byte, s SectionSpec) ([]byte, error) {
	node, err := p.Lookup(s.Part)
	if err != nil {
		return nil, err
	}
	if len(s.Part) == 0 && s.Text == "" {
		return clamp(raw, p.HeaderStart, p.End), nil // BODY[]: the whole message
	}
	switch s.Text {
	case "":
		return node.Body(raw), nil
	case "MIME":
		if len(s.Part) == 0 {
			return nil, ErrSectionSyntax
		}
		return node.Header(raw), nil
	}
	// HEADER, HEADER.FIELDS[.NOT] and TEXT address a message: the root, or
	// the message inside a MESSAGE/RFC822 or MESSAGE/GLOBAL part.
	msg := node
	if len(s.Part) > 0 {
		if !node.IsMessage() || len(node.Children) == 0 {
			return nil, ErrNoSection
		}
		msg = node.Children[0]
	}
	switch s.Text {
	case "HEADER":
		return msg.Header(raw), nil
	case "TEXT":
		return msg.Body(raw), nil
	case "HEADER.FIELDS":
		return msg.headerFields(raw, s.Fields, false), nil
	case "HEADER.FIELDS.NOT":
		return msg.headerFields(raw, s.Fields, true), nil
	}
	return nil, ErrSectionSyntax
}

// Lookup returns the part that a list of part numbers names (RFC 9051
// 6.4.5.1): the parts of a multipart are numbered from 1; a message
// (the root or an encapsulated one) that is not multipart has one part,
// "1", its body; the parts of a MESSAGE/RFC822 part are those of the
// message inside it. An empty path is the root.
func (p *Part) Lookup(path []int) (*Part, error) {
	node, asMessage := p, true
	for _, n := range path {
		kids := numbered(node, asMessage)
		if n < 1 || n > len(kids) || kids[n-1] == nil {
			return nil, ErrNoSection
		}
		node, asMessage = kids[n-1], false
	}
	return node, nil
}

// numbered lists the parts numbered under node.
func numbered(node *Part, asMessage bool) []*Part {
	switch {
	case node.IsMultipart():
		return node.Children
	case node.IsMessage() && !asMessage && len(node.Children) > 0 && node.Children[0] != nil:
		return numbered(node.Children[0], true)
	case asMessage:
		return []*Part{node}
	}
	return nil
}

// headerFields returns the fields of the header whose names are (not) in
// names, ASCII case-insensitively, in their order and with their folding,
// then the blank line, which RFC 9051 6.4.5.1 includes in all header
// fetches, except in the case of a message that has no body and no blank
// line.
func (p *Part) headerFields(raw []byte, names []string, not bool) []byte {
	out := []byte{}
	walkHeader(raw, p.HeaderStart, min(p.BodyStart, len(raw)), func(f field) bool {
		match := false
		for _, n := range names {
			if fieldIsFold(f.name, n) {
				match = true
				break
			}
		}
		if match != not {
			out = append(out, clamp(raw, f.start, f.end)...)
		}
		return true
	})
	return append(out, blankLine(p.Header(raw))...)
}

// blankLine returns the line break that ends a header block, or nil when
// the block has no empty line.
func blankLine(h []byte) []byte {
	switch {
	case bytes.Equal(h, []byte("\r\n")), bytes.HasSuffix(h, []byte("\n\r\n")):
		return []byte("\r\n")
	case bytes.Equal(h, []byte("\n")), bytes.HasSuffix(h, []byte("\n\n")):
		return []byte("\n")
	}
	return nil
}

// fieldIsFold compares a field name ASCII case-insensitively (RFC 9051
// 6.4.5.1: "ASCII-range case insensitive but is otherwise exact").
func fieldIsFold(name []byte, want string) bool {
	if len(name) != len(want) {
		return false
	}
	for i, c := range name {
		if lowerASCII(c) != lowerASCII(want[i]) {
			return false
		}
	}
	return true
}
