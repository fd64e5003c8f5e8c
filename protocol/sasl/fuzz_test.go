package sasl

import (
	"context"
	"strings"
	"testing"
)

// checkKind fails unless err is nil or one of the kinds a client can cause.
func checkKind(t *testing.T, what string, err error) {
	t.Helper()
	switch errKind(err) {
	case "ok", "malformed", "authfailed":
	default:
		t.Fatalf("%s: undeclared error %v", what, err)
	}
}

func FuzzPLAIN(f *testing.F) {
	for _, s := range []string{
		"\x00user\x00pencil", "user\x00user\x00pencil", "alice\x00user\x00pencil",
		"\x00user\x00pen", "\x00nobody\x00x", "", "\x00", "\x00\x00", "a\x00b", "\x00a\x00b\x00c",
		"\x00jürgen\x00grüße", "\x00us\xffer\x00p", strings.Repeat("\x00", 300),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		authzid, authcid, passwd, err := parsePlain(msg)
		checkKind(t, "parsePlain", err)
		if err == nil {
			// Parsing loses nothing.
			if got := authzid + "\x00" + authcid + "\x00" + passwd; got != string(msg) {
				t.Fatalf("round trip %q != %q", got, msg)
			}
			if authcid == "" || passwd == "" || !validText([]byte(authzid+authcid+passwd)) {
				t.Fatalf("accepted invalid fields %q %q %q", authzid, authcid, passwd)
			}
		}
		srv, _ := NewServer(MechPlain, newMemCreds())
		_, done, err := srv.Next(context.Background(), msg)
		checkKind(t, "Next", err)
		if done != (err == nil) {
			t.Fatalf("done %v with error %v", done, err)
		}
		if done && (authzid != "" && authzid != authcid || newMemCreds().users[authcid] != passwd) {
			t.Fatalf("authenticated %q", msg)
		}
	})
}

func FuzzSCRAMClientFirst(f *testing.F) {
	creds := rfcVerifierCreds()
	for _, s := range []string{
		rfcClientFirst, "y,,n=user,r=abc", "n,a=user,n=user,r=abc", "n,a=bob,n=user,r=abc",
		"n,,n=a=2Cb=3Dc,r=abc,x=1", "n,,n=nobody,r=abc", "p=tls-unique,,n=user,r=abc",
		"n,,m=x,n=user,r=abc", "n,,n=us=er,r=abc", "n,,n=user,r=a,b", "n,,", "n", "",
		"n,,n=jürgen,r=\x7e\x21", "n,,n=user,r=abc,",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		cf, err := parseClientFirst(msg)
		checkKind(t, "parseClientFirst", err)
		if err == nil {
			if cf.gs2Header+cf.bare != string(msg) {
				t.Fatalf("split %q + %q != %q", cf.gs2Header, cf.bare, msg)
			}
			// saslname decoding is exact: encoding it again gives the input.
			if !strings.HasPrefix(cf.bare, "n="+escapeSASLName(cf.username)+",r="+cf.nonce) {
				t.Fatalf("username %q nonce %q do not match %q", cf.username, cf.nonce, cf.bare)
			}
			if !isPrintable(cf.nonce) {
				t.Fatalf("nonce %q", cf.nonce)
			}
		}
		srv := newSCRAMServer(creds)
		srv.serverNonce = rfcServerNonce
		ch, done, err := srv.Next(context.Background(), msg)
		checkKind(t, "Next", err)
		if done {
			t.Fatal("done after client-first")
		}
		if err == nil && !strings.HasPrefix(string(ch), "r="+cf.nonce+rfcServerNonce+",s=") {
			t.Fatalf("server-first %q", ch)
		}
	})
}

// rfcVerifierCreds serves the RFC 7677 3 user from a verifier derived once,
// so that fuzzing does not spend its time in PBKDF2.
func rfcVerifierCreds() credsFunc {
	v := NewSCRAMVerifier("pencil", mustB64("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096)
	return func(u string) (SCRAMVerifier, string, error) {
		if u != "user" {
			return SCRAMVerifier{}, "", ErrUnknownUser
		}
		return v, "acct:user", nil
	}
}

func FuzzSCRAMClientFinal(f *testing.F) {
	creds := rfcVerifierCreds()
	nonce := "rOprNGfwEbeRWgbNEkqO" + rfcServerNonce
	for _, s := range []string{
		rfcClientFinal,
		"c=biws,r=" + nonce + ",x=1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=" + nonce + ",p=AAAA",
		"c=eSws,r=" + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=" + nonce, "c=biws,r=x,p=", "c=,r=,p=", ",,", "", "p=",
		"c=bi\nws,r=" + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		cf, err := parseClientFinal(msg)
		checkKind(t, "parseClientFinal", err)
		if err == nil && !strings.HasPrefix(string(msg), cf.withoutProof+",p=") {
			t.Fatalf("without-proof %q is not a prefix of %q", cf.withoutProof, msg)
		}
		srv := newSCRAMServer(creds)
		srv.serverNonce = rfcServerNonce
		if ch, _, err := srv.Next(context.Background(), []byte(rfcClientFirst)); err != nil || string(ch) != rfcServerFirst {
			t.Fatalf("client-first: %q %v", ch, err)
		}
		ch, done, err := srv.Next(context.Background(), msg)
		checkKind(t, "Next", err)
		if done {
			t.Fatal("done before the empty response")
		}
		// Only the RFC's own message carries a right proof.
		if err == nil && (string(msg) != rfcClientFinal || string(ch) != rfcServerFinal) {
			t.Fatalf("accepted %q with server-final %q", msg, ch)
		}
	})
}
