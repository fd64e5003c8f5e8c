package mailbox

import (
	"context"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestCheckClean(t *testing.T) {
	st, a := newTestAccount(t)
	m := mustAppend(t, a, InboxName, "Subject: a\r\n\r\nbody\r\n")
	mustAppend(t, a, InboxName, "Subject: b\r\n\r\nbody\r\n", `\Seen`)
	if _, err := a.Expunge(context.Background(), InboxName, []uint32{m.UID}); err != nil {
		t.Fatal(err)
	}
	if err := a.RenameFolder("Archive", "Old/Archive"); err != nil {
		t.Fatal(err)
	}
	checks, err := st.Check(true)
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 1 || len(checks[0].Problems) != 0 {
		t.Fatalf("a consistent store has problems: %+v", checks)
	}
	c := checks[0]
	if c.ModSeq == 0 || len(c.Folders) != 7 {
		t.Errorf("modseq %d, %d folders; want >0 and 7", c.ModSeq, len(c.Folders))
	}
	for _, f := range c.Folders {
		if f.Name == InboxName && (f.UIDNext != 3 || f.Messages != 1) {
			t.Errorf("INBOX uidnext=%d messages=%d, want 3 and 1", f.UIDNext, f.Messages)
		}
	}
}

// Each corruption is one a crash or a bug could leave; Check must name it.
func TestCheckFindsCorruption(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, tx *bolt.Tx, f *openFolder)
		want    string
	}{
		{"uid at uidnext", func(t *testing.T, tx *bolt.Tx, f *openFolder) {
			f.rec.uidNext = 1 // the message has UID 1
			mustPut(t, putFolder(tx, f.name, f.rec))
		}, "not below UIDNEXT"},
		{"counter off", func(t *testing.T, tx *bolt.Tx, f *openFolder) {
			f.rec.messages++
			mustPut(t, putFolder(tx, f.name, f.rec))
		}, "counters"},
		{"body missing", func(t *testing.T, tx *bolt.Tx, f *openFolder) {
			mustPut(t, f.bodies.Delete(uidKey(1)))
		}, "has no body"},
		{"orphan body", func(t *testing.T, tx *bolt.Tx, f *openFolder) {
			mustPut(t, f.bodies.Put(uidKey(9), []byte("x")))
		}, "body for missing message"},
		{"modseq above folder", func(t *testing.T, tx *bolt.Tx, f *openFolder) {
			f.rec.highestModSeq = 1
			mustPut(t, putFolder(tx, f.name, f.rec))
		}, "MODSEQ"},
		{"folder modseq above account", func(t *testing.T, tx *bolt.Tx, f *openFolder) {
			f.rec.highestModSeq = 1 << 40
			mustPut(t, putFolder(tx, f.name, f.rec))
		}, "above the account's"},
		{"expunged and present", func(t *testing.T, tx *bolt.Tx, f *openFolder) {
			mustPut(t, f.expunged.Put(uidKey(1), make([]byte, 8)))
		}, "both present and expunged"},
		{"orphan storage", func(t *testing.T, tx *bolt.Tx, f *openFolder) {
			_, err := tx.Bucket(bucketBoxes).CreateBucket(folderID(999))
			mustPut(t, err)
		}, "belongs to no folder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, a := newTestAccount(t)
			mustAppend(t, a, InboxName, "Subject: a\r\n\r\nbody\r\n")
			err := a.db.Update(func(tx *bolt.Tx) error {
				f, err := loadFolder(tx, InboxName)
				if err != nil {
					return err
				}
				tc.corrupt(t, tx, f)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			c, err := a.Check(true)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(c.Problems, "\n"), tc.want) {
				t.Errorf("problems %q, want one with %q", c.Problems, tc.want)
			}
		})
	}
}

func mustPut(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
