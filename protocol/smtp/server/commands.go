package server

import (
	"context"
	"crypto/tls"
	"errors"
	"strconv"
	"strings"
	"time"

	"posthorn/protocol/netserve"
	"posthorn/protocol/smtp"
	"posthorn/protocol/textline"
)

func (s *session) cmdEHLO(arg string) error { return s.hello(arg, true) }
func (s *session) cmdHELO(arg string) error { return s.hello(arg, false) }

// hello answers EHLO and HELO (RFC 5321 4.1.1.1). Either resets the
// transaction, as RSET does (RFC 5321 4.1.4).
func (s *session) hello(arg string, esmtp bool) error {
	domain, err := smtp.ParseDomain(strings.TrimSpace(arg))
	if err != nil {
		return err
	}
	s.resetTransaction()
	s.state = stateReady
	s.info.Helo = domain
	s.info.ESMTP = esmtp
	greeting := s.srv.cfg.Hostname + " Hello " + domain + " [" + s.info.RemoteAddr.Addr().String() + "]"
	if !esmtp {
		s.reply(smtp.Reply{Code: smtp.CodeOK, Text: greeting})
		return nil
	}
	lines := []string{
		greeting,
		"PIPELINING", // RFC 2920
		"SIZE " + strconv.FormatInt(s.srv.limits.MessageSize, 10), // RFC 1870
		"8BITMIME",            // RFC 6152
		"ENHANCEDSTATUSCODES", // RFC 2034
		"SMTPUTF8",            // RFC 6531
		"CHUNKING",            // RFC 3030
		"DSN",                 // RFC 3461
	}
	if s.srv.cfg.TLS != nil && s.info.TLS == nil {
		lines = append(lines, "STARTTLS") // RFC 3207
	}
	if s.authOffered() && s.info.Account == "" {
		lines = append(lines, "AUTH "+strings.Join(s.authMechanisms(), " ")) // RFC 4954 3
	}
	lines = append(lines, "HELP")
	s.reply(smtp.Reply{Code: smtp.CodeOK, Text: strings.Join(lines, "\n")})
	return nil
}

func (s *session) cmdMAIL(arg string) error {
	if len(arg) < 5 || !strings.EqualFold(arg[:5], "FROM:") {
		return smtp.R(smtp.CodeArgSyntax, smtp.EnhInvalidArgs, "Syntax: MAIL FROM:<address>")
	}
	from, params, err := smtp.ParseMail(arg)
	if err != nil {
		return err
	}
	// RFC 1870 6.1: a declared size over the limit is refused at MAIL with 552.
	if params.Size > s.srv.limits.MessageSize {
		return smtp.R(smtp.CodeExceededStore, smtp.EnhMsgTooBig, "Message size exceeds fixed maximum message size")
	}
	// BINARYMIME (RFC 3030 3) is not advertised, so it may not be used.
	if params.Body == "BINARYMIME" {
		return smtp.R(smtp.CodeParamsUnknown, smtp.EnhInvalidArgs, "BODY=BINARYMIME not supported")
	}
	// RFC 4954 5: an AUTH= parameter is not trusted from anyone; the
	// authenticated identity is in SessionInfo.Account.
	params.Auth = ""
	ctx, cancel := s.commandContext()
	defer cancel()
	if err := s.srv.cfg.Backend.Mail(ctx, &s.info, from, params); err != nil {
		return err
	}
	s.tx = &transaction{
		id:     s.srv.newID(),
		from:   from,
		params: params,
		start:  s.srv.now(),
	}
	s.state = stateMail
	s.reply(smtp.R(smtp.CodeOK, smtp.EnhSenderValid, "Sender OK"))
	return nil
}

func (s *session) cmdRCPT(arg string) error {
	if len(arg) < 3 || !strings.EqualFold(arg[:3], "TO:") {
		return smtp.R(smtp.CodeArgSyntax, smtp.EnhInvalidArgs, "Syntax: RCPT TO:<address>")
	}
	// RFC 5321 4.5.3.1.10: too many recipients is 452 4.5.3, and the client
	// sends the rest in another transaction. It is not counted as an error.
	if len(s.tx.rcpts) >= s.srv.limits.Recipients {
		s.reply(smtp.R(smtp.CodeInsufficient, smtp.EnhTooManyRcpts, "Too many recipients"))
		return nil
	}
	to, params, err := smtp.ParseRcpt(arg, s.tx.params.SMTPUTF8)
	if err != nil {
		return err
	}
	ctx, cancel := s.commandContext()
	defer cancel()
	if err := s.srv.cfg.Backend.Rcpt(ctx, &s.info, s.tx.from, to); err != nil {
		return err
	}
	s.tx.rcpts = append(s.tx.rcpts, RcptTo{Path: to, Params: params})
	s.state = stateRcpt
	s.reply(smtp.R(smtp.CodeOK, smtp.EnhDestValid, "Recipient OK"))
	return nil
}

func (s *session) cmdRSET(arg string) error {
	// RFC 5321 4.1.1.5: RSET takes no argument.
	if strings.TrimSpace(arg) != "" {
		return smtp.R(smtp.CodeArgSyntax, smtp.EnhInvalidArgs, "RSET takes no arguments")
	}
	s.resetTransaction()
	s.reply(smtp.R(smtp.CodeOK, smtp.EnhOther, "OK"))
	return nil
}

