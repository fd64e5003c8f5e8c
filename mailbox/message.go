package mailbox

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"posthorn/mailbox/failpoint"
)

// MessageInfo is one message's metadata (not its bytes).
type MessageInfo struct {
	UID          uint32
	ModSeq       uint64
	Size         int64
	InternalDate time.Time
	Flags        []string // system flags (\Seen, \Answered, \Flagged, \Deleted, \Draft) and keywords, sorted
}

// msgMeta is the value of a "msgs" entry.
type msgMeta struct {
	modSeq uint64
	size   int64
	date   int64 // Unix seconds (INTERNALDATE has second precision)
	zone   int32 // offset east of UTC in seconds, to show the date as given
	flags  flagSet
}

const (
	msgMetaVersion = 1
	msgMetaFixed   = 1 + 8 + 8 + 8 + 4 + 1 + 1
)

func (m *msgMeta) encode() []byte {
	n := msgMetaFixed
	for _, k := range m.flags.keywords {
		n += 1 + len(k)
	}
	b := make([]byte, 0, n)
	b = append(b, msgMetaVersion)
	b = binary.BigEndian.AppendUint64(b, m.modSeq)
	b = binary.BigEndian.AppendUint64(b, uint64(m.size))
	b = binary.BigEndian.AppendUint64(b, uint64(m.date))
	b = binary.BigEndian.AppendUint32(b, uint32(m.zone))
	b = append(b, m.flags.sys, byte(len(m.flags.keywords)))
	for _, k := range m.flags.keywords {
		b = append(b, byte(len(k)))
		b = append(b, k...)
	}
	return b
}

func decodeMsgMeta(v []byte) (msgMeta, error) {
	bad := fmt.Errorf("%w: message record", ErrCorrupt)
	if len(v) < msgMetaFixed || v[0] != msgMetaVersion {
		return msgMeta{}, bad
	}
	be := binary.BigEndian
	m := msgMeta{
		modSeq: be.Uint64(v[1:]),
		size:   int64(be.Uint64(v[9:])),
		date:   int64(be.Uint64(v[17:])),
		zone:   int32(be.Uint32(v[25:])),
	}
	m.flags.sys = v[29]
	n := int(v[30])
	rest := v[msgMetaFixed:]
	if n > 0 {
		m.flags.keywords = make([]string, 0, n)
	}
	for range n {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return msgMeta{}, bad
		}
		l := int(rest[0])
		m.flags.keywords = append(m.flags.keywords, string(rest[1:1+l]))
		rest = rest[1+l:]
	}
	if len(rest) != 0 {
		return msgMeta{}, bad
	}
	return m, nil
}

func (m *msgMeta) info(uid uint32) MessageInfo {
	zone := time.UTC
	if m.zone != 0 {
		zone = time.FixedZone("", int(m.zone))
	}
	return MessageInfo{
		UID:          uid,
		ModSeq:       m.modSeq,
		Size:         m.size,
		InternalDate: time.Unix(m.date, 0).In(zone),
		Flags:        m.flags.list(),
	}
}

func uidKey(uid uint32) []byte { return binary.BigEndian.AppendUint32(nil, uid) }

// openFolder resolves a folder name in a transaction: its record and
// storage buckets.
type openFolder struct {
	name                           string
	rec                            *folderRecord
	msgs, bodies, parsed, expunged *bolt.Bucket
}

func loadFolder(tx *bolt.Tx, name string) (*openFolder, error) {
	f, err := getFolder(tx, name)
	if err != nil {
		return nil, err
	}
	b, err := box(tx, f)
	if err != nil {
		return nil, err
	}
	of := &openFolder{name: name, rec: f,
		msgs: b.Bucket(bucketMsgs), bodies: b.Bucket(bucketBodies),
		parsed: b.Bucket(bucketParsed), expunged: b.Bucket(bucketExpunged)}
	if of.msgs == nil || of.bodies == nil || of.parsed == nil || of.expunged == nil {
		return nil, fmt.Errorf("%w: folder storage %d incomplete", ErrCorrupt, f.id)
	}
	return of, nil
}

