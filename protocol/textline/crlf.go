package textline

import "bytes"

// CanonicalCRLF returns b with every bare CR and bare LF turned into CRLF
// (RFC 5322 2.1: lines end in CRLF; RFC 9051 6.3.12: an APPENDed message
// is in RFC 5322 form). It returns b itself, without copying, when b has
// no bare line end, which is the common case.
func CanonicalCRLF(b []byte) []byte {
	if !hasBareLineEnd(b) {
		return b
	}
	out := make([]byte, 0, len(b)+bytes.Count(b, []byte{'\n'})+1)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\r' && i+1 < len(b) && b[i+1] == '\n':
			out = append(out, '\r', '\n')
			i++
		case c == '\r' || c == '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

func hasBareLineEnd(b []byte) bool {
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\n':
			if i == 0 || b[i-1] != '\r' {
				return true
			}
		case '\r':
			if i+1 >= len(b) || b[i+1] != '\n' {
				return true
			}
		}
	}
	return false
}
