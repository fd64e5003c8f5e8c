package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"posthorn/protocol/smtp"
	"posthorn/protocol/textline"
)

// maxReceived is the hop limit. RFC 5321 6.3: a count of Received lines is
// the simple loop detector, and "a rule of thumb" of at least 100 hops.
const maxReceived = 100

// drainFactor bounds how much content the server reads and throws away
// after the size limit was passed, to stay in sync with the client: up to
// this multiple of the limit, then it closes the connection instead.
const drainFactor = 2

func (s *session) cmdDATA(arg string) error {
	if strings.TrimSpace(arg) != "" {
		return smtp.R(smtp.CodeArgSyntax, smtp.EnhInvalidArgs, "DATA takes no arguments")
	}
	if s.state == stateMail {
		// RFC 5321 3.3: with no valid recipient, DATA gets 554 (or 503).
		return smtp.R(smtp.CodeFailed, smtp.EnhInvalidCommand, "No valid recipients")
	}
	// RFC 5321 4.2.2 / 3.3: 354, no enhanced code (RFC 2034 3 covers only
	// final replies and 354 is intermediate).
	s.reply(smtp.Reply{Code: smtp.CodeStartData, Text: "Start mail input; end with <CRLF>.<CRLF>"})
	if err := s.flush(); err != nil {
		return errCloseSession
	}

	limit := s.srv.limits.MessageSize
	var msg bytes.Buffer
	hdr := s.traceHeader()
	msg.Grow(len(hdr) + int(min(max(s.tx.params.Size, 64<<10), limit)) + 512)
	msg.WriteString(hdr)

	dr := textline.NewDataReader(s.r, limit, s.srv.limits.TextLine, drainFactor*limit+(1<<20))
	end := time.Now().Add(s.srv.limits.DataTimeout)
	buf := make([]byte, 32<<10)
	var err error
	for {
		s.conn.SetReadDeadline(s.guard.Cap(earliest(time.Now().Add(s.srv.limits.DataBlockTimeout), end)))
		var n int
		n, err = dr.Read(buf)
		msg.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if errors.Is(err, io.EOF) {
		return s.finishMessage(msg.Bytes(), len(hdr))
	}
	return s.contentFailed(err, limit)
}

// contentFailed answers a DATA or BDAT content error and ends the transaction.
func (s *session) contentFailed(err error, limit int64) error {
	tx := s.tx
	s.resetTransaction()
	if r, inSync := dataError(err, limit); r.Code != 0 {
		s.logTransaction(tx, 0, r)
		if !inSync {
			s.reply(r)
			return errCloseSession
		}
		return r
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r := smtp.R(smtp.CodeUnavailable, smtp.EnhBadConnection, s.srv.cfg.Hostname+" Timeout reading message, closing connection")
		s.logTransaction(tx, 0, r)
		s.reply(r)
		return errCloseSession
	}
	// The connection broke in the middle: nobody to answer.
	s.logTransaction(tx, 0, smtp.R(smtp.CodeUnavailable, smtp.EnhBadConnection, "connection lost during data: "+err.Error()))
	return errCloseSession
}

func (s *session) cmdBDAT(arg string) error {
	// RFC 3030 2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ].
	fields := strings.Fields(arg)
	var size int64
	var err error
	if len(fields) >= 1 && len(fields[0]) <= 19 {
		size, err = strconv.ParseInt(fields[0], 10, 64)
	} else {
		err = errors.New("missing size")
	}
	last := len(fields) == 2 && strings.EqualFold(fields[1], "LAST")
	if err != nil || size < 0 || len(fields) > 2 || (len(fields) == 2 && !last) || fields[0][0] == '+' {
		// The size is unknown, so the chunk cannot be skipped: close.
		s.reply(smtp.R(smtp.CodeArgSyntax, smtp.EnhInvalidArgs, "Syntax: BDAT size [LAST]"))
		return errCloseSession
	}
	limit := s.srv.limits.MessageSize

	// RFC 3030 2: on any failure the chunk is still read and discarded.
	refuse := func(r smtp.Reply) error {
		if size > drainFactor*limit+(1<<20) {
			s.reply(r)
			return errCloseSession
		}
		s.conn.SetReadDeadline(s.deadline(s.srv.limits.DataTimeout))
		if err := s.r.Discard(size); err != nil {
			return errCloseSession
		}
		return r
	}
	switch s.state {
	case stateConnected, stateReady:
		return refuse(s.sequenceError("BDAT"))
	case stateMail:
		return refuse(smtp.R(smtp.CodeFailed, smtp.EnhInvalidCommand, "No valid recipients"))
	}
	tx := s.tx
	if tx.bdatError != nil {
		// RFC 3030 2: chunks already in the pipeline after a failed one are
		// accepted and discarded; the transaction has failed.
		r := *tx.bdatError
		if last {
			s.resetTransaction()
		}
		return refuse(r)
	}
	if tx.checker == nil {
		hdr := s.traceHeader()
		tx.chunks = make([]byte, 0, len(hdr)+int(min(max(size, tx.params.Size), limit))+512)
		tx.chunks = append(tx.chunks, hdr...)
		tx.checker = textline.NewLineChecker(s.srv.limits.TextLine)
		tx.hdrLen = len(hdr)
		s.state = stateBDAT
	}
	if int64(len(tx.chunks)-tx.hdrLen)+size > limit {
		r := smtp.R(smtp.CodeExceededStore, smtp.EnhMsgTooBig, "Message exceeds fixed maximum message size of "+strconv.FormatInt(limit, 10)+" octets")
		s.logTransaction(tx, 0, r)
		tx.bdatError = &r
		tx.chunks = nil
		if last {
			s.resetTransaction()
		}
		return refuse(r)
	}
	start := len(tx.chunks)
	tx.chunks = append(tx.chunks, make([]byte, size)...)
	s.conn.SetReadDeadline(s.deadline(s.srv.limits.DataTimeout))
	if err := s.r.ReadFull(tx.chunks[start:]); err != nil {
		s.resetTransaction()
		return errCloseSession
	}
	tx.checker.Write(tx.chunks[start:])
	if !last {
		s.reply(smtp.R(smtp.CodeOK, smtp.EnhOther, strconv.FormatInt(size, 10)+" octets received"))
		return nil
	}
	if err := tx.checker.Err(); err != nil {
		return s.contentFailed(err, limit)
	}
	return s.finishMessage(tx.chunks, tx.hdrLen)
}

// finishMessage checks the complete message, hands it to the backend and
// answers. msg starts with our trace header of hdrLen octets.
func (s *session) finishMessage(msg []byte, hdrLen int) error {
	tx := s.tx
	defer s.resetTransaction()
	size := len(msg) - hdrLen
	// RFC 5321 6.3: too many Received lines means a mail loop.
	if n := countReceived(msg[hdrLen:]); n > maxReceived {
		r := smtp.R(smtp.CodeFailed, smtp.EnhLoop, "Too many hops ("+strconv.Itoa(n)+" Received lines), mail loop suspected")
		s.logTransaction(tx, size, r)
		return r
	}
	if s.srv.cfg.Submission {
		if add := s.submissionHeaders(msg[hdrLen:]); add != "" {
			full := make([]byte, 0, len(msg)+len(add))
			full = append(full, msg[:hdrLen]...)
			full = append(full, add...)
			msg = append(full, msg[hdrLen:]...)
		}
	}
	env := &Envelope{
		ID:       tx.id,
		Session:  s.info,
		From:     tx.from,
		Mail:     tx.params,
		Rcpts:    tx.rcpts,
		Received: tx.start,
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.srv.limits.DataTimeout)
	defer cancel()
	err := s.srv.cfg.Backend.Deliver(ctx, env, msg)
	var r smtp.Reply
	switch {
	case err == nil:
		// RFC 5321 4.1.1.4: the 250 takes responsibility for the message; the
		// backend has made it durable before returning.
		r = smtp.R(smtp.CodeOK, smtp.EnhOther, "OK queued as "+tx.id)
	case errors.As(err, &r):
	default:
		s.srv.log.Error("smtp delivery failed", "queue_id", tx.id, "err", err)
		r = smtp.R(smtp.CodeLocalError, smtp.EnhSystemOther, "Local error in processing, try again later")
	}
	s.logTransaction(tx, size, r)
	if r.Code != smtp.CodeOK {
		return r
	}
	s.reply(r)
	return nil
}

// traceHeader builds the Received line for the transaction (RFC 5321 4.4),
// folded to stay well under 78 characters a line (RFC 5322 2.1.1).
func (s *session) traceHeader() string {
	tx := s.tx
	var b strings.Builder
	b.WriteString("Received: from ")
	b.WriteString(s.info.Helo)
	b.WriteString(" (")
	b.WriteString(addressLiteral(s.info.RemoteAddr))
	b.WriteString(")\r\n\tby ")
	b.WriteString(s.srv.cfg.Hostname)
	b.WriteString(" (Posthorn) with ")
	b.WriteString(s.withProtocol())
	b.WriteString(" id ")
	b.WriteString(tx.id)
	if st := s.info.TLS; st != nil {
		b.WriteString("\r\n\t(")
		b.WriteString(strings.ReplaceAll(tls.VersionName(st.Version), " ", ""))
		b.WriteString(" ")
		b.WriteString(tls.CipherSuiteName(st.CipherSuite))
		b.WriteString(")")
	}
	// Only name the recipient when there is one: with several, naming them
	// would disclose the Bcc recipients to each other (RFC 5321 7.2).
	if len(tx.rcpts) == 1 {
		b.WriteString("\r\n\tfor <")
		b.WriteString(tx.rcpts[0].Path.String())
		b.WriteString(">")
	}
	b.WriteString(";\r\n\t")
	b.WriteString(tx.start.Format(time.RFC1123Z))
	b.WriteString("\r\n")
	return b.String()
}

// withProtocol names the protocol for the Received "with" clause: RFC 3848
// (ESMTPS, ESMTPA, ESMTPSA) and RFC 6531 4.3 (UTF8SMTP variants).
func (s *session) withProtocol() string {
	if !s.info.ESMTP {
		return "SMTP"
	}
	p := "ESMTP"
	if s.tx.params.SMTPUTF8 {
		p = "UTF8SMTP"
	}
	if s.info.TLS != nil {
		p += "S"
	}
	if s.info.Account != "" {
		p += "A"
	}
	return p
}

// logTransaction writes the one log line of a transaction.
func (s *session) logTransaction(tx *transaction, size int, r smtp.Reply) {
	if tx == nil {
		return
	}
	rcpts := make([]string, len(tx.rcpts))
	for i, rc := range tx.rcpts {
		rcpts[i] = rc.Path.String()
	}
	s.srv.log.Info("smtp transaction",
		"queue_id", tx.id,
		"listener", s.info.Listener,
		"remote", s.info.RemoteAddr.Addr().String(),
		"helo", s.info.Helo,
		"tls", s.info.TLS != nil,
		"from", tx.from.String(),
		"rcpts", rcpts,
		"size", size,
		"result", r.Error(),
		"duration", s.srv.now().Sub(tx.start).Round(time.Millisecond).String(),
	)
}

// countReceived counts the Received fields in the header section of msg.
func countReceived(msg []byte) int {
	n := 0
	forEachHeaderName(msg, func(name []byte) {
		if strings.EqualFold(string(name), "received") {
			n++
		}
	})
	return n
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// addressLiteral renders an address as RFC 5321 4.1.3 address-literal:
// "[192.0.2.1]" or "[IPv6:2001:db8::1]".
func addressLiteral(ap netip.AddrPort) string {
	a := ap.Addr()
	if a.Is4() {
		return "[" + a.String() + "]"
	}
	return "[IPv6:" + a.String() + "]"
}

// submissionHeaders returns the Date and Message-ID fields a submitted
// message lacks. RFC 6409 8.2, 8.3: the MSA may add them; RFC 5322 3.6
// requires Date and recommends Message-ID.
func (s *session) submissionHeaders(content []byte) string {
	hasDate, hasID := false, false
	forEachHeaderName(content, func(name []byte) {
		switch {
		case strings.EqualFold(string(name), "date"):
			hasDate = true
		case strings.EqualFold(string(name), "message-id"):
			hasID = true
		}
	})
	var b strings.Builder
	if !hasDate {
		b.WriteString("Date: " + s.tx.start.Format(time.RFC1123Z) + "\r\n")
	}
	if !hasID {
		b.WriteString("Message-ID: <" + strings.ToLower(s.tx.id) + "@" + s.srv.cfg.Hostname + ">\r\n")
	}
	return b.String()
}

// forEachHeaderName calls fn with the name of each field of the header
// section of msg (continuation lines skipped).
func forEachHeaderName(msg []byte, fn func(name []byte)) {
	for len(msg) > 0 {
		i := bytes.IndexByte(msg, '\n')
		var line []byte
		if i < 0 {
			line, msg = msg, nil
		} else {
			line, msg = msg[:i], msg[i+1:]
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return // end of the header section
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if j := bytes.IndexByte(line, ':'); j > 0 {
			fn(bytes.TrimRight(line[:j], " \t"))
		}
	}
}
