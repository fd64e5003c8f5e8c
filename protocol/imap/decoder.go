package imap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
)

// Decoder reads whole client commands, literals included, from a
// bufio.Reader, enforcing Limits. It only frames and counts; the grammar is
// checked by the Parser that Command.Args returns.
//
// Framing follows RFC 7888 3: a line continues the command after a literal
// exactly when it ends in "{" number ["+"] "}" (or "~{" number ["+"] "}",
// literal8, RFC 3516 7) right before the CRLF. That rule is purely
// textual, so Decoder and Parser can never disagree on where a command ends.
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	r    *bufio.Reader
	lim  Limits
	utf8 bool
	buf  []byte // the command being read; reused unless it grew large
}

// NewDecoder returns a Decoder reading from r with the given limits (zero
// fields take their defaults).
func NewDecoder(r *bufio.Reader, lim Limits) *Decoder {
	return &Decoder{r: r, lim: lim.withDefaults()}
}

// Reset makes d read from r and forgets everything buffered: after STARTTLS
// nothing received before the handshake may be used (RFC 9051 6.2.1, as RFC
// 3207 4.2 for SMTP).
func (d *Decoder) Reset(r *bufio.Reader) {
	d.r = r
	d.buf = nil
}

// SetLimits replaces the limits, e.g. after authentication.
func (d *Decoder) SetLimits(lim Limits) { d.lim = lim.withDefaults() }

// SetUTF8 tells the Parsers of later commands that mailbox names are UTF-8
// (after ENABLE IMAP4rev2, RFC 9051 5.1, or ENABLE UTF8=ACCEPT, RFC 6855 3)
// instead of modified UTF-7 (RFC 3501 5.1.3).
func (d *Decoder) SetUTF8(on bool) { d.utf8 = on }

// Buffered returns the number of octets received but not yet read, so a
// server can flush its responses only when no further command is waiting.
func (d *Decoder) Buffered() int { return d.r.Buffered() }

// Command is one complete client command. Its bytes belong to the Decoder
// and stay valid until the next ReadCommand or ReadLine.
type Command struct {
	Tag  string // as sent (case-sensitive)
	Name string // upper-case; "UID FETCH" for the UID forms (RFC 9051 6.4.9)
	raw  []byte // the command as received, line ends normalised to CRLF
	args int    // offset of the octet after the name
	utf8 bool
	lim  int // Limits.Depth
}

// Args returns a Parser positioned after the command name: at the SP before
// the first argument, or at the end for a command without arguments.
func (c *Command) Args() Parser {
	end := max(len(c.raw)-2, 0)
	return Parser{buf: c.raw, pos: min(c.args, end), end: end, maxDepth: c.lim, utf8: c.utf8}
}

// Bytes returns the command as received, from the tag to the final CRLF,
// literals included and line ends normalised to CRLF.
func (c *Command) Bytes() []byte { return c.raw }

// ReadCommand reads the next command. Before reading the octets of a
// synchronising literal it calls cont, which must send a command
// continuation request ("+ Ready", RFC 9051 7.6) and flush; a nil cont
// refuses synchronising literals.
//
// Errors: io.EOF when the stream ends before a command starts,
// io.ErrUnexpectedEOF when it ends inside one, read errors and cont's error
// as they are, and *DecodeError for a refused command. Nothing is allocated
// for a literal before it has been accepted, and its buffer then grows with
// the octets that actually arrive.
func (d *Decoder) ReadCommand(cont func() error) (Command, error) {
	d.startRead()
	var (
		cmd   Command
		lx    = lexer{arg: -1}
		total int64
	)
	for first := true; ; first = false {
		start := len(d.buf)
		n, err := d.appendLine(first)
		if err != nil {
			if err == ErrLineTooLong {
				return Command{}, &DecodeError{Tag: cmd.Tag, Name: cmd.Name, Err: err}
			}
			return Command{}, err
		}
		total += int64(len(d.buf) - start)
		text := d.buf[start : start+n]
		lit := findLiteral(text)
		if lit.present {
			text = text[:lit.start]
		}
		if first {
			tag, name, args, err := parseHead(text)
			if tag != nil {
				cmd.Tag = string(tag)
			}
			cmd.Name, cmd.args = name, args
			if err != nil {
				return d.refuse(&cmd, err, lit)
			}
			text = text[args:]
		}
		if err := lx.scan(text, &d.lim); err != nil {
			return d.refuse(&cmd, err, lit)
		}
		if total > d.lim.Command {
			return d.refuse(&cmd, ErrCommandTooLarge, lit)
		}
		if !lit.present {
			break
		}
		if err := d.checkLiteral(cmd.Name, lx.arg, lit, total, cont != nil); err != nil {
			return d.refuse(&cmd, err, lit)
		}
		if !lit.nonSync {
			if err := cont(); err != nil {
				return Command{}, err
			}
		}
		if err := d.appendLiteral(lit.size); err != nil {
			return Command{}, err
		}
		total += lit.size
	}
	cmd.raw, cmd.utf8, cmd.lim = d.buf, d.utf8, d.lim.Depth
	return cmd, nil
}

