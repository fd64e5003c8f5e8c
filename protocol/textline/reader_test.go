package textline

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// feeds are the ways a test hands input to a Reader: whole, one octet per
// Read (every chunk boundary), and half of each request.
var feeds = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"onebyte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"dataerr", iotest.DataErrReader},
}

// readLines reads lines until an error and returns them with that error.
func readLines(r *Reader, max int) ([]string, error) {
	var lines []string
	for {
		line, err := r.ReadLine(max)
		if err != nil {
			return lines, err
		}
		lines = append(lines, string(line))
	}
}

func TestReadLine(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name  string
		in    string
		max   int
		buf   int
		lines []string
		err   error
	}{
		{"crlf", "HELO a\r\nQUIT\r\n", 510, 4096, []string{"HELO a", "QUIT"}, io.EOF},
		{"bare lf", "HELO a\nQUIT\n", 510, 4096, []string{"HELO a", "QUIT"}, io.EOF},
		{"empty lines", "\r\n\n\r\n", 510, 4096, []string{"", "", ""}, io.EOF},
		{"cr kept inside", "a\rb\r\n", 510, 4096, []string{"a\rb"}, io.EOF},
		{"one cr stripped", "a\r\r\n", 510, 4096, []string{"a\r"}, io.EOF},
		{"empty input", "", 510, 4096, nil, io.EOF},
		{"partial line", "QUIT", 510, 4096, nil, io.ErrUnexpectedEOF},
		{"partial line cr", "ok\r\nQUIT\r", 510, 4096, []string{"ok"}, io.ErrUnexpectedEOF},
		{"exactly max crlf", x(5) + "\r\n", 5, 4096, []string{x(5)}, io.EOF},
		{"exactly max lf", x(5) + "\n", 5, 4096, []string{x(5)}, io.EOF},
		{"max+1 crlf", x(6) + "\r\n", 5, 4096, nil, ErrLineTooLong},
		{"max+1 lf", x(6) + "\n", 5, 4096, nil, ErrLineTooLong},
		{"max 0", "\r\nx\r\n", 0, 4096, []string{""}, ErrLineTooLong},
		{"512 command", x(511) + "\r\n", 510, 4096, nil, ErrLineTooLong},
		{"too long no lf", x(5000), 510, 4096, nil, ErrLineTooLong},
		{"too long after good", "ok\r\n" + x(600) + "\r\nNOOP\r\n", 510, 4096, []string{"ok"}, ErrLineTooLong},
		{"longer than buffer", x(10000) + "\r\nB\r\n", 20000, 4096, []string{x(10000), "B"}, io.EOF},
		{"longer than buffer exact", x(10000) + "\r\n", 10000, 4096, []string{x(10000)}, io.EOF},
		{"longer than buffer exact lf", x(10000) + "\n", 10000, 4096, []string{x(10000)}, io.EOF},
		{"longer than buffer over", x(10001) + "\r\n", 10000, 4096, nil, ErrLineTooLong},
		{"longer than buffer over lf", x(10001) + "\n", 10000, 4096, nil, ErrLineTooLong},
		{"longer than buffer eof", x(10000), 20000, 4096, nil, io.ErrUnexpectedEOF},
		{"small buf raised", x(4000) + "\r\n", 5000, 16, []string{x(4000)}, io.EOF},
	}
	// CR or LF exactly at, before and after the buffer boundary.
	for _, n := range []int{4094, 4095, 4096, 4097, 8190, 8191, 8192} {
		tests = append(tests,
			struct {
				name  string
				in    string
				max   int
				buf   int
				lines []string
				err   error
			}{"boundary crlf", x(n) + "\r\nN\r\n", n, 4096, []string{x(n), "N"}, io.EOF},
			struct {
				name  string
				in    string
				max   int
				buf   int
				lines []string
				err   error
			}{"boundary over", x(n+1) + "\r\nN\r\n", n, 4096, nil, ErrLineTooLong})
	}
	for _, tt := range tests {
		for _, f := range feeds {
			t.Run(tt.name+"/"+f.name, func(t *testing.T) {
				r := NewReader(f.wrap(strings.NewReader(tt.in)), tt.buf)
				lines, err := readLines(r, tt.max)
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if strings.Join(lines, "|") != strings.Join(tt.lines, "|") || len(lines) != len(tt.lines) {
					t.Fatalf("lines = %q, want %q", lines, tt.lines)
				}
			})
		}
	}
}

