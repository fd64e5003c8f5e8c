package sasl

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// RFC 7677 3 example exchange (username "user", password "pencil").
const (
	rfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
	rfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	rfcServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	rfcClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	rfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
)

func TestSCRAMRFC7677Vector(t *testing.T) {
	for _, initial := range []bool{true, false} {
		srv := newSCRAMServer(newMemCreds())
		srv.serverNonce = rfcServerNonce
		var steps []step
		if !initial {
			steps = append(steps, step{resp: nil, wantChallenge: ""}) // RFC 4422 5, 2a
		}
		steps = append(steps,
			step{resp: []byte(rfcClientFirst), wantChallenge: rfcServerFirst},
			step{resp: []byte(rfcClientFinal), wantChallenge: rfcServerFinal},
			step{resp: []byte{}, wantDone: true},
		)
		runScript(t, srv, steps)
		if srv.Account() != "acct:user" || srv.Identity() != "user" {
			t.Errorf("Account %q Identity %q", srv.Account(), srv.Identity())
		}
	}
}

// TestSCRAMVerifierVector derives the RFC 7677 3 verifier both ways.
func TestSCRAMVerifierVector(t *testing.T) {
	salt := mustB64("W22ZaJ0SNY7soEsUEjb6gQ==")
	v := NewSCRAMVerifier("pencil", salt, 4096)
	srv := newSCRAMServer(credsFunc(func(string) (SCRAMVerifier, string, error) { return v, "acct", nil }))
	srv.serverNonce = rfcServerNonce
	runScript(t, srv, []step{
		{resp: []byte(rfcClientFirst), wantChallenge: rfcServerFirst},
		{resp: []byte(rfcClientFinal), wantChallenge: rfcServerFinal},
		{resp: []byte{}, wantDone: true},
	})
	if z := NewSCRAMVerifier("pencil", salt, 0); z.usable() {
		t.Errorf("iterations 0 gave a usable verifier")
	}
}

// credsFunc serves SCRAM from a function; Verify always fails.
type credsFunc func(string) (SCRAMVerifier, string, error)

func (f credsFunc) Verify(context.Context, string, string) (string, error) {
	return "", ErrAuthFailed
}
func (f credsFunc) SCRAM(_ context.Context, u string) (SCRAMVerifier, string, error) { return f(u) }

