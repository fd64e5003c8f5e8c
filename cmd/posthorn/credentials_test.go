package main

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"posthorn/mailbox"
	"posthorn/protocol/sasl"
)

// SCRAM-SHA-256 works from the stored PBKDF2-SHA256 hash: the verifier the
// adapter derives equals the one computed from the password itself, and an
// unknown user gets ErrUnknownUser with the store's iteration count.
func TestCredentialsSCRAM(t *testing.T) {
	st, err := mailbox.Open(t.TempDir(), mailbox.Options{PBKDF2Iterations: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AddUser("alice@example.org", "pencil"); err != nil {
		t.Fatal(err)
	}
	c := credentials{store: st}
	v, acc, err := c.SCRAM(context.Background(), "Alice@Example.org")
	if err != nil || acc != "alice@example.org" {
		t.Fatalf("SCRAM: %v, %q", err, acc)
	}
	want := sasl.NewSCRAMVerifier("pencil", v.Salt, v.Iterations)
	if v.Iterations != 4096 || !bytes.Equal(v.StoredKey, want.StoredKey) || !bytes.Equal(v.ServerKey, want.ServerKey) {
		t.Fatalf("verifier from the stored hash differs from the password's")
	}
	if _, _, err := c.SCRAM(context.Background(), "nobody@example.org"); !errors.Is(err, sasl.ErrUnknownUser) {
		t.Fatalf("unknown user: %v", err)
	}
	if _, err := c.Verify(context.Background(), "alice@example.org", "wrong"); !errors.Is(err, sasl.ErrAuthFailed) {
		t.Fatalf("wrong password: %v", err)
	}
	if acc, err := c.Verify(context.Background(), "alice@example.org", "pencil"); err != nil || acc != "alice@example.org" {
		t.Fatalf("right password: %v %q", err, acc)
	}
}
