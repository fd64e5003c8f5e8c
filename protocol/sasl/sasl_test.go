package sasl

import (
	"errors"
	"slices"
	"testing"
)

func TestMechanisms(t *testing.T) {
	if got := Mechanisms(true); !slices.Equal(got, []string{"SCRAM-SHA-256", "PLAIN", "LOGIN"}) {
		t.Errorf("Mechanisms(true) = %q", got)
	}
	if got := Mechanisms(false); !slices.Equal(got, []string{"SCRAM-SHA-256"}) {
		t.Errorf("Mechanisms(false) = %q", got)
	}
	for _, tc := range []struct {
		name      string
		plaintext bool
		want      bool
	}{
		{"plain", true, true},
		{"PLAIN", false, false},
		{"login", false, false},
		{"Scram-Sha-256", false, true},
		{"SCRAM-SHA-256-PLUS", true, false},
		{"CRAM-MD5", true, false},
		{"", true, false},
	} {
		if got := Offered(tc.name, tc.plaintext); got != tc.want {
			t.Errorf("Offered(%q, %v) = %v", tc.name, tc.plaintext, got)
		}
	}
}

func TestNewServer(t *testing.T) {
	for name, want := range map[string]string{
		"plain": "PLAIN", "Login": "LOGIN", "scram-sha-256": "SCRAM-SHA-256", "SCRAM-SHA-256": "SCRAM-SHA-256",
	} {
		srv, err := NewServer(name, newMemCreds())
		if err != nil || srv.Mechanism() != want {
			t.Errorf("NewServer(%q) = %v, %v", name, srv, err)
		}
	}
	for _, name := range []string{"", "CRAM-MD5", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "PLAIN "} {
		if _, err := NewServer(name, newMemCreds()); !errors.Is(err, ErrUnknownMechanism) {
			t.Errorf("NewServer(%q) error %v, want ErrUnknownMechanism", name, err)
		}
	}
}

func TestIsAbort(t *testing.T) {
	for in, want := range map[string]bool{"*": true, "": false, "**": false, " *": false, "* ": false, "Kg==": false, "=": false} {
		if got := IsAbort([]byte(in)); got != want {
			t.Errorf("IsAbort(%q) = %v", in, got)
		}
	}
}
