package mailbox

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"posthorn/mailbox/failpoint"
)

// Folder naming.
const (
	// InboxName is the canonical spelling of INBOX, whose name is
	// case-insensitive (RFC 9051 5.1).
	InboxName = "INBOX"
	// HierarchyDelimiter separates the levels of a folder name.
	HierarchyDelimiter = "/"
	// MaxFolderNameLength bounds a folder name in octets of UTF-8.
	MaxFolderNameLength = 255
)

// Folder roles (RFC 6154).
const (
	RoleNone    = ""
	RoleSent    = `\Sent`
	RoleDrafts  = `\Drafts`
	RoleTrash   = `\Trash`
	RoleJunk    = `\Junk`
	RoleArchive = `\Archive`
)

// defaultFolders are created with every account, all subscribed.
var defaultFolders = []struct{ name, role string }{
	{InboxName, RoleNone},
	{"Sent", RoleSent},
	{"Drafts", RoleDrafts},
	{"Trash", RoleTrash},
	{"Junk", RoleJunk},
	{"Archive", RoleArchive},
}

func validRole(r string) bool {
	switch r {
	case RoleNone, RoleSent, RoleDrafts, RoleTrash, RoleJunk, RoleArchive:
		return true
	}
	return false
}

// FolderInfo is a folder's status.
type FolderInfo struct {
	Name          string // "INBOX", "Sent", "Lists/golang" (hierarchy delimiter "/")
	Role          string
	Subscribed    bool
	UIDValidity   uint32
	UIDNext       uint32
	HighestModSeq uint64
	Messages      uint32
	Unseen        uint32
	Deleted       uint32
	Size          int64
}

// CanonicalFolderName validates a folder name and returns its canonical
// form: UTF-8 (the IMAP server decodes modified UTF-7 first) of at most 255
// octets, without control characters or the LIST wildcards '*' and '%',
// levels separated by "/" with no empty level (so no leading, trailing or
// doubled "/"). A first level equal to INBOX in any case becomes "INBOX"
// (RFC 9051 5.1: INBOX is case-insensitive), so "inbox/x" is "INBOX/x".
// Errors wrap ErrBadFolderName.
func CanonicalFolderName(name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: %q: %s", ErrBadFolderName, truncateForError(name), why)
	}
	if name == "" {
		return bad("empty")
	}
	if len(name) > MaxFolderNameLength {
		return bad("longer than 255 octets")
	}
	if !utf8.ValidString(name) {
		return bad("not UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) || r == '*' || r == '%' || r == utf8.RuneError {
			return bad("control character or wildcard")
		}
	}
	if strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
		return bad("empty hierarchy level")
	}
	first, rest, _ := strings.Cut(name, HierarchyDelimiter)
	if strings.EqualFold(first, InboxName) {
		if rest == "" {
			return InboxName, nil
		}
		return InboxName + HierarchyDelimiter + rest, nil
	}
	return name, nil
}

// folderRecord is the value of a "folders" entry.
type folderRecord struct {
	id            uint32 // names the storage bucket under "boxes"
	role          string
	subscribed    bool
	uidValidity   uint32
	uidNext       uint32
	highestModSeq uint64
	messages      uint32
	unseen        uint32
	deleted       uint32
	size          int64
}

const (
	folderRecordVersion = 1
	folderRecordFixed   = 1 + 4 + 4 + 4 + 8 + 4 + 4 + 4 + 8 + 1 + 1
	folderSubscribed    = 1 << 0
)

func (f *folderRecord) encode() []byte {
	b := make([]byte, 0, folderRecordFixed+len(f.role))
	b = append(b, folderRecordVersion)
	b = binary.BigEndian.AppendUint32(b, f.id)
	b = binary.BigEndian.AppendUint32(b, f.uidValidity)
	b = binary.BigEndian.AppendUint32(b, f.uidNext)
	b = binary.BigEndian.AppendUint64(b, f.highestModSeq)
	b = binary.BigEndian.AppendUint32(b, f.messages)
	b = binary.BigEndian.AppendUint32(b, f.unseen)
	b = binary.BigEndian.AppendUint32(b, f.deleted)
	b = binary.BigEndian.AppendUint64(b, uint64(f.size))
	var fl byte
	if f.subscribed {
		fl |= folderSubscribed
	}
	b = append(b, fl, byte(len(f.role)))
	return append(b, f.role...)
}