func TestSCRAM(t *testing.T) {
	tests := []struct {
		name     string
		client   scramClient
		wantErr  string // at the client-final step unless firstErr
		firstErr bool   // the error comes at client-first
		identity string
	}{
		{name: "success", client: scramClient{user: "alice", password: "wonderland"}, identity: "alice"},
		{name: "flag y", client: scramClient{user: "alice", password: "wonderland", flag: "y"}, identity: "alice"},
		{name: "authzid equal", client: scramClient{user: "alice", authzid: "alice", password: "wonderland"}, identity: "alice"},
		{name: "escaped username", client: scramClient{user: "a,b=c", password: "comma"}, identity: "a,b=c"},
		{name: "UTF-8", client: scramClient{user: "jürgen", password: "grüße"}, identity: "jürgen"},
		{name: "extensions ignored", client: scramClient{user: "alice", password: "wonderland", firstExt: ",x=1,Y=two", finalExt: ",z=3"}, identity: "alice"},
		{name: "wrong password", client: scramClient{user: "alice", password: "Wonderland"}, wantErr: "authfailed", identity: "alice"},
		{name: "unknown user", client: scramClient{user: "nobody", password: "wonderland"}, wantErr: "authfailed", identity: "nobody"},
		{name: "authzid other user", client: scramClient{user: "alice", authzid: "user", password: "wonderland"}, wantErr: "authfailed", firstErr: true, identity: "alice"},
		{name: "channel binding required", client: scramClient{user: "alice", password: "wonderland", flag: "p=tls-unique"}, wantErr: "malformed", firstErr: true},
		{name: "mandatory extension in first", client: scramClient{user: "alice", password: "wonderland", firstExt: ",m=x"}, wantErr: "malformed", firstErr: true},
		{name: "mandatory extension in final", client: scramClient{user: "alice", password: "wonderland", finalExt: ",m=x"}, wantErr: "malformed", identity: "alice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client
			c.cnonce = "fyko+d2lbbFgONRv9qkxdawL"
			srv, err := NewServer("scram-sha-256", newMemCreds())
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			serverFirst, done, err := srv.Next(ctx, c.first())
			if tc.firstErr {
				if errKind(err) != tc.wantErr {
					t.Fatalf("client-first: %v, want %s", err, tc.wantErr)
				}
				if srv.Identity() != tc.identity {
					t.Errorf("Identity() = %q, want %q", srv.Identity(), tc.identity)
				}
				return
			}
			if err != nil || done {
				t.Fatalf("client-first: done %v err %v", done, err)
			}
			final, err := c.final(serverFirst)
			if err != nil {
				t.Fatal(err)
			}
			serverFinal, done, err := srv.Next(ctx, final)
			want := tc.wantErr
			if want == "" {
				want = "ok"
			}
			if got := errKind(err); got != want {
				t.Fatalf("client-final: %v (%s), want %q", err, got, tc.wantErr)
			}
			if srv.Identity() != tc.identity {
				t.Errorf("Identity() = %q, want %q", srv.Identity(), tc.identity)
			}
			if tc.wantErr == "authfailed" && err != ErrAuthFailed {
				t.Errorf("bad credentials gave %v, want the bare ErrAuthFailed", err)
			}
			if err != nil {
				if srv.Account() != "" {
					t.Errorf("Account() = %q after failure", srv.Account())
				}
				return
			}
			if done || !c.verifyServerFinal(serverFinal) {
				t.Fatalf("server-final %q done %v, want %q", serverFinal, done, c.wantServerFinal())
			}
			if srv.Account() != "" {
				t.Errorf("Account() = %q before the final empty response", srv.Account())
			}
			runScript(t, srv, []step{{resp: []byte{}, wantDone: true}, {resp: []byte{}, wantErr: "malformed"}})
			if want := "acct:" + c.user; srv.Account() != want {
				t.Errorf("Account() = %q, want %q", srv.Account(), want)
			}
		})
	}
}