func (s *session) cmdNOOP(string) error {
	// RFC 5321 4.1.1.9: the argument, if any, is ignored.
	s.reply(smtp.R(smtp.CodeOK, smtp.EnhOther, "OK"))
	return nil
}

func (s *session) cmdQUIT(string) error {
	// RFC 5321 4.1.1.10: 221, then close. An open transaction is abandoned.
	s.reply(smtp.R(smtp.CodeClosing, smtp.EnhOther, s.srv.cfg.Hostname+" Bye"))
	return errCloseSession
}

func (s *session) cmdVRFY(arg string) error {
	if strings.TrimSpace(arg) == "" {
		return smtp.R(smtp.CodeArgSyntax, smtp.EnhInvalidArgs, "Syntax: VRFY address")
	}
	// RFC 5321 3.5.3: 252 says neither yes nor no, so VRFY cannot be used to
	// harvest addresses; the same answer for every argument.
	s.reply(smtp.R(smtp.CodeCannotVRFY, smtp.EnhProtoOther, "Cannot VRFY user, but will accept message and attempt delivery"))
	return nil
}

func (s *session) cmdEXPN(string) error {
	// RFC 5321 3.5.2 and 7.3: EXPN would reveal list members; it is disabled.
	return smtp.R(smtp.CodeNotImplemented, smtp.EnhInvalidCommand, "EXPN not available")
}

func (s *session) cmdHELP(string) error {
	// RFC 5321 4.1.1.8.
	s.reply(smtp.R(smtp.CodeHelp, smtp.EnhOther,
		"Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS\nSee RFC 5321"))
	return nil
}

func (s *session) cmdSTARTTLS(arg string) error {
	if s.info.TLS != nil {
		return smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "TLS already active")
	}
	if s.srv.cfg.TLS == nil {
		return smtp.R(smtp.CodeNotImplemented, smtp.EnhInvalidCommand, "STARTTLS not available")
	}
	if strings.TrimSpace(arg) != "" {
		return smtp.R(smtp.CodeArgSyntax, smtp.EnhInvalidArgs, "STARTTLS takes no arguments")
	}
	injected := s.r.Buffered()
	s.reply(smtp.R(smtp.CodeReady, smtp.EnhOther, "Ready to start TLS"))
	if err := s.flush(); err != nil {
		return errCloseSession
	}
	raw := s.conn
	tc := tls.Server(raw, s.srv.cfg.TLS)
	tc.SetDeadline(time.Now().Add(s.srv.limits.TLSHandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		s.srv.log.Info("smtp starttls handshake failed", "listener", s.info.Listener, "remote", s.info.RemoteAddr.String(), "err", err)
		return errCloseSession
	}
	st := tc.ConnectionState()
	s.conn = tc
	s.guard.SetConn(tc)
	rw := netserve.Trace(tc, s.srv.cfg.Trace)
	// RFC 3207 4.2: discard any knowledge obtained from the client before the
	// handshake, and anything it sent after STARTTLS before the handshake
	// (CVE-2011-0411: commands injected in the same packet).
	s.r.Reset(rw)
	s.w.Reset(rw)
	if injected > 0 {
		s.srv.log.Warn("smtp starttls: discarded plaintext sent after STARTTLS", "listener", s.info.Listener, "remote", s.info.RemoteAddr.String(), "bytes", injected)
	}
	s.tx = nil
	s.state = stateConnected
	s.info.Helo = ""
	s.info.ESMTP = false
	s.info.Account = ""
	s.info.TLS = &st
	return nil
}

// commandContext bounds backend calls of one command.
func (s *session) commandContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.srv.limits.CommandTimeout)
}

// dataError maps a content-reader error to the reply, after the content was
// read to its end (or given up on).
func dataError(err error, limit int64) (smtp.Reply, bool) {
	switch {
	case errors.Is(err, textline.ErrTooLarge):
		// RFC 5321 4.5.3.1.10 and RFC 1870 6.2: 552 after the data.
		return smtp.R(smtp.CodeExceededStore, smtp.EnhMsgTooBig, "Message exceeds fixed maximum message size of "+strconv.FormatInt(limit, 10)+" octets"), true
	case errors.Is(err, textline.ErrBareLineEnding):
		// RFC 5321 2.3.8: lines end in CRLF only. Rejecting (rather than
		// repairing) keeps two parsers from disagreeing about where the
		// message ends (SMTP smuggling, CVE-2023-51764).
		return smtp.R(smtp.CodeFailed, smtp.EnhSyntaxError, "Bare CR or LF in message; lines must end in CRLF (RFC 5321 2.3.8)"), true
	case errors.Is(err, textline.ErrTextLineTooLong):
		// RFC 5321 4.5.3.1.6: a text line is at most 1000 octets with CRLF.
		return smtp.R(smtp.CodeFailed, smtp.EnhSyntaxError, "Line longer than 1000 octets in message (RFC 5321 4.5.3.1.6)"), true
	case errors.Is(err, textline.ErrDrainLimit):
		return smtp.R(smtp.CodeExceededStore, smtp.EnhMsgTooBig, "Message far exceeds the size limit, closing connection"), false
	}
	return smtp.Reply{}, false
}
