package pop3

import "strings"

// Verbs this parser knows (RFC 1939 9, RFC 2449 5, RFC 2595 4, RFC 5034 4).
// APOP is known so that it gets "not supported" rather than "unknown":
// it is never offered (it needs a plaintext-equivalent password).
const (
	VerbUSER = "USER"
	VerbPASS = "PASS"
	VerbAPOP = "APOP"
	VerbAUTH = "AUTH"
	VerbSTLS = "STLS"
	VerbCAPA = "CAPA"
	VerbQUIT = "QUIT"
	VerbSTAT = "STAT"
	VerbLIST = "LIST"
	VerbRETR = "RETR"
	VerbDELE = "DELE"
	VerbNOOP = "NOOP"
	VerbRSET = "RSET"
	VerbTOP  = "TOP"
	VerbUIDL = "UIDL"
)

// verbs interns the known keywords, so parsing a command allocates nothing
// for the verb.
var verbs = [...]string{
	VerbUSER, VerbPASS, VerbAPOP, VerbAUTH, VerbSTLS, VerbCAPA, VerbQUIT, VerbSTAT,
	VerbLIST, VerbRETR, VerbDELE, VerbNOOP, VerbRSET, VerbTOP, VerbUIDL,
}

// MaxCommandLine is the longest command line without its CRLF.
// RFC 2449 4: "255 octets, including the terminating CRLF".
const MaxCommandLine = 255 - 2

// Command is one parsed command line.
type Command struct {
	Verb string // one of the Verb constants
	// Args is everything after the single SP that follows the keyword,
	// unmodified ("" when there is none). RFC 1939 7: a PASS argument may
	// hold spaces, so splitting is left to each command (see Fields).
	Args string
}

// Errors of ParseCommand; each is a -ERR reply.
var (
	ErrEmptyCommand   = Err("", "Empty command")
	ErrBadCharacter   = Err("", "Invalid character in command")
	ErrUnknownCommand = Err("", "Unknown command")
)

// ParseCommand splits a command line (without its CRLF) into keyword and
// arguments.
//
// RFC 1939 3: a case-insensitive keyword of three or four characters,
// separated from each argument by a single SPACE; keywords and arguments are
// printable ASCII. Control characters (including a stray CR, NUL or TAB)
// are rejected anywhere in the line; octets above 0x7F are left in the
// arguments, since user names and passwords may be UTF-8. A keyword that is
// not one of the known verbs is ErrUnknownCommand.
func ParseCommand(line []byte) (Command, error) {
	for _, c := range line {
		if c < ' ' || c == 0x7f {
			return Command{}, ErrBadCharacter
		}
	}
	if len(line) == 0 {
		return Command{}, ErrEmptyCommand
	}
	n := 0
	for n < len(line) && line[n] != ' ' {
		n++
	}
	verb := lookupVerb(line[:n])
	if verb == "" {
		return Command{}, ErrUnknownCommand
	}
	var args string
	if n < len(line) {
		args = string(line[n+1:])
	}
	return Command{Verb: verb, Args: args}, nil
}

// lookupVerb returns the interned verb for kw (any case), or "".
func lookupVerb(kw []byte) string {
	// RFC 1939 3: "Keywords are three or four characters long."
	if len(kw) < 3 || len(kw) > 4 {
		return ""
	}
	var up [4]byte
	for i, c := range kw {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	for _, v := range verbs {
		if v == string(up[:len(kw)]) {
			return v
		}
	}
	return ""
}

// Fields splits arguments at single spaces (RFC 1939 3: "Keywords and
// arguments are each separated by a single SPACE character"). Two spaces in
// a row make an empty field, which the number parsers reject. "" has no fields.
func Fields(args string) []string {
	if args == "" {
		return nil
	}
	return strings.Split(args, " ")
}

// maxNumberDigits bounds the digits of a number argument: enough for any
// message number or line count, few enough that no overflow is possible.
const maxNumberDigits = 10

// ParseMsgNumber parses a message-number (RFC 1939 4: decimal, the first
// message is 1). It reports false for anything but 1 to 10 decimal digits
// with a value of at least 1; the caller checks the upper bound against
// the maildrop.
func ParseMsgNumber(s string) (int, bool) {
	n, ok := parseDecimal(s)
	return n, ok && n >= 1
}

// ParseLineCount parses the line count of TOP (RFC 1939 7: "a non-negative
// number of lines"): 1 to 10 decimal digits.
func ParseLineCount(s string) (int, bool) {
	return parseDecimal(s)
}

func parseDecimal(s string) (int, bool) {
	if len(s) == 0 || len(s) > maxNumberDigits {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
