package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// memCreds is an in-memory Credentials: username → password.
type memCreds struct {
	users      map[string]string
	salts      map[string][]byte // per user; default: derived from the name
	iterations int               // for SCRAM verifiers, real and announced for unknown users
	fail       error             // when set, every lookup fails with it
}

var errStoreDown = errors.New("store down")

func newMemCreds() *memCreds {
	return &memCreds{
		users: map[string]string{
			"user":   "pencil",
			"alice":  "wonderland",
			"a,b=c":  "comma",
			"jürgen": "grüße",
		},
		salts:      map[string][]byte{"user": mustB64("W22ZaJ0SNY7soEsUEjb6gQ==")},
		iterations: 4096,
	}
}

func (c *memCreds) Verify(_ context.Context, username, password string) (string, error) {
	if c.fail != nil {
		return "", c.fail
	}
	if pw, ok := c.users[username]; !ok || pw != password {
		return "", fmt.Errorf("memcreds: %w", ErrAuthFailed)
	}
	return "acct:" + username, nil
}

func (c *memCreds) SCRAM(_ context.Context, username string) (SCRAMVerifier, string, error) {
	if c.fail != nil {
		return SCRAMVerifier{}, "", c.fail
	}
	pw, ok := c.users[username]
	if !ok {
		return SCRAMVerifier{Iterations: c.iterations}, "", fmt.Errorf("memcreds: %w", ErrUnknownUser)
	}
	salt, ok := c.salts[username]
	if !ok {
		sum := sha256.Sum256([]byte("salt:" + username))
		salt = sum[:SaltSize]
	}
	return NewSCRAMVerifier(pw, salt, c.iterations), "acct:" + username, nil
}

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// scramClient is a minimal SCRAM-SHA-256 client (RFC 5802 3, 7) for tests.
type scramClient struct {
	user, authzid, password, cnonce string
	flag                            string // gs2-cbind-flag; "n" if empty
	firstExt, finalExt              string // extensions appended to client-first / before the proof

	bare, serverFirst, withoutProof string
	salted                          []byte
}

func escapeSASLName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

func (c *scramClient) gs2Header() string {
	flag := c.flag
	if flag == "" {
		flag = "n"
	}
	a := ""
	if c.authzid != "" {
		a = "a=" + escapeSASLName(c.authzid)
	}
	return flag + "," + a + ","
}

func (c *scramClient) first() []byte {
	c.bare = "n=" + escapeSASLName(c.user) + ",r=" + c.cnonce + c.firstExt
	return []byte(c.gs2Header() + c.bare)
}

// final answers a server-first-message with the client-final-message.
func (c *scramClient) final(serverFirst []byte) ([]byte, error) {
	c.serverFirst = string(serverFirst)
	attrs := strings.Split(c.serverFirst, ",")
	if len(attrs) < 3 || !strings.HasPrefix(attrs[0], "r="+c.cnonce) ||
		!strings.HasPrefix(attrs[1], "s=") || !strings.HasPrefix(attrs[2], "i=") {
		return nil, fmt.Errorf("bad server-first %q", serverFirst)
	}
	salt, err := base64.StdEncoding.DecodeString(attrs[1][2:])
	if err != nil {
		return nil, err
	}
	iter, err := strconv.Atoi(attrs[2][2:])
	if err != nil {
		return nil, err
	}
	c.salted, err = pbkdf2.Key(sha256.New, c.password, salt, iter, sha256.Size)
	if err != nil {
		return nil, err
	}
	c.withoutProof = "c=" + base64.StdEncoding.EncodeToString([]byte(c.gs2Header())) +
		"," + attrs[0] + c.finalExt
	clientKey := hmacSHA256(c.salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	sig := hmacSHA256(storedKey[:], c.authMessage())
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	return []byte(c.withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

func (c *scramClient) authMessage() string {
	return c.bare + "," + c.serverFirst + "," + c.withoutProof
}

// wantServerFinal is the server-final-message the client expects.
func (c *scramClient) wantServerFinal() string {
	sig := hmacSHA256(hmacSHA256(c.salted, "Server Key"), c.authMessage())
	return "v=" + base64.StdEncoding.EncodeToString(sig)
}

// verifyServerFinal checks the server's signature as a client must (RFC 5802 5).
func (c *scramClient) verifyServerFinal(msg []byte) bool {
	return hmac.Equal(msg, []byte(c.wantServerFinal()))
}

// errKind names which declared error err is, for table tests and fuzzing.
func errKind(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrAuthFailed):
		return "authfailed"
	case errors.Is(err, ErrAborted):
		return "aborted"
	case errors.Is(err, ErrUnknownMechanism):
		return "unknownmech"
	}
	return "other"
}

// step is one Next call of a scripted exchange.
type step struct {
	resp          []byte // nil: no initial response
	wantChallenge string
	wantDone      bool
	wantErr       string // errKind; "" means "ok"
}

// runScript drives srv through steps and returns it.
func runScript(t *testing.T, srv Server, steps []step) {
	t.Helper()
	for i, st := range steps {
		ch, done, err := srv.Next(context.Background(), st.resp)
		want := st.wantErr
		if want == "" {
			want = "ok"
		}
		if got := errKind(err); got != want {
			t.Fatalf("step %d: error %v (%s), want %s", i, err, got, want)
		}
		if err != nil {
			return
		}
		if done != st.wantDone {
			t.Fatalf("step %d: done = %v, want %v", i, done, st.wantDone)
		}
		if !done && ch == nil {
			t.Fatalf("step %d: nil challenge with done=false", i)
		}
		if string(ch) != st.wantChallenge {
			t.Fatalf("step %d: challenge %q, want %q", i, ch, st.wantChallenge)
		}
	}
}
