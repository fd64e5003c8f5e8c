package message

import (
	"bytes"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ROBUSTNESS.md: "100k address headers, 1 MB header, MIME nested 10k deep →
// bounded CPU and memory". Each message here is parsed, encoded, decoded
// and rendered; that must cost under a second of CPU (process CPU time, not
// wall time, so that a loaded machine does not fail the test; the bound is
// loose for the race detector) and the tree must stay within the limits.

// hostile lists generators of hostile messages by name; each builds its
// message only when called.
func hostile() map[string]func() []byte {
	return map[string]func() []byte{
		"multipart nested 10k deep": func() []byte {
			var b bytes.Buffer
			for i := 0; i < 10000; i++ {
				fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
			}
			b.WriteString("\r\nleaf\r\n")
			for i := 9999; i >= 0; i-- {
				fmt.Fprintf(&b, "--b%d--\r\n", i)
			}
			return b.Bytes()
		},
		"message/rfc822 nested 10k deep": func() []byte {
			return bytes.Repeat([]byte("Subject: s\r\nContent-Type: message/rfc822\r\n\r\n"), 10000)
		},
		"100k header lines": func() []byte {
			return append(bytes.Repeat([]byte("X-Filler: some value here\r\n"), 100000), "\r\nbody"...)
		},
		"100k To fields": func() []byte {
			return append(bytes.Repeat([]byte("To: a@example.com\r\n"), 100000), "\r\nbody"...)
		},
		"100k addresses in one field": func() []byte {
			var b bytes.Buffer
			b.WriteString("To: ")
			for i := 0; i < 100000; i++ {
				fmt.Fprintf(&b, "user%d@example.com,\r\n ", i)
			}
			b.WriteString("last@example.com\r\n\r\nbody")
			return b.Bytes()
		},
		"1 MB header field": func() []byte {
			return []byte("Subject: " + strings.Repeat("x", 1<<20) + "\r\nFrom: a@b\r\n\r\nbody")
		},
		"8 MB folded field": func() []byte {
			return []byte("To: " + strings.Repeat("a@b, (c) \"q\" <d@e>,\r\n ", 8<<20/24) + "\r\n\r\nbody")
		},
		"100k parts": func() []byte {
			var b bytes.Buffer
			b.WriteString("Content-Type: multipart/mixed; boundary=x\r\n\r\n")
			for i := 0; i < 100000; i++ {
				b.WriteString("--x\r\n\r\np\r\n")
			}
			return b.Bytes()
		},
		"100k nested comments": func() []byte {
			return []byte("From: " + strings.Repeat("(", 100000) + "a@b\r\nContent-Type: text/plain; " +
				strings.Repeat("a*1*=%;", 100000) + "\r\n\r\n")
		},
		"deep group junk": func() []byte {
			return []byte("To: " + strings.Repeat("g:<@a,@b:", 50000) + "\r\n\r\n")
		},
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func treeStats(p *Part, depth int) (maxDepth, parts int) {
	maxDepth, parts = depth, 1
	for _, c := range p.Children {
		d, n := treeStats(c, depth+1)
		maxDepth = max(maxDepth, d)
		parts += n
	}
	return maxDepth, parts
}

func TestHostileBounded(t *testing.T) {
	for name, gen := range hostile() {
		raw := gen()
		t.Run(name, func(t *testing.T) {
			start, wall := cpuTime(t), time.Now()
			p := Parse(raw)
			blob := Encode(p)
			q, err := Decode(blob)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			bs := q.BodyStructure(true)
			env := q.Envelope()
			elapsed := cpuTime(t) - start
			depth, parts := treeStats(p, 0)
			t.Logf("%d octets: CPU %v (wall %v), depth %d, %d parts, blob %d, BODYSTRUCTURE %d, ENVELOPE %d",
				len(raw), elapsed, time.Since(wall), depth, parts, len(blob), len(bs), len(env))
			if elapsed > time.Second {
				t.Errorf("took %v of CPU", elapsed)
			}
			if depth > MaxDepth || parts > MaxParts+2*MaxDepth {
				t.Errorf("depth %d, parts %d", depth, parts)
			}
			if e := p.Env; e != nil {
				for _, l := range [][]Address{e.From, e.To, e.Cc} {
					if len(l) > MaxAddresses {
						t.Errorf("%d addresses", len(l))
					}
				}
			}
		})
	}
}

func TestLimitsExact(t *testing.T) {
	raw := hostile()["100k addresses in one field"]()
	if n := len(Parse(raw).Env.To); n != MaxAddresses-1 {
		t.Errorf("To has %d addresses; want %d", n, MaxAddresses-1)
	}
	raw = hostile()["100k parts"]()
	if n := len(Parse(raw).Children); n != MaxParts-1 {
		t.Errorf("multipart has %d children; want %d (root counts)", n, MaxParts-1)
	}
	raw = hostile()["multipart nested 10k deep"]()
	p := Parse(raw)
	for i := 0; i < MaxDepth; i++ {
		if len(p.Children) != 1 {
			t.Fatalf("depth %d: %d children", i, len(p.Children))
		}
		p = p.Children[0]
	}
	if p.Type != "text" || p.Subtype != "plain" || p.Children != nil {
		t.Errorf("part at MaxDepth: %s/%s with %d children", p.Type, p.Subtype, len(p.Children))
	}
	// A header beyond MaxHeaderParse still ends at its blank line.
	raw = []byte(strings.Repeat("X: y\r\n", MaxHeaderParse/6+10) + "Subject: late\r\n\r\nbody")
	p = Parse(raw)
	if string(p.Body(raw)) != "body" || p.Env.Subject != "" {
		t.Errorf("body %q, subject %q", p.Body(raw), p.Env.Subject)
	}
}
