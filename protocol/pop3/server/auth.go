package server

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"posthorn/protocol/pop3"
	"posthorn/protocol/sasl"
	"posthorn/protocol/textline"
)

// maxAuthSteps bounds the challenges of one AUTH exchange (SCRAM needs two).
const maxAuthSteps = 10

var (
	// RFC 2595 2.3 and RFC 5034 4: plaintext passwords are refused unless
	// TLS is active. RFC 1939 7 (USER): "The server may return a negative
	// response if mailbox exists, but does not permit plaintext password
	// authentication."
	errPlaintextNeedsTLS = pop3.Err("", "Plaintext authentication requires TLS, use STLS first")
	// RFC 3206: AUTH marks a failure caused by the credentials. The same
	// reply for an unknown user and a wrong password (RFC 4422 3.6).
	errAuthFailed = pop3.Err(pop3.CodeAuth, "Authentication failed")
	errAuthTemp   = pop3.Err(pop3.CodeSysTemp, "Authentication temporarily unavailable")
	errAuthLocked = pop3.Err(pop3.CodeSysTemp, "Too many authentication failures from your address, try again later")
	errNoAuth     = pop3.Err("", "Authentication not available")
)

// authOffered says whether anyone can log in at all.
func (s *session) authOffered() bool { return s.srv.cfg.Auth != nil }

// plaintextAllowed: plaintext passwords only over TLS, except from loopback
// or with allow_plaintext_auth (RFC 2595 2.3, RFC 5034 4, RFC 8314 3).
func (s *session) plaintextAllowed() bool {
	loopback := s.remote.Addr().IsLoopback() && !s.srv.loopbackIsRemote
	return s.tls != nil || s.srv.cfg.AllowPlaintextAuth || loopback
}

func (s *session) cmdCAPA(args string) error {
	if err := noArgs("CAPA", args); err != nil {
		return err
	}
	// RFC 2449 5: one capability per line. Capabilities of the
	// AUTHORIZATION state are announced in both states, so USER and SASL
	// stay after login; STLS is announced only where it is permitted
	// (RFC 2595 4: "present and permitted in the current state").
	s.reply(pop3.OK("Capability list follows"))
	s.w.WriteString("TOP\r\nUIDL\r\n") // RFC 2449 6.1, 6.8
	if s.authOffered() {
		if s.plaintextAllowed() {
			// RFC 2449 6.2. Not before TLS for remote clients: RFC 5034 4
			// forbids advertising plaintext mechanisms there.
			s.w.WriteString("USER\r\n")
		}
		// RFC 2449 6.3, RFC 5034 3.
		s.w.WriteString("SASL " + strings.Join(sasl.Mechanisms(s.plaintextAllowed()), " ") + "\r\n")
	}
	s.w.WriteString("RESP-CODES\r\n")     // RFC 2449 6.4
	s.w.WriteString("AUTH-RESP-CODE\r\n") // RFC 3206
	s.w.WriteString("PIPELINING\r\n")     // RFC 2449 6.6
	if s.state == stateAuthorization && s.tls == nil && s.srv.cfg.TLS != nil {
		s.w.WriteString("STLS\r\n") // RFC 2595 4
	}
	// RFC 2449 6.7: the server never deletes messages by policy.
	s.w.WriteString("EXPIRE NEVER\r\n")
	s.w.WriteString("IMPLEMENTATION Posthorn\r\n") // RFC 2449 6.9
	s.endMultiline()
	return nil
}

