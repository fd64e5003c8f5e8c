package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
)

// benchMessage is a 4 KiB message of 78-character lines, some with a
// leading dot.
var benchMessage = func() string {
	var b strings.Builder
	b.WriteString("From: bob@example.org\r\nTo: alice@example.org\r\nSubject: benchmark\r\n\r\n")
	for i := 0; b.Len() < 4096; i++ {
		if i%10 == 0 {
			b.WriteString(".")
		}
		b.WriteString(strings.Repeat("x", 76) + "\r\n")
	}
	return b.String()
}()

// BenchmarkRETR measures messages served to one client over loopback,
// RETR by RETR (lockstep) and in pipelined batches of 16. The peer to beat
// is Dovecot's 4,042 msg/s to one client (docs: DESIGN.md).
func BenchmarkRETR(b *testing.B) {
	for _, batch := range []int{1, 16} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			be := newFakeBackend()
			for range 256 {
				be.deliver("bob@example.org", benchMessage)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := New(Config{Backend: be, Auth: be.credentials()})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { srv.Serve(ctx, ln); close(done) }()
			defer func() { cancel(); <-done }()

			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReaderSize(c, 64<<10)
			bw := bufio.NewWriter(c)
			fmt.Fprintf(bw, "USER bob@example.org\r\nPASS secret\r\n")
			bw.Flush()
			for range 3 {
				br.ReadString('\n')
			}
			b.SetBytes(int64(len(benchMessage)))
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				n := min(batch, b.N-i)
				for j := range n {
					fmt.Fprintf(bw, "RETR %d\r\n", (i+j)%256+1)
				}
				bw.Flush()
				for range n {
					if err := readMultiline(br); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}

// readMultiline reads one +OK line and the body up to its "." line.
func readMultiline(br *bufio.Reader) error {
	l, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(l), "+OK") {
		return fmt.Errorf("got %q", l)
	}
	for {
		l, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(l) == 3 && l[0] == '.' {
			return nil
		}
	}
}
