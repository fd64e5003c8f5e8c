package textline

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// refData is a slow, obviously correct model of DataReader built from the
// RFC text: the data ends at the first CRLF "." CRLF (counting the DATA
// line's CRLF, RFC 5321 4.1.1.4); the content is split at CRLF only (2.3.8);
// each line loses a leading "." (4.5.2) and may hold no other CR or LF.
func refData(in []byte, maxSize int64, maxLine int, drain int64) (out []byte, consumed int64, err error) {
	end := bytes.Index(append([]byte("\r\n"), in...), []byte("\r\n.\r\n"))
	if end < 0 || (drain > 0 && int64(end+3) > drain) {
		if drain > 0 && int64(len(in)) >= drain {
			return nil, drain, ErrDrainLimit
		}
		return nil, int64(len(in)), io.ErrUnexpectedEOF
	}
	consumed = int64(end + 3)
	var content []byte
	if end > 0 {
		content = in[:end]
	}
	var fault error
	var size int64
	for len(content) > 0 {
		i := bytes.Index(content, []byte("\r\n"))
		line := content[:i]
		content = content[i+2:]
		line = bytes.TrimPrefix(line, []byte("."))
		size += int64(len(line) + 2)
		if bytes.ContainsAny(line, "\r\n") {
			fault = worseFault(fault, ErrBareLineEnding)
		}
		if maxLine > 0 && len(line)+2 > maxLine {
			fault = worseFault(fault, ErrTextLineTooLong)
		}
		out = append(out, line...)
		out = append(out, '\r', '\n')
	}
	if maxSize > 0 && size > maxSize {
		fault = worseFault(fault, ErrTooLarge)
	}
	if fault != nil {
		return nil, consumed, fault
	}
	return out, consumed, nil
}

func FuzzDataReader(f *testing.F) {
	seeds := []string{
		".\r\n", "a\r\n.\r\n", "..\r\n.\r\n", "..a\r\n.b\r\n.\r\n", "a\n.\nb\r\n.\r\n",
		"a\r\n.\nb\r\n.\r\n", "a\r.\rb\r\n.\r\n", "a\r\n.\rb\r\n.\r\n", ".\n.\r\n",
		"\n.\r\n", "a\r\r\n.\r\n", "abcdef\r\n.\r\nNEXT\r\n", "x\r\n.", "",
	}
	for _, s := range seeds {
		f.Add([]byte(s), int64(0), 0, int64(0), false)
		f.Add([]byte(s), int64(4), 4, int64(9), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, maxSize int64, maxLine int, drain int64, oneByte bool) {
		maxLine %= 5000
		var src io.Reader = bytes.NewReader(in)
		if oneByte {
			src = iotest.OneByteReader(src)
		}
		d := NewDataReader(NewReader(src, 4096), maxSize, maxLine, drain)
		var rd io.Reader = d
		if oneByte {
			rd = iotest.OneByteReader(d)
		}
		out, err := io.ReadAll(rd)
		if d.Consumed() > int64(len(in)) {
			t.Fatalf("consumed %d of %d", d.Consumed(), len(in))
		}
		if hasBareLineEnding(out) {
			t.Fatalf("yielded a bare line ending: %q", out)
		}
		if err == nil {
			c := d.Consumed()
			withCRLF := append([]byte("\r\n"), in[:c]...)
			if !bytes.HasSuffix(withCRLF, []byte("\r\n.\r\n")) {
				t.Fatalf("ended without CRLF.CRLF: %q", in[:c])
			}
			if i := bytes.Index(withCRLF, []byte("\r\n.\r\n")); int64(i+5) != c+2 {
				t.Fatalf("ended at %d, first CRLF.CRLF ends at %d", c, i+3)
			}
		}
		want, wantConsumed, wantErr := refData(in, maxSize, maxLine, drain)
		if !errors.Is(err, wantErr) {
			t.Fatalf("err = %v, model %v", err, wantErr)
		}
		if d.Consumed() != wantConsumed {
			t.Fatalf("consumed %d, model %d", d.Consumed(), wantConsumed)
		}
		if err == nil && !bytes.Equal(out, want) {
			t.Fatalf("content %q, model %q", out, want)
		}
		if err == nil && d.Size() != int64(len(out)) {
			t.Fatalf("Size %d, content %d", d.Size(), len(out))
		}
	})
}

