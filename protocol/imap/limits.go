package imap

import (
	"errors"
	"math"
	"strconv"
)

// Limits bounds everything the Decoder reads for one command. A zero field
// takes its default; the defaults are the Default* constants.
type Limits struct {
	// Line is the longest line in octets, not counting CRLF and not counting
	// literal octets. Values below MinLine are raised to MinLine.
	Line int
	// Literal is the largest literal accepted when LiteralLimit is nil.
	Literal int64
	// NonSync is the largest non-synchronising literal ("{n+}"). The default
	// 4096 is LITERAL- (RFC 7888 5), which RFC 9051 4.3 makes the IMAP4rev2
	// rule. A server advertising LITERAL+ sets it to math.MaxInt64, leaving
	// Literal and LiteralLimit as the only caps.
	NonSync int64
	// Command caps a whole command: every line with its CRLF plus every
	// literal. A server whose APPEND limit (LiteralLimit) is larger must raise
	// Command to at least that limit plus a line.
	Command int64
	// Depth caps the nesting of parenthesised lists.
	Depth int
	// Args caps the lexical items of a command: every SP, "," and "(" after
	// the command name counts one, so the cap covers long sequence sets, SEARCH
	// programs and flag lists alike.
	Args int
	// Drain is how many octets the Decoder will read and throw away after
	// refusing a command whose non-synchronising literals are already on their
	// way, to stay in sync (RFC 7888 4, choice 1). Past it the stream is
	// declared out of sync (choice 2: BYE). Negative: never drain.
	Drain int64
	// LiteralLimit, if set, gives the largest literal accepted for argument
	// arg of command cmd (upper-case, "UID FETCH" style; arg counts the
	// top-level SP-separated items after the name from 0, a list being one
	// item). It returns Literal for ordinary arguments and the server's
	// message limit for APPEND messages (RFC 7889), and a negative value to
	// refuse any literal there (unknown command, not allowed in this state),
	// which is reported as ErrLiteralRefused before the client sends it
	// (RFC 9051 7.6, "A044 BLURDYBLOOP {102856}").
	LiteralLimit func(cmd string, arg int) int64
}

// AppendLiteralLimit returns a LiteralLimit for the common policy: literals
// of APPEND after the mailbox (the message; several with MULTIAPPEND, RFC
// 3502; CATENATE parts, RFC 4469) may have up to message octets (the
// APPENDLIMIT, RFC 7889), every other literal up to other octets.
func AppendLiteralLimit(other, message int64) func(cmd string, arg int) int64 {
	return func(cmd string, arg int) int64 {
		if cmd == "APPEND" && arg >= 1 {
			return message
		}
		return other
	}
}

// Defaults of Limits.
const (
	// MinLine: RFC 7162 4 has clients send lines of up to about 8192 octets
	// (CONDSTORE/QRESYNC sets), so no server may go lower.
	MinLine         = 8192
	DefaultLine     = 64 << 10
	DefaultLiteral  = 64 << 10
	DefaultNonSync  = 4096 // RFC 7888 5, RFC 9051 4.3
	DefaultCommand  = 1 << 20
	DefaultDepth    = 32
	DefaultArgs     = 10000
	DefaultDrain    = 256 << 10
	maxKeptCapacity = 128 << 10 // buffers larger than this are not reused
)

// withDefaults fills in zero fields.
func (l Limits) withDefaults() Limits {
	if l.Line == 0 {
		l.Line = DefaultLine
	}
	l.Line = max(l.Line, MinLine)
	if l.Literal <= 0 {
		l.Literal = DefaultLiteral
	}
	if l.NonSync <= 0 {
		l.NonSync = DefaultNonSync
	}
	if l.Command <= 0 {
		l.Command = DefaultCommand
	}
	l.Command = min(l.Command, math.MaxInt/2)
	if l.Depth <= 0 {
		l.Depth = DefaultDepth
	}
	if l.Args <= 0 {
		l.Args = DefaultArgs
	}
	switch {
	case l.Drain == 0:
		l.Drain = DefaultDrain
	case l.Drain < 0:
		l.Drain = 0
	}
	return l
}

// Errors of the Decoder, found in DecodeError.Err. Their texts are fit for a
// reply: they never contain client input.
var (
	ErrLineTooLong     = errors.New("line too long")
	ErrLiteralTooLarge = errors.New("literal too large")
	// ErrNonSyncTooLarge: a non-synchronising literal over Limits.NonSync
	// (LITERAL-, RFC 7888 5).
	ErrNonSyncTooLarge = errors.New("non-synchronizing literal too large")
	ErrCommandTooLarge = errors.New("command too large")
	ErrTooDeep         = errors.New("lists nested too deeply")
	ErrTooManyArgs     = errors.New("too many arguments")
	ErrLiteralRefused  = errors.New("literal not allowed here")
	ErrBadTag          = errors.New("missing or invalid tag")
	ErrBadCommandName  = errors.New("missing or invalid command name")
)

// DecodeError is a command the Decoder refused. The caller answers it and,
// when InSync is false, closes the connection.
type DecodeError struct {
	// Tag of the command, "" when none could be read (answer untagged).
	Tag string
	// Name of the command as far as read (for logs), may be "".
	Name string
	// Err is one of the Err* variables above.
	Err error
	// InSync is true when the stream is positioned at the start of the next
	// command: the rest of the refused command was read and thrown away, or
	// will never be sent because the client waits for a continuation request
	// that must not be sent (RFC 9051 2.2.1, note). False after a line over
	// the limit or a non-synchronising literal larger than Limits.Drain: the
	// caller sends BYE and closes (RFC 7888 4, choice 2).
	InSync bool
}

func (e *DecodeError) Error() string { return "imap: " + e.Err.Error() }
func (e *DecodeError) Unwrap() error { return e.Err }

// TooBig reports whether the command was refused for its size, so that the
// response carries the TOOBIG code (RFC 4469 via RFC 7888 5).
func (e *DecodeError) TooBig() bool {
	return e.Err == ErrLiteralTooLarge || e.Err == ErrNonSyncTooLarge || e.Err == ErrCommandTooLarge
}

// Response returns the status and code to answer with: BYE when out of sync;
// BAD [TOOBIG] for a non-synchronising literal over the LITERAL- cap (RFC
// 7888 5 requires BAD with TOOBIG for APPEND); NO [TOOBIG] for a literal or
// command over the server's limits (RFC 7889); BAD otherwise.
func (e *DecodeError) Response() (Status, Code) {
	var code Code
	if e.TooBig() {
		code = CodeTooBig
	}
	switch {
	case !e.InSync:
		return StatusBYE, code
	case e.Err == ErrLiteralTooLarge || e.Err == ErrCommandTooLarge:
		return StatusNO, code
	}
	return StatusBAD, code
}

// ErrSyntax is wrapped by every SyntaxError.
var ErrSyntax = errors.New("imap: syntax error")

// SyntaxError is a Parser error: the octet offset into the command (or the
// parsed bytes) and what was expected there. Msg never contains client input,
// so it can be the text of a BAD response.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return "imap: syntax error at octet " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

func (e *SyntaxError) Unwrap() error { return ErrSyntax }
