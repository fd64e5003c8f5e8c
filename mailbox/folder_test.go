package mailbox

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func folderNames(t *testing.T, a *Account) []string {
	t.Helper()
	fs, err := a.Folders()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fs {
		names = append(names, f.Name)
	}
	return names
}

func TestCanonicalFolderName(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"INBOX", "INBOX", true},
		{"inbox", "INBOX", true},
		{"InBoX/Sub", "INBOX/Sub", true},
		{"Inboxes", "Inboxes", true},
		{"Lists/golang", "Lists/golang", true},
		{"Entwürfe", "Entwürfe", true},
		{"a b", "a b", true},
		{strings.Repeat("x", 255), strings.Repeat("x", 255), true},
		{strings.Repeat("x", 256), "", false},
		{"", "", false},
		{"/a", "", false},
		{"a/", "", false},
		{"a//b", "", false},
		{"a*", "", false},
		{"a%", "", false},
		{"a\x00b", "", false},
		{"a\nb", "", false},
		{"a\u0085b", "", false},
		{"\xff", "", false},
	}
	for _, tt := range tests {
		got, err := CanonicalFolderName(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("CanonicalFolderName(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadFolderName) {
			t.Errorf("error %v does not wrap ErrBadFolderName", err)
		}
	}
}

func TestDefaultFolders(t *testing.T) {
	_, a := newTestAccount(t)
	fs, err := a.Folders()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"INBOX": RoleNone, "Sent": RoleSent, "Drafts": RoleDrafts, "Trash": RoleTrash, "Junk": RoleJunk, "Archive": RoleArchive}
	if len(fs) != len(want) || fs[0].Name != "INBOX" {
		t.Fatalf("Folders = %+v", fs)
	}
	if got := folderNames(t, a); !slices.Equal(got, []string{"INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"}) {
		t.Fatalf("order %v", got)
	}
	var uvs []uint32
	for _, f := range fs {
		if role, ok := want[f.Name]; !ok || role != f.Role || !f.Subscribed || f.UIDNext != 1 || f.UIDValidity == 0 || f.HighestModSeq == 0 {
			t.Errorf("folder %+v", f)
		}
		uvs = append(uvs, f.UIDValidity)
	}
	slices.Sort(uvs)
	if len(slices.Compact(uvs)) != len(fs) {
		t.Errorf("UIDVALIDITYs not distinct: %v", uvs)
	}
}

func TestCreateDeleteFolder(t *testing.T) {
	_, a := newTestAccount(t)
	if err := a.CreateFolder("Lists/go/nuts", RoleNone); err != nil {
		t.Fatal(err)
	}
	if got := folderNames(t, a); !slices.Contains(got, "Lists") || !slices.Contains(got, "Lists/go") || !slices.Contains(got, "Lists/go/nuts") {
		t.Fatalf("parents not created: %v", got)
	}
	if f := mustFolder(t, a, "Lists/go/nuts"); f.Subscribed || f.Role != RoleNone || f.Messages != 0 {
		t.Fatalf("new folder %+v", f)
	}
	wantErr(t, a.CreateFolder("Lists/go", RoleNone), ErrFolderExists)
	wantErr(t, a.CreateFolder("inbox", RoleNone), ErrFolderExists)
	wantErr(t, a.CreateFolder("x", `\Bogus`), ErrBadRole)
	wantErr(t, a.CreateFolder("a//b", RoleNone), ErrBadFolderName)
	if err := a.CreateFolder("Old Sent", RoleSent); err != nil {
		t.Fatal(err)
	}
	if f := mustFolder(t, a, "Old Sent"); f.Role != RoleSent {
		t.Fatalf("role %q", f.Role)
	}

	wantErr(t, a.DeleteFolder("INBOX"), ErrInbox)
	wantErr(t, a.DeleteFolder("inbox"), ErrInbox)
	wantErr(t, a.DeleteFolder("nope"), ErrNoFolder)
	mustAppend(t, a, "Lists/go", "Subject: x\r\n\r\nbody\r\n")
	if err := a.DeleteFolder("Lists/go"); err != nil {
		t.Fatal(err)
	}
	// RFC 9051 6.3.5: the children stay.
	if got := folderNames(t, a); slices.Contains(got, "Lists/go") || !slices.Contains(got, "Lists/go/nuts") {
		t.Fatalf("after delete: %v", got)
	}
	_, err := a.Folder("Lists/go")
	wantErr(t, err, ErrNoFolder)
	_, err = a.Messages("Lists/go")
	wantErr(t, err, ErrNoFolder)

	if err := a.SetSubscribed("Lists", true); err != nil {
		t.Fatal(err)
	}
	if !mustFolder(t, a, "Lists").Subscribed {
		t.Fatal("not subscribed")
	}
	if err := a.SetSubscribed("Lists", false); err != nil {
		t.Fatal(err)
	}
	if mustFolder(t, a, "Lists").Subscribed {
		t.Fatal("still subscribed")
	}
	wantErr(t, a.SetSubscribed("nope", true), ErrNoFolder)
}