// ReadLine reads one line that is not a command: a SASL response during
// AUTHENTICATE (RFC 9051 6.2.2) or the "DONE" that ends IDLE (RFC 9051
// 6.3.13). The line is returned without its line end, valid until the next
// read. A line over Limits.Line is a *DecodeError that is not in sync.
func (d *Decoder) ReadLine() ([]byte, error) {
	d.startRead()
	n, err := d.appendLine(true)
	if err == ErrLineTooLong {
		return nil, &DecodeError{Err: err}
	}
	if err != nil {
		return nil, err
	}
	return d.buf[:n], nil
}

// startRead empties the buffer, dropping it if an earlier command (an
// APPEND) made it large, so an idle connection holds little memory.
func (d *Decoder) startRead() {
	if cap(d.buf) > maxKeptCapacity {
		d.buf = nil
	}
	d.buf = d.buf[:0]
}

// refuse builds the DecodeError for cmd, first skipping the rest of the
// command when its literals are already on their way.
func (d *Decoder) refuse(cmd *Command, err error, lit literalRef) (Command, error) {
	inSync := d.drain(lit)
	return Command{}, &DecodeError{Tag: cmd.Tag, Name: cmd.Name, Err: err, InSync: inSync}
}

// checkLiteral decides whether the literal lit announced for argument arg of
// command name may be read, total octets of the command having been read.
func (d *Decoder) checkLiteral(name string, arg int, lit literalRef, total int64, canContinue bool) error {
	limit := d.lim.Literal
	if d.lim.LiteralLimit != nil {
		limit = d.lim.LiteralLimit(name, arg)
	}
	switch {
	case limit < 0, !lit.nonSync && !canContinue:
		return ErrLiteralRefused
	case lit.nonSync && lit.size > d.lim.NonSync:
		return ErrNonSyncTooLarge
	case lit.size > limit:
		return ErrLiteralTooLarge
	case lit.size > d.lim.Command-total-2: // a CRLF at least follows
		return ErrCommandTooLarge
	}
	return nil
}

// drain reads and discards the rest of a refused command whose last line read
// announced lit, and reports whether the stream is then in sync.
func (d *Decoder) drain(lit literalRef) bool {
	budget := d.lim.Drain
	for lit.present {
		if !lit.nonSync {
			// The client waits for "+" and receives the tagged refusal
			// instead, so it sends nothing more (RFC 9051 2.2.1, note).
			return true
		}
		if lit.size > budget {
			return false // RFC 7888 4: too costly to read; BYE
		}
		budget -= lit.size
		if err := d.discard(lit.size); err != nil {
			return false
		}
		d.buf = d.buf[:0]
		n, err := d.appendLine(false)
		if err != nil {
			return false
		}
		if budget -= int64(len(d.buf)); budget < 0 {
			return false
		}
		lit = findLiteral(d.buf[:n])
	}
	return true
}

// appendLine appends the next line to d.buf with its end normalised to CRLF
// and returns its length without the line end. RFC 9051 2.2 has lines end in
// CRLF; a lone LF is accepted too (as many servers do, for hand-typed
// sessions), which cannot confuse framing because literals are counted.
// Memory is bounded: a line over Limits.Line fails once Line+2 octets have
// been seen without an LF.
func (d *Decoder) appendLine(first bool) (int, error) {
	start := len(d.buf)
	limit := d.lim.Line + 2
	for {
		frag, err := d.r.ReadSlice('\n')
		if len(d.buf)-start+len(frag) > limit {
			return 0, ErrLineTooLong
		}
		d.buf = append(d.buf, frag...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			if first && len(d.buf) == start {
				return 0, io.EOF
			}
			return 0, io.ErrUnexpectedEOF
		}
		return 0, err
	}
	end := len(d.buf) - 1 // the LF
	if end == start || d.buf[end-1] != '\r' {
		d.buf = append(d.buf[:end], '\r', '\n')
		end++
	}
	n := end - 1 - start
	if n > d.lim.Line {
		return 0, ErrLineTooLong
	}
	return n, nil
}

