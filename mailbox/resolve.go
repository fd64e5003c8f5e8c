package mailbox

import (
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Resolution is where mail for one address goes.
type Resolution struct {
	Accounts []string // local accounts, deduplicated, sorted
	Remote   []string // non-local targets of aliases (forwarding), deduplicated, sorted
}

// Resolve expands an address: exact account; exact alias; the address with
// its plus detail removed (account, then alias); the catch-all alias of its
// domain. Aliases expand recursively up to depth 10 (ErrAliasLoop beyond).
// An address that matches nothing is ErrNoSuchUser. Alias targets that are
// not accounts and not aliases go to Remote (the caller decides what a
// target in a local domain without an account means).
//
// Alias targets are looked up as accounts and aliases, exactly and with the
// plus detail removed, but never through a catch-all: a catch-all that
// named a missing address of its own domain would otherwise loop. An alias
// reached twice (a → b, a → c, b → d, c → d) is expanded once; an alias that
// reaches itself is ErrAliasLoop. Malformed addresses are ErrBadAddress.
func (s *Store) Resolve(addr string) (Resolution, error) {
	name, err := NormalizeAddress(addr)
	if err != nil {
		return Resolution{}, err
	}
	var res Resolution
	err = s.viewDir(func(tx *bolt.Tx) error {
		r := &resolver{
			accounts: tx.Bucket(bucketAccounts),
			aliases:  tx.Bucket(bucketAliases),
			delims:   s.delims,
			local:    make(map[string]bool),
			remote:   make(map[string]bool),
			expanded: make(map[string]bool),
			onPath:   make(map[string]bool),
		}
		found, err := r.lookup(name, 0)
		if err != nil {
			return err
		}
		if !found {
			domain := name[strings.IndexByte(name, '@'):]
			if r.aliases.Get([]byte(domain)) == nil {
				return fmt.Errorf("%w: %s", ErrNoSuchUser, name)
			}
			if err := r.expand(domain, 1); err != nil {
				return err
			}
		}
		res.Accounts = sortedKeys(r.local)
		res.Remote = sortedKeys(r.remote)
		return nil
	})
	return res, err
}

// resolver is the state of one Resolve.
type resolver struct {
	accounts, aliases *bolt.Bucket
	delims            string
	local, remote     map[string]bool
	expanded, onPath  map[string]bool
}

// lookup resolves addr as an account or alias, exactly and then without its
// plus detail, and reports whether anything matched. depth is how many
// aliases led here.
func (r *resolver) lookup(addr string, depth int) (bool, error) {
	candidates := []string{addr}
	at := strings.IndexByte(addr, '@')
	if base, ok := stripDetail(addr[:at], r.delims); ok {
		candidates = append(candidates, base+addr[at:])
	}
	for _, c := range candidates {
		if r.accounts.Get([]byte(c)) != nil {
			r.local[c] = true
			return true, nil
		}
		if r.aliases.Get([]byte(c)) != nil {
			return true, r.expand(c, depth+1)
		}
	}
	return false, nil
}

// expand adds the targets of an alias; depth counts the aliases on the path
// including this one.
func (r *resolver) expand(alias string, depth int) error {
	if depth > MaxAliasDepth || r.onPath[alias] {
		return fmt.Errorf("%w: at %s", ErrAliasLoop, alias)
	}
	if r.expanded[alias] {
		return nil
	}
	r.onPath[alias] = true
	for _, t := range decodeTargets(r.aliases.Get([]byte(alias))) {
		found, err := r.lookup(t, depth)
		if err != nil {
			return err
		}
		if !found {
			r.remote[t] = true
		}
	}
	r.onPath[alias] = false
	r.expanded[alias] = true
	return nil
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
