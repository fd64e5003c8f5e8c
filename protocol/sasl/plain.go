package sasl

import (
	"bytes"
	"context"
)

// plainServer implements PLAIN (RFC 4616): one client message carrying the
// password in the clear.
type plainServer struct {
	creds    Credentials
	step     int // 0: nothing yet; 1: empty challenge sent; 2: finished
	identity string
	account  string
}

func (s *plainServer) Mechanism() string { return MechPlain }
func (s *plainServer) Identity() string  { return s.identity }
func (s *plainServer) Account() string   { return s.account }

// Next implements Server.
func (s *plainServer) Next(ctx context.Context, response []byte) ([]byte, bool, error) {
	switch s.step {
	case 0:
		if response == nil {
			// RFC 4422 5, 2a: PLAIN is client-first (RFC 4616 2), so
			// without an initial response the first challenge is empty.
			s.step = 1
			return []byte{}, false, nil
		}
	case 1:
	default:
		return nil, false, errFinished
	}
	s.step = 2
	authzid, authcid, passwd, err := parsePlain(response)
	if err != nil {
		return nil, false, err
	}
	s.identity = authcid
	// RFC 4616 2: the server checks that the credentials permit acting as
	// authzid; here only as oneself (RFC 4422 3.4.1: empty means derived).
	if authzid != "" && authzid != authcid {
		return nil, false, ErrAuthFailed
	}
	account, err := s.creds.Verify(ctx, authcid, passwd)
	if err != nil {
		return nil, false, credentialError(MechPlain, err)
	}
	s.account = account
	return nil, true, nil
}

// parsePlain splits a PLAIN message (RFC 4616 2):
//
//	message = [authzid] UTF8NUL authcid UTF8NUL passwd
//
// authcid and passwd are 1*SAFE: non-empty UTF-8 without NUL. Errors wrap
// ErrMalformed.
func parsePlain(msg []byte) (authzid, authcid, passwd string, err error) {
	if err := checkLength(MechPlain, msg); err != nil {
		return "", "", "", err
	}
	fields := bytes.Split(msg, []byte{0})
	if len(fields) != 3 {
		return "", "", "", malformed(MechPlain, "want authzid NUL authcid NUL passwd")
	}
	for _, f := range fields {
		if !validText(f) {
			return "", "", "", malformed(MechPlain, "invalid UTF-8")
		}
	}
	if len(fields[1]) == 0 || len(fields[2]) == 0 {
		return "", "", "", malformed(MechPlain, "empty authcid or passwd")
	}
	return string(fields[0]), string(fields[1]), string(fields[2]), nil
}

// LOGIN challenges (draft-murchison-sasl-login-00 2). Clients are meant to
// ignore their text, but widely deployed ones expect these exact words.
var (
	loginUsername = []byte("Username:")
	loginPassword = []byte("Password:")
)

// loginServer implements LOGIN (draft-murchison-sasl-login-00): the server
// asks for the username, then the password, each sent in the clear.
type loginServer struct {
	creds    Credentials
	step     int // 0: nothing yet; 1: "Username:" sent; 2: "Password:" sent; 3: finished
	identity string
	account  string
}

func (s *loginServer) Mechanism() string { return MechLogin }
func (s *loginServer) Identity() string  { return s.identity }
func (s *loginServer) Account() string   { return s.account }

// Next implements Server.
func (s *loginServer) Next(ctx context.Context, response []byte) ([]byte, bool, error) {
	switch s.step {
	case 0:
		if response == nil {
			s.step = 1
			return bytes.Clone(loginUsername), false, nil
		}
		// An initial response is taken as the username, as Cyrus SASL
		// and Postfix do; some clients send "AUTH LOGIN <username>".
		fallthrough
	case 1:
		name, err := loginField(response, "username")
		if err != nil {
			s.step = 3
			return nil, false, err
		}
		s.identity = name
		s.step = 2
		return bytes.Clone(loginPassword), false, nil
	case 2:
		s.step = 3
		passwd, err := loginField(response, "password")
		if err != nil {
			return nil, false, err
		}
		account, err := s.creds.Verify(ctx, s.identity, passwd)
		if err != nil {
			return nil, false, credentialError(MechLogin, err)
		}
		s.account = account
		return nil, true, nil
	}
	return nil, false, errFinished
}

// loginField checks a LOGIN username or password: non-empty UTF-8 without
// NUL, within MaxResponse.
func loginField(b []byte, what string) (string, error) {
	if err := checkLength(MechLogin, b); err != nil {
		return "", err
	}
	if len(b) == 0 {
		return "", malformed(MechLogin, "empty "+what)
	}
	if !validText(b) {
		return "", malformed(MechLogin, "invalid UTF-8 in "+what)
	}
	return string(b), nil
}
