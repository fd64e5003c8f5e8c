package textline

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readData reads DATA content from in with the given limits and returns the
// content, the error (nil for io.EOF) and the next command line after it.
func readData(t *testing.T, in string, wrap func(io.Reader) io.Reader, smallReads bool,
	maxSize int64, maxLine int, drain int64) (string, error, string) {
	t.Helper()
	r := NewReader(wrap(strings.NewReader(in)), 4096)
	var src io.Reader = NewDataReader(r, maxSize, maxLine, drain)
	if smallReads {
		src = iotest.OneByteReader(src)
	}
	out, err := io.ReadAll(src)
	if hasBareLineEnding(out) {
		// Even before a fault is reported, only CRLF line ends are yielded.
		t.Errorf("bare line ending yielded: %q", out)
	}
	if err != nil {
		return "", err, ""
	}
	next, lerr := r.ReadLine(510)
	if lerr != nil {
		return string(out), nil, "<" + lerr.Error() + ">"
	}
	return string(out), nil, string(next)
}

// hasBareLineEnding reports whether b has a CR not followed by LF or an LF
// not preceded by CR.
func hasBareLineEnding(b []byte) bool {
	for i, c := range b {
		switch {
		case c == '\r' && (i+1 == len(b) || b[i+1] != '\n'):
			return true
		case c == '\n' && (i == 0 || b[i-1] != '\r'):
			return true
		}
	}
	return false
}

// smuggling lists end-of-data look-alikes that must never end the data
// (RFC 5321 4.1.1.4; SMTP smuggling, CVE-2023-51764).
var smuggling = []string{
	"\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r", "\r\n.\r", "\r.\r\n", "\r.\n",
	"\n.\r", "\r\n.\r\r\n", "\r\n.\n\r\n", "\n\r\n.\n",
}

func TestDataReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		maxSize int64
		maxLine int
		drain   int64
		want    string
		err     error
	}{
		{"empty", ".\r\n", 0, 0, 0, "", nil},
		{"one line", "a\r\n.\r\n", 0, 0, 0, "a\r\n", nil},
		{"empty line", "\r\n.\r\n", 0, 0, 0, "\r\n", nil},
		{"headers body", "Subject: x\r\n\r\nbody\r\n.\r\n", 0, 0, 0, "Subject: x\r\n\r\nbody\r\n", nil},
		{"unstuff dot line", "..\r\n.\r\n", 0, 0, 0, ".\r\n", nil},
		{"unstuff", "..a\r\nb.\r\n...\r\n.\r\n", 0, 0, 0, ".a\r\nb.\r\n..\r\n", nil},
		// RFC 5321 4.5.2: an unstuffed leading dot is simply deleted.
		{"unstuffed by sender", ".a\r\n.\r\n", 0, 0, 0, "a\r\n", nil},
		{"dot mid line", "a.\r\n.b.\r\n.\r\n", 0, 0, 0, "a.\r\nb.\r\n", nil},
		{"dot space not end", ". \r\n.\r\n", 0, 0, 0, " \r\n", nil},
		{"first end wins", "a\r\n.\r\nNEXT\r\n.\r\n", 0, 0, 0, "a\r\n", nil},
		{"bare lf start", "\n.\r\n.\r\n", 0, 0, 0, "", ErrBareLineEnding},
		{"bare lf dot not end", "\n.\r\n", 0, 0, 0, "", io.ErrUnexpectedEOF},
		{"bare cr only", "\r\r\n.\r\n", 0, 0, 0, "", ErrBareLineEnding},
		{"bare cr before end", "a\r\r\n.\r\n", 0, 0, 0, "", ErrBareLineEnding},
		{"bare lf mid", "a\nb\r\n.\r\n", 0, 0, 0, "", ErrBareLineEnding},
		{"bare cr mid", "a\rb\r\n.\r\n", 0, 0, 0, "", ErrBareLineEnding},
		{"dot lf at start", ".\nx\r\n.\r\n", 0, 0, 0, "", ErrBareLineEnding},
		{"dot cr at start", ".\rx\r\n.\r\n", 0, 0, 0, "", ErrBareLineEnding},
		{"dot cr cr lf", ".\r\r\n.\r\n", 0, 0, 0, "", ErrBareLineEnding},
		{"size exact", "abc\r\n.\r\n", 5, 0, 0, "abc\r\n", nil},
		{"size over", "abc\r\n.\r\n", 4, 0, 0, "", ErrTooLarge},
		{"size counts unstuffed", "..\r\n.\r\n", 3, 0, 0, ".\r\n", nil},
		{"size over later", "abc\r\ndef\r\nghi\r\n.\r\n", 12, 0, 0, "", ErrTooLarge},
		{"line exact", "abc\r\n.\r\n", 0, 5, 0, "abc\r\n", nil},
		{"line over", "abc\r\n.\r\n", 0, 4, 0, "", ErrTextLineTooLong},
		{"line over later", "ab\r\nabc\r\nab\r\n.\r\n", 0, 4, 0, "", ErrTextLineTooLong},
		// RFC 5321 4.5.3.1.6: the duplicated dot does not count.
		{"line stuffed exact", "..bc\r\n.\r\n", 0, 5, 0, ".bc\r\n", nil},
		{"line 1000", strings.Repeat("x", 998) + "\r\n.\r\n", 0, 1000, 0, strings.Repeat("x", 998) + "\r\n", nil},
		{"line 1001", strings.Repeat("x", 999) + "\r\n.\r\n", 0, 1000, 0, "", ErrTextLineTooLong},
		{"line 1000 stuffed", "." + strings.Repeat(".", 998) + "\r\n.\r\n", 0, 1000, 0, strings.Repeat(".", 998) + "\r\n", nil},
		{"too large over bare", "a\nbcdef\r\n.\r\n", 4, 0, 0, "", ErrTooLarge},
		{"bare over too large first", "abcdef\r\na\nb\r\n.\r\n", 4, 0, 0, "", ErrTooLarge},
		{"bare over long line", "abcdef\r\na\nb\r\n.\r\n", 0, 4, 0, "", ErrBareLineEnding},
		{"bare over long line 2", "a\nbcdefgh\r\n.\r\n", 0, 4, 0, "", ErrBareLineEnding},
		{"drain exact", "abc\r\n.\r\n", 0, 0, 8, "abc\r\n", nil},
		{"drain over", "abc\r\n.\r\n", 0, 0, 7, "", ErrDrainLimit},
		{"drain while faulted", "abc\nabc\r\n.\r\n", 0, 0, 8, "", ErrDrainLimit},
		{"eof empty", "", 0, 0, 0, "", io.ErrUnexpectedEOF},
		{"eof no end", "abc\r\n", 0, 0, 0, "", io.ErrUnexpectedEOF},
		{"eof dot", "abc\r\n.", 0, 0, 0, "", io.ErrUnexpectedEOF},
		{"eof dot cr", "abc\r\n.\r", 0, 0, 0, "", io.ErrUnexpectedEOF},
		{"eof after fault", "a\nb\r\n", 0, 0, 0, "", io.ErrUnexpectedEOF},
		{"eof lf dot lf", "a\n.\n", 0, 0, 0, "", io.ErrUnexpectedEOF},
	}
	for _, s := range smuggling {
		// Without the real end the smuggled sequence must not end the data.
		in := "From: a\r\n\r\nhi" + s + "MAIL FROM:<evil@example.org>\r\nRCPT TO:<v@example.org>\r\nDATA\r\n"
		tests = append(tests, struct {
			name    string
			in      string
			maxSize int64
			maxLine int
			drain   int64
			want    string
			err     error
		}{"smuggle " + strings.NewReplacer("\r", "CR", "\n", "LF").Replace(s), in + "\r\n.\r\n", 0, 0, 0, "", ErrBareLineEnding})
	}
	for _, tt := range tests {
		for _, f := range feeds {
			for _, small := range []bool{false, true} {
				name := tt.name + "/" + f.name
				if small {
					name += "/smallreads"
				}
				t.Run(name, func(t *testing.T) {
					in := tt.in + "NEXT\r\n"
					got, err, next := readData(t, in, f.wrap, small, tt.maxSize, tt.maxLine, tt.drain)
					if !errors.Is(err, tt.err) {
						t.Fatalf("err = %v, want %v", err, tt.err)
					}
					if err != nil {
						return
					}
					if got != tt.want {
						t.Fatalf("content = %q, want %q", got, tt.want)
					}
					if next != "NEXT" {
						t.Fatalf("next line = %q, want NEXT", next)
					}
				})
			}
		}
	}
}

