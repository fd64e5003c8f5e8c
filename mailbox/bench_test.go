package mailbox

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAppend measures durable appends of 4 KiB messages to one account
// (fsync on unless the name says nosync): one writer at a time, and 50
// concurrent writers sharing fsyncs through the group committer. The
// msgs/s metric is the figure to compare with the disk's fsync rate.
// "slowdisk" turns fsync off and sleeps 1/340 s after every commit, in the
// committer, to model the ~340 fsyncs/s disk of DESIGN.md on a machine
// whose disk is faster (or busier and noisier) than that.
//
//	go test -run '^$' -bench Append -benchtime 2000x ./mailbox/
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name    string
		writers int
		noSync  bool
		slow    bool
	}{
		{"sequential", 1, false, false},
		{"concurrent50", 50, false, false},
		{"sequential-nosync", 1, true, false},
		{"concurrent50-nosync", 50, true, false},
		{"sequential-slowdisk", 1, true, true},
		{"concurrent50-slowdisk", 50, true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := Options{PBKDF2Iterations: 1000, NoSync: bc.noSync}
			if bc.slow {
				opts.afterCommit = func() { time.Sleep(time.Second / 340) }
			}
			s, err := Open(filepath.Join(b.TempDir(), "data"), opts)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if err := s.AddUser("bench@example.org", "pw"); err != nil {
				b.Fatal(err)
			}
			a, err := s.Account("bench@example.org")
			if err != nil {
				b.Fatal(err)
			}
			raw := bytes.Repeat([]byte("0123456789abcdef"), 256) // 4 KiB
			ctx := context.Background()
			date := time.Now()
			var left atomic.Int64
			left.Store(int64(b.N))
			b.SetBytes(int64(len(raw)))
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range bc.writers {
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						if _, err := a.Append(ctx, "INBOX", raw, nil, date); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
