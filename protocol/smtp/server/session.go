package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"time"

	"posthorn/protocol/netserve"
	"posthorn/protocol/smtp"
	"posthorn/protocol/textline"
)

// state is where a session is in the SMTP dialogue (RFC 5321 4.1.4).
type state uint8

const (
	stateConnected state = iota // greeting sent, no EHLO/HELO yet
	stateReady                  // EHLO/HELO done, no transaction
	stateMail                   // MAIL accepted, no recipient yet
	stateRcpt                   // at least one recipient accepted
	stateBDAT                   // inside a BDAT transfer that has not seen LAST
)

func (st state) String() string {
	switch st {
	case stateConnected:
		return "connected"
	case stateReady:
		return "ready"
	case stateMail:
		return "mail"
	case stateRcpt:
		return "rcpt"
	case stateBDAT:
		return "bdat"
	}
	return fmt.Sprintf("state(%d)", uint8(st))
}

// states is a set of states.
type states uint8

func setOf(sts ...state) states {
	var s states
	for _, st := range sts {
		s |= 1 << st
	}
	return s
}

func (s states) has(st state) bool { return s&(1<<st) != 0 }

var anyState = setOf(stateConnected, stateReady, stateMail, stateRcpt, stateBDAT)

// command is one row of the command table.
type command struct {
	handle  func(s *session, arg string) error
	allowed states
	// badSequence is the reply when the command comes in a state it is not
	// allowed in; zero means 503 5.5.1.
	badSequence smtp.Reply
}

// commandTable maps each verb to its handler and the states it is allowed in.
// It is the one place that says which command may come when.
var commandTable = map[string]command{
	"EHLO":     {handle: (*session).cmdEHLO, allowed: anyState},
	"HELO":     {handle: (*session).cmdHELO, allowed: anyState},
	"MAIL":     {handle: (*session).cmdMAIL, allowed: setOf(stateReady)},
	"RCPT":     {handle: (*session).cmdRCPT, allowed: setOf(stateMail, stateRcpt)},
	"DATA":     {handle: (*session).cmdDATA, allowed: setOf(stateMail, stateRcpt)},
	"BDAT":     {handle: (*session).cmdBDAT, allowed: anyState}, // checks the state itself: the chunk must be read in any case
	"RSET":     {handle: (*session).cmdRSET, allowed: anyState},
	"NOOP":     {handle: (*session).cmdNOOP, allowed: anyState},
	"QUIT":     {handle: (*session).cmdQUIT, allowed: anyState},
	"VRFY":     {handle: (*session).cmdVRFY, allowed: anyState},
	"EXPN":     {handle: (*session).cmdEXPN, allowed: anyState},
	"HELP":     {handle: (*session).cmdHELP, allowed: anyState},
	"STARTTLS": {handle: (*session).cmdSTARTTLS, allowed: setOf(stateConnected, stateReady)},
	"AUTH":     {handle: (*session).cmdAUTH, allowed: setOf(stateReady)},
}

// needsAuth are the commands that submission refuses before AUTH.
// RFC 4954 6: 530 for any command other than AUTH, EHLO, HELO, NOOP, RSET
// or QUIT when policy requires authentication.
var needsAuth = map[string]bool{"MAIL": true, "RCPT": true, "DATA": true, "BDAT": true, "VRFY": true}

// errCloseSession ends the session after the reply already written.
var errCloseSession = errors.New("close session")

// session is one SMTP connection.
type session struct {
	srv    *Server
	conn   net.Conn
	r      *textline.Reader
	w      *bufio.Writer
	info   SessionInfo
	state  state
	errors int // error replies so far (RFC 5321 4.1.4 does not bound them; we do)
	first  bool
	// authFailures counts failed AUTH commands of this session.
	authFailures int

	// The transaction (reset by RSET, EHLO, HELO, and after each message).
	tx *transaction

	// guard is busy while a command other than waiting for the next line
	// is running (shutdown coordination).
	guard *netserve.Guard
}

// transaction is the state from MAIL to the end of DATA or BDAT LAST.
type transaction struct {
	id     string
	from   smtp.Path
	params smtp.MailParams
	rcpts  []RcptTo
	start  time.Time
	// BDAT (RFC 3030): content so far, and whether a chunk failed.
	chunks    []byte
	hdrLen    int // length of our trace header at the start of chunks
	checker   *textline.LineChecker
	bdatError *smtp.Reply
}

