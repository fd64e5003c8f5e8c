// Package textline reads and writes the line-oriented framing shared by SMTP,
// POP3 and IMAP: bounded line reading (never textproto.ReadLine on untrusted
// input), the strict SMTP DATA reader, a line checker for BDAT chunks and the
// dot-stuffing writer.
//
// Everything here is a pure codec over an io.Reader or io.Writer, so each part
// can be fuzzed alone. Every read is bounded: ReadLine by its max argument and
// the bufio buffer, DataReader by its drain limit.
//
// RFCs:
//   - RFC 5321 2.3.8: lines end in CRLF; no other sequence is a line end, and
//     bare CR or LF must not be sent.
//   - RFC 5321 4.1.1.4: only CRLF "." CRLF ends the mail data; "<LF>.<LF>"
//     must not be treated as the end (SMTP smuggling, CVE-2023-51764).
//   - RFC 5321 4.5.2: transparency (dot-stuffing on sending, unstuffing on
//     receiving).
//   - RFC 5321 4.5.3.1.4 and 4.5.3.1.6: command line 512 and text line 1000
//     octets including CRLF; the text line limit does not count the dot
//     duplicated for transparency.
//   - RFC 3030: BDAT chunks carry the message without dot-stuffing
//     (LineChecker).
//   - RFC 3207 4.2: after STARTTLS nothing buffered may be used (Reader.Reset).
package textline

import "errors"

var (
	// ErrLineTooLong: a line exceeded the caller's maximum. The reader has consumed
	// at most max+a bounded amount; the caller must reply and close (not in sync).
	ErrLineTooLong = errors.New("textline: line too long")
	// ErrBareLineEnding: a bare CR or bare LF was seen in DATA (RFC 5321 2.3.8).
	// Reported only after the real end (CRLF.CRLF) has been consumed, so the
	// session stays in sync.
	ErrBareLineEnding = errors.New("textline: bare CR or LF in message")
	// ErrTooLarge: more than the maximum size arrived; reported after the real end.
	ErrTooLarge = errors.New("textline: message too large")
	// ErrTextLineTooLong: a message line exceeded the text-line limit; reported after the real end.
	ErrTextLineTooLong = errors.New("textline: text line too long")
	// ErrDrainLimit: the client sent far more than allowed (see DataReader);
	// the reader stopped before the end and the caller must close the connection.
	ErrDrainLimit = errors.New("textline: too much data, giving up")
)

// faultRank orders the content faults that DataReader and LineChecker report
// after the end of the data: when several occur, the highest rank wins, so
// the reply names the most serious problem (size first, because RFC 1870
// clients react to 552 by not retrying as is; then bare line endings, which
// are the smuggling signal; then long lines).
func faultRank(err error) int {
	switch err {
	case ErrTooLarge:
		return 3
	case ErrBareLineEnding:
		return 2
	case ErrTextLineTooLong:
		return 1
	}
	return 0
}

// worseFault returns whichever of cur and next ranks higher (cur on a tie, so
// the first fault of a kind is kept).
func worseFault(cur, next error) error {
	if faultRank(next) > faultRank(cur) {
		return next
	}
	return cur
}
