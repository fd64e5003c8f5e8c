package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime/debug"
	"time"

	"posthorn/protocol/netserve"
	"posthorn/protocol/pop3"
	"posthorn/protocol/textline"
)

// state is where a session is in the POP3 dialogue (RFC 1939 3).
type state uint8

const (
	stateAuthorization state = iota // greeting sent; USER/PASS, AUTH, STLS
	stateTransaction                // maildrop locked and open
	stateUpdate                     // QUIT received in TRANSACTION; removing, then closing
)

func (st state) String() string {
	switch st {
	case stateAuthorization:
		return "AUTHORIZATION"
	case stateTransaction:
		return "TRANSACTION"
	case stateUpdate:
		return "UPDATE"
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

var (
	authorization = setOf(stateAuthorization)
	transaction   = setOf(stateTransaction)
	// RFC 1939 4 and 6: QUIT in both states; RFC 2449 5: CAPA in both.
	// Nothing is read in UPDATE.
	bothStates = setOf(stateAuthorization, stateTransaction)
)

// command is one row of the command table.
type command struct {
	handle  func(s *session, args string) error
	allowed states
}

// commandTable maps each verb to its handler and the states it is allowed
// in. It is the one place that says which command may come when. APOP is
// not here: it needs a plaintext-equivalent password (RFC 1939 7, 13), so
// it is answered like any unknown command.
var commandTable = map[string]command{
	pop3.VerbUSER: {(*session).cmdUSER, authorization}, // RFC 1939 7
	pop3.VerbPASS: {(*session).cmdPASS, authorization}, // RFC 1939 7
	pop3.VerbAUTH: {(*session).cmdAUTH, authorization}, // RFC 5034 4
	pop3.VerbSTLS: {(*session).cmdSTLS, authorization}, // RFC 2595 4
	pop3.VerbCAPA: {(*session).cmdCAPA, bothStates},    // RFC 2449 5
	pop3.VerbQUIT: {(*session).cmdQUIT, bothStates},    // RFC 1939 4, 6
	pop3.VerbSTAT: {(*session).cmdSTAT, transaction},   // RFC 1939 5
	pop3.VerbLIST: {(*session).cmdLIST, transaction},
	pop3.VerbRETR: {(*session).cmdRETR, transaction},
	pop3.VerbDELE: {(*session).cmdDELE, transaction},
	pop3.VerbNOOP: {(*session).cmdNOOP, transaction},
	pop3.VerbRSET: {(*session).cmdRSET, transaction},
	pop3.VerbTOP:  {(*session).cmdTOP, transaction},  // RFC 1939 7
	pop3.VerbUIDL: {(*session).cmdUIDL, transaction}, // RFC 1939 7
}

// errCloseSession ends the session after the reply already written.
var errCloseSession = errors.New("close session")

// writeBufferSize is the reply buffer of a session: replies to a pipelined
// batch and the start of a message go out in one write, and long runs of a
// message bypass it (bufio writes them straight through).
const writeBufferSize = 16 << 10

// session is one POP3 connection.
type session struct {
	srv    *Server
	conn   net.Conn      // the raw or TLS connection; changed by STLS under mu
	rw     io.ReadWriter // conn, or conn teed to Config.Trace
	r      *textline.Reader
	w      *bufio.Writer // writes through deadlineWriter to rw
	remote netip.AddrPort
	tls    *tls.ConnectionState
	state  state
	first  bool
	errors int // -ERR replies counted against the error limits
	// authFailures counts failed logins of this session.
	authFailures int
	// user is the USER argument waiting for PASS (RFC 1939 7).
	user string
	buf  []byte // scratch for formatting reply lines

	// TRANSACTION state: the locked maildrop and its snapshot.
	account     string
	locked      bool // holds account's lock in srv.locks
	drop        Maildrop
	uidValidity uint32
	msgs        []Message
	deleted     []bool // by message number - 1; nil until the first DELE
	liveCount   int    // messages not marked deleted
	liveSize    int64

	// guard is busy while a command runs (shutdown coordination); once
	// shutdown has begun its grace caps read and write deadlines.
	guard *netserve.Guard
}

func newSession(srv *Server, conn net.Conn, remote netip.AddrPort) *session {
	s := &session{srv: srv, first: true, remote: remote, guard: netserve.NewGuard(conn)}
	s.setConn(conn)
	s.r = textline.NewReader(s.rw, 4096)
	s.w = bufio.NewWriterSize(deadlineWriter{s}, writeBufferSize)
	return s
}

// setConn switches the session to conn (at the start and after STLS).
func (s *session) setConn(conn net.Conn) {
	s.conn = conn
	s.guard.SetConn(conn)
	s.rw = netserve.Trace(conn, s.srv.cfg.Trace)
}

// deadlineWriter gives every write to the client its own deadline, so a
// slow reader of a long message is not cut off but a stalled one is.
type deadlineWriter struct{ s *session }

func (d deadlineWriter) Write(p []byte) (int, error) {
	s := d.s
	s.conn.SetWriteDeadline(s.guard.Cap(time.Now().Add(s.srv.limits.WriteTimeout)))
	return s.rw.Write(p)
}

// setReadDeadline starts the wait for the next line from the client: the
// autologout timer (RFC 1939 3), or less once shutdown has begun.
func (s *session) setReadDeadline() {
	s.conn.SetReadDeadline(s.guard.Cap(time.Now().Add(s.srv.limits.IdleTimeout)))
}

func (s *session) run() {
	defer func() {
		s.release()
		s.conn.Close()
	}()
	defer func() {
		if v := recover(); v != nil {
			// A bug must not take the process down (STYLE: recover only
			// at the connection edge). Nothing is removed: the session
			// never reached UPDATE (RFC 1939 6).
			s.srv.log.Error("pop3 session panic", "listener", s.srv.cfg.Listener, "remote", s.remote.String(), "panic", v, "stack", string(debug.Stack()))
			s.reply(pop3.Err(pop3.CodeSysTemp, "Internal error, closing connection"))
			s.w.Flush()
		}
	}()
	if tc, ok := s.conn.(*tls.Conn); ok {
		// RFC 8314 3.3: on port 995 TLS starts with the first byte. The
		// handshake runs here, in the session's goroutine, so that a slow
		// client cannot stall Accept.
		tc.SetDeadline(time.Now().Add(s.srv.limits.TLSHandshakeTimeout))
		if err := tc.Handshake(); err != nil {
			s.srv.log.Info("pop3 tls handshake failed", "listener", s.srv.cfg.Listener, "remote", s.remote.String(), "err", err)
			return
		}
		st := tc.ConnectionState()
		s.tls = &st
	}
	// RFC 1939 4: the greeting is a positive response. No APOP timestamp:
	// APOP is not offered.
	s.reply(pop3.OK(s.srv.cfg.Hostname + " Posthorn POP3 server ready"))
	if s.w.Flush() != nil {
		return
	}
	for {
		// The deadline is set before the busy flag is cleared, so that an
		// interrupt in between is not overwritten.
		s.setReadDeadline()
		if s.guard.Idle() {
			s.shutdownReply()
			return
		}
		line, err := s.r.ReadLine(s.srv.limits.CommandLine)
		if stopping := s.guard.Busy(); err != nil {
			if stopping {
				s.shutdownReply()
			} else {
				s.readFailed(err)
			}
			return
		}
		if err := s.dispatch(line); err != nil {
			s.w.Flush()
			return
		}
		// RFC 2449 6.6 (PIPELINING): replies to a batch of commands are
		// buffered and sent once no further complete command is waiting.
		if s.r.Buffered() == 0 {
			if s.w.Flush() != nil {
				return
			}
		}
	}
}

// shutdownReply tells an idle client that the server is going away; the
// session ends without UPDATE, so nothing is removed (RFC 1939 6).
func (s *session) shutdownReply() {
	s.reply(pop3.Err(pop3.CodeSysTemp, "Server shutting down, try again later"))
	s.w.Flush()
}

// readFailed handles a failed command read.
func (s *session) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, textline.ErrLineTooLong):
		// RFC 2449 4: commands are at most 255 octets. The rest of the
		// line is not read, so the session cannot stay in sync: close.
		s.reply(pop3.Err("", "Command line too long, closing connection"))
		s.w.Flush()
	case errors.As(err, &ne) && ne.Timeout():
		// RFC 1939 3: when the autologout timer expires "the server
		// should close the TCP connection without removing any messages
		// or sending any response to the client".
		s.srv.log.Info("pop3 autologout", "listener", s.srv.cfg.Listener, "remote", s.remote.String(), "state", s.state.String())
	}
}