func (s *session) cmdSTLS(args string) error {
	if err := noArgs("STLS", args); err != nil {
		return err
	}
	if s.tls != nil {
		// RFC 2595 4: "A -ERR response MAY result if a security layer is
		// already active."
		return pop3.Err("", "Command not permitted when TLS active")
	}
	if s.srv.cfg.TLS == nil {
		return pop3.Err("", "STLS not available")
	}
	injected := s.r.Buffered()
	s.reply(pop3.OK("Begin TLS negotiation"))
	if s.w.Flush() != nil {
		return errCloseSession
	}
	// RFC 2595 4: the negotiation "begins immediately after the CRLF at
	// the end of the +OK response".
	tc := tls.Server(s.conn, s.srv.cfg.TLS)
	tc.SetDeadline(time.Now().Add(s.srv.limits.TLSHandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		s.srv.log.Info("pop3 stls handshake failed", "listener", s.srv.cfg.Listener, "remote", s.remote.String(), "err", err)
		return errCloseSession
	}
	st := tc.ConnectionState()
	s.setConn(tc)
	// Commands the client sent after STLS, before the handshake, were not
	// protected: drop them unread (CVE-2011-0411: "STLS\r\nCAPA" in one
	// packet), and everything learnt before TLS (RFC 2595 4; the state
	// stays AUTHORIZATION).
	s.r.Reset(s.rw)
	s.w.Reset(deadlineWriter{s})
	if injected > 0 {
		s.srv.log.Warn("pop3 stls: discarded plaintext sent after STLS", "listener", s.srv.cfg.Listener, "remote", s.remote.String(), "bytes", injected)
	}
	s.user = ""
	s.tls = &st
	return nil
}

func (s *session) cmdUSER(args string) error {
	if !s.authOffered() {
		return errNoAuth
	}
	if !s.plaintextAllowed() {
		return errPlaintextNeedsTLS
	}
	if args == "" {
		return pop3.Err("", "Syntax: USER name")
	}
	// RFC 1939 7: "The server may return a positive response even though
	// no such mailbox exists": the same answer for every name, so USER
	// cannot be used to find accounts.
	s.user = args
	s.reply(pop3.OK("Send PASS"))
	return nil
}

func (s *session) cmdPASS(args string) error {
	if s.user == "" {
		// RFC 1939 7: PASS only "immediately after a successful USER".
		return pop3.Err("", "Send USER first")
	}
	user := s.user
	s.user = ""
	if args == "" {
		return pop3.Err("", "Syntax: PASS password")
	}
	if s.lockedOut() {
		return s.authLocked("USER")
	}
	// RFC 1939 7: "a POP3 server may treat spaces in the argument as part
	// of the password": args is the rest of the line, as sent.
	ctx, cancel := s.storeContext()
	defer cancel()
	account, err := s.srv.cfg.Auth.Verify(ctx, user, args)
	s.throttle(user)
	if err != nil {
		if errors.Is(err, sasl.ErrUnknownUser) {
			err = sasl.ErrAuthFailed
		}
		return s.authFailed("USER", user, err)
	}
	return s.login("USER", user, account)
}

func (s *session) cmdAUTH(args string) error {
	if !s.authOffered() {
		return errNoAuth
	}
	s.user = ""
	if args == "" {
		// Not in RFC 5034, but Outlook and others send a bare AUTH to list
		// the mechanisms (the RFC 1734 era habit), and Dovecot answers it.
		s.reply(pop3.OK(""))
		for _, m := range sasl.Mechanisms(s.plaintextAllowed()) {
			s.w.WriteString(m + "\r\n")
		}
		s.endMultiline()
		return nil
	}
	fields := pop3.Fields(args)
	if len(fields) > 2 {
		return pop3.Err("", "Syntax: AUTH mechanism [initial-response]")
	}
	mech := strings.ToUpper(fields[0])
	if (mech == sasl.MechPlain || mech == sasl.MechLogin) && !s.plaintextAllowed() {
		return errPlaintextNeedsTLS
	}
	if !sasl.Offered(mech, s.plaintextAllowed()) {
		// RFC 5034 4: an unsupported mechanism is rejected with -ERR.
		return pop3.Err("", "Unsupported authentication mechanism")
	}
	if s.lockedOut() {
		return s.authLocked(mech)
	}
	srv, err := sasl.NewServer(mech, s.srv.cfg.Auth)
	if err != nil {
		return pop3.Err("", "Unsupported authentication mechanism")
	}
	var resp []byte
	if len(fields) == 2 {
		// RFC 5034 4: base64, or "=" for an empty initial response.
		if fields[1] == "=" {
			resp = []byte{}
		} else if resp, err = decodeBase64(fields[1]); err != nil {
			return err
		}
	}
	ctx, cancel := s.storeContext()
	defer cancel()
	for steps := 0; ; steps++ {
		challenge, done, err := srv.Next(ctx, resp)
		if err != nil {
			s.throttle(srv.Identity())
			return s.authFailed(mech, srv.Identity(), err)
		}
		if done {
			s.throttle(srv.Identity())
			return s.login(mech, srv.Identity(), srv.Account())
		}
		if steps >= maxAuthSteps {
			return s.authFailed(mech, srv.Identity(), sasl.ErrMalformed)
		}
		// RFC 5034 4: a challenge is "+" SP base64; an empty one is "+ ".
		// SCRAM's server-final message comes this way too, and the client
		// answers it with an empty line (RFC 5034 4: no data with +OK).
		s.buf = append(s.buf[:0], "+ "...)
		s.buf = base64.StdEncoding.AppendEncode(s.buf, challenge)
		s.buf = append(s.buf, "\r\n"...)
		s.w.Write(s.buf)
		if s.w.Flush() != nil {
			return errCloseSession
		}
		s.setReadDeadline()
		line, err := s.r.ReadLine(s.srv.limits.AuthLine)
		if err != nil {
			if errors.Is(err, textline.ErrLineTooLong) {
				s.reply(pop3.Err("", "Authentication line too long, closing connection"))
			}
			return errCloseSession
		}
		if sasl.IsAbort(line) {
			// RFC 5034 4: "*" cancels; the server "MUST reject the AUTH
			// command by sending an -ERR reply".
			return pop3.Err("", "Authentication aborted")
		}
		if resp, err = decodeBase64(string(line)); err != nil {
			return err
		}
	}
}

// decodeBase64 decodes a client response. RFC 5034 4: characters outside
// the alphabet and misplaced padding are rejected with -ERR.
func decodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, pop3.Err("", "Invalid base64 in authentication response")
	}
	if b == nil {
		b = []byte{} // an empty response, not an absent one (sasl doc.go)
	}
	return b, nil
}