func decodeFolderRecord(v []byte) (*folderRecord, error) {
	if len(v) < folderRecordFixed || v[0] != folderRecordVersion || len(v) != folderRecordFixed+int(v[folderRecordFixed-1]) {
		return nil, fmt.Errorf("%w: folder record", ErrCorrupt)
	}
	be := binary.BigEndian
	return &folderRecord{
		id:            be.Uint32(v[1:]),
		uidValidity:   be.Uint32(v[5:]),
		uidNext:       be.Uint32(v[9:]),
		highestModSeq: be.Uint64(v[13:]),
		messages:      be.Uint32(v[21:]),
		unseen:        be.Uint32(v[25:]),
		deleted:       be.Uint32(v[29:]),
		size:          int64(be.Uint64(v[33:])),
		subscribed:    v[41]&folderSubscribed != 0,
		role:          string(v[folderRecordFixed:]),
	}, nil
}

func (f *folderRecord) info(name string) FolderInfo {
	return FolderInfo{
		Name:          name,
		Role:          f.role,
		Subscribed:    f.subscribed,
		UIDValidity:   f.uidValidity,
		UIDNext:       f.uidNext,
		HighestModSeq: f.highestModSeq,
		Messages:      f.messages,
		Unseen:        f.unseen,
		Deleted:       f.deleted,
		Size:          f.size,
	}
}

// count adds (sign 1) or removes (sign -1) a message to the folder's
// counters, which are kept exact so STATUS needs no scan.
func (f *folderRecord) count(m *msgMeta, sign int) {
	d := uint32(sign) // two's complement: adding ^0 subtracts one
	f.messages += d
	f.size += int64(sign) * m.size
	if m.flags.sys&flagSeen == 0 {
		f.unseen += d
	}
	if m.flags.sys&flagDeleted != 0 {
		f.deleted += d
	}
}

func folderID(id uint32) []byte { return binary.BigEndian.AppendUint32(nil, id) }

// folder loads a folder record by canonical name.
func getFolder(tx *bolt.Tx, name string) (*folderRecord, error) {
	v := tx.Bucket(bucketFolders).Get([]byte(name))
	if v == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoFolder, name)
	}
	return decodeFolderRecord(v)
}

func putFolder(tx *bolt.Tx, name string, f *folderRecord) error {
	return tx.Bucket(bucketFolders).Put([]byte(name), f.encode())
}

// box returns the storage bucket of a folder; sub-buckets msgs, bodies,
// parsed and expunged.
func box(tx *bolt.Tx, f *folderRecord) (*bolt.Bucket, error) {
	b := tx.Bucket(bucketBoxes).Bucket(folderID(f.id))
	if b == nil {
		return nil, fmt.Errorf("%w: folder storage %d missing", ErrCorrupt, f.id)
	}
	return b, nil
}

// createFolder creates a folder with a new id, UIDVALIDITY and storage.
func (t *acctTx) createFolder(name, role string, subscribed bool) error {
	id, err := t.nextFolderID()
	if err != nil {
		return err
	}
	uv, err := t.nextUIDValidity()
	if err != nil {
		return err
	}
	ms, err := t.nextModSeq()
	if err != nil {
		return err
	}
	if err := t.createBox(id); err != nil {
		return err
	}
	f := &folderRecord{id: id, role: role, subscribed: subscribed, uidValidity: uv, uidNext: 1, highestModSeq: ms}
	t.publish(Change{Kind: ChangeFolder, Folder: name, ModSeq: ms})
	return putFolder(t.tx, name, f)
}

func (t *acctTx) createBox(id uint32) error {
	b, err := t.tx.Bucket(bucketBoxes).CreateBucket(folderID(id))
	if err != nil {
		return err
	}
	for _, sub := range [][]byte{bucketMsgs, bucketBodies, bucketParsed, bucketExpunged} {
		if _, err := b.CreateBucket(sub); err != nil {
			return err
		}
	}
	return nil
}

// createParents creates the missing superior levels of name (RFC 9051
// 6.3.4: the server SHOULD create them), unsubscribed and without a role.
func (t *acctTx) createParents(name string) error {
	folders := t.tx.Bucket(bucketFolders)
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		parent := name[:i]
		if folders.Get([]byte(parent)) == nil {
			if err := t.createFolder(parent, RoleNone, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// Folders lists every folder, INBOX first, then sorted by name (octets).
func (a *Account) Folders() ([]FolderInfo, error) {
	var out []FolderInfo
	err := a.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFolders).ForEach(func(k, v []byte) error {
			f, err := decodeFolderRecord(v)
			if err != nil {
				return err
			}
			info := f.info(string(k))
			if info.Name == InboxName {
				out = append([]FolderInfo{info}, out...)
			} else {
				out = append(out, info)
			}
			return nil
		})
	})
	return out, err
}

