package textline

import (
	"strings"
	"testing"
)

func TestLineChecker(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		maxLine int
		err     error
	}{
		{"empty", "", 0, nil},
		{"lines", "a\r\nb\r\n", 0, nil},
		{"no final crlf", "a\r\nb", 0, nil},
		// RFC 3030: no stuffing, so dot lines are plain text.
		{"dots", ".\r\n..\r\n.\r\n", 0, nil},
		{"bare lf", "a\nb\r\n", 0, ErrBareLineEnding},
		{"bare lf start", "\n", 0, ErrBareLineEnding},
		{"bare cr", "a\rb\r\n", 0, ErrBareLineEnding},
		{"cr cr lf", "a\r\r\n", 0, ErrBareLineEnding},
		{"final cr", "a\r\nb\r", 0, ErrBareLineEnding},
		{"lf cr", "a\n\r", 0, ErrBareLineEnding},
		{"smuggle", "a\r\n.\nb\r\n", 0, ErrBareLineEnding},
		{"line exact", "abc\r\n", 5, nil},
		{"line over", "abc\r\n", 4, ErrTextLineTooLong},
		{"line over unterminated", "abcdef", 4, ErrTextLineTooLong},
		{"dot counts", ".bc\r\n", 4, ErrTextLineTooLong},
		{"line 1000", strings.Repeat("x", 998) + "\r\n", 1000, nil},
		{"line 1001", strings.Repeat("x", 999) + "\r\n", 1000, ErrTextLineTooLong},
		{"bare over long", "abcdef\r\na\nb\r\n", 4, ErrBareLineEnding},
		{"long after bare", "a\nb\r\nabcdef\r\n", 4, ErrBareLineEnding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Whole, and split at every position into two and into single octets.
			c := NewLineChecker(tt.maxLine)
			if n, err := c.Write([]byte(tt.in)); n != len(tt.in) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			if c.Err() != tt.err {
				t.Fatalf("whole: Err = %v, want %v", c.Err(), tt.err)
			}
			for i := 0; i <= len(tt.in); i++ {
				c := NewLineChecker(tt.maxLine)
				_, _ = c.Write([]byte(tt.in[:i]))
				_, _ = c.Write([]byte(tt.in[i:]))
				if c.Err() != tt.err {
					t.Fatalf("split %d: Err = %v, want %v", i, c.Err(), tt.err)
				}
			}
			c = NewLineChecker(tt.maxLine)
			for i := range len(tt.in) {
				_, _ = c.Write([]byte{tt.in[i]})
			}
			if c.Err() != tt.err {
				t.Fatalf("octets: Err = %v, want %v", c.Err(), tt.err)
			}
		})
	}
}

// TestLineCheckerChunkCR: a CR ending one BDAT chunk and the LF starting the
// next form one CRLF; Err between them sees the CR as final.
func TestLineCheckerChunkCR(t *testing.T) {
	c := NewLineChecker(1000)
	_, _ = c.Write([]byte("a\r"))
	if c.Err() != ErrBareLineEnding {
		t.Fatalf("Err with final CR = %v", c.Err())
	}
	_, _ = c.Write([]byte("\nb\r\n"))
	if c.Err() != nil {
		t.Fatalf("Err = %v", c.Err())
	}
}