func FuzzDotRoundTrip(f *testing.F) {
	for _, s := range []string{"", "a", ".", ".\r\n", "..", "a\n.\nb", "a\r.\r", "\r\n.\r", "x\r", "\r\n\r\n.\r\n\r\n"} {
		f.Add([]byte(s), 0)
		f.Add([]byte(s), 1)
	}
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		if split < 0 {
			split = -(split + 1)
		}
		checkRoundTrip(t, in, split%(len(in)+1))
	})
}

// refReadLine models ReadLine over in: it returns the lines and the final
// error, with mayBeTooLong when an unterminated over-long tail may give
// either ErrLineTooLong or io.ErrUnexpectedEOF.
func refReadLine(in []byte, max int) (lines []string, err error, mayBeTooLong bool) {
	for {
		i := bytes.IndexByte(in, '\n')
		if i < 0 {
			if len(in) == 0 {
				return lines, io.EOF, false
			}
			return lines, io.ErrUnexpectedEOF, len(in) > max+1
		}
		line := bytes.TrimSuffix(in[:i], []byte("\r"))
		if len(line) > max {
			return lines, ErrLineTooLong, false
		}
		lines = append(lines, string(line))
		in = in[i+1:]
	}
}

func FuzzReadLine(f *testing.F) {
	for _, s := range []string{"HELO a\r\n", "a\nb\r\n", "a\rb\r\n", "", "abc", "xxxxxx\r\n", "\r\r\n"} {
		f.Add([]byte(s), 5, false)
		f.Add([]byte(s), 510, true)
	}
	f.Add(bytes.Repeat([]byte("x"), 5000), 4500, false)
	f.Fuzz(func(t *testing.T, in []byte, max int, oneByte bool) {
		if max < 0 {
			max = -(max + 1)
		}
		max %= 10000
		var src io.Reader = bytes.NewReader(in)
		if oneByte {
			src = iotest.OneByteReader(src)
		}
		lines, err := readLines(NewReader(src, 4096), max)
		want, wantErr, either := refReadLine(in, max)
		if !errors.Is(err, wantErr) && !(either && errors.Is(err, ErrLineTooLong)) {
			t.Fatalf("err = %v, model %v", err, wantErr)
		}
		if len(lines) != len(want) {
			t.Fatalf("%d lines, model %d", len(lines), len(want))
		}
		for i := range lines {
			if lines[i] != want[i] {
				t.Fatalf("line %d = %q, model %q", i, lines[i], want[i])
			}
		}
	})
}

// FuzzLineChecker: on content without dots, LineChecker (BDAT) and
// DataReader (DATA) judge bare line endings alike, and long lines alike on
// clean content ending in CRLF.
func FuzzLineChecker(f *testing.F) {
	for _, s := range []string{"a\r\n", "a\nb", "a\r", "a\rb\r\n", "\r\n\r\n", "abcdef\r\nab\r\n", ""} {
		f.Add([]byte(s), 4, 1)
	}
	f.Fuzz(func(t *testing.T, in []byte, maxLine int, split int) {
		if bytes.IndexByte(in, '.') >= 0 {
			return
		}
		if maxLine < 0 {
			maxLine = -(maxLine + 1)
		}
		maxLine %= 2000
		if split < 0 {
			split = -(split + 1)
		}
		split %= len(in) + 1
		c := NewLineChecker(maxLine)
		_, _ = c.Write(in[:split])
		_, _ = c.Write(in[split:])
		checkErr := c.Err()

		// Complete lines get just the end line; otherwise the last line
		// is ended first, which changes its length but not its verdict on
		// bare line endings.
		complete := len(in) == 0 || bytes.HasSuffix(in, []byte("\r\n"))
		wire := append([]byte(nil), in...)
		if !complete {
			wire = append(wire, "\r\n"...)
		}
		wire = append(wire, ".\r\n"...)
		_, dataErr := io.ReadAll(NewDataReader(NewReader(bytes.NewReader(wire), 4096), 0, maxLine, 0))
		if dataErr == io.EOF {
			dataErr = nil
		}
		if (checkErr == ErrBareLineEnding) != (dataErr == ErrBareLineEnding) {
			t.Fatalf("LineChecker %v, DataReader %v", checkErr, dataErr)
		}
		if complete && checkErr != dataErr {
			t.Fatalf("LineChecker %v, DataReader %v", checkErr, dataErr)
		}
	})
}
