package textline

import (
	"bytes"
	"io"
)

// dataState is where DataReader stands in the byte stream. The machine is
// in stLineStart exactly when the last two octets consumed were CRLF (or at
// the very start, where the CRLF of the DATA command line counts), so it can
// only reach the end on the sequence CRLF "." CRLF (RFC 5321 4.1.1.4).
type dataState uint8

const (
	stLineStart dataState = iota // after CRLF: a "." here may be stuffing or the end
	stDot                        // "." at line start, held back
	stDotCR                      // "." CR at line start, held back: LF ends the data
	stText                       // inside a line
	stCR                         // CR inside a line, held back until the LF is seen
	stEnd                        // CRLF "." CRLF consumed
)

// DataReader is the strict SMTP DATA reader (RFC 5321 4.1.1.4, 4.5.2).
// Only CRLF "." CRLF ends the data (the initial CRLF may be the one that ended the DATA
// command line, so a message consisting of just ".\r\n" is empty). Leading dots are
// unstuffed. The bytes it yields always have CRLF line ends.
// A bare CR or LF (never "\n.\n", "\r.\r" or similar as an end: SMTP smuggling,
// CVE-2023-51764) sets ErrBareLineEnding, size over maxSize sets ErrTooLarge,
// a line over maxLine octets including CRLF sets ErrTextLineTooLong (maxLine 0: no limit);
// in all three cases the reader keeps consuming to the real end, yields no more
// bytes, and Read then returns that error instead of io.EOF.
// If more than drainLimit octets are consumed in total, Read returns ErrDrainLimit
// at once (the caller closes the connection).
//
// Details:
//   - Size is the number of octets after unstuffing, including CRLFs and
//     excluding the final "." CRLF; maxSize <= 0 means no limit.
//   - A line's length is counted after unstuffing, including its CRLF: RFC
//     5321 4.5.3.1.6 gives 1000 octets "not counting the leading dot
//     duplicated for transparency", so a stuffed 1000-octet line (1001 on the
//     wire) is accepted with maxLine 1000.
//   - When several faults occur, Read reports ErrTooLarge over
//     ErrBareLineEnding over ErrTextLineTooLong.
//   - The drain limit counts raw octets consumed from the Reader, including
//     the terminator; drainLimit <= 0 means no limit. The reader never
//     consumes more than drainLimit octets.
//   - The end of the stream before the end of the data is
//     io.ErrUnexpectedEOF; other read errors (deadlines) are returned as is.
//     Like ErrDrainLimit they leave the session out of sync.
//   - After the end, the Reader is positioned on the first octet after the
//     terminator, so pipelined commands (RFC 2920) are read next.
//   - Bytes yielded before a fault is found are not retracted: the caller
//     must discard the message when Read returns an error other than io.EOF.
type DataReader struct {
	r          *Reader
	maxSize    int64
	maxLine    int
	drainLimit int64

	state     dataState
	size      int64 // octets after unstuffing, as they would be delivered
	lineLen   int   // octets of the current line after unstuffing
	consumed  int64 // raw octets consumed from r
	fault     error // worst content fault so far (see faultRank)
	pendingLF bool  // CR of a CRLF yielded, its LF not yet (p was full)
	err       error // final result, returned by every later Read
}

// NewDataReader returns a DataReader that reads the mail data from r, which
// must be positioned just after the CRLF of the DATA command line.
func NewDataReader(r *Reader, maxSize int64, maxLine int, drainLimit int64) *DataReader {
	return &DataReader{r: r, maxSize: maxSize, maxLine: maxLine, drainLimit: drainLimit}
}

// Size returns the octets counted so far after unstuffing, CRLFs included.
// After a successful read to io.EOF it is the size of the message.
func (d *DataReader) Size() int64 { return d.size }

// Consumed returns the raw octets consumed from the Reader so far.
func (d *DataReader) Consumed() int64 { return d.consumed }

// Read implements io.Reader. Once a fault has been found, one call consumes
// the rest of the data (up to the drain limit) before returning.
func (d *DataReader) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n := 0
	if d.pendingLF && len(p) > 0 {
		p[0] = '\n'
		n = 1
		d.pendingLF = false
	}
	for d.state != stEnd {
		if d.fault == nil && (n == len(p) || d.pendingLF) {
			return n, nil
		}
		chunk, err := d.peek()
		if err != nil {
			d.err = err
			return n, err
		}
		used, wrote := d.scan(chunk, p[n:])
		// Discard cannot fail: the octets are buffered.
		_, _ = d.r.br.Discard(used)
		d.consumed += int64(used)
		n += wrote
	}
	d.err = io.EOF
	if d.fault != nil {
		d.err = d.fault
	}
	if n > 0 {
		return n, nil
	}
	return 0, d.err
}

