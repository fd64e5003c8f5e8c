package mailbox

import (
	"context"
	"slices"
	"testing"
)

// drain returns the changes buffered in a subscription.
func drain(s *Subscription) []Change {
	var out []Change
	for {
		select {
		case c, ok := <-s.C():
			if !ok {
				return out
			}
			out = append(out, c)
		default:
			return out
		}
	}
}

func TestFeedEvents(t *testing.T) {
	_, a := newTestAccount(t)
	ctx := context.Background()
	sub := a.Subscribe()
	defer sub.Unsubscribe()
	other := a.Subscribe()

	m := mustAppend(t, a, "INBOX", "hello", "$x")
	changed, err := a.StoreFlags(ctx, "INBOX", []uint32{m.UID}, '+', []string{FlagSeen})
	if err != nil {
		t.Fatal(err)
	}
	_, dst, err := a.Copy(ctx, "INBOX", []uint32{m.UID}, "Archive", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Expunge(ctx, "Archive", dst); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateFolder("F", RoleNone); err != nil {
		t.Fatal(err)
	}
	if err := a.RenameFolder("F", "G"); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteFolder("G"); err != nil {
		t.Fatal(err)
	}
	// Failed operations publish nothing.
	if err := a.CreateFolder("Sent", RoleNone); err == nil {
		t.Fatal("CreateFolder(Sent) succeeded")
	}
	if _, err := a.Append(ctx, "nope", []byte("x"), nil, m.InternalDate); err == nil {
		t.Fatal("append to missing folder succeeded")
	}

	got := drain(sub)
	type ev struct {
		kind    ChangeKind
		folder  string
		uid     uint32
		newName string
	}
	var kinds []ev
	for _, c := range got {
		kinds = append(kinds, ev{c.Kind, c.Folder, c.UID, c.NewName})
	}
	want := []ev{
		{ChangeExists, "INBOX", m.UID, ""},
		{ChangeFlags, "INBOX", m.UID, ""},
		{ChangeExists, "Archive", dst[0], ""},
		{ChangeExpunge, "INBOX", m.UID, ""},
		{ChangeExpunge, "Archive", dst[0], ""},
		{ChangeFolder, "F", 0, ""},
		{ChangeFolder, "F", 0, "G"},
		{ChangeFolder, "G", 0, ""},
	}
	if !slices.Equal(kinds, want) {
		t.Fatalf("events\n got %v\nwant %v", kinds, want)
	}
	if !slices.Equal(got[0].Flags, []string{"$x"}) || got[0].ModSeq != m.ModSeq {
		t.Fatalf("exists event %+v", got[0])
	}
	if !slices.Equal(got[1].Flags, []string{FlagSeen, "$x"}) || got[1].ModSeq != changed[0].ModSeq {
		t.Fatalf("flags event %+v", got[1])
	}
	for i := 1; i < len(got); i++ {
		if got[i].ModSeq < got[i-1].ModSeq {
			t.Fatalf("events out of MODSEQ order: %+v", got)
		}
	}
	if n := len(drain(other)); n != len(want) {
		t.Fatalf("second subscriber got %d events", n)
	}
	if sub.Overflowed() {
		t.Fatal("overflowed")
	}

	other.Unsubscribe()
	other.Unsubscribe() // twice is fine
	if _, ok := <-other.C(); ok {
		t.Fatal("channel open after Unsubscribe")
	}
	mustAppend(t, a, "INBOX", "after")
	if len(drain(sub)) != 1 {
		t.Fatal("remaining subscriber missed an event")
	}
}

func TestFeedOverflow(t *testing.T) {
	_, a := newTestAccount(t)
	sub := a.Subscribe()
	defer sub.Unsubscribe()
	// Fill the buffer directly; one real commit then overflows it and
	// must not block.
	for i := range FeedBuffer {
		a.feed.publish(Change{Kind: ChangeExists, Folder: "INBOX", UID: uint32(i + 1000)})
	}
	if sub.Overflowed() {
		t.Fatal("overflowed at exactly the buffer size")
	}
	m := mustAppend(t, a, "INBOX", "dropped")
	if !sub.Overflowed() {
		t.Fatal("not overflowed")
	}
	got := drain(sub)
	if len(got) != FeedBuffer || slices.ContainsFunc(got, func(c Change) bool { return c.UID == m.UID }) {
		t.Fatalf("got %d events; the overflowing one must be dropped", len(got))
	}
	if !sub.ClearOverflow() || sub.Overflowed() || sub.ClearOverflow() {
		t.Fatal("ClearOverflow")
	}
	// Delivery resumes.
	m2 := mustAppend(t, a, "INBOX", "kept")
	if got := drain(sub); len(got) != 1 || got[0].UID != m2.UID {
		t.Fatalf("after resync %+v", got)
	}
}
