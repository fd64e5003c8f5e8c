package server

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"posthorn/protocol/imap"
	"posthorn/protocol/sasl"
)

// plaintextAllowed: passwords in the clear only over TLS, from loopback, or
// with allow_plaintext_auth (RFC 9051 6.2.3, RFC 8314 3).
func (s *session) plaintextAllowed() bool {
	loopback := s.remote.Addr().IsLoopback() && !s.srv.loopbackIsRemote
	return s.tls != nil || s.srv.cfg.AllowPlaintextAuth || loopback
}

// authMechanisms lists the AUTH= capabilities: only SCRAM without TLS
// (RFC 9051 6.2.2, 11.1: no plaintext mechanism over an unprotected link).
func (s *session) authMechanisms() []string {
	return sasl.Mechanisms(s.plaintextAllowed())
}

// cmdStartTLS: RFC 9051 6.2.1. The tagged OK is sent in the clear, then the
// handshake; whatever the client sent after STARTTLS before the handshake
// is thrown away with the old buffers (CVE-2011-0411, as RFC 3207 4.2).
func (s *session) cmdStartTLS(c *imap.Command) error {
	p := c.Args()
	if err := p.End(); err != nil {
		return err
	}
	if s.srv.cfg.TLS == nil || s.tls != nil {
		return bad("STARTTLS not available")
	}
	injected := s.dec.Buffered()
	s.enc.StatusResponse(c.Tag, imap.StatusOK, "", "Begin TLS negotiation now")
	if err := s.flush(); err != nil {
		return errClose
	}
	tc := tls.Server(s.conn, s.srv.cfg.TLS)
	tc.SetDeadline(time.Now().Add(s.srv.limits.TLSHandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		s.srv.log.Info("imap starttls handshake failed", "remote", s.remote.String(), "err", err)
		return errClose
	}
	st := tc.ConnectionState()
	s.conn = tc
	s.guard.SetConn(tc)
	s.tls = &st
	s.setStreams(tc)
	if injected > 0 {
		s.srv.log.Warn("imap starttls: discarded plaintext sent after STARTTLS", "remote", s.remote.String(), "bytes", injected)
	}
	return errReplied
}

// cmdLogin: RFC 9051 6.2.3.
func (s *session) cmdLogin(c *imap.Command) error {
	p := c.Args()
	if err := p.SP(); err != nil {
		return err
	}
	user, err := p.AString()
	if err != nil {
		return err
	}
	if err := p.SP(); err != nil {
		return err
	}
	pass, err := p.AString()
	if err != nil {
		return err
	}
	if err := p.End(); err != nil {
		return err
	}
	if s.srv.cfg.Auth == nil {
		return no("", "LOGIN not available")
	}
	if !s.plaintextAllowed() {
		// RFC 9051 6.2.3 and 7.1: LOGINDISABLED is advertised; the
		// password was sent in the clear anyway, but is not checked.
		return no(imap.CodePrivacyRequired, "LOGIN requires TLS (use STARTTLS)")
	}
	if s.lockedOut() {
		return s.authLocked("LOGIN")
	}
	ctx, cancel := s.commandContext()
	defer cancel()
	account, err := s.srv.cfg.Auth.Verify(ctx, user, pass)
	s.throttle(user)
	if err != nil {
		return s.authFailed("LOGIN", user, err)
	}
	return s.authenticated(account, user, "LOGIN")
}

// cmdAuthenticate: RFC 9051 6.2.2, with an initial response (SASL-IR,
// RFC 4959 3: "=" is an empty one).
func (s *session) cmdAuthenticate(c *imap.Command) error {
	p := c.Args()
	if err := p.SP(); err != nil {
		return err
	}
	mech, err := p.Atom()
	if err != nil {
		return err
	}
	var resp []byte
	if p.Accept(' ') {
		ir, err := p.Atom()
		if err != nil {
			return err
		}
		if ir == "=" {
			resp = []byte{}
		} else if resp, err = base64.StdEncoding.DecodeString(ir); err != nil {
			return bad("Invalid base64 in initial response")
		}
	}
	if err := p.End(); err != nil {
		return err
	}
	if s.srv.cfg.Auth == nil {
		return no("", "Authentication not available")
	}
	mech = strings.ToUpper(mech)
	if (mech == sasl.MechPlain || mech == sasl.MechLogin) && !s.plaintextAllowed() {
		return no(imap.CodePrivacyRequired, "This mechanism requires TLS (use STARTTLS)")
	}
	if !sasl.Offered(mech, s.plaintextAllowed()) {
		return no("", "Unsupported authentication mechanism")
	}
	if s.lockedOut() {
		return s.authLocked(mech)
	}
	srv, err := sasl.NewServer(mech, s.srv.cfg.Auth)
	if err != nil {
		return no("", "Unsupported authentication mechanism")
	}
	ctx, cancel := s.commandContext()
	defer cancel()
	for steps := 0; ; steps++ {
		challenge, done, err := srv.Next(ctx, resp)
		if err != nil {
			s.throttle(srv.Identity())
			return s.authFailed(mech, srv.Identity(), err)
		}
		if done {
			s.throttle(srv.Identity())
			return s.authenticated(srv.Account(), srv.Identity(), mech)
		}
		if steps >= 10 {
			return s.authFailed(mech, srv.Identity(), sasl.ErrMalformed)
		}
		// RFC 9051 6.2.2: challenges are "+ " base64.
		s.enc.ContinueBase64(challenge)
		if err := s.flush(); err != nil {
			return errClose
		}
		s.conn.SetReadDeadline(time.Now().Add(s.srv.limits.PreAuthTimeout))
		line, err := s.dec.ReadLine()
		if err != nil {
			return errClose
		}
		if sasl.IsAbort(line) {
			// RFC 9051 6.2.2: the client cancels with "*"; BAD.
			return bad("Authentication cancelled")
		}
		if len(line) > sasl.MaxResponseLine {
			return s.authFailed(mech, srv.Identity(), sasl.ErrMalformed)
		}
		if resp, err = base64.StdEncoding.DecodeString(string(line)); err != nil {
			return bad("Invalid base64 in response")
		}
	}
}

// throttle waits as long as the limiter asks for this address and identity
// before the outcome is sent, on success too, so that timing does not
// tell an unknown user from a wrong password (ROBUSTNESS.md).
func (s *session) throttle(identity string) {
	l := s.srv.cfg.Limiter
	if l == nil {
		return
	}
	if d := l.Delay(s.remote.Addr(), identity); d > 0 {
		s.flush()
		time.Sleep(min(d, s.srv.limits.PreAuthTimeout))
	}
}

// authFailed answers a failed login: the same NO [AUTHENTICATIONFAILED]
// for an unknown user and a wrong password (RFC 9051 7.1), BAD for a
// malformed exchange, NO [UNAVAILABLE] for a store failure; after
// Limits.AuthFailures, BYE.
func (s *session) authFailed(mech, identity string, err error) error {
	ip := s.remote.Addr()
	s.srv.log.Info("imap auth failed", "listener", s.srv.cfg.Listener, "remote", ip.String(), "mechanism", mech, "identity", identity, "err", err)
	var r error
	switch {
	case errors.Is(err, sasl.ErrMalformed):
		r = bad("Malformed authentication exchange")
	case errors.Is(err, sasl.ErrAuthFailed), errors.Is(err, sasl.ErrUnknownUser):
		r = no(imap.CodeAuthenticationFailed, "Authentication failed")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		r = no(imap.CodeUnavailable, "Temporary authentication failure")
	default:
		r = no(imap.CodeUnavailable, "Temporary authentication failure")
	}
	if l := s.srv.cfg.Limiter; l != nil && l.Failure(ip, identity) {
		s.srv.log.Warn("imap auth: address locked out", "listener", s.srv.cfg.Listener, "remote", ip.String(), "for", l.Config().Window)
	}
	return s.countAuthFailure(r)
}

// countAuthFailure counts a failed or refused login of the session: r, or
// after Limits.AuthFailures, r and BYE.
func (s *session) countAuthFailure(r error) error {
	if s.authFails++; s.authFails >= s.srv.limits.AuthFailures {
		var rp *reply
		errors.As(r, &rp)
		s.enc.StatusResponse(s.curTag, rp.status, rp.code, rp.text)
		s.bye("Too many authentication failures")
		return errClose
	}
	return r
}

// lockedOut reports whether the limiter refuses logins from the client's
// address.
func (s *session) lockedOut() bool {
	_, locked := s.srv.cfg.Limiter.Locked(s.remote.Addr())
	return locked
}

// authLocked refuses a login from a locked-out address before the
// credentials are checked. NO [UNAVAILABLE] (RFC 5530 3: a temporary
// failure; try again later), not [AUTHENTICATIONFAILED], which would make
// a client ask its user for another password. It counts as a failed login
// of the session.
func (s *session) authLocked(mech string) error {
	s.srv.log.Info("imap auth refused: address locked out", "listener", s.srv.cfg.Listener, "remote", s.remote.Addr().String(), "mechanism", mech)
	return s.countAuthFailure(no(imap.CodeUnavailable, "Too many authentication failures from your address, try again later"))
}

// authenticated moves to the authenticated state (RFC 9051 3.2) once the
// account is open and within its connection cap.
func (s *session) authenticated(account, identity, mech string) error {
	if !s.srv.claimAccount(account) {
		return no(imap.CodeLimit, "Too many connections for this account")
	}
	acct, err := s.srv.cfg.OpenAccount(account)
	if err != nil {
		s.srv.releaseAccount(account)
		s.srv.log.Error("imap: opening account", "account", account, "err", err)
		return no(imap.CodeUnavailable, "Mailbox temporarily unavailable")
	}
	if l := s.srv.cfg.Limiter; l != nil {
		l.Success(s.remote.Addr(), identity)
	}
	s.claimed, s.user, s.acct = true, account, acct
	// Subscribe before any read of the store, so that no change between
	// a read and the subscription can be missed.
	s.sub = acct.Subscribe()
	s.state = stateAuthenticated
	s.dec.SetLimits(s.decoderLimits()) // APPEND-sized commands from now on
	s.srv.log.Info("imap login", "listener", s.srv.cfg.Listener, "remote", s.remote.Addr().String(), "mechanism", mech, "account", account)
	// RFC 9051 6.2.2, 6.2.3: the OK may carry the new capabilities.
	s.okCode = imap.Code(s.capabilityString())
	s.okText = "Logged in"
	return nil
}
