package mailbox

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Directory limits.
const (
	// MaxAliasTargets bounds the targets of one alias.
	MaxAliasTargets = 1000
	// MaxAliasDepth: Resolve follows aliases this deep (ErrAliasLoop beyond).
	MaxAliasDepth = 10
)

// directory.db buckets and keys (see doc.go).
var (
	bucketAccounts = []byte("accounts")
	bucketAliases  = []byte("aliases")
	bucketDirMeta  = []byte("meta")
	keyVersion     = []byte("version")
	keyAccountSeq  = []byte("accountseq")
)

const (
	directoryVersion     = 1
	accountRecordVersion = 1
)

// accountRecord is the value of an accounts entry.
type accountRecord struct {
	id   uint64
	hash string // "" means login disabled
}

func (r accountRecord) encode() []byte {
	b := make([]byte, 0, 9+len(r.hash))
	b = append(b, accountRecordVersion)
	b = binary.BigEndian.AppendUint64(b, r.id)
	return append(b, r.hash...)
}

func decodeAccountRecord(v []byte) (accountRecord, error) {
	if len(v) < 9 || v[0] != accountRecordVersion {
		return accountRecord{}, fmt.Errorf("%w: account record", ErrCorrupt)
	}
	return accountRecord{id: binary.BigEndian.Uint64(v[1:9]), hash: string(v[9:])}, nil
}

// Alias targets are stored normalised, joined by NUL (which no address holds).
func encodeTargets(t []string) []byte { return []byte(strings.Join(t, "\x00")) }

func decodeTargets(v []byte) []string { return strings.Split(string(v), "\x00") }

func (s *Store) initDirectory() error {
	return s.updateDir(context.Background(), func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketAccounts, bucketAliases, bucketDirMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketDirMeta)
		switch v := meta.Get(keyVersion); {
		case v == nil:
			return meta.Put(keyVersion, []byte{directoryVersion})
		case len(v) != 1 || v[0] != directoryVersion:
			return fmt.Errorf("%w: directory.db has unknown version %v", ErrCorrupt, v)
		}
		return nil
	})
}

// lookupAccount reads an account record by normalised name.
func (s *Store) lookupAccount(name string) (accountRecord, error) {
	var rec accountRecord
	err := s.viewDir(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketAccounts).Get([]byte(name))
		if v == nil {
			return fmt.Errorf("%w: %s", ErrNoSuchUser, name)
		}
		var err error
		rec, err = decodeAccountRecord(v)
		return err
	})
	return rec, err
}

// hashPassword hashes a new password; "" stays "" (login disabled).
func (s *Store) hashPassword(password string) (string, error) {
	if password == "" {
		return "", nil
	}
	if len(password) > MaxPasswordLength {
		return "", fmt.Errorf("%w: longer than %d octets", ErrBadPassword, MaxPasswordLength)
	}
	s.hashSlots <- struct{}{}
	defer func() { <-s.hashSlots }()
	return HashPassword(password, s.iterations)
}

// AddUser creates an account and its mailbox file (with the default
// folders). An empty password disables login. Errors: ErrExists (an account
// or an alias has the address), ErrBadAddress, ErrBadPassword.
func (s *Store) AddUser(addr, password string) error {
	name, err := NormalizeAddress(addr)
	if err != nil {
		return err
	}
	hash, err := s.hashPassword(password)
	if err != nil {
		return err
	}
	err = s.updateDir(context.Background(), func(tx *bolt.Tx) error {
		accounts := tx.Bucket(bucketAccounts)
		if accounts.Get([]byte(name)) != nil {
			return fmt.Errorf("%w: account %s", ErrExists, name)
		}
		if tx.Bucket(bucketAliases).Get([]byte(name)) != nil {
			return fmt.Errorf("%w: %s is an alias", ErrExists, name)
		}
		meta := tx.Bucket(bucketDirMeta)
		var id uint64
		if v := meta.Get(keyAccountSeq); len(v) == 8 {
			id = binary.BigEndian.Uint64(v)
		}
		// Ids are never reused; skipping ids whose file exists also keeps a
		// new user away from an old file if directory.db was ever lost.
		for {
			id++
			if _, err := os.Stat(s.accountPath(id)); errors.Is(err, os.ErrNotExist) {
				break
			}
		}
		if err := meta.Put(keyAccountSeq, binary.BigEndian.AppendUint64(nil, id)); err != nil {
			return err
		}
		return accounts.Put([]byte(name), accountRecord{id: id, hash: hash}.encode())
	})
	if err != nil {
		return err
	}
	// Create the file now so that a problem shows here, not at the first
	// delivery. A crash before this point is harmless: Account creates a
	// missing file.
	_, err = s.Account(name)
	return err
}

