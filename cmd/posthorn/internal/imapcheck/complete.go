package imapcheck

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// noExpungeIssued are the commands that may fail with NO [EXPUNGEISSUED]
// when a message they name was expunged by another session: RFC 9051 7.1
// (EXPUNGEISSUED) and 6.4.5 let a server answer a FETCH of an expunged
// message with NO, and the same holds for STORE, COPY, MOVE and SEARCH.
// Posthorn answers OK [EXPUNGEISSUED] instead, but NO is accepted and
// counted. Every other NO is unexpected: the driver never asks for
// anything the RFCs let the server refuse.
var noExpungeIssued = map[string]bool{
	"FETCH": true, "UID FETCH": true, "STORE": true, "UID STORE": true,
	"COPY": true, "UID COPY": true, "MOVE": true, "UID MOVE": true,
	"SEARCH": true, "UID SEARCH": true,
}

// end takes a command's completion and runs the checks that need all of
// its responses.
func (c *client) end(cmd *command, r *response) {
	cmd.tagged = r
	ok := r.kind == "OK"
	if cmd.write != nil {
		c.m.finishWrite(cmd.write, r.stamp, ok)
	}
	switch r.kind {
	case "OK":
	case "NO":
		if expungeIssued(r) && noExpungeIssued[cmd.name] {
			c.m.expectedReply()
		} else {
			c.m.unexpectedReply(fmt.Sprintf("client %d: %q: %q", c.id, cmd.line(), r.line))
		}
	case "BAD":
		c.report(r, "BAD for a well-formed command")
	default:
		c.report(r, "completion %s is not OK, NO or BAD", r.kind)
	}
	switch cmd.name {
	case "SELECT", "EXAMINE":
		c.endSelect(cmd, r)
	}
	if !ok {
		return
	}
	if expungeIssued(r) {
		c.noteExpungeIssued(cmd, r)
	}
	switch cmd.name {
	case "APPEND":
		c.endAppend(cmd, r)
	case "STORE", "UID STORE":
		c.endStore(cmd, r)
	case "FETCH", "UID FETCH":
		c.endFetch(cmd, r)
	case "SEARCH", "UID SEARCH":
		c.endSearch(cmd, r)
	case "COPY", "UID COPY":
		if r.code == "COPYUID" {
			c.onCopyUID(r)
		}
	case "MOVE", "UID MOVE":
		for _, uid := range cmd.copied {
			if c.view.slotOf(uid) >= 0 {
				c.report(r, "MOVE completed but UID %d, moved, is still in the mailbox: no EXPUNGE (RFC 6851 3.3)", uid)
			}
		}
	case "EXPUNGE", "UID EXPUNGE":
		c.endExpunge(cmd, r)
	case "NOOP", "CHECK":
		c.checkCaughtUp(cmd, r, cmd.start)
	case "IDLE":
		c.checkCaughtUp(cmd, r, cmd.idleDone)
	}
}

func (c *client) endSelect(cmd *command, r *response) {
	sel := cmd.sel
	if r.kind != "OK" {
		// RFC 9051 6.3.2: a failed SELECT leaves no mailbox selected.
		c.view = nil
		return
	}
	if sel.hadView && !sel.closed {
		c.report(r, "SELECT of another mailbox without OK [CLOSED] (RFC 9051 6.3.2)")
		cmd.sel.hadView = false
		c.view = newView(cmd)
		c.view.slots = make([]slot, sel.lastExists)
	}
	if !sel.validity {
		c.report(r, "SELECT without OK [UIDVALIDITY] (RFC 9051 6.3.2)")
	}
	want := "READ-WRITE"
	if sel.readOnly {
		want = "READ-ONLY"
	}
	if r.code != want {
		c.report(r, "%s completed with [%s], not [%s] (RFC 9051 6.3.2, 6.3.3)", cmd.name, r.code, want)
	}
}

