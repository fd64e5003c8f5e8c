package server

import (
	"encoding/base32"
	"encoding/binary"
	"sync"
	"time"
)

// queueIDEncoding keeps IDs sortable: base32hex preserves byte order.
var queueIDEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// NewQueueIDGenerator returns a generator of queue IDs that are unique within
// the process and, across restarts, as long as the clock does not run back by
// more than the gap between restarts: each ID is the current time in
// microseconds, bumped to one past the previous ID when two would collide.
// IDs sort by time (13 characters of base32hex), as Postfix's long queue IDs do.
func NewQueueIDGenerator(now func() time.Time) func() string {
	var mu sync.Mutex
	var last uint64
	return func() string {
		mu.Lock()
		v := uint64(now().UnixMicro())
		if v <= last {
			v = last + 1
		}
		last = v
		mu.Unlock()
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], v)
		return queueIDEncoding.EncodeToString(b[:])
	}
}