func (f *openFolder) meta(uid uint32) (msgMeta, bool, error) {
	v := f.msgs.Get(uidKey(uid))
	if v == nil {
		return msgMeta{}, false, nil
	}
	m, err := decodeMsgMeta(v)
	return m, err == nil, err
}

// add stores a message under the folder's next UID.
func (f *openFolder) add(m *msgMeta, raw, parsed []byte) (uint32, error) {
	uid := f.rec.uidNext
	if uid == ^uint32(0) {
		return 0, fmt.Errorf("%w: %s", ErrUIDsExhausted, f.name)
	}
	f.rec.uidNext++
	k := uidKey(uid)
	if err := f.msgs.Put(k, m.encode()); err != nil {
		return 0, err
	}
	if err := f.bodies.Put(k, raw); err != nil {
		return 0, err
	}
	if len(parsed) > 0 {
		if err := f.parsed.Put(k, parsed); err != nil {
			return 0, err
		}
	}
	f.rec.count(m, 1)
	f.rec.highestModSeq = max(f.rec.highestModSeq, m.modSeq)
	return uid, nil
}

// remove deletes a message and records its expunge with modSeq.
func (f *openFolder) remove(uid uint32, m *msgMeta, modSeq uint64) error {
	k := uidKey(uid)
	for _, b := range []*bolt.Bucket{f.msgs, f.bodies, f.parsed} {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	f.rec.count(m, -1)
	f.rec.highestModSeq = max(f.rec.highestModSeq, modSeq)
	return f.expunged.Put(k, binary.BigEndian.AppendUint64(nil, modSeq))
}

func (f *openFolder) save(tx *bolt.Tx) error { return putFolder(tx, f.name, f.rec) }

// sortedUIDs returns uids ascending without duplicates or zero.
func sortedUIDs(uids []uint32) []uint32 {
	s := slices.Clone(uids)
	slices.Sort(s)
	s = slices.Compact(s)
	if len(s) > 0 && s[0] == 0 {
		s = s[1:]
	}
	return s
}

// Append stores a message in a folder durably (group commit) and returns its UID.
// A zero internalDate means now. Options.Parse runs on raw first. raw must
// not be changed until Append returns. Errors: ErrNoFolder, ErrBadFolderName,
// ErrBadFlag, ErrTooManyKeywords, ErrUIDsExhausted.
func (a *Account) Append(ctx context.Context, folder string, raw []byte, flags []string, internalDate time.Time) (MessageInfo, error) {
	name, err := CanonicalFolderName(folder)
	if err != nil {
		return MessageInfo{}, err
	}
	if _, err := parseFlags(flags); err != nil {
		return MessageInfo{}, err
	}
	info, err := a.appendMessage(ctx, name, raw, a.store.parseMessage(raw), flags, internalDate)
	if err == nil {
		err = failpoint.Inject(failpoint.AppendDurable)
	}
	return info, err
}

// appendMessage is Append with the folder name canonical and the message
// already parsed (Deliver parses once for every recipient).
func (a *Account) appendMessage(ctx context.Context, folder string, raw, parsed []byte, flags []string, internalDate time.Time) (MessageInfo, error) {
	fs, err := parseFlags(flags)
	if err != nil {
		return MessageInfo{}, err
	}
	if internalDate.IsZero() {
		internalDate = a.store.now()
	}
	_, offset := internalDate.Zone()
	var info MessageInfo
	err = a.write(ctx, len(raw)+len(parsed), func(t *acctTx) error {
		f, err := loadFolder(t.tx, folder)
		if err != nil {
			return err
		}
		ms, err := t.nextModSeq()
		if err != nil {
			return err
		}
		m := &msgMeta{modSeq: ms, size: int64(len(raw)), date: internalDate.Unix(), zone: int32(offset), flags: fs}
		uid, err := f.add(m, raw, parsed)
		if err != nil {
			return err
		}
		info = m.info(uid)
		if err := failpoint.Inject(failpoint.AppendTx); err != nil {
			return err
		}
		t.publish(Change{Kind: ChangeExists, Folder: folder, UID: uid, ModSeq: ms, Flags: info.Flags})
		return f.save(t.tx)
	})
	if err != nil {
		return MessageInfo{}, fmt.Errorf("append to %s/%s: %w", a.name, folder, err)
	}
	return info, nil
}

// Messages returns metadata of every message in the folder in UID order.
func (a *Account) Messages(folder string) ([]MessageInfo, error) {
	var out []MessageInfo
	err := a.ForEachMessage(folder, 1, func(m MessageInfo) error {
		out = append(out, m)
		return nil
	})
	return out, err
}

// ForEachMessage calls fn with the metadata of each message whose UID is at
// least fromUID, in UID order, without building a list (for "UID FETCH
// 1:* FLAGS" on a large folder). It runs in one read transaction: fn must
// not block on the network or call the Account's write methods.
func (a *Account) ForEachMessage(folder string, fromUID uint32, fn func(MessageInfo) error) error {
	_, err := a.Scan(folder, fromUID, fn)
	return err
}

// Scan is ForEachMessage that also returns the folder's record as of the
// same transaction: SELECT's UIDVALIDITY and UIDNEXT then agree with the
// messages listed (every UID below UIDNEXT), which two reads cannot
// promise while mail arrives between them.
func (a *Account) Scan(folder string, fromUID uint32, fn func(MessageInfo) error) (FolderInfo, error) {
	name, err := CanonicalFolderName(folder)
	if err != nil {
		return FolderInfo{}, err
	}
	var info FolderInfo
	err = a.view(func(tx *bolt.Tx) error {
		f, err := loadFolder(tx, name)
		if err != nil {
			return err
		}
		info = f.rec.info(name)
		c := f.msgs.Cursor()
		for k, v := c.Seek(uidKey(fromUID)); k != nil; k, v = c.Next() {
			m, err := decodeMsgMeta(v)
			if err != nil {
				return err
			}
			if err := fn(m.info(binary.BigEndian.Uint32(k))); err != nil {
				return err
			}
		}
		return nil
	})
	return info, err
}

// Message returns one message's metadata. Errors: ErrNoFolder, ErrNotFound.
func (a *Account) Message(folder string, uid uint32) (MessageInfo, error) {
	name, err := CanonicalFolderName(folder)
	if err != nil {
		return MessageInfo{}, err
	}
	var info MessageInfo
	err = a.view(func(tx *bolt.Tx) error {
		f, err := loadFolder(tx, name)
		if err != nil {
			return err
		}
		m, ok, err := f.meta(uid)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %s UID %d", ErrNotFound, name, uid)
		}
		info = m.info(uid)
		return nil
	})
	return info, err
}

