package pop3

// A message goes to the client as a multi-line response (RFC 1939 3): every
// line ends in CRLF and a line starting with "." gets another "." (byte-
// stuffing). The server writes it with textline.DotWriter, which turns a
// bare CR or a bare LF into CRLF and ends an unterminated last line with
// CRLF. The functions here count lines and octets the same way, so that the
// size announced by LIST and RETR is exactly what the client receives.

// WireSize returns the size of raw as the client counts it: with every line
// end (CRLF, bare CR, bare LF) as the two octets CRLF, a CRLF added after an
// unterminated last line, and without the stuffed dots. RFC 1939 11: the
// octet count is that of the message with CRLF line ends, and byte-stuffed
// termination octets "need not (and must not) be counted twice".
//
// A store that keeps messages with CRLF line ends (as SMTP delivers them,
// RFC 5321 2.3.8) and a final CRLF has WireSize(raw) == len(raw).
func WireSize(raw []byte) int64 {
	n := int64(len(raw))
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '\r':
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++ // CRLF: already two octets
			} else {
				n++ // bare CR becomes CRLF
			}
		case '\n':
			n++ // bare LF becomes CRLF
		}
	}
	if len(raw) > 0 && raw[len(raw)-1] != '\n' && raw[len(raw)-1] != '\r' {
		n += 2 // the last line gets its CRLF
	}
	return n
}

// nextLine returns the index just after the line end of the line starting
// at i (CRLF, bare CR or bare LF, as DotWriter sees them), or len(raw) when
// the line has no end, and whether the line was empty.
func nextLine(raw []byte, i int) (next int, empty bool) {
	start := i
	for i < len(raw) {
		switch raw[i] {
		case '\r':
			if i+1 < len(raw) && raw[i+1] == '\n' {
				return i + 2, i == start
			}
			return i + 1, i == start
		case '\n':
			return i + 1, i == start
		}
		i++
	}
	return i, false
}

// TopLength returns how many octets of raw the reply to "TOP msg n" sends:
// the header, the empty line that ends it, and the first n lines of the body
// (RFC 1939 7). A message without an empty line is all header and is sent
// whole; so is one whose body has n lines or fewer.
func TopLength(raw []byte, n int) int {
	i := 0
	for i < len(raw) {
		next, empty := nextLine(raw, i)
		i = next
		if empty {
			break // RFC 5322 2.1: the header ends at the first empty line
		}
	}
	for ; n > 0 && i < len(raw); n-- {
		i, _ = nextLine(raw, i)
	}
	return i
}

// UniqueIDLength is the length of a unique-id made by AppendUniqueID.
const UniqueIDLength = 16

// AppendUniqueID appends the unique-id of message uid in a maildrop with
// UIDVALIDITY uidValidity: both as eight lower-case hex digits.
//
// RFC 1939 7 (UIDL): one to 70 characters in 0x21-0x7E, unique within the
// maildrop and persistent across sessions; "the server should never reuse
// an unique-id in a given maildrop". UIDs are never reused under one
// UIDVALIDITY (RFC 9051 2.3.1.1), and a new UIDVALIDITY makes every id new.
func AppendUniqueID(b []byte, uidValidity, uid uint32) []byte {
	const hex = "0123456789abcdef"
	for _, v := range [2]uint32{uidValidity, uid} {
		for shift := 28; shift >= 0; shift -= 4 {
			b = append(b, hex[v>>uint(shift)&0xf])
		}
	}
	return b
}
