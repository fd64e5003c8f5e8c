package imap

import (
	"bufio"
	"encoding/base64"
	"errors"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// maxQuoted is the longest string String and AString send quoted; longer ones
// go as literals, which keeps response lines short (RFC 7162 4 suggests
// literals "instead of long quoted strings") and costs no escaping.
const maxQuoted = 1024

// Encoder errors. The first error sticks: later writes are skipped and CRLF,
// Err and Flush return it. A server treats one as a bug and closes.
var (
	ErrNotAtom       = errors.New("imap: value is not an atom")
	ErrBadFlag       = errors.New("imap: value is not a flag")
	ErrBinaryString  = errors.New("imap: string contains NUL; send it as literal8")
	ErrNotQuotable   = errors.New("imap: string cannot be quoted")
	ErrBadRaw        = errors.New("imap: CR, LF or NUL in raw output")
	ErrEmptySeqSet   = errors.New("imap: empty sequence set")
	ErrNegative      = errors.New("imap: negative number")
	ErrShortLiteral  = errors.New("imap: literal source ended early")
	ErrBadCode       = errors.New("imap: invalid response code")
	ErrBadTagEncoded = errors.New("imap: invalid tag")
)

// Encoder writes server responses (RFC 9051 7) to a bufio.Writer. Token
// methods return the Encoder so a response reads as its grammar:
//
//	e.Untagged().Number(12).SP().Atom("FETCH").SP().BeginList().
//		Atom("FLAGS").SP().FlagList(flags).EndList().CRLF()
//
// Separators are explicit (SP); nothing is written implicitly except by the
// whole-line helpers (StatusResponse, Continue). Tokens are written straight
// into the bufio buffer; numbers, dates, sets and encoded names go through
// one reused scratch slice, so steady-state writing does not allocate.
type Encoder struct {
	w    *bufio.Writer
	err  error
	utf8 bool
	tmp  []byte
}

// NewEncoder returns an Encoder writing to w.
func NewEncoder(w *bufio.Writer) *Encoder {
	return &Encoder{w: w, tmp: make([]byte, 0, 64)}
}

// Reset makes e write to w (after STARTTLS) and clears any error.
func (e *Encoder) Reset(w *bufio.Writer) { e.w, e.err = w, nil }

// SetUTF8 enables UTF-8 in quoted strings, text and mailbox names: only
// after ENABLE IMAP4rev2 (RFC 9051 4.3.1, 5.1) or ENABLE UTF8=ACCEPT (RFC
// 6855 3: "MUST NOT send UTF-8 in quoted-strings ... unless").
func (e *Encoder) SetUTF8(on bool) { e.utf8 = on }

// Err returns the first error.
func (e *Encoder) Err() error { return e.err }

// Flush flushes the writer and returns the first error.
func (e *Encoder) Flush() error {
	if e.err == nil {
		e.setErr(e.w.Flush())
	}
	return e.err
}

func (e *Encoder) setErr(err error) {
	if e.err == nil && err != nil {
		e.err = err
	}
}

func (e *Encoder) byte(c byte) {
	if e.err == nil {
		e.setErr(e.w.WriteByte(c))
	}
}

// writeAll writes s through the bufio buffer without converting it.
func writeAll[T string | []byte](e *Encoder, s T) {
	for len(s) > 0 && e.err == nil {
		if e.w.Available() == 0 {
			if err := e.w.Flush(); err != nil {
				e.setErr(err)
				return
			}
		}
		buf := e.w.AvailableBuffer()
		n := min(len(s), cap(buf))
		_, err := e.w.Write(append(buf, s[:n]...))
		e.setErr(err)
		s = s[n:]
	}
}

// Untagged starts an untagged response: "* ".
func (e *Encoder) Untagged() *Encoder {
	writeAll(e, "* ")
	return e
}

// Tagged starts a tagged response: tag SP.
func (e *Encoder) Tagged(tag string) *Encoder {
	if !validTag(tag) {
		e.setErr(ErrBadTagEncoded)
		return e
	}
	writeAll(e, tag)
	e.byte(' ')
	return e
}

// CRLF ends the line and returns the first error so far.
func (e *Encoder) CRLF() error {
	writeAll(e, "\r\n")
	return e.err
}

// StatusResponse writes a whole status response (RFC 9051 7.1): tag ("" for
// "*") SP status [SP "[" code "]"] SP text CRLF. RFC 3501 requires text, so
// an empty text is replaced by the status word.
func (e *Encoder) StatusResponse(tag string, st Status, code Code, text string) error {
	if tag == "" {
		e.Untagged()
	} else {
		e.Tagged(tag)
	}
	e.Atom(string(st))
	if code != "" {
		e.SP().Code(code)
	}
	if text == "" {
		text = string(st)
	}
	return e.SP().Text(text).CRLF()
}

// Continue writes a command continuation request (RFC 9051 7.6): "+" SP text CRLF.
func (e *Encoder) Continue(text string) error {
	writeAll(e, "+ ")
	return e.Text(text).CRLF()
}

// ContinueBase64 writes a SASL challenge (RFC 9051 6.2.2): "+" SP base64 CRLF.
func (e *Encoder) ContinueBase64(data []byte) error {
	writeAll(e, "+ ")
	e.tmp = base64.StdEncoding.AppendEncode(e.tmp[:0], data)
	writeAll(e, e.tmp)
	return e.CRLF()
}

// SP writes one space.
func (e *Encoder) SP() *Encoder {
	e.byte(' ')
	return e
}

// Atom writes an atom (status words, data names, capabilities).
func (e *Encoder) Atom(s string) *Encoder {
	if !validAtom(s) {
		e.setErr(ErrNotAtom)
		return e
	}
	writeAll(e, s)
	return e
}

// Raw writes s unchanged, for syntax the caller has built and checked, such
// as "BODY[1.2.MIME]" or "<0>". Only CR, LF and NUL are refused, so no call
// can end a line early.
func (e *Encoder) Raw(s string) *Encoder {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 {
			e.setErr(ErrBadRaw)
			return e
		}
	}
	writeAll(e, s)
	return e
}