// peek returns the buffered input, reading more if none is buffered, cut to
// what the drain limit still allows.
func (d *DataReader) peek() ([]byte, error) {
	br := d.r.br
	var left int64 = -1
	if d.drainLimit > 0 {
		left = d.drainLimit - d.consumed
		if left <= 0 {
			return nil, ErrDrainLimit
		}
	}
	if br.Buffered() == 0 {
		if _, err := br.Peek(1); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	chunk, _ := br.Peek(br.Buffered())
	if left >= 0 && int64(len(chunk)) > left {
		chunk = chunk[:left]
	}
	return chunk, nil
}

// setFault records a content fault, keeping the worst one.
func (d *DataReader) setFault(err error) { d.fault = worseFault(d.fault, err) }

// count adds k delivered octets to the size and the line length and records
// ErrTooLarge or ErrTextLineTooLong when a limit is passed.
func (d *DataReader) count(k int) {
	d.size += int64(k)
	d.lineLen += k
	if d.maxSize > 0 && d.size > d.maxSize {
		d.setFault(ErrTooLarge)
	}
	if d.maxLine > 0 && d.lineLen > d.maxLine {
		d.setFault(ErrTextLineTooLong)
	}
}

// scan runs the state machine over in, writing delivered octets to out while
// no fault has been found. It stops at the end of the data, at the end of in,
// or when out is full (only while no fault has been found: after a fault
// nothing is written and the input is drained). It returns the octets
// consumed from in and written to out.
func (d *DataReader) scan(in, out []byte) (used, wrote int) {
	i := 0
	for i < len(in) {
		emit := d.fault == nil
		if emit && (wrote == len(out) || d.pendingLF) {
			break
		}
		c := in[i]
		switch d.state {
		case stLineStart, stText:
			if c == '\r' {
				d.state = stCR
				i++
				continue
			}
			if c == '\n' {
				// RFC 5321 2.3.8: LF without CR is not a line end, and
				// 4.1.1.4: "<LF>.<LF>" must not end the data. Not a line
				// start either, so a "." after it is plain text.
				d.setFault(ErrBareLineEnding)
				d.count(1)
				d.state = stText
				i++
				continue
			}
			if c == '.' && d.state == stLineStart {
				// RFC 5321 4.5.2: held back; either the end of the data
				// or a stuffed dot that is deleted.
				d.state = stDot
				i++
				continue
			}
			// A run of plain octets up to the next CR or LF.
			run := in[i:]
			if emit && len(run) > len(out)-wrote {
				run = run[:len(out)-wrote]
			}
			k := lineBreakIndex(run)
			if k+1 < len(run) && run[k] == '\r' && run[k+1] == '\n' {
				// Fast path: the run ends the line with CRLF.
				k += 2
				d.count(k)
				d.lineLen = 0
				d.state = stLineStart
			} else {
				d.count(k)
				d.state = stText
			}
			if emit && d.fault == nil {
				copy(out[wrote:], run[:k])
				wrote += k
			}
			i += k
		case stCR:
			d.state = stText
			if c != '\n' {
				// RFC 5321 2.3.8: bare CR. c is looked at again as text.
				d.setFault(ErrBareLineEnding)
				d.count(1)
				continue
			}
			i++
			d.count(2)
			d.lineLen = 0
			d.state = stLineStart
			if emit && d.fault == nil {
				out[wrote] = '\r'
				wrote++
				if wrote < len(out) {
					out[wrote] = '\n'
					wrote++
				} else {
					d.pendingLF = true
				}
			}
		case stDot:
			switch c {
			case '\r':
				d.state = stDotCR
				i++
			case '\n':
				// ".\n": bare LF, not an end.
				d.setFault(ErrBareLineEnding)
				d.count(1)
				d.state = stText
				i++
			default:
				// RFC 5321 4.5.2: a line starting with "." and having
				// more characters loses its first "."; c is text.
				d.state = stText
			}
		case stDotCR:
			if c == '\n' {
				// CRLF "." CRLF: the end of mail data (RFC 5321 4.1.1.4).
				d.state = stEnd
				return i + 1, wrote
			}
			// ".\r" then not LF: bare CR (as in "\r\n.\r" smuggling);
			// the "." was a deleted leading dot, c is looked at again.
			d.setFault(ErrBareLineEnding)
			d.count(1)
			d.state = stText
		}
	}
	return i, wrote
}

// lineBreakIndex returns the index of the first CR or LF in b, or len(b).
func lineBreakIndex(b []byte) int {
	k := bytes.IndexByte(b, '\n')
	if k < 0 {
		k = len(b)
	}
	if j := bytes.IndexByte(b[:k], '\r'); j >= 0 {
		return j
	}
	return k
}
