package imapcheck

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// opWeights are the operations the driver picks from, with their weights
// (adjusted by pick for the mailbox's state).
var opWeights = []struct {
	kind   string
	weight int
}{
	{"APPEND", 10}, {"FETCH", 10}, {"UID FETCH", 6}, {"STORE", 8}, {"UID STORE", 6},
	{"SEARCH", 4}, {"UID SEARCH", 3}, {"EXPUNGE", 2}, {"UID EXPUNGE", 2},
	{"COPY", 2}, {"UID COPY", 1}, {"MOVE", 2}, {"UID MOVE", 1},
	{"NOOP", 4}, {"CHECK", 1}, {"SELECT", 2}, {"EXAMINE", 1}, {"IDLE", 2},
}

// OpKinds lists the operation kinds the driver runs (the keys of
// Report.Ops).
func OpKinds() []string {
	var out []string
	for _, o := range opWeights {
		out = append(out, o.kind)
	}
	return out
}

// loop runs random operations until the deadline or a broken session.
func (c *client) loop(until time.Time) {
	for c.err == nil && time.Now().Before(until) {
		c.step()
	}
}

// step runs one operation. Commands that name messages by sequence number
// need the UIDs of those messages (to know which messages they change), so
// messages the client has only heard of by EXISTS are fetched first.
func (c *client) step() {
	if c.view == nil {
		c.opSelect(false)
		return
	}
	if !c.view.complete() {
		c.fill()
		if c.err != nil || c.view == nil {
			return
		}
		if !c.view.complete() {
			// Expunged meanwhile; NOOP brings the EXPUNGE.
			c.opNoop("NOOP")
			return
		}
	}
	switch kind := c.pick(); kind {
	case "APPEND":
		c.opAppend()
	case "FETCH", "UID FETCH":
		c.opFetch(kind == "UID FETCH")
	case "STORE", "UID STORE":
		c.opStore(kind == "UID STORE")
	case "SEARCH", "UID SEARCH":
		c.opSearch(kind == "UID SEARCH")
	case "EXPUNGE", "UID EXPUNGE":
		c.opExpunge(kind == "UID EXPUNGE")
	case "COPY", "UID COPY", "MOVE", "UID MOVE":
		c.opCopy(strings.HasSuffix(kind, "MOVE"), strings.HasPrefix(kind, "UID "))
	case "NOOP", "CHECK":
		c.opNoop(kind)
	case "SELECT", "EXAMINE":
		c.opSelect(kind == "EXAMINE")
	case "IDLE":
		c.opIdle()
	}
}

// pick chooses an operation: nothing that needs messages in an empty
// mailbox, nothing that writes in a read-only one, and fewer APPENDs and
// more expunging when the mailbox is over its target size.
func (c *client) pick() string {
	v := c.view
	n := len(v.slots)
	total := 0
	weights := make([]int, len(opWeights))
	for i, o := range opWeights {
		w := o.weight
		switch o.kind {
		case "FETCH", "UID FETCH", "STORE", "UID STORE", "COPY", "UID COPY", "MOVE", "UID MOVE", "UID EXPUNGE":
			if n == 0 {
				w = 0
			}
		}
		switch o.kind {
		case "STORE", "UID STORE", "EXPUNGE", "UID EXPUNGE", "MOVE", "UID MOVE":
			if v.readOnly {
				w = 0
			}
		case "EXAMINE":
			if v.readOnly {
				w = 0
			}
		case "SELECT":
			if v.readOnly {
				w *= 4
			}
		}
		if n > c.target {
			switch o.kind {
			case "APPEND", "COPY", "UID COPY":
				w /= 2
			case "EXPUNGE", "UID EXPUNGE":
				w *= 4
			}
		}
		weights[i] = w
		total += w
	}
	x := c.rng.IntN(total)
	for i, w := range weights {
		if x < w {
			return opWeights[i].kind
		}
		x -= w
	}
	return "NOOP"
}

func (c *client) count(kind string) { c.ops[kind]++ }

// randomFlags picks flags of the universe, at least min of them.
func (c *client) randomFlags(min int) flagSet {
	for {
		var s flagSet
		for i := range universe {
			if c.rng.IntN(4) == 0 {
				s |= 1 << i
			}
		}
		if len(s.names()) >= min {
			return s
		}
	}
}

