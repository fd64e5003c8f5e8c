package server

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"posthorn/protocol/sasl"
	"posthorn/protocol/smtp"
	"posthorn/protocol/textline"
)

// authLineLimit is the longest AUTH command or response line.
// RFC 4954 4: 12288 octets is a sufficient line length for AUTH.
const authLineLimit = 12288

// maxAuthFailures ends a session after this many failed AUTH commands
// (ROBUSTNESS.md: repeated bad passwords are answered more and more slowly,
// then disconnected).
const maxAuthFailures = 3

// authOffered says whether AUTH is offered at all on this session.
func (s *session) authOffered() bool { return s.srv.cfg.Auth != nil }

// plaintextAllowed: plaintext passwords only over TLS, except from loopback
// or with allow_plaintext_auth (RFC 8314 3, RFC 4954 4).
func (s *session) plaintextAllowed() bool {
	loopback := s.info.RemoteAddr.Addr().IsLoopback() && !s.srv.loopbackIsRemote
	return s.info.TLS != nil || s.srv.cfg.AllowPlaintextAuth || loopback
}

// authMechanisms lists what EHLO advertises. RFC 4954 6 (538): mechanisms not
// permitted without encryption are not advertised without it.
func (s *session) authMechanisms() []string {
	return sasl.Mechanisms(s.plaintextAllowed())
}

func (s *session) cmdAUTH(arg string) error {
	if !s.authOffered() {
		return smtp.R(smtp.CodeNotImplemented, smtp.EnhInvalidCommand, "AUTH not available")
	}
	if s.info.Account != "" {
		// RFC 4954 4: after a successful AUTH, another AUTH is an error.
		return smtp.R(smtp.CodeBadSequence, smtp.EnhInvalidCommand, "Already authenticated")
	}
	mech, initial, hasInitial := strings.Cut(strings.TrimSpace(arg), " ")
	mech = strings.ToUpper(mech)
	if mech == "" {
		return smtp.R(smtp.CodeArgSyntax, smtp.EnhInvalidArgs, "Syntax: AUTH mechanism [initial-response]")
	}
	if (mech == sasl.MechPlain || mech == sasl.MechLogin) && !s.plaintextAllowed() {
		// ROBUSTNESS.md: a plaintext password before TLS from a
		// non-loopback client is refused with 530 5.7.0 (as Postfix does;
		// RFC 4954 deprecates 538).
		return smtp.R(smtp.CodeAuthRequired, smtp.EnhSecurityOther, "Must issue a STARTTLS command first")
	}
	if !sasl.Offered(mech, s.plaintextAllowed()) {
		// RFC 4954 4: 504 for a mechanism that is not supported.
		return smtp.R(smtp.CodeParamNotImpl, smtp.EnhInvalidArgs, "Unrecognized authentication type")
	}
	if _, locked := s.srv.cfg.Limiter.Locked(s.info.RemoteAddr.Addr()); locked {
		return s.authLocked(mech)
	}
	srv, err := sasl.NewServer(mech, s.srv.cfg.Auth)
	if err != nil {
		// RFC 4954 4: 504 for a mechanism that is not supported.
		return smtp.R(smtp.CodeParamNotImpl, smtp.EnhInvalidArgs, "Unrecognized authentication type")
	}
	var resp []byte
	if hasInitial {
		// RFC 4954 4: "=" is an empty initial response.
		if initial == "=" {
			resp = []byte{}
		} else if resp, err = base64.StdEncoding.DecodeString(initial); err != nil {
			return smtp.R(smtp.CodeArgSyntax, smtp.EnhSyntaxError, "Invalid base64 in initial response")
		}
	}
	ctx, cancel := s.commandContext()
	defer cancel()
	for steps := 0; ; steps++ {
		challenge, done, err := srv.Next(ctx, resp)
		if err != nil {
			return s.authFailed(srv, err)
		}
		if done {
			s.throttle(srv)
			s.info.Account = srv.Account()
			if l := s.srv.cfg.Limiter; l != nil {
				l.Success(s.info.RemoteAddr.Addr(), srv.Identity())
			}
			s.srv.log.Info("smtp auth", "listener", s.info.Listener, "remote", s.info.RemoteAddr.Addr().String(), "mechanism", mech, "account", s.info.Account)
			s.reply(smtp.R(smtp.CodeAuthOK, "7.0", "Authentication successful"))
			return nil
		}
		if steps >= 10 {
			return s.authFailed(srv, sasl.ErrMalformed)
		}
		// RFC 4954 4: a challenge is "334 " base64; an empty one is "334 ".
		s.reply(smtp.Reply{Code: smtp.CodeAuthContinue, Text: base64.StdEncoding.EncodeToString(challenge)})
		if err := s.flush(); err != nil {
			return errCloseSession
		}
		s.conn.SetDeadline(s.deadline(s.srv.limits.CommandTimeout))
		line, err := s.r.ReadLine(authLineLimit)
		if err != nil {
			if errors.Is(err, textline.ErrLineTooLong) {
				// RFC 4954 6: 500 5.5.6 for an over-long exchange line.
				s.reply(smtp.R(smtp.CodeSyntax, "5.6", "Authentication Exchange line is too long"))
			}
			return errCloseSession
		}
		if sasl.IsAbort(line) {
			// RFC 4954 4: the client cancels with "*"; 501.
			return smtp.R(smtp.CodeArgSyntax, smtp.EnhProtoOther, "Authentication aborted")
		}
		if resp, err = base64.StdEncoding.DecodeString(string(line)); err != nil {
			return smtp.R(smtp.CodeArgSyntax, smtp.EnhSyntaxError, "Invalid base64 in response")
		}
	}
}

