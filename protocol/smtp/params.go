package smtp

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on parameter values.
const (
	maxSizeDigits  = 20  // RFC 1870 4: size-value ::= 1*20DIGIT
	maxEnvID       = 100 // RFC 3461 4.4: "ENVID parameter MAY be up to 100 characters"
	maxORcpt       = 500 // RFC 3461 4.2: "The entire ORCPT parameter MAY be up to 500 characters"
	maxAuth        = 500 // RFC 4954 5 sets none; a mailbox fits in 320 octets (RFC 5321 4.5.3.1)
	maxKeywordEcho = 32  // how much of an unknown keyword a reply repeats
)

// MailParams are the ESMTP parameters of MAIL FROM the server understands.
type MailParams struct {
	Size     int64  // SIZE= (RFC 1870); 0 when absent
	Body     string // "", "7BIT", "8BITMIME" (RFC 6152), "BINARYMIME" (RFC 3030)
	SMTPUTF8 bool   // RFC 6531 3.4
	Ret      string // "", "FULL", "HDRS" (RFC 3461 4.3)
	EnvID    string // ENVID= decoded from xtext (RFC 3461 4.4)
	Auth     string // AUTH= mailbox or "<>" (RFC 4954 5), xtext-decoded
}

// RcptParams are the ESMTP parameters of RCPT TO.
type RcptParams struct {
	Notify []string // NEVER, or any of SUCCESS, FAILURE, DELAY (RFC 3461 4.1)
	ORcpt  string   // ORCPT= "rfc822;addr", addr decoded from xtext (RFC 3461 4.2)
}

// ParseMail parses the argument of MAIL ("FROM:<path> params"), RFC 5321 4.1.1.2:
//
//	mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF
//
// Like Postfix, Posthorn accepts spaces between "FROM:" and "<" (RFC 5321
// 4.1.2 has none, but clients that send them are common and the meaning is
// unambiguous). An address without angle brackets is refused: guessing where
// a bare address ends is how parsers come to disagree.
//
// Errors are Reply values:
//   - 501 5.5.4 syntax error outside the address, or a bad or repeated parameter
//     (RFC 3461 4.5: repeated RET or ENVID is a 501);
//   - 501 5.1.7 bad sender address, including a local part over 64 octets, a
//     domain over 255 or a path over 256 (RFC 5321 4.5.3.1), or invalid UTF-8;
//   - 555 5.5.4 unknown parameter (RFC 5321 4.1.1.11);
//   - 550 5.6.7 UTF-8 address without the SMTPUTF8 parameter (RFC 6531 3.5:
//     550 for MAIL, 553 for RCPT).
func ParseMail(arg string) (Path, MailParams, error) {
	var mp MailParams
	p, rest, nonASCII, err := parsePathArg(arg, "FROM:", reversePath)
	if err != nil {
		return Path{}, mp, err
	}
	var seen []string
	err = eachParam(rest, func(key, value string, hasValue bool) error {
		if err := checkOnce(&seen, key); err != nil {
			return err
		}
		bad := badValue(key)
		switch key {
		case "SIZE":
			// RFC 1870 4: size-value ::= 1*20DIGIT. Twenty digits can
			// exceed int64; such a value is refused rather than clamped.
			if !hasValue || len(value) > maxSizeDigits || strings.Trim(value, "0123456789") != "" {
				return bad
			}
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil {
				return bad
			}
			mp.Size = n
		case "BODY":
			// RFC 6152 2, RFC 3030 3: BODY=7BIT / 8BITMIME / BINARYMIME,
			// case-insensitive like all ABNF literals (RFC 5234 2.3).
			v := strings.ToUpper(value)
			if v != "7BIT" && v != "8BITMIME" && v != "BINARYMIME" {
				return bad
			}
			mp.Body = v
		case "SMTPUTF8":
			// RFC 6531 3.4: "it MUST not accept a value".
			if hasValue {
				return bad
			}
			mp.SMTPUTF8 = true
		case "RET":
			// RFC 3461 4.3: FULL or HDRS, "in any combination of upper and lower case".
			v := strings.ToUpper(value)
			if v != "FULL" && v != "HDRS" {
				return bad
			}
			mp.Ret = v
		case "ENVID":
			// RFC 3461 4.4: xtext of printable US-ASCII, up to 100 characters.
			v, err := XtextDecode(value)
			if !hasValue || err != nil || len(v) > maxEnvID || !isPrintable(v) {
				return bad
			}
			mp.EnvID = v
		case "AUTH":
			// RFC 4954 5: auth-param = "AUTH=" xtext, a mailbox or "<>".
			// Whether to trust it is the server's decision.
			v, err := XtextDecode(value)
			if !hasValue || err != nil || v == "" || len(v) > maxAuth || !isPrintable(v) {
				return bad
			}
			mp.Auth = v
		default:
			return unknownParam(key)
		}
		return nil
	})
	if err != nil {
		return Path{}, MailParams{}, err
	}
	if nonASCII && !mp.SMTPUTF8 {
		return Path{}, MailParams{}, R(CodeMailboxUnavail, EnhNonASCIIAddr, "Non-ASCII sender address requires SMTPUTF8")
	}
	return p, mp, nil
}

