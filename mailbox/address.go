package mailbox

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Address limits.
const (
	// MaxAddressLength: RFC 5321 4.5.3.1.3 limits a path to 256 octets
	// including the angle brackets, which leaves 254 for the address.
	MaxAddressLength = 254
	// MaxLocalPartLength: RFC 5321 4.5.3.1.1.
	MaxLocalPartLength = 64
	// maxLabelLength: RFC 1035 2.3.4.
	maxLabelLength = 63
)

// addressSpecials are the RFC 5322 3.2.3 specials that cannot appear in a
// dot-atom local part. Quoted local parts are not accepted for accounts and
// aliases: they would need a second spelling of the same name.
const addressSpecials = `()<>[]:;@\,"`

// NormalizeAddress validates an address and returns its canonical form: the
// local part and the domain lower-cased (Unicode simple case mapping; UTF-8
// addresses as in RFC 6531 are kept as UTF-8, IDNA is not applied). The
// address must be one '@' between a non-empty dot-atom local part of at most
// 64 octets and a domain of non-empty labels, with no spaces or control
// characters and at most 254 octets in all. Errors wrap ErrBadAddress.
func NormalizeAddress(addr string) (string, error) {
	local, domain, err := splitAddress(addr)
	if err != nil {
		return "", err
	}
	if local == "" {
		return "", fmt.Errorf("%w: %q: empty local part", ErrBadAddress, addr)
	}
	return local + "@" + domain, nil
}

// NormalizeAliasAddress is NormalizeAddress that also accepts a catch-all
// "@domain" (an empty local part), which matches every address of the domain
// that nothing else matches.
func NormalizeAliasAddress(addr string) (string, error) {
	local, domain, err := splitAddress(addr)
	if err != nil {
		return "", err
	}
	return local + "@" + domain, nil
}

// splitAddress validates and lower-cases addr; an empty local part is
// returned without error for the caller to judge.
func splitAddress(addr string) (local, domain string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("%w: %q: %s", ErrBadAddress, truncateForError(addr), why)
	}
	if len(addr) > MaxAddressLength {
		return bad("longer than 254 octets")
	}
	if !utf8.ValidString(addr) {
		return bad("not UTF-8")
	}
	if strings.Count(addr, "@") != 1 {
		return bad("needs exactly one '@'")
	}
	at := strings.IndexByte(addr, '@')
	local, domain = strings.ToLower(addr[:at]), strings.ToLower(addr[at+1:])
	if len(local)+1+len(domain) > MaxAddressLength {
		return bad("longer than 254 octets")
	}
	if local != "" {
		if len(local) > MaxLocalPartLength {
			return bad("local part longer than 64 octets")
		}
		if err := checkDotAtom(local); err != "" {
			return bad(err)
		}
	}
	if domain == "" {
		return bad("empty domain")
	}
	for label := range strings.SplitSeq(domain, ".") {
		if label == "" {
			return bad("empty domain label")
		}
		if len(label) > maxLabelLength {
			return bad("domain label longer than 63 octets")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return bad("domain label starts or ends with '-'")
		}
		for _, r := range label {
			ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' ||
				r >= utf8.RuneSelf && unicode.IsPrint(r) && !unicode.IsSpace(r)
			if !ok {
				return bad("invalid character in domain")
			}
		}
	}
	return local, domain, nil
}

// checkDotAtom checks an RFC 5322 3.2.3 dot-atom (with RFC 6531 UTF-8
// characters allowed) and returns what is wrong, or "".
func checkDotAtom(s string) string {
	if s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return "misplaced '.' in local part"
	}
	for _, r := range s {
		switch {
		case r < 0x21 || r == 0x7f:
			return "space or control character in local part"
		case r < utf8.RuneSelf:
			if strings.ContainsRune(addressSpecials, r) {
				return "special character in local part"
			}
		case !unicode.IsPrint(r) || unicode.IsSpace(r):
			return "space or control character in local part"
		}
	}
	return ""
}

// stripDetail removes a recipient-delimiter detail from a local part
// ("bob+lists" → "bob"). As Postfix's recipient_delimiter, delims is a set of
// characters and the first occurrence of any of them starts the detail. An
// address whose local part starts with a delimiter has no base to strip to.
func stripDetail(local, delims string) (string, bool) {
	if delims == "" {
		return "", false
	}
	i := strings.IndexAny(local, delims)
	if i <= 0 {
		return "", false
	}
	return local[:i], true
}

// truncateForError keeps hostile input out of logs at full length.
func truncateForError(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
