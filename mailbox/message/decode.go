package message

import "strings"

// Decoded returns the part's body with its Content-Transfer-Encoding
// removed, for FETCH BINARY[section] (RFC 3516 4.3, RFC 9051 6.4.5).
// 7bit, 8bit and binary bodies are returned as they are (a slice of raw);
// base64 and quoted-printable are decoded leniently. Any other encoding is
// ErrUnknownCTE (NO [UNKNOWN-CTE]); a multipart or message part is
// ErrNotLeaf, since BINARY is only for leaf parts. BINARY[] with no part
// number is the whole message, as BODY[]: the server handles that case.
func (p *Part) Decoded(raw []byte) ([]byte, error) {
	if p.IsMultipart() || p.IsMessage() {
		return nil, ErrNotLeaf
	}
	return decodeCTE(p.Encoding, p.Body(raw))
}

// DecodedSize is the size of Decoded, for BINARY.SIZE (RFC 3516 4.3: it
// MUST match what BINARY returns). Identity encodings cost nothing;
// base64 is counted without decoding.
func (p *Part) DecodedSize(raw []byte) (int, error) {
	if p.IsMultipart() || p.IsMessage() {
		return 0, ErrNotLeaf
	}
	switch strings.ToLower(p.Encoding) {
	case "", "7bit", "8bit", "binary":
		return len(p.Body(raw)), nil
	case "base64":
		return base64Decode(nil, p.Body(raw), true), nil
	}
	b, err := p.Decoded(raw)
	return len(b), err
}

func decodeCTE(cte string, body []byte) ([]byte, error) {
	switch strings.ToLower(cte) {
	case "", "7bit", "8bit", "binary":
		return body, nil
	case "base64":
		out := make([]byte, 0, len(body)/4*3+3)
		base64Decode(&out, body, false)
		return out, nil
	case "quoted-printable":
		return decodeQP(body), nil
	}
	return nil, ErrUnknownCTE
}

// base64Value maps the RFC 2045 6.8 alphabet to its values; others to 0xff.
func base64Value(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c - 'A'
	case 'a' <= c && c <= 'z':
		return c - 'a' + 26
	case '0' <= c && c <= '9':
		return c - '0' + 52
	case c == '+':
		return 62
	case c == '/':
		return 63
	}
	return 0xff
}

// base64Decode decodes src into *dst (or only counts, when countOnly) and
// returns the decoded length. RFC 2045 6.8: characters outside the alphabet
// are ignored. "=" ends a quantum; decoding goes on after it, which
// recovers the bodies of mailers that concatenate encoded chunks.
func base64Decode(dst *[]byte, src []byte, countOnly bool) int {
	var acc uint32
	n, total := 0, 0
	flush := func() {
		switch n {
		case 2:
			total++
			if !countOnly {
				*dst = append(*dst, byte(acc>>4))
			}
		case 3:
			total += 2
			if !countOnly {
				*dst = append(*dst, byte(acc>>10), byte(acc>>2))
			}
		}
		acc, n = 0, 0
	}
	for _, c := range src {
		if c == '=' {
			flush()
			continue
		}
		v := base64Value(c)
		if v == 0xff {
			continue
		}
		acc = acc<<6 | uint32(v)
		n++
		if n == 4 {
			total += 3
			if !countOnly {
				*dst = append(*dst, byte(acc>>16), byte(acc>>8), byte(acc))
			}
			acc, n = 0, 0
		}
	}
	flush()
	return total
}

// decodeQP decodes quoted-printable (RFC 2045 6.7). Line breaks are kept
// as they are (CRLF or LF); trailing blanks of a line are dropped (rule 3);
// "=" at the end of a line is a soft line break (rule 5); "=" not followed
// by two hex digits is kept literally (the lenient reading the RFC
// recommends); lower-case hex is accepted.
func decodeQP(src []byte) []byte {
	out := make([]byte, 0, len(src))
	for len(src) > 0 {
		line, eol := src, []byte(nil)
		rest := []byte(nil)
		for i, c := range src {
			if c == '\n' {
				line, rest = src[:i], src[i+1:]
				eol = src[i : i+1]
				if i > 0 && src[i-1] == '\r' {
					line, eol = src[:i-1], src[i-1:i+1]
				}
				break
			}
		}
		for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
			line = line[:len(line)-1]
		}
		soft := len(line) > 0 && line[len(line)-1] == '='
		if soft {
			line = line[:len(line)-1]
		}
		for i := 0; i < len(line); i++ {
			c := line[i]
			if c == '=' && i+2 < len(line) && isHex(line[i+1]) && isHex(line[i+2]) {
				out = append(out, unhex(line[i+1])<<4|unhex(line[i+2]))
				i += 2
				continue
			}
			out = append(out, c)
		}
		if !soft {
			out = append(out, eol...)
		}
		src = rest
	}
	return out
}
