package textline

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestDotWriter(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ".\r\n"},
		{"one line", "a\r\n", "a\r\n.\r\n"},
		{"no final crlf", "a", "a\r\n.\r\n"},
		{"empty line", "\r\n", "\r\n.\r\n"},
		{"dot line", ".\r\n", "..\r\n.\r\n"},
		{"dot dot", "..\r\n", "...\r\n.\r\n"},
		{"dot unterminated", ".", "..\r\n.\r\n"},
		{"leading dots", ".a\r\nb.\r\n.\r\nc", "..a\r\nb.\r\n..\r\nc\r\n.\r\n"},
		// RFC 5321 2.3.8: never send bare CR or LF.
		{"bare lf", "a\nb\n", "a\r\nb\r\n.\r\n"},
		{"bare cr", "a\rb\r", "a\r\nb\r\n.\r\n"},
		{"cr cr lf", "a\r\r\n", "a\r\n\r\n.\r\n"},
		{"lf cr", "a\n\rb", "a\r\n\r\nb\r\n.\r\n"},
		{"smuggle lf", "a\n.\nb", "a\r\n..\r\nb\r\n.\r\n"},
		{"smuggle cr", "a\r.\rb", "a\r\n..\r\nb\r\n.\r\n"},
		{"smuggle mixed", "a\r\n.\r", "a\r\n..\r\n.\r\n"},
		{"dot after bare cr", "\r.", "\r\n..\r\n.\r\n"},
		{"only lf", "\n", "\r\n.\r\n"},
		{"only cr", "\r", "\r\n.\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(how string, writes []string) {
				var b bytes.Buffer
				w := NewDotWriter(&b)
				for _, s := range writes {
					if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
						t.Fatalf("%s: Write = %d, %v", how, n, err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatalf("%s: Close: %v", how, err)
				}
				if err := w.Close(); err != nil {
					t.Fatalf("%s: second Close: %v", how, err)
				}
				if b.String() != tt.want {
					t.Fatalf("%s: got %q, want %q", how, b.String(), tt.want)
				}
			}
			check("whole", []string{tt.in})
			for i := 0; i <= len(tt.in); i++ {
				check("split", []string{tt.in[:i], "", tt.in[i:]})
			}
			check("octets", strings.Split(tt.in, ""))
		})
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("broken pipe")
	}
	f.after--
	return len(p), nil
}

func TestDotWriterError(t *testing.T) {
	for after := range 4 {
		w := NewDotWriter(&failWriter{after: after})
		_, err1 := w.Write([]byte("a\r\n.b\nc"))
		err2 := w.Close()
		if err1 == nil && err2 == nil {
			t.Errorf("after %d: no error", after)
		}
		if _, err := w.Write([]byte("x")); err == nil {
			t.Errorf("after %d: Write after failure succeeded", after)
		}
	}
	w := NewDotWriter(io.Discard)
	_ = w.Close()
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
}

// TestDotRoundTrip: DotWriter then DataReader gives back the content with
// line ends normalised to CRLF.
func TestDotRoundTrip(t *testing.T) {
	for _, in := range []string{"", "a", ".", "..\r\n.\r\n", "a\r\n.\r\n", "x\n.\ny", "\r.\r", "\r\n.\r", strings.Repeat(".\r\n", 5000)} {
		checkRoundTrip(t, []byte(in), len(in)/2)
	}
}

// normalize gives the content DotWriter sends and DataReader returns: every
// CRLF, bare CR and bare LF becomes CRLF, and a last line gets its CRLF.
func normalize(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\r':
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
			out = append(out, '\r', '\n')
		case '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, b[i])
		}
	}
	if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, '\r', '\n')
	}
	return out
}

func checkRoundTrip(t *testing.T, in []byte, split int) {
	t.Helper()
	split = min(max(split, 0), len(in))
	var wire bytes.Buffer
	w := NewDotWriter(&wire)
	_, _ = w.Write(in[:split])
	_, _ = w.Write(in[split:])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	stuffed := wire.Len()
	if hasBareLineEnding(wire.Bytes()) {
		t.Fatalf("DotWriter sent a bare line ending for %q: %q", in, wire.Bytes())
	}
	wire.WriteString("NEXT\r\n")
	r := NewReader(&wire, 4096)
	d := NewDataReader(r, 0, 0, 0)
	got, err := io.ReadAll(d)
	if err != nil {
		t.Fatalf("%q: DataReader: %v", in, err)
	}
	if want := normalize(in); !bytes.Equal(got, want) {
		t.Fatalf("%q: got %q, want %q", in, got, want)
	}
	if d.Consumed() != int64(stuffed) {
		t.Fatalf("%q: consumed %d of %d", in, d.Consumed(), stuffed)
	}
	if line, err := r.ReadLine(510); err != nil || string(line) != "NEXT" {
		t.Fatalf("%q: next = %q, %v", in, line, err)
	}
}
