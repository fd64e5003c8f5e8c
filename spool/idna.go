package spool

import (
	"strings"
	"unicode/utf8"
)

// toASCIIDomain turns the U-labels of an internationalized domain into
// A-labels ("xn--" + Punycode, RFC 5890 2.3.2.1, RFC 3492) for DNS, which
// dnsmx expects in ASCII. Labels are lowercased but not otherwise mapped:
// golang.org/x/net/idna would add UTS 46 mapping and NFC normalization,
// but needs golang.org/x/text in go.mod. An SMTPUTF8 sender's MTA
// normally sends domains in their normal form already (RFC 6531 3.2).
func toASCIIDomain(domain string) (string, bool) {
	labels := strings.Split(strings.ToLower(domain), ".")
	for i, l := range labels {
		if isASCIIString(l) {
			continue
		}
		if !utf8.ValidString(l) {
			return "", false
		}
		labels[i] = "xn--" + punycode(l)
	}
	return strings.Join(labels, "."), true
}

func isASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Bootstring parameters for Punycode (RFC 3492 5).
const (
	pcBase        = 36
	pcTMin        = 1
	pcTMax        = 26
	pcSkew        = 38
	pcDamp        = 700
	pcInitialBias = 72
	pcInitialN    = 128
)

// punycode encodes s as RFC 3492 6.3 describes.
func punycode(s string) string {
	runes := []rune(s)
	var out []byte
	for _, r := range runes {
		if r < 0x80 {
			out = append(out, byte(r))
		}
	}
	b := len(out)
	h := b
	if b > 0 {
		out = append(out, '-')
	}
	n, delta, bias := rune(pcInitialN), 0, pcInitialBias
	for h < len(runes) {
		m := rune(utf8.MaxRune + 1)
		for _, r := range runes {
			if r >= n && r < m {
				m = r
			}
		}
		delta += int(m-n) * (h + 1)
		n = m
		for _, r := range runes {
			if r < n {
				delta++
			}
			if r != n {
				continue
			}
			q := delta
			for k := pcBase; ; k += pcBase {
				t := k - bias
				t = max(pcTMin, min(t, pcTMax))
				if q < t {
					break
				}
				out = append(out, punyDigit(t+(q-t)%(pcBase-t)))
				q = (q - t) / (pcBase - t)
			}
			out = append(out, punyDigit(q))
			bias = punyAdapt(delta, h+1, h == b)
			delta = 0
			h++
		}
		delta++
		n++
	}
	return string(out)
}

func punyAdapt(delta, points int, first bool) int {
	if first {
		delta /= pcDamp
	} else {
		delta /= 2
	}
	delta += delta / points
	k := 0
	for delta > ((pcBase-pcTMin)*pcTMax)/2 {
		delta /= pcBase - pcTMin
		k += pcBase
	}
	return k + (pcBase-pcTMin+1)*delta/(delta+pcSkew)
}

func punyDigit(d int) byte {
	if d < 26 {
		return byte('a' + d)
	}
	return byte('0' + d - 26)
}
