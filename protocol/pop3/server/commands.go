package server

import (
	"errors"
	"strconv"

	"posthorn/protocol/pop3"
	"posthorn/protocol/textline"
)

// Replies shared by several commands.
var (
	errNoSuchMessage = pop3.Err("", "No such message")
	errGone          = pop3.Err("", "Message was removed by another session")
	errReadFailed    = pop3.Err(pop3.CodeSysTemp, "Cannot read the message, try again later")
)

// noArgs checks that a command has no arguments (RFC 1939 5: "Arguments: none").
func noArgs(verb, args string) error {
	if args != "" {
		return pop3.Err("", verb+" takes no arguments")
	}
	return nil
}

// message resolves a message-number argument to its index in the snapshot.
// RFC 1939 5: the number "may NOT refer to a message marked as deleted".
func (s *session) message(arg string) (int, error) {
	n, ok := pop3.ParseMsgNumber(arg)
	if !ok {
		return 0, pop3.Err("", "Invalid message number")
	}
	if n > len(s.msgs) {
		// RFC 1939 5 (LIST): "-ERR no such message, only 2 messages in maildrop".
		return 0, pop3.Err("", "No such message, only "+strconv.Itoa(len(s.msgs))+" messages in maildrop")
	}
	if s.deleted != nil && s.deleted[n-1] {
		return 0, pop3.Err("", "Message "+arg+" already deleted")
	}
	return n - 1, nil
}

// dropListing is the text of "+OK n messages (m octets)" (RFC 1939 5 LIST,
// RSET; 7 PASS).
func (s *session) dropListing() string {
	return strconv.Itoa(s.liveCount) + " messages (" + strconv.FormatInt(s.liveSize, 10) + " octets)"
}

func (s *session) cmdSTAT(args string) error {
	if err := noArgs("STAT", args); err != nil {
		return err
	}
	// RFC 1939 5: "+OK" SP count SP size, deleted messages not counted,
	// and nothing after the size.
	s.buf = append(s.buf[:0], "+OK "...)
	s.buf = strconv.AppendInt(s.buf, int64(s.liveCount), 10)
	s.buf = append(s.buf, ' ')
	s.buf = strconv.AppendInt(s.buf, s.liveSize, 10)
	s.buf = append(s.buf, "\r\n"...)
	s.w.Write(s.buf)
	return nil
}

func (s *session) cmdLIST(args string) error {
	return s.listing(args, "LIST", func(b []byte, i int) []byte {
		// RFC 1939 5: a scan listing is the number, SP and the exact size.
		return strconv.AppendInt(b, s.msgs[i].Size, 10)
	}, s.dropListing())
}

func (s *session) cmdUIDL(args string) error {
	return s.listing(args, "UIDL", func(b []byte, i int) []byte {
		// RFC 1939 7: a unique-id listing is the number, SP and the id.
		return pop3.AppendUniqueID(b, s.uidValidity, s.msgs[i].UID)
	}, "Unique-ID listing follows")
}

// listing answers LIST and UIDL: for one message a single line, without an
// argument a multi-line response over every message not marked deleted.
func (s *session) listing(args, verb string, item func([]byte, int) []byte, heading string) error {
	fields := pop3.Fields(args)
	switch len(fields) {
	case 0:
		s.reply(pop3.OK(heading))
		for i := range s.msgs {
			if s.deleted != nil && s.deleted[i] {
				continue // RFC 1939 5: "messages marked as deleted are not listed"
			}
			s.buf = strconv.AppendInt(s.buf[:0], int64(i+1), 10)
			s.buf = append(s.buf, ' ')
			s.buf = item(s.buf, i)
			s.writeLine(s.buf)
		}
		s.endMultiline()
		return nil
	case 1:
		i, err := s.message(fields[0])
		if err != nil {
			return err
		}
		s.buf = append(s.buf[:0], "+OK "...)
		s.buf = strconv.AppendInt(s.buf, int64(i+1), 10)
		s.buf = append(s.buf, ' ')
		s.buf = item(s.buf, i)
		s.writeLine(s.buf)
		return nil
	}
	return pop3.Err("", "Syntax: "+verb+" [msg]")
}

func (s *session) cmdRETR(args string) error {
	fields := pop3.Fields(args)
	if len(fields) != 1 {
		return pop3.Err("", "Syntax: RETR msg")
	}
	i, err := s.message(fields[0])
	if err != nil {
		return err
	}
	raw, err := s.read(i)
	if err != nil {
		return err
	}
	// RFC 1939 5 (RETR example): "+OK 120 octets", the size as in LIST.
	s.buf = append(s.buf[:0], "+OK "...)
	s.buf = strconv.AppendInt(s.buf, s.msgs[i].Size, 10)
	s.buf = append(s.buf, " octets\r\n"...)
	s.w.Write(s.buf)
	return s.sendMessage(raw)
}

