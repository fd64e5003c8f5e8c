package sasl

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestPlain(t *testing.T) {
	long := strings.Repeat("u", 255) // RFC 4616 2: MUST accept 255 octets
	longPass := strings.Repeat("p", 255)
	tests := []struct {
		name      string
		noInitial bool // send no initial response: an empty challenge comes first
		msg       string
		wantErr   string
		account   string
		identity  string
	}{
		{name: "success", msg: "\x00user\x00pencil", account: "acct:user", identity: "user"},
		{name: "authzid equal", msg: "user\x00user\x00pencil", account: "acct:user", identity: "user"},
		{name: "no initial response", noInitial: true, msg: "\x00alice\x00wonderland", account: "acct:alice", identity: "alice"},
		{name: "UTF-8", msg: "\x00jürgen\x00grüße", account: "acct:jürgen", identity: "jürgen"},
		{name: "255-octet fields", msg: long + "\x00" + long + "\x00" + longPass, account: "acct:" + long, identity: long},
		{name: "wrong password", msg: "\x00user\x00pen", wantErr: "authfailed", identity: "user"},
		{name: "unknown user", msg: "\x00nobody\x00pencil", wantErr: "authfailed", identity: "nobody"},
		{name: "authzid other user", msg: "alice\x00user\x00pencil", wantErr: "authfailed", identity: "user"},
		{name: "password case", msg: "\x00user\x00Pencil", wantErr: "authfailed", identity: "user"},
		{name: "one NUL", msg: "user\x00pencil", wantErr: "malformed"},
		{name: "no NUL", msg: "userpencil", wantErr: "malformed"},
		{name: "three NULs", msg: "\x00user\x00pencil\x00", wantErr: "malformed"},
		{name: "NUL in password", msg: "\x00user\x00pen\x00cil", wantErr: "malformed"},
		{name: "empty authcid", msg: "\x00\x00pencil", wantErr: "malformed"},
		{name: "empty password", msg: "\x00user\x00", wantErr: "malformed"},
		{name: "empty message", msg: "", wantErr: "malformed"},
		{name: "empty after challenge", noInitial: true, msg: "", wantErr: "malformed"},
		{name: "bad UTF-8 authcid", msg: "\x00us\xffer\x00pencil", wantErr: "malformed"},
		{name: "bad UTF-8 password", msg: "\x00user\x00\xc3", wantErr: "malformed"},
		{name: "bad UTF-8 authzid", msg: "\xed\xa0\x80\x00user\x00pencil", wantErr: "malformed"},
		{name: "too long", msg: "\x00user\x00" + strings.Repeat("p", MaxResponse), wantErr: "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			creds := newMemCreds()
			creds.users[long] = longPass
			srv, err := NewServer("plain", creds)
			if err != nil {
				t.Fatal(err)
			}
			var steps []step
			if tc.noInitial {
				steps = append(steps, step{resp: nil, wantChallenge: ""})
			}
			steps = append(steps, step{resp: []byte(tc.msg), wantDone: true, wantErr: tc.wantErr})
			runScript(t, srv, steps)
			if got := srv.Identity(); got != tc.identity {
				t.Errorf("Identity() = %q, want %q", got, tc.identity)
			}
			want := tc.account
			if tc.wantErr != "" {
				want = ""
			}
			if got := srv.Account(); got != want {
				t.Errorf("Account() = %q, want %q", got, want)
			}
			if srv.Mechanism() != "PLAIN" {
				t.Errorf("Mechanism() = %q", srv.Mechanism())
			}
			// The exchange is over: one more step is refused.
			if _, _, err := srv.Next(context.Background(), []byte("\x00user\x00pencil")); !errors.Is(err, ErrMalformed) {
				t.Errorf("Next after the end: %v, want ErrMalformed", err)
			}
		})
	}
}

// TestBadCredentialsSameError: an unknown user and a wrong password give the
// very same error value, so nothing downstream can tell them apart.
func TestBadCredentialsSameError(t *testing.T) {
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		var errs []error
		for _, up := range [][2]string{{"user", "wrong"}, {"nobody", "pencil"}} {
			srv, _ := NewServer(mech, newMemCreds())
			var err error
			if mech == "PLAIN" {
				_, _, err = srv.Next(context.Background(), []byte("\x00"+up[0]+"\x00"+up[1]))
			} else {
				srv.Next(context.Background(), []byte(up[0]))
				_, _, err = srv.Next(context.Background(), []byte(up[1]))
			}
			errs = append(errs, err)
		}
		if errs[0] != ErrAuthFailed || errs[1] != ErrAuthFailed {
			t.Errorf("%s: errors %v and %v, want ErrAuthFailed for both", mech, errs[0], errs[1])
		}
	}
}