// Folder returns one folder's status in O(1). Errors: ErrNoFolder, ErrBadFolderName.
func (a *Account) Folder(name string) (FolderInfo, error) {
	name, err := CanonicalFolderName(name)
	if err != nil {
		return FolderInfo{}, err
	}
	var info FolderInfo
	err = a.view(func(tx *bolt.Tx) error {
		f, err := getFolder(tx, name)
		if err != nil {
			return err
		}
		info = f.info(name)
		return nil
	})
	return info, err
}

// CreateFolder creates a folder, unsubscribed, with a new UIDVALIDITY, and
// any missing parent levels. Errors: ErrFolderExists, ErrBadFolderName, ErrBadRole.
func (a *Account) CreateFolder(name, role string) error {
	name, err := CanonicalFolderName(name)
	if err != nil {
		return err
	}
	if !validRole(role) {
		return fmt.Errorf("%w: %q", ErrBadRole, role)
	}
	return a.write(context.Background(), 0, func(t *acctTx) error {
		if t.tx.Bucket(bucketFolders).Get([]byte(name)) != nil {
			return fmt.Errorf("%w: %s", ErrFolderExists, name)
		}
		if err := t.createParents(name); err != nil {
			return err
		}
		return t.createFolder(name, role, false)
	})
}

// DeleteFolder deletes a folder and its messages. Its children stay (RFC
// 9051 6.3.5: inferior names are not deleted). Errors: ErrInbox, ErrNoFolder.
func (a *Account) DeleteFolder(name string) error {
	name, err := CanonicalFolderName(name)
	if err != nil {
		return err
	}
	if name == InboxName {
		return fmt.Errorf("%w: cannot delete INBOX", ErrInbox)
	}
	return a.write(context.Background(), 0, func(t *acctTx) error {
		f, err := getFolder(t.tx, name)
		if err != nil {
			return err
		}
		if err := t.tx.Bucket(bucketBoxes).DeleteBucket(folderID(f.id)); err != nil {
			return err
		}
		ms, err := t.nextModSeq()
		if err != nil {
			return err
		}
		t.publish(Change{Kind: ChangeFolder, Folder: name, ModSeq: ms})
		return t.tx.Bucket(bucketFolders).Delete([]byte(name))
	})
}

// RenameFolder renames a folder and its children ("a" → "b" takes "a/x" to
// "b/x"), creating missing parents of the new name. Each renamed folder
// keeps its messages and UIDs but gets a new UIDVALIDITY, because its new
// name may have been used before (RFC 9051 2.3.1.1).
//
// Renaming INBOX moves all its messages into a new folder of the given name
// and leaves INBOX empty, with its UIDVALIDITY and UIDNEXT, so INBOX UIDs are
// never reused; INBOX's children are not renamed (RFC 9051 6.3.6).
//
// Errors: ErrNoFolder, ErrFolderExists (the new name or a child's new name
// exists, INBOX included), ErrBadFolderName (to is from or inside it).
func (a *Account) RenameFolder(from, to string) error {
	from, err := CanonicalFolderName(from)
	if err != nil {
		return err
	}
	to, err = CanonicalFolderName(to)
	if err != nil {
		return err
	}
	if to == InboxName {
		return fmt.Errorf("%w: INBOX", ErrFolderExists)
	}
	if from != InboxName && (to == from || strings.HasPrefix(to, from+HierarchyDelimiter)) {
		return fmt.Errorf("%w: cannot rename %s into itself", ErrBadFolderName, from)
	}
	return a.write(context.Background(), 0, func(t *acctTx) error {
		if from == InboxName {
			return t.renameInbox(to)
		}
		return t.renameTree(from, to)
	})
}