// Number writes a number (RFC 9051 9: unsigned 32-bit).
func (e *Encoder) Number(n uint32) *Encoder {
	e.tmp = strconv.AppendUint(e.tmp[:0], uint64(n), 10)
	writeAll(e, e.tmp)
	return e
}

// Number64 writes a number64 (unsigned 63-bit).
func (e *Encoder) Number64(n int64) *Encoder {
	if n < 0 {
		e.setErr(ErrNegative)
		return e
	}
	e.tmp = strconv.AppendInt(e.tmp[:0], n, 10)
	writeAll(e, e.tmp)
	return e
}

// Nil writes NIL.
func (e *Encoder) Nil() *Encoder {
	writeAll(e, "NIL")
	return e
}

// BeginList writes "(".
func (e *Encoder) BeginList() *Encoder {
	e.byte('(')
	return e
}

// EndList writes ")".
func (e *Encoder) EndList() *Encoder {
	e.byte(')')
	return e
}

// canQuote reports whether s may be sent as a quoted string: no NUL, CR or
// LF (RFC 9051 4.3), and 8-bit octets only as valid UTF-8 once UTF-8 is
// enabled (RFC 9051 4.3.1, RFC 6855 3).
func canQuote[T string | []byte](s T, utf8On bool) bool {
	high := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == 0 || c == '\r' || c == '\n':
			return false
		case c >= 0x80:
			high = true
		}
	}
	if !high {
		return true
	}
	if !utf8On {
		return false
	}
	return validUTF8(s)
}

// validUTF8 is utf8.Valid for both strings and byte slices.
func validUTF8[T string | []byte](s T) bool {
	var b [utf8.UTFMax]byte
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[:copy(b[:], s[i:])])
		if r == utf8.RuneError && size <= 1 {
			return false
		}
		i += size
	}
	return true
}

