package mailbox

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// AccountCheck is what Check found in one account's file: its counters, to
// compare before and after a crash, and every inconsistency.
type AccountCheck struct {
	Account  string
	ModSeq   uint64 // the account-wide MODSEQ counter
	Folders  []FolderInfo
	Problems []string
}

// Check verifies an account's file in one read transaction: bbolt's own
// page check if pages is set, and the invariants the store keeps
// (DESIGN.md):
//   - every message's UID is below its folder's UIDNEXT, and every expunged
//     UID too, so a UID is never handed out twice (RFC 9051 2.3.1.1);
//   - no MODSEQ (a message's, an expunge's, a folder's HIGHESTMODSEQ) is
//     above the account's counter, so the next change gets a higher one
//     (RFC 7162 3.1.1: MODSEQ never decreases);
//   - the folder counters (messages, unseen, deleted, size) match its
//     messages, every message has its body with the recorded size, and no
//     body, parse or storage bucket is left without its message or folder.
//
// A nil error with Problems empty means the file is consistent. It is safe
// while the server runs (a read transaction sees one committed state), but
// the page check is not then: bbolt checks a transaction's pages against
// the file's current free list, which writers change, so it reports pages
// freed by later commits. Pass pages only while nothing writes.
func (a *Account) Check(pages bool) (AccountCheck, error) {
	out := AccountCheck{Account: a.name}
	err := a.view(func(tx *bolt.Tx) error {
		problem := func(format string, args ...any) {
			if len(out.Problems) < 100 {
				out.Problems = append(out.Problems, fmt.Sprintf(format, args...))
			}
		}
		if pages {
			for err := range tx.Check() {
				problem("bbolt: %v", err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		folders, boxes := tx.Bucket(bucketFolders), tx.Bucket(bucketBoxes)
		if meta == nil || folders == nil || boxes == nil {
			problem("account buckets missing")
			return nil
		}
		if v := meta.Get(keyModSeq); len(v) == 8 {
			out.ModSeq = binary.BigEndian.Uint64(v)
		}
		var lastValidity, lastFolderID uint32
		if v := meta.Get(keyUIDValidity); len(v) == 4 {
			lastValidity = binary.BigEndian.Uint32(v)
		}
		if v := meta.Get(keyFolderSeq); len(v) == 4 {
			lastFolderID = binary.BigEndian.Uint32(v)
		}
		used := map[uint32]string{}
		err := folders.ForEach(func(k, v []byte) error {
			name := string(k)
			rec, err := decodeFolderRecord(v)
			if err != nil {
				problem("folder %q: %v", name, err)
				return nil
			}
			out.Folders = append(out.Folders, rec.info(name))
			if other, dup := used[rec.id]; dup {
				problem("folders %q and %q share storage %d", other, name, rec.id)
			}
			used[rec.id] = name
			if rec.id > lastFolderID {
				problem("folder %q: storage id %d above the allocated %d", name, rec.id, lastFolderID)
			}
			if rec.uidValidity == 0 || rec.uidValidity > lastValidity {
				problem("folder %q: UIDVALIDITY %d not in 1..%d", name, rec.uidValidity, lastValidity)
			}
			if rec.highestModSeq > out.ModSeq {
				problem("folder %q: HIGHESTMODSEQ %d above the account's %d", name, rec.highestModSeq, out.ModSeq)
			}
			f, err := loadFolder(tx, name)
			if err != nil {
				problem("folder %q: %v", name, err)
				return nil
			}
			checkFolder(f, problem)
			return nil
		})
		if err != nil {
			return err
		}
		return boxes.ForEachBucket(func(k []byte) error {
			if len(k) != 4 {
				problem("storage bucket with a bad key %x", k)
			} else if _, ok := used[binary.BigEndian.Uint32(k)]; !ok {
				problem("storage %d belongs to no folder", binary.BigEndian.Uint32(k))
			}
			return nil
		})
	})
	return out, err
}

// checkFolder checks one folder's messages against its record.
func checkFolder(f *openFolder, problem func(string, ...any)) {
	var want folderRecord
	err := f.msgs.ForEach(func(k, v []byte) error {
		if len(k) != 4 {
			problem("folder %q: message key %x", f.name, k)
			return nil
		}
		uid := binary.BigEndian.Uint32(k)
		if uid == 0 || uid >= f.rec.uidNext {
			problem("folder %q: UID %d not below UIDNEXT %d", f.name, uid, f.rec.uidNext)
		}
		m, err := decodeMsgMeta(v)
		if err != nil {
			problem("folder %q: UID %d: %v", f.name, uid, err)
			return nil
		}
		if m.modSeq == 0 || m.modSeq > f.rec.highestModSeq {
			problem("folder %q: UID %d MODSEQ %d not in 1..%d", f.name, uid, m.modSeq, f.rec.highestModSeq)
		}
		if body := f.bodies.Get(k); body == nil {
			problem("folder %q: UID %d has no body", f.name, uid)
		} else if int64(len(body)) != m.size {
			problem("folder %q: UID %d body is %d bytes, recorded %d", f.name, uid, len(body), m.size)
		}
		if f.expunged.Get(k) != nil {
			problem("folder %q: UID %d both present and expunged", f.name, uid)
		}
		want.count(&m, 1)
		return nil
	})
	if err != nil {
		problem("folder %q: %v", f.name, err)
	}
	got := f.rec
	if got.messages != want.messages || got.unseen != want.unseen || got.deleted != want.deleted || got.size != want.size {
		problem("folder %q: counters messages=%d unseen=%d deleted=%d size=%d, messages say %d %d %d %d",
			f.name, got.messages, got.unseen, got.deleted, got.size, want.messages, want.unseen, want.deleted, want.size)
	}
	orphans := func(b *bolt.Bucket, what string) {
		_ = b.ForEach(func(k, _ []byte) error {
			if f.msgs.Get(k) == nil {
				problem("folder %q: %s for missing message %x", f.name, what, k)
			}
			return nil
		})
	}
	orphans(f.bodies, "body")
	orphans(f.parsed, "parsed structure")
	_ = f.expunged.ForEach(func(k, v []byte) error {
		if len(k) != 4 || len(v) != 8 {
			problem("folder %q: expunge record %x", f.name, k)
			return nil
		}
		if uid := binary.BigEndian.Uint32(k); uid == 0 || uid >= f.rec.uidNext {
			problem("folder %q: expunged UID %d not below UIDNEXT %d", f.name, uid, f.rec.uidNext)
		}
		if ms := binary.BigEndian.Uint64(v); ms > f.rec.highestModSeq {
			problem("folder %q: expunge MODSEQ %d above HIGHESTMODSEQ %d", f.name, ms, f.rec.highestModSeq)
		}
		return nil
	})
}

// Check runs Account.Check on every account, in name order, and (with
// pages) checks the directory file's pages.
func (s *Store) Check(pages bool) ([]AccountCheck, error) {
	var dirProblems []string
	err := s.viewDir(func(tx *bolt.Tx) error {
		if !pages {
			return nil
		}
		for err := range tx.Check() {
			dirProblems = append(dirProblems, fmt.Sprintf("bbolt: %v", err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := []AccountCheck{}
	if len(dirProblems) > 0 {
		out = append(out, AccountCheck{Account: "(directory)", Problems: dirProblems})
	}
	users, err := s.Users()
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		acct, err := s.Account(u)
		if err != nil {
			out = append(out, AccountCheck{Account: u, Problems: []string{err.Error()}})
			continue
		}
		c, err := acct.Check(pages)
		if err != nil {
			c.Problems = append(c.Problems, err.Error())
		}
		out = append(out, c)
	}
	return out, nil
}
