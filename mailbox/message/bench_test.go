package message

import "testing"

func BenchmarkParseHostile(b *testing.B) {
	for name, gen := range hostile() {
		raw := gen()
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				Parse(raw)
			}
		})
	}
}

func BenchmarkParseForward(b *testing.B) {
	raw := load(b, "forward.eml")
	b.ReportAllocs()
	for b.Loop() {
		Parse(raw)
	}
}

func BenchmarkDecodeForward(b *testing.B) {
	blob := ParseBlob(load(b, "forward.eml"))
	b.ReportAllocs()
	for b.Loop() {
		Decode(blob)
	}
}
