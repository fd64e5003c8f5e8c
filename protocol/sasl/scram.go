package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// SCRAM parameters.
const (
	// DefaultIterations is the iteration count a fake verifier announces
	// when the store does not say what it uses: RFC 7677 3, "SHOULD be at
	// least 4096". The count itself comes from the store and is not
	// checked here; a store should not hand out fewer than this.
	DefaultIterations = 4096
	// SaltSize is the salt length of fake verifiers, in octets. Stores
	// should use the same length, or the length of "s=" tells real users
	// from unknown ones.
	SaltSize = 16
	// serverNonceSize is the random part of the server nonce, in octets
	// before base64 (RFC 5802 5.1 "r": unique per authentication; RFC
	// 4086).
	serverNonceSize = 24
)

// SCRAMVerifier is what a server stores for SCRAM-SHA-256 (RFC 5802 3): it
// can check a client's proof and prove itself to the client, but it does
// not let anyone log in as the user without the password.
type SCRAMVerifier struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte // H(HMAC(SaltedPassword, "Client Key"))
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key")
}

// NewSCRAMVerifier derives the SCRAM-SHA-256 verifier of password (RFC 5802
// 3, RFC 7677 3): SaltedPassword = Hi(password, salt, i), Hi being
// PBKDF2-HMAC-SHA256 with a 32-octet output (RFC 5802 2.2). The password is
// used as given (no SASLprep). It returns the zero SCRAMVerifier, which the
// mechanism refuses to use, if iterations < 1 or PBKDF2 fails (FIPS 140-only
// mode with a salt under 16 octets).
func NewSCRAMVerifier(password string, salt []byte, iterations int) SCRAMVerifier {
	if iterations < 1 {
		return SCRAMVerifier{}
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return SCRAMVerifier{}
	}
	return VerifierFromSaltedPassword(salted, salt, iterations)
}

// VerifierFromSaltedPassword completes a verifier from SaltedPassword (RFC
// 5802 3). A store that keeps PBKDF2-HMAC-SHA256(password, salt, i, 32) for
// plaintext logins already holds SCRAM-SHA-256's SaltedPassword, so it can
// serve SCRAM without a second password hash.
func VerifierFromSaltedPassword(salted, salt []byte, iterations int) SCRAMVerifier {
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	return SCRAMVerifier{
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  storedKey[:],
		ServerKey:  hmacSHA256(salted, "Server Key"),
	}
}

// usable reports whether v can run an exchange.
func (v SCRAMVerifier) usable() bool {
	return len(v.Salt) > 0 && v.Iterations > 0 &&
		len(v.StoredKey) == sha256.Size && len(v.ServerKey) == sha256.Size
}

func hmacSHA256(key []byte, data ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, d := range data {
		m.Write([]byte(d))
	}
	return m.Sum(nil)
}

// fakeKey is the per-process secret behind fake verifiers. It is drawn once
// and never changes, so an unknown user gets the same salt on every attempt,
// as a real one does; an attacker can neither predict it nor see it change
// within a process lifetime.
var fakeKey = sync.OnceValue(func() []byte {
	k := make([]byte, 32)
	rand.Read(k) // never fails (crypto/rand, Go 1.24)
	return k
})

// fakeVerifier stands in for an unknown user's verifier (RFC 5802 5.1 "e":
// the server may hide "unknown-user" behind a generic failure). The name is
// lower-cased first because the store compares names case-insensitively:
// otherwise "Bob" and "bob" would get different salts only when unknown.
func fakeVerifier(username string, iterations int) SCRAMVerifier {
	if iterations <= 0 {
		iterations = DefaultIterations
	}
	name := strings.ToLower(username)
	k := fakeKey()
	return SCRAMVerifier{
		Salt:       hmacSHA256(k, "salt\x00", name)[:SaltSize],
		Iterations: iterations,
		StoredKey:  hmacSHA256(k, "stored-key\x00", name),
		ServerKey:  hmacSHA256(k, "server-key\x00", name),
	}
}

// newServerNonce returns the server's nonce part: printable, no ","
// (RFC 5802 7 s-nonce), from crypto/rand.
func newServerNonce() string {
	b := make([]byte, serverNonceSize)
	rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)
}

// scramServer implements SCRAM-SHA-256 without channel binding (RFC 5802 5,
// RFC 7677 3):
//
//	C: client-first-message    (initial response, or after an empty challenge)
//	S: server-first-message    challenge
//	C: client-final-message
//	S: server-final-message    challenge "v=..." (additional data with success)
//	C: empty response          → done
type scramServer struct {
	creds Credentials
	step  scramStep

	// serverNonce is this exchange's nonce part; tests preset it.
	serverNonce string

	identity string
	pending  string // the store's account, reported once the exchange is done
	account  string

	gs2Header  string // echoed by the client in "c=" (RFC 5802 7 cbind-input)
	nonce      string // c-nonce + s-nonce
	authPrefix string // client-first-message-bare "," server-first-message
	verifier   SCRAMVerifier
	unknown    bool // verifier is fake: the proof must fail
}