func hasNUL[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// writeQuoted writes DQUOTE s DQUOTE, escaping DQUOTE and "\".
func writeQuoted[T string | []byte](e *Encoder, s T) {
	e.byte('"')
	from := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			writeAll(e, s[from:i])
			e.byte('\\')
			from = i
		}
	}
	writeAll(e, s[from:])
	e.byte('"')
}

// writeString writes s quoted when it can and is short, else as a literal.
func writeString[T string | []byte](e *Encoder, s T) {
	switch {
	case len(s) <= maxQuoted && canQuote(s, e.utf8):
		writeQuoted(e, s)
	case hasNUL(s):
		e.setErr(ErrBinaryString)
	default:
		writeLiteral(e, s, false)
	}
}

func writeLiteral[T string | []byte](e *Encoder, s T, binary bool) {
	e.literalHeader(int64(len(s)), binary)
	writeAll(e, s)
}

// literalHeader writes ["~"] "{" n "}" CRLF. Server literals are always of the
// synchronising form (RFC 9051 4.3: "{n+}" is never sent to the client).
func (e *Encoder) literalHeader(n int64, binary bool) {
	if binary {
		e.byte('~')
	}
	e.byte('{')
	e.tmp = strconv.AppendInt(e.tmp[:0], n, 10)
	writeAll(e, e.tmp)
	writeAll(e, "}\r\n")
}

// Quoted writes s as a quoted string, which the grammar requires in a few
// places (the LIST delimiter, date-time); ErrNotQuotable if it cannot be.
func (e *Encoder) Quoted(s string) *Encoder {
	if !canQuote(s, e.utf8) {
		e.setErr(ErrNotQuotable)
		return e
	}
	writeQuoted(e, s)
	return e
}

// String writes a string (RFC 9051 4.3), quoted when possible and short,
// else as a literal. A string with NUL is binary and cannot be a string
// (RFC 9051 4.3.1): ErrBinaryString.
func (e *Encoder) String(s string) *Encoder {
	writeString(e, s)
	return e
}

// AString writes an astring: an atom when s is one (and is not "NIL", which a
// reader could take for nil, RFC 9051 4.5), else a string.
func (e *Encoder) AString(s string) *Encoder {
	writeAString(e, s)
	return e
}

func writeAString[T string | []byte](e *Encoder, s T) {
	for i := 0; i < len(s); i++ {
		if !isAStringChar(s[i]) {
			writeString(e, s)
			return
		}
	}
	if len(s) == 0 || equalFoldASCII(s, "NIL") {
		writeQuoted(e, s)
		return
	}
	writeAll(e, s)
}

// NString writes s as a string when present, else NIL.
func (e *Encoder) NString(s string, present bool) *Encoder {
	if !present {
		return e.Nil()
	}
	return e.String(s)
}

// Literal writes b as a literal. The octets are not inspected: a body with NUL
// belongs in Literal8 (RFC 9051 4.3.1).
func (e *Encoder) Literal(b []byte) *Encoder {
	writeLiteral(e, b, false)
	return e
}

// Literal8 writes b as a literal8 ("~{n}", RFC 3516 4.3), for BINARY[] data.
func (e *Encoder) Literal8(b []byte) *Encoder {
	writeLiteral(e, b, true)
	return e
}

// LiteralFrom writes a literal (literal8 if binary) of n octets copied from
// r, for message bodies streamed from the store. ErrShortLiteral if r ends
// first; the response is then broken and the connection must close.
func (e *Encoder) LiteralFrom(r io.Reader, n int64, binary bool) *Encoder {
	if n < 0 {
		e.setErr(ErrNegative)
		return e
	}
	e.literalHeader(n, binary)
	if e.err != nil {
		return e
	}
	if _, err := io.CopyN(e.w, r, n); err != nil {
		if err == io.EOF {
			err = ErrShortLiteral
		}
		e.setErr(err)
	}
	return e
}

