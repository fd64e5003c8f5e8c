package smtp

import (
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Size limits of RFC 5321 4.5.3.1, measured on the octets as sent.
const (
	MaxLocalPart = 64  // RFC 5321 4.5.3.1.1
	MaxDomain    = 255 // RFC 5321 4.5.3.1.2
	MaxPath      = 256 // RFC 5321 4.5.3.1.3: including "<", ">", "@", source route
	maxLabel     = 63  // RFC 1035 2.3.4
)

// Path is a reverse-path or forward-path mailbox. The null reverse-path "<>"
// has Null set. Local is the local part as given (quotes removed, quoted-pairs
// unescaped); Domain is the domain as given (lower-cased ASCII, or the address
// literal in brackets "[127.0.0.1]" / "[IPv6:::1]", with the address written
// in its canonical netip form so that equal addresses compare equal).
type Path struct {
	Null   bool
	Local  string
	Domain string
	// Postmaster is set for the bare "<Postmaster>" forward-path (RFC 5321 4.1.1.3).
	Postmaster bool
}

// String renders the mailbox as "local@domain", quoting the local part when it
// is not a Dot-string (RFC 5321 4.1.2: "the sending system SHOULD transmit the
// form that uses the minimum quoting possible"); "" for the null path and
// "postmaster" for the bare postmaster path.
func (p Path) String() string {
	if p.Null {
		return ""
	}
	local := quoteLocal(p.Local)
	if p.Domain == "" {
		return local
	}
	return local + "@" + p.Domain
}

// quoteLocal returns local as a Dot-string if it is one, else as a
// Quoted-string with '"' and '\' escaped (RFC 5321 4.1.2 quoted-pairSMTP).
func quoteLocal(local string) string {
	if isDotString(local) {
		return local
	}
	var b strings.Builder
	b.Grow(len(local) + 2)
	b.WriteByte('"')
	for i := 0; i < len(local); i++ {
		if c := local[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(local[i])
	}
	b.WriteByte('"')
	return b.String()
}

// isDotString reports whether s is Atom *("." Atom), counting non-ASCII as
// atext (RFC 6531 3.3: atext =/ UTF8-non-ascii).
func isDotString(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && c < 0x80 && !isAtext(c) {
			return false
		}
	}
	return true
}

// isAtext reports whether c is RFC 5322 3.2.3 atext (ASCII part).
func isAtext(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// pathRole says which command a path belongs to; it picks the enhanced code
// of address errors (RFC 3463 3.2: X.1.7 sender syntax, X.1.3 destination syntax).
type pathRole int

const (
	reversePath pathRole = iota // MAIL FROM
	forwardPath                 // RCPT TO
)

func (r pathRole) enh() string {
	if r == reversePath {
		return EnhBadSenderMailbox
	}
	return EnhBadDestSyntax
}

// addrError is a 501 for a bad address: RFC 5321 4.1.2 asks for 501 when a
// command holds invalid characters.
func (r pathRole) addrError(text string) Reply {
	return R(CodeArgSyntax, r.enh(), text)
}

// parsePath parses the Path at the start of s, which begins with "<"
// (RFC 5321 4.1.2):
//
//	Path = "<" [ A-d-l ":" ] Mailbox ">"
//
// plus "<>" for a reverse-path and "<Postmaster>" for a forward-path
// (RFC 5321 4.1.1.3). It returns the path, the octets consumed and whether
// the path holds UTF-8, which only SMTPUTF8 allows (RFC 6531 3.3); the caller
// decides that. No white space is allowed anywhere outside a Quoted-string.
func parsePath(s string, role pathRole) (Path, int, bool, error) {
	sc := &scanner{s: s, i: 1}
	fail := func(text string) (Path, int, bool, error) {
		if sc.badUTF8 {
			// Malformed UTF-8 is never valid, with or without SMTPUTF8
			// (RFC 6531 3.3 imports UTF8-non-ascii from RFC 6532 3.1).
			text = "Invalid UTF-8 in address"
		}
		return Path{}, 0, false, role.addrError(text)
	}
	if sc.peek('>') {
		if role == forwardPath {
			// RFC 5321 4.1.2: Forward-path = Path; only the reverse-path may be null.
			return fail("Null recipient address not allowed")
		}
		return Path{Null: true}, 2, false, nil
	}

	// RFC 5321 4.1.1.3 and Appendix C: a source route MUST be accepted and
	// SHOULD be ignored. Its domains are still checked, so that nothing
	// unparsed hides in it, and it counts toward the path length.
	routed := sc.peek('@')
	for routed {
		sc.i++
		if !sc.peek('[') {
			if _, ok := sc.domain(true); !ok {
				return fail("Invalid domain in source route")
			}
		} else if _, ok := sc.literal(); !ok {
			return fail("Invalid address literal in source route")
		}
		if sc.peek(',') {
			sc.i++
			if !sc.peek('@') {
				return fail("Invalid source route")
			}
			continue
		}
		if !sc.peek(':') {
			return fail("Invalid source route")
		}
		sc.i++
		break
	}

	start := sc.i
	quoted := sc.peek('"')
	local, ok := sc.localPart()
	if !ok {
		return fail("Invalid local part in address")
	}
	if sc.i-start > MaxLocalPart {
		return fail("Local part too long")
	}

	// RFC 5321 4.1.1.3: "<Postmaster>" without a domain, matched without
	// regard to case, must be accepted.
	if role == forwardPath && !routed && !quoted && sc.peek('>') && strings.EqualFold(local, "postmaster") {
		return Path{Local: "postmaster", Postmaster: true}, sc.i + 1, false, nil
	}
	if !sc.peek('@') {
		return fail("Invalid address: expected local@domain")
	}
	sc.i++
	start = sc.i
	var domain string
	if sc.peek('[') {
		domain, ok = sc.literal()
		if !ok {
			return fail("Invalid address literal")
		}
	} else if domain, ok = sc.domain(true); !ok {
		return fail("Invalid domain in address")
	}
	if sc.i-start > MaxDomain {
		return fail("Domain too long")
	}
	if !sc.peek('>') {
		return fail("Invalid character in address")
	}
	sc.i++
	if sc.i > MaxPath {
		return fail("Address too long")
	}
	return Path{Local: local, Domain: domain}, sc.i, sc.nonASCII, nil
}

// ParseDomain validates an EHLO/HELO argument: a domain or an address literal
// (RFC 5321 4.1.1.1). It returns the domain lower-cased, or the literal with
// its address in canonical form. A trailing dot is not part of the grammar and
// is rejected. RFC 6531 3.7.1: the client sends EHLO before it knows whether
// SMTPUTF8 is offered, so the domain is ASCII (LDH labels or A-labels) only.
//
// RFC 5321 4.1.1.1 says servers should be prepared for text after an address
// literal (an old RFC 2821 habit); anything after the first SP is ignored.
// An error is 501 5.5.4.
func ParseDomain(s string) (string, error) {
	bad := R(CodeArgSyntax, EnhInvalidArgs, "Syntax error: domain name or address literal required")
	if head, _, found := strings.Cut(s, " "); found {
		s = head
	}
	if s == "" {
		return "", bad
	}
	sc := &scanner{s: s}
	var domain string
	var ok bool
	if sc.peek('[') {
		domain, ok = sc.literal()
	} else {
		domain, ok = sc.domain(false)
	}
	if !ok || sc.i != len(s) || len(s) > MaxDomain {
		return "", bad
	}
	return domain, nil
}

// scanner walks a path left to right. It never backs up, so parsing is
// linear in the input.
type scanner struct {
	s        string
	i        int
	nonASCII bool // saw a UTF-8 character
	badUTF8  bool // saw an octet sequence that is not UTF-8
}

func (sc *scanner) peek(c byte) bool { return sc.i < len(sc.s) && sc.s[sc.i] == c }

// utf8Char consumes one non-ASCII UTF-8 character (RFC 6532 3.1
// UTF8-non-ascii). C1 controls and the Unicode line and paragraph separators
// are refused: like the ASCII controls RFC 5321 4.1.2 bans from addresses,
// they would end up raw in logs and header fields.
func (sc *scanner) utf8Char() bool {
	r, n := utf8.DecodeRuneInString(sc.s[sc.i:])
	if r == utf8.RuneError && n <= 1 {
		sc.badUTF8 = true
		return false
	}
	if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
		return false
	}
	sc.nonASCII = true
	sc.i += n
	return true
}

// localPart consumes Local-part = Dot-string / Quoted-string (RFC 5321 4.1.2)
// and returns it with quotes removed and quoted-pairs unescaped.
func (sc *scanner) localPart() (string, bool) {
	if sc.peek('"') {
		return sc.quotedString()
	}
	start := sc.i
	for {
		atom := sc.i
		for sc.i < len(sc.s) {
			c := sc.s[sc.i]
			if c >= 0x80 {
				// RFC 6531 3.3: atext =/ UTF8-non-ascii
				if !sc.utf8Char() {
					return "", false
				}
				continue
			}
			if !isAtext(c) {
				break
			}
			sc.i++
		}
		if sc.i == atom { // Atom = 1*atext: no leading, trailing or double dot
			return "", false
		}
		if !sc.peek('.') {
			return sc.s[start:sc.i], true
		}
		sc.i++
	}
}

// quotedString consumes a Quoted-string (RFC 5321 4.1.2):
//
//	Quoted-string   = DQUOTE *QcontentSMTP DQUOTE
//	quoted-pairSMTP = %d92 %d32-126
//	qtextSMTP       = %d32-33 / %d35-91 / %d93-126
//
// with qtextSMTP =/ UTF8-non-ascii (RFC 6531 3.3).
func (sc *scanner) quotedString() (string, bool) {
	sc.i++
	var b strings.Builder
	for sc.i < len(sc.s) {
		c := sc.s[sc.i]
		switch {
		case c == '"':
			sc.i++
			return b.String(), true
		case c == '\\':
			if sc.i+1 >= len(sc.s) || sc.s[sc.i+1] < ' ' || sc.s[sc.i+1] > '~' {
				return "", false
			}
			b.WriteByte(sc.s[sc.i+1])
			sc.i += 2
		case c >= ' ' && c <= '~':
			b.WriteByte(c)
			sc.i++
		case c >= 0x80:
			start := sc.i
			if !sc.utf8Char() {
				return "", false
			}
			b.WriteString(sc.s[start:sc.i])
		default:
			return "", false
		}
	}
	return "", false
}

// domain consumes Domain = sub-domain *("." sub-domain) with
// sub-domain = Let-dig [Ldh-str] (RFC 5321 4.1.2: letters, digits and
// hyphen only, "the underscore character is not permitted"), each label at
// most 63 octets (RFC 1035 2.3.4). With allowUTF8 a label may also be a
// U-label (RFC 6531 3.3); full IDNA2008 validation is beyond a parser, so a
// U-label is checked only for letters, marks, digits and inner hyphens, and
// held to the same 63 octets. The result is lower-cased in ASCII only.
func (sc *scanner) domain(allowUTF8 bool) (string, bool) {
	start := sc.i
	for {
		label := sc.i
		for sc.i < len(sc.s) {
			c := sc.s[sc.i]
			if isAlpha(c) || isDigit(c) || c == '-' {
				sc.i++
				continue
			}
			if c < 0x80 || !allowUTF8 {
				break
			}
			r, n := utf8.DecodeRuneInString(sc.s[sc.i:])
			if r == utf8.RuneError && n <= 1 {
				sc.badUTF8 = true
				return "", false
			}
			// IDNA2008 (RFC 5892) admits letters, marks and digits; this
			// also keeps out look-alikes of "." such as U+3002.
			if !unicode.IsLetter(r) && !unicode.IsMark(r) && !unicode.IsNumber(r) {
				return "", false
			}
			sc.nonASCII = true
			sc.i += n
		}
		l := sc.s[label:sc.i]
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' || len(l) > maxLabel {
			return "", false
		}
		if !sc.peek('.') {
			break
		}
		sc.i++
	}
	return lowerASCII(sc.s[start:sc.i]), true
}

// literal consumes an address-literal (RFC 5321 4.1.3) and returns it in
// brackets with the address in canonical form. IPv4 and "IPv6:" literals are
// checked with net/netip; a General-address-literal names no standardized tag
// Posthorn could route to and is refused. netip rejects IPv4 octets with
// leading zeros, which the Snum rule allows but which some parsers read as
// octal: refusing them keeps two parsers from disagreeing on an address.
func (sc *scanner) literal() (string, bool) {
	end := strings.IndexByte(sc.s[sc.i:], ']')
	if end < 0 {
		return "", false
	}
	body := sc.s[sc.i+1 : sc.i+end]
	sc.i += end + 1
	// "IPv6:" is an ABNF quoted string, so its case does not matter (RFC 5234 2.3).
	if len(body) >= 5 && strings.EqualFold(body[:5], "IPv6:") {
		a, err := netip.ParseAddr(body[5:])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		return "[IPv6:" + a.String() + "]", true
	}
	a, err := netip.ParseAddr(body)
	if err != nil || !a.Is4() {
		return "", false
	}
	return "[" + a.String() + "]", true
}

// lowerASCII lower-cases ASCII letters and leaves every other octet alone.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
