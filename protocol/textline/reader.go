package textline

import (
	"bufio"
	"errors"
	"io"
)

// minBufSize is the smallest buffer NewReader uses: it must hold a full SMTP
// command line (512 octets, RFC 5321 4.5.3.1.4) and a text line (1000 octets,
// RFC 5321 4.5.3.1.6) with room to spare, so that ordinary lines are returned
// straight from the buffer without copying.
const minBufSize = 4096

// Reader is a bounded line reader over a connection. It wraps a bufio.Reader.
//
// A Reader is not safe for concurrent use. DataReader reads through it, so
// the bytes after the end of the data stay buffered for the next ReadLine.
type Reader struct {
	br *bufio.Reader
	// long collects a line that does not fit in br's buffer; it is reused
	// from call to call and never grows beyond the caller's max+1 octets.
	long []byte
}

// NewReader returns a Reader with an internal buffer of size bufSize (>= 4096;
// smaller values are raised to 4096).
func NewReader(r io.Reader, bufSize int) *Reader {
	if bufSize < minBufSize {
		bufSize = minBufSize
	}
	return &Reader{br: bufio.NewReaderSize(r, bufSize)}
}

// Reset discards everything buffered and reads from r from now on. Used after
// STARTTLS (RFC 3207 4.2: discard what the client sent before the handshake).
func (r *Reader) Reset(rd io.Reader) {
	r.br.Reset(rd)
	r.long = r.long[:0]
}

// Buffered returns the number of bytes already read from the connection but not
// yet consumed (used to decide whether to flush pipelined replies, RFC 2920 3.1).
func (r *Reader) Buffered() int { return r.br.Buffered() }

// ReadLine returns the next line without its line ending. Lines end in CRLF;
// a bare LF is accepted as a line end for command lines (CR before it is stripped).
// A line longer than max octets (not counting the CRLF) returns ErrLineTooLong.
// The returned slice is valid only until the next call.
//
// Only one CR directly before the LF is stripped; any other CR stays in the
// line for the command parser to reject (RFC 5321 2.3.8). The lone-LF
// tolerance is for command lines only: DATA content goes through DataReader,
// which never accepts it.
//
// Memory and consumption are bounded: when no LF has arrived within max+1
// octets (room for the CR) the line is rejected with at most one buffer's
// worth read beyond that; a 10 MB line without LF is never held in memory.
// After ErrLineTooLong the stream is out of sync and the caller must reply
// and close.
//
// At the end of the stream ReadLine returns io.EOF if no octet of a new line
// had arrived, and io.ErrUnexpectedEOF if a partial line was pending (the
// partial line is dropped). Other read errors (deadlines) are returned as is.
func (r *Reader) ReadLine(max int) ([]byte, error) {
	if max < 0 {
		max = 0
	}
	r.long = r.long[:0]
	for {
		frag, err := r.br.ReadSlice('\n')
		switch {
		case err == nil:
			// frag ends in LF.
			var line []byte
			if len(r.long) == 0 {
				// Common case: the whole line sits in the bufio buffer; no copy.
				line = frag
			} else {
				if len(r.long)+len(frag) > max+2 {
					return nil, ErrLineTooLong
				}
				r.appendLong(frag, max+2)
				line = r.long
			}
			line = trimLineEnd(line)
			if len(line) > max {
				return nil, ErrLineTooLong
			}
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			// No LF in a full buffer. The octets so far are all before the
			// line end, of which only one (a CR) may be beyond max.
			if len(r.long)+len(frag) > max+1 {
				return nil, ErrLineTooLong
			}
			r.appendLong(frag, max+2)
		default:
			if len(r.long) == 0 && len(frag) == 0 {
				if err == io.EOF {
					return nil, io.EOF
				}
				return nil, err
			}
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// appendLong appends frag to r.long, growing it to at most limit octets of
// capacity (the caller has checked that the result fits), so a long line
// never holds more memory than the caller's max allows.
func (r *Reader) appendLong(frag []byte, limit int) {
	need := len(r.long) + len(frag)
	if need > cap(r.long) {
		c := max(2*cap(r.long), need, 512)
		c = min(c, max(limit, need))
		grown := make([]byte, len(r.long), c)
		copy(grown, r.long)
		r.long = grown
	}
	r.long = append(r.long, frag...)
}

// trimLineEnd strips the final LF and a CR directly before it.
func trimLineEnd(line []byte) []byte {
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}

// ReadFull reads exactly len(p) bytes (for BDAT chunks and IMAP literals).
// The end of the stream before len(p) bytes is io.ErrUnexpectedEOF, even when
// no byte at all arrived, since the peer announced the size.
func (r *Reader) ReadFull(p []byte) error {
	_, err := io.ReadFull(r.br, p)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// Discard skips n bytes (for BDAT chunks that are rejected). The end of the
// stream before n bytes is io.ErrUnexpectedEOF. Nothing is held in memory
// beyond the bufio buffer.
func (r *Reader) Discard(n int64) error {
	for n > 0 {
		step := n
		if step > 1<<30 {
			step = 1 << 30
		}
		done, err := r.br.Discard(int(step))
		n -= int64(done)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}
