package netserve

import (
	"fmt"
	"io"
	"sync"
)

// Trace returns rw with its traffic copied to trace, one line per read or
// write ("C: " for the client's bytes, "S: " for the server's, each
// quoted), which is how transcripts are recorded; with a nil trace it
// returns rw itself. Never trace in production: it records passwords and
// mail.
func Trace(rw io.ReadWriter, trace io.Writer) io.ReadWriter {
	if trace == nil {
		return rw
	}
	return &traceConn{conn: rw, trace: trace}
}

// traceConn copies traffic to a trace writer, for recording transcripts.
type traceConn struct {
	conn  io.ReadWriter
	trace io.Writer
	mu    sync.Mutex
}

func (t *traceConn) Read(p []byte) (int, error) {
	n, err := t.conn.Read(p)
	if n > 0 {
		t.mu.Lock()
		fmt.Fprintf(t.trace, "C: %q\n", p[:n])
		t.mu.Unlock()
	}
	return n, err
}

func (t *traceConn) Write(p []byte) (int, error) {
	t.mu.Lock()
	fmt.Fprintf(t.trace, "S: %q\n", p)
	t.mu.Unlock()
	return t.conn.Write(p)
}