// flagArgs writes flags as a list, or (RFC 9051 9, store-att-flags) as
// bare flags separated by spaces.
func (c *client) flagArgs(s flagSet) string {
	if s != 0 && c.rng.IntN(3) == 0 {
		return strings.Join(s.names(), " ")
	}
	return s.String()
}

// pickSeqs chooses up to max sequence numbers of the view: one, a range,
// or two ranges.
func (c *client) pickSeqs(max int) []uint32 {
	n := len(c.view.slots)
	var out []uint32
	ranges := 1 + c.rng.IntN(2)
	for range ranges {
		lo := 1 + c.rng.IntN(n)
		hi := min(n, lo+c.rng.IntN(max))
		for s := lo; s <= hi && len(out) < max; s++ {
			out = append(out, uint32(s))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// uidsOf returns the UIDs of sequence numbers.
func (c *client) uidsOf(seqs []uint32) []uint32 {
	out := make([]uint32, len(seqs))
	for i, s := range seqs {
		out[i] = c.view.slots[s-1].uid
	}
	return out
}

// uidSet writes UIDs as a set, and returns the UIDs it names: sometimes
// it is one range over them (in either order, RFC 9051 9), which names
// every UID of the view between the lowest and the highest.
func (c *client) uidSet(uids []uint32) (string, []uint32) {
	if len(uids) < 2 || c.rng.IntN(3) != 0 {
		return FormatSet(uids), uids
	}
	lo, hi := uids[0], uids[len(uids)-1]
	var out []uint32
	for _, s := range c.view.slots {
		if s.uid >= lo && s.uid <= hi {
			out = append(out, s.uid)
		}
	}
	if c.rng.IntN(2) == 0 {
		return fmt.Sprintf("%d:%d", hi, lo), out
	}
	return fmt.Sprintf("%d:%d", lo, hi), out
}

func (c *client) message(token string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Imapcheck <check@example.org>\r\n")
	fmt.Fprintf(&b, "To: demo@example.org\r\n")
	fmt.Fprintf(&b, "Subject: imapcheck client %d message %d\r\n", c.id, c.appendN)
	fmt.Fprintf(&b, "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n")
	fmt.Fprintf(&b, "Message-ID: <%s@imapcheck.example.org>\r\n", token)
	fmt.Fprintf(&b, "%s: %s\r\n\r\n", tokenHeader, token)
	lines := 1 + c.rng.IntN(30)
	if c.rng.IntN(20) == 0 {
		lines = 300
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-"
	for range lines {
		for range 1 + c.rng.IntN(76) {
			b.WriteByte(alphabet[c.rng.IntN(len(alphabet))])
		}
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}

func (c *client) opAppend() {
	c.count("APPEND")
	folder := c.view.folder
	if c.rng.IntN(2) == 0 {
		folder = c.folders[c.rng.IntN(len(c.folders))]
	}
	if c.m.size(folder) > 2*c.target {
		for _, f := range c.folders {
			if c.m.size(f) < c.m.size(folder) {
				folder = f
			}
		}
	}
	c.appendN++
	token := fmt.Sprintf("c%03d-%06d-%016x", c.id, c.appendN, c.rng.Uint64())
	var flags flagSet
	if c.rng.IntN(2) == 0 {
		flags = c.randomFlags(0)
	}
	args := quote(folder)
	if flags != 0 || c.rng.IntN(5) == 0 {
		args += " " + flags.String()
	}
	if c.rng.IntN(3) == 0 {
		args += ` "01-Feb-2024 12:34:56 +0100"`
	}
	c.exec(&command{
		kind: "APPEND", name: "APPEND", args: args,
		literal: c.message(token), litPlus: c.rng.IntN(2) == 0,
		dest: folder, token: token, appFlags: flags,
	})
}

func (c *client) opFetch(uid bool) {
	kind := map[bool]string{false: "FETCH", true: "UID FETCH"}[uid]
	c.count(kind)
	v := c.view
	cmd := &command{kind: kind, name: kind, noExpunge: !uid, folder: v.folder}
	var items string
	peek := true
	max := 6
	switch c.rng.IntN(7) {
	case 0:
		items, cmd.wantFlags = "(FLAGS)", true
	case 1:
		items, cmd.wantFlags = "(UID FLAGS)", true
	case 2:
		items, cmd.wantBody, max = "(UID BODY.PEEK[])", true, 3
	case 3:
		// RFC 9051 6.4.5: BODY[] sets \Seen (not in a read-only mailbox).
		items, cmd.wantFlags, cmd.wantBody, max, peek = "(FLAGS BODY[])", true, true, 3, false
	case 4:
		items, cmd.wantFlags = "FLAGS", true
	case 5:
		items, cmd.wantFlags = "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)", true
	case 6:
		items, cmd.wantFlags = "(FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])", true
	}
	seqs := c.pickSeqs(max)
	uids := c.uidsOf(seqs)
	var set string
	switch {
	case peek && c.rng.IntN(5) == 0:
		// "n:*": everything from n on, new messages included.
		from := seqs[0]
		set = fmt.Sprintf("%d:*", from)
		seqs = nil
		for s := from; s <= uint32(len(v.slots)); s++ {
			seqs = append(seqs, s)
		}
		uids = c.uidsOf(seqs)
		if uid {
			set = fmt.Sprintf("%d:*", uids[0])
		}
		cmd.anyBody = true
	case uid:
		set, uids = c.uidSet(uids)
	default:
		set = FormatSet(seqs)
	}
	cmd.args = set + " " + items
	cmd.targets = uids
	if !uid {
		cmd.seqs = seqs
	}
	if !peek && !v.readOnly {
		cmd.write = &flagWrite{mask: flagSeen, val: flagSeen}
	}
	c.exec(cmd)
}

func (c *client) opStore(uid bool) {
	kind := map[bool]string{false: "STORE", true: "UID STORE"}[uid]
	c.count(kind)
	v := c.view
	seqs := c.pickSeqs(5)
	uids := c.uidsOf(seqs)
	var op byte
	var flags flagSet
	switch x := c.rng.IntN(20); {
	case len(v.slots) > c.target && x < 10:
		op, flags = '+', flagDeleted
	case x < 9:
		op, flags = '+', c.randomFlags(1)
	case x < 16:
		op, flags = '-', c.randomFlags(1)
	default:
		op, flags = '=', c.randomFlags(0)
	}
	item := "FLAGS"
	if op != '=' {
		item = string(op) + item
	}
	silent := c.rng.IntN(5) < 2
	if silent {
		item += ".SILENT"
	}
	set := FormatSet(seqs)
	if uid {
		set, uids = c.uidSet(uids)
	}
	mask, val := storeWrite(op, flags)
	c.exec(&command{
		kind: kind, name: kind, args: set + " " + item + " " + c.flagArgs(flags),
		noExpunge: !uid, folder: v.folder, targets: uids,
		silent: silent, op: op, opFlags: flags,
		write: &flagWrite{mask: mask, val: val},
	})
}

// searchKeys are the search keys of each flag of the universe (RFC 9051
// 6.4.4): set, then not set.
var searchKeys = map[string][2]string{
	`\Seen`: {"SEEN", "UNSEEN"}, `\Answered`: {"ANSWERED", "UNANSWERED"},
	`\Flagged`: {"FLAGGED", "UNFLAGGED"}, `\Deleted`: {"DELETED", "UNDELETED"},
	`\Draft`: {"DRAFT", "UNDRAFT"},
}

func (c *client) opSearch(uid bool) {
	kind := map[bool]string{false: "SEARCH", true: "UID SEARCH"}[uid]
	c.count(kind)
	v := c.view
	sc := &searchCheck{uid: uid}
	var key string
	switch x := c.rng.IntN(10); {
	case x < 6:
		i := c.rng.IntN(len(universe))
		sc.bit, sc.positive = 1<<i, c.rng.IntN(2) == 0
		name := universe[i]
		if k, ok := searchKeys[name]; ok {
			key = k[1]
			if sc.positive {
				key = k[0]
			}
		} else {
			key = "UNKEYWORD " + name
			if sc.positive {
				key = "KEYWORD " + name
			}
		}
	case x < 8:
		sc.all, key = true, "ALL"
	default:
		sc.token = fmt.Sprintf("c%03d-%06d-%016x", c.id, 0, c.rng.Uint64()) // matches nothing
		if len(v.slots) > 0 {
			if t := c.m.tokenOf(v.folder, v.slots[c.rng.IntN(len(v.slots))].uid); t != "" {
				sc.token = t
			}
		}
		key = "HEADER " + tokenHeader + " " + sc.token
	}
	var prefix string
	switch c.rng.IntN(6) {
	case 0:
		prefix, sc.esearch = "RETURN (ALL COUNT) ", true
	case 1:
		prefix, sc.esearch = "RETURN () ", true
	case 2:
		prefix = "CHARSET UTF-8 "
	}
	c.exec(&command{kind: kind, name: kind, args: prefix + key, noExpunge: !uid, folder: v.folder, search: sc})
}

func (c *client) opExpunge(uid bool) {
	kind := map[bool]string{false: "EXPUNGE", true: "UID EXPUNGE"}[uid]
	c.count(kind)
	v := c.view
	cmd := &command{kind: kind, name: kind, folder: v.folder}
	if uid {
		// Mostly messages the client believes deleted, and one more.
		var uids []uint32
		for _, s := range v.slots {
			if s.flags.has(flagDeleted) && c.rng.IntN(2) == 0 {
				uids = append(uids, s.uid)
			}
		}
		uids = append(uids, v.slots[c.rng.IntN(len(v.slots))].uid)
		slices.Sort(uids)
		uids = slices.Compact(uids)
		cmd.args = FormatSet(uids)
		cmd.targets = uids
	}
	c.exec(cmd)
}

func (c *client) opCopy(move, uid bool) {
	kind := map[bool]string{false: "COPY", true: "MOVE"}[move]
	if uid {
		kind = "UID " + kind
	}
	c.count(kind)
	v := c.view
	dest := v.folder
	if c.rng.IntN(5) != 0 {
		others := slices.DeleteFunc(slices.Clone(c.folders), func(f string) bool { return f == v.folder })
		dest = others[c.rng.IntN(len(others))]
	}
	seqs := c.pickSeqs(3)
	uids := c.uidsOf(seqs)
	set := FormatSet(seqs)
	if uid {
		set, uids = c.uidSet(uids)
	}
	c.exec(&command{kind: kind, name: kind, args: set + " " + quote(dest), folder: v.folder, dest: dest, targets: uids})
}

func (c *client) opNoop(kind string) {
	c.count(kind)
	c.exec(&command{kind: kind, name: kind})
}

// opSelect selects (or examines) a random folder and fetches the UIDs and
// flags of its messages, as a client does to fill its cache.
func (c *client) opSelect(readOnly bool) {
	kind := map[bool]string{false: "SELECT", true: "EXAMINE"}[readOnly]
	c.count(kind)
	c.selectFolder(c.folders[c.rng.IntN(len(c.folders))], readOnly)
	if c.err == nil && c.view != nil {
		c.fill()
	}
}

func (c *client) selectFolder(folder string, readOnly bool) {
	kind := map[bool]string{false: "SELECT", true: "EXAMINE"}[readOnly]
	c.exec(&command{kind: kind, name: kind, args: quote(folder), folder: folder, sel: &selectCheck{readOnly: readOnly}})
}

// fill fetches UID and FLAGS of the messages the client does not know yet.
func (c *client) fill() {
	v := c.view
	lo, hi := 0, 0
	for i, s := range v.slots {
		if s.uid == 0 || !s.flagsKnown {
			if lo == 0 {
				lo = i + 1
			}
			hi = i + 1
		}
	}
	if lo == 0 {
		return
	}
	cmd := &command{kind: "FETCH", name: "FETCH", args: fmt.Sprintf("%d:%d (UID FLAGS)", lo, hi),
		noExpunge: true, folder: v.folder, wantFlags: true}
	for s := lo; s <= hi; s++ {
		cmd.seqs = append(cmd.seqs, uint32(s))
	}
	c.exec(cmd)
}

func (c *client) opIdle() {
	c.count("IDLE")
	d := time.Duration(100+c.rng.IntN(500)) * time.Millisecond
	c.exec(&command{kind: "IDLE", name: "IDLE", idleFor: d, folder: c.view.folder})
}