// dispatch runs one command line. A non-nil error closes the session.
func (s *session) dispatch(line []byte) error {
	first := s.first
	s.first = false
	cmd, err := pop3.ParseCommand(line)
	if err != nil {
		return s.fail(err, first)
	}
	c, ok := commandTable[cmd.Verb]
	if !ok {
		// RFC 1939 3: an unimplemented command gets a negative response.
		return s.fail(pop3.ErrUnknownCommand, first)
	}
	if !c.allowed.has(s.state) {
		// RFC 1939 3: "A server MUST respond to a command issued when the
		// session is in an incorrect state by responding with a negative
		// status indicator."
		return s.fail(s.sequenceError(), false)
	}
	if err := c.handle(s, cmd.Args); err != nil {
		if errors.Is(err, errCloseSession) {
			return err
		}
		return s.fail(err, false)
	}
	return nil
}

// sequenceError is the reply for a command in the wrong state.
func (s *session) sequenceError() pop3.Reply {
	if s.state == stateAuthorization {
		return pop3.Err("", "Not authenticated yet, log in first")
	}
	// RFC 5034 4: after a successful login any AUTH is rejected with -ERR;
	// RFC 2595 4: STLS only in AUTHORIZATION.
	return pop3.Err("", "Command not valid after login")
}