// TestSCRAMUnknownUserLooksReal: an unknown user's server-first has the same
// shape as a real one's, its salt is stable per user (and per case), and the
// iteration count is the store's.
func TestSCRAMUnknownUserLooksReal(t *testing.T) {
	first := func(user string) []string {
		srv, _ := NewServer(MechSCRAMSHA256, newMemCreds())
		ch, _, err := srv.Next(context.Background(), []byte("n,,n="+user+",r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(string(ch), ",")
	}
	real, fake, fake2, fakeUpper, other := first("alice"), first("bob"), first("bob"), first("BOB"), first("carol")
	if len(fake) != 3 || len(fake[1]) != len(real[1]) || fake[2] != real[2] {
		t.Errorf("fake server-first %q does not look like real %q", fake, real)
	}
	if fake[1] != fake2[1] || fake[1] != fakeUpper[1] {
		t.Errorf("fake salt not stable: %q %q %q", fake[1], fake2[1], fakeUpper[1])
	}
	if fake[1] == other[1] {
		t.Errorf("two unknown users share a salt")
	}
	if fake[0] == fake2[0] {
		t.Errorf("server nonce repeated: %q", fake[0])
	}
	if nonce := strings.TrimPrefix(fake[0], "r=abc"); len(nonce) < 24 || !isPrintable(nonce) {
		t.Errorf("server nonce %q too short or not printable", nonce)
	}
	// The store's count for new accounts is announced; without one, 4096.
	creds := newMemCreds()
	creds.iterations = 600000
	srv, _ := NewServer(MechSCRAMSHA256, creds)
	ch, _, _ := srv.Next(context.Background(), []byte("n,,n=bob,r=abc"))
	if !strings.HasSuffix(string(ch), ",i=600000") {
		t.Errorf("server-first %q, want i=600000", ch)
	}
	creds.iterations = 0
	srv, _ = NewServer(MechSCRAMSHA256, creds)
	ch, _, _ = srv.Next(context.Background(), []byte("n,,n=bob,r=abc"))
	if !strings.HasSuffix(string(ch), ",i=4096") {
		t.Errorf("server-first %q, want i=4096", ch)
	}
}

func TestSCRAMClientFirstMalformed(t *testing.T) {
	for _, msg := range []string{
		"",
		"x,,n=user,r=abc",            // RFC 5802 5: flag must be n, y or p
		"N,,n=user,r=abc",            // attribute names are case-sensitive
		"n",                          // truncated
		"n,",                         // no authzid terminator
		"n,,",                        // no bare part
		"n,,n=user",                  // no nonce
		"n,,r=abc,n=user",            // order is fixed
		"n,,n=,r=abc",                // empty username
		"n,,n=us=er,r=abc",           // bad escape
		"n,,n=us=2,r=abc",            // truncated escape
		"n,,n=user=,r=abc",           // "=" at the end
		"n,,n=us=2c,r=abc",           // escapes are upper case
		"n,,n=user,r=",               // empty nonce
		"n,,n=user,r=a b",            // space is not printable
		"n,,n=user,r=abc,",           // empty extension
		"n,,n=user,r=abc,x",          // extension without value
		"n,,n=user,r=abc,1=2",        // extension name must be ALPHA
		"n,,n=user,r=abc,x=",         // empty extension value
		"n,b=x,n=user,r=abc",         // authzid must be "a="
		"n,a=,n=user,r=abc",          // empty authzid
		"n,a=x=y,n=user,r=abc",       // bad authzid escape
		"m=ext,n=user,r=abc",         // not a gs2 flag
		"n,,m=ext,n=user,r=abc",      // RFC 5802 5.1 m: MUST fail
		"n,,n=us\x00er,r=abc",        // NUL
		"n,,n=us\xffer,r=abc",        // bad UTF-8
		"p=tls-unique,,n=user,r=abc", // no channel binding here
		"n,,n=user,r=" + strings.Repeat("a", MaxResponse),
	} {
		_, err := parseClientFirst([]byte(msg))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("parseClientFirst(%q) = %v, want ErrMalformed", msg, err)
		}
	}
}

func TestParseClientFirst(t *testing.T) {
	cf, err := parseClientFirst([]byte("y,a=x=2Cy=3D,n=x=2Cy=3D,r=abc,q=1"))
	if err != nil {
		t.Fatal(err)
	}
	want := clientFirstMessage{gs2Header: "y,a=x=2Cy=3D,", authzid: "x,y=", username: "x,y=", nonce: "abc", bare: "n=x=2Cy=3D,r=abc,q=1"}
	if cf != want {
		t.Fatalf("got %+v, want %+v", cf, want)
	}
}

func TestSCRAMClientFinalMalformed(t *testing.T) {
	nonce := "rOprNGfwEbeRWgbNEkqO" + rfcServerNonce
	proof := "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	for _, tc := range []struct{ msg, want string }{
		{"", "malformed"},
		{"c=biws,r=" + nonce, "malformed"},                   // no proof
		{"r=" + nonce + ",c=biws," + proof, "malformed"},     // order
		{"c=biws," + proof + ",r=" + nonce, "malformed"},     // proof not last
		{"c=biw,r=" + nonce + "," + proof, "malformed"},      // bad base64
		{"c=bi\nws,r=" + nonce + "," + proof, "malformed"},   // newline in base64
		{"c=biws,r=" + nonce + ",p=dHzb", "malformed"},       // proof too short
		{"c=biws,r=" + nonce + ",p=", "malformed"},           // empty proof
		{"c=biws,r=" + nonce + ",p=!!!!", "malformed"},       // proof not base64
		{"c=biws,r=" + nonce + ",m=x," + proof, "malformed"}, // RFC 5802 5.1 m
		{"c=biws,r=" + nonce + ",," + proof, "malformed"},    // empty extension
		{"c=biws,r=," + proof, "malformed"},                  // empty nonce
		{"c=biws,r=" + nonce + ",p=" + strings.Repeat("A", MaxResponse), "malformed"},
		{"c=eSws,r=" + nonce + "," + proof, "authfailed"},        // "y,," is not what was sent
		{"c=,r=" + nonce + "," + proof, "authfailed"},            // empty cbind-input
		{"c=biws,r=rOprNGfwEbeRWgbNEkqO," + proof, "authfailed"}, // server nonce dropped
		{"c=biws,r=" + nonce + "x," + proof, "authfailed"},       // nonce changed
		{"c=biws,r=" + nonce + ",p=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), "authfailed"},
	} {
		srv := newSCRAMServer(newMemCreds())
		srv.serverNonce = rfcServerNonce
		runScript(t, srv, []step{
			{resp: []byte(rfcClientFirst), wantChallenge: rfcServerFirst},
			{resp: []byte(tc.msg), wantErr: tc.want},
		})
		// Every error ends the exchange, even a retry with the right message.
		if _, _, err := srv.Next(context.Background(), []byte(rfcClientFinal)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: retry after error gave %v", tc.msg, err)
		}
	}
}

func TestSCRAMFinalStep(t *testing.T) {
	srv := newSCRAMServer(newMemCreds())
	srv.serverNonce = rfcServerNonce
	runScript(t, srv, []step{
		{resp: []byte(rfcClientFirst), wantChallenge: rfcServerFirst},
		{resp: []byte(rfcClientFinal), wantChallenge: rfcServerFinal},
		{resp: []byte("x"), wantErr: "malformed"}, // RFC 4422 5, 2b: must be empty
	})
	if srv.Account() != "" {
		t.Errorf("Account() = %q after a failed exchange", srv.Account())
	}
}

func TestSCRAMStoreErrors(t *testing.T) {
	creds := newMemCreds()
	creds.fail = errStoreDown
	srv, _ := NewServer(MechSCRAMSHA256, creds)
	_, _, err := srv.Next(context.Background(), []byte(rfcClientFirst))
	if !errors.Is(err, errStoreDown) || errKind(err) != "other" {
		t.Errorf("store failure gave %v", err)
	}
	bad := credsFunc(func(string) (SCRAMVerifier, string, error) {
		return SCRAMVerifier{Salt: []byte("s"), Iterations: 4096, StoredKey: []byte("short")}, "acct", nil
	})
	srv, _ = NewServer(MechSCRAMSHA256, bad)
	if _, _, err := srv.Next(context.Background(), []byte(rfcClientFirst)); err == nil || errKind(err) != "other" {
		t.Errorf("unusable verifier gave %v", err)
	}
}

// TestVerifierFromSaltedPassword: the store's PBKDF2 hash is SCRAM's
// SaltedPassword.
func TestVerifierFromSaltedPassword(t *testing.T) {
	salt := []byte("0123456789abcdef")
	c := scramClient{password: "pencil"}
	if _, err := c.final([]byte("r=,s=" + base64.StdEncoding.EncodeToString(salt) + ",i=4096")); err != nil {
		t.Fatal(err)
	}
	a := NewSCRAMVerifier("pencil", salt, 4096)
	b := VerifierFromSaltedPassword(c.salted, salt, 4096)
	if !bytes.Equal(a.StoredKey, b.StoredKey) || !bytes.Equal(a.ServerKey, b.ServerKey) ||
		!bytes.Equal(a.Salt, b.Salt) || a.Iterations != b.Iterations || !a.usable() {
		t.Fatalf("verifiers differ: %+v %+v", a, b)
	}
	salt[0] = 'X' // the verifier keeps its own copy
	if b.Salt[0] != '0' {
		t.Errorf("verifier shares the caller's salt")
	}
}

func TestDecodeSASLName(t *testing.T) {
	for in, want := range map[string]string{
		"user": "user", "a=2Cb": "a,b", "=3D=3D": "==", "=2C": ",", "jürgen": "jürgen",
	} {
		if got, ok := decodeSASLName(in); !ok || got != want {
			t.Errorf("decodeSASLName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "=", "=2", "=2c", "=3d", "a=b", "==3D"} {
		if got, ok := decodeSASLName(in); ok {
			t.Errorf("decodeSASLName(%q) = %q, want failure", in, got)
		}
	}
}
