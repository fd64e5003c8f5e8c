package dsn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
	"time"
)

// MaxParse bounds the message Parse accepts.
const MaxParse = 64 << 20

// Message is a DSN read back by Parse.
type Message struct {
	// Header is the top-level header.
	Header textproto.MIMEHeader
	// Human is the first part, the text for people.
	Human string
	// PerMessage and PerRecipient are the raw fields of the
	// message/delivery-status part (RFC 3464 2.1), keys canonicalized as
	// net/textproto does ("Reporting-Mta").
	PerMessage   textproto.MIMEHeader
	PerRecipient []textproto.MIMEHeader
	// Report holds the parsed fields: ReportingMTA, Sender (from To),
	// Date, MessageID, EnvID, Arrival and Recipients. Ret and Original are
	// not filled (see ReturnedType and Returned).
	Report Report
	// ReturnedType is the content type of the third part
	// ("text/rfc822-headers" or "message/rfc822"), Returned its body.
	ReturnedType string
	Returned     []byte
}

// Parse reads a DSN made by Compose or by any RFC 3464 implementation. It
// is meant for tests and tools: the whole message is in memory, at most
// MaxParse octets.
func Parse(msg []byte) (*Message, error) {
	if len(msg) > MaxParse {
		return nil, errors.New("dsn: message too large")
	}
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(msg)))
	header, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, fmt.Errorf("dsn: header: %w", err)
	}
	m := &Message{Header: header}
	mediaType, params, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil {
		return nil, fmt.Errorf("dsn: Content-Type: %w", err)
	}
	if mediaType != "multipart/report" || !strings.EqualFold(params["report-type"], "delivery-status") {
		return nil, fmt.Errorf("dsn: not a delivery status report: %s", mediaType)
	}
	if params["boundary"] == "" {
		return nil, errors.New("dsn: no boundary")
	}
	mr := multipart.NewReader(tp.R, params["boundary"])
	for i := 0; ; i++ {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("dsn: part %d: %w", i+1, err)
		}
		body, err := io.ReadAll(p)
		if err != nil {
			return nil, fmt.Errorf("dsn: part %d: %w", i+1, err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch {
		case i == 0:
			m.Human = string(body)
		case ct == "message/delivery-status":
			if err := m.parseStatus(body); err != nil {
				return nil, err
			}
		case i == 2:
			m.ReturnedType, m.Returned = ct, body
		}
	}
	if m.PerMessage == nil {
		return nil, errors.New("dsn: no message/delivery-status part")
	}
	m.fillReport()
	return m, nil
}

// parseStatus reads the groups of fields of a message/delivery-status body
// (RFC 3464 2.1: per-message fields, then per-recipient groups, separated
// by blank lines).
func (m *Message) parseStatus(body []byte) error {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(body)))
	for {
		// Blank lines between groups: skip any number.
		for {
			b, err := tp.R.Peek(1)
			if err != nil || (b[0] != '\r' && b[0] != '\n') {
				break
			}
			_, _ = tp.R.ReadByte()
		}
		if _, err := tp.R.Peek(1); err == io.EOF {
			break
		}
		h, err := tp.ReadMIMEHeader()
		if err != nil && err != io.EOF {
			return fmt.Errorf("dsn: delivery-status: %w", err)
		}
		if len(h) > 0 {
			if m.PerMessage == nil {
				m.PerMessage = h
			} else {
				m.PerRecipient = append(m.PerRecipient, h)
			}
		}
		if err == io.EOF {
			break
		}
	}
	if m.PerMessage == nil {
		return errors.New("dsn: empty delivery-status")
	}
	return nil
}

func (m *Message) fillReport() {
	r := &m.Report
	r.ReportingMTA = typedValue(m.PerMessage.Get("Reporting-Mta"))
	r.Sender = strings.Trim(m.Header.Get("To"), "<> ")
	r.Date = parseDate(m.Header.Get("Date"))
	r.MessageID = strings.Trim(m.Header.Get("Message-Id"), "<> ")
	r.EnvID = m.PerMessage.Get("Original-Envelope-Id")
	r.Arrival = parseDate(m.PerMessage.Get("Arrival-Date"))
	for _, h := range m.PerRecipient {
		rc := Recipient{
			Original:       h.Get("Original-Recipient"),
			Final:          typedValue(h.Get("Final-Recipient")),
			Action:         Action(strings.ToLower(h.Get("Action"))),
			Status:         firstWord(h.Get("Status")), // a comment may follow (RFC 3464 2.3.4)
			RemoteMTA:      typedValue(h.Get("Remote-Mta")),
			LastAttempt:    parseDate(h.Get("Last-Attempt-Date")),
			WillRetryUntil: parseDate(h.Get("Will-Retry-Until")),
		}
		if typ, text, ok := strings.Cut(h.Get("Diagnostic-Code"), ";"); ok {
			rc.DiagnosticType, rc.Diagnostic = strings.TrimSpace(typ), strings.TrimSpace(text)
		}
		r.Recipients = append(r.Recipients, rc)
	}
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// typedValue returns the part after "type;" of an RFC 3464 typed field
// ("dns; host", "rfc822; addr").
func typedValue(v string) string {
	_, after, ok := strings.Cut(v, ";")
	if !ok {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(after)
}

func parseDate(v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC1123Z, time.RFC1123, "2 Jan 2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t
		}
	}
	return time.Time{}
}