// fail sends an error reply and applies the error limits. It returns
// errCloseSession when the session must end.
func (s *session) fail(err error, firstCommand bool) error {
	var r pop3.Reply
	if !errors.As(err, &r) || r.OK {
		s.srv.log.Error("pop3 command failed", "listener", s.srv.cfg.Listener, "remote", s.remote.String(), "err", err)
		r = pop3.Err(pop3.CodeSysTemp, "Internal error, try again later")
	}
	if r.Code == pop3.CodeSysTemp || r.Code == pop3.CodeInUse || r == errGone {
		// The server's trouble or another session's doing, not the
		// client's: not counted.
		s.reply(r)
		return nil
	}
	s.errors++
	if s.errors >= s.srv.limits.HardErrors {
		// A client that keeps failing is probing or broken. The reply
		// still answers its command negatively (RFC 1939 3).
		s.srv.log.Info("pop3 too many errors", "listener", s.srv.cfg.Listener, "remote", s.remote.String())
		s.reply(pop3.Err("", "Too many errors, closing connection"))
		return errCloseSession
	}
	if s.errors > s.srv.limits.SoftErrors {
		s.w.Flush()
		time.Sleep(s.srv.limits.ErrorDelay)
	}
	s.reply(r)
	if firstCommand {
		// STYLE 7: an invalid first command (an HTTP request, another
		// protocol) means there is no POP3 client on the other end.
		return errCloseSession
	}
	return nil
}

// reply buffers a single-line response.
func (s *session) reply(r pop3.Reply) {
	s.buf = r.AppendTo(s.buf[:0])
	s.w.Write(s.buf)
}

// writeLine buffers one line of a multi-line response; b must not start
// with "." (the callers write numbers and capability names).
func (s *session) writeLine(b []byte) {
	s.w.Write(b)
	s.w.WriteString("\r\n")
}

// endMultiline writes the termination line (RFC 1939 3).
func (s *session) endMultiline() { s.w.WriteString(".\r\n") }

// storeContext bounds one Backend call. It is not tied to the server's
// context: a removal that has begun at shutdown is given its grace.
func (s *session) storeContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.srv.limits.StoreTimeout)
}

// release closes the maildrop and frees its lock; safe to call twice, and
// after a panic between taking the lock and opening the maildrop.
func (s *session) release() {
	if s.drop != nil {
		if err := s.drop.Close(); err != nil {
			s.srv.log.Warn("pop3 closing maildrop", "account", s.account, "err", err)
		}
		s.drop = nil
	}
	if s.locked {
		s.srv.locks.Unlock(s.account)
		s.locked = false
	}
}
