package server

import (
	"errors"
	"strconv"
	"time"

	"posthorn/mailbox"
	"posthorn/protocol/imap"
	"posthorn/protocol/textline"
)

// cmdAppend: RFC 9051 6.3.12, with APPENDUID (RFC 4315 3) and literal8
// (RFC 3516 4.4).
//
//	append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal
//
// The size limit is enforced by the decoder before the literal is read
// (NO [TOOBIG], RFC 7889); the OK is sent only once the store has made the
// message durable (mailbox.Account.Append commits and fsyncs).
func (s *session) cmdAppend(c *imap.Command) error {
	p := c.Args()
	name, err := mailboxArg(&p)
	if err != nil {
		return err
	}
	if err := p.SP(); err != nil {
		return err
	}
	var flags []string
	if p.Peek() == '(' {
		if flags, err = p.FlagList(); err != nil {
			return err
		}
		if err := p.SP(); err != nil {
			return err
		}
	}
	var date time.Time
	if p.Peek() == '"' {
		if date, err = p.DateTime(); err != nil {
			return err
		}
		if err := p.SP(); err != nil {
			return err
		}
	}
	msg, binary, err := p.Literal(true)
	if err != nil {
		return err
	}
	if !binary {
		// RFC 9051 6.3.12: the message is in RFC 5322 form, whose lines end
		// in CRLF (RFC 5322 2.1). Clients that send bare LF get it stored
		// canonical, so RFC822.SIZE, POP3's LIST and every FETCH agree with
		// the bytes sent out. A literal8 (RFC 3516) may hold binary parts
		// and is stored as given.
		msg = textline.CanonicalCRLF(msg)
	}
	if err := p.End(); err != nil {
		return err
	}
	if len(msg) == 0 {
		return no("", "Empty message")
	}
	if date.IsZero() {
		date = s.srv.now()
	}
	ctx, cancel := s.commandContext()
	defer cancel()
	info, err := s.acct.Append(ctx, name, msg, flags, date)
	if errors.Is(err, mailbox.ErrNoFolder) {
		// RFC 9051 6.3.12: TRYCREATE tells the client to CREATE first.
		return no(imap.CodeTryCreate, "No such mailbox")
	}
	if err != nil {
		return storeError(err)
	}
	if f, err := s.acct.Folder(name); err == nil {
		s.okCode = imap.Code("APPENDUID " + itoa(f.UIDValidity) + " " + itoa(info.UID))
	}
	s.okText = "APPEND completed"
	return nil
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
