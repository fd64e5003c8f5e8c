package imapcheck

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// client is one IMAP session and what the server has told it.
type client struct {
	id      int
	m       *model
	conn    net.Conn
	bw      *bufio.Writer
	resps   chan readResult
	rng     *rand.Rand
	timeout time.Duration
	folders []string
	target  int // folder size the driver steers towards

	tagN      int
	rev2      bool
	view      *view
	cur       *command
	lastStart uint64 // start stamp of the last command
	ops       map[string]int
	appendN   int
	appended  int   // APPENDs completed with APPENDUID
	bodies    int   // BODY[] responses checked
	err       error // the session is broken; the client stops
	trace     func(format string, args ...any)
}

type readResult struct {
	r   *response
	err error
}

// view is the selected mailbox as this client knows it (RFC 9051
// 2.3.1.2): slot n-1 is message sequence number n. It grows only by
// EXISTS and shrinks only by EXPUNGE.
type view struct {
	folder      string
	readOnly    bool
	born        uint64 // start of the SELECT
	slots       []slot
	uidValidity uint32
	uidNext     uint32
}

type slot struct {
	uid        uint32  // 0 until a FETCH tells it
	born       uint64  // start of the command whose EXISTS created the slot
	flags      flagSet // tracked: the last FLAGS the server sent, or own .SILENT changes
	flagsKnown bool
	initial    bool // announced by the SELECT that made the view
}

// command is one command in progress and what it needs to check its
// responses.
type command struct {
	kind    string // for the report: "UID STORE"
	name    string // as sent, upper case: "UID STORE"
	args    string
	literal []byte
	litPlus bool          // LITERAL+ (RFC 7888)
	idleFor time.Duration // IDLE: time before DONE
	// idleDone is when DONE was sent: every change completed before it
	// must have been reported when IDLE completes.
	idleDone uint64

	tag   string
	start uint64
	// noExpunge: FETCH, STORE, SEARCH, during which the server must not
	// send EXPUNGE (RFC 9051 7.5.1).
	noExpunge bool
	folder    string

	// STORE and FETCH BODY[] (which sets \Seen): the flags written.
	write   *flagWrite
	targets []uint32 // UIDs the command names (the selected folder's)
	silent  bool
	op      byte
	opFlags flagSet
	// flagsSeen: UIDs whose FLAGS the server sent during the command.
	flagsSeen map[uint32]bool

	// FETCH: what was asked, and which messages came back.
	wantFlags, wantBody bool
	// anyBody: the set ends in "*", so BODY[] of messages the client did
	// not know when it sent the command may come. everything: the set is
	// 1:*, so every message must come back.
	anyBody, everything bool
	seqs                []uint32
	returned            map[uint32]uint8 // by UID (UID FETCH) or sequence number: got* bits

	search *searchCheck
	sel    *selectCheck
	// APPEND, COPY, MOVE: the highest UID seen in the destination before.
	destMax  uint32
	dest     string
	token    string
	appFlags flagSet
	copied   []uint32 // MOVE: source UIDs named by COPYUID

	tagged *response
}