func (t *acctTx) renameTree(from, to string) error {
	folders := t.tx.Bucket(bucketFolders)
	if folders.Get([]byte(from)) == nil {
		return fmt.Errorf("%w: %s", ErrNoFolder, from)
	}
	// Collect from and its children before changing keys under the cursor.
	type entry struct {
		name string
		rec  *folderRecord
	}
	var tree []entry
	prefix := []byte(from + HierarchyDelimiter)
	add := func(k, v []byte) error {
		f, err := decodeFolderRecord(v)
		if err != nil {
			return err
		}
		tree = append(tree, entry{string(k), f})
		return nil
	}
	if err := add([]byte(from), folders.Get([]byte(from))); err != nil {
		return err
	}
	c := folders.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if err := add(k, v); err != nil {
			return err
		}
	}
	for _, e := range tree {
		newName := to + e.name[len(from):]
		if len(newName) > MaxFolderNameLength {
			return fmt.Errorf("%w: %q too long after rename", ErrBadFolderName, truncateForError(newName))
		}
		if folders.Get([]byte(newName)) != nil {
			return fmt.Errorf("%w: %s", ErrFolderExists, newName)
		}
	}
	ms, err := t.nextModSeq()
	if err != nil {
		return err
	}
	for _, e := range tree {
		if err := folders.Delete([]byte(e.name)); err != nil {
			return err
		}
	}
	for _, e := range tree {
		newName := to + e.name[len(from):]
		if e.rec.uidValidity, err = t.nextUIDValidity(); err != nil {
			return err
		}
		e.rec.highestModSeq = ms
		if err := putFolder(t.tx, newName, e.rec); err != nil {
			return err
		}
		t.publish(Change{Kind: ChangeFolder, Folder: e.name, NewName: newName, ModSeq: ms})
		if err := failpoint.Inject(failpoint.RenameTx); err != nil {
			return err
		}
	}
	return t.createParents(to)
}

// renameInbox gives INBOX's storage (messages, UIDs, counters) to a new
// folder named to, and INBOX fresh empty storage. The moved UIDs are
// recorded as expunged from INBOX.
func (t *acctTx) renameInbox(to string) error {
	folders := t.tx.Bucket(bucketFolders)
	if folders.Get([]byte(to)) != nil {
		return fmt.Errorf("%w: %s", ErrFolderExists, to)
	}
	inbox, err := getFolder(t.tx, InboxName)
	if err != nil {
		return err
	}
	if err := t.createParents(to); err != nil {
		return err
	}
	ms, err := t.nextModSeq()
	if err != nil {
		return err
	}
	moved := *inbox
	moved.role = RoleNone
	moved.subscribed = false
	moved.highestModSeq = ms
	if moved.uidValidity, err = t.nextUIDValidity(); err != nil {
		return err
	}
	if err := putFolder(t.tx, to, &moved); err != nil {
		return err
	}

	oldBox, err := box(t.tx, inbox)
	if err != nil {
		return err
	}
	if inbox.id, err = t.nextFolderID(); err != nil {
		return err
	}
	if err := t.createBox(inbox.id); err != nil {
		return err
	}
	newBox, err := box(t.tx, inbox)
	if err != nil {
		return err
	}
	// Carry INBOX's expunge history and add the moved UIDs to it.
	expunged := newBox.Bucket(bucketExpunged)
	if err := oldBox.Bucket(bucketExpunged).ForEach(func(k, v []byte) error {
		return expunged.Put(bytes.Clone(k), bytes.Clone(v))
	}); err != nil {
		return err
	}
	msValue := binary.BigEndian.AppendUint64(nil, ms)
	if err := oldBox.Bucket(bucketMsgs).ForEach(func(k, _ []byte) error {
		t.publish(Change{Kind: ChangeExpunge, Folder: InboxName, UID: binary.BigEndian.Uint32(k), ModSeq: ms})
		return expunged.Put(bytes.Clone(k), msValue)
	}); err != nil {
		return err
	}
	if err := oldBox.DeleteBucket(bucketExpunged); err != nil {
		return err
	}
	if _, err := oldBox.CreateBucket(bucketExpunged); err != nil {
		return err
	}
	inbox.messages, inbox.unseen, inbox.deleted, inbox.size = 0, 0, 0, 0
	inbox.highestModSeq = ms
	t.publish(Change{Kind: ChangeFolder, Folder: to, ModSeq: ms})
	return putFolder(t.tx, InboxName, inbox)
}

// SetSubscribed sets a folder's subscription (LSUB/LIST SUBSCRIBED).
// Errors: ErrNoFolder.
func (a *Account) SetSubscribed(name string, on bool) error {
	name, err := CanonicalFolderName(name)
	if err != nil {
		return err
	}
	return a.write(context.Background(), 0, func(t *acctTx) error {
		f, err := getFolder(t.tx, name)
		if err != nil {
			return err
		}
		if f.subscribed == on {
			return nil
		}
		f.subscribed = on
		t.publish(Change{Kind: ChangeFolder, Folder: name})
		return putFolder(t.tx, name, f)
	})
}
