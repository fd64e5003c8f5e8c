package client

import (
	"errors"
	"posthorn/protocol/smtp"
)

// ReplyError is a reply that stopped the session outside a transaction: a
// greeting other than 2yz, a refused EHLO and HELO, a refused RSET or QUIT.
type ReplyError struct {
	Command string // "greeting", "EHLO", "HELO", "STARTTLS", "RSET", "NOOP", "QUIT"
	Reply   smtp.Reply
}

func (e *ReplyError) Error() string {
	return "smtp client: " + e.Command + ": " + e.Reply.Error()
}

// Temporary reports whether another attempt may succeed: anything but 5yz
// (RFC 5321 4.2.1: "a sender-SMTP ... MUST [handle unknown codes] by
// interpreting the first digit only").
func (e *ReplyError) Temporary() bool { return e.Reply.Code/100 != 5 }

// TLSError is a failed STARTTLS handshake. The connection is closed; the
// caller may dial again with DialOptions{NoTLS: true} (opportunistic TLS).
type TLSError struct {
	Err error
}

func (e *TLSError) Error() string { return "smtp client: STARTTLS: " + e.Err.Error() }
func (e *TLSError) Unwrap() error { return e.Err }

// ProtocolError is a server that does not speak SMTP as expected: a reply
// that does not parse, a line or reply too long. The connection is closed;
// the failure counts as temporary.
type ProtocolError struct {
	Msg string
}

func (e *ProtocolError) Error() string { return "smtp client: protocol error: " + e.Msg }

// Temporary is always true: a confused server may be fixed by the next try.
func (e *ProtocolError) Temporary() bool { return true }

// ErrNoRecipients is returned by Send for an envelope without recipients.
var ErrNoRecipients = errors.New("smtp client: no recipients")
