package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

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

// POP3 deletions reach IMAP sessions as expunges: the maildrop's Delete
// expunges through the store, which publishes each UID on the account's
// change feed (issue 4, item 3).
func TestPOP3DeleteIsExpungeOnFeed(t *testing.T) {
	st, err := mailbox.Open(t.TempDir(), mailbox.Options{PBKDF2Iterations: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AddUser("demo@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3 {
		if err := st.Deliver(ctx, []string{"demo@example.org"}, []byte(fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i)), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	acc, _ := st.Account("demo@example.org")
	sub := acc.Subscribe()
	defer sub.Unsubscribe()
	md, err := pop3Backend{store: st}.Open(ctx, "demo@example.org")
	if err != nil {
		t.Fatal(err)
	}
	msgs := md.Messages()
	if len(msgs) != 3 {
		t.Fatalf("maildrop has %d messages", len(msgs))
	}
	// Mail arriving during the session is not in its list.
	st.Deliver(ctx, []string{"demo@example.org"}, []byte("Subject: late\r\n\r\nx\r\n"), time.Now())
	if len(md.Messages()) != 3 {
		t.Fatal("a message delivered during the session joined its list")
	}
	if err := md.Delete(ctx, []uint32{msgs[0].UID, msgs[2].UID}); err != nil {
		t.Fatal(err)
	}
	var expunged []uint32
	timeout := time.After(5 * time.Second)
	for len(expunged) < 2 {
		select {
		case c := <-sub.C():
			if c.Kind == mailbox.ChangeExpunge && c.Folder == "INBOX" {
				expunged = append(expunged, c.UID)
			}
		case <-timeout:
			t.Fatalf("expunges on the feed: %v", expunged)
		}
	}
	if expunged[0] != msgs[0].UID || expunged[1] != msgs[2].UID {
		t.Fatalf("expunged %v, want %d and %d", expunged, msgs[0].UID, msgs[2].UID)
	}
	left, _ := acc.Messages("INBOX")
	if len(left) != 2 {
		t.Fatalf("%d messages left, want 2 (one kept, one late)", len(left))
	}
}