func (c *client) endAppend(cmd *command, r *response) {
	if r.code != "APPENDUID" {
		c.report(r, "APPEND OK without APPENDUID (RFC 4315 3)")
		return
	}
	f := strings.Fields(r.args)
	var validity, uid uint64
	var err error
	if len(f) == 2 {
		if validity, err = strconv.ParseUint(f[0], 10, 32); err == nil {
			uid, err = strconv.ParseUint(f[1], 10, 32)
		}
	}
	if len(f) != 2 || err != nil || uid == 0 {
		c.report(r, "APPENDUID does not parse")
		return
	}
	if p := c.m.checkUIDValidity(cmd.dest, uint32(validity)); p != "" {
		c.report(r, "%s", p)
	}
	if uint32(uid) <= cmd.destMax {
		c.report(r, "APPENDUID gives UID %d, not above UID %d already seen in %s (RFC 9051 2.3.1.1)", uid, cmd.destMax, cmd.dest)
	}
	by := fmt.Sprintf("client %d %q", c.id, cmd.line())
	if p := c.m.assign(cmd.dest, uint32(uid), cmd.token, by, &birth{val: cmd.appFlags, end: r.stamp}, cmd.start); p != "" {
		c.report(r, "%s", p)
	}
	c.appended++
}

func (c *client) endStore(cmd *command, r *response) {
	v := c.view
	for i := range v.slots {
		s := &v.slots[i]
		if s.uid == 0 || !slices.Contains(cmd.targets, s.uid) {
			continue
		}
		switch {
		case cmd.silent && s.flagsKnown && !cmd.flagsSeen[s.uid]:
			// .SILENT: the client applies its change itself. FLAGS the
			// server sent meanwhile (for another session's change) are
			// taken as the state after this STORE.
			s.flags = s.flags.apply(cmd.op, cmd.opFlags)
		case !cmd.silent && !cmd.flagsSeen[s.uid] && !expungeIssued(r):
			c.report(r, "STORE without .SILENT returned no FLAGS for UID %d (RFC 9051 6.4.6)", s.uid)
		}
	}
}

func (c *client) endFetch(cmd *command, r *response) {
	if expungeIssued(r) {
		return
	}
	var need uint8
	if cmd.wantFlags {
		need |= gotFlags
	}
	if cmd.wantBody {
		need |= gotBody
	}
	if strings.HasPrefix(cmd.name, "UID ") {
		need |= gotUID // RFC 9051 6.4.9: UID FETCH always returns UID
		targets := cmd.targets
		if cmd.everything {
			targets = nil
			for i, s := range c.view.slots {
				if s.uid == 0 {
					c.report(r, "UID FETCH 1:* did not return message %d", i+1)
					continue
				}
				targets = append(targets, s.uid)
			}
		}
		for _, uid := range targets {
			if c.view.slotOf(uid) >= 0 && cmd.returned[uid]&need != need {
				c.report(r, "UID FETCH did not return all it asked for UID %d", uid)
			}
		}
		return
	}
	for _, n := range cmd.seqs {
		if cmd.returned[n]&need != need {
			c.report(r, "FETCH did not return all it asked for message %d", n)
		}
	}
}

func (c *client) endSearch(cmd *command, r *response) {
	sc := cmd.search
	if expungeIssued(r) {
		return
	}
	if !sc.got {
		// RFC 9051 6.4.4 and 7.3.4 (ESEARCH, always sent), RFC 3501 7.2.5
		// (SEARCH, also when nothing matched).
		c.report(r, "SEARCH completed without a search result")
		return
	}
	if sc.hasCount && int(sc.count) != len(sc.result) {
		c.report(r, "ESEARCH COUNT %d but ALL lists %d", sc.count, len(sc.result))
	}
	folder := c.view.folder
	for i, s := range sc.snapshot {
		matched := sc.result[uint32(i+1)]
		if sc.uid {
			if s.uid == 0 {
				continue
			}
			matched = sc.result[s.uid]
		}
		switch {
		case sc.bit != 0 && s.uid != 0:
			var val flagSet
			if matched == sc.positive {
				val = sc.bit
			}
			for _, p := range c.m.checkRead(folder, s.uid, sc.bit, val, cmd.start, sc.stamp) {
				c.report(r, "%s: %s", p, map[bool]string{true: "matched", false: "did not match"}[matched])
			}
		case sc.all && !matched:
			c.report(r, "SEARCH ALL left out message %d (UID %d)", i+1, s.uid)
		case sc.token != "" && s.uid != 0:
			if t := c.m.tokenOf(folder, s.uid); t != "" && (t == sc.token) != matched {
				c.report(r, "SEARCH HEADER %s %s: message %d (UID %d, token %s) matched: %v", tokenHeader, sc.token, i+1, s.uid, t, matched)
			}
		}
	}
}