// SetPassword replaces an account's password ("" disables login) and drops
// its cached credentials. Errors: ErrNoSuchUser, ErrBadPassword.
func (s *Store) SetPassword(addr, password string) error {
	name, err := NormalizeAddress(addr)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoSuchUser, err)
	}
	hash, err := s.hashPassword(password)
	if err != nil {
		return err
	}
	err = s.updateDir(context.Background(), func(tx *bolt.Tx) error {
		accounts := tx.Bucket(bucketAccounts)
		v := accounts.Get([]byte(name))
		if v == nil {
			return fmt.Errorf("%w: %s", ErrNoSuchUser, name)
		}
		rec, err := decodeAccountRecord(v)
		if err != nil {
			return err
		}
		rec.hash = hash
		return accounts.Put([]byte(name), rec.encode())
	})
	// Invalidate after the commit: a login that read the old hash before
	// it cannot cache it afterwards (credCache generation).
	s.creds.invalidate(name)
	return err
}

// DeleteUser removes an account: its directory entry, its open handle
// (subscriptions are closed, later calls on it return ErrClosed) and its
// mailbox file. A crash between the directory commit and the file removal
// leaves an orphan file that no account refers to and no new account
// reuses. Errors: ErrNoSuchUser.
func (s *Store) DeleteUser(addr string) error {
	name, err := NormalizeAddress(addr)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoSuchUser, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	var id uint64
	err = s.updateDir(context.Background(), func(tx *bolt.Tx) error {
		accounts := tx.Bucket(bucketAccounts)
		v := accounts.Get([]byte(name))
		if v == nil {
			return fmt.Errorf("%w: %s", ErrNoSuchUser, name)
		}
		rec, err := decodeAccountRecord(v)
		if err != nil {
			return err
		}
		id = rec.id
		return accounts.Delete([]byte(name))
	})
	var e *accountEntry
	if err == nil {
		e = s.accounts[name]
		delete(s.accounts, name)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.creds.invalidate(name)
	if e != nil {
		<-e.ready
		if e.acct != nil {
			if err := e.acct.close(); err != nil {
				s.log.Warn("closing deleted account", "account", name, "err", err)
			}
		}
	}
	if err := os.Remove(s.accountPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("mailbox: remove mailbox of %s: %w", name, err)
	}
	return nil
}

// Users lists the accounts, sorted.
func (s *Store) Users() ([]string, error) {
	var users []string
	err := s.viewDir(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAccounts).ForEach(func(k, _ []byte) error {
			users = append(users, string(k))
			return nil
		})
	})
	return users, err
}

// UserExists reports whether addr is an account (a malformed address is not).
func (s *Store) UserExists(addr string) (bool, error) {
	name, err := NormalizeAddress(addr)
	if err != nil {
		return false, nil
	}
	_, err = s.lookupAccount(name)
	if errors.Is(err, ErrNoSuchUser) {
		return false, nil
	}
	return err == nil, err
}

