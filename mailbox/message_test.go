package mailbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAppendAndRead(t *testing.T) {
	_, a := newTestAccount(t)
	ctx := context.Background()
	date := time.Date(2024, 3, 1, 12, 30, 45, 999, time.FixedZone("", -7*3600))
	raw := []byte("From: a@b\r\nSubject: hi\r\n\r\nbody\r\n")
	info, err := a.Append(ctx, "inbox", raw, []string{`\seen`, "$Forwarded", "$forwarded", "work"}, date)
	if err != nil {
		t.Fatal(err)
	}
	if info.UID != 1 || info.Size != int64(len(raw)) || info.ModSeq == 0 {
		t.Fatalf("info %+v", info)
	}
	if !info.InternalDate.Equal(date.Truncate(time.Second)) {
		t.Fatalf("date %v; want %v", info.InternalDate, date)
	}
	if _, off := info.InternalDate.Zone(); off != -7*3600 {
		t.Fatalf("zone offset %d lost", off)
	}
	if want := []string{FlagSeen, "$Forwarded", "work"}; !slices.Equal(info.Flags, want) {
		t.Fatalf("flags %v; want %v", info.Flags, want)
	}
	raw[0] = 'X' // the store has its own copy
	got, err := a.Raw("INBOX", 1)
	if err != nil || string(got) != "From: a@b\r\nSubject: hi\r\n\r\nbody\r\n" {
		t.Fatalf("Raw = %q, %v", got, err)
	}
	msgs, err := a.Messages("INBOX")
	if err != nil || len(msgs) != 1 || msgs[0].UID != 1 || !slices.Equal(msgs[0].Flags, info.Flags) || msgs[0].ModSeq != info.ModSeq {
		t.Fatalf("Messages = %+v, %v", msgs, err)
	}
	if m, err := a.Message("INBOX", 1); err != nil || m.Size != info.Size {
		t.Fatalf("Message = %+v, %v", m, err)
	}
	_, err = a.Message("INBOX", 2)
	wantErr(t, err, ErrNotFound)
	_, err = a.Raw("INBOX", 2)
	wantErr(t, err, ErrNotFound)
	_, err = a.Raw("nope", 1)
	wantErr(t, err, ErrNoFolder)
	if meta, err := a.Meta("INBOX", 1); err != nil || meta != nil {
		t.Fatalf("Meta without Parse = %q, %v", meta, err)
	}
	// Empty message, zero date → now.
	e, err := a.Append(ctx, "INBOX", nil, nil, time.Time{})
	if err != nil || e.UID != 2 || e.Size != 0 || time.Since(e.InternalDate) > time.Minute {
		t.Fatalf("empty append %+v, %v", e, err)
	}
	if b, err := a.Raw("INBOX", 2); err != nil || b == nil || len(b) != 0 {
		t.Fatalf("empty Raw = %v, %v", b, err)
	}

	_, err = a.Append(ctx, "nope", raw, nil, date)
	wantErr(t, err, ErrNoFolder)
	_, err = a.Append(ctx, "INBOX", raw, []string{`\Recent`}, date)
	wantErr(t, err, ErrBadFlag)
	_, err = a.Append(ctx, "INBOX", raw, []string{"bad flag"}, date)
	wantErr(t, err, ErrBadFlag)
	many := make([]string, MaxKeywords+1)
	for i := range many {
		many[i] = "k" + strconv.Itoa(i)
	}
	_, err = a.Append(ctx, "INBOX", raw, many, date)
	wantErr(t, err, ErrTooManyKeywords)
	wantCounts(t, a, "INBOX", 2, 1, 0, int64(len(raw)))
}

