package dsn

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
	"unicode/utf8"
)

// Action is the per-recipient Action field (RFC 3464 2.3.3).
type Action string

// The actions of RFC 3464 2.3.3.
const (
	Failed    Action = "failed"    // could not be delivered or relayed; given up
	Delayed   Action = "delayed"   // not yet delivered; still being retried
	Delivered Action = "delivered" // delivered to the recipient's mailbox
	Relayed   Action = "relayed"   // handed to a next hop that will not send a DSN
	Expanded  Action = "expanded"  // delivered and forwarded to several addresses
)

// Diagnostic types (RFC 3464 2.3.6). SMTP is for a reply received from a
// remote server; Local for a problem found here (DNS, connection, expiry),
// an "X-" private type as RFC 3464 2.3.6 allows.
const (
	DiagnosticSMTP  = "smtp"
	DiagnosticLocal = "X-Posthorn"
)

// MaxLine is the longest line Compose writes, without its CRLF
// (RFC 5322 2.1.1).
const MaxLine = 998

// foldAt is where Compose prefers to fold a field (RFC 5322 2.1.1: lines
// SHOULD be at most 78 characters).
const foldAt = 78

// Report is everything one DSN says.
type Report struct {
	// ReportingMTA is our host name: the Reporting-MTA field (RFC 3464
	// 2.2.2) and the domain of From and Message-ID.
	ReportingMTA string
	// Sender is the original envelope sender, to whom the DSN goes (To:).
	Sender string
	// Date is when the DSN was made (Date:).
	Date time.Time
	// MessageID is the DSN's own Message-ID, without angle brackets.
	MessageID string
	// EnvID is the xtext-decoded ENVID of the original transaction, the
	// Original-Envelope-Id field (RFC 3464 2.2.1; RFC 3461 6.3 b); "" when
	// the sender gave none.
	EnvID string
	// Arrival is when the original message arrived here (Arrival-Date,
	// RFC 3464 2.2.5); zero leaves the field out.
	Arrival time.Time
	// Ret is the RET parameter of the original MAIL: "FULL" returns the
	// whole message when a recipient failed; "HDRS" or "" only its header
	// (RFC 3461 4.3).
	Ret string
	// Recipients are the recipients this DSN reports on, in order.
	Recipients []Recipient
	// Original is the original message as queued (with our trace header).
	Original []byte
}

// Recipient is one per-recipient block (RFC 3464 2.3).
type Recipient struct {
	// Original is the ORCPT parameter, "addr-type;address" with the
	// address xtext-decoded (RFC 3461 4.2); "" when absent.
	Original string
	// Final is the address the report is about (Final-Recipient).
	Final string
	// Action and Status (an RFC 3463 code such as "5.1.1") are required.
	Action Action
	Status string
	// RemoteMTA is the host name of the server that gave Diagnostic, or
	// "" when no server was reached.
	RemoteMTA string
	// DiagnosticType is DiagnosticSMTP or DiagnosticLocal; "" with an
	// empty Diagnostic leaves Diagnostic-Code out.
	DiagnosticType string
	// Diagnostic is the reply (for "smtp": "550 5.1.1 No such user", the
	// lines of a multi-line reply joined with spaces) or the local reason.
	Diagnostic string
	// LastAttempt is the time of the last delivery attempt; zero leaves
	// Last-Attempt-Date out.
	LastAttempt time.Time
	// WillRetryUntil is, for Delayed, when the queue gives up
	// (RFC 3464 2.3.9); zero leaves it out.
	WillRetryUntil time.Time
}

// Subject lines by the most severe action in a DSN.
const (
	SubjectFailed  = "Undelivered Mail Returned to Sender"
	SubjectDelayed = "Delayed Mail (still being retried)"
	SubjectSuccess = "Successful Mail Delivery Report"
)

