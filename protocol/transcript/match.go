// Package transcript holds what the protocol tests share: the Runner that
// replays transcript files over a loopback connection, and the pattern match
// of transcript lines ("S: 250 2.0.0 OK queued as *"). Only tests import it.
package transcript

import "strings"

// Match reports whether s matches pattern, where each * matches any run of
// characters (possibly empty) and everything else matches itself.
func Match(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}
