package mailbox

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Flag limits.
const (
	// MaxKeywords is the most keywords one message can carry.
	MaxKeywords = 100
	// MaxKeywordLength bounds one keyword in octets (it is stored with a
	// one-octet length).
	MaxKeywordLength = 128
)

// System flags (RFC 9051 2.3.2), canonical spelling.
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

// System flag bits of the stored flag byte.
const (
	flagSeen uint8 = 1 << iota
	flagAnswered
	flagFlagged
	flagDeleted
	flagDraft
)

// systemFlags in the order they are listed (sorted by name).
var systemFlags = []struct {
	name string
	bit  uint8
}{
	{FlagAnswered, flagAnswered},
	{FlagDeleted, flagDeleted},
	{FlagDraft, flagDraft},
	{FlagFlagged, flagFlagged},
	{FlagSeen, flagSeen},
}

// flagSet is a message's flags: system flags as bits, keywords sorted (by
// octets) and unique without regard to case.
type flagSet struct {
	sys      uint8
	keywords []string
}

// parseFlags validates a flag list. System flags are matched without regard
// to case and stored in canonical case; any other "\" flag is ErrBadFlag
// (\Recent included: RFC 9051 2.3.2, clients cannot set it). Keywords must
// be atoms (RFC 9051 9: atom-char, no atom-specials); they keep the case
// first given, and a second spelling differing only in case is the same
// keyword (flags are case-insensitive, RFC 9051 2.3.2).
func parseFlags(flags []string) (flagSet, error) {
	var fs flagSet
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			bit := systemFlagBit(f)
			if bit == 0 {
				return flagSet{}, fmt.Errorf("%w: %q", ErrBadFlag, truncateForError(f))
			}
			fs.sys |= bit
			continue
		}
		if !validKeyword(f) {
			return flagSet{}, fmt.Errorf("%w: %q", ErrBadFlag, truncateForError(f))
		}
		fs.keywords = addKeyword(fs.keywords, f)
	}
	if len(fs.keywords) > MaxKeywords {
		return flagSet{}, fmt.Errorf("%w: %d", ErrTooManyKeywords, len(fs.keywords))
	}
	slices.Sort(fs.keywords)
	return fs, nil
}

func systemFlagBit(f string) uint8 {
	for _, sf := range systemFlags {
		if strings.EqualFold(f, sf.name) {
			return sf.bit
		}
	}
	return 0
}

// validKeyword: 1*ATOM-CHAR; ATOM-CHAR is any CHAR except atom-specials
// "(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]" (RFC 9051 9).
func validKeyword(k string) bool {
	if k == "" || len(k) > MaxKeywordLength {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

func hasKeyword(list []string, k string) int {
	for i, x := range list {
		if strings.EqualFold(x, k) {
			return i
		}
	}
	return -1
}

func addKeyword(list []string, k string) []string {
	if hasKeyword(list, k) >= 0 {
		return list
	}
	return append(list, k)
}

// apply returns the result of an IMAP STORE operation: '+' adds, '-'
// removes, '=' replaces (RFC 9051 6.4.6).
func (fs flagSet) apply(op byte, arg flagSet) (flagSet, error) {
	var out flagSet
	switch op {
	case '=':
		return arg, nil
	case '+':
		out.sys = fs.sys | arg.sys
		out.keywords = slices.Clone(fs.keywords)
		for _, k := range arg.keywords {
			out.keywords = addKeyword(out.keywords, k)
		}
		if len(out.keywords) > MaxKeywords {
			return flagSet{}, fmt.Errorf("%w: %d", ErrTooManyKeywords, len(out.keywords))
		}
		slices.Sort(out.keywords)
	case '-':
		out.sys = fs.sys &^ arg.sys
		for _, k := range fs.keywords {
			if hasKeyword(arg.keywords, k) < 0 {
				out.keywords = append(out.keywords, k)
			}
		}
	default:
		return flagSet{}, fmt.Errorf("mailbox: flag operation %q is not one of + - =", op)
	}
	return out, nil
}

func (fs flagSet) equal(o flagSet) bool {
	return fs.sys == o.sys && slices.Equal(fs.keywords, o.keywords)
}

// list returns the flags as strings: system flags then keywords, each sorted.
func (fs flagSet) list() []string {
	out := make([]string, 0, len(fs.keywords)+5)
	for _, sf := range systemFlags {
		if fs.sys&sf.bit != 0 {
			out = append(out, sf.name)
		}
	}
	return append(out, fs.keywords...)
}

// StoreFlags changes flags (op: '+' add, '-' remove, '=' replace) of the given UIDs
// and returns the new metadata of each message changed. MODSEQ rises for each change.
//
// UIDs that do not exist are skipped, as are messages whose flags would not
// change (their MODSEQ stays). All changed messages get the operation's one
// new MODSEQ. Errors: ErrNoFolder, ErrBadFlag, ErrTooManyKeywords (nothing
// is changed then).
func (a *Account) StoreFlags(ctx context.Context, folder string, uids []uint32, op byte, flags []string) ([]MessageInfo, error) {
	changed, _, err := a.storeFlags(ctx, folder, uids, op, flags, false, 0)
	return changed, err
}

// StoreFlagsIf is StoreFlags with CONDSTORE's UNCHANGEDSINCE (RFC 7162
// 3.1.3): a message whose MODSEQ is above unchangedSince is not changed and
// its UID is returned in modified (for the MODIFIED response code).
func (a *Account) StoreFlagsIf(ctx context.Context, folder string, uids []uint32, op byte, flags []string, unchangedSince uint64) (changed []MessageInfo, modified []uint32, err error) {
	return a.storeFlags(ctx, folder, uids, op, flags, true, unchangedSince)
}

func (a *Account) storeFlags(ctx context.Context, folder string, uids []uint32, op byte, flags []string, conditional bool, unchangedSince uint64) (changed []MessageInfo, modified []uint32, err error) {
	name, err := CanonicalFolderName(folder)
	if err != nil {
		return nil, nil, err
	}
	arg, err := parseFlags(flags)
	if err != nil {
		return nil, nil, err
	}
	if op != '+' && op != '-' && op != '=' {
		return nil, nil, fmt.Errorf("mailbox: flag operation %q is not one of + - =", op)
	}
	uids = sortedUIDs(uids)
	err = a.write(ctx, 0, func(t *acctTx) error {
		changed, modified = nil, nil
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
			if conditional && m.modSeq > unchangedSince {
				modified = append(modified, uid)
				continue
			}
			nf, err := m.flags.apply(op, arg)
			if err != nil {
				return err
			}
			if nf.equal(m.flags) {
				continue
			}
			ms, err := t.nextModSeq()
			if err != nil {
				return err
			}
			f.rec.count(&m, -1)
			m.flags, m.modSeq = nf, ms
			f.rec.count(&m, 1)
			f.rec.highestModSeq = ms
			if err := f.msgs.Put(uidKey(uid), m.encode()); err != nil {
				return err
			}
			info := m.info(uid)
			changed = append(changed, info)
			t.publish(Change{Kind: ChangeFlags, Folder: name, UID: uid, ModSeq: ms, Flags: info.Flags})
		}
		if len(changed) == 0 {
			return nil
		}
		return f.save(t.tx)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store flags in %s/%s: %w", a.name, name, err)
	}
	return changed, modified, nil
}