// Flag writes a flag: a keyword atom, "\" atom, or "\*" (flag-perm).
func (e *Encoder) Flag(f string) *Encoder {
	if f != FlagWildcard && !validAtom(f) && (len(f) < 2 || f[0] != '\\' || !validAtom(f[1:])) {
		e.setErr(ErrBadFlag)
		return e
	}
	writeAll(e, f)
	return e
}

// FlagList writes "(" [flag *(SP flag)] ")".
func (e *Encoder) FlagList(flags []string) *Encoder {
	e.BeginList()
	for i, f := range flags {
		if i > 0 {
			e.SP()
		}
		e.Flag(f)
	}
	return e.EndList()
}

// Mailbox writes a mailbox name: INBOX as such; otherwise modified UTF-7
// (RFC 3501 5.1.3) or, with UTF-8 enabled, UTF-8 (RFC 9051 5.1, RFC 6855 3),
// as an astring.
func (e *Encoder) Mailbox(name string) *Encoder {
	switch {
	case equalFoldASCII(name, "INBOX"):
		writeAll(e, "INBOX")
	case e.utf8:
		writeAString(e, name)
	default:
		e.tmp = AppendUTF7(e.tmp[:0], name)
		writeAString(e, e.tmp)
	}
	return e
}

// DateTime writes a quoted date-time: "17-Jul-1996 02:44:25 -0700".
func (e *Encoder) DateTime(t time.Time) *Encoder {
	e.tmp = append(AppendDateTime(append(e.tmp[:0], '"'), t), '"')
	writeAll(e, e.tmp)
	return e
}

// Date writes date-text: "1-Feb-1994".
func (e *Encoder) Date(t time.Time) *Encoder {
	e.tmp = AppendDate(e.tmp[:0], t)
	writeAll(e, e.tmp)
	return e
}

// SeqSet writes a sequence set or UID set.
func (e *Encoder) SeqSet(s SeqSet) *Encoder {
	if s.IsEmpty() {
		e.setErr(ErrEmptySeqSet)
		return e
	}
	e.tmp = s.Append(e.tmp[:0])
	writeAll(e, e.tmp)
	return e
}

// Code writes a whole response code: "[" code "]". The code is an atom,
// optionally followed by SP and TEXT-CHARs other than "]" (RFC 9051 9,
// resp-text-code).
func (e *Encoder) Code(c Code) *Encoder {
	return e.BeginCode(c).EndCode()
}

// BeginCode writes "[" code, for codes whose arguments are written with the
// token methods; EndCode closes it.
func (e *Encoder) BeginCode(c Code) *Encoder {
	name, args := string(c), ""
	for i := 0; i < len(name); i++ {
		if name[i] == ' ' {
			name, args = name[:i], name[i+1:]
			break
		}
	}
	if !validAtom(name) {
		e.setErr(ErrBadCode)
		return e
	}
	for i := 0; i < len(args); i++ {
		if c := args[i]; c == ']' || c == '\r' || c == '\n' || c == 0 || c >= 0x80 {
			e.setErr(ErrBadCode)
			return e
		}
	}
	e.byte('[')
	writeAll(e, string(c))
	return e
}

// EndCode writes "]".
func (e *Encoder) EndCode() *Encoder {
	e.byte(']')
	return e
}

// Text writes human-readable text (RFC 9051 9, text: no CR or LF). CR, LF
// and NUL become spaces; without UTF-8 enabled, each non-ASCII character
// becomes "?" (RFC 9051 9: "Non-ASCII text can only be returned after ENABLE
// IMAP4rev2"); with it, invalid UTF-8 octets do.
func (e *Encoder) Text(s string) *Encoder {
	for i := 0; i < len(s) && e.err == nil; {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == '\r' || c == '\n' || c == 0 {
				c = ' '
			}
			e.byte(c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if e.utf8 && (r != utf8.RuneError || size > 1) {
			writeAll(e, s[i:i+size])
		} else {
			e.byte('?')
		}
		i += size
	}
	return e
}
