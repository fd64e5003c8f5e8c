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

	"posthorn/mailbox"
	"posthorn/protocol/imap"
	"posthorn/protocol/netserve"
)

// state is the connection state of RFC 9051 3.
type state uint8

const (
	stateNotAuthenticated state = iota // RFC 9051 3.1
	stateAuthenticated                 // RFC 9051 3.2
	stateSelected                      // RFC 9051 3.3
	stateLogout                        // RFC 9051 3.4
)

func (st state) String() string {
	switch st {
	case stateNotAuthenticated:
		return "not authenticated"
	case stateAuthenticated:
		return "authenticated"
	case stateSelected:
		return "selected"
	case stateLogout:
		return "logout"
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
	anyState  = setOf(stateNotAuthenticated, stateAuthenticated, stateSelected)
	notAuth   = setOf(stateNotAuthenticated)
	authed    = setOf(stateAuthenticated, stateSelected)
	selected  = setOf(stateSelected)
	authNoSel = setOf(stateAuthenticated)
)

// command is one row of the command table.
type command struct {
	handle  func(s *session, c *imap.Command) error
	allowed states
	// noExpunge marks FETCH, STORE and SEARCH: no EXPUNGE response may be
	// sent while they run (RFC 9051 7.5.1).
	noExpunge bool
	// literal is the largest literal the command may carry: argLiteral for
	// ordinary arguments, appendLiteral for APPEND's message.
	literal literalKind
}

type literalKind uint8

const (
	argLiteral literalKind = iota
	appendLiteral
	noLiteral
)

// commands maps each command name (UID forms as "UID FETCH") to its handler
// and the states it is allowed in (RFC 9051 6: 6.1 any state, 6.2 not
// authenticated, 6.3 authenticated, 6.4 selected). It is the one place that
// says which command may come when.
//
// Sessions reach it through session.cmds, set by newSession, because a
// handler (STARTTLS) rebuilds the decoder whose literal limits consult it:
// referring to the variable from there would be an initialization cycle.
var commands = map[string]command{
	"CAPABILITY":   {handle: (*session).cmdCapability, allowed: anyState, literal: noLiteral},
	"NOOP":         {handle: (*session).cmdNoop, allowed: anyState, literal: noLiteral},
	"LOGOUT":       {handle: (*session).cmdLogout, allowed: anyState, literal: noLiteral},
	"ID":           {handle: (*session).cmdID, allowed: anyState},
	"STARTTLS":     {handle: (*session).cmdStartTLS, allowed: notAuth, literal: noLiteral},
	"AUTHENTICATE": {handle: (*session).cmdAuthenticate, allowed: notAuth, literal: noLiteral},
	"LOGIN":        {handle: (*session).cmdLogin, allowed: notAuth},
	"ENABLE":       {handle: (*session).cmdEnable, allowed: authNoSel},
	"SELECT":       {handle: (*session).cmdSelect, allowed: authed},
	"EXAMINE":      {handle: (*session).cmdExamine, allowed: authed},
	"CREATE":       {handle: (*session).cmdCreate, allowed: authed},
	"DELETE":       {handle: (*session).cmdDelete, allowed: authed},
	"RENAME":       {handle: (*session).cmdRename, allowed: authed},
	"SUBSCRIBE":    {handle: (*session).cmdSubscribe, allowed: authed},
	"UNSUBSCRIBE":  {handle: (*session).cmdUnsubscribe, allowed: authed},
	"LIST":         {handle: (*session).cmdList, allowed: authed},
	"LSUB":         {handle: (*session).cmdLsub, allowed: authed},
	"NAMESPACE":    {handle: (*session).cmdNamespace, allowed: authed, literal: noLiteral},
	"STATUS":       {handle: (*session).cmdStatus, allowed: authed},
	"APPEND":       {handle: (*session).cmdAppend, allowed: authed, literal: appendLiteral},
	"IDLE":         {handle: (*session).cmdIdle, allowed: authed, literal: noLiteral},
	"CHECK":        {handle: (*session).cmdCheck, allowed: selected, literal: noLiteral},
	"CLOSE":        {handle: (*session).cmdClose, allowed: selected, literal: noLiteral},
	"UNSELECT":     {handle: (*session).cmdUnselect, allowed: selected, literal: noLiteral},
	"EXPUNGE":      {handle: (*session).cmdExpunge, allowed: selected, literal: noLiteral},
	"UID EXPUNGE":  {handle: (*session).cmdUIDExpunge, allowed: selected, literal: noLiteral},
	"SEARCH":       {handle: (*session).cmdSearch, allowed: selected, noExpunge: true},
	"UID SEARCH":   {handle: (*session).cmdSearch, allowed: selected},
	"FETCH":        {handle: (*session).cmdFetch, allowed: selected, noExpunge: true},
	"UID FETCH":    {handle: (*session).cmdFetch, allowed: selected},
	"STORE":        {handle: (*session).cmdStore, allowed: selected, noExpunge: true},
	"UID STORE":    {handle: (*session).cmdStore, allowed: selected},
	"COPY":         {handle: (*session).cmdCopy, allowed: selected},
	"UID COPY":     {handle: (*session).cmdCopy, allowed: selected},
	"MOVE":         {handle: (*session).cmdMove, allowed: selected},
	"UID MOVE":     {handle: (*session).cmdMove, allowed: selected},
}

// reply is a tagged completion other than OK, returned by handlers:
// NO (the command failed) or BAD (protocol error) with an optional response
// code. Text never contains internals (STYLE: errors).
type reply struct {
	status imap.Status
	code   imap.Code
	text   string
}

func (r *reply) Error() string { return string(r.status) + " " + r.text }

func no(code imap.Code, text string) error { return &reply{imap.StatusNO, code, text} }
func bad(text string) error                { return &reply{imap.StatusBAD, "", text} }

// errClose ends the session after what has been written (BYE sent).
var errClose = errors.New("close session")

// errReplied: the handler wrote its own tagged completion (STARTTLS must
// answer before the handshake).
var errReplied = errors.New("completion sent")

// session is one IMAP connection.
type session struct {
	srv    *Server
	cmds   map[string]command
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	dec    *imap.Decoder
	enc    *imap.Encoder
	remote netip.AddrPort
	tls    *tls.ConnectionState
	id     string

	state   state
	user    string // the authenticated account name
	acct    Account
	sub     *mailbox.Subscription
	claimed bool // counted in the per-account cap

	rev2, utf8 bool // ENABLEd (RFC 5161)
	sel        *view
	saved      []uint32 // the SEARCHRES result "$" as UIDs (RFC 5182 2.1)
	// ownChanges: while STORE takes in the feed after its own change, the
	// MODSEQ of that change per UID, so the feed's copy of it is not
	// reported back as another session's (cmdStore).
	ownChanges map[uint32]uint64
	bads       int
	authFails  int
	first      bool

	// ok is the completion of the current command when it succeeded: the
	// handler may set a code and text (SELECT's READ-WRITE, APPENDUID).
	okCode imap.Code
	okText string
	curTag string // tag of the command being executed

	// guard is busy while a command runs (shutdown coordination).
	guard *netserve.Guard
}

func newSession(srv *Server, conn net.Conn, remote netip.AddrPort) *session {
	s := &session{srv: srv, cmds: commands, conn: conn, remote: remote, first: true, id: srv.sessionName(), guard: netserve.NewGuard(conn)}
	s.setStreams(conn)
	return s
}

// setStreams (re)creates the reader, writer, decoder and encoder on rw;
// after STARTTLS nothing buffered before the handshake survives.
func (s *session) setStreams(c net.Conn) {
	rw := netserve.Trace(c, s.srv.cfg.Trace)
	s.br = bufio.NewReaderSize(rw, 16<<10)
	s.bw = bufio.NewWriterSize(rw, 16<<10)
	s.dec = imap.NewDecoder(s.br, s.decoderLimits())
	s.enc = imap.NewEncoder(s.bw)
	s.dec.SetUTF8(s.utf8)
	s.enc.SetUTF8(s.utf8)
}

// decoderLimits gives the codec the session's limits. The literal limit
// depends on the command and the state, so that a literal for a command
// that is not allowed now is refused before the client sends it (RFC 9051
// 7.6 example) and only APPEND may send a message-sized one (RFC 7889).
func (s *session) decoderLimits() imap.Limits {
	l := s.srv.limits
	// A whole command may hold an APPEND message once authenticated;
	// before that only small literals, so an unknown client cannot make
	// the server buffer much (ROBUSTNESS: nothing allocated before auth).
	command := l.MessageSize + int64(l.Line) + 4096
	if s.state == stateNotAuthenticated {
		command = 4*l.PreAuthLiteral + int64(l.Line) + 4096
	}
	return imap.Limits{
		Line:    l.Line,
		Literal: l.Literal,
		// LITERAL+ (RFC 7888): non-synchronising literals up to the same
		// caps as synchronising ones.
		NonSync: max(l.MessageSize, l.Literal),
		Command: command,
		LiteralLimit: func(name string, arg int) int64 {
			c, ok := s.cmds[name]
			if !ok || !c.allowed.has(s.state) || c.literal == noLiteral {
				return -1
			}
			switch {
			case s.state == stateNotAuthenticated:
				return l.PreAuthLiteral
			case c.literal == appendLiteral && arg >= 1:
				return l.MessageSize
			}
			return l.Literal
		},
	}
}

func (s *session) run(ctx context.Context) {
	defer s.conn.Close()
	defer s.logout()
	defer func() {
		if v := recover(); v != nil {
			// STYLE: recover only at the connection edge; the client gets BYE.
			s.srv.log.Error("imap session panic", "remote", s.remote.String(), "panic", v, "stack", string(debug.Stack()))
			s.bye("Internal error, closing connection")
		}
	}()
	if tc, ok := s.conn.(*tls.Conn); ok {
		// Implicit TLS (RFC 8314 3.2): the handshake comes before the
		// greeting, in the session's goroutine so a slow client cannot
		// stall Accept.
		tc.SetDeadline(time.Now().Add(s.srv.limits.TLSHandshakeTimeout))
		if err := tc.Handshake(); err != nil {
			s.srv.log.Info("imap tls handshake failed", "listener", s.srv.cfg.Listener, "remote", s.remote.String(), "err", err)
			return
		}
		st := tc.ConnectionState()
		s.tls = &st
	}
	// RFC 9051 7.1.1: the greeting, with capabilities so that the client
	// needs no CAPABILITY command (RFC 9051 7.2.2).
	s.enc.StatusResponse("", imap.StatusOK, imap.Code(s.capabilityString()), s.srv.cfg.Hostname+" Posthorn IMAP ready")
	if s.flush() != nil {
		return
	}
	for {
		if s.guard.Idle() {
			s.bye("Server shutting down")
			return
		}
		s.conn.SetReadDeadline(time.Now().Add(s.readTimeout()))
		cmd, err := s.dec.ReadCommand(s.continuation)
		if s.guard.Busy() && err != nil {
			s.bye("Server shutting down")
			return
		}
		if err != nil {
			if s.readFailed(err) != nil {
				return
			}
			continue
		}
		// Writes may reach the connection before the next flush (a large
		// FETCH fills the buffer): the deadline starts with the command.
		s.conn.SetWriteDeadline(time.Now().Add(s.srv.limits.WriteTimeout))
		if err := s.execute(ctx, &cmd); err != nil {
			s.flush()
			return
		}
		// RFC 9051 5.5: pipelined commands are answered in order; flush
		// once no further command is waiting.
		if s.dec.Buffered() == 0 {
			if s.flush() != nil {
				return
			}
		}
	}
}

// readTimeout is the inactivity timer of the current state (RFC 9051 5.4).
func (s *session) readTimeout() time.Duration {
	if s.state == stateNotAuthenticated {
		return s.srv.limits.PreAuthTimeout
	}
	return s.srv.limits.AutoLogout
}

// continuation sends the command continuation request for a synchronising
// literal (RFC 9051 7.6).
func (s *session) continuation() error {
	if err := s.enc.Continue("Ready for literal data"); err != nil {
		return err
	}
	return s.flush()
}

// readFailed answers a command the decoder refused; a non-nil result ends
// the session.
func (s *session) readFailed(err error) error {
	var de *imap.DecodeError
	var ne net.Error
	switch {
	case errors.As(err, &de):
		st, code := de.Response()
		if st == imap.StatusBYE {
			// RFC 7888 4, choice 2: out of sync; say why and close.
			s.enc.StatusResponse("", imap.StatusBYE, code, de.Err.Error())
			s.flush()
			return errClose
		}
		first := s.first
		s.first = false
		if st == imap.StatusBAD {
			s.bads++
		}
		s.enc.StatusResponse(de.Tag, st, code, de.Err.Error())
		if (first && st == imap.StatusBAD) || s.bads >= s.srv.limits.BadCommands {
			// STYLE 7: an invalid first command means no IMAP client is
			// there; too many errors mean a broken or probing one.
			s.bye("Too many invalid commands")
			return errClose
		}
		return s.flush()
	case errors.As(err, &ne) && ne.Timeout():
		// RFC 9051 5.4: autologout, announced with BYE (RFC 9051 7.1.5).
		s.bye("Autologout; idle for too long")
		return errClose
	}
	return errClose // EOF or reset: nobody to tell
}

// execute runs one command and writes its completion.
func (s *session) execute(ctx context.Context, cmd *imap.Command) error {
	first := s.first
	s.first = false
	c, ok := s.cmds[cmd.Name]
	if !ok {
		return s.complete(cmd.Tag, bad("Unknown command"), first, false)
	}
	if !c.allowed.has(s.state) {
		// RFC 9051 6: a command in the wrong state is a protocol error.
		return s.complete(cmd.Tag, bad("Command not allowed in the "+s.state.String()+" state"), first, false)
	}
	s.okCode, s.okText, s.curTag = "", "", cmd.Tag
	if s.state == stateSelected {
		// Take in what changed meanwhile, so that a handler's own changes
		// are ordered after them by MODSEQ, and announce new messages now:
		// a UID command may name them (EXISTS is allowed while any
		// command runs, RFC 9051 7.4.1). Expunges wait (RFC 9051 7.5.1).
		s.pollChanges()
		if s.sel != nil && !s.sel.closed {
			s.sendExists()
		}
	}
	err := c.handle(s, cmd)
	if errors.Is(err, errClose) {
		return err
	}
	if errors.Is(err, errReplied) {
		return nil
	}
	// Report what other sessions changed, where RFC 9051 7.5.1 allows it.
	if s.state == stateSelected {
		if uerr := s.sendUpdates(!c.noExpunge); uerr != nil {
			return uerr
		}
	}
	return s.complete(cmd.Tag, err, first, true)
}

// complete writes the tagged completion for err (nil: OK).
func (s *session) complete(tag string, err error, first, known bool) error {
	if err == nil {
		text := s.okText
		if text == "" {
			text = "Completed"
		}
		return s.enc.StatusResponse(tag, imap.StatusOK, s.okCode, text)
	}
	var r *reply
	var se *imap.SyntaxError
	switch {
	case errors.As(err, &r):
	case errors.As(err, &se):
		r = &reply{status: imap.StatusBAD, text: se.Msg}
	default:
		s.srv.log.Error("imap command failed", "remote", s.remote.String(), "user", s.user, "err", err)
		r = &reply{status: imap.StatusNO, code: imap.CodeServerBug, text: "Internal error, try again later"}
	}
	if r.status == imap.StatusBAD {
		s.bads++
	}
	if werr := s.enc.StatusResponse(tag, r.status, r.code, r.text); werr != nil {
		return werr
	}
	if r.status == imap.StatusBAD && ((first && !known) || s.bads >= s.srv.limits.BadCommands) {
		s.bye("Too many invalid commands")
		return errClose
	}
	return nil
}

// bye sends an untagged BYE and flushes (RFC 9051 7.1.5).
func (s *session) bye(text string) {
	s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	s.enc.StatusResponse("", imap.StatusBYE, "", text)
	s.bw.Flush()
}

func (s *session) flush() error {
	s.conn.SetWriteDeadline(time.Now().Add(s.srv.limits.WriteTimeout))
	if err := s.enc.Err(); err != nil {
		return err
	}
	return s.bw.Flush()
}

// logout releases what an authenticated session holds.
func (s *session) logout() {
	if s.sub != nil {
		s.sub.Unsubscribe()
		s.sub = nil
	}
	if s.claimed {
		s.srv.releaseAccount(s.user)
		s.claimed = false
	}
	s.sel = nil
	s.state = stateLogout
}

// commandContext bounds a store operation of one command.
func (s *session) commandContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.srv.limits.WriteTimeout)
}

// storeError maps a mailbox error to a reply (RFC 9051 7.1 response codes).
func storeError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mailbox.ErrNoFolder):
		return no(imap.CodeNonExistent, "No such mailbox")
	case errors.Is(err, mailbox.ErrFolderExists):
		return no(imap.CodeAlreadyExists, "Mailbox already exists")
	case errors.Is(err, mailbox.ErrBadFolderName):
		return no(imap.CodeCannot, "Invalid mailbox name")
	case errors.Is(err, mailbox.ErrInbox):
		return no(imap.CodeCannot, "Not allowed on INBOX")
	case errors.Is(err, mailbox.ErrBadFlag):
		return no(imap.CodeCannot, "Invalid flag")
	case errors.Is(err, mailbox.ErrTooManyKeywords), errors.Is(err, mailbox.ErrUIDsExhausted):
		return no(imap.CodeLimit, "Limit reached")
	case errors.Is(err, mailbox.ErrNotFound):
		return no(imap.CodeExpungeIssued, "Message no longer exists")
	case errors.Is(err, mailbox.ErrStoreFailed), errors.Is(err, mailbox.ErrClosed),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return no(imap.CodeUnavailable, "Temporary failure, try again later")
	}
	return err
}
