package imap

import (
	"errors"
	"math"
	"slices"
	"testing"
)

func TestParseSeqSet(t *testing.T) {
	tests := []struct {
		in     string
		ranges []SeqRange
		saved  bool
		format string
	}{
		{"1", []SeqRange{{1, 1}}, false, "1"},
		{"1:3,5", []SeqRange{{1, 3}, {5, 5}}, false, "1:3,5"},
		{"4:2", []SeqRange{{4, 2}}, false, "4:2"},
		{"*", []SeqRange{{SeqStar, SeqStar}}, false, "*"},
		{"7:*", []SeqRange{{7, SeqStar}}, false, "7:*"},
		{"*:4,5:7", []SeqRange{{SeqStar, 4}, {5, 7}}, false, "*:4,5:7"},
		{"5:5", []SeqRange{{5, 5}}, false, "5"},
		{"1:4294967295", []SeqRange{{1, math.MaxUint32}}, false, "1:4294967295"},
		{"$", nil, true, "$"},
		{"1,$", []SeqRange{{1, 1}}, true, "1,$"},
	}
	for _, tt := range tests {
		s, err := ParseSeqSet(tt.in)
		if err != nil || !slices.Equal(s.Ranges, tt.ranges) || s.Saved != tt.saved || s.String() != tt.format {
			t.Errorf("%q: %+v %v, formats %q", tt.in, s, err, s.String())
		}
	}
	bad := map[string]int{
		"":            0,
		"0":           0,
		"01":          0,
		"1:0":         2,
		"1,":          2,
		",1":          0,
		"1::2":        2,
		"1:2:3":       3,
		"4294967296":  9,
		"$,1":         0,
		"1:$":         2,
		"$$":          0,
		"1 2":         1,
		"a":           0,
		"99999999999": 9,
	}
	for in, off := range bad {
		_, err := ParseSeqSet(in)
		var se *SyntaxError
		if !errors.As(err, &se) || se.Offset != off {
			t.Errorf("%q: %v, want a syntax error at %d", in, err, off)
		}
	}
}

func TestSeqSetContains(t *testing.T) {
	s, _ := ParseSeqSet("2,4:7,9,12:*")
	var got []uint32
	for n := uint32(0); n <= 16; n++ {
		if s.Contains(n, 15) {
			got = append(got, n)
		}
	}
	// RFC 9051 9, sequence-set example: 15 messages.
	if want := []uint32{2, 4, 5, 6, 7, 9, 12, 13, 14, 15}; !slices.Equal(got, want) {
		t.Errorf("Contains: %v, want %v", got, want)
	}
	// "3291:*" includes the last UID even below 3291 (RFC 9051 9, seq-range).
	s, _ = ParseSeqSet("3291:*")
	if !s.Contains(100, 100) || !s.Contains(3291, 100) || s.Contains(99, 100) || s.Contains(3292, 100) {
		t.Error("3291:* with last UID 100")
	}
	if s.Contains(0, 100) {
		t.Error("0 is never contained")
	}
	saved := SeqSet{Saved: true}
	if saved.Contains(1, 10) {
		t.Error("unresolved $ contains nothing")
	}
}

func TestSeqSetResolve(t *testing.T) {
	tests := []struct {
		in   string
		last uint32
		want string
	}{
		{"*:4,5:7", 10, "4:10"},
		{"2,4:7,9,12:*", 15, "2,4:7,9,12:15"},
		{"5,3,4,1", 0, "1,3:5"},
		{"1:3,2:6,8,7", 0, "1:8"},
		{"4294967295,1:4294967294", 0, "1:4294967295"},
		{"*", 0, ""},
		{"5:*", 0, "1:5"},
	}
	for _, tt := range tests {
		s, _ := ParseSeqSet(tt.in)
		r := s.Resolve(tt.last)
		if got := r.String(); got != tt.want {
			t.Errorf("Resolve(%q, %d) = %q, want %q", tt.in, tt.last, got, tt.want)
		}
	}
}

func TestSeqSetNumbers(t *testing.T) {
	s, _ := ParseSeqSet("*:8,1,3")
	got := slices.Collect(s.Numbers(10))
	if want := []uint32{1, 3, 8, 9, 10}; !slices.Equal(got, want) {
		t.Errorf("Numbers = %v, want %v", got, want)
	}
	// The top of the range ends the loop without overflow, and stopping early
	// costs nothing for a set of four billion numbers.
	s, _ = ParseSeqSet("4294967294:*")
	if got := slices.Collect(s.Numbers(math.MaxUint32)); !slices.Equal(got, []uint32{4294967294, 4294967295}) {
		t.Errorf("top: %v", got)
	}
	s, _ = ParseSeqSet("1:*")
	n := 0
	for range s.Numbers(math.MaxUint32) {
		if n++; n == 3 {
			break
		}
	}
	if n != 3 {
		t.Errorf("early stop: %d", n)
	}
	if s.Largest(42) != 42 || !s.Dynamic() {
		t.Error("Largest/Dynamic")
	}
}

func TestSeqSetNoPerElementAllocation(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		s, err := ParseSeqSet("1:4294967295")
		if err != nil || !s.Contains(4000000000, 0) {
			t.Fatal(s, err)
		}
	})
	if allocs > 1 {
		t.Errorf("%v allocations", allocs)
	}
}

func TestSeqSetBuild(t *testing.T) {
	var s SeqSet
	for _, n := range []uint32{1, 2, 3, 5, 7, 8} {
		s.AddNum(n)
	}
	s.AddRange(9, 12)
	s.AddNum(20)
	if got := s.String(); got != "1:3,5,7:12,20" {
		t.Errorf("built %q", got)
	}
	saved := SeqSet{Ranges: []SeqRange{{4, 6}}}
	in, _ := ParseSeqSet("1,$")
	if got := in.ReplaceSaved(saved).String(); got != "1,4:6" {
		t.Errorf("ReplaceSaved = %q", got)
	}
	if !(SeqSet{}).IsEmpty() || (SeqSet{Saved: true}).IsEmpty() {
		t.Error("IsEmpty")
	}
}