// ParseRcpt parses the argument of RCPT ("TO:<path> params"), RFC 5321 4.1.1.3:
//
//	rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" /
//	       Forward-path ) [SP Rcpt-parameters] CRLF
//
// utf8 says whether the transaction has SMTPUTF8. Errors as ParseMail, with
// 5.1.3 for a bad recipient address (also "<>", which only MAIL allows) and
// 553 5.6.7 for a UTF-8 address without SMTPUTF8 (RFC 6531 3.5).
func ParseRcpt(arg string, utf8 bool) (Path, RcptParams, error) {
	var rp RcptParams
	p, rest, nonASCII, err := parsePathArg(arg, "TO:", forwardPath)
	if err != nil {
		return Path{}, rp, err
	}
	var seen []string
	err = eachParam(rest, func(key, value string, hasValue bool) error {
		if err := checkOnce(&seen, key); err != nil {
			return err
		}
		bad := badValue(key)
		switch key {
		case "NOTIFY":
			// RFC 3461 4.1: "NEVER" or a comma list of SUCCESS, FAILURE,
			// DELAY; NEVER "MUST NOT be used with any other keyword".
			// Values are case-insensitive ABNF literals; a repeated one is
			// harmless and kept once.
			if !hasValue {
				return bad
			}
			for v := range strings.SplitSeq(strings.ToUpper(value), ",") {
				switch v {
				case "NEVER", "SUCCESS", "FAILURE", "DELAY":
				default:
					return bad
				}
				if !slices.Contains(rp.Notify, v) {
					rp.Notify = append(rp.Notify, v)
				}
			}
			if slices.Contains(rp.Notify, "NEVER") && len(rp.Notify) > 1 {
				return bad
			}
		case "ORCPT":
			// RFC 3461 4.2: addr-type ";" xtext, printable US-ASCII once
			// decoded, the whole up to 500 characters. "utf-8" is the type
			// of RFC 6533 3; its raw-UTF-8 "unitext" form is not taken.
			typ, addr, ok := strings.Cut(value, ";")
			if !hasValue || !ok || len(value) > maxORcpt {
				return bad
			}
			typ = strings.ToLower(typ)
			if typ != "rfc822" && typ != "utf-8" {
				return bad
			}
			v, err := XtextDecode(addr)
			if err != nil || v == "" || !isPrintable(v) {
				return bad
			}
			rp.ORcpt = typ + ";" + v
		default:
			return unknownParam(key)
		}
		return nil
	})
	if err != nil {
		return Path{}, RcptParams{}, err
	}
	// RFC 6531 3.5: 553 when RCPT needs an ASCII address.
	if nonASCII && !utf8 {
		return Path{}, RcptParams{}, R(CodeBadMailboxName, EnhNonASCIIAddr, "Non-ASCII recipient address requires SMTPUTF8")
	}
	return p, rp, nil
}

