// Package imap is the IMAP wire codec of Posthorn: a bounded command
// decoder, a typed argument parser, sequence sets, dates, modified UTF-7 and
// a response encoder. Nothing here touches a connection: the Decoder reads
// a *bufio.Reader, the Encoder writes a *bufio.Writer, and the Parser works
// on bytes, so every part can be fuzzed alone.
//
// # Reading commands
//
// A command is a line, or several lines joined by literals (RFC 9051 2.2,
// 4.3). Decoder.ReadCommand reads one whole command into memory:
//
//	dec := imap.NewDecoder(br, imap.Limits{LiteralLimit: limitFor})
//	cmd, err := dec.ReadCommand(func() error { return enc.Continue("Ready") })
//
// It frames literals by the textual rule of RFC 7888 3 ("{n}", "{n+}",
// "~{n}" right before CRLF), asks the server for a continuation request
// before each synchronising literal, and enforces Limits before reading
// anything: line length, literal size (per command and argument through
// LiteralLimit, so APPEND can take a message and LOGIN cannot), the LITERAL-
// cap on non-synchronising literals, the command total, list depth and item
// count. Nothing is allocated for an announced literal before it is
// accepted, and its buffer grows only as its octets arrive.
//
// A refused command is a *DecodeError naming the limit (errors.Is against
// ErrLiteralTooLarge and the rest), with the tag when known and InSync
// telling whether the stream is still usable. DecodeError.Response gives the
// answer: BAD, NO [TOOBIG], BAD [TOOBIG] (RFC 7888 5), or BYE and close. A
// refused synchronising literal is never sent by the client, which waits for
// the "+" that does not come (RFC 9051 2.2.1, note); refused
// non-synchronising literals are read and discarded up to Limits.Drain (RFC
// 7888 4, choice 1), beyond which the stream is out of sync (choice 2).
//
// # Parsing arguments
//
// Command handlers read their arguments with a Parser in grammar order. A
// handler is a transcription of its ABNF:
//
//	// append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal
//	p := cmd.Args()
//	if err := p.SP(); err != nil { return err }
//	mbox, err := p.Mailbox()
//	...
//	if err := p.SP(); err != nil { return err }
//	if p.Peek() == '(' { flags, err = p.FlagList(); ...; p.SP() }
//	if p.Peek() == '"' { date, err = p.DateTime(); ...; p.SP() }
//	msg, binary, err := p.Literal(true)
//	...
//	if err := p.End(); err != nil { return err }
//
// Every Parser error is a *SyntaxError (errors.Is ErrSyntax) whose Msg says
// what was expected and never echoes client input, so it can be sent as
// "tag BAD msg". Strings are returned as Go strings; literal octets from
// Literal alias the Decoder's buffer and are valid until the next read.
// Mailbox decodes names to UTF-8: from modified UTF-7 for IMAP4rev1 clients
// (RFC 3501 5.1.3), as UTF-8 once IMAP4rev2 or UTF8=ACCEPT is enabled
// (Decoder.SetUTF8, RFC 9051 5.1, RFC 6855 3); "INBOX" in any case becomes
// "INBOX" (RFC 9051 9, mailbox).
//
// This design, a typed pull parser per command rather than a generic tree of
// values, keeps handlers short, gives precise errors at the octet where the
// grammar fails, and avoids building a tree nobody needs: IMAP's grammar is
// contextual (an atom, a sequence set and a FETCH section look alike), so
// only the handler knows what the next token is.
//
// # Writing responses
//
// The Encoder writes tokens in grammar order with explicit separators and
// chooses the string form: an atom for AString when possible, quoted when
// short and quotable, a literal otherwise; "{n}" literals only, never "{n+}"
// (RFC 9051 4.3); "~{n}" for BINARY (RFC 3516). StatusResponse and Continue
// write whole lines. Errors stick and are returned by CRLF and Flush.
//
// # RFCs
//
//   - RFC 9051 (IMAP4rev2): 2.2 lines and commands, 4 data formats, 5.1
//     mailbox names, 7 responses, 9 formal syntax.
//   - RFC 3501 (IMAP4rev1) 5.1.3: modified UTF-7.
//   - RFC 7888: LITERAL+ and LITERAL- (non-synchronising literals; 4096
//     octet cap; choices when one is too large).
//   - RFC 3516 (BINARY): literal8 "~{n}".
//   - RFC 5182 (SEARCHRES): "$" in sequence sets.
//   - RFC 7162 4: command lines of about 8192 octets must be accepted.
//   - RFC 4731 (ESEARCH), RFC 5258 (LIST-EXTENDED): their syntax is built
//     from List, Keyword and SeqSet.
//   - RFC 6855 (UTF8=ACCEPT): UTF-8 in quoted strings and mailbox names.
//   - RFC 4469, RFC 7889: the TOOBIG response code.
package imap
