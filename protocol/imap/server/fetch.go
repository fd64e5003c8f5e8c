package server

import (
	"strconv"
	"strings"

	"posthorn/mailbox/message"
	"posthorn/protocol/imap"
)

// fetchKind is one FETCH data item (RFC 9051 6.4.5; BINARY RFC 3516 4.2).
type fetchKind uint8

const (
	fetchUID fetchKind = iota
	fetchFlags
	fetchInternalDate
	fetchSize
	fetchEnvelope
	fetchBody          // BODY: the non-extensible BODYSTRUCTURE
	fetchBodyStructure // BODYSTRUCTURE
	fetchSection       // BODY[...], BODY.PEEK[...], RFC822, RFC822.HEADER, RFC822.TEXT
	fetchBinary        // BINARY[...], BINARY.PEEK[...]
	fetchBinarySize    // BINARY.SIZE[...]
)

// fetchItem is one parsed data item.
type fetchItem struct {
	kind    fetchKind
	name    string // the item's name in the response: "BODY[1.MIME]<0>", "RFC822"
	seen    bool   // fetching it sets \Seen (RFC 9051 6.4.5: BODY[] without .PEEK)
	spec    message.SectionSpec
	part    []int // BINARY part numbers
	partial bool
	origin  int64
	count   int64
}

// needsBody reports whether the item reads the message bytes or its parsed
// structure rather than only its metadata.
func (it *fetchItem) needsBody() bool {
	switch it.kind {
	case fetchEnvelope, fetchBody, fetchBodyStructure, fetchSection, fetchBinary, fetchBinarySize:
		return true
	}
	return false
}

// parseFetchItems reads the FETCH data items: a macro, one item, or a
// parenthesised list (RFC 9051 9, fetch).
func parseFetchItems(p *imap.Parser) ([]fetchItem, error) {
	if p.Peek() == '(' {
		var items []fetchItem
		err := p.List(func(p *imap.Parser) error {
			it, err := parseFetchItem(p)
			items = append(items, it...)
			return err
		})
		if err == nil && len(items) == 0 {
			err = bad("FETCH needs at least one data item")
		}
		return items, err
	}
	return parseFetchItem(p)
}

// parseFetchItem reads one fetch-att, or a macro (ALL, FAST, FULL; RFC
// 9051 6.4.5), which expands to several.
func parseFetchItem(p *imap.Parser) ([]fetchItem, error) {
	kw, err := p.Keyword()
	if err != nil {
		return nil, err
	}
	simple := func(k fetchKind) []fetchItem { return []fetchItem{{kind: k, name: kw}} }
	switch kw {
	case "ALL":
		return macro("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"), nil
	case "FAST":
		return macro("FLAGS", "INTERNALDATE", "RFC822.SIZE"), nil
	case "FULL":
		return macro("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"), nil
	case "UID":
		return simple(fetchUID), nil
	case "FLAGS":
		return simple(fetchFlags), nil
	case "INTERNALDATE":
		return simple(fetchInternalDate), nil
	case "RFC822.SIZE":
		return simple(fetchSize), nil
	case "ENVELOPE":
		return simple(fetchEnvelope), nil
	case "BODYSTRUCTURE":
		return simple(fetchBodyStructure), nil
	case "RFC822":
		// RFC 3501 6.4.5: RFC822 is BODY[], RFC822.HEADER BODY.PEEK[HEADER],
		// RFC822.TEXT BODY[TEXT], each under its own name.
		return []fetchItem{{kind: fetchSection, name: kw, seen: true}}, nil
	case "RFC822.HEADER":
		return []fetchItem{{kind: fetchSection, name: kw, spec: message.SectionSpec{Text: "HEADER"}}}, nil
	case "RFC822.TEXT":
		return []fetchItem{{kind: fetchSection, name: kw, seen: true, spec: message.SectionSpec{Text: "TEXT"}}}, nil
	case "BODY", "BODY.PEEK":
		if p.Peek() != '[' {
			if kw == "BODY.PEEK" {
				return nil, bad("BODY.PEEK needs a section")
			}
			return simple(fetchBody), nil
		}
		it := fetchItem{kind: fetchSection, seen: kw == "BODY"}
		name, err := parseSection(p, &it.spec)
		if err != nil {
			return nil, err
		}
		if err := parsePartial(p, &it); err != nil {
			return nil, err
		}
		it.name = "BODY[" + name + "]" + it.partialName()
		return []fetchItem{it}, nil
	case "BINARY", "BINARY.PEEK", "BINARY.SIZE":
		it := fetchItem{kind: fetchBinary, seen: kw == "BINARY"}
		if kw == "BINARY.SIZE" {
			it.kind = fetchBinarySize
		}
		part, err := parseBinarySection(p)
		if err != nil {
			return nil, err
		}
		it.part = part
		if it.kind == fetchBinary {
			if err := parsePartial(p, &it); err != nil {
				return nil, err
			}
		}
		base := "BINARY"
		if it.kind == fetchBinarySize {
			base = "BINARY.SIZE"
		}
		it.name = base + "[" + partString(part) + "]" + it.partialName()
		return []fetchItem{it}, nil
	}
	return nil, bad("Unknown FETCH data item")
}

func macro(names ...string) []fetchItem {
	kinds := map[string]fetchKind{"FLAGS": fetchFlags, "INTERNALDATE": fetchInternalDate,
		"RFC822.SIZE": fetchSize, "ENVELOPE": fetchEnvelope, "BODY": fetchBody}
	items := make([]fetchItem, len(names))
	for i, n := range names {
		items[i] = fetchItem{kind: kinds[n], name: n}
	}
	return items
}