func newSession(srv *Server, conn net.Conn, remote netip.AddrPort) *session {
	s := &session{srv: srv, conn: conn, first: true, guard: netserve.NewGuard(conn)}
	rw := netserve.Trace(conn, srv.cfg.Trace)
	s.r = textline.NewReader(rw, 8192)
	s.w = bufio.NewWriterSize(rw, 4096)
	s.info = SessionInfo{Listener: srv.cfg.Listener, RemoteAddr: remote}
	return s
}

func (s *session) run(ctx context.Context) {
	defer s.conn.Close()
	defer func() {
		if v := recover(); v != nil {
			// A bug must not take the process down (STYLE: recover only at the
			// connection edge). The client gets 421 and may retry.
			s.srv.log.Error("smtp session panic", "remote", s.info.RemoteAddr.String(), "panic", v, "stack", string(debug.Stack()))
			s.reply(smtp.R(smtp.CodeUnavailable, smtp.EnhSystemOther, s.srv.cfg.Hostname+" Internal error, closing connection"))
			s.flush()
		}
	}()
	if tc, ok := s.conn.(*tls.Conn); ok {
		// Implicit TLS (RFC 8314 3.3): the handshake comes before the
		// greeting; done here so that SessionInfo knows, and in the
		// session's goroutine so that a slow client cannot stall Accept.
		tc.SetDeadline(time.Now().Add(s.srv.limits.TLSHandshakeTimeout))
		if err := tc.Handshake(); err != nil {
			s.srv.log.Info("smtp tls handshake failed", "listener", s.info.Listener, "remote", s.info.RemoteAddr.String(), "err", err)
			return
		}
		st := tc.ConnectionState()
		s.info.TLS = &st
	}
	// RFC 5321 4.2: the greeting. No ESMTP keyword is required, but it is customary.
	s.reply(smtp.Reply{Code: smtp.CodeReady, Text: s.srv.cfg.Hostname + " ESMTP Posthorn"})
	s.flush()
	for {
		// A session waits "idle" only outside a transaction: at shutdown an
		// idle one is told 421 at once, while one between MAIL and the end of
		// its data counts as busy and may finish the transaction within the
		// shutdown grace.
		if s.state >= stateMail {
			s.guard.Busy()
		} else if s.guard.Idle() {
			s.shutdownReply()
			return
		}
		s.conn.SetDeadline(s.deadline(s.srv.limits.CommandTimeout))
		line, err := s.r.ReadLine(s.lineLimit())
		if s.guard.Busy() {
			if err == nil && s.state == stateConnected {
				// Nothing to finish for a client that has not begun.
				s.shutdownReply()
				return
			}
			if err != nil {
				s.shutdownReply()
				return
			}
		}
		if err != nil {
			s.readFailed(err)
			return
		}
		if err := s.dispatch(ctx, line); err != nil {
			s.flush()
			return
		}
		// RFC 2920 3.1: replies to a pipelined group may be buffered; send them
		// once no further complete command is waiting.
		if s.r.Buffered() == 0 {
			if err := s.flush(); err != nil {
				return
			}
		}
	}
}

// lineLimit is the longest command line read: the RFC 5321 limit, or the
// RFC 4954 AUTH limit where AUTH is offered (the verb decides afterwards).
func (s *session) lineLimit() int {
	if s.authOffered() {
		return max(authLineLimit, s.srv.limits.CommandLine)
	}
	return s.srv.limits.CommandLine
}

// deadline is now+d, or the end of the shutdown grace if that is sooner.
func (s *session) deadline(d time.Duration) time.Time {
	return s.guard.Cap(time.Now().Add(d))
}

func (s *session) shutdownReply() {
	s.reply(smtp.R(smtp.CodeUnavailable, smtp.EnhSystemNotAccept, s.srv.cfg.Hostname+" Service shutting down, try again later"))
	s.flush()
}

// readFailed answers a failed command read where an answer is still useful.
func (s *session) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, textline.ErrLineTooLong):
		// RFC 5321 4.5.3.1.4 and 4.2.2: 500 "line too long". The rest of the
		// line is not read, so the session cannot stay in sync: close.
		s.reply(smtp.R(smtp.CodeSyntax, smtp.EnhSyntaxError, "Line too long"))
	case errors.As(err, &ne) && ne.Timeout():
		// RFC 5321 4.5.3.2.7 and 3.8: on timeout the server closes with 421.
		s.reply(smtp.R(smtp.CodeUnavailable, smtp.EnhBadConnection, s.srv.cfg.Hostname+" Timeout waiting for command, closing connection"))
		s.srv.log.Info("smtp session timeout", "listener", s.info.Listener, "remote", s.info.RemoteAddr.String(), "state", s.state.String())
	default:
		return // EOF or reset: nobody to tell
	}
	s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	s.flush()
}