// Raw returns a copy of the message bytes. Errors: ErrNoFolder, ErrNotFound.
func (a *Account) Raw(folder string, uid uint32) ([]byte, error) {
	return a.value(folder, uid, func(f *openFolder) *bolt.Bucket { return f.bodies }, true)
}

// Meta returns a copy of the parsed-structure blob that Options.Parse made
// when the message arrived, or nil if there is none. Errors: ErrNoFolder,
// ErrNotFound.
func (a *Account) Meta(folder string, uid uint32) ([]byte, error) {
	return a.value(folder, uid, func(f *openFolder) *bolt.Bucket { return f.parsed }, false)
}

// value copies one value out of the database: the mapping is only valid
// inside the read transaction.
func (a *Account) value(folder string, uid uint32, bucket func(*openFolder) *bolt.Bucket, required bool) ([]byte, error) {
	name, err := CanonicalFolderName(folder)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = a.view(func(tx *bolt.Tx) error {
		f, err := loadFolder(tx, name)
		if err != nil {
			return err
		}
		k := uidKey(uid)
		if f.msgs.Get(k) == nil {
			return fmt.Errorf("%w: %s UID %d", ErrNotFound, name, uid)
		}
		v := bucket(f).Get(k)
		if v == nil && required {
			return fmt.Errorf("%w: %s UID %d has no body", ErrCorrupt, name, uid)
		}
		if v != nil {
			out = bytes.Clone(v)
			if out == nil {
				out = []byte{}
			}
		}
		return nil
	})
	return out, err
}