func TestUIDValidityRisesAfterRecreate(t *testing.T) {
	clock := &testClock{t: time.Unix(1_700_000_000, 0)}
	opts := testOptions()
	opts.Now = clock.now
	s, _ := openTestStore(t, opts)
	if err := s.AddUser("u@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	a, err := s.Account("u@example.org")
	if err != nil {
		t.Fatal(err)
	}
	// Within one second (frozen clock) each new folder still gets a higher one.
	var last uint32
	for i := range 5 {
		if err := a.CreateFolder("X", RoleNone); err != nil {
			t.Fatal(err)
		}
		mustAppend(t, a, "X", "a")
		f := mustFolder(t, a, "X")
		if f.UIDValidity <= last {
			t.Fatalf("round %d: UIDVALIDITY %d not above %d", i, f.UIDValidity, last)
		}
		if f.UIDNext != 2 {
			t.Fatalf("recreated folder UIDNEXT %d; want 2", f.UIDNext)
		}
		last = f.UIDValidity
		if err := a.DeleteFolder("X"); err != nil {
			t.Fatal(err)
		}
	}
	// A clock jump forward is followed; backward is not.
	clock.t = time.Unix(1_800_000_000, 0)
	if err := a.CreateFolder("Y", RoleNone); err != nil {
		t.Fatal(err)
	}
	if uv := mustFolder(t, a, "Y").UIDValidity; uv != 1_800_000_000 {
		t.Fatalf("UIDVALIDITY %d; want the clock", uv)
	}
	clock.t = time.Unix(1_600_000_000, 0)
	if err := a.CreateFolder("Z", RoleNone); err != nil {
		t.Fatal(err)
	}
	if uv := mustFolder(t, a, "Z").UIDValidity; uv != 1_800_000_001 {
		t.Fatalf("UIDVALIDITY %d after clock went back; want 1800000001", uv)
	}
}

func TestRenameFolder(t *testing.T) {
	_, a := newTestAccount(t)
	for _, n := range []string{"a/b/c", "a/x", "ab"} {
		if err := a.CreateFolder(n, RoleNone); err != nil {
			t.Fatal(err)
		}
	}
	m := mustAppend(t, a, "a/b", "one", FlagSeen)
	before := mustFolder(t, a, "a/b")

	wantErr(t, a.RenameFolder("a", "a/z"), ErrBadFolderName)
	wantErr(t, a.RenameFolder("a", "a"), ErrBadFolderName)
	wantErr(t, a.RenameFolder("a", "ab"), ErrFolderExists)
	wantErr(t, a.RenameFolder("a", "INBOX"), ErrFolderExists)
	wantErr(t, a.RenameFolder("nope", "q"), ErrNoFolder)

	if err := a.RenameFolder("a", "n/m"); err != nil {
		t.Fatal(err)
	}
	got := folderNames(t, a)
	for _, want := range []string{"n", "n/m", "n/m/b", "n/m/b/c", "n/m/x", "ab"} {
		if !slices.Contains(got, want) {
			t.Fatalf("after rename %v lacks %s", got, want)
		}
	}
	for _, gone := range []string{"a", "a/b", "a/b/c", "a/x"} {
		if slices.Contains(got, gone) {
			t.Fatalf("after rename %v still has %s", got, gone)
		}
	}
	after := mustFolder(t, a, "n/m/b")
	if after.Messages != 1 || after.UIDNext != before.UIDNext || after.UIDValidity <= before.UIDValidity || after.HighestModSeq <= before.HighestModSeq {
		t.Fatalf("renamed folder %+v, before %+v", after, before)
	}
	raw, err := a.Raw("n/m/b", m.UID)
	if err != nil || string(raw) != "one" {
		t.Fatalf("Raw after rename = %q, %v", raw, err)
	}
	// Renaming a child to a name whose child exists is refused whole.
	if err := a.CreateFolder("p/c", RoleNone); err != nil {
		t.Fatal(err)
	}
	wantErr(t, a.RenameFolder("n/m/b", "p"), ErrFolderExists)
	if !slices.Contains(folderNames(t, a), "n/m/b/c") {
		t.Fatal("failed rename changed something")
	}
}

func TestRenameInbox(t *testing.T) {
	_, a := newTestAccount(t)
	if err := a.CreateFolder("INBOX/child", RoleNone); err != nil {
		t.Fatal(err)
	}
	m1 := mustAppend(t, a, "INBOX", "one")
	m2 := mustAppend(t, a, "INBOX", "two", FlagSeen, "$label1")
	before := mustFolder(t, a, "INBOX")

	if err := a.RenameFolder("inbox", "Old/Mail"); err != nil {
		t.Fatal(err)
	}
	inbox := mustFolder(t, a, "INBOX")
	if inbox.Messages != 0 || inbox.Unseen != 0 || inbox.Size != 0 {
		t.Fatalf("INBOX not empty: %+v", inbox)
	}
	if inbox.UIDValidity != before.UIDValidity || inbox.UIDNext != before.UIDNext || inbox.HighestModSeq <= before.HighestModSeq {
		t.Fatalf("INBOX %+v, before %+v", inbox, before)
	}
	moved := mustFolder(t, a, "Old/Mail")
	if moved.Messages != 2 || moved.Unseen != 1 || moved.Size != 6 || moved.UIDValidity <= before.UIDValidity || moved.Role != RoleNone {
		t.Fatalf("moved %+v", moved)
	}
	msgs, err := a.Messages("Old/Mail")
	if err != nil || len(msgs) != 2 || msgs[0].UID != m1.UID || msgs[1].UID != m2.UID || !slices.Equal(msgs[1].Flags, []string{FlagSeen, "$label1"}) {
		t.Fatalf("moved messages %+v, %v", msgs, err)
	}
	if !slices.Contains(folderNames(t, a), "INBOX/child") {
		t.Fatal("INBOX child renamed")
	}
	gone, err := a.Expunged("INBOX", before.HighestModSeq)
	if err != nil || !slices.Equal(gone, []uint32{m1.UID, m2.UID}) {
		t.Fatalf("Expunged(INBOX) = %v, %v", gone, err)
	}
	// New INBOX mail continues above the old UIDs.
	if m3 := mustAppend(t, a, "INBOX", "three"); m3.UID != before.UIDNext {
		t.Fatalf("new INBOX UID %d; want %d", m3.UID, before.UIDNext)
	}
	wantCounts(t, a, "INBOX", 1, 1, 0, 5)
	wantCounts(t, a, "Old/Mail", 2, 1, 0, 6)
}
