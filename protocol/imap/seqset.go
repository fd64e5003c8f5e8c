package imap

import (
	"cmp"
	"errors"
	"iter"
	"math"
	"slices"
	"strconv"
)

// SeqStar stands for "*" in a SeqRange: the largest number in use (RFC 9051
// 9, seq-number). It is 0 because 0 is never a message number or UID.
const SeqStar uint32 = 0

// SeqRange is one element of a sequence set: Start:Stop as written (either
// order means the same, RFC 9051 9 seq-range), or a single number when
// Start == Stop. Either end may be SeqStar.
type SeqRange struct {
	Start, Stop uint32
}

// SeqSet is a sequence set or UID set (RFC 9051 4.1.1) as a list of ranges,
// so "1:4294967295" costs one element however many numbers it covers.
//
// Saved is the SEARCHRES marker "$" (RFC 5182): the result of the last
// SEARCH with the SAVE option. The set does not know that result; a server
// calls ReplaceSaved before using the set. Contains, Resolve, Numbers and
// Largest ignore an unresolved "$".
type SeqSet struct {
	Ranges []SeqRange
	Saved  bool
}

// ParseSeqSet parses a sequence-set (RFC 9051 9) with "$" (RFC 5182 3).
// Numbers are nz-number: no zero, no leading zero, below 2^32. By the ABNF
// "$" stands alone or ends the set ("1,$"). Errors are *SyntaxError.
func ParseSeqSet(s string) (SeqSet, error) {
	set, off, err := parseSeqSet(s)
	if err != nil {
		return SeqSet{}, &SyntaxError{Offset: off, Msg: err.Error()}
	}
	return set, nil
}

var (
	errSeqEmpty   = errors.New("empty sequence set element")
	errSeqNumber  = errors.New("expected non-zero number or '*'")
	errSeqRange   = errors.New("sequence number out of range")
	errSeqSep     = errors.New("expected ',' or ':' in sequence set")
	errSeqDollar  = errors.New("'$' must end the sequence set")
	errSeqNothing = errors.New("expected sequence set")
)

// parseSeqSet parses s and on error returns the offset of the fault.
func parseSeqSet[T string | []byte](s T) (SeqSet, int, error) {
	var set SeqSet
	if len(s) == 0 {
		return set, 0, errSeqNothing
	}
	elems := 1
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			elems++
		}
	}
	i := 0
	for {
		if i == len(s) {
			return SeqSet{}, i, errSeqEmpty
		}
		if s[i] == '$' {
			if i+1 != len(s) {
				return SeqSet{}, i, errSeqDollar
			}
			set.Saved = true
			return set, 0, nil
		}
		a, next, err := parseSeqNum(s, i)
		if err != nil {
			return SeqSet{}, next, err
		}
		i = next
		b := a
		if i < len(s) && s[i] == ':' {
			if b, next, err = parseSeqNum(s, i+1); err != nil {
				return SeqSet{}, next, err
			}
			i = next
		}
		if set.Ranges == nil {
			set.Ranges = make([]SeqRange, 0, elems)
		}
		set.Ranges = append(set.Ranges, SeqRange{a, b})
		if i == len(s) {
			return set, 0, nil
		}
		if s[i] != ',' {
			return SeqSet{}, i, errSeqSep
		}
		i++
	}
}

// parseSeqNum parses seq-number (nz-number / "*") at s[i:].
func parseSeqNum[T string | []byte](s T, i int) (uint32, int, error) {
	if i < len(s) && s[i] == '*' {
		return SeqStar, i + 1, nil
	}
	if i >= len(s) || s[i] < '1' || s[i] > '9' {
		return 0, i, errSeqNumber
	}
	var v uint64
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if v = v*10 + uint64(s[i]-'0'); v > math.MaxUint32 {
			return 0, i, errSeqRange
		}
	}
	return uint32(v), i, nil
}

// String formats the set as written: "1:3,5,7:*", "$".
func (s SeqSet) String() string { return string(s.Append(nil)) }

// Append appends the set's wire form to dst.
func (s SeqSet) Append(dst []byte) []byte {
	for i, r := range s.Ranges {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendSeqNum(dst, r.Start)
		if r.Stop != r.Start {
			dst = appendSeqNum(append(dst, ':'), r.Stop)
		}
	}
	if s.Saved {
		if len(s.Ranges) > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '$')
	}
	return dst
}

func appendSeqNum(dst []byte, n uint32) []byte {
	if n == SeqStar {
		return append(dst, '*')
	}
	return strconv.AppendUint(dst, uint64(n), 10)
}

