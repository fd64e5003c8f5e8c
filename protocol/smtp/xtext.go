package smtp

import "strings"

// XtextDecode decodes RFC 3461 4 xtext: xchar is any of "!" (33) to "~" (126)
// except "+" and "="; hexchar is "+" and two hex digits. The RFC asks for
// upper-case hex; lower-case is accepted too (RFC 5321 4.5.4's "be liberal"
// costs nothing here, since "+ab" has no other meaning). The result may hold
// any octet; callers check what their parameter allows. An error is 501 5.5.4.
func XtextDecode(s string) (string, error) {
	bad := R(CodeArgSyntax, EnhInvalidArgs, "Syntax error in xtext")
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) {
				return "", bad
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", bad
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		case c < '!' || c > '~' || c == '=':
			return "", bad
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// XtextEncode encodes s as RFC 3461 4 xtext, writing every octet outside
// "!".."~", and "+" and "=", as "+" with two upper-case hex digits.
func XtextEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			b.WriteByte('+')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