// line is the command as sent, without its literal, for messages.
func (cmd *command) line() string {
	s := cmd.tag + " " + cmd.name
	if cmd.args != "" {
		s += " " + cmd.args
	}
	if cmd.literal != nil {
		s += fmt.Sprintf(" {%d}", len(cmd.literal))
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// dial connects and logs in.
func dial(id int, m *model, cfg *Config, rev2 bool) (*client, error) {
	conn, err := net.DialTimeout("tcp", cfg.Addr, cfg.ResponseTimeout)
	if err != nil {
		return nil, err
	}
	c := newClient(id, m, cfg, conn)
	c.rev2 = rev2
	greeting, err := c.next()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if greeting.tag != "*" || greeting.kind != "OK" {
		conn.Close()
		return nil, fmt.Errorf("greeting %q", greeting.line)
	}
	if err := c.simple("LOGIN", quote(cfg.User)+" "+quote(cfg.Password)); err != nil {
		c.close()
		return nil, err
	}
	if rev2 {
		if err := c.simple("ENABLE", "IMAP4rev2"); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

func newClient(id int, m *model, cfg *Config, conn net.Conn) *client {
	c := &client{
		id: id, m: m, conn: conn, bw: bufio.NewWriter(conn),
		resps:   make(chan readResult, 64),
		rng:     rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(id))),
		timeout: cfg.ResponseTimeout, folders: cfg.Folders, target: cfg.FolderTarget,
		ops: map[string]int{}, trace: cfg.trace,
	}
	go c.readLoop(bufio.NewReaderSize(conn, 64<<10))
	return c
}

// readLoop reads responses until the connection fails.
func (c *client) readLoop(br *bufio.Reader) {
	defer close(c.resps)
	for {
		raw, err := readRaw(br)
		if err != nil {
			c.resps <- readResult{err: err}
			return
		}
		stamp := c.m.now()
		r, err := parseResponse(raw)
		if err != nil {
			c.resps <- readResult{err: fmt.Errorf("%w: %q", err, printable(raw))}
			return
		}
		r.stamp = stamp
		if c.trace != nil {
			c.trace("%d %d S: %s", c.id, stamp, r.line)
		}
		c.resps <- readResult{r: r}
	}
}

// close logs out (best effort) and releases the connection.
func (c *client) close() {
	if c.err == nil {
		c.conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c.bw, "z LOGOUT\r\n")
		c.bw.Flush()
	}
	c.conn.Close()
	for range c.resps {
	}
}

// next waits for the next response.
func (c *client) next() (*response, error) {
	t := time.NewTimer(c.timeout)
	defer t.Stop()
	select {
	case rr, ok := <-c.resps:
		if !ok {
			return nil, io.ErrUnexpectedEOF
		}
		return rr.r, rr.err
	case <-t.C:
		return nil, fmt.Errorf("no response within %v", c.timeout)
	}
}

// simple runs a command that must succeed (setup).
func (c *client) simple(name, args string) error {
	cmd := &command{kind: name, name: name, args: args}
	if err := c.exec(cmd); err != nil {
		return err
	}
	if cmd.tagged.kind != "OK" {
		return fmt.Errorf("%s: %s", cmd.line(), cmd.tagged.line)
	}
	return nil
}

// report records a contradiction with its context.
func (c *client) report(r *response, format string, args ...any) {
	where := "(between commands)"
	if c.cur != nil {
		where = strconv.Quote(c.cur.line())
	}
	line := ""
	if r != nil {
		line = " " + strconv.Quote(r.line)
	}
	c.m.contradiction(fmt.Sprintf("client %d: %s:%s: %s", c.id, where, line, fmt.Sprintf(format, args...)))
}

// exec sends a command and handles every response up to its completion.
// Only a broken session is an error; the completion is in cmd.tagged.
func (c *client) exec(cmd *command) error {
	if c.err != nil {
		return c.err
	}
	err := c.run(cmd)
	if err != nil {
		c.err = fmt.Errorf("client %d: %s: %w", c.id, cmd.line(), err)
		if cmd.write != nil {
			c.m.finishWrite(cmd.write, inFlight, false)
		}
	}
	c.cur = nil
	return c.err
}

func (c *client) run(cmd *command) error {
	// RFC 9051 7.5.1: no EXPUNGE while no command is in progress. Other
	// data sent between commands is taken as part of the last one.
	for len(c.resps) > 0 {
		r, err := c.next()
		if err != nil {
			return err
		}
		c.cur = &command{name: "(none)", start: c.lastStart, flagsSeen: map[uint32]bool{}, returned: map[uint32]uint8{}}
		if r.kind == "EXPUNGE" {
			c.report(r, "EXPUNGE sent while no command was in progress (RFC 9051 7.5.1)")
		}
		c.handle(r)
	}
	c.tagN++
	cmd.tag = fmt.Sprintf("c%d.%d", c.id, c.tagN)
	cmd.flagsSeen = map[uint32]bool{}
	cmd.returned = map[uint32]uint8{}
	cmd.start = c.m.now()
	c.lastStart = cmd.start
	c.cur = cmd
	c.begin(cmd)
	c.m.commands.Add(1)
	c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	line := cmd.tag + " " + cmd.name
	if cmd.args != "" {
		line += " " + cmd.args
	}
	if c.trace != nil {
		c.trace("%d %d C: %s", c.id, cmd.start, cmd.line())
	}
	switch {
	case cmd.literal != nil && cmd.litPlus:
		fmt.Fprintf(c.bw, "%s {%d+}\r\n%s\r\n", line, len(cmd.literal), cmd.literal)
	case cmd.literal != nil:
		fmt.Fprintf(c.bw, "%s {%d}\r\n", line, len(cmd.literal))
		if err := c.bw.Flush(); err != nil {
			return err
		}
		// RFC 9051 7.6: wait for the continuation request.
		r, err := c.await(cmd)
		if err != nil {
			return err
		}
		if r.tag != "+" {
			c.end(cmd, r)
			return nil
		}
		fmt.Fprintf(c.bw, "%s\r\n", cmd.literal)
	default:
		fmt.Fprintf(c.bw, "%s\r\n", line)
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	if cmd.name == "IDLE" {
		r, err := c.idle(cmd)
		if err != nil {
			return err
		}
		if r != nil {
			c.end(cmd, r)
			return nil
		}
	}
	for {
		r, err := c.await(cmd)
		if err != nil {
			return err
		}
		if r.tag == "+" {
			c.report(r, "unexpected continuation request")
			continue
		}
		c.end(cmd, r)
		return nil
	}
}

// await handles untagged responses until the command's completion or a
// continuation request, which it returns.
func (c *client) await(cmd *command) (*response, error) {
	for {
		r, err := c.next()
		if err != nil {
			return nil, err
		}
		switch r.tag {
		case cmd.tag, "+":
			return r, nil
		case "*":
			c.handle(r)
			if r.kind == "BYE" {
				return nil, fmt.Errorf("server said %q", r.line)
			}
		default:
			return nil, fmt.Errorf("completion with a tag never sent: %q", r.line)
		}
	}
}

// idle waits for "+ idling", takes updates for cmd.idleFor, then sends
// DONE (RFC 2177 3). A completion before DONE is returned.
func (c *client) idle(cmd *command) (*response, error) {
	r, err := c.await(cmd)
	if err != nil || r.tag != "+" {
		return r, err
	}
	t := time.NewTimer(cmd.idleFor)
	defer t.Stop()
	for {
		select {
		case rr, ok := <-c.resps:
			if !ok {
				return nil, io.ErrUnexpectedEOF
			}
			if rr.err != nil {
				return nil, rr.err
			}
			switch rr.r.tag {
			case "*":
				c.handle(rr.r)
			case cmd.tag:
				c.report(rr.r, "IDLE completed before DONE")
				return rr.r, nil
			default:
				return nil, fmt.Errorf("unexpected during IDLE: %q", rr.r.line)
			}
		case <-t.C:
			cmd.idleDone = c.m.now()
			if c.trace != nil {
				c.trace("%d %d C: DONE", c.id, cmd.idleDone)
			}
			c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
			fmt.Fprintf(c.bw, "DONE\r\n")
			return nil, c.bw.Flush()
		}
	}
}

// quote writes an IMAP quoted string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// expungeIssued reports whether a completion says messages were expunged
// meanwhile (RFC 9051 7.1 EXPUNGEISSUED).
func expungeIssued(r *response) bool { return r.code == "EXPUNGEISSUED" }

// knownUIDs lists the view's UIDs, false if some are not known.
func (v *view) knownUIDs() ([]uint32, bool) {
	out := make([]uint32, 0, len(v.slots))
	for _, s := range v.slots {
		if s.uid == 0 {
			return out, false
		}
		out = append(out, s.uid)
	}
	return out, true
}

// slotOf returns the index of uid in the view, -1 if absent.
func (v *view) slotOf(uid uint32) int {
	for i, s := range v.slots {
		if s.uid == uid {
			return i
		}
	}
	return -1
}

// complete reports whether every slot's UID and flags are known.
func (v *view) complete() bool {
	return !slices.ContainsFunc(v.slots, func(s slot) bool { return s.uid == 0 || !s.flagsKnown })
}
