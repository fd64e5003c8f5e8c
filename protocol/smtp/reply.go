package smtp

import (
	"strconv"
	"strings"
)

// Reply is one SMTP reply: a three-digit code, an optional RFC 3463 enhanced
// status code ("5.1.1"; empty for replies that carry none, such as 220, 221,
// 354 and the EHLO lines) and text. Text may contain "\n" to make a multi-line
// reply. Reply implements error so that handlers can return it.
type Reply struct {
	Code     int
	Enhanced string
	Text     string
}

// R builds a reply whose enhanced code takes its class from the reply code
// (RFC 3463 2: the class digit matches the first digit of the basic code).
// detail is one of the Enh constants; "" leaves the enhanced code out.
func R(code int, detail, text string) Reply {
	r := Reply{Code: code, Text: text}
	if detail != "" {
		r.Enhanced = strconv.Itoa(code/100) + "." + detail
	}
	return r
}

func (r Reply) Error() string {
	if r.Enhanced == "" {
		return strconv.Itoa(r.Code) + " " + r.Text
	}
	return strconv.Itoa(r.Code) + " " + r.Enhanced + " " + r.Text
}

// Temporary reports whether the reply is a transient failure (4yz).
func (r Reply) Temporary() bool { return r.Code >= 400 && r.Code < 500 }

// AppendTo renders the reply with CRLF line ends onto b. Multi-line replies
// use "250-" on all but the last line (RFC 5321 4.2.1) and repeat the enhanced
// code on every line (RFC 2034 3).
func (r Reply) AppendTo(b []byte) []byte {
	code := strconv.Itoa(r.Code)
	lines := strings.Split(r.Text, "\n")
	for i, line := range lines {
		b = append(b, code...)
		if i == len(lines)-1 {
			b = append(b, ' ')
		} else {
			b = append(b, '-')
		}
		if r.Enhanced != "" {
			b = append(b, r.Enhanced...)
			b = append(b, ' ')
		}
		b = append(b, line...)
		b = append(b, '\r', '\n')
	}
	return b
}

// Bytes renders the reply; see AppendTo.
func (r Reply) Bytes() []byte { return r.AppendTo(nil) }
