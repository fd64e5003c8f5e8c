package sasl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Mechanism names as registered with IANA (RFC 4422 7.1).
const (
	MechSCRAMSHA256 = "SCRAM-SHA-256" // RFC 7677 3
	MechPlain       = "PLAIN"         // RFC 4616 2
	MechLogin       = "LOGIN"         // draft-murchison-sasl-login-00
)

// MaxResponse bounds one decoded client response, in octets. RFC 4616 2
// requires accepting 255 octets for each PLAIN field; SCRAM messages are a few
// hundred octets. Anything longer is ErrMalformed.
const MaxResponse = 8 << 10

// MaxResponseLine is the longest base64 line that can decode to MaxResponse
// octets: protocol code may refuse a longer client line without decoding it.
const MaxResponseLine = (MaxResponse + 2) / 3 * 4

// Errors returned by Server.Next and NewServer. Match them with errors.Is:
// they may be wrapped with a reason meant for logs, never for the client.
var (
	// ErrAuthFailed: the credentials were not accepted. Unknown user, wrong
	// password and a refused authorization identity all give this one error
	// (RFC 4422 3.6).
	ErrAuthFailed = errors.New("sasl: authentication failed")
	// ErrUnknownUser is returned by Credentials.SCRAM for a user it does not
	// know; mechanisms never return it to the protocol (they turn it into
	// ErrAuthFailed at the end of the exchange).
	ErrUnknownUser = errors.New("sasl: unknown user")
	// ErrAborted: the client cancelled the exchange with "*" (RFC 4422 3.5;
	// RFC 4954 4, RFC 5034 4, RFC 9051 6.2.2). The protocol code detects it
	// with IsAbort and returns it itself.
	ErrAborted = errors.New("sasl: exchange aborted by client")
	// ErrMalformed: the response breaks the mechanism's syntax or a limit.
	ErrMalformed = errors.New("sasl: malformed response")
	// ErrUnknownMechanism: NewServer was given a name this package does not
	// implement (SMTP 504 5.5.4, RFC 4954 4).
	ErrUnknownMechanism = errors.New("sasl: unknown mechanism")
)

// Credentials is what the mechanisms need from the account store.
type Credentials interface {
	// Verify checks a plaintext password (PLAIN, LOGIN) and returns the
	// account it authenticates. An unknown user and a wrong password must be
	// indistinguishable: the same error, wrapping ErrAuthFailed (or
	// ErrUnknownUser, which the mechanisms treat the same), and similar time.
	// Any other error is a server-side failure.
	Verify(ctx context.Context, username, password string) (account string, err error)

	// SCRAM returns the SCRAM-SHA-256 verifier of username (RFC 5802 3) and
	// its account. For an unknown user, or one without a usable verifier, it
	// must return ErrUnknownUser (wrapped or not): the mechanism then goes on
	// with a fake verifier so that the messages look the same and the
	// exchange fails only at the proof (no user enumeration). With
	// ErrUnknownUser the store should also return a verifier whose
	// Iterations is the count it gives new accounts, so the fake one
	// announces the same count; zero means DefaultIterations. Any other
	// error is a server-side failure.
	SCRAM(ctx context.Context, username string) (SCRAMVerifier, string, error)
}

// Server is one authentication exchange of one mechanism. It is not safe for
// concurrent use; an exchange belongs to one connection.
type Server interface {
	// Next takes the client's response and returns the next challenge, or
	// done=true once the client is authenticated (see Account). The first
	// call passes the initial response: nil when the client sent none, an
	// empty non-nil slice for an empty one ("="). When done is false the
	// challenge is non-nil (possibly empty). Any error ends the exchange;
	// so does done=true. Further calls return ErrMalformed.
	Next(ctx context.Context, response []byte) (challenge []byte, done bool, err error)
	// Mechanism returns the mechanism's registered name.
	Mechanism() string
	// Identity returns the authentication identity (the username the client
	// gave) once known, else "": for logs and throttling. It is set even
	// when authentication fails.
	Identity() string
	// Account returns the authenticated account after Next returned
	// done=true, else "".
	Account() string
}

// Mechanisms returns the mechanism names to advertise, strongest first. With
// plaintext false (the connection is not protected by TLS) only SCRAM-SHA-256
// is offered: PLAIN and LOGIN send the password itself (RFC 4954 9, RFC 4616
// 5, RFC 9051 6.2.3).
func Mechanisms(plaintext bool) []string {
	if !plaintext {
		return []string{MechSCRAMSHA256}
	}
	return []string{MechSCRAMSHA256, MechPlain, MechLogin}
}

// Offered reports whether name (case-insensitive, RFC 4422 3.1) is among
// Mechanisms(plaintext). Protocol code checks it before NewServer, which
// knows nothing of the connection.
func Offered(name string, plaintext bool) bool {
	for _, m := range Mechanisms(plaintext) {
		if strings.EqualFold(name, m) {
			return true
		}
	}
	return false
}

// NewServer starts an exchange of mechanism name (case-insensitive, RFC 4422
// 3.1) against creds. An unknown name gives ErrUnknownMechanism.
func NewServer(name string, creds Credentials) (Server, error) {
	switch strings.ToUpper(name) {
	case MechSCRAMSHA256:
		return newSCRAMServer(creds), nil
	case MechPlain:
		return &plainServer{creds: creds}, nil
	case MechLogin:
		return &loginServer{creds: creds}, nil
	}
	return nil, ErrUnknownMechanism
}

// IsAbort reports whether a client line (without its CRLF, before base64
// decoding) cancels the exchange: a single "*" in SMTP (RFC 4954 4), POP3
// (RFC 5034 4) and IMAP (RFC 9051 6.2.2). The protocol code then ends the
// exchange with ErrAborted.
func IsAbort(line []byte) bool {
	return len(line) == 1 && line[0] == '*'
}

// errFinished is returned by Next after the exchange ended.
var errFinished = fmt.Errorf("%w: exchange already finished", ErrMalformed)

// malformed wraps ErrMalformed with a reason for logs.
func malformed(mech, reason string) error {
	return fmt.Errorf("%w: %s: %s", ErrMalformed, mech, reason)
}

// checkLength enforces MaxResponse.
func checkLength(mech string, response []byte) error {
	if len(response) > MaxResponse {
		return malformed(mech, "response too long")
	}
	return nil
}

// credentialError turns a store error into what Next returns: the bare
// ErrAuthFailed for every kind of bad credential, so that callers cannot
// tell them apart even by the error text, and a wrapped error for failures
// of the store itself.
func credentialError(mech string, err error) error {
	if errors.Is(err, ErrAuthFailed) || errors.Is(err, ErrUnknownUser) {
		return ErrAuthFailed
	}
	return fmt.Errorf("sasl: %s: credentials: %w", mech, err)
}

// validText reports whether b is UTF-8 without NUL: RFC 4616 2 SAFE, and
// what LOGIN's username and password may hold.
func validText(b []byte) bool {
	for _, c := range b {
		if c == 0 {
			return false
		}
	}
	return utf8.Valid(b)
}
