package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"posthorn/cmd/posthorn/internal/imapcheck"
)

// The torture test's IMAP worker: one per IMAP account, the only IMAP
// session on it. Its picture of the account is exact while the server
// runs (SMTP only adds to INBOX, which a read picks up); after a kill, the
// read of every folder must agree with it except where a command got no
// answer.

// tortureMailbox is an IMAP worker's picture of its account: each folder's
// messages by UID, as last read or as changed by a command that got its
// tagged OK.
type tortureMailbox struct {
	account   string
	folders   map[string]*tortureFolder
	appending map[string]bool // tokens of APPENDs that got no answer
}

type tortureFolder struct {
	validity    uint32
	uidNext     uint32 // STATUS before the last read: new messages get UIDs from here
	uidNextSeen uint32 // highest UIDNEXT STATUS said
	maxUID      uint32 // highest UID seen: read, APPENDUID, COPYUID
	msgs        map[uint32]*tortureMsg
	removed     map[uint32]string // UID → token, expunge or move acknowledged
}

// tortureMsg is a message in the picture. The marks are set while a
// command that may change it runs: a kill leaves them, the next read clears
// them.
type tortureMsg struct {
	tortureFlags
	flagsUnsure, mayVanish, mayMove bool
}

// size is the number of messages in the picture.
func (mb *tortureMailbox) size() int {
	n := 0
	for _, f := range mb.folders {
		n += len(f.msgs)
	}
	return n
}

// copies counts a token's copies in the picture.
func (mb *tortureMailbox) copies(token string) int {
	n := 0
	for _, f := range mb.folders {
		for _, m := range f.msgs {
			if m.token == token {
				n++
			}
		}
	}
	return n
}

// reconcile checks a read of some folders of the account against the
// picture, then makes the read the picture.
func (r *tortureRun) reconcile(mb *tortureMailbox, reads map[string]*tortureFolderRead) {
	where := map[string]int{} // token → copies in the read
	for _, fr := range reads {
		for _, m := range fr.msgs {
			where[m.token]++
		}
	}
	moving := map[string]bool{} // tokens a MOVE without answer was moving
	for _, f := range mb.folders {
		for _, m := range f.msgs {
			if m.mayMove {
				moving[m.token] = true
			}
		}
	}
	for name, fr := range reads {
		f := mb.folders[name]
		if f == nil {
			continue // not a folder the test uses; verify reports it
		}
		at := mb.account + " " + name
		if f.validity != 0 && fr.validity != f.validity {
			r.errorf("%s: UIDVALIDITY %d, was %d", at, fr.validity, f.validity)
		}
		if fr.uidNext < f.uidNextSeen {
			r.errorf("%s: UIDNEXT %d, was %d: it went down", at, fr.uidNext, f.uidNextSeen)
		}
		for uid, m := range f.msgs {
			got, ok := fr.msgs[uid]
			c := tortureCopy{mb.account, m.token}
			switch {
			case ok && got.token != m.token:
				r.errorf("%s: UID %d holds %s, held %s: UID reused", at, uid, got.token, m.token)
			case ok && !m.flagsUnsure && (got.flagged != m.flagged || got.deleted != m.deleted):
				r.errorf("%s: UID %d (%s): \\Flagged %v \\Deleted %v, want %v %v", at, uid, m.token, got.flagged, got.deleted, m.flagged, m.deleted)
			case !ok && m.mayMove && where[m.token] == 0:
				r.lost(c, fmt.Sprintf("UID %d in %s, MOVE without answer, in no folder after the restart", uid, name))
			case !ok && !m.mayMove && !m.mayVanish:
				r.lost(c, fmt.Sprintf("UID %d in %s vanished", uid, name))
			}
			if m.mayVanish {
				r.model.resolve(mb.account, m.token, where[m.token] > 0)
			}
		}
		for uid, got := range fr.msgs {
			if uid >= fr.uidNextAfter {
				r.errorf("%s: UID %d is not below UIDNEXT %d", at, uid, fr.uidNextAfter)
			}
			if tok, ok := f.removed[uid]; ok {
				r.resurrected(tortureCopy{mb.account, tok}, fmt.Sprintf("UID %d in %s came back", uid, name))
				delete(f.removed, uid) // reported once; from now on in the picture
				continue
			}
			if !r.model.belongs(mb.account, got.token) {
				r.errorf("%s: UID %d holds %q, which was not sent to this account", at, uid, got.token)
				continue
			}
			if _, known := f.msgs[uid]; known {
				continue
			}
			if uid < f.uidNext {
				r.errorf("%s: new UID %d (%s) is below the UIDNEXT %d of the last read: UID reused", at, uid, got.token, f.uidNext)
			}
			if name != "INBOX" && !mb.appending[got.token] && !moving[got.token] {
				r.errorf("%s: UID %d (%s) appeared from nowhere", at, uid, got.token)
			}
		}
		f.validity, f.uidNext, f.uidNextSeen = fr.validity, fr.uidNext, fr.uidNextAfter
		f.msgs = make(map[uint32]*tortureMsg, len(fr.msgs))
		for uid, got := range fr.msgs {
			f.msgs[uid] = &tortureMsg{tortureFlags: got}
			f.maxUID = max(f.maxUID, uid)
		}
	}
	clear(mb.appending)
}

