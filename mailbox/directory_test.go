package mailbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestUsers(t *testing.T) {
	s, dir := openTestStore(t, testOptions())
	for _, u := range []string{"Zed@Example.org", "alice@example.org", "bob@other.example"} {
		if err := s.AddUser(u, "pw-"+u); err != nil {
			t.Fatalf("AddUser(%s): %v", u, err)
		}
	}
	wantErr(t, s.AddUser("ALICE@example.org", "x"), ErrExists)
	wantErr(t, s.AddUser("not an address", "x"), ErrBadAddress)
	wantErr(t, s.AddUser("long@example.org", strings.Repeat("x", MaxPasswordLength+1)), ErrBadPassword)

	users, err := s.Users()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"alice@example.org", "bob@other.example", "zed@example.org"}
	if !slices.Equal(users, want) {
		t.Fatalf("Users = %v; want %v", users, want)
	}
	for addr, want := range map[string]bool{"ALICE@EXAMPLE.ORG": true, "carol@example.org": false, "bad": false} {
		if ok, err := s.UserExists(addr); ok != want || err != nil {
			t.Errorf("UserExists(%s) = %v, %v; want %v", addr, ok, err, want)
		}
	}

	// Files: numbered, owner-only, no address in a path.
	for _, name := range []string{"directory.db", "accounts/1.db", "accounts/2.db", "accounts/3.db"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v; want 0600", name, fi.Mode().Perm())
		}
	}
	for _, name := range []string{".", "accounts"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s mode %v; want 0700", name, fi.Mode().Perm())
		}
	}

	// Delete removes the file and closes the handle; the id is not reused.
	a, err := s.Account("alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	sub := a.Subscribe()
	if err := s.DeleteUser("Alice@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-sub.C(); ok {
		t.Fatal("subscription not closed by DeleteUser")
	}
	if _, err := a.Folders(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Folders on deleted account: %v; want ErrClosed", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "accounts/2.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("account file not removed: %v", err)
	}
	wantErr(t, s.DeleteUser("alice@example.org"), ErrNoSuchUser)
	_, err = s.Account("alice@example.org")
	wantErr(t, err, ErrNoSuchUser)
	if err := s.AddUser("alice@example.org", "new"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "accounts/4.db")); err != nil {
		t.Fatalf("re-added user should get id 4: %v", err)
	}
	a2, err := s.Account("alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if f := mustFolder(t, a2, "INBOX"); f.Messages != 0 {
		t.Fatalf("re-added user sees %d old messages", f.Messages)
	}
}