// throttle waits, before the outcome of a login is sent, as long as the
// limiter asks for this address and identity, on success and failure alike
// so the timing tells nothing (sasl.Limiter).
func (s *session) throttle(identity string) {
	l := s.srv.cfg.Limiter
	if l == nil {
		return
	}
	if d := l.Delay(s.remote.Addr(), identity); d > 0 {
		s.w.Flush()
		time.Sleep(min(d, s.srv.limits.IdleTimeout))
	}
}

// authFailed answers a failed login and counts it: after Limits.AuthFailures
// the session closes (RFC 1939 4: the server may close after -ERR).
func (s *session) authFailed(mech, identity string, err error) error {
	ip := s.remote.Addr()
	s.srv.log.Info("pop3 auth failed", "listener", s.srv.cfg.Listener, "remote", ip.String(), "mechanism", mech, "identity", identity, "err", err)
	var r pop3.Reply
	switch {
	case errors.Is(err, sasl.ErrAuthFailed):
		r = errAuthFailed
	case errors.Is(err, sasl.ErrMalformed):
		r = pop3.Err("", "Malformed authentication exchange")
	default:
		// The store could not be asked: not the client's fault (RFC 3206).
		s.reply(errAuthTemp)
		return nil
	}
	if l := s.srv.cfg.Limiter; l != nil && l.Failure(ip, identity) {
		s.srv.log.Warn("pop3 auth: address locked out", "listener", s.srv.cfg.Listener, "remote", ip.String(), "for", l.Config().Window)
	}
	s.authFailures++
	s.reply(r)
	if s.authFailures >= s.srv.limits.AuthFailures {
		return errCloseSession
	}
	return nil
}

// lockedOut reports whether the limiter refuses logins from the client's
// address.
func (s *session) lockedOut() bool {
	_, locked := s.srv.cfg.Limiter.Locked(s.remote.Addr())
	return locked
}

// authLocked refuses a login from a locked-out address before the
// credentials are checked: SYS/TEMP (RFC 3206 4), so that the client tries
// again later instead of asking for a new password. It counts as a failed
// login of the session.
func (s *session) authLocked(mech string) error {
	s.srv.log.Info("pop3 auth refused: address locked out", "listener", s.srv.cfg.Listener, "remote", s.remote.Addr().String(), "mechanism", mech)
	s.authFailures++
	s.reply(errAuthLocked)
	if s.authFailures >= s.srv.limits.AuthFailures {
		return errCloseSession
	}
	return nil
}

// login takes the maildrop lock, opens the maildrop and enters TRANSACTION
// (RFC 1939 4). Any failure leaves the session in AUTHORIZATION with the
// lock released.
func (s *session) login(mech, identity, account string) error {
	if l := s.srv.cfg.Limiter; l != nil {
		l.Success(s.remote.Addr(), identity)
	}
	log := s.srv.log.With("listener", s.srv.cfg.Listener, "remote", s.remote.Addr().String(), "mechanism", mech, "account", account)
	if !s.srv.locks.TryLock(account) {
		// RFC 2449 8.1.2: the authentication succeeded but the maildrop
		// is in use; RFC 1939 7 (PASS): "-ERR unable to lock maildrop".
		log.Info("pop3 maildrop in use")
		return pop3.Err(pop3.CodeInUse, "Maildrop is locked by another POP3 session")
	}
	s.account, s.locked = account, true
	ctx, cancel := s.storeContext()
	defer cancel()
	drop, err := s.srv.cfg.Backend.Open(ctx, account)
	if err != nil {
		// RFC 1939 4: the lock is released before the negative reply.
		s.release()
		log.Error("pop3 open maildrop failed", "err", err)
		return pop3.Err(pop3.CodeSysTemp, "Cannot open the maildrop, try again later")
	}
	s.drop = drop
	s.uidValidity = drop.UIDValidity()
	s.msgs = drop.Messages()
	s.deleted = nil
	s.countLive()
	s.state = stateTransaction
	log.Info("pop3 login", "messages", s.liveCount)
	// RFC 1939 7 (PASS example): "+OK mrose's maildrop has 2 messages (320 octets)".
	s.reply(pop3.OK("Logged in, maildrop has " + s.dropListing()))
	return nil
}
