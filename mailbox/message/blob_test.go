package message

import (
	"errors"
	"os"
	"reflect"
	"testing"
)

func TestBlobRoundTrip(t *testing.T) {
	files, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.IsDir() {
			continue
		}
		raw := load(t, f.Name())
		p := Parse(raw)
		blob := ParseBlob(raw)
		q, err := Decode(blob)
		if err != nil {
			t.Fatalf("%s: Decode: %v", f.Name(), err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Errorf("%s: round trip differs\n got %+v\nwant %+v", f.Name(), q, p)
		}
		if !reflect.DeepEqual(Load(blob, raw), p) || !reflect.DeepEqual(Load(nil, raw), p) {
			t.Errorf("%s: Load differs", f.Name())
		}
		// Every proper prefix of a blob is rejected, never a panic.
		for i := 0; i < len(blob); i++ {
			if _, err := Decode(blob[:i]); !errors.Is(err, ErrBadBlob) {
				t.Fatalf("%s: prefix %d accepted", f.Name(), i)
			}
		}
		if _, err := Decode(append(blob, 0)); !errors.Is(err, ErrBadBlob) {
			t.Errorf("%s: trailing octet accepted", f.Name())
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, b := range [][]byte{
		nil,
		{2},    // another version
		{1, 2}, // unknown flag bit
		{1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, // offset out of range
		{1, 0, 0, 0, 0, 0, 100}, // string longer than the blob
	} {
		if p, err := Decode(b); err == nil || p != nil {
			t.Errorf("Decode(%x) = %v, %v", b, p, err)
		}
	}
}
