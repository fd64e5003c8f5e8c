package transcript

import "testing"

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"250 OK", "250 OK", true},
		{"250 OK", "250 OK ", false},
		{"250 *", "250 2.0.0 OK", true},
		{"250 *", "251 x", false},
		{"* OK", "a OK", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXcYb", false},
		{"*", "", true},
		{"a*a", "a", false},
		{"a**b", "ab", true},
	} {
		if got := Match(tc.pattern, tc.s); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