func TestFlagsParse(t *testing.T) {
	tests := []struct {
		in   []string
		want []string
		ok   bool
	}{
		{nil, []string{}, true},
		{[]string{`\SEEN`, `\answered`, `\Flagged`, `\deleted`, `\DRAFT`}, []string{FlagAnswered, FlagDeleted, FlagDraft, FlagFlagged, FlagSeen}, true},
		{[]string{"b", "a", "B", `\Seen`, `\seen`}, []string{FlagSeen, "a", "b"}, true},
		{[]string{"$MDNSent", "$Junk"}, []string{"$Junk", "$MDNSent"}, true},
		{[]string{`\Recent`}, nil, false},
		{[]string{`\Foo`}, nil, false},
		{[]string{""}, nil, false},
		{[]string{"a b"}, nil, false},
		{[]string{"a(b"}, nil, false},
		{[]string{"a]"}, nil, false},
		{[]string{"ü"}, nil, false},
		{[]string{strings.Repeat("k", MaxKeywordLength+1)}, nil, false},
	}
	for _, tt := range tests {
		fs, err := parseFlags(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("parseFlags(%q) err %v", tt.in, err)
			continue
		}
		if err == nil && !slices.Equal(fs.list(), tt.want) {
			t.Errorf("parseFlags(%q) = %q; want %q", tt.in, fs.list(), tt.want)
		}
		if err == nil {
			m := msgMeta{modSeq: 9, size: 3, date: -5, zone: 3600, flags: fs}
			back, derr := decodeMsgMeta(m.encode())
			if derr != nil || !back.flags.equal(fs) || back.modSeq != 9 || back.date != -5 || back.zone != 3600 {
				t.Errorf("round trip %+v → %+v, %v", m, back, derr)
			}
		}
	}
}

func TestStoreFlags(t *testing.T) {
	_, a := newTestAccount(t)
	ctx := context.Background()
	for i := range 3 {
		mustAppend(t, a, "INBOX", strings.Repeat("x", i+1))
	}
	wantCounts(t, a, "INBOX", 3, 3, 0, 6)
	lastModSeq := mustFolder(t, a, "INBOX").HighestModSeq

	step := func(op byte, uids []uint32, flags []string, wantChanged []uint32, unseen, deleted uint32) []MessageInfo {
		t.Helper()
		changed, err := a.StoreFlags(ctx, "INBOX", uids, op, flags)
		if err != nil {
			t.Fatalf("StoreFlags(%c %v %v): %v", op, uids, flags, err)
		}
		var got []uint32
		for _, m := range changed {
			got = append(got, m.UID)
			if m.ModSeq <= lastModSeq {
				t.Fatalf("MODSEQ %d not above %d", m.ModSeq, lastModSeq)
			}
		}
		if !slices.Equal(got, wantChanged) {
			t.Fatalf("StoreFlags(%c %v %v) changed %v; want %v", op, uids, flags, got, wantChanged)
		}
		f := mustFolder(t, a, "INBOX")
		if len(changed) > 0 {
			if f.HighestModSeq != changed[0].ModSeq {
				t.Fatalf("HIGHESTMODSEQ %d; want %d", f.HighestModSeq, changed[0].ModSeq)
			}
			lastModSeq = f.HighestModSeq
		} else if f.HighestModSeq != lastModSeq {
			t.Fatal("HIGHESTMODSEQ rose without a change")
		}
		wantCounts(t, a, "INBOX", 3, unseen, deleted, 6)
		return changed
	}
	step('+', []uint32{1, 2, 99}, []string{FlagSeen}, []uint32{1, 2}, 1, 0)
	step('+', []uint32{2, 1, 2}, []string{`\SEEN`}, nil, 1, 0) // no change: no new MODSEQ
	step('+', []uint32{3}, []string{FlagDeleted, "Work"}, []uint32{3}, 1, 1)
	c := step('+', []uint32{3}, []string{"work", "home"}, []uint32{3}, 1, 1)
	if !slices.Equal(c[0].Flags, []string{FlagDeleted, "Work", "home"}) {
		t.Fatalf("flags %v", c[0].Flags)
	}
	c = step('-', []uint32{3}, []string{"WORK", FlagDeleted}, []uint32{3}, 1, 0)
	if !slices.Equal(c[0].Flags, []string{"home"}) {
		t.Fatalf("flags %v", c[0].Flags)
	}
	c = step('=', []uint32{1, 2, 3}, []string{FlagDeleted, FlagSeen}, []uint32{1, 2, 3}, 0, 3)
	step('=', []uint32{1, 2, 3}, []string{}, []uint32{1, 2, 3}, 3, 0)

	_, err := a.StoreFlags(ctx, "INBOX", []uint32{1}, '?', nil)
	if err == nil {
		t.Fatal("bad op accepted")
	}
	_, err = a.StoreFlags(ctx, "INBOX", []uint32{1}, '+', []string{`\Recent`})
	wantErr(t, err, ErrBadFlag)
	_, err = a.StoreFlags(ctx, "nope", []uint32{1}, '+', []string{FlagSeen})
	wantErr(t, err, ErrNoFolder)

	// Adding past the keyword limit fails the whole operation.
	kws := make([]string, MaxKeywords)
	for i := range kws {
		kws[i] = "k" + strconv.Itoa(i)
	}
	step('+', []uint32{1}, kws, []uint32{1}, 3, 0)
	_, err = a.StoreFlags(ctx, "INBOX", []uint32{2, 1}, '+', []string{"one-more"})
	wantErr(t, err, ErrTooManyKeywords)
	if m, _ := a.Message("INBOX", 2); len(m.Flags) != 0 {
		t.Fatalf("failed StoreFlags changed message 2: %v", m.Flags)
	}
}

