package textline

// LineChecker checks chunked content (BDAT, RFC 3030) for the same faults as
// DataReader without unstuffing: bare CR/LF and over-long lines, across chunk
// boundaries. Err returns the worst fault seen (see below), or nil.
//
// RFC 3030 2: BDAT data is not dot-stuffed, so a "." at a line start is plain
// text here. Line lengths count octets including the CRLF (RFC 5321
// 4.5.3.1.6); maxLine 0 means no limit. When both kinds of fault occur, Err
// reports ErrBareLineEnding over ErrTextLineTooLong (the first of the most
// serious kind), the same priority as DataReader.
type LineChecker struct {
	maxLine int
	lineLen int   // octets of the current line, a held CR included
	cr      bool  // the last octet written was a CR
	fault   error // worst fault so far
}

// NewLineChecker returns a LineChecker for lines of at most maxLine octets
// including CRLF (0: no limit).
func NewLineChecker(maxLine int) *LineChecker { return &LineChecker{maxLine: maxLine} }

// Write checks p as the continuation of everything written before; a CR at
// the end of one Write and an LF at the start of the next form a CRLF. It
// always consumes all of p and returns a nil error, so it can sit in an
// io.MultiWriter or io.TeeReader without cutting the chunk short: the
// verdict comes from Err.
func (c *LineChecker) Write(p []byte) (int, error) {
	i := 0
	if c.cr && len(p) > 0 {
		c.cr = false
		if p[0] == '\n' {
			c.endLine(1)
			i = 1
		} else {
			c.fault = worseFault(c.fault, ErrBareLineEnding)
		}
	}
	for i < len(p) {
		k := lineBreakIndex(p[i:])
		c.addLine(k)
		i += k
		if i == len(p) {
			break
		}
		if p[i] == '\n' {
			// RFC 5321 2.3.8: LF without CR before it.
			c.fault = worseFault(c.fault, ErrBareLineEnding)
			c.addLine(1)
			i++
			continue
		}
		// CR: a line end only if LF follows, possibly in the next Write.
		c.addLine(1)
		i++
		if i == len(p) {
			c.cr = true
			break
		}
		if p[i] == '\n' {
			c.endLine(1)
			i++
		} else {
			c.fault = worseFault(c.fault, ErrBareLineEnding)
		}
	}
	return len(p), nil
}

// addLine counts k octets of the current line.
func (c *LineChecker) addLine(k int) {
	c.lineLen += k
	if c.maxLine > 0 && c.lineLen > c.maxLine {
		c.fault = worseFault(c.fault, ErrTextLineTooLong)
	}
}

// endLine counts the LF (k octets) that ends the current line and starts a new one.
func (c *LineChecker) endLine(k int) {
	c.addLine(k)
	c.lineLen = 0
}

// Err returns the worst fault in everything written so far, or nil. It
// judges the content as complete: a CR at the very end, with no octet after
// it, is a bare CR (no LF can follow once the last chunk is in), so call Err
// after the last chunk (BDAT ... LAST).
func (c *LineChecker) Err() error {
	if c.cr {
		return worseFault(c.fault, ErrBareLineEnding)
	}
	return c.fault
}
