package mailbox

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Password hashing parameters.
const (
	// DefaultPBKDF2Iterations: OWASP Password Storage Cheat Sheet (2023)
	// for PBKDF2-HMAC-SHA256.
	DefaultPBKDF2Iterations = 600000
	// MaxPBKDF2Iterations bounds the work a stored hash can demand.
	MaxPBKDF2Iterations = 10_000_000
	// MaxPasswordLength bounds what is hashed; longer passwords are refused.
	MaxPasswordLength = 1024
	// CredentialCacheSize bounds the verified-credential cache.
	CredentialCacheSize = 10000

	saltLength = 16
	hashLength = sha256.Size
	hashScheme = "pbkdf2-sha256"
)

var b64 = base64.RawStdEncoding

// HashPassword derives a PBKDF2-HMAC-SHA256 hash (RFC 8018 5.2) with a fresh
// 16-byte random salt and returns it self-describing, in the PHC string
// style: "$pbkdf2-sha256$i=N$SALT$HASH" with unpadded standard base64.
func HashPassword(password string, iterations int) (string, error) {
	if len(password) > MaxPasswordLength {
		return "", fmt.Errorf("%w: longer than %d octets", ErrBadPassword, MaxPasswordLength)
	}
	if iterations <= 0 || iterations > MaxPBKDF2Iterations {
		return "", fmt.Errorf("mailbox: PBKDF2 iterations %d out of range", iterations)
	}
	salt := make([]byte, saltLength)
	rand.Read(salt) // never fails (crypto/rand, Go 1.24)
	key, err := pbkdf2.Key(sha256.New, password, salt, iterations, hashLength)
	if err != nil {
		return "", fmt.Errorf("mailbox: pbkdf2: %w", err)
	}
	return "$" + hashScheme + "$i=" + strconv.Itoa(iterations) + "$" +
		b64.EncodeToString(salt) + "$" + b64.EncodeToString(key), nil
}

// parsedHash is a decoded password hash string.
type parsedHash struct {
	iterations int
	salt, key  []byte
}

func parsePasswordHash(s string) (parsedHash, error) {
	bad := fmt.Errorf("%w: password hash", ErrCorrupt)
	parts := strings.Split(s, "$")
	if len(parts) != 5 || parts[0] != "" || parts[1] != hashScheme || !strings.HasPrefix(parts[2], "i=") {
		return parsedHash{}, bad
	}
	n, err := strconv.Atoi(parts[2][2:])
	if err != nil || n <= 0 || n > MaxPBKDF2Iterations {
		return parsedHash{}, bad
	}
	salt, err1 := b64.DecodeString(parts[3])
	key, err2 := b64.DecodeString(parts[4])
	if err1 != nil || err2 != nil || len(salt) == 0 || len(key) == 0 || len(key) > 64 {
		return parsedHash{}, bad
	}
	return parsedHash{iterations: n, salt: salt, key: key}, nil
}

// verifyPassword reports whether password matches the hash string, in time
// that depends only on the hash's parameters.
func verifyPassword(hash, password string) bool {
	p, err := parsePasswordHash(hash)
	if err != nil {
		return false
	}
	key, err := pbkdf2.Key(sha256.New, password, p.salt, p.iterations, len(p.key))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(key, p.key) == 1
}

// credCache is the verified-credential cache (as Dovecot's auth_cache). It
// maps HMAC-SHA256(per-process random key, user \x00 password) to the
// account, so neither passwords nor unsalted hashes of them sit in memory.
// Only successful logins are cached. Entries for a user are dropped when
// its password changes or it is deleted; a generation counter stops a login
// that read the old hash from caching it after the invalidation.
type credCache struct {
	key []byte

	mu      sync.Mutex
	gen     uint64
	entries map[[sha256.Size]byte]string // → account
	max     int
}

func newCredCache(max int) *credCache {
	key := make([]byte, 32)
	rand.Read(key)
	return &credCache{key: key, entries: make(map[[sha256.Size]byte]string), max: max}
}

func (c *credCache) digest(user, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var d [sha256.Size]byte
	m.Sum(d[:0])
	return d
}

// lookup returns the cached account and the generation to pass to add.
func (c *credCache) lookup(d [sha256.Size]byte) (account string, ok bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	account, ok = c.entries[d]
	return account, ok, c.gen
}

// add caches a verified credential unless an invalidation happened since gen.
func (c *credCache) add(d [sha256.Size]byte, account string, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.entries) >= c.max {
		for k := range c.entries { // map order is random: evict one at random
			delete(c.entries, k)
			break
		}
	}
	c.entries[d] = account
}

// invalidate drops every entry of account.
func (c *credCache) invalidate(account string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, v := range c.entries {
		if v == account {
			delete(c.entries, k)
		}
	}
}

func (c *credCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// SCRAMSecret is what SCRAM-SHA-256 (RFC 5802, RFC 7677) needs of an
// account. The stored hash is PBKDF2-HMAC-SHA256(password, salt, i, 32),
// which is exactly SCRAM-SHA-256's SaltedPassword (RFC 5802 3: Hi() is
// PBKDF2 with HMAC), so SCRAM works from the same hash as PLAIN and LOGIN.
type SCRAMSecret struct {
	Account        string
	Salt           []byte
	Iterations     int
	SaltedPassword []byte
}

// SCRAMSecret returns the SCRAM secret of addr. For an unknown user (or one
// whose login is disabled) it returns ErrNoSuchUser with Iterations set to
// what a new account would use, so that the exchange with a fake verifier
// looks the same as with a real one.
func (s *Store) SCRAMSecret(addr string) (SCRAMSecret, error) {
	unknown := SCRAMSecret{Iterations: s.iterations}
	user, err := NormalizeAddress(addr)
	if err != nil {
		return unknown, ErrNoSuchUser
	}
	rec, err := s.lookupAccount(user)
	if err != nil {
		if errors.Is(err, ErrNoSuchUser) {
			return unknown, ErrNoSuchUser
		}
		return SCRAMSecret{}, err
	}
	if rec.hash == "" {
		return unknown, ErrNoSuchUser
	}
	p, err := parsePasswordHash(rec.hash)
	if err != nil || len(p.key) != sha256.Size {
		return unknown, ErrNoSuchUser
	}
	return SCRAMSecret{Account: user, Salt: p.salt, Iterations: p.iterations, SaltedPassword: p.key}, nil
}