func TestStoreFlagsIf(t *testing.T) {
	_, a := newTestAccount(t)
	ctx := context.Background()
	m1 := mustAppend(t, a, "INBOX", "a")
	m2 := mustAppend(t, a, "INBOX", "b")
	changed, modified, err := a.StoreFlagsIf(ctx, "INBOX", []uint32{m1.UID, m2.UID}, '+', []string{FlagFlagged}, m1.ModSeq)
	if err != nil || len(changed) != 1 || changed[0].UID != m1.UID || !slices.Equal(modified, []uint32{m2.UID}) {
		t.Fatalf("StoreFlagsIf = %+v, %v, %v", changed, modified, err)
	}
}

func TestExpungeNeverReusesUIDs(t *testing.T) {
	s, dir := openTestStore(t, testOptions())
	if err := s.AddUser("u@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	a, err := s.Account("u@example.org")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 5 {
		mustAppend(t, a, "INBOX", fmt.Sprintf("message %d", i), FlagSeen)
	}
	if _, err := a.StoreFlags(ctx, "INBOX", []uint32{4, 5}, '=', []string{FlagDeleted}); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, a, "INBOX", 5, 2, 2, 45)
	hms := mustFolder(t, a, "INBOX").HighestModSeq
	removed, err := a.Expunge(ctx, "INBOX", []uint32{5, 4, 4, 17})
	if err != nil || !slices.Equal(removed, []uint32{4, 5}) {
		t.Fatalf("Expunge = %v, %v", removed, err)
	}
	f := mustFolder(t, a, "INBOX")
	if f.HighestModSeq <= hms {
		t.Fatalf("HIGHESTMODSEQ %d did not rise on expunge (was %d)", f.HighestModSeq, hms)
	}
	wantCounts(t, a, "INBOX", 3, 0, 0, 27)
	if removed, err := a.Expunge(ctx, "INBOX", []uint32{5}); err != nil || len(removed) != 0 {
		t.Fatalf("second Expunge = %v, %v", removed, err)
	}
	_, err = a.Raw("INBOX", 5)
	wantErr(t, err, ErrNotFound)
	if gone, err := a.Expunged("INBOX", hms); err != nil || !slices.Equal(gone, []uint32{4, 5}) {
		t.Fatalf("Expunged = %v, %v", gone, err)
	}
	if gone, err := a.Expunged("INBOX", f.HighestModSeq); err != nil || len(gone) != 0 {
		t.Fatalf("Expunged since now = %v, %v", gone, err)
	}
	if m := mustAppend(t, a, "INBOX", "six"); m.UID != 6 {
		t.Fatalf("UID after expunge %d; want 6", m.UID)
	}
	if _, err := a.Expunge(ctx, "INBOX", []uint32{6}); err != nil {
		t.Fatal(err)
	}
	lastModSeq := mustFolder(t, a, "INBOX").HighestModSeq

	// Reopen: UIDNEXT and MODSEQ survive, so the next UID is 7, not 6.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	a2, err := s2.Account("u@example.org")
	if err != nil {
		t.Fatal(err)
	}
	m := mustAppend(t, a2, "INBOX", "seven")
	if m.UID != 7 || m.ModSeq <= lastModSeq {
		t.Fatalf("after reopen: UID %d MODSEQ %d; want 7 and above %d", m.UID, m.ModSeq, lastModSeq)
	}
	wantCounts(t, a2, "INBOX", 4, 1, 0, 32)
}