func TestPlainStoreFailure(t *testing.T) {
	creds := newMemCreds()
	creds.fail = errStoreDown
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		srv, _ := NewServer(mech, creds)
		var err error
		if mech == "PLAIN" {
			_, _, err = srv.Next(context.Background(), []byte("\x00user\x00pencil"))
		} else {
			srv.Next(context.Background(), []byte("user"))
			_, _, err = srv.Next(context.Background(), []byte("pencil"))
		}
		if !errors.Is(err, errStoreDown) || errors.Is(err, ErrAuthFailed) || errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want a server error wrapping errStoreDown", mech, err)
		}
	}
}

func TestLogin(t *testing.T) {
	u, p := "Username:", "Password:"
	tests := []struct {
		name     string
		steps    []step
		identity string
		account  string
	}{
		{"success", []step{
			{resp: nil, wantChallenge: u},
			{resp: []byte("user"), wantChallenge: p},
			{resp: []byte("pencil"), wantDone: true},
		}, "user", "acct:user"},
		{"initial response is the username", []step{
			{resp: []byte("alice"), wantChallenge: p},
			{resp: []byte("wonderland"), wantDone: true},
		}, "alice", "acct:alice"},
		{"wrong password", []step{
			{resp: nil, wantChallenge: u},
			{resp: []byte("user"), wantChallenge: p},
			{resp: []byte("pen"), wantErr: "authfailed"},
		}, "user", ""},
		{"unknown user", []step{
			{resp: []byte("nobody"), wantChallenge: p},
			{resp: []byte("pencil"), wantErr: "authfailed"},
		}, "nobody", ""},
		{"empty initial response", []step{
			{resp: []byte{}, wantErr: "malformed"},
		}, "", ""},
		{"empty username", []step{
			{resp: nil, wantChallenge: u},
			{resp: []byte{}, wantErr: "malformed"},
		}, "", ""},
		{"empty password", []step{
			{resp: []byte("user"), wantChallenge: p},
			{resp: []byte{}, wantErr: "malformed"},
		}, "user", ""},
		{"NUL in username", []step{
			{resp: []byte("us\x00er"), wantErr: "malformed"},
		}, "", ""},
		{"bad UTF-8 password", []step{
			{resp: []byte("user"), wantChallenge: p},
			{resp: []byte("\xff"), wantErr: "malformed"},
		}, "user", ""},
		{"username too long", []step{
			{resp: []byte(strings.Repeat("u", MaxResponse+1)), wantErr: "malformed"},
		}, "", ""},
		{"password too long", []step{
			{resp: []byte("user"), wantChallenge: p},
			{resp: []byte(strings.Repeat("p", MaxResponse+1)), wantErr: "malformed"},
		}, "user", ""},
		{"step after done", []step{
			{resp: []byte("user"), wantChallenge: p},
			{resp: []byte("pencil"), wantDone: true},
			{resp: []byte{}, wantErr: "malformed"},
		}, "user", "acct:user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := NewServer("login", newMemCreds())
			if err != nil {
				t.Fatal(err)
			}
			runScript(t, srv, tc.steps)
			if got := srv.Identity(); got != tc.identity {
				t.Errorf("Identity() = %q, want %q", got, tc.identity)
			}
			if got := srv.Account(); got != tc.account {
				t.Errorf("Account() = %q, want %q", got, tc.account)
			}
		})
	}
}

// TestLoginChallengesNotShared: a caller may scribble on a challenge.
func TestLoginChallengesNotShared(t *testing.T) {
	srv, _ := NewServer("LOGIN", newMemCreds())
	ch, _, _ := srv.Next(context.Background(), nil)
	ch[0] = 'X'
	srv2, _ := NewServer("LOGIN", newMemCreds())
	if ch2, _, _ := srv2.Next(context.Background(), nil); string(ch2) != "Username:" {
		t.Fatalf("challenge %q", ch2)
	}
}
