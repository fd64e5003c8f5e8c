package mailbox

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"posthorn/mailbox/failpoint"
)

// Expunge removes the given UIDs (durably) and returns the UIDs actually removed.
// The UIDs are never used again in the folder; the expunge is recorded with
// the operation's MODSEQ (Expunged). Callers choose which UIDs (IMAP: those
// with \Deleted).
func (a *Account) Expunge(ctx context.Context, folder string, uids []uint32) ([]uint32, error) {
	name, err := CanonicalFolderName(folder)
	if err != nil {
		return nil, err
	}
	uids = sortedUIDs(uids)
	var removed []uint32
	err = a.write(ctx, 0, func(t *acctTx) error {
		removed = nil
		f, err := loadFolder(t.tx, name)
		if err != nil {
			return err
		}
		for _, uid := range uids {
			m, ok, err := f.meta(uid)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			ms, err := t.nextModSeq()
			if err != nil {
				return err
			}
			if err := f.remove(uid, &m, ms); err != nil {
				return err
			}
			removed = append(removed, uid)
			t.publish(Change{Kind: ChangeExpunge, Folder: name, UID: uid, ModSeq: ms})
			if len(removed) == 1 {
				if err := failpoint.Inject(failpoint.ExpungeTx); err != nil {
					return err
				}
			}
		}
		if len(removed) == 0 {
			return nil
		}
		return f.save(t.tx)
	})
	if err != nil {
		return nil, fmt.Errorf("expunge in %s/%s: %w", a.name, name, err)
	}
	return removed, nil
}

// Expunged returns the UIDs expunged from the folder (by Expunge, a move,
// or renaming INBOX) with a MODSEQ above sinceModSeq, ascending: QRESYNC's
// VANISHED (EARLIER) (RFC 7162 3.2.5). The history is kept while the folder
// lives.
func (a *Account) Expunged(folder string, sinceModSeq uint64) ([]uint32, error) {
	name, err := CanonicalFolderName(folder)
	if err != nil {
		return nil, err
	}
	var out []uint32
	err = a.view(func(tx *bolt.Tx) error {
		f, err := loadFolder(tx, name)
		if err != nil {
			return err
		}
		return f.expunged.ForEach(func(k, v []byte) error {
			if len(k) != 4 || len(v) != 8 {
				return fmt.Errorf("%w: expunge record", ErrCorrupt)
			}
			if binary.BigEndian.Uint64(v) > sinceModSeq {
				out = append(out, binary.BigEndian.Uint32(k))
			}
			return nil
		})
	})
	return out, err
}

// Copy copies (move=false) or moves messages to another folder; returns the new UIDs
// in the same order as the source UIDs that existed.
//
// Source UIDs are taken in ascending order (RFC 4315 COPYUID lists them so).
// Flags, internal date and the parsed blob go with the message. A move
// expunges the sources in the same transaction (RFC 6851). Copying or
// moving within one folder is allowed (the message gets a new UID).
// Errors: ErrNoFolder, ErrUIDsExhausted.
func (a *Account) Copy(ctx context.Context, from string, uids []uint32, to string, move bool) (src, dst []uint32, err error) {
	fromName, err := CanonicalFolderName(from)
	if err != nil {
		return nil, nil, err
	}
	toName, err := CanonicalFolderName(to)
	if err != nil {
		return nil, nil, err
	}
	uids = sortedUIDs(uids)
	err = a.write(ctx, 0, func(t *acctTx) error {
		src, dst = nil, nil
		sf, err := loadFolder(t.tx, fromName)
		if err != nil {
			return err
		}
		df := sf
		if toName != fromName {
			if df, err = loadFolder(t.tx, toName); err != nil {
				return err
			}
		}
		var ms uint64
		var flags [][]string
		for _, uid := range uids {
			m, ok, err := sf.meta(uid)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if ms, err = t.nextModSeq(); err != nil {
				return err
			}
			k := uidKey(uid)
			// Values read in a write transaction point into the mapping,
			// which a commit may remap: copy before Put.
			raw := bytes.Clone(sf.bodies.Get(k))
			if raw == nil {
				raw = []byte{}
			}
			parsed := bytes.Clone(sf.parsed.Get(k))
			nm := m
			nm.modSeq = ms
			nuid, err := df.add(&nm, raw, parsed)
			if err != nil {
				return err
			}
			src, dst = append(src, uid), append(dst, nuid)
			flags = append(flags, nm.flags.list())
			if move {
				if err := sf.remove(uid, &m, ms); err != nil {
					return err
				}
			}
		}
		if len(src) == 0 {
			return nil
		}
		for i, nuid := range dst {
			t.publish(Change{Kind: ChangeExists, Folder: toName, UID: nuid, ModSeq: ms, Flags: flags[i]})
		}
		if move {
			for _, uid := range src {
				t.publish(Change{Kind: ChangeExpunge, Folder: fromName, UID: uid, ModSeq: ms})
			}
		}
		if err := df.save(t.tx); err != nil {
			return err
		}
		if df != sf {
			return sf.save(t.tx)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("copy %s/%s to %s: %w", a.name, fromName, toName, err)
	}
	return src, dst, nil
}
