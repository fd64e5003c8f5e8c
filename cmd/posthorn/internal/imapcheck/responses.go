package imapcheck

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// selectCheck is the state of a SELECT or EXAMINE in progress.
type selectCheck struct {
	readOnly   bool
	hadView    bool   // a mailbox was selected: OK [CLOSED] must come
	closed     bool   // OK [CLOSED] came
	maxUID     uint32 // highest UID seen in the folder before
	lastExists int
	counted    bool // the new mailbox's first EXISTS came
	validity   bool // OK [UIDVALIDITY] came
}

// searchCheck is what a SEARCH asked and what it got.
type searchCheck struct {
	uid      bool
	bit      flagSet // a flag key: FLAGGED (positive) or UNFLAGGED
	positive bool
	all      bool   // ALL
	token    string // HEADER X-Imapcheck-Token token
	got      bool
	stamp    uint64
	result   map[uint32]bool // sequence numbers or UIDs
	snapshot []slot          // the view when the result came
	count    uint32
	hasCount bool
	esearch  bool
}

// Items a FETCH response carried, per message (returned).
const (
	gotFlags = 1 << iota
	gotBody
	gotUID
)

func newView(cmd *command) *view {
	return &view{folder: cmd.folder, readOnly: cmd.sel.readOnly, born: cmd.start}
}

// begin registers a command's writes and takes its snapshots, just before
// it is sent.
func (c *client) begin(cmd *command) {
	if w := cmd.write; w != nil {
		w.start, w.end = cmd.start, inFlight
		w.desc = fmt.Sprintf("client %d %q", c.id, cmd.line())
		c.m.addWrite(cmd.folder, cmd.targets, w)
	}
	switch cmd.name {
	case "APPEND":
		cmd.destMax = c.m.maxUID(cmd.dest)
		c.m.registerAppend(cmd.token, cmd.literal)
	case "COPY", "UID COPY", "MOVE", "UID MOVE":
		cmd.destMax = c.m.maxUID(cmd.dest)
	case "SELECT", "EXAMINE":
		cmd.sel.maxUID = c.m.maxUID(cmd.folder)
		cmd.sel.hadView = c.view != nil
		if c.view == nil {
			c.view = newView(cmd)
		}
	}
}

// handle takes one untagged response.
func (c *client) handle(r *response) {
	switch r.kind {
	case "EXISTS":
		c.onExists(r)
	case "EXPUNGE":
		c.onExpunge(r)
	case "FETCH":
		c.onFetch(r)
	case "SEARCH", "ESEARCH":
		c.onSearch(r)
	case "OK":
		c.onCode(r)
	case "NO", "BAD":
		c.m.unexpectedReply(fmt.Sprintf("client %d: %q: untagged %q", c.id, c.cur.line(), r.line))
	case "BYE":
		c.report(r, "unexpected BYE")
	}
}

func (c *client) onExists(r *response) {
	v := c.view
	if v == nil {
		c.report(r, "EXISTS with no mailbox selected")
		return
	}
	n := int(r.num)
	if sel := c.cur.sel; sel != nil {
		sel.lastExists = n
	}
	if n < len(v.slots) {
		c.report(r, "EXISTS %d after %d: the message count must not shrink (RFC 9051 7.4.1)", n, len(v.slots))
		return
	}
	if n > maxSetSize {
		c.report(r, "EXISTS %d is beyond any mailbox this test makes", n)
		return
	}
	// The messages a SELECT announces in its first EXISTS must all be
	// below its UIDNEXT; a later EXISTS reports messages that came since.
	initial := false
	if sel := c.cur.sel; sel != nil && v.born == c.cur.start {
		initial = !sel.counted
		sel.counted = true
	}
	for len(v.slots) < n {
		v.slots = append(v.slots, slot{born: c.cur.start, initial: initial})
	}
	c.m.setSize(v.folder, n)
}

func (c *client) onExpunge(r *response) {
	v := c.view
	if v == nil {
		c.report(r, "EXPUNGE with no mailbox selected")
		return
	}
	if c.cur.noExpunge {
		c.report(r, "EXPUNGE while responding to %s (RFC 9051 7.5.1)", c.cur.name)
	}
	n := int(r.num)
	if n < 1 || n > len(v.slots) {
		c.report(r, "EXPUNGE of message %d but the mailbox has %d messages", n, len(v.slots))
		return
	}
	s := v.slots[n-1]
	v.slots = slices.Delete(v.slots, n-1, n)
	if s.uid != 0 {
		c.m.markExpunged(v.folder, s.uid, r.stamp)
	}
	c.m.setSize(v.folder, len(v.slots))
}