// throttle waits, before the outcome of an exchange is sent, as long as the
// limiter asks for this address and identity. Waiting on success too keeps
// the timing of success and failure alike (the credentials were already
// checked; the client learns the outcome only after the wait).
func (s *session) throttle(srv sasl.Server) {
	l := s.srv.cfg.Limiter
	if l == nil {
		return
	}
	if d := l.Delay(s.info.RemoteAddr.Addr(), srv.Identity()); d > 0 {
		s.flush()
		time.Sleep(min(d, s.srv.limits.CommandTimeout))
	}
}

// authFailed answers a failed exchange: 535 5.7.8 after a delay that grows
// with the failures of this address and identity, the same for an unknown
// user as for a wrong password; after maxAuthFailures, 421 and close.
func (s *session) authFailed(srv sasl.Server, err error) error {
	ip := s.info.RemoteAddr.Addr()
	s.authFailures++
	s.srv.log.Info("smtp auth failed", "listener", s.info.Listener, "remote", ip.String(), "mechanism", srv.Mechanism(), "identity", srv.Identity(), "err", err)
	s.throttle(srv)
	if l := s.srv.cfg.Limiter; l != nil && l.Failure(ip, srv.Identity()) {
		s.srv.log.Warn("smtp auth: address locked out", "listener", s.info.Listener, "remote", ip.String(), "for", l.Config().Window)
	}
	var r smtp.Reply
	switch {
	case errors.Is(err, sasl.ErrMalformed):
		r = smtp.R(smtp.CodeArgSyntax, smtp.EnhSyntaxError, "Malformed authentication exchange")
	case errors.Is(err, sasl.ErrAuthFailed), errors.Is(err, sasl.ErrUnknownUser):
		r = smtp.R(smtp.CodeAuthFailed, smtp.EnhAuthCredentials, "Authentication credentials invalid")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		r = smtp.R(smtp.CodeTempAuthFail, smtp.EnhSecurityOther, "Temporary authentication failure")
	default:
		r = smtp.R(smtp.CodeTempAuthFail, smtp.EnhSecurityOther, "Temporary authentication failure")
	}
	if s.authFailures >= maxAuthFailures {
		s.reply(r)
		s.reply(smtp.R(smtp.CodeUnavailable, smtp.EnhSecurityOther, s.srv.cfg.Hostname+" Too many authentication failures, closing connection"))
		return errCloseSession
	}
	return r
}

// authLocked refuses an AUTH from an address that the limiter has locked
// out, before any credentials are read: 454 4.7.0, the temporary failure of
// RFC 4954 6, so the client tries again later rather than asking for
// another password. It counts as a failure of the session.
func (s *session) authLocked(mech string) error {
	s.authFailures++
	s.srv.log.Info("smtp auth refused: address locked out", "listener", s.info.Listener, "remote", s.info.RemoteAddr.Addr().String(), "mechanism", mech)
	r := smtp.R(smtp.CodeTempAuthFail, smtp.EnhSecurityOther, "Too many authentication failures from your address, try again later")
	if s.authFailures >= maxAuthFailures {
		s.reply(r)
		s.reply(smtp.R(smtp.CodeUnavailable, smtp.EnhSecurityOther, s.srv.cfg.Hostname+" Too many authentication failures, closing connection"))
		return errCloseSession
	}
	return r
}