// parseSection reads "[" [section-spec] "]" into spec and returns the
// section as it is echoed in the response (RFC 9051 7.5.2: the same
// section-spec, field names as the client sent them).
func parseSection(p *imap.Parser, spec *message.SectionSpec) (string, error) {
	if err := p.Expect('['); err != nil {
		return "", err
	}
	var echo strings.Builder
	for p.Peek() >= '1' && p.Peek() <= '9' {
		n, err := p.NzNumber()
		if err != nil {
			return "", err
		}
		if len(spec.Part) >= 2*message.MaxDepth+2 {
			return "", bad("Section nested too deeply")
		}
		spec.Part = append(spec.Part, int(n))
		echo.WriteString(strconv.FormatUint(uint64(n), 10))
		if !p.Accept('.') {
			break
		}
		echo.WriteByte('.')
		if c := p.Peek(); c < '1' || c > '9' {
			break
		}
	}
	if p.Peek() != ']' {
		kw, err := p.Keyword()
		if err != nil {
			return "", err
		}
		switch kw {
		case "HEADER", "TEXT":
		case "MIME":
			if len(spec.Part) == 0 {
				return "", bad("MIME needs a part number") // RFC 9051 6.4.5
			}
		case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
			if err := p.SP(); err != nil {
				return "", err
			}
			err := p.List(func(p *imap.Parser) error {
				f, err := p.AString()
				if err != nil {
					return err
				}
				if f == "" || strings.ContainsFunc(f, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == ':' }) {
					return bad("Invalid header field name") // RFC 5322 2.2: ftext
				}
				spec.Fields = append(spec.Fields, f)
				return nil
			})
			if err != nil {
				return "", err
			}
			if len(spec.Fields) == 0 {
				return "", bad("Empty header field list")
			}
		default:
			return "", bad("Unknown section")
		}
		spec.Text = kw
		echo.WriteString(kw)
		if spec.Fields != nil {
			echo.WriteString(" (")
			for i, f := range spec.Fields {
				if i > 0 {
					echo.WriteByte(' ')
				}
				echo.WriteString(quoteField(f))
			}
			echo.WriteByte(')')
		}
	} else if strings.HasSuffix(echo.String(), ".") {
		return "", bad("Incomplete section")
	}
	if err := p.Expect(']'); err != nil {
		return "", err
	}
	return echo.String(), nil
}

// quoteField writes a header field name as an astring: an atom when it is
// one, else quoted.
func quoteField(f string) string {
	if strings.ContainsAny(f, `(){%*"\]`) {
		return strconv.Quote(f)
	}
	return f
}

// parseBinarySection reads section-binary = "[" [section-part] "]" (RFC
// 3516 4.2).
func parseBinarySection(p *imap.Parser) ([]int, error) {
	if err := p.Expect('['); err != nil {
		return nil, err
	}
	var part []int
	for !p.Accept(']') {
		if len(part) > 0 {
			if err := p.Expect('.'); err != nil {
				return nil, err
			}
		}
		n, err := p.NzNumber()
		if err != nil {
			return nil, err
		}
		if len(part) >= 2*message.MaxDepth+2 {
			return nil, bad("Section nested too deeply")
		}
		part = append(part, int(n))
	}
	return part, nil
}

// parsePartial reads an optional "<" number "." nz-number ">" (RFC 9051 9,
// partial).
func parsePartial(p *imap.Parser, it *fetchItem) error {
	if !p.Accept('<') {
		return nil
	}
	origin, err := p.Number64()
	if err != nil {
		return err
	}
	if err := p.Expect('.'); err != nil {
		return err
	}
	if c := p.Peek(); c < '1' || c > '9' {
		return bad("Partial length must be positive")
	}
	count, err := p.Number64()
	if err != nil {
		return err
	}
	if err := p.Expect('>'); err != nil {
		return err
	}
	it.partial, it.origin, it.count = true, origin, count
	return nil
}

// partialName is the "<origin>" suffix of the response item (RFC 9051
// 7.5.2: only the origin is returned).
func (it *fetchItem) partialName() string {
	if !it.partial {
		return ""
	}
	return "<" + strconv.FormatInt(it.origin, 10) + ">"
}

func partString(part []int) string {
	var b strings.Builder
	for i, n := range part {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// cmdFetch: RFC 9051 6.4.5 and, as "UID FETCH", 6.4.9.
func (s *session) cmdFetch(c *imap.Command) error {
	uidMode := c.Name == "UID FETCH"
	p := c.Args()
	if err := p.SP(); err != nil {
		return err
	}
	set, err := p.SeqSet()
	if err != nil {
		return err
	}
	if err := p.SP(); err != nil {
		return err
	}
	items, err := parseFetchItems(&p)
	if err != nil {
		return err
	}
	if err := p.End(); err != nil {
		return err
	}
	uids, err := s.resolve(set, uidMode)
	if err != nil {
		return err
	}
	if uidMode {
		// RFC 9051 6.4.9: UID FETCH responses always include UID.
		hasUID := false
		for _, it := range items {
			hasUID = hasUID || it.kind == fetchUID
		}
		if !hasUID {
			items = append([]fetchItem{{kind: fetchUID, name: "UID"}}, items...)
		}
	}
	return s.fetch(uids, items)
}
