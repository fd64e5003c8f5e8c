package client

import (
	"errors"
	"strconv"
	"strings"

	"posthorn/protocol/smtp"
	"posthorn/protocol/textline"
)

// Limits on what a server may send in one reply.
const (
	// MaxReplyLine is the longest reply line accepted, without CRLF. RFC
	// 5321 4.5.3.1.5 allows 512 octets including CRLF, but RFC 5321 4.5.3.1
	// also asks to be liberal, and long banners are common: accept 4096.
	MaxReplyLine = 4096
	// MaxReplyLines caps the lines of one multi-line reply. RFC 5321 sets no
	// limit; an EHLO reply has a dozen or two.
	MaxReplyLines = 100
)

// readReplyLines reads the lines of one reply: lines with "-" after the code
// continue it (RFC 5321 4.2.1); the first line without one ends it. The lines
// are returned as read, for ParseReply and the EHLO keywords. A line that
// does not start with a code ends the reply, and ParseReply refuses it.
func readReplyLines(r *textline.Reader) ([]string, error) {
	var lines []string
	for {
		line, err := r.ReadLine(MaxReplyLine)
		if errors.Is(err, textline.ErrLineTooLong) {
			return nil, &ProtocolError{Msg: "reply line too long"}
		}
		if err != nil {
			return nil, err
		}
		lines = append(lines, string(line))
		if len(line) < 4 || line[3] != '-' || !isCode(line[:3]) {
			return lines, nil
		}
		if len(lines) >= MaxReplyLines {
			return nil, &ProtocolError{Msg: "reply has too many lines"}
		}
	}
}

// ParseReply parses the lines of one reply, without their CRLF (RFC 5321 4.2):
//
//	Reply-line = *( Reply-code "-" [ textstring ] CRLF )
//	             Reply-code [ SP textstring ] CRLF
//	Reply-code = %x32-35 %x30-35 %x30-39
//
// All lines must carry the same code. The second and third digits are taken
// as any digit, since a client "MUST be prepared to handle codes not
// specified" by their first digit (RFC 5321 4.2); so Code is always within
// 200-599. A bare code, with or without SP, is accepted (RFC 5321 4.2:
// "clients ... SHOULD be prepared to process the code alone").
//
// An RFC 3463 enhanced status code at the start of the first line's text is
// moved to Enhanced when its class matches the reply's first digit (RFC 3463
// 2); lines that repeat it (RFC 2034 3) have it removed. This does not depend
// on ENHANCEDSTATUSCODES being advertised: a code of that exact form means
// the same either way, and greetings come before EHLO.
//
// The text is made printable ASCII: octets outside HT and SP to "~" (RFC
// 5321 4.2 textstring) become "?", so a reply can go into a log or a DSN
// field as it is. Lines are joined with "\n", as smtp.Reply expects.
//
// Errors are *ProtocolError.
func ParseReply(lines []string) (smtp.Reply, error) {
	if len(lines) == 0 {
		return smtp.Reply{}, &ProtocolError{Msg: "empty reply"}
	}
	if len(lines) > MaxReplyLines {
		return smtp.Reply{}, &ProtocolError{Msg: "reply has too many lines"}
	}
	code := 0
	texts := make([]string, len(lines))
	for i, line := range lines {
		if len(line) > MaxReplyLine {
			return smtp.Reply{}, &ProtocolError{Msg: "reply line too long"}
		}
		if len(line) < 3 || !isCode(line[:3]) {
			return smtp.Reply{}, &ProtocolError{Msg: "malformed reply " + quote(line)}
		}
		c, _ := strconv.Atoi(line[:3])
		if i == 0 {
			code = c
		} else if c != code {
			return smtp.Reply{}, &ProtocolError{Msg: "multi-line reply with different codes " + quote(line)}
		}
		last := i == len(lines)-1
		rest := line[3:]
		switch {
		case rest == "" && last:
		case rest != "" && rest[0] == '-' && !last:
		case rest != "" && rest[0] == ' ' && last:
		default:
			return smtp.Reply{}, &ProtocolError{Msg: "malformed reply " + quote(line)}
		}
		if rest != "" {
			texts[i] = printable(rest[1:])
		}
	}
	r := smtp.Reply{Code: code}
	if enh, ok := enhancedPrefix(texts[0], code/100); ok {
		r.Enhanced = enh
		for i, t := range texts {
			if t == enh {
				texts[i] = ""
			} else if strings.HasPrefix(t, enh+" ") {
				texts[i] = t[len(enh)+1:]
			}
		}
	}
	r.Text = strings.Join(texts, "\n")
	return r, nil
}

// isCode reports whether s is three digits, the first 2 to 5 (RFC 5321
// 4.2: other first digits "SHOULD normally [be treated] as fatal errors").
func isCode[S ~string | ~[]byte](s S) bool {
	return len(s) == 3 && s[0] >= '2' && s[0] <= '5' && isDigit(s[1]) && isDigit(s[2])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// enhancedPrefix returns the RFC 3463 2 status code that starts text, when
// it is followed by SP or the end of the text and its class is class:
//
//	status-code = class "." subject "." detail
//	class       = "2" / "4" / "5"
//	subject     = 1*3digit
//	detail      = 1*3digit
func enhancedPrefix(text string, class int) (string, bool) {
	if class != 2 && class != 4 && class != 5 {
		return "", false
	}
	end := strings.IndexByte(text, ' ')
	if end < 0 {
		end = len(text)
	}
	s := text[:end]
	if len(s) < 5 || int(s[0]-'0') != class || s[1] != '.' {
		return "", false
	}
	subject, detail, ok := strings.Cut(s[2:], ".")
	if !ok || !digits(subject, 3) || !digits(detail, 3) {
		return "", false
	}
	return s, true
}

// digits reports whether s is 1 to max ASCII digits.
func digits(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// printable replaces every octet outside HT and SP to "~" with "?".
func printable(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\t' && (c < ' ' || c > '~') {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c != '\t' && (c < ' ' || c > '~') {
					b[j] = '?'
				}
			}
			return string(b)
		}
	}
	return s
}

// quote shortens and quotes a line for an error message.
func quote(line string) string {
	const max = 64
	if len(line) > max {
		line = line[:max] + "..."
	}
	return strconv.Quote(line)
}
