//go:build !failpoint

package failpoint

import (
	"net"
	"time"
)

// Enabled reports whether this binary was built with failpoints.
const Enabled = false

// Inject does nothing in a normal build.
func Inject(name string) error { return nil }

// Now is the queue's clock: the real time in a normal build.
func Now() time.Time { return time.Now() }

// Listener returns ln: only a failpoint build can disguise loopback.
func Listener(ln net.Listener) net.Listener { return ln }