// dispatch runs one command line. A non-nil error closes the session.
func (s *session) dispatch(ctx context.Context, line []byte) error {
	first := s.first
	s.first = false
	cmd, err := smtp.ParseCommand(line)
	if err != nil {
		return s.fail(err, first)
	}
	if len(line) > s.srv.limits.CommandLine && cmd.Verb != "AUTH" {
		// Read whole because AUTH lines may be longer (RFC 4954 4), so the
		// session is still in sync: refuse the command, keep the session.
		return s.fail(smtp.R(smtp.CodeSyntax, smtp.EnhSyntaxError, "Line too long"), first)
	}
	c, ok := commandTable[cmd.Verb]
	if !ok {
		// RFC 5321 4.2.4: 500 for an unrecognised command.
		return s.fail(smtp.R(smtp.CodeSyntax, smtp.EnhInvalidCommand, "Command not recognized"), first)
	}
	if s.srv.cfg.Submission && s.info.Account == "" && needsAuth[cmd.Verb] && s.state != stateConnected {
		return s.fail(smtp.R(smtp.CodeAuthRequired, smtp.EnhSecurityOther, "Authentication required"), false)
	}
	if !c.allowed.has(s.state) {
		return s.fail(s.sequenceError(cmd.Verb), false)
	}
	if err := c.handle(s, cmd.Arg); err != nil {
		if errors.Is(err, errCloseSession) {
			return err
		}
		return s.fail(err, false)
	}
	return nil
}

// sequenceError is the reply for a command in the wrong state (RFC 5321 4.1.4, 3.3).
func (s *session) sequenceError(verb string) smtp.Reply {
	switch {
	case s.state == stateBDAT:
		// RFC 3030 2: once BDAT has begun, only BDAT, RSET and QUIT continue.
		return smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "BDAT transfer in progress, send BDAT or RSET")
	case s.state == stateConnected && verb != "STARTTLS":
		return smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "Send EHLO or HELO first")
	case verb == "MAIL":
		return smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "Sender already given, send RSET first")
	case verb == "RCPT" || verb == "DATA" || verb == "BDAT":
		return smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "Send MAIL first")
	case verb == "STARTTLS":
		return smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "STARTTLS not allowed inside a transaction")
	}
	return smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "Bad sequence of commands")
}

// fail sends an error reply and applies the error limits. It returns
// errCloseSession when the session must end.
func (s *session) fail(err error, firstCommand bool) error {
	var r smtp.Reply
	if !errors.As(err, &r) {
		s.srv.log.Error("smtp command failed", "listener", s.info.Listener, "remote", s.info.RemoteAddr.String(), "err", err)
		r = smtp.R(smtp.CodeLocalError, smtp.EnhSystemOther, "Local error, try again later")
	}
	if r.Code >= 500 || r.Code == smtp.CodeInsufficient {
		s.errors++
	}
	if s.errors >= s.srv.limits.HardErrors {
		// As Postfix's smtpd_hard_error_limit: a client that keeps failing is
		// probing or broken; stop spending time on it.
		s.reply(r)
		s.reply(smtp.R(smtp.CodeUnavailable, smtp.EnhSecurityOther, s.srv.cfg.Hostname+" Too many errors, closing connection"))
		return errCloseSession
	}
	if s.errors > s.srv.limits.SoftErrors {
		s.flush()
		time.Sleep(s.srv.limits.ErrorDelay)
	}
	s.reply(r)
	if firstCommand && r.Code == smtp.CodeSyntax {
		// STYLE 7: close after an invalid first command (an HTTP request, a
		// binary protocol): there is no SMTP client on the other end.
		return errCloseSession
	}
	return nil
}

func (s *session) reply(r smtp.Reply) {
	s.w.Write(r.Bytes())
}

func (s *session) flush() error {
	return s.w.Flush()
}

// resetTransaction forgets the transaction (RSET, EHLO, end of message).
func (s *session) resetTransaction() {
	s.tx = nil
	if s.state > stateReady {
		s.state = stateReady
	}
}