// IsEmpty reports whether the set has no element at all (not even "$").
func (s SeqSet) IsEmpty() bool { return len(s.Ranges) == 0 && !s.Saved }

// Dynamic reports whether the set uses "*", whose value depends on the
// mailbox; for message numbers "*" in an empty mailbox is a BAD (RFC 9051 9).
func (s SeqSet) Dynamic() bool {
	for _, r := range s.Ranges {
		if r.Start == SeqStar || r.Stop == SeqStar {
			return true
		}
	}
	return false
}

// bounds returns the range with "*" replaced by last, in ascending order.
func (r SeqRange) bounds(last uint32) (lo, hi uint32) {
	lo, hi = r.Start, r.Stop
	if lo == SeqStar {
		lo = last
	}
	if hi == SeqStar {
		hi = last
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi
}

// Contains reports whether n is in the set when "*" is last (the number of
// messages, or the highest UID; RFC 9051 9 notes that "3291:*" includes the
// last UID even when it is below 3291).
func (s SeqSet) Contains(n, last uint32) bool {
	if n == 0 {
		return false
	}
	for _, r := range s.Ranges {
		if lo, hi := r.bounds(last); lo <= n && n <= hi {
			return true
		}
	}
	return false
}

// Resolve returns the set with "*" replaced by last, each range ascending,
// sorted and merged where ranges overlap or touch: "*:4,5:7,2" with last 10
// gives "2,4:10". Zero, which "*" becomes in an empty mailbox, is dropped.
// RFC 9051 9 lets the server coalesce and reorder (sequence-set). The work is
// proportional to the number of ranges, not of numbers.
func (s SeqSet) Resolve(last uint32) SeqSet {
	out := make([]SeqRange, 0, len(s.Ranges))
	for _, r := range s.Ranges {
		lo, hi := r.bounds(last)
		if hi == 0 {
			continue
		}
		out = append(out, SeqRange{max(lo, 1), hi})
	}
	slices.SortFunc(out, func(a, b SeqRange) int { return cmp.Compare(a.Start, b.Start) })
	merged := out[:0]
	for _, r := range out {
		if k := len(merged); k > 0 && uint64(r.Start) <= uint64(merged[k-1].Stop)+1 {
			merged[k-1].Stop = max(merged[k-1].Stop, r.Stop)
			continue
		}
		merged = append(merged, r)
	}
	return SeqSet{Ranges: merged}
}

// Numbers yields the numbers of the set in ascending order, each once, with
// "*" as last. Nothing is expanded in memory; the caller bounds the work by
// stopping, or by choosing last (for UIDs, prefer Resolve and walk the
// mailbox's UIDs range by range).
func (s SeqSet) Numbers(last uint32) iter.Seq[uint32] {
	r := s.Resolve(last)
	return func(yield func(uint32) bool) {
		for _, rg := range r.Ranges {
			for n := rg.Start; ; n++ {
				if !yield(n) {
					return
				}
				if n == rg.Stop {
					break
				}
			}
		}
	}
}

// Largest returns the largest number in the set with "*" as last, or 0 for
// an empty set. A message number above the message count is a BAD (RFC 9051
// 9, seq-number).
func (s SeqSet) Largest(last uint32) uint32 {
	var m uint32
	for _, r := range s.Ranges {
		_, hi := r.bounds(last)
		m = max(m, hi)
	}
	return m
}

// ReplaceSaved returns the set with "$" replaced by the saved search result
// (RFC 5182 2.1); an empty result matches nothing but is not an error.
func (s SeqSet) ReplaceSaved(saved SeqSet) SeqSet {
	if !s.Saved {
		return s
	}
	r := make([]SeqRange, 0, len(s.Ranges)+len(saved.Ranges))
	r = append(append(r, s.Ranges...), saved.Ranges...)
	return SeqSet{Ranges: r}
}

// AddNum adds n, extending the last range when n directly follows it, so
// numbers added in ascending order give the compact form "1:3,5" (for
// ESEARCH ALL, RFC 4731 3.1, and COPYUID, RFC 9051 7.1).
func (s *SeqSet) AddNum(n uint32) { s.AddRange(n, n) }

// AddRange adds lo:hi, merging it into the last range when it directly
// follows it.
func (s *SeqSet) AddRange(lo, hi uint32) {
	if k := len(s.Ranges); k > 0 && lo != SeqStar && lo <= hi {
		last := &s.Ranges[k-1]
		if last.Start != SeqStar && last.Start <= last.Stop && uint64(lo) == uint64(last.Stop)+1 {
			last.Stop = hi
			return
		}
	}
	s.Ranges = append(s.Ranges, SeqRange{lo, hi})
}