func TestCopyAndMove(t *testing.T) {
	_, a := newTestAccount(t)
	ctx := context.Background()
	date := time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, flags := range [][]string{{FlagSeen}, {FlagDeleted, "tag"}, nil} {
		if _, err := a.Append(ctx, "INBOX", []byte(strings.Repeat("m", i+1)), flags, date); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(t, a, "Archive", "zz") // Archive UIDs start above this one
	hms := mustFolder(t, a, "INBOX").HighestModSeq

	src, dst, err := a.Copy(ctx, "INBOX", []uint32{3, 1, 42, 1}, "Archive", false)
	if err != nil || !slices.Equal(src, []uint32{1, 3}) || !slices.Equal(dst, []uint32{2, 3}) {
		t.Fatalf("Copy = %v %v %v", src, dst, err)
	}
	wantCounts(t, a, "INBOX", 3, 2, 1, 6)
	wantCounts(t, a, "Archive", 3, 2, 0, 6)
	c, err := a.Message("Archive", 2)
	if err != nil || !slices.Equal(c.Flags, []string{FlagSeen}) || !c.InternalDate.Equal(date) || c.ModSeq <= hms {
		t.Fatalf("copied message %+v, %v", c, err)
	}
	if raw, _ := a.Raw("Archive", 3); string(raw) != "mmm" {
		t.Fatalf("copied body %q", raw)
	}
	if mustFolder(t, a, "INBOX").HighestModSeq != hms {
		t.Fatal("copy changed the source's HIGHESTMODSEQ")
	}

	src, dst, err = a.Copy(ctx, "INBOX", []uint32{2, 3}, "Trash", true)
	if err != nil || !slices.Equal(src, []uint32{2, 3}) || !slices.Equal(dst, []uint32{1, 2}) {
		t.Fatalf("Move = %v %v %v", src, dst, err)
	}
	wantCounts(t, a, "INBOX", 1, 0, 0, 1)
	wantCounts(t, a, "Trash", 2, 2, 1, 5)
	if gone, _ := a.Expunged("INBOX", hms); !slices.Equal(gone, []uint32{2, 3}) {
		t.Fatalf("moved UIDs not recorded as expunged: %v", gone)
	}
	if m, _ := a.Message("Trash", 1); !slices.Equal(m.Flags, []string{FlagDeleted, "tag"}) {
		t.Fatalf("moved flags %v", m.Flags)
	}

	// Move within one folder: new UID, old one gone.
	src, dst, err = a.Copy(ctx, "Trash", []uint32{1}, "Trash", true)
	if err != nil || !slices.Equal(src, []uint32{1}) || !slices.Equal(dst, []uint32{3}) {
		t.Fatalf("Move in place = %v %v %v", src, dst, err)
	}
	msgs, _ := a.Messages("Trash")
	if len(msgs) != 2 || msgs[0].UID != 2 || msgs[1].UID != 3 {
		t.Fatalf("Trash after in-place move %+v", msgs)
	}
	wantCounts(t, a, "Trash", 2, 2, 1, 5)

	_, _, err = a.Copy(ctx, "INBOX", []uint32{1}, "nope", false)
	wantErr(t, err, ErrNoFolder)
	wantCounts(t, a, "INBOX", 1, 0, 0, 1)
	if src, dst, err := a.Copy(ctx, "INBOX", []uint32{99}, "Trash", true); err != nil || src != nil || dst != nil {
		t.Fatalf("Copy of nothing = %v %v %v", src, dst, err)
	}
}

func TestModSeqStrictlyIncreasing(t *testing.T) {
	_, a := newTestAccount(t)
	ctx := context.Background()
	var seen []uint64
	note := func(ms uint64) {
		t.Helper()
		if len(seen) > 0 && ms <= seen[len(seen)-1] {
			t.Fatalf("MODSEQ %d after %d", ms, seen[len(seen)-1])
		}
		seen = append(seen, ms)
	}
	note(mustFolder(t, a, "INBOX").HighestModSeq)
	for range 3 {
		note(mustAppend(t, a, "INBOX", "x").ModSeq)
	}
	c, _ := a.StoreFlags(ctx, "INBOX", []uint32{1}, '+', []string{FlagSeen})
	note(c[0].ModSeq)
	if _, _, err := a.Copy(ctx, "INBOX", []uint32{2}, "Sent", false); err != nil {
		t.Fatal(err)
	}
	note(mustFolder(t, a, "Sent").HighestModSeq)
	if _, err := a.Expunge(ctx, "INBOX", []uint32{3}); err != nil {
		t.Fatal(err)
	}
	note(mustFolder(t, a, "INBOX").HighestModSeq)
	if err := a.CreateFolder("N", RoleNone); err != nil {
		t.Fatal(err)
	}
	note(mustFolder(t, a, "N").HighestModSeq)
	note(mustAppend(t, a, "Sent", "y").ModSeq)
}

func TestParseHookAndDeliver(t *testing.T) {
	opts := testOptions()
	var calls int
	opts.Parse = func(raw []byte) []byte {
		calls++
		if bytes.HasPrefix(raw, []byte("PANIC")) {
			panic("parser bug")
		}
		return append([]byte("parsed:"), raw[:min(len(raw), 5)]...)
	}
	s, _ := openTestStore(t, opts)
	for _, u := range []string{"a@example.org", "b@example.org", "c@example.org"} {
		if err := s.AddUser(u, "pw"); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	date := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := s.Deliver(ctx, []string{"a@example.org", "B@example.org", "a@example.org", "c@example.org"}, []byte("hello world"), date); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("Parse called %d times; want once per delivery", calls)
	}
	for _, u := range []string{"a@example.org", "b@example.org", "c@example.org"} {
		a, err := s.Account(u)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := a.Messages("INBOX")
		if err != nil || len(msgs) != 1 || !msgs[0].InternalDate.Equal(date) {
			t.Fatalf("%s INBOX = %+v, %v", u, msgs, err)
		}
		if meta, err := a.Meta("INBOX", msgs[0].UID); err != nil || string(meta) != "parsed:hello" {
			t.Fatalf("%s Meta = %q, %v", u, meta, err)
		}
	}
	// Meta travels with a copy.
	a, _ := s.Account("a@example.org")
	_, dst, err := a.Copy(ctx, "INBOX", []uint32{1}, "Archive", false)
	if err != nil {
		t.Fatal(err)
	}
	if meta, _ := a.Meta("Archive", dst[0]); string(meta) != "parsed:hello" {
		t.Fatalf("copied Meta = %q", meta)
	}
	// A panicking parser loses nothing.
	m, err := a.Append(ctx, "INBOX", []byte("PANIC now"), nil, date)
	if err != nil {
		t.Fatal(err)
	}
	if meta, err := a.Meta("INBOX", m.UID); err != nil || meta != nil {
		t.Fatalf("Meta after parser panic = %q, %v", meta, err)
	}

	err = s.Deliver(ctx, []string{"a@example.org", "ghost@example.org"}, []byte("x"), date)
	if !errors.Is(err, ErrNoSuchUser) || !strings.Contains(err.Error(), "ghost@example.org") {
		t.Fatalf("Deliver to a missing account: %v", err)
	}
	if f := mustFolder(t, a, "INBOX"); f.Messages != 3 {
		t.Fatalf("the existing recipient should still get it: %d messages", f.Messages)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	opts := testOptions()
	opts.NoSync = false // the real path, fsync included
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.AddUser("u@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAlias("al@example.org", []string{"u@example.org"}); err != nil {
		t.Fatal(err)
	}
	a, _ := s.Account("u@example.org")
	if err := a.CreateFolder("Keep/This", RoleNone); err != nil {
		t.Fatal(err)
	}
	if err := a.SetSubscribed("Keep/This", true); err != nil {
		t.Fatal(err)
	}
	m, err := a.Append(ctx, "Keep/This", []byte("kept"), []string{"kw", FlagFlagged}, time.Unix(1e9, 0))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := a.Folders()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Folders(); !errors.Is(err, ErrClosed) {
		t.Fatalf("use after Close: %v", err)
	}
	if _, err := a.Append(ctx, "INBOX", []byte("x"), nil, time.Time{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}

	s2, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, err := s2.Authenticate("u@example.org", "pw"); err != nil || got != "u@example.org" {
		t.Fatalf("Authenticate after reopen: %q %v", got, err)
	}
	if r, err := s2.Resolve("al@example.org"); err != nil || !slices.Equal(r.Accounts, []string{"u@example.org"}) {
		t.Fatalf("Resolve after reopen: %+v %v", r, err)
	}
	a2, err := s2.Account("u@example.org")
	if err != nil {
		t.Fatal(err)
	}
	after, _ := a2.Folders()
	if !slices.Equal(before, after) {
		t.Fatalf("folders changed across reopen:\n%+v\n%+v", before, after)
	}
	got, err := a2.Message("Keep/This", m.UID)
	if err != nil || got.ModSeq != m.ModSeq || !slices.Equal(got.Flags, m.Flags) || !got.InternalDate.Equal(m.InternalDate) {
		t.Fatalf("message after reopen %+v, %v; want %+v", got, err, m)
	}
	if raw, _ := a2.Raw("Keep/This", m.UID); string(raw) != "kept" {
		t.Fatalf("raw after reopen %q", raw)
	}
}

func TestSecondProcessGetsLocked(t *testing.T) {
	_, dir := openTestStore(t, testOptions())
	start := time.Now()
	// In one process a second flock on a new descriptor conflicts too, as
	// it would from another process.
	_, err := Open(dir, testOptions())
	wantErr(t, err, ErrLocked)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v to give up", d)
	}
}

// Scan's folder record is the one of the messages it lists: with mail
// arriving meanwhile, UIDNEXT is still above every UID listed.
func TestScanConsistentWithAppends(t *testing.T) {
	_, a := newTestAccount(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			if _, err := a.Append(context.Background(), InboxName, []byte(fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i)), nil, time.Time{}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	scans := 0
	for running := true; running; scans++ {
		select {
		case <-done:
			running = false
		default:
		}
		var last uint32
		info, err := a.Scan(InboxName, 1, func(m MessageInfo) error {
			last = m.UID
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if last >= info.UIDNext {
			t.Fatalf("scan %d listed UID %d with UIDNEXT %d", scans, last, info.UIDNext)
		}
	}
}