func (s *session) cmdTOP(args string) error {
	fields := pop3.Fields(args)
	if len(fields) != 2 {
		return pop3.Err("", "Syntax: TOP msg n")
	}
	i, err := s.message(fields[0])
	if err != nil {
		return err
	}
	// RFC 1939 7: "a non-negative number of lines (required)".
	n, ok := pop3.ParseLineCount(fields[1])
	if !ok {
		return pop3.Err("", "Invalid number of lines")
	}
	raw, err := s.read(i)
	if err != nil {
		return err
	}
	// RFC 1939 7: the header, the blank line, and n lines of the body;
	// the whole message when it has fewer.
	s.reply(pop3.OK("Top of message follows"))
	return s.sendMessage(raw[:pop3.TopLength(raw, n)])
}

// read fetches message i from the backend.
func (s *session) read(i int) ([]byte, error) {
	ctx, cancel := s.storeContext()
	defer cancel()
	raw, err := s.drop.Read(ctx, s.msgs[i].UID)
	switch {
	case errors.Is(err, ErrNoMessage):
		// Expunged by IMAP since the snapshot. RFC 1939 has no reply for
		// this; a plain -ERR, as for any message the client cannot have.
		return nil, errGone
	case err != nil:
		s.srv.log.Error("pop3 read failed", "listener", s.srv.cfg.Listener, "account", s.account, "uid", s.msgs[i].UID, "err", err)
		return nil, errReadFailed
	}
	return raw, nil
}

// sendMessage writes raw as the body of a multi-line response: byte-
// stuffed, every line ending in CRLF, then the termination line (RFC 1939
// 3). It streams from raw into the session's buffered writer; long runs
// go straight to the connection.
func (s *session) sendMessage(raw []byte) error {
	dw := textline.NewDotWriter(s.w)
	dw.Write(raw)
	if err := dw.Close(); err != nil {
		return errCloseSession // the client is gone
	}
	return nil
}

func (s *session) cmdDELE(args string) error {
	fields := pop3.Fields(args)
	if len(fields) != 1 {
		return pop3.Err("", "Syntax: DELE msg")
	}
	i, err := s.message(fields[0])
	if err != nil {
		return err
	}
	// RFC 1939 5: DELE only marks; the removal happens in UPDATE.
	if s.deleted == nil {
		s.deleted = make([]bool, len(s.msgs))
	}
	s.deleted[i] = true
	s.liveCount--
	s.liveSize -= s.msgs[i].Size
	s.reply(pop3.OK("Message " + fields[0] + " deleted"))
	return nil
}

func (s *session) cmdNOOP(args string) error {
	if err := noArgs("NOOP", args); err != nil {
		return err
	}
	s.reply(pop3.OK(""))
	return nil
}

func (s *session) cmdRSET(args string) error {
	if err := noArgs("RSET", args); err != nil {
		return err
	}
	// RFC 1939 5: unmark every message marked as deleted.
	s.deleted = nil
	s.countLive()
	s.reply(pop3.OK("Maildrop has " + s.dropListing()))
	return nil
}

// countLive recomputes the drop listing from the deletion marks.
func (s *session) countLive() {
	s.liveCount, s.liveSize = 0, 0
	for i, m := range s.msgs {
		if s.deleted == nil || !s.deleted[i] {
			s.liveCount++
			s.liveSize += m.Size
		}
	}
}

func (s *session) cmdQUIT(args string) error {
	if err := noArgs("QUIT", args); err != nil {
		return err
	}
	signOff := s.srv.cfg.Hostname + " Posthorn POP3 server signing off"
	if s.state == stateAuthorization {
		// RFC 1939 4: QUIT in AUTHORIZATION ends the session without UPDATE.
		s.reply(pop3.OK(signOff))
		return errCloseSession
	}
	// RFC 1939 6: QUIT in TRANSACTION enters UPDATE: remove the messages
	// marked as deleted, then release the lock and close.
	s.state = stateUpdate
	var uids []uint32
	for i, m := range s.msgs {
		if s.deleted != nil && s.deleted[i] {
			uids = append(uids, m.UID)
		}
	}
	var err error
	if len(uids) > 0 {
		ctx, cancel := s.storeContext()
		err = s.drop.Delete(ctx, uids)
		cancel()
	}
	// The lock goes before the reply, so a client that reconnects the
	// moment it reads +OK finds the maildrop free.
	account := s.account
	s.release()
	if err != nil {
		// RFC 1939 6: "-ERR some deleted messages not removed"; the
		// store's removal is one transaction, so in fact none were.
		s.srv.log.Error("pop3 update failed", "listener", s.srv.cfg.Listener, "account", account, "messages", len(uids), "err", err)
		s.reply(pop3.Err(pop3.CodeSysTemp, "Some deleted messages not removed"))
		return errCloseSession
	}
	s.srv.log.Info("pop3 logout", "listener", s.srv.cfg.Listener, "account", account, "deleted", len(uids))
	if s.liveCount == 0 {
		signOff += " (maildrop empty)" // RFC 1939 6 example
	} else {
		signOff += " (" + strconv.Itoa(s.liveCount) + " messages left)"
	}
	// The removal is durable (Maildrop.Delete) before this +OK.
	s.reply(pop3.OK(signOff))
	return errCloseSession
}