func (c *client) onFetch(r *response) {
	v, cmd := c.view, c.cur
	if v == nil {
		c.report(r, "FETCH with no mailbox selected")
		return
	}
	n := int(r.num)
	if n < 1 || n > len(v.slots) {
		c.report(r, "FETCH for message %d but the mailbox has %d messages", n, len(v.slots))
		return
	}
	f := r.fetch
	sl := &v.slots[n-1]
	key := uint32(n)
	if strings.HasPrefix(cmd.name, "UID ") {
		key = sl.uid
		if f.hasUID {
			key = f.uid
		}
	}
	if key != 0 {
		got := cmd.returned[key]
		if f.hasFlags {
			got |= gotFlags
		}
		if f.hasBody {
			got |= gotBody
		}
		if f.hasUID {
			got |= gotUID
		}
		cmd.returned[key] = got
	}
	if f.hasUID && !c.learnUID(r, v, n-1, f.uid) {
		return
	}
	if f.hasFlags {
		c.onFlags(r, v, sl, f.flags)
	}
	if f.hasBody {
		c.onBody(r, v, n, sl.uid, f)
	}
}

// learnUID takes the UID the server gave for slot i; false if it
// contradicts what the client knows.
func (c *client) learnUID(r *response, v *view, i int, uid uint32) bool {
	sl := &v.slots[i]
	if sl.uid == uid {
		return true
	}
	if sl.uid != 0 {
		c.report(r, "message %d was UID %d and is now UID %d, with no EXPUNGE between (RFC 9051 2.3.1.1)", i+1, sl.uid, uid)
		return false
	}
	for j := i - 1; j >= 0; j-- {
		if u := v.slots[j].uid; u != 0 {
			if u >= uid {
				c.report(r, "UIDs do not ascend: message %d is UID %d, message %d is UID %d (RFC 9051 2.3.1.1)", j+1, u, i+1, uid)
				return false
			}
			break
		}
	}
	for j := i + 1; j < len(v.slots); j++ {
		if u := v.slots[j].uid; u != 0 {
			if u <= uid {
				c.report(r, "UIDs do not ascend: message %d is UID %d, message %d is UID %d (RFC 9051 2.3.1.1)", i+1, uid, j+1, u)
				return false
			}
			break
		}
	}
	if at, ok := c.m.expungedBefore(v.folder, uid, sl.born); ok {
		c.report(r, "UID %d was expunged (EXPUNGE read at %d) before the command that announced message %d began (at %d)", uid, at, i+1, sl.born)
	}
	if sl.initial && v.uidNext != 0 && uid >= v.uidNext {
		c.report(r, "UID %d is among the messages SELECT announced, but SELECT said UIDNEXT %d (RFC 9051 2.3.1.1)", uid, v.uidNext)
	}
	sl.uid = uid
	c.m.observeUID(v.folder, uid)
	return true
}

func (c *client) onFlags(r *response, v *view, sl *slot, list []string) {
	cmd := c.cur
	set, unknown := parseFlags(list)
	if len(unknown) > 0 {
		c.report(r, "FLAGS holds %q, which no client ever set", unknown)
	}
	if sl.uid != 0 {
		for _, p := range c.m.checkRead(v.folder, sl.uid, allFlags, set, cmd.start, r.stamp) {
			c.report(r, "%s", p)
		}
		// A STORE without .SILENT and FETCH BODY[] return the flags their
		// own change left (RFC 9051 6.4.6, 6.4.5).
		if cmd.write != nil && !cmd.silent && slices.Contains(cmd.targets, sl.uid) {
			for _, p := range c.m.checkOwnWrite(v.folder, sl.uid, cmd.write, set, r.stamp) {
				c.report(r, "%s", p)
			}
		}
		cmd.flagsSeen[sl.uid] = true
	}
	sl.flags, sl.flagsKnown = set, true
}

func (c *client) onBody(r *response, v *view, n int, uid uint32, f *fetchData) {
	cmd := c.cur
	asked := cmd.wantBody && (cmd.anyBody ||
		(strings.HasPrefix(cmd.name, "UID ") && uid != 0 && slices.Contains(cmd.targets, uid)) ||
		(!strings.HasPrefix(cmd.name, "UID ") && slices.Contains(cmd.seqs, uint32(n))))
	if !asked {
		c.report(r, "BODY[] of message %d (UID %d), which the command did not ask for", n, uid)
	}
	if f.bodyNil {
		c.report(r, "BODY[] is NIL")
		return
	}
	c.bodies++
	for _, p := range c.m.checkBody(v.folder, uid, f.body) {
		c.report(r, "%s", p)
	}
}