// endExpunge: a message whose \Deleted was set before EXPUNGE began and
// not touched until it completed is gone (RFC 9051 6.4.3; UID EXPUNGE
// only among its UIDs, RFC 4315 2.1).
func (c *client) endExpunge(cmd *command, r *response) {
	v := c.view
	for _, s := range v.slots {
		if s.uid == 0 || (cmd.name == "UID EXPUNGE" && !slices.Contains(cmd.targets, s.uid)) {
			continue
		}
		mask, val, why := c.m.settled(v.folder, s.uid, cmd.start, r.stamp)
		if mask.has(flagDeleted) && val.has(flagDeleted) {
			c.report(r, "UID %d still in the mailbox after %s, but \\Deleted was set %s before it began", s.uid, cmd.name, why[flagDeleted])
		}
	}
}

// checkCaughtUp: after NOOP, CHECK or IDLE the client knows every change
// completed before since: expunges (RFC 9051 5.2: size changes MUST be
// sent) and flag changes (RFC 9051 5.2: SHOULD be sent; this checker holds
// the server to it, as clients without CONDSTORE rely on it).
func (c *client) checkCaughtUp(cmd *command, r *response, since uint64) {
	v := c.view
	if v == nil || since == 0 {
		return
	}
	for i, s := range v.slots {
		if s.uid == 0 {
			continue
		}
		if at, ok := c.m.expungedBefore(v.folder, s.uid, since); ok {
			c.report(r, "message %d (UID %d) was expunged (read at %d) before %s began and is still there after it (RFC 9051 5.2)", i+1, s.uid, at, cmd.name)
			continue
		}
		if !s.flagsKnown {
			continue
		}
		mask, val, why := c.m.settled(v.folder, s.uid, since, r.stamp)
		diff := (s.flags ^ val) & mask
		diff.each(func(bit flagSet) {
			c.report(r, "after %s the client has %s %s on UID %d, but it was %s %s, before %s began, and the server never said so (RFC 9051 5.2)",
				cmd.name, flagName(bit), setOrNot(s.flags.has(bit)), s.uid, setOrNot(val.has(bit)), why[bit], cmd.name)
		})
	}
}

// noteExpungeIssued: a FETCH or STORE (without .SILENT) that completes
// with [EXPUNGEISSUED] and leaves out a message it named says that message
// is expunged (RFC 9051 7.1: "Someone else has issued an EXPUNGE for the
// same mailbox. The client may want to issue NOOP soon."). It is recorded
// as expunged then, so the next NOOP, CHECK or IDLE must report it.
func (c *client) noteExpungeIssued(cmd *command, r *response) {
	v := c.view
	var gone []uint32
	switch cmd.name {
	case "FETCH":
		for _, n := range cmd.seqs {
			if cmd.returned[n] == 0 && int(n) <= len(v.slots) && v.slots[n-1].uid != 0 {
				gone = append(gone, v.slots[n-1].uid)
			}
		}
	case "UID FETCH":
		for _, uid := range cmd.targets {
			if cmd.returned[uid] == 0 && v.slotOf(uid) >= 0 {
				gone = append(gone, uid)
			}
		}
	case "STORE", "UID STORE":
		if cmd.silent {
			return
		}
		for _, uid := range cmd.targets {
			if !cmd.flagsSeen[uid] && v.slotOf(uid) >= 0 {
				gone = append(gone, uid)
			}
		}
	}
	for _, uid := range gone {
		c.m.markExpunged(v.folder, uid, r.stamp)
	}
}