// parsePathArg parses `prefix [SP...] Path` and returns the path, the text
// after it (parameters) and whether the path holds UTF-8.
func parsePathArg(arg, prefix string, role pathRole) (Path, string, bool, error) {
	usage := "Syntax: MAIL FROM:<address>"
	if role == forwardPath {
		usage = "Syntax: RCPT TO:<address>"
	}
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return Path{}, "", false, R(CodeArgSyntax, EnhInvalidArgs, usage)
	}
	rest := strings.TrimLeft(arg[len(prefix):], " ")
	if !strings.HasPrefix(rest, "<") {
		return Path{}, "", false, R(CodeArgSyntax, EnhInvalidArgs, usage)
	}
	p, n, nonASCII, err := parsePath(rest, role)
	if err != nil {
		return Path{}, "", false, err
	}
	rest = rest[n:]
	// RFC 5321 4.1.2: parameters follow the path after SP.
	if rest != "" && rest[0] != ' ' {
		return Path{}, "", false, R(CodeArgSyntax, EnhInvalidArgs, usage)
	}
	return p, rest, nonASCII, nil
}

// eachParam splits Mail-parameters / Rcpt-parameters (RFC 5321 4.1.2):
//
//	esmtp-param   = esmtp-keyword ["=" esmtp-value]
//	esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
//	esmtp-value   = 1*(%d33-60 / %d62-126)
//
// with esmtp-value =/ UTF8-non-ascii (RFC 6531 3.3). Runs of spaces count as
// one separator. It calls fn with the upper-cased keyword (keywords are
// case-insensitive, RFC 5321 2.4) and stops at the first error.
func eachParam(s string, fn func(key, value string, hasValue bool) error) error {
	for tok := range strings.SplitSeq(s, " ") {
		if tok == "" {
			continue
		}
		key, value, hasValue := strings.Cut(tok, "=")
		if !isKeyword(key) {
			return R(CodeArgSyntax, EnhInvalidArgs, "Syntax error in parameters")
		}
		key = strings.ToUpper(key)
		if hasValue && !isESMTPValue(value) {
			return badValue(key)
		}
		if err := fn(key, value, hasValue); err != nil {
			return err
		}
	}
	return nil
}

func isKeyword(s string) bool {
	if s == "" || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !isDigit(c) && c != '-' {
			return false
		}
	}
	return true
}

func isESMTPValue(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x80 && (c < '!' || c > '~' || c == '=') {
			return false
		}
	}
	return true
}

// isPrintable reports whether s is printable US-ASCII, SP included (RFC 3461
// 4.2, 4.4: "printable (graphic and white space) characters"). Controls are
// kept out because these values are copied into DSN header fields.
func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// checkOnce records key and refuses it the second time: RFC 3461 4.5 asks
// for 501 on a repeated DSN parameter; Posthorn does the same for all.
func checkOnce(seen *[]string, key string) error {
	if slices.Contains(*seen, key) {
		return R(CodeArgSyntax, EnhInvalidArgs, "Parameter "+key+" given twice")
	}
	*seen = append(*seen, key)
	return nil
}

func badValue(key string) Reply {
	return R(CodeArgSyntax, EnhInvalidArgs, "Invalid value for parameter "+echoKeyword(key))
}

// unknownParam is RFC 5321 4.1.1.11's 555.
func unknownParam(key string) Reply {
	return R(CodeParamsUnknown, EnhInvalidArgs, "Unsupported parameter "+echoKeyword(key))
}

// echoKeyword shortens a keyword for a reply, so that the reply line stays
// well within 512 octets (RFC 5321 4.5.3.1.5). Keywords are ASCII letters,
// digits and hyphens, safe to repeat.
func echoKeyword(key string) string {
	if len(key) > maxKeywordEcho {
		return key[:maxKeywordEcho] + "..."
	}
	return key
}