func TestAccountIDSkipsStaleFile(t *testing.T) {
	s, dir := openTestStore(t, testOptions())
	// A leftover file (say, directory.db was restored from an old backup)
	// must never be handed to a new account.
	if err := os.WriteFile(filepath.Join(dir, "accounts", "1.db"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser("new@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "accounts", "2.db")); err != nil {
		t.Fatalf("expected accounts/2.db: %v", err)
	}
}

func TestPasswordHashFormat(t *testing.T) {
	h, err := HashPassword("correct horse", 1000)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$pbkdf2-sha256\$i=1000\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(h) {
		t.Fatalf("hash %q does not match %v", h, re)
	}
	h2, _ := HashPassword("correct horse", 1000)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	if !verifyPassword(h, "correct horse") || verifyPassword(h, "correct horsE") || verifyPassword(h, "") {
		t.Fatal("verifyPassword wrong")
	}
	for _, bad := range []string{"", "$pbkdf2-sha256$i=0$AA$AA", "$pbkdf2-sha1$i=10$AA$AA", "$pbkdf2-sha256$i=10$!!$AA",
		"$pbkdf2-sha256$i=99999999999$AA$AA", "plain"} {
		if verifyPassword(bad, "") {
			t.Errorf("verifyPassword(%q) accepted", bad)
		}
	}
	// The iterations in the hash, not the current setting, are used.
	if !strings.Contains(h, "i="+strconv.Itoa(1000)) {
		t.Fatal("iterations missing")
	}
}

func TestStoredHashUsesOptions(t *testing.T) {
	s, _ := openTestStore(t, Options{PBKDF2Iterations: 1234, NoSync: true})
	if err := s.AddUser("u@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	rec, err := s.lookupAccount("u@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rec.hash, "$pbkdf2-sha256$i=1234$") {
		t.Fatalf("stored hash %q", rec.hash)
	}
	if strings.Contains(rec.hash, "pw") {
		t.Fatal("password stored in clear")
	}
}

func TestAuthenticate(t *testing.T) {
	s, _ := openTestStore(t, testOptions())
	if err := s.AddUser("bob@example.org", "hunter2"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser("nologin@example.org", ""); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user, pass string
		want       string
	}{
		{"bob@example.org", "hunter2", "bob@example.org"},
		{"BOB@Example.Org", "hunter2", "bob@example.org"},
		{"bob@example.org", "hunter3", ""},
		{"bob@example.org", "", ""},
		{"bob@example.org", "HUNTER2", ""},
		{"nobody@example.org", "hunter2", ""},
		{"nologin@example.org", "", ""},
		{"not an address", "hunter2", ""},
		{"bob@example.org", strings.Repeat("x", MaxPasswordLength+10), ""},
	}
	for _, tt := range tests {
		got, err := s.Authenticate(tt.user, tt.pass)
		if tt.want == "" {
			if !errors.Is(err, ErrAuthFailed) || got != "" {
				t.Errorf("Authenticate(%q, %q) = %q, %v; want ErrAuthFailed", tt.user, tt.pass, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Authenticate(%q, %q) = %q, %v; want %q", tt.user, tt.pass, got, err, tt.want)
		}
	}
}

func TestCredentialCache(t *testing.T) {
	s, _ := openTestStore(t, testOptions())
	if err := s.AddUser("bob@example.org", "old"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate("bob@example.org", "old"); err != nil {
		t.Fatal(err)
	}
	if n := s.creds.len(); n != 1 {
		t.Fatalf("cache has %d entries; want 1", n)
	}
	// A hit skips PBKDF2: make the stored hash unusable and log in again.
	if _, err := s.Authenticate("bob@example.org", "old"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate("bob@example.org", "wrong"); !errors.Is(err, ErrAuthFailed) {
		t.Fatal("wrong password accepted")
	}
	if n := s.creds.len(); n != 1 {
		t.Fatalf("failed login was cached: %d entries", n)
	}

	// A password change invalidates the old credential at once.
	if err := s.SetPassword("bob@example.org", "new"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate("bob@example.org", "old"); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("old password after SetPassword: %v", err)
	}
	if got, err := s.Authenticate("bob@example.org", "new"); err != nil || got != "bob@example.org" {
		t.Fatalf("new password: %q, %v", got, err)
	}
	wantErr(t, s.SetPassword("nobody@example.org", "x"), ErrNoSuchUser)

	// Deleting the user invalidates too.
	if err := s.DeleteUser("bob@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate("bob@example.org", "new"); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("deleted user authenticated: %v", err)
	}
}

func TestCredentialCacheStaleInsert(t *testing.T) {
	c := newCredCache(10)
	d := c.digest("u@x", "pw")
	_, _, gen := c.lookup(d)
	c.invalidate("u@x") // a SetPassword between the hash read and the insert
	c.add(d, "u@x", gen)
	if _, ok, _ := c.lookup(d); ok {
		t.Fatal("stale credential cached after invalidation")
	}
	// Bounded size.
	for i := range 25 {
		_, _, gen := c.lookup(d)
		c.add(c.digest("u@x", strconv.Itoa(i)), "u@x", gen)
	}
	if n := c.len(); n != 10 {
		t.Fatalf("cache size %d; want 10", n)
	}
}

func TestAliases(t *testing.T) {
	s, _ := openTestStore(t, testOptions())
	if err := s.AddUser("bob@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAlias("Sales@Example.org", []string{"Bob@example.org", "bob@example.org", "x@remote.example"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAlias("@example.org", []string{"bob@example.org"}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.AddAlias("bob@example.org", []string{"x@y.z"}), ErrExists)
	wantErr(t, s.AddUser("sales@example.org", "pw"), ErrExists)
	wantErr(t, s.AddAlias("a@example.org", nil), ErrTooManyTargets)
	wantErr(t, s.AddAlias("a@example.org", []string{"@example.org"}), ErrBadAddress)
	wantErr(t, s.AddAlias("a b@example.org", []string{"bob@example.org"}), ErrBadAddress)

	got, err := s.Aliases()
	if err != nil {
		t.Fatal(err)
	}
	want := []Alias{
		{"@example.org", []string{"bob@example.org"}},
		{"sales@example.org", []string{"bob@example.org", "x@remote.example"}},
	}
	if len(got) != len(want) {
		t.Fatalf("Aliases = %v; want %v", got, want)
	}
	for i := range want {
		if got[i].Address != want[i].Address || !slices.Equal(got[i].Targets, want[i].Targets) {
			t.Fatalf("Aliases = %v; want %v", got, want)
		}
	}
	// Replace.
	if err := s.AddAlias("sales@example.org", []string{"y@remote.example"}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Resolve("sales@example.org")
	if err != nil || len(r.Accounts) != 0 || !slices.Equal(r.Remote, []string{"y@remote.example"}) {
		t.Fatalf("Resolve after replace = %+v, %v", r, err)
	}
	if err := s.DeleteAlias("SALES@example.org"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.DeleteAlias("sales@example.org"), ErrNotFound)
}

func TestResolve(t *testing.T) {
	s, _ := openTestStore(t, Options{PBKDF2Iterations: 1000, NoSync: true, RecipientDelimiter: "+-"})
	for _, u := range []string{"alice@example.org", "bob@example.org", "carol@example.org", "dave-x@example.org", "admin@other.example"} {
		if err := s.AddUser(u, "pw"); err != nil {
			t.Fatal(err)
		}
	}
	aliases := map[string][]string{
		"team@example.org":      {"alice@example.org", "bob@example.org"},
		"all@example.org":       {"team@example.org", "carol@example.org", "alice@example.org", "friend@remote.example"},
		"fwd@example.org":       {"someone@remote.example", "Someone@Remote.example"},
		"tagged@example.org":    {"bob+from-alias@example.org"},
		"ghost@example.org":     {"missing@example.org"},
		"loop1@example.org":     {"loop2@example.org"},
		"loop2@example.org":     {"loop1@example.org"},
		"self@example.org":      {"self@example.org"},
		"list@example.org":      {"carol@example.org"},
		"diamond@example.org":   {"d1@example.org", "d2@example.org"},
		"d1@example.org":        {"dd@example.org"},
		"d2@example.org":        {"dd@example.org"},
		"dd@example.org":        {"bob@example.org"},
		"@other.example":        {"admin@other.example"},
		"chain10@example.org":   {"c1@example.org"},
		"chain11@example.org":   {"chain10@example.org"},
		"bob+sales@example.org": {"alice@example.org"}, // an exact alias with a delimiter beats stripping
	}
	// chain10 → c1 → ... → c9 → carol: 10 aliases deep.
	for i := 1; i < 9; i++ {
		aliases["c"+strconv.Itoa(i)+"@example.org"] = []string{"c" + strconv.Itoa(i+1) + "@example.org"}
	}
	aliases["c9@example.org"] = []string{"carol@example.org"}
	for a, targets := range aliases {
		if err := s.AddAlias(a, targets); err != nil {
			t.Fatalf("AddAlias(%s): %v", a, err)
		}
	}

	tests := []struct {
		addr     string
		accounts []string
		remote   []string
		err      error
	}{
		{"alice@example.org", []string{"alice@example.org"}, nil, nil},
		{"ALICE@EXAMPLE.ORG", []string{"alice@example.org"}, nil, nil},
		{"team@example.org", []string{"alice@example.org", "bob@example.org"}, nil, nil},
		{"all@example.org", []string{"alice@example.org", "bob@example.org", "carol@example.org"}, []string{"friend@remote.example"}, nil},
		{"fwd@example.org", nil, []string{"someone@remote.example"}, nil},
		{"alice+news@example.org", []string{"alice@example.org"}, nil, nil},
		{"alice-news@example.org", []string{"alice@example.org"}, nil, nil},
		{"alice+a-b@example.org", []string{"alice@example.org"}, nil, nil},
		{"dave-x@example.org", []string{"dave-x@example.org"}, nil, nil}, // exact first
		{"team+x@example.org", []string{"alice@example.org", "bob@example.org"}, nil, nil},
		{"bob+sales@example.org", []string{"alice@example.org"}, nil, nil},
		{"tagged@example.org", []string{"bob@example.org"}, nil, nil},
		{"ghost@example.org", nil, []string{"missing@example.org"}, nil},
		{"diamond@example.org", []string{"bob@example.org"}, nil, nil},
		{"whoever@other.example", []string{"admin@other.example"}, nil, nil},
		{"admin+x@other.example", []string{"admin@other.example"}, nil, nil},
		{"chain10@example.org", []string{"carol@example.org"}, nil, nil},
		{"chain11@example.org", nil, nil, ErrAliasLoop},
		{"loop1@example.org", nil, nil, ErrAliasLoop},
		{"self@example.org", nil, nil, ErrAliasLoop},
		{"nobody@example.org", nil, nil, ErrNoSuchUser},
		{"+x@example.org", nil, nil, ErrNoSuchUser},
		{"alice@unknown.example", nil, nil, ErrNoSuchUser},
		{"bad address", nil, nil, ErrBadAddress},
	}
	for _, tt := range tests {
		r, err := s.Resolve(tt.addr)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("Resolve(%s) = %+v, %v; want %v", tt.addr, r, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(r.Accounts, tt.accounts) || !slices.Equal(r.Remote, tt.remote) {
			t.Errorf("Resolve(%s) = %+v, %v; want accounts %v remote %v", tt.addr, r, err, tt.accounts, tt.remote)
		}
	}
}

func TestResolveNoDelimiter(t *testing.T) {
	s, _ := openTestStore(t, Options{PBKDF2Iterations: 1000, NoSync: true})
	if err := s.AddUser("alice@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve("alice+x@example.org"); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("plus addressing without a delimiter: %v", err)
	}
}

func TestAccountHandleSharedAndDeleteRace(t *testing.T) {
	s, _ := openTestStore(t, testOptions())
	if err := s.AddUser("u@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	// Every caller gets the one open handle.
	handles := make([]*Account, 20)
	var wg sync.WaitGroup
	for i := range handles {
		wg.Go(func() {
			a, err := s.Account("U@example.org")
			if err != nil {
				t.Error(err)
			}
			handles[i] = a
		})
	}
	wg.Wait()
	for _, h := range handles {
		if h != handles[0] {
			t.Fatal("two handles for one account")
		}
	}
	// Deliveries racing a deletion fail cleanly or succeed; nothing panics
	// and no file is left behind for the deleted user.
	for range 10 {
		wg.Go(func() {
			err := s.Deliver(context.Background(), []string{"u@example.org"}, []byte("x"), time.Time{})
			if err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrNoSuchUser) {
				t.Errorf("Deliver: %v", err)
			}
		})
	}
	if err := s.DeleteUser("u@example.org"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := os.Stat(s.accountPath(1)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("account file after delete: %v", err)
	}
}

// TestAuthenticateTiming: an unknown user costs one PBKDF2 run, as a wrong
// password does (medians of interleaved runs; a loose bound for noisy CI).
func TestAuthenticateTiming(t *testing.T) {
	s, _ := openTestStore(t, Options{PBKDF2Iterations: 100000, NoSync: true})
	if err := s.AddUser("bob@example.org", "right"); err != nil {
		t.Fatal(err)
	}
	var wrong, unknown []time.Duration
	for range 7 {
		t0 := time.Now()
		s.Authenticate("bob@example.org", "wrong")
		wrong = append(wrong, time.Since(t0))
		t0 = time.Now()
		s.Authenticate("nobody@example.org", "wrong")
		unknown = append(unknown, time.Since(t0))
	}
	slices.Sort(wrong)
	slices.Sort(unknown)
	w, u := wrong[3], unknown[3]
	if r := float64(u) / float64(w); r < 0.4 || r > 2.5 {
		t.Fatalf("unknown user median %v vs wrong password %v", u, w)
	}
	// A cache hit is far cheaper than either.
	s.Authenticate("bob@example.org", "right")
	t0 := time.Now()
	if _, err := s.Authenticate("bob@example.org", "right"); err != nil {
		t.Fatal(err)
	}
	if hit := time.Since(t0); hit > w/4 {
		t.Fatalf("cache hit took %v; PBKDF2 takes %v", hit, w)
	}
}

// Fifty logins at once with the same credentials cost one PBKDF2 run, not
// fifty (the bench found AUTH storms dominated by hashing).
func TestAuthenticateJoinsConcurrentLogins(t *testing.T) {
	s, err := Open(t.TempDir(), Options{PBKDF2Iterations: 200000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AddUser("alice@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	before := s.hashRuns.Load()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			if _, err := s.Authenticate("alice@example.org", "pw"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := s.hashRuns.Load() - before; n > 2 {
		t.Fatalf("%d PBKDF2 runs for 50 concurrent logins with the same password", n)
	}
	// A wrong password is still refused, and costs its own run.
	if _, err := s.Authenticate("alice@example.org", "wrong"); err != ErrAuthFailed {
		t.Fatalf("wrong password: %v", err)
	}
}