// Compose renders r as a DSN message with CRLF line ends. It is a pure
// function of r: the same Report gives the same bytes.
func Compose(r Report) []byte {
	failed, delayed := false, false
	for _, rc := range r.Recipients {
		failed = failed || rc.Action == Failed
		delayed = delayed || rc.Action == Delayed
	}
	subject := SubjectSuccess
	switch {
	case failed:
		subject = SubjectFailed
	case delayed:
		subject = SubjectDelayed
	}

	// RFC 3461 6.2: the full message only for a DSN that reports a failure.
	returnType, returned := "text/rfc822-headers", headerOf(r.Original)
	if failed && strings.EqualFold(r.Ret, "FULL") && lineSafe(r.Original) {
		returnType, returned = "message/rfc822", withFinalCRLF(r.Original)
	}
	human := humanText(r, failed, delayed, returnType == "message/rfc822")
	status := statusText(r)
	boundary := makeBoundary(r.MessageID, r.Original)
	eightBit := !isASCII(human) || !isASCII(status) || !isASCII(string(returned))

	var b bytes.Buffer
	b.Grow(len(returned) + len(human) + len(status) + 1024)
	writeField(&b, "From", "Mail Delivery System <MAILER-DAEMON@"+r.ReportingMTA+">")
	writeField(&b, "To", "<"+r.Sender+">")
	writeField(&b, "Subject", subject)
	writeField(&b, "Date", formatDate(r.Date))
	writeField(&b, "Message-ID", "<"+r.MessageID+">")
	// RFC 3834 5: automatic responses carry Auto-Submitted: auto-replied.
	writeField(&b, "Auto-Submitted", "auto-replied")
	writeField(&b, "MIME-Version", "1.0")
	// RFC 6522 3: multipart/report with report-type=delivery-status.
	writeField(&b, "Content-Type", `multipart/report; report-type=delivery-status; boundary="`+boundary+`"`)
	if eightBit {
		// RFC 2045 6.4: a composite's encoding is 8bit if any part is.
		writeField(&b, "Content-Transfer-Encoding", "8bit")
	}
	b.WriteString("\r\n")
	b.WriteString("This is a MIME-encapsulated message.\r\n\r\n")

	part := func(contentType, description, body string) {
		b.WriteString("--" + boundary + "\r\n")
		writeField(&b, "Content-Type", contentType)
		writeField(&b, "Content-Description", description)
		if !isASCII(body) {
			writeField(&b, "Content-Transfer-Encoding", "8bit")
		}
		b.WriteString("\r\n")
		b.WriteString(body)
		// RFC 2046 5.1.1: the CRLF before a boundary belongs to the
		// boundary, so the body's own last CRLF needs one more.
		b.WriteString("\r\n")
	}
	part("text/plain; charset=utf-8", "Notification", human)
	part("message/delivery-status", "Delivery report", status)
	description := "Undelivered Message Headers"
	switch {
	case returnType == "message/rfc822":
		description = "Undelivered Message"
	case !failed:
		description = "Message Headers"
	}
	part(returnType, description, string(returned))
	b.WriteString("--" + boundary + "--\r\n")
	return b.Bytes()
}

// HasUTF8 reports whether a composed DSN contains 8-bit octets, so that it
// needs an 8BITMIME or SMTPUTF8 transaction.
func HasUTF8(msg []byte) bool { return !isASCII(string(msg)) }

