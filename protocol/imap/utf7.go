package imap

import (
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Modified UTF-7 for mailbox names (RFC 3501 5.1.3, RFC 9051 A.1):
// printable US-ASCII (0x20-0x7E) stands for itself except "&", written "&-";
// every other character is UTF-16 in modified base64 ("," for "/", no
// padding) between "&" and "-".
//
// DecodeUTF7 is strict, so that every name has exactly one encoding and the
// server never holds two spellings of one mailbox (RFC 3501 5.1.3 asks
// servers to "preserve the exact form" and to refuse non-canonical names):
//   - octets outside 0x20-0x7E must be encoded;
//   - a base64 run ends with "-" (no implicit shift) and is not empty
//     ("&-" is "&");
//   - a run may not encode printable US-ASCII ("&AGE-" for "a");
//   - a run may not follow another directly ("&U,BTFw-&ZeVnLIqe-" is a
//     superfluous shift);
//   - the leftover bits of a run are fewer than 6 and zero, and UTF-16
//     surrogates are paired.
//
// Then EncodeUTF7(DecodeUTF7(s)) == s for every s that decodes.

const base64Modified = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"

// ErrUTF7 is returned for a string that is not canonical modified UTF-7.
var ErrUTF7 = errors.New("imap: invalid modified UTF-7")

func isPrintableASCII(c rune) bool { return c >= 0x20 && c <= 0x7e }

// EncodeUTF7 encodes a UTF-8 mailbox name in modified UTF-7. Invalid UTF-8
// octets are encoded as U+FFFD.
func EncodeUTF7(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '&' || !isPrintableASCII(rune(c)) {
			return string(AppendUTF7(make([]byte, 0, len(s)+8), s))
		}
	}
	return s
}

// AppendUTF7 appends the modified UTF-7 form of s to dst.
func AppendUTF7(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if isPrintableASCII(rune(c)) {
			dst = append(dst, c)
			if c == '&' {
				dst = append(dst, '-')
			}
			i++
			continue
		}
		dst = append(dst, '&')
		var bits uint32
		nbits := 0
		emit := func(u uint16) {
			bits = bits<<16 | uint32(u)
			nbits += 16
			for nbits >= 6 {
				nbits -= 6
				dst = append(dst, base64Modified[(bits>>nbits)&0x3f])
			}
			bits &= 1<<nbits - 1
		}
		for i < len(s) && !isPrintableASCII(rune(s[i])) {
			r, size := utf8.DecodeRuneInString(s[i:])
			i += size
			if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
				emit(uint16(r1))
				emit(uint16(r2))
			} else {
				emit(uint16(r))
			}
		}
		if nbits > 0 {
			dst = append(dst, base64Modified[(bits<<(6-nbits))&0x3f])
		}
		dst = append(dst, '-')
	}
	return dst
}

// DecodeUTF7 decodes a modified UTF-7 mailbox name to UTF-8, strictly (see
// above). Errors wrap ErrUTF7.
func DecodeUTF7(s string) (string, error) {
	if !strings.ContainsRune(s, '&') {
		for i := 0; i < len(s); i++ {
			if !isPrintableASCII(rune(s[i])) {
				return "", ErrUTF7
			}
		}
		return s, nil
	}
	out := make([]byte, 0, len(s))
	runEnd := -1 // index just after the "-" closing the last base64 run
	for i := 0; i < len(s); {
		c := s[i]
		if !isPrintableASCII(rune(c)) {
			return "", ErrUTF7
		}
		if c != '&' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '-' {
			out = append(out, '&')
			i += 2
			continue
		}
		if i == runEnd {
			return "", ErrUTF7 // superfluous shift
		}
		var err error
		if out, i, err = decodeRun(out, s, i+1); err != nil {
			return "", err
		}
		runEnd = i
	}
	return string(out), nil
}

// decodeRun decodes the base64 run starting at s[i] up to and including its
// "-", appending the characters to out, and returns the index after the "-".
func decodeRun(out []byte, s string, i int) ([]byte, int, error) {
	var (
		bits  uint32
		nbits int
		high  rune // pending high surrogate, or 0
		units int
	)
	for ; ; i++ {
		if i == len(s) {
			return nil, 0, ErrUTF7 // no implicit shift back
		}
		c := s[i]
		if c == '-' {
			break
		}
		v := strings.IndexByte(base64Modified, c)
		if v < 0 {
			return nil, 0, ErrUTF7
		}
		bits = bits<<6 | uint32(v)
		nbits += 6
		if nbits < 16 {
			continue
		}
		nbits -= 16
		u := rune(bits >> nbits & 0xffff)
		bits &= 1<<nbits - 1
		units++
		switch {
		case high != 0:
			if !utf16.IsSurrogate(u) || u < 0xdc00 {
				return nil, 0, ErrUTF7
			}
			out = utf8.AppendRune(out, utf16.DecodeRune(high, u))
			high = 0
		case u >= 0xd800 && u < 0xdc00:
			high = u
		case utf16.IsSurrogate(u), isPrintableASCII(u):
			return nil, 0, ErrUTF7 // lone low surrogate; ASCII that must stand for itself
		default:
			out = utf8.AppendRune(out, u)
		}
	}
	if units == 0 || high != 0 || nbits >= 6 || bits != 0 {
		return nil, 0, ErrUTF7
	}
	return out, i + 1, nil
}
