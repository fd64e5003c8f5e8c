package imapcheck

import (
	"strings"
)

// universe is every flag the driver sets: the system flags a client may
// set (RFC 9051 2.3.2) and three keywords. A flagSet is a bit mask over it.
// Any other flag in a server's FETCH is a contradiction; \Recent (RFC 3501
// 2.3.2) is the server's own and is ignored.
var universe = []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`, "$Label1", "$Label2", "Imapcheck"}

type flagSet uint16

var allFlags = flagSet(1)<<len(universe) - 1

// flagBit returns the bit of a flag of the universe (case-insensitive,
// RFC 9051 2.3.2), 0 if it is not one.
func flagBit(name string) flagSet {
	for i, f := range universe {
		if strings.EqualFold(f, name) {
			return 1 << i
		}
	}
	return 0
}

var (
	flagSeen    = flagBit(`\Seen`)
	flagDeleted = flagBit(`\Deleted`)
)

// parseFlags turns a FLAGS list into a set; unknown lists the flags that
// are neither in the universe nor \Recent.
func parseFlags(list []string) (set flagSet, unknown []string) {
	for _, f := range list {
		if strings.EqualFold(f, `\Recent`) {
			continue
		}
		b := flagBit(f)
		if b == 0 {
			unknown = append(unknown, f)
		}
		set |= b
	}
	return set, unknown
}

// names lists the flags of the set in universe order.
func (s flagSet) names() []string {
	var out []string
	for i, f := range universe {
		if s&(1<<i) != 0 {
			out = append(out, f)
		}
	}
	return out
}

// String is the set as an IMAP flag list: "(\Seen $Label1)".
func (s flagSet) String() string { return "(" + strings.Join(s.names(), " ") + ")" }

// each calls fn for each flag bit of the set.
func (s flagSet) each(fn func(bit flagSet)) {
	for i := range universe {
		if b := flagSet(1) << i; s&b != 0 {
			fn(b)
		}
	}
}

// apply is the result of STORE op (+, - or =) with flags on s (RFC 9051
// 6.4.6).
func (s flagSet) apply(op byte, flags flagSet) flagSet {
	switch op {
	case '+':
		return s | flags
	case '-':
		return s &^ flags
	}
	return flags
}

// storeWrite is what a STORE writes: the flags it decides (mask) and
// their new values.
func storeWrite(op byte, flags flagSet) (mask, val flagSet) {
	switch op {
	case '+':
		return flags, flags
	case '-':
		return flags, 0
	}
	return allFlags, flags
}

// has reports whether the (single) bit is set.
func (s flagSet) has(bit flagSet) bool { return s&bit != 0 }

// flagName is the name of a single bit.
func flagName(bit flagSet) string {
	n := bit.names()
	if len(n) != 1 {
		return bit.String()
	}
	return n[0]
}