// endlessReader yields 'x' forever and counts what it gave.
type endlessReader struct{ n int64 }

func (e *endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.n += int64(len(p))
	return len(p), nil
}

// TestReadLineBounded: a 10 MB line without LF is rejected after reading
// about one buffer, not buffered (ROBUSTNESS: "10 MB line without LF").
func TestReadLineBounded(t *testing.T) {
	for _, max := range []int{510, 5000, 65536} {
		src := &endlessReader{}
		r := NewReader(src, 4096)
		if _, err := r.ReadLine(max); !errors.Is(err, ErrLineTooLong) {
			t.Fatalf("max %d: err = %v", max, err)
		}
		if limit := int64(max + 2 + 4096); src.n > limit {
			t.Errorf("max %d: read %d octets, want <= %d", max, src.n, limit)
		}
		if cap(r.long) > max+2 {
			t.Errorf("max %d: line buffer grew to %d", max, cap(r.long))
		}
	}
}

func TestReadLineNoAlloc(t *testing.T) {
	in := strings.Repeat("MAIL FROM:<a@example.org>\r\n", 1000)
	r := NewReader(strings.NewReader(in), 4096)
	allocs := testing.AllocsPerRun(500, func() {
		if _, err := r.ReadLine(510); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ReadLine allocates %v times per line", allocs)
	}
}

func TestReadLineError(t *testing.T) {
	r := NewReader(iotest.TimeoutReader(strings.NewReader("A\r\nB")), 4096)
	if line, err := r.ReadLine(510); err != nil || string(line) != "A" {
		t.Fatalf("got %q, %v", line, err)
	}
	if _, err := r.ReadLine(510); !errors.Is(err, iotest.ErrTimeout) {
		t.Fatalf("err = %v, want timeout", err)
	}
}

// TestReset: after STARTTLS the bytes pipelined behind it are dropped
// (RFC 3207 4.2, CVE-2011-0411).
func TestReset(t *testing.T) {
	r := NewReader(strings.NewReader("STARTTLS\r\nRSET\r\n"), 4096)
	if line, err := r.ReadLine(510); err != nil || string(line) != "STARTTLS" {
		t.Fatalf("got %q, %v", line, err)
	}
	if r.Buffered() != len("RSET\r\n") {
		t.Fatalf("Buffered = %d", r.Buffered())
	}
	r.Reset(strings.NewReader("EHLO a\r\n"))
	if r.Buffered() != 0 {
		t.Fatalf("Buffered after Reset = %d", r.Buffered())
	}
	lines, err := readLines(r, 510)
	if err != io.EOF || len(lines) != 1 || lines[0] != "EHLO a" {
		t.Fatalf("got %q, %v", lines, err)
	}
}

func TestReadFullDiscard(t *testing.T) {
	for _, f := range feeds {
		t.Run(f.name, func(t *testing.T) {
			r := NewReader(f.wrap(strings.NewReader("0123456789"+strings.Repeat("z", 10000)+"NEXT\r\nab")), 4096)
			p := make([]byte, 10)
			if err := r.ReadFull(p); err != nil || string(p) != "0123456789" {
				t.Fatalf("ReadFull = %q, %v", p, err)
			}
			if err := r.Discard(10000); err != nil {
				t.Fatalf("Discard: %v", err)
			}
			if line, err := r.ReadLine(510); err != nil || string(line) != "NEXT" {
				t.Fatalf("ReadLine = %q, %v", line, err)
			}
			if err := r.ReadFull(make([]byte, 3)); err != io.ErrUnexpectedEOF {
				t.Fatalf("short ReadFull: %v", err)
			}
			if err := r.ReadFull(make([]byte, 1)); err != io.ErrUnexpectedEOF {
				t.Fatalf("ReadFull at EOF: %v", err)
			}
			if err := r.ReadFull(nil); err != nil {
				t.Fatalf("empty ReadFull: %v", err)
			}
		})
	}
	r := NewReader(strings.NewReader("abc"), 4096)
	if err := r.Discard(4); err != io.ErrUnexpectedEOF {
		t.Fatalf("short Discard: %v", err)
	}
	r = NewReader(bytes.NewReader(nil), 4096)
	if err := r.Discard(0); err != nil {
		t.Fatalf("Discard(0): %v", err)
	}
}
