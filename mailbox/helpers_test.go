package mailbox

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// testClock is a settable clock for tests.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func testOptions() Options {
	return Options{PBKDF2Iterations: 1000, NoSync: true, RecipientDelimiter: "+"}
}

// openTestStore opens a store in a temporary directory, closed at cleanup.
func openTestStore(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data") // created by Open
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

// newTestAccount opens a store with one account "user@example.org".
func newTestAccount(t testing.TB) (*Store, *Account) {
	t.Helper()
	s, _ := openTestStore(t, testOptions())
	if err := s.AddUser("user@example.org", "secret"); err != nil {
		t.Fatalf("AddUser: %v", err)
	}
	a, err := s.Account("user@example.org")
	if err != nil {
		t.Fatalf("Account: %v", err)
	}
	return s, a
}

func mustAppend(t testing.TB, a *Account, folder, raw string, flags ...string) MessageInfo {
	t.Helper()
	info, err := a.Append(context.Background(), folder, []byte(raw), flags, time.Time{})
	if err != nil {
		t.Fatalf("Append(%s): %v", folder, err)
	}
	return info
}

func mustFolder(t testing.TB, a *Account, name string) FolderInfo {
	t.Helper()
	f, err := a.Folder(name)
	if err != nil {
		t.Fatalf("Folder(%s): %v", name, err)
	}
	return f
}

// wantCounts checks a folder's counters against a scan of its messages.
func wantCounts(t testing.TB, a *Account, name string, messages, unseen, deleted uint32, size int64) {
	t.Helper()
	f := mustFolder(t, a, name)
	if f.Messages != messages || f.Unseen != unseen || f.Deleted != deleted || f.Size != size {
		t.Fatalf("%s counts = messages %d unseen %d deleted %d size %d; want %d %d %d %d",
			name, f.Messages, f.Unseen, f.Deleted, f.Size, messages, unseen, deleted, size)
	}
	msgs, err := a.Messages(name)
	if err != nil {
		t.Fatal(err)
	}
	var scan FolderInfo
	for _, m := range msgs {
		scan.Messages++
		scan.Size += m.Size
		seen, del := false, false
		for _, fl := range m.Flags {
			seen = seen || fl == FlagSeen
			del = del || fl == FlagDeleted
		}
		if !seen {
			scan.Unseen++
		}
		if del {
			scan.Deleted++
		}
	}
	if scan.Messages != f.Messages || scan.Unseen != f.Unseen || scan.Deleted != f.Deleted || scan.Size != f.Size {
		t.Fatalf("%s counters %+v disagree with scan %+v", name, f, scan)
	}
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v; want %v", err, target)
	}
}