// Authenticate checks a password. Unknown user and wrong password both give
// ErrAuthFailed and take the same time. A verified-credential cache (keyed by
// a keyed hash of user+password, in memory only, invalidated by SetPassword and
// DeleteUser) makes repeated logins cheap.
//
// The account returned is the normalised address. An account with login
// disabled (empty password) never authenticates.
func (s *Store) Authenticate(addr, password string) (account string, err error) {
	user, nerr := NormalizeAddress(addr)
	usable := nerr == nil && len(password) <= MaxPasswordLength
	var digest [32]byte
	var gen uint64
	hash, known := s.dummyHash, false
	if usable {
		digest = s.creds.digest(user, password)
		var hit bool
		if account, hit, gen = s.creds.lookup(digest); hit {
			return account, nil
		}
		rec, err := s.lookupAccount(user)
		switch {
		case err == nil && rec.hash != "":
			hash, known = rec.hash, true
		case err != nil && !errors.Is(err, ErrNoSuchUser):
			return "", err
		}
	}
	verify := func() bool {
		// Unknown users, disabled logins and oversized input are verified
		// against a dummy hash of the same cost, so timing tells nothing.
		s.hashSlots <- struct{}{}
		defer func() { <-s.hashSlots }()
		s.hashRuns.Add(1)
		return verifyPassword(hash, truncatePassword(password))
	}
	var ok bool
	if usable {
		// The key includes the hash, so a password change in between
		// never lets an old verification answer for the new hash.
		v, _, _ := s.authFlight.Do(string(digest[:])+hash, func() (any, error) { return verify(), nil })
		ok = v.(bool)
	} else {
		ok = verify()
	}
	if !ok || !known {
		return "", ErrAuthFailed
	}
	s.creds.add(digest, user, gen)
	return user, nil
}

func truncatePassword(p string) string {
	if len(p) > MaxPasswordLength {
		return p[:MaxPasswordLength]
	}
	return p
}

// dummyPasswordHash is a random hash of the configured cost that no
// password matches (nor needs to: only its cost matters).
func dummyPasswordHash(iterations int) string {
	salt, key := make([]byte, saltLength), make([]byte, hashLength)
	rand.Read(salt)
	rand.Read(key)
	return "$" + hashScheme + "$i=" + strconv.Itoa(iterations) + "$" +
		b64.EncodeToString(salt) + "$" + b64.EncodeToString(key)
}

// Alias maps an address ("sales@example.org") or a catch-all ("@example.org")
// to targets (local accounts, other aliases, or remote addresses).
type Alias struct {
	Address string
	Targets []string
}

// AddAlias creates or replaces an alias. Targets are normalised, deduplicated
// and kept in the given order; a target cannot be a catch-all. Errors:
// ErrBadAddress, ErrTooManyTargets, ErrExists (an account has the address).
func (s *Store) AddAlias(addr string, targets []string) error {
	name, err := NormalizeAliasAddress(addr)
	if err != nil {
		return err
	}
	if len(targets) == 0 || len(targets) > MaxAliasTargets {
		return fmt.Errorf("%w: %d", ErrTooManyTargets, len(targets))
	}
	norm := make([]string, 0, len(targets))
	for _, t := range targets {
		n, err := NormalizeAddress(t)
		if err != nil {
			return fmt.Errorf("alias target: %w", err)
		}
		if !slices.Contains(norm, n) {
			norm = append(norm, n)
		}
	}
	return s.updateDir(context.Background(), func(tx *bolt.Tx) error {
		if tx.Bucket(bucketAccounts).Get([]byte(name)) != nil {
			return fmt.Errorf("%w: %s is an account", ErrExists, name)
		}
		return tx.Bucket(bucketAliases).Put([]byte(name), encodeTargets(norm))
	})
}

// DeleteAlias removes an alias. Errors: ErrNotFound.
func (s *Store) DeleteAlias(addr string) error {
	name, err := NormalizeAliasAddress(addr)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return s.updateDir(context.Background(), func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAliases)
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("%w: alias %s", ErrNotFound, name)
		}
		return b.Delete([]byte(name))
	})
}

// Aliases lists every alias, sorted by Address.
func (s *Store) Aliases() ([]Alias, error) {
	var out []Alias
	err := s.viewDir(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAliases).ForEach(func(k, v []byte) error {
			out = append(out, Alias{Address: string(k), Targets: decodeTargets(v)})
			return nil
		})
	})
	return out, err
}