func (c *client) onSearch(r *response) {
	v, cmd := c.view, c.cur
	sc := cmd.search
	if sc == nil || v == nil {
		c.report(r, "search result in response to %s", cmd.name)
		return
	}
	if sc.got {
		c.report(r, "a second search result for one command")
	}
	sc.got, sc.stamp = true, r.stamp
	nums := r.search
	if r.kind == "ESEARCH" {
		e := r.esrch
		if e.tag != cmd.tag {
			c.report(r, "ESEARCH for tag %q (RFC 4731 3.1)", e.tag)
		}
		if e.uid != sc.uid {
			c.report(r, "ESEARCH UID indicator is %v for a UID SEARCH %v", e.uid, sc.uid)
		}
		nums = e.all
		sc.count, sc.hasCount = e.count, e.hasCount
	} else if sc.esearch {
		c.report(r, "SEARCH RETURN answered without ESEARCH (RFC 4731 3.1)")
	}
	sc.snapshot = slices.Clone(v.slots)
	sc.result = map[uint32]bool{}
	_, complete := v.knownUIDs()
	for _, n := range nums {
		switch {
		case !sc.uid && (n < 1 || int(n) > len(v.slots)):
			c.report(r, "SEARCH result %d but the mailbox has %d messages", n, len(v.slots))
		case sc.uid && complete && v.slotOf(n) < 0:
			c.report(r, "UID SEARCH result %d is not a UID of the mailbox", n)
		}
		sc.result[n] = true
	}
}

func (c *client) onCode(r *response) {
	cmd := c.cur
	switch r.code {
	case "CLOSED":
		sel := cmd.sel
		if sel == nil || !sel.hadView || sel.closed {
			c.report(r, "unexpected OK [CLOSED]")
			return
		}
		sel.closed = true
		c.view = newView(cmd)
	case "UIDVALIDITY":
		n, err := strconv.ParseUint(r.args, 10, 32)
		if cmd.sel == nil || err != nil {
			c.report(r, "unexpected UIDVALIDITY")
			return
		}
		cmd.sel.validity = true
		c.view.uidValidity = uint32(n)
		if p := c.m.checkUIDValidity(cmd.folder, uint32(n)); p != "" {
			c.report(r, "%s", p)
		}
	case "UIDNEXT":
		n, err := strconv.ParseUint(r.args, 10, 32)
		if cmd.sel == nil || err != nil {
			c.report(r, "unexpected UIDNEXT")
			return
		}
		if uint32(n) <= cmd.sel.maxUID {
			c.report(r, "UIDNEXT %d, but UID %d had been seen in %s before SELECT began (RFC 9051 2.3.1.1)", n, cmd.sel.maxUID, cmd.folder)
		}
		c.view.uidNext = uint32(n)
	case "COPYUID":
		if cmd.name != "MOVE" && cmd.name != "UID MOVE" {
			c.report(r, "untagged COPYUID in response to %s", cmd.name)
			return
		}
		c.onCopyUID(r)
	}
}

// onCopyUID checks COPYUID (RFC 4315 3) and records the new messages.
func (c *client) onCopyUID(r *response) {
	cmd := c.cur
	f := strings.Fields(r.args)
	if len(f) != 3 {
		c.report(r, "COPYUID needs three arguments")
		return
	}
	validity, err1 := strconv.ParseUint(f[0], 10, 32)
	src, err2 := ExpandSet(f[1])
	dst, err3 := ExpandSet(f[2])
	if err1 != nil || err2 != nil || err3 != nil {
		c.report(r, "COPYUID does not parse")
		return
	}
	if p := c.m.checkUIDValidity(cmd.dest, uint32(validity)); p != "" {
		c.report(r, "%s", p)
	}
	if len(src) != len(dst) {
		c.report(r, "COPYUID names %d source and %d destination UIDs", len(src), len(dst))
		return
	}
	for i := range src {
		if !slices.Contains(cmd.targets, src[i]) {
			c.report(r, "COPYUID names source UID %d, which the command did not name", src[i])
		}
		if i > 0 && dst[i] <= dst[i-1] {
			c.report(r, "COPYUID destination UIDs do not ascend")
		}
	}
	if dst[0] <= cmd.destMax {
		c.report(r, "COPYUID gives UID %d, not above UID %d already seen in %s (RFC 9051 2.3.1.1)", dst[0], cmd.destMax, cmd.dest)
	}
	by := fmt.Sprintf("client %d %q", c.id, cmd.line())
	for i := range src {
		token := c.m.tokenOf(cmd.folder, src[i])
		if p := c.m.assign(cmd.dest, dst[i], token, by, &birth{anyFlags: true, end: r.stamp}, cmd.start); p != "" {
			c.report(r, "%s", p)
		}
	}
	cmd.copied = src
}