// TestDataReaderInSync: after every content fault the reader has consumed
// exactly up to the real end, so the next command is read correctly.
func TestDataReaderInSync(t *testing.T) {
	cases := []struct {
		in      string
		maxSize int64
		maxLine int
		err     error
	}{
		{"a\nb\r\n.\r\n", 0, 0, ErrBareLineEnding},
		{"abcdef\r\n.\r\n", 3, 0, ErrTooLarge},
		{"abcdef\r\n.\r\n", 0, 3, ErrTextLineTooLong},
	}
	for _, s := range smuggling {
		cases = append(cases, struct {
			in      string
			maxSize int64
			maxLine int
			err     error
		}{"x" + s + "y\r\n.\r\n", 0, 0, ErrBareLineEnding})
	}
	for _, c := range cases {
		for _, f := range feeds {
			in := c.in + "NEXT\r\n"
			r := NewReader(f.wrap(strings.NewReader(in)), 4096)
			d := NewDataReader(r, c.maxSize, c.maxLine, 0)
			out, err := io.ReadAll(d)
			if !errors.Is(err, c.err) {
				t.Fatalf("%q/%s: err = %v, want %v", c.in, f.name, err, c.err)
			}
			if hasBareLineEnding(out) {
				t.Errorf("%q: yielded a bare line ending: %q", c.in, out)
			}
			if d.Consumed() != int64(len(c.in)) {
				t.Errorf("%q/%s: consumed %d, want %d", c.in, f.name, d.Consumed(), len(c.in))
			}
			if line, err := r.ReadLine(510); err != nil || string(line) != "NEXT" {
				t.Errorf("%q/%s: next = %q, %v", c.in, f.name, line, err)
			}
			// The result is sticky.
			if n, err2 := d.Read(make([]byte, 10)); n != 0 || err2 != err {
				t.Errorf("%q: second Read = %d, %v", c.in, n, err2)
			}
		}
	}
}

// TestDataReaderDrainLimit: a client that never sends the end is cut off
// after drainLimit octets, not read forever.
func TestDataReaderDrainLimit(t *testing.T) {
	src := &endlessReader{}
	r := NewReader(src, 4096)
	d := NewDataReader(r, 1000, 0, 100000)
	n, err := io.Copy(io.Discard, d)
	if !errors.Is(err, ErrDrainLimit) {
		t.Fatalf("err = %v", err)
	}
	if n > 1000 {
		t.Errorf("yielded %d octets over maxSize", n)
	}
	if d.Consumed() != 100000 {
		t.Errorf("consumed %d", d.Consumed())
	}
	if src.n > 100000+4096 {
		t.Errorf("read %d from the connection", src.n)
	}
}

// TestDataReaderLarge: a message much larger than the buffer, with dot
// lines at every chunk position.
func TestDataReaderLarge(t *testing.T) {
	var wire, want strings.Builder
	for i := range 5000 {
		line := strings.Repeat("abcdefghij", i%13) + strings.Repeat(".", i%3)
		if i%7 == 0 {
			line = "." + line
		}
		want.WriteString(line + "\r\n")
		if strings.HasPrefix(line, ".") {
			wire.WriteString(".")
		}
		wire.WriteString(line + "\r\n")
	}
	wire.WriteString(".\r\n")
	for _, f := range feeds {
		for _, small := range []bool{false, true} {
			got, err, next := readData(t, wire.String()+"NEXT\r\n", f.wrap, small, 0, 1000, 0)
			if err != nil || got != want.String() || next != "NEXT" {
				t.Fatalf("%s: err %v, next %q, content equal %v", f.name, err, next, got == want.String())
			}
		}
	}
}

func TestDataReaderSize(t *testing.T) {
	r := NewReader(strings.NewReader("..a\r\nb\r\n.\r\n"), 4096)
	d := NewDataReader(r, 0, 0, 0)
	if _, err := io.Copy(io.Discard, d); err != nil {
		t.Fatal(err)
	}
	if d.Size() != int64(len(".a\r\nb\r\n")) || d.Consumed() != 11 {
		t.Errorf("Size %d, Consumed %d", d.Size(), d.Consumed())
	}
}

func TestDataReaderReadError(t *testing.T) {
	r := NewReader(iotest.TimeoutReader(strings.NewReader("abc\r\n")), 4096)
	_, err := io.ReadAll(NewDataReader(r, 0, 0, 0))
	if !errors.Is(err, iotest.ErrTimeout) {
		t.Fatalf("err = %v", err)
	}
}

// benchMessage is about 10 MB of 76-octet lines with some stuffed dots.
func benchMessage() []byte {
	var b bytes.Buffer
	line := strings.Repeat("0123456789ABCDEFGHIJ", 4)[:76]
	for i := 0; b.Len() < 10<<20; i++ {
		if i%50 == 0 {
			b.WriteString("..")
		}
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}

func BenchmarkDataReader(b *testing.B) {
	msg := benchMessage()
	src := bytes.NewReader(msg)
	r := NewReader(src, 64<<10)
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(msg)
		r.Reset(src)
		d := NewDataReader(r, 0, 1000, 0)
		for {
			_, err := d.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkLineChecker(b *testing.B) {
	msg := benchMessage()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		c := NewLineChecker(1000)
		_, _ = c.Write(msg)
		if c.Err() != nil {
			b.Fatal(c.Err())
		}
	}
}

func BenchmarkDotWriter(b *testing.B) {
	msg := benchMessage()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		w := NewDotWriter(io.Discard)
		_, _ = w.Write(msg)
		_ = w.Close()
	}
}