// appendLiteral reads n literal octets into d.buf. The buffer grows at most
// 64 KiB ahead of the octets received, so a client announcing a large
// literal and sending little costs little.
func (d *Decoder) appendLiteral(n int64) error {
	const step = 64 << 10
	for n > 0 {
		chunk := int(min(n, step))
		l := len(d.buf)
		if cap(d.buf)-l < chunk {
			c := max(2*cap(d.buf), l+chunk)
			c = min(c, l+int(n))
			grown := make([]byte, l, c)
			copy(grown, d.buf)
			d.buf = grown
		}
		d.buf = d.buf[:l+chunk]
		if _, err := io.ReadFull(d.r, d.buf[l:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		n -= int64(chunk)
	}
	return nil
}

// discard skips n octets without storing them.
func (d *Decoder) discard(n int64) error {
	for n > 0 {
		step := int(min(n, 1<<30))
		done, err := d.r.Discard(step)
		n -= int64(done)
		if err != nil {
			return err
		}
	}
	return nil
}

// literalRef is a literal announced at the end of a line.
type literalRef struct {
	present bool
	nonSync bool  // "{n+}"
	binary  bool  // "~{n}", RFC 3516 7
	size    int64 // saturated at math.MaxInt64, which no limit allows
	start   int   // offset in the line of "{" or "~"
}

// findLiteral reports the literal announced at the end of line (without its
// line end): "{" number64 ["+"] "}" (RFC 9051 9 literal, RFC 7888 8), with
// "~" before it for literal8.
func findLiteral(line []byte) literalRef {
	var lit literalRef
	i := len(line) - 1
	if i < 2 || line[i] != '}' {
		return lit
	}
	i--
	if line[i] == '+' {
		lit.nonSync = true
		i--
	}
	last := i
	for i >= 0 && line[i] >= '0' && line[i] <= '9' {
		i--
	}
	if i < 0 || i == last || line[i] != '{' {
		return literalRef{}
	}
	for _, c := range line[i+1 : last+1] {
		v := int64(c - '0')
		if lit.size > (math.MaxInt64-v)/10 {
			lit.size = math.MaxInt64
			break
		}
		lit.size = lit.size*10 + v
	}
	lit.present, lit.start = true, i
	if i > 0 && line[i-1] == '~' {
		lit.binary, lit.start = true, i-1
	}
	return lit
}

// parseHead splits the first line of a command into tag and name and returns
// the offset of the arguments. The tag is returned whenever it is valid, so
// that even a bad command can be answered with it.
func parseHead(line []byte) (tag []byte, name string, args int, err error) {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		if validTag(line) {
			return line, "", len(line), ErrBadCommandName
		}
		return nil, "", len(line), ErrBadTag
	}
	if !validTag(line[:sp]) {
		return nil, "", len(line), ErrBadTag
	}
	tag = line[:sp]
	word := nextWord(line[sp+1:])
	if !validAtom(word) {
		return tag, "", len(line), ErrBadCommandName
	}
	name, args = upperASCII(word), sp+1+len(word)
	// RFC 9051 6.4.9: "UID" prefixes COPY, MOVE, FETCH, SEARCH, STORE and
	// EXPUNGE; the pair is one command name for dispatch.
	if name == "UID" && args < len(line) {
		if sub := nextWord(line[args+1:]); validAtom(sub) {
			name, args = "UID "+upperASCII(sub), args+1+len(sub)
		}
	}
	return tag, name, args, nil
}

// nextWord returns the octets of b up to the first SP.
func nextWord(b []byte) []byte {
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		return b[:i]
	}
	return b
}

// lexer follows a command across its lines just far enough to count
// arguments, items and nesting for the limits; the literal octets between
// lines are skipped. Quoted strings are tracked so that their contents do not
// count.
type lexer struct {
	arg     int // top-level argument index, -1 before the first SP
	items   int
	depth   int
	inQuote bool
}

func (l *lexer) scan(text []byte, lim *Limits) error {
	for i := 0; i < len(text); i++ {
		c := text[i]
		if l.inQuote {
			switch c {
			case '\\':
				i++
			case '"':
				l.inQuote = false
			}
			continue
		}
		switch c {
		case '"':
			l.inQuote = true
		case ' ':
			if l.depth == 0 {
				l.arg++
			}
			l.items++
		case ',':
			l.items++
		case '(':
			l.items++
			if l.depth++; l.depth > lim.Depth {
				return ErrTooDeep
			}
		case ')':
			l.depth = max(l.depth-1, 0)
		}
		if l.items > lim.Args {
			return ErrTooManyArgs
		}
	}
	// A quoted string cannot span lines (RFC 9051 4.3: no CR or LF); the
	// Parser reports the unterminated string.
	l.inQuote = false
	return nil
}
