package imap

import "strings"

// Character classes of RFC 9051 9. Everything outside CHAR (%x01-7F) is
// excluded from every class here: 8-bit text only travels in quoted strings
// (as UTF-8, RFC 9051 4.3.1) and literals.

// isAtomChar reports whether c is an ATOM-CHAR: any CHAR except atom-specials
// = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials.
func isAtomChar(c byte) bool {
	if c <= 0x1f || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

// isAStringChar reports whether c is an ASTRING-CHAR (ATOM-CHAR / "]").
func isAStringChar(c byte) bool { return c == ']' || isAtomChar(c) }

// isListChar reports whether c is a list-char (ATOM-CHAR / list-wildcards /
// resp-specials), the unquoted form of a LIST pattern.
func isListChar(c byte) bool { return c == '%' || c == '*' || isAStringChar(c) }

// isTagChar reports whether c may appear in a tag: any ASTRING-CHAR except "+"
// (RFC 9051 9, tag), so that a tag is never confused with a continuation.
func isTagChar(c byte) bool { return c != '+' && isAStringChar(c) }

// isKeywordChar reports whether c may appear in a Keyword: an ATOM-CHAR that
// does not open a section ("[") or a partial ("<"), so that "BODY.PEEK[1]<0.10>"
// yields the keyword "BODY.PEEK".
func isKeywordChar(c byte) bool { return c != '[' && c != '<' && isAtomChar(c) }

// isSeqSetChar reports whether c may appear in a sequence-set (RFC 9051 9,
// RFC 5182 "$").
func isSeqSetChar(c byte) bool {
	return (c >= '0' && c <= '9') || c == ':' || c == ',' || c == '*' || c == '$'
}

// validTag reports whether s is a valid tag.
func validTag[T string | []byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTagChar(s[i]) {
			return false
		}
	}
	return true
}

// validAtom reports whether s is a non-empty run of ATOM-CHARs.
func validAtom[T string | []byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAtomChar(s[i]) {
			return false
		}
	}
	return true
}

// upperASCII returns s with ASCII letters upper-cased, as a new string.
func upperASCII(s []byte) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, c := range s {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// equalFoldASCII compares s and w ignoring the case of ASCII letters.
func equalFoldASCII[T string | []byte](s T, w string) bool {
	if len(s) != len(w) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lowerASCII(s[i]) != lowerASCII(w[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}
