package mailbox

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Account file buckets and keys (see doc.go).
var (
	bucketMeta     = []byte("meta")
	bucketFolders  = []byte("folders")
	bucketBoxes    = []byte("boxes")
	bucketMsgs     = []byte("msgs")
	bucketBodies   = []byte("bodies")
	bucketParsed   = []byte("parsed")
	bucketExpunged = []byte("expunged")

	keyAddress     = []byte("address")
	keyModSeq      = []byte("modseq")
	keyUIDValidity = []byte("uidvalidity")
	keyFolderSeq   = []byte("folderseq")
)

const accountVersion = 1

// Account is one user's mail: folders, messages, flags and the change feed.
// Safe for concurrent use. The Store opens an account's file once and keeps
// it open; the handle stays valid until DeleteUser or Store.Close, after
// which its methods return ErrClosed.
type Account struct {
	store  *Store
	name   string
	path   string
	db     *bolt.DB
	c      *Committer
	feed   feed
	closed atomic.Bool
}

// Name is the account's normalised address.
func (a *Account) Name() string { return a.name }

// openAccount opens (creating if needed) the mailbox file of an account.
func (s *Store) openAccount(name string, id uint64) (*Account, error) {
	path := s.accountPath(id)
	db, err := s.openBolt(path)
	if err != nil {
		return nil, err
	}
	a := &Account{store: s, name: name, path: path, db: db}
	a.c = NewCommitter(db, CommitterOptions{Logger: s.log, OnFail: s.fail, afterCommit: s.afterCommit})
	if err := a.init(); err != nil {
		a.c.Close()
		db.Close()
		return nil, fmt.Errorf("mailbox: open account %s: %w", name, err)
	}
	return a, nil
}

// init checks the file belongs to the account, and on first use creates
// the buckets and the default folders in one transaction, so that a crash
// leaves either nothing or a complete account.
func (a *Account) init() error {
	var ready bool
	err := a.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return nil
		}
		if err := checkAccountMeta(meta, a.name); err != nil {
			return err
		}
		ready = true
		return nil
	})
	if err != nil || ready {
		return err
	}
	return a.write(context.Background(), 0, func(t *acctTx) error {
		if meta := t.tx.Bucket(bucketMeta); meta != nil { // raced with nobody, but be exact
			return checkAccountMeta(meta, a.name)
		}
		meta, err := t.tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(keyVersion, []byte{accountVersion}); err != nil {
			return err
		}
		if err := meta.Put(keyAddress, []byte(a.name)); err != nil {
			return err
		}
		for _, name := range [][]byte{bucketFolders, bucketBoxes} {
			if _, err := t.tx.CreateBucket(name); err != nil {
				return err
			}
		}
		for _, f := range defaultFolders {
			if err := t.createFolder(f.name, f.role, true); err != nil {
				return err
			}
		}
		return nil
	})
}

func checkAccountMeta(meta *bolt.Bucket, name string) error {
	if v := meta.Get(keyVersion); len(v) != 1 || v[0] != accountVersion {
		return fmt.Errorf("%w: account file version %v", ErrCorrupt, v)
	}
	if v := meta.Get(keyAddress); string(v) != name {
		return fmt.Errorf("%w: account file belongs to %q, not %q", ErrCorrupt, v, name)
	}
	return nil
}

// close drains the committer, closes the subscriptions and the file.
func (a *Account) close() error {
	if a.closed.Swap(true) {
		return nil
	}
	a.c.Close()
	a.feed.close()
	return a.db.Close()
}

// view runs a read-only transaction. It returns only once the changes of
// every commit the transaction saw are on the feed: bbolt shows a commit to
// readers before OnCommit publishes it, and a session that read the store
// must not be ahead of its subscription, or it could report what another
// session's NOOP, begun later, does not yet report.
func (a *Account) view(fn func(*bolt.Tx) error) error {
	if a.closed.Load() {
		return ErrClosed
	}
	var id int
	err := a.db.View(func(tx *bolt.Tx) error {
		id = tx.ID()
		return fn(tx)
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	a.c.WaitCommitted(id)
	return err
}

// write runs fn in a group-committed transaction. fn gets a fresh acctTx on
// every run (the Committer may re-run it); its changes are published on the
// feed when (and only if) the transaction commits.
func (a *Account) write(ctx context.Context, size int, fn func(*acctTx) error) error {
	if err := a.store.Err(); err != nil {
		return err
	}
	if a.closed.Load() {
		return ErrClosed
	}
	return a.c.UpdateSized(ctx, size, func(tx *bolt.Tx) error {
		t := &acctTx{tx: tx, a: a}
		if err := fn(t); err != nil {
			return err
		}
		if len(t.changes) > 0 {
			changes := t.changes
			tx.OnCommit(func() { a.feed.publish(changes...) })
		}
		return nil
	})
}

// acctTx is one operation inside a read-write transaction of an account.
type acctTx struct {
	tx      *bolt.Tx
	a       *Account
	modSeq  uint64 // this operation's MODSEQ, once allocated
	changes []Change
}

// nextModSeq returns the operation's MODSEQ: the account-wide counter plus
// one, allocated once per operation (every message an operation changes
// gets the same, new value).
func (t *acctTx) nextModSeq() (uint64, error) {
	if t.modSeq != 0 {
		return t.modSeq, nil
	}
	meta := t.tx.Bucket(bucketMeta)
	var last uint64
	if v := meta.Get(keyModSeq); len(v) == 8 {
		last = binary.BigEndian.Uint64(v)
	}
	t.modSeq = last + 1
	return t.modSeq, meta.Put(keyModSeq, binary.BigEndian.AppendUint64(nil, t.modSeq))
}

// nextUIDValidity returns max(now in Unix seconds, last + 1): strictly above
// every UIDVALIDITY the account ever used, so a folder deleted and created
// again (or renamed onto a name used before) never repeats one (RFC 9051
// 2.3.1.1).
func (t *acctTx) nextUIDValidity() (uint32, error) {
	meta := t.tx.Bucket(bucketMeta)
	var last uint32
	if v := meta.Get(keyUIDValidity); len(v) == 4 {
		last = binary.BigEndian.Uint32(v)
	}
	if last == ^uint32(0) {
		return 0, fmt.Errorf("mailbox: UIDVALIDITY exhausted")
	}
	next := last + 1
	if now := t.a.store.now().Unix(); now > int64(next) && now < int64(^uint32(0)) {
		next = uint32(now)
	}
	return next, meta.Put(keyUIDValidity, binary.BigEndian.AppendUint32(nil, next))
}

// nextFolderID allocates the id of a folder's storage bucket; ids are never
// reused, so a storage bucket is never shared by an old and a new folder.
func (t *acctTx) nextFolderID() (uint32, error) {
	meta := t.tx.Bucket(bucketMeta)
	var last uint32
	if v := meta.Get(keyFolderSeq); len(v) == 4 {
		last = binary.BigEndian.Uint32(v)
	}
	if last == ^uint32(0) {
		return 0, fmt.Errorf("mailbox: folder ids exhausted")
	}
	last++
	return last, meta.Put(keyFolderSeq, binary.BigEndian.AppendUint32(nil, last))
}

func (t *acctTx) publish(c Change) { t.changes = append(t.changes, c) }