// scramStep is where a SCRAM exchange stands.
type scramStep int

const (
	scramStart       scramStep = iota // nothing received
	scramClientFirst                  // empty challenge sent, client-first expected
	scramClientFinal                  // server-first sent, client-final expected
	scramEmpty                        // server-final sent, empty response expected
	scramFinished                     // done or failed
)

func newSCRAMServer(creds Credentials) *scramServer {
	return &scramServer{creds: creds}
}

func (s *scramServer) Mechanism() string { return MechSCRAMSHA256 }
func (s *scramServer) Identity() string  { return s.identity }

func (s *scramServer) Account() string { return s.account }

// Next implements Server. Each step is taken once, so an exchange is at most
// four calls.
func (s *scramServer) Next(ctx context.Context, response []byte) ([]byte, bool, error) {
	step := s.step
	s.step = scramFinished // every path below that continues sets the next step
	switch step {
	case scramStart:
		if response == nil {
			// RFC 5802 5.2, 2a and RFC 4422 5, 2a: client-first; without
			// an initial response the first challenge is empty.
			s.step = scramClientFirst
			return []byte{}, false, nil
		}
		return s.clientFirst(ctx, response)
	case scramClientFirst:
		return s.clientFirst(ctx, response)
	case scramClientFinal:
		return s.clientFinal(response)
	case scramEmpty:
		// RFC 4422 5, 2b: additional data with success sent as a
		// challenge is answered by an empty response.
		if len(response) != 0 {
			return nil, false, malformed(MechSCRAMSHA256, "non-empty response to server-final")
		}
		s.account = s.pending
		return nil, true, nil
	}
	return nil, false, errFinished
}

func (s *scramServer) clientFirst(ctx context.Context, response []byte) ([]byte, bool, error) {
	cf, err := parseClientFirst(response)
	if err != nil {
		return nil, false, err
	}
	s.identity = cf.username
	// RFC 5802 5.1 "a": the server checks the authorization identity
	// against its policy, which allows only oneself.
	if cf.authzid != "" && cf.authzid != cf.username {
		return nil, false, ErrAuthFailed
	}

	v, account, err := s.creds.SCRAM(ctx, cf.username)
	switch {
	case errors.Is(err, ErrUnknownUser):
		// Go on with a fake verifier; fail only at the proof.
		v, account, s.unknown = fakeVerifier(cf.username, v.Iterations), "", true
	case err != nil:
		return nil, false, credentialError(MechSCRAMSHA256, err)
	case !v.usable():
		return nil, false, fmt.Errorf("sasl: %s: store returned an unusable verifier", MechSCRAMSHA256)
	}
	s.verifier, s.pending = v, account

	if s.serverNonce == "" {
		s.serverNonce = newServerNonce()
	}
	// RFC 5802 5.1 "r": the server appends its nonce to the client's.
	s.nonce = cf.nonce + s.serverNonce
	serverFirst := "r=" + s.nonce +
		",s=" + base64.StdEncoding.EncodeToString(v.Salt) +
		",i=" + strconv.Itoa(v.Iterations)
	s.gs2Header = cf.gs2Header
	s.authPrefix = cf.bare + "," + serverFirst
	s.step = scramClientFinal
	return []byte(serverFirst), false, nil
}

func (s *scramServer) clientFinal(response []byte) ([]byte, bool, error) {
	cf, err := parseClientFinal(response)
	if err != nil {
		return nil, false, err
	}
	// RFC 5802 6: "The server MUST always validate the client's c= field."
	// Without channel binding, cbind-input is the gs2-header alone (RFC
	// 5802 7).
	if string(cf.channelBinding) != s.gs2Header {
		return nil, false, fmt.Errorf("%w: channel binding does not match", ErrAuthFailed)
	}
	// RFC 5802 5.1 "r": the nonce must be the one the server sent.
	if cf.nonce != s.nonce {
		return nil, false, fmt.Errorf("%w: nonce does not match", ErrAuthFailed)
	}
	if len(cf.proof) != sha256.Size {
		return nil, false, malformed(MechSCRAMSHA256, "proof length")
	}

	// RFC 5802 3: recover ClientKey from the proof and check it against
	// StoredKey. The same work is done for a fake verifier.
	authMessage := s.authPrefix + "," + cf.withoutProof
	clientSignature := hmacSHA256(s.verifier.StoredKey, authMessage)
	clientKey := make([]byte, sha256.Size)
	subtle.XORBytes(clientKey, cf.proof, clientSignature)
	storedKey := sha256.Sum256(clientKey)
	ok := subtle.ConstantTimeCompare(storedKey[:], s.verifier.StoredKey) == 1
	if !ok || s.unknown {
		// The same bare error for both: no user enumeration.
		return nil, false, ErrAuthFailed
	}
	serverSignature := hmacSHA256(s.verifier.ServerKey, authMessage)
	s.step = scramEmpty
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSignature)), false, nil
}