func humanText(r Report, failed, delayed, full bool) string {
	var b strings.Builder
	b.WriteString("This is the mail system at host " + r.ReportingMTA + ".\r\n\r\n")
	switch {
	case failed:
		attached := "Its header is attached below."
		if full {
			attached = "It is attached below."
		}
		b.WriteString(wrap("I'm sorry to have to inform you that your message could not be delivered to one or more recipients. "+attached, 72))
	case delayed:
		b.WriteString(wrap("This is a warning only; you do not need to resend your message. Your message could not yet be delivered to one or more recipients. The mail system will keep trying until the time given for each recipient below.", 72))
	default:
		b.WriteString(wrap("Your message was passed on to the next mail server for the recipients below. That server does not send delivery notifications, so this is the last report you will receive for them.", 72))
	}
	for _, rc := range r.Recipients {
		line := "<" + rc.Final + ">: "
		switch rc.Action {
		case Failed:
			line += "delivery failed"
		case Delayed:
			line += "delivery delayed"
			if !rc.WillRetryUntil.IsZero() {
				line += ", will retry until " + formatDate(rc.WillRetryUntil)
			}
		case Relayed:
			line += "relayed"
		default:
			line += string(rc.Action)
		}
		line += " (" + rc.Status + ")"
		switch {
		case rc.Diagnostic != "" && rc.RemoteMTA != "":
			line += ": host " + rc.RemoteMTA + " said: " + rc.Diagnostic
		case rc.Diagnostic != "":
			line += ": " + rc.Diagnostic
		case rc.RemoteMTA != "":
			line += ": host " + rc.RemoteMTA
		}
		b.WriteString("\r\n")
		b.WriteString(wrap(line, 72))
	}
	return b.String()
}

// statusText is the body of the message/delivery-status part
// (RFC 3464 2.1): the per-message fields, then a blank line before each
// recipient's block.
func statusText(r Report) string {
	var b bytes.Buffer
	// RFC 3464 2.2: Original-Envelope-Id, Reporting-MTA, Arrival-Date, in
	// the order of the grammar.
	if r.EnvID != "" {
		writeField(&b, "Original-Envelope-Id", r.EnvID)
	}
	writeField(&b, "Reporting-MTA", "dns; "+r.ReportingMTA)
	if !r.Arrival.IsZero() {
		writeField(&b, "Arrival-Date", formatDate(r.Arrival))
	}
	for _, rc := range r.Recipients {
		b.WriteString("\r\n")
		if rc.Original != "" {
			typ, addr, _ := strings.Cut(rc.Original, ";")
			writeField(&b, "Original-Recipient", strings.TrimSpace(typ)+";"+strings.TrimSpace(addr))
		}
		writeField(&b, "Final-Recipient", addressType(rc.Final)+"; "+rc.Final)
		writeField(&b, "Action", string(rc.Action))
		writeField(&b, "Status", rc.Status)
		if rc.RemoteMTA != "" {
			writeField(&b, "Remote-MTA", "dns; "+rc.RemoteMTA)
		}
		if rc.Diagnostic != "" {
			typ := rc.DiagnosticType
			if typ == "" {
				typ = DiagnosticLocal
			}
			writeField(&b, "Diagnostic-Code", typ+"; "+oneLine(rc.Diagnostic))
		}
		if !rc.LastAttempt.IsZero() {
			writeField(&b, "Last-Attempt-Date", formatDate(rc.LastAttempt))
		}
		if !rc.WillRetryUntil.IsZero() {
			writeField(&b, "Will-Retry-Until", formatDate(rc.WillRetryUntil))
		}
	}
	return b.String()
}

// addressType is "rfc822" for an ASCII address and "utf-8" (RFC 6533 3)
// for an internationalized one.
func addressType(addr string) string {
	if isASCII(addr) {
		return "rfc822"
	}
	return "utf-8"
}

func formatDate(t time.Time) string { return t.Format(time.RFC1123Z) }

// writeField writes "Name: value" CRLF, folded before spaces so that lines
// stay near foldAt and never exceed MaxLine. A run without spaces longer
// than a line is split with CRLF SP (unfolding then shows a space there).
func writeField(b *bytes.Buffer, name, value string) {
	value = oneLine(value)
	line := name + ":"
	if value != "" {
		line += " "
	}
	col := 0
	for _, word := range splitBeforeSpaces(line + value) {
		// Every piece but the first starts with a space: fold before it.
		if col > 0 && col+len(word) > foldAt && strings.TrimSpace(word) != "" {
			b.WriteString("\r\n")
			col = 0
		}
		for col+len(word) > MaxLine {
			n := MaxLine - col
			b.WriteString(word[:n])
			b.WriteString("\r\n ")
			word, col = word[n:], 1
		}
		b.WriteString(word)
		col += len(word)
	}
	b.WriteString("\r\n")
}

