package pop3

// Response codes (RFC 2449 8: an optional code in square brackets at the
// start of the text of a +OK or -ERR; announced by the RESP-CODES capability).
const (
	// CodeInUse: authentication succeeded but the maildrop is locked by
	// another session (RFC 2449 8.1.2).
	CodeInUse = "IN-USE"
	// CodeLoginDelay: logged in too recently (RFC 2449 8.1.1). Not used.
	CodeLoginDelay = "LOGIN-DELAY"
	// CodeSysTemp: a temporary problem of the server, such as a store
	// failure; the client may try again later (RFC 3206).
	CodeSysTemp = "SYS/TEMP"
	// CodeSysPerm: a permanent problem of the server (RFC 3206).
	CodeSysPerm = "SYS/PERM"
	// CodeAuth: the failure is caused by the credentials the user gave
	// (RFC 3206; announced by the AUTH-RESP-CODE capability).
	CodeAuth = "AUTH"
)

// Reply is one single-line POP3 response: "+OK" or "-ERR", an optional
// response code and text. A negative Reply is an error, so command handlers
// return it.
type Reply struct {
	OK   bool
	Code string // a Code constant or ""; written in brackets
	Text string // must hold no CR or LF
}

// OK returns a positive reply.
func OK(text string) Reply { return Reply{OK: true, Text: text} }

// Err returns a negative reply with an optional response code.
func Err(code, text string) Reply { return Reply{Code: code, Text: text} }

// Error implements error: the reply as sent, without CRLF.
func (r Reply) Error() string { return string(r.appendLine(nil)) }

// AppendTo appends the reply line with its CRLF to b.
// RFC 1939 3: "+OK" and "-ERR" in upper case; RFC 2449 8: the code in
// brackets comes first in the text.
func (r Reply) AppendTo(b []byte) []byte {
	return append(r.appendLine(b), '\r', '\n')
}

func (r Reply) appendLine(b []byte) []byte {
	if r.OK {
		b = append(b, "+OK"...)
	} else {
		b = append(b, "-ERR"...)
	}
	if r.Code != "" {
		b = append(b, " ["...)
		b = append(b, r.Code...)
		b = append(b, ']')
	}
	if r.Text != "" {
		b = append(b, ' ')
		b = append(b, r.Text...)
	}
	return b
}
