package smtp

// Command is one parsed command line.
type Command struct {
	Verb string // upper-cased verb: "EHLO", "MAIL", ...
	Arg  string // the rest of the line after the verb and its SP, leading and trailing SP/HTAB trimmed, otherwise unmodified
}

// ParseCommand splits a command line (without its CRLF) into verb and argument.
//
// The verb is letters only and is returned upper-cased (RFC 5321 2.4: verbs are
// case-insensitive). RFC 5321 4.1.1 separates verb and argument with one SP;
// extra spaces before the argument and trailing white space are tolerated and
// trimmed, the argument is otherwise returned as given. Deciding whether the
// verb is known, and parsing the argument, is the caller's job.
//
// A line holding NUL, CR, LF or any other control character except HTAB, an
// empty line, or a verb that is not all letters is rejected with 500 5.5.2: a
// bare CR or LF inside a line is how SMTP smuggling starts (RFC 5321 2.3.8:
// CR and LF only ever appear together as CRLF).
func ParseCommand(line []byte) (Command, error) {
	for _, c := range line {
		// RFC 5321 2.3.8, 4.1.1: commands are ASCII text; control characters
		// have no place in them. Non-ASCII is left to the argument parsers,
		// which allow UTF-8 only where RFC 6531 3.3 does.
		if (c < ' ' && c != '\t') || c == 0x7f {
			return Command{}, R(CodeSyntax, EnhSyntaxError, "Syntax error: control character in command")
		}
	}
	n := 0
	for n < len(line) && isAlpha(line[n]) {
		n++
	}
	if len(trimSpace(line)) == 0 {
		return Command{}, R(CodeSyntax, EnhSyntaxError, "Syntax error: empty command")
	}
	// RFC 5321 4.1.1: the verb is followed by SP or by the end of the line.
	if n == 0 || (n < len(line) && line[n] != ' ') {
		return Command{}, R(CodeSyntax, EnhSyntaxError, "Syntax error: command unrecognized")
	}
	verb := make([]byte, n)
	for i := range n {
		verb[i] = line[i] &^ 0x20 // ASCII letters only: clearing bit 5 upper-cases
	}
	return Command{Verb: string(verb), Arg: string(trimSpace(line[n:]))}, nil
}

// trimSpace removes leading and trailing SP and HTAB.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func isAlpha(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
