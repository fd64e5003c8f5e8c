package textline

import (
	"errors"
	"io"
)

var (
	crlf       = []byte("\r\n")
	dot        = []byte(".")
	terminator = []byte(".\r\n")
)

// errDotWriterClosed is returned by Write after Close.
var errDotWriterClosed = errors.New("textline: write after close")

// DotWriter dot-stuffs content for sending with DATA (RFC 5321 4.5.2): a "." at
// the start of a line gets another "."; bare CR and LF are converted to CRLF;
// Close writes the terminating CRLF "." CRLF (adding a CRLF first if the content
// did not end with one).
//
// RFC 5321 2.3.8: a client must never send a bare CR or LF, so each bare CR,
// bare LF is turned into CRLF (a line break), never dropped: "a\rb" becomes
// "a\r\nb\r\n". A CR at the end of one Write and an LF at the start of the
// next form one CRLF. The terminator's first CRLF is the last line's own
// (RFC 5321 4.1.1.4), so no empty line is added.
//
// DotWriter writes small pieces; give it a buffered writer. Write returns
// the number of octets of p consumed; the first error from the underlying
// writer is kept and returned by every later Write and by Close.
type DotWriter struct {
	w         io.Writer
	lineStart bool // next octet starts a line
	cr        bool // a CR was consumed and not yet written
	closed    bool
	err       error
}

// NewDotWriter returns a DotWriter that writes the stuffed data to w. The
// caller has already sent DATA and received 354.
func NewDotWriter(w io.Writer) *DotWriter { return &DotWriter{w: w, lineStart: true} }

// Write stuffs p and writes it.
func (d *DotWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if d.closed {
		return 0, errDotWriterClosed
	}
	i := 0
	if d.cr && len(p) > 0 {
		// A CR left over from the last Write: an LF here completes the CRLF,
		// anything else makes it a bare CR, written as CRLF all the same.
		d.cr = false
		if p[0] == '\n' {
			i = 1
		}
		if !d.write(crlf) {
			return 0, d.err
		}
		d.lineStart = true
	}
	start := i // p[start:i] passes through unchanged
	for i < len(p) {
		if d.lineStart {
			d.lineStart = false
			if p[i] == '.' {
				// RFC 5321 4.5.2: "If it is a period, one additional period
				// is inserted at the beginning of the line." The original
				// dot goes out with the pass-through run.
				if !d.write(p[start:i]) || !d.write(dot) {
					return start, d.err
				}
				start = i
			}
		}
		k := lineBreakIndex(p[i:])
		i += k
		if i == len(p) {
			break
		}
		if p[i] == '\r' {
			if i+1 == len(p) {
				// Decided by the next Write or by Close.
				if !d.write(p[start:i]) {
					return start, d.err
				}
				d.cr = true
				return len(p), nil
			}
			if p[i+1] == '\n' {
				// CRLF passes through.
				i += 2
				d.lineStart = true
				continue
			}
		}
		// Bare CR or bare LF: written as CRLF (RFC 5321 2.3.8).
		if !d.write(p[start:i]) || !d.write(crlf) {
			return start, d.err
		}
		i++
		start = i
		d.lineStart = true
	}
	if !d.write(p[start:]) {
		return start, d.err
	}
	return len(p), nil
}

// write passes b to the underlying writer and records a failure.
func (d *DotWriter) write(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if _, err := d.w.Write(b); err != nil {
		d.err = err
		return false
	}
	return true
}

// Close ends the data with CRLF "." CRLF (RFC 5321 4.1.1.4), first ending
// the last line with CRLF if the content did not (RFC 5321 4.1.1.4: the
// originating client "MUST ... add <CRLF>"). It does not close the
// underlying writer. Closing twice writes nothing more.
func (d *DotWriter) Close() error {
	if d.err != nil {
		return d.err
	}
	if d.closed {
		return nil
	}
	d.closed = true
	if d.cr || !d.lineStart {
		d.cr = false
		if !d.write(crlf) {
			return d.err
		}
	}
	if !d.write(terminator) {
		return d.err
	}
	return nil
}