// splitBeforeSpaces cuts s into pieces that each start at a space (but the
// first), so folding before any piece keeps the space as the fold's WSP.
func splitBeforeSpaces(s string) []string {
	var parts []string
	start := 0
	for i := 1; i < len(s); i++ {
		if s[i] == ' ' && s[i-1] != ' ' {
			parts = append(parts, s[start:i])
			start = i
		}
	}
	return append(parts, s[start:])
}

// oneLine turns CR, LF and other controls into spaces, so a value cannot
// start a new header line.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r\n", " ")
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// wrap breaks text into CRLF-terminated lines of about width characters.
func wrap(text string, width int) string {
	var b strings.Builder
	col := 0
	for _, word := range strings.Fields(oneLine(text)) {
		for len(word) > MaxLine {
			if col > 0 {
				b.WriteString("\r\n")
			}
			b.WriteString(word[:MaxLine] + "\r\n")
			word, col = word[MaxLine:], 0
		}
		if col > 0 && col+1+utf8.RuneCountInString(word) > width {
			b.WriteString("\r\n")
			col = 0
		}
		if col > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(word)
		col += utf8.RuneCountInString(word)
	}
	b.WriteString("\r\n")
	return b.String()
}

// headerOf returns the header section of msg with CRLF line ends and every
// line at most MaxLine octets (folded with CRLF SP if longer).
func headerOf(msg []byte) []byte {
	end := len(msg)
	if bytes.HasPrefix(msg, []byte("\r\n")) || bytes.HasPrefix(msg, []byte("\n")) {
		return nil
	}
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		end = i + 2
	} else if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
		end = i + 1
	}
	var b bytes.Buffer
	for line := range bytes.Lines(msg[:end]) {
		line = bytes.TrimRight(line, "\r\n")
		line = bytes.ReplaceAll(line, []byte("\r"), []byte(" "))
		line = bytes.ReplaceAll(line, []byte{0}, []byte(" "))
		for limit := MaxLine; len(line) > limit; limit = MaxLine - 1 {
			// The continuation line starts with the folding space.
			b.Write(line[:limit])
			b.WriteString("\r\n ")
			line = line[limit:]
		}
		b.Write(line)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// lineSafe reports whether msg can travel as message/rfc822 in 8bit: CRLF
// line ends only, no NUL, no line over MaxLine (RFC 2045 2.8).
func lineSafe(msg []byte) bool {
	col := 0
	for i, c := range msg {
		switch c {
		case 0:
			return false
		case '\r':
			if i+1 >= len(msg) || msg[i+1] != '\n' {
				return false
			}
		case '\n':
			if i == 0 || msg[i-1] != '\r' {
				return false
			}
			col = 0
			continue
		}
		col++
		if col > MaxLine+1 { // the CR is counted too
			return false
		}
	}
	return true
}

func withFinalCRLF(msg []byte) []byte {
	if len(msg) == 0 || bytes.HasSuffix(msg, []byte("\r\n")) {
		return msg
	}
	return append(bytes.Clone(msg), '\r', '\n')
}

// makeBoundary derives the boundary from the DSN's Message-ID, lengthened
// until it does not occur in the returned message (RFC 2046 5.1.1).
func makeBoundary(messageID string, original []byte) string {
	sum := sha256.Sum256([]byte(messageID))
	boundary := "=_posthorn_" + hex.EncodeToString(sum[:9])
	for bytes.Contains(original, []byte("--"+boundary)) {
		sum = sha256.Sum256(sum[:])
		boundary += hex.EncodeToString(sum[:2])
	}
	return boundary
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
