//go:build failpoint

package failpoint

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Enabled reports whether this binary was built with failpoints.
const Enabled = true

type point struct {
	nth    int64 // fire on this hit only; 0 means every hit
	action string
	sleep  time.Duration
	hits   atomic.Int64
}

var (
	loadOnce sync.Once
	points   map[string]*point
)

func load() {
	points = map[string]*point{}
	spec := os.Getenv("POSTHORN_FAILPOINTS")
	if spec == "" {
		return
	}
	p, err := parse(spec)
	if err != nil {
		// A test that asked for a fault and silently got none would pass
		// for the wrong reason.
		fmt.Fprintln(os.Stderr, "POSTHORN_FAILPOINTS:", err)
		os.Exit(2)
	}
	points = p
}

// parse reads a POSTHORN_FAILPOINTS value (see the package comment).
func parse(spec string) (map[string]*point, error) {
	out := map[string]*point{}
	for _, entry := range strings.Split(spec, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, action, ok := strings.Cut(entry, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: want name=action", entry)
		}
		p := &point{}
		if n, rest, ok := strings.Cut(action, "*"); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil || v < 1 {
				return nil, fmt.Errorf("%q: bad count %q", entry, n)
			}
			p.nth, action = v, rest
		}
		switch {
		case action == "kill", action == "error":
		case strings.HasPrefix(action, "sleep(") && strings.HasSuffix(action, ")"):
			d, err := time.ParseDuration(action[len("sleep(") : len(action)-1])
			if err != nil {
				return nil, fmt.Errorf("%q: %v", entry, err)
			}
			p.sleep, action = d, "sleep"
		default:
			return nil, fmt.Errorf("%q: unknown action %q", entry, action)
		}
		p.action = action
		out[name] = p
	}
	return out, nil
}

// Inject runs the action configured for name, if any.
func Inject(name string) error {
	loadOnce.Do(load)
	p := points[name]
	if p == nil {
		return nil
	}
	if hit := p.hits.Add(1); p.nth != 0 && hit != p.nth {
		return nil
	}
	switch p.action {
	case "kill":
		// Say where, so a test's log shows the crash was the one asked for.
		fmt.Fprintf(os.Stderr, "failpoint %s: kill\n", name)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way; never run past the point
	case "sleep":
		time.Sleep(p.sleep)
	case "error":
		fmt.Fprintf(os.Stderr, "failpoint %s: error\n", name)
		return ErrInjected
	}
	return nil
}

// Now is the queue's clock. In a failpoint build it runs ahead of the real
// time by the duration written in the file named by POSTHORN_CLOCK_FILE
// (for example "4h1m"; a missing or empty file means no offset), read
// afresh at each call, so a test can move the queue's time forward while
// the server runs: the 4-hour warning and the 5-day bounce with their real
// defaults, in seconds.
func Now() time.Time {
	now := time.Now()
	name := os.Getenv("POSTHORN_CLOCK_FILE")
	if name == "" {
		return now
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return now
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return now
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "POSTHORN_CLOCK_FILE:", err)
		os.Exit(2)
	}
	return now.Add(d)
}

// Listener wraps ln so that, when POSTHORN_LOOPBACK_AS names an address
// (say 192.0.2.10, from TEST-NET-1), connections from 127.0.0.0/8 report
// that address as their remote end. Tests, which must stay on loopback,
// then see what a remote client sees: plaintext logins refused before TLS
// (loopback is always trusted with them). The packets stay on loopback.
func Listener(ln net.Listener) net.Listener {
	as := net.ParseIP(os.Getenv("POSTHORN_LOOPBACK_AS"))
	if as == nil {
		return ln
	}
	return remoteListener{ln, as}
}

type remoteListener struct {
	net.Listener
	as net.IP
}

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok && a.IP.IsLoopback() {
		return remoteConn{c, &net.TCPAddr{IP: l.as, Port: a.Port}}, nil
	}
	return c, nil
}

type remoteConn struct {
	net.Conn
	remote net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.remote }