// imapWorker keeps an IMAP session on its account, reading every folder
// after each (re)connect and then changing the mailbox at random.
func (r *tortureRun) imapWorker(ctx context.Context, rng *rand.Rand, mb *tortureMailbox) {
	failed := 0
	for {
		gen, ok := r.srv.next(ctx, failed)
		if !ok {
			return
		}
		if err := r.imapSession(ctx, rng, mb); err != nil {
			r.clientError(gen, mb.account+": IMAP", err)
			failed = gen
		}
	}
}

func (r *tortureRun) imapSession(ctx context.Context, rng *rand.Rand, mb *tortureMailbox) error {
	c, err := tortureDialIMAP(r.imap, mb.account, torturePassword(mb.account))
	if err != nil {
		return err
	}
	defer c.close()
	reads := map[string]*tortureFolderRead{}
	for _, name := range tortureIMAPFolders {
		if reads[name], err = c.readFolder(name); err != nil {
			return err
		}
	}
	r.reconcile(mb, reads)
	for ctx.Err() == nil {
		var err error
		switch n := rng.IntN(100); {
		case mb.size() > tortureMaxPicture:
			err = r.imapExpunge(c, rng, mb, 50)
		case n < 15:
			var fr *tortureFolderRead
			if fr, err = c.readFolder("INBOX"); err == nil {
				r.reconcile(mb, map[string]*tortureFolderRead{"INBOX": fr})
			}
		case n < 35:
			err = r.imapAppend(c, rng, mb)
		case n < 55:
			err = r.imapStore(c, rng, mb)
		case n < 75:
			err = r.imapExpunge(c, rng, mb, 5)
		default:
			err = r.imapMove(c, rng, mb)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// pickFolder returns a random folder with messages in the picture (the
// largest when largest is set), or "".
func (mb *tortureMailbox) pickFolder(rng *rand.Rand, largest bool) string {
	var names []string
	for _, name := range tortureIMAPFolders {
		if len(mb.folders[name].msgs) > 0 {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	if largest {
		best := names[0]
		for _, n := range names {
			if len(mb.folders[n].msgs) > len(mb.folders[best].msgs) {
				best = n
			}
		}
		return best
	}
	return names[rng.IntN(len(names))]
}

// pickUIDs returns 1 to n random UIDs of a folder's picture, ascending.
func (f *tortureFolder) pickUIDs(rng *rand.Rand, n int) []uint32 {
	var all []uint32
	for uid := range f.msgs {
		all = append(all, uid)
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	out := all[:1+rng.IntN(min(n, len(all)))]
	slices.Sort(out)
	return out
}

// selectChecked selects a folder; its UIDVALIDITY must be the picture's.
func (r *tortureRun) selectChecked(c *tortureIMAP, mb *tortureMailbox, name string) (*tortureFolder, error) {
	v, err := c.selectFolder(name)
	if err != nil {
		return nil, err
	}
	f := mb.folders[name]
	if v != f.validity {
		r.errorf("%s %s: SELECT says UIDVALIDITY %d, was %d", mb.account, name, v, f.validity)
	}
	return f, nil
}

func (r *tortureRun) imapAppend(c *tortureIMAP, rng *rand.Rand, mb *tortureMailbox) error {
	name := tortureIMAPFolders[rng.IntN(len(tortureIMAPFolders))]
	f := mb.folders[name]
	tok := r.model.newToken(tortureAppend, []string{mb.account})
	flagged := rng.IntN(2) == 0
	flags := "()"
	if flagged {
		flags = `(\Flagged)`
	}
	mb.appending[tok] = true
	res, err := c.run("APPEND "+name+" "+flags+" ", tortureMessage(tok, rng))
	if err != nil {
		return err
	}
	r.model.ack(tortureAppend, tok)
	args, _ := res.code("APPENDUID")
	var validity, uid uint32
	if _, err := fmt.Sscanf(args, "%d %d", &validity, &uid); err != nil || validity != f.validity {
		r.errorf("%s: APPEND to %s: %q, want APPENDUID %d <uid>", mb.account, name, res.ok, f.validity)
		return nil // still in mb.appending: the next read may find it
	}
	delete(mb.appending, tok)
	if uid <= f.maxUID {
		r.errorf("%s %s: APPENDUID %d is not above UID %d seen before: UID reused", mb.account, name, uid, f.maxUID)
	}
	f.maxUID = max(f.maxUID, uid)
	f.msgs[uid] = &tortureMsg{tortureFlags: tortureFlags{token: tok, flagged: flagged}}
	return nil
}

// imapStore flips \Flagged on one message; the FETCH in the answer must
// show the new flags.
func (r *tortureRun) imapStore(c *tortureIMAP, rng *rand.Rand, mb *tortureMailbox) error {
	name := mb.pickFolder(rng, false)
	if name == "" {
		return nil
	}
	f, err := r.selectChecked(c, mb, name)
	if err != nil {
		return err
	}
	uid := f.pickUIDs(rng, 1)[0]
	m := f.msgs[uid]
	op := "+FLAGS"
	if m.flagged {
		op = "-FLAGS"
	}
	m.flagsUnsure = true
	res, err := c.run(fmt.Sprintf(`UID STORE %d %s (\Flagged)`, uid, op), nil)
	if err != nil {
		return err
	}
	m.flagged, m.flagsUnsure = !m.flagged, false
	r.counts.stored.Add(1)
	for _, u := range res.untagged {
		if um := tortureFetchUIDRE.FindStringSubmatch(u); um != nil && um[1] == strconv.FormatUint(uint64(uid), 10) {
			if fm := tortureFetchFlagsRE.FindStringSubmatch(u); fm != nil && strings.Contains(fm[1], `\Flagged`) == m.flagged {
				return nil
			}
		}
	}
	r.errorf("%s %s: UID STORE %d %s: answer %q lacks the new flags", mb.account, name, uid, op, res.untagged)
	return nil
}

// imapExpunge marks up to n messages \Deleted and expunges them, with UID
// EXPUNGE or EXPUNGE (which also takes any other \Deleted message).
func (r *tortureRun) imapExpunge(c *tortureIMAP, rng *rand.Rand, mb *tortureMailbox, n int) error {
	name := mb.pickFolder(rng, n > 5)
	if name == "" {
		return nil
	}
	f, err := r.selectChecked(c, mb, name)
	if err != nil {
		return err
	}
	chosen := f.pickUIDs(rng, n)
	plain := rng.IntN(2) == 0
	gone := chosen
	if plain {
		gone = nil
		for uid, m := range f.msgs {
			if m.deleted || slices.Contains(chosen, uid) {
				gone = append(gone, uid)
			}
		}
	}
	// Before asking: a copy the expunge may take is maybe gone.
	last := map[string]int{} // token → copies being expunged
	for _, uid := range gone {
		m := f.msgs[uid]
		m.mayVanish, m.flagsUnsure = true, true
		last[m.token]++
	}
	for tok, k := range last {
		if k == mb.copies(tok) {
			r.model.setGone(mb.account, tok, tortureMaybeGone)
		}
	}
	if _, err := c.run(`UID STORE `+imapcheck.FormatSet(chosen)+` +FLAGS.SILENT (\Deleted)`, nil); err != nil {
		return err
	}
	cmd := "UID EXPUNGE " + imapcheck.FormatSet(chosen)
	if plain {
		cmd = "EXPUNGE"
	}
	res, err := c.run(cmd, nil)
	if err != nil {
		return err
	}
	if got := res.count("EXPUNGE"); got != len(gone) {
		r.errorf("%s %s: %s: %d EXPUNGE responses, want %d", mb.account, name, cmd, got, len(gone))
	}
	for _, uid := range gone {
		f.removed[uid] = f.msgs[uid].token
		delete(f.msgs, uid)
	}
	for tok, k := range last {
		if k > 0 && mb.copies(tok) == 0 {
			r.model.setGone(mb.account, tok, tortureGoneSure)
		}
	}
	r.counts.expunged.Add(int64(len(gone)))
	return nil
}

// imapMove moves up to 5 messages to another folder; COPYUID (RFC 4315,
// RFC 6851 4.3) says where they went.
func (r *tortureRun) imapMove(c *tortureIMAP, rng *rand.Rand, mb *tortureMailbox) error {
	name := mb.pickFolder(rng, false)
	if name == "" {
		return nil
	}
	destName := name
	for destName == name {
		destName = tortureIMAPFolders[rng.IntN(len(tortureIMAPFolders))]
	}
	f, err := r.selectChecked(c, mb, name)
	if err != nil {
		return err
	}
	dest := mb.folders[destName]
	uids := f.pickUIDs(rng, 5)
	for _, uid := range uids {
		f.msgs[uid].mayMove = true
	}
	cmd := "UID MOVE " + imapcheck.FormatSet(uids) + " " + destName
	res, err := c.run(cmd, nil)
	if err != nil {
		return err
	}
	args, _ := res.code("COPYUID")
	fields := strings.Fields(args)
	var src, dst []uint32
	if len(fields) == 3 {
		src, _ = imapcheck.ExpandSet(fields[1])
		dst, _ = imapcheck.ExpandSet(fields[2])
	}
	if len(fields) != 3 || fields[0] != strconv.FormatUint(uint64(dest.validity), 10) ||
		len(src) != len(uids) || len(dst) != len(uids) {
		r.errorf("%s %s: %s: COPYUID %q, want %d messages to UIDVALIDITY %d (answer %q)", mb.account, name, cmd, args, len(uids), dest.validity, res.untagged)
		return fmt.Errorf("%s: unusable answer", cmd) // the picture is unknown now: read again
	}
	if got := res.count("EXPUNGE"); got != len(uids) {
		r.errorf("%s %s: %s: %d EXPUNGE responses, want %d", mb.account, name, cmd, got, len(uids))
	}
	for i, s := range src {
		m, ok := f.msgs[s]
		if !ok {
			r.errorf("%s %s: %s: COPYUID names UID %d, not asked for", mb.account, name, cmd, s)
			continue
		}
		if dst[i] <= dest.maxUID {
			r.errorf("%s %s: COPYUID gives UID %d, not above UID %d seen before: UID reused", mb.account, destName, dst[i], dest.maxUID)
		}
		dest.maxUID = max(dest.maxUID, dst[i])
		f.removed[s] = m.token
		delete(f.msgs, s)
		dest.msgs[dst[i]] = &tortureMsg{tortureFlags: m.tortureFlags}
	}
	r.counts.moved.Add(int64(len(src)))
	return nil
}
