package server

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"posthorn/mailbox"
)

// Races between sessions that the IMAP concurrency checker
// (cmd/posthorn/internal/imapcheck) found. Each is made deterministic by an
// Account that runs another session's change (on the real account) at the
// point inside a command where the race put it.

// hookedAccount is the real account with hooks, each run once.
type hookedAccount struct {
	Account
	mu          sync.Mutex
	beforeStore func() // at the start of StoreFlags
	afterStore  func() // after StoreFlags committed
	afterScan   func() // after Folder read the folder's record
}

// take returns a hook and clears it.
func (h *hookedAccount) take(f *func()) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn := *f
	*f = nil
	return fn
}

func (h *hookedAccount) arm(f *func(), fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	*f = fn
}

func (h *hookedAccount) StoreFlags(ctx context.Context, folder string, uids []uint32, op byte, flags []string) ([]mailbox.MessageInfo, error) {
	if fn := h.take(&h.beforeStore); fn != nil {
		fn()
	}
	out, err := h.Account.StoreFlags(ctx, folder, uids, op, flags)
	if fn := h.take(&h.afterStore); fn != nil {
		fn()
	}
	return out, err
}

func (h *hookedAccount) Scan(folder string, fromUID uint32, fn func(mailbox.MessageInfo) error) (mailbox.FolderInfo, error) {
	info, err := h.Account.Scan(folder, fromUID, fn)
	if fn := h.take(&h.afterScan); fn != nil {
		fn()
	}
	return info, err
}

// startHookedServer serves testUser's account through a hookedAccount; the
// INBOX holds n copies of simple.eml.
func startHookedServer(t *testing.T, n int) (*testServer, *hookedAccount, *client) {
	t.Helper()
	ts := startTestServer(t, testOptions{})
	h := &hookedAccount{Account: ts.acct}
	for range n {
		if _, err := ts.acct.Append(context.Background(), "INBOX", readMessage(t, "simple.eml"), nil, testDate); err != nil {
			t.Fatal(err)
		}
	}
	cfg := ts.srv.cfg
	cfg.OpenAccount = func(name string) (Account, error) {
		if name != testUser {
			return nil, errors.New("only " + testUser)
		}
		return h, nil
	}
	srv := New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	cl := dial(t, ln.Addr().String())
	cl.login()
	// IMAP4rev2: no \Recent in the FLAGS compared below.
	if _, r := cl.cmd("e", "ENABLE IMAP4rev2"); !strings.HasPrefix(r, "e OK") {
		t.Fatalf("ENABLE: %q", r)
	}
	cl.selectInbox()
	return ts, h, cl
}

// RFC 9051 6.4.6 note: "Regardless of whether or not the ".SILENT" suffix
// was used, the server SHOULD send an untagged FETCH response if a change
// to a message's flags from an external source is observed." Another
// session's STORE committing while a STORE .SILENT runs (before or after
// its own change) used to be lost: the session took the message's new
// MODSEQ as seen and never reported the other change.
func TestSilentStoreReportsConcurrentChange(t *testing.T) {
	for _, when := range []string{"before", "after", "none"} {
		t.Run(when, func(t *testing.T) {
			ts, h, cl := startHookedServer(t, 1)
			other := func() {
				if _, err := ts.acct.StoreFlags(context.Background(), "INBOX", []uint32{1}, '+', []string{`\Flagged`}); err != nil {
					t.Error(err)
				}
			}
			want := []string{`* 1 FETCH (UID 1 FLAGS (\Flagged \Seen))`}
			switch when {
			case "before":
				h.arm(&h.beforeStore, other)
			case "after":
				h.arm(&h.afterStore, other)
			case "none":
				want = nil // .SILENT: no FETCH for the session's own change
			}
			untagged, r := cl.cmd("a", `STORE 1 +FLAGS.SILENT (\Seen)`)
			if r != "a OK Completed" || !slices.Equal(untagged, want) {
				t.Errorf("STORE .SILENT answered %q, %q; want %q", untagged, r, want)
			}
			if untagged, _ := cl.cmd("b", "NOOP"); len(untagged) != 0 {
				t.Errorf("NOOP answered %q, want nothing more", untagged)
			}
		})
	}
}

// RFC 9051 6.4.5: BODY[] sets \Seen, and the FLAGS sent with it must have
// it. When another session set \Seen between the FETCH reading the flags
// and storing \Seen (so the FETCH's store changed nothing), the FLAGS sent
// were those read before.
func TestFetchBodyFlagsAfterConcurrentSeen(t *testing.T) {
	ts, h, cl := startHookedServer(t, 1)
	h.arm(&h.beforeStore, func() {
		if _, err := ts.acct.StoreFlags(context.Background(), "INBOX", []uint32{1}, '+', []string{`\Seen`}); err != nil {
			t.Error(err)
		}
	})
	untagged, r := cl.cmd("a", "FETCH 1 (FLAGS BODY[])")
	if r != "a OK Completed" || len(untagged) == 0 || !strings.HasPrefix(untagged[0], `* 1 FETCH (FLAGS (\Seen) BODY[] {`) {
		t.Errorf("FETCH answered %q, %q; want FLAGS (\\Seen) with BODY[]", untagged, r)
	}
}

// RFC 9051 2.3.1.1: UIDNEXT is above every UID of the mailbox. SELECT
// once read the folder's record and then its messages, so a message
// appended in between was announced by EXISTS with a UID not below
// UIDNEXT. Now both come from one read (Account.Scan): a message appended
// right after it is not in EXISTS, UIDNEXT is the one before it, and the
// next NOOP announces it.
func TestSelectUIDNextAboveAnnouncedMessages(t *testing.T) {
	ts, h, cl := startHookedServer(t, 1)
	h.arm(&h.afterScan, func() {
		if _, err := ts.acct.Append(context.Background(), "INBOX", readMessage(t, "simple.eml"), nil, testDate); err != nil {
			t.Error(err)
		}
	})
	untagged, r := cl.cmd("a", "SELECT INBOX")
	if !strings.HasPrefix(r, "a OK") || !slices.Contains(untagged, "* 1 EXISTS") ||
		!slices.Contains(untagged, "* OK [UIDNEXT 2] Predicted next UID") {
		t.Errorf("SELECT answered %q, %q; want 1 EXISTS and UIDNEXT 2", untagged, r)
	}
	// The new message is announced after the UIDNEXT line, at the end of
	// SELECT or at the next NOOP.
	more, r := cl.cmd("b", "NOOP")
	if all := append(untagged, more...); !strings.HasPrefix(r, "b OK") || !slices.Contains(all, "* 2 EXISTS") ||
		slices.Index(all, "* 2 EXISTS") < slices.Index(all, "* OK [UIDNEXT 2] Predicted next UID") {
		t.Errorf("SELECT and NOOP answered %q; want 2 EXISTS after UIDNEXT 2", all)
	}
}
