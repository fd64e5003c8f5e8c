package server

import (
	"slices"
	"sort"

	"posthorn/mailbox"
	"posthorn/protocol/imap"
)

// view is the selected mailbox as this session's client knows it (RFC 9051
// 2.3.1.2): message sequence number n is uids[n-1]. Messages expunged
// elsewhere stay in the view, marked gone, until their EXPUNGE response has
// been sent, so sequence numbers never shift under the client in the
// middle of a FETCH, STORE or SEARCH (RFC 9051 7.5.1).
type view struct {
	name        string
	readOnly    bool
	uidValidity uint32
	uids        []uint32 // ascending
	modSeqs     []uint64 // MODSEQ of each message's flags as last reported
	reported    int      // the message count the client was told (EXISTS)

	gone     map[uint32]bool     // expunged in the store, EXPUNGE not yet sent
	changed  map[uint32][]string // flags changed elsewhere, FETCH not yet sent
	keywords map[string]bool     // keywords announced in FLAGS
	newFlags bool                // a keyword appeared: send FLAGS again
	recent   map[uint32]bool     // \Recent for this session (IMAP4rev1)
	closed   bool                // the mailbox was deleted or renamed
	recentAt recentKey
}

// index returns the position of uid in the view.
func (v *view) index(uid uint32) (int, bool) {
	i := sort.Search(len(v.uids), func(i int) bool { return v.uids[i] >= uid })
	return i, i < len(v.uids) && v.uids[i] == uid
}

// seq returns the message sequence number of uid, 0 if not in the view.
func (v *view) seq(uid uint32) uint32 {
	if i, ok := v.index(uid); ok {
		return uint32(i + 1)
	}
	return 0
}

func (v *view) lastUID() uint32 {
	if len(v.uids) == 0 {
		return 0
	}
	return v.uids[len(v.uids)-1]
}

// remove takes the message at index i out of the view.
func (v *view) remove(i int) {
	uid := v.uids[i]
	v.uids = slices.Delete(v.uids, i, i+1)
	v.modSeqs = slices.Delete(v.modSeqs, i, i+1)
	delete(v.gone, uid)
	delete(v.changed, uid)
	delete(v.recent, uid)
	if i < v.reported {
		v.reported--
	}
}

// noteFlags records flags the client is about to see, announcing new
// keywords first (RFC 9051 7.3.5: FLAGS lists the flags in use).
func (v *view) noteKeywords(flags []string) {
	for _, f := range flags {
		if len(f) > 0 && f[0] != '\\' && !v.keywords[f] {
			v.keywords[f] = true
			v.newFlags = true
		}
	}
}

// resolve turns a sequence set (message numbers, or UIDs when uid is set)
// into the UIDs of the view it names, ascending. "$" is the saved search
// result (RFC 5182 2.1). Message numbers beyond the count the client knows
// are a BAD (RFC 9051 9, seq-number: "*" in an empty mailbox too); UIDs that
// do not exist are ignored (RFC 9051 6.4.9).
func (s *session) resolve(set imap.SeqSet, uid bool) ([]uint32, error) {
	v := s.sel
	var out []uint32
	if set.Saved {
		for _, u := range s.saved {
			if _, ok := v.index(u); ok {
				out = append(out, u)
			}
		}
	}
	if len(set.Ranges) == 0 {
		return out, nil
	}
	set.Saved = false
	if uid {
		for _, r := range set.Resolve(v.lastUID()).Ranges {
			lo, _ := v.index(r.Start)
			for i := lo; i < len(v.uids) && v.uids[i] <= r.Stop; i++ {
				out = append(out, v.uids[i])
			}
		}
	} else {
		last := uint32(v.reported)
		if last == 0 && set.Dynamic() || set.Largest(last) > last {
			return nil, bad("Invalid message sequence number")
		}
		for _, r := range set.Resolve(last).Ranges {
			for n := r.Start; n <= r.Stop && n != 0; n++ {
				out = append(out, v.uids[n-1])
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// pollChanges applies every change waiting on the feed, without blocking
// (but after any publish in progress has reached this session, so that it
// never reports less than another session already has).
func (s *session) pollChanges() {
	if s.sub == nil {
		return
	}
	s.sub.Sync()
	for {
		select {
		case c, ok := <-s.sub.C():
			if !ok {
				s.sub = nil // account closed; the next store call fails
				return
			}
			s.applyChange(c)
		default:
			if s.sub.Overflowed() {
				s.resync()
			}
			return
		}
	}
}

// applyChange folds one change of the feed into the view. Every case is
// idempotent (mailbox.Subscription.ClearOverflow): UIDs only grow, flags
// are applied only when their MODSEQ is newer, and our own changes arrive
// after we applied them.
func (s *session) applyChange(c mailbox.Change) {
	v := s.sel
	if v == nil || v.closed {
		return
	}
	if c.Kind == mailbox.ChangeFolder {
		if c.Folder == v.name || c.NewName == v.name {
			info, err := s.acct.Folder(v.name)
			if err != nil || info.UIDValidity != v.uidValidity {
				v.closed = true
			}
		}
		return
	}
	if c.Folder != v.name {
		return
	}
	switch c.Kind {
	case mailbox.ChangeExists:
		if c.UID <= v.lastUID() {
			return
		}
		v.uids = append(v.uids, c.UID)
		v.modSeqs = append(v.modSeqs, c.ModSeq)
		v.noteKeywords(c.Flags)
		if !v.readOnly && !s.rev2 {
			// RFC 3501 2.3.2: the first session to be notified gets \Recent.
			if s.srv.recent.claim(v.recentAt, c.UID) < c.UID {
				v.recent[c.UID] = true
			}
		}
	case mailbox.ChangeFlags:
		if i, ok := v.index(c.UID); ok && c.ModSeq > v.modSeqs[i] {
			v.modSeqs[i] = c.ModSeq
			if ms, own := s.ownChanges[c.UID]; own && ms == c.ModSeq {
				return // this session's STORE, answered by cmdStore itself
			}
			v.changed[c.UID] = c.Flags
		}
	case mailbox.ChangeExpunge:
		if _, ok := v.index(c.UID); ok {
			v.gone[c.UID] = true
		}
	}
}

// resync rebuilds the view from the store after the feed overflowed:
// messages missing are gone, new ones are added, changed flags reported.
func (s *session) resync() {
	s.sub.ClearOverflow()
	v := s.sel
	if v == nil {
		return
	}
	present := make(map[uint32]mailbox.MessageInfo, len(v.uids))
	err := s.acct.ForEachMessage(v.name, 1, func(m mailbox.MessageInfo) error {
		present[m.UID] = m
		if m.UID > v.lastUID() {
			s.applyChange(mailbox.Change{Kind: mailbox.ChangeExists, Folder: v.name, UID: m.UID, ModSeq: m.ModSeq, Flags: m.Flags})
		}
		return nil
	})
	if err != nil {
		v.closed = true
		return
	}
	for i, uid := range v.uids {
		m, ok := present[uid]
		switch {
		case !ok:
			v.gone[uid] = true
		case m.ModSeq > v.modSeqs[i]:
			v.modSeqs[i] = m.ModSeq
			v.changed[uid] = m.Flags
		}
	}
}

// sendUpdates reports what changed since the last report: a new FLAGS list,
// EXISTS, EXPUNGE (only when expunge is true: never during FETCH, STORE or
// SEARCH, RFC 9051 7.5.1) and FETCH FLAGS. EXISTS comes first so that every
// EXPUNGE names a message the client knows.
func (s *session) sendUpdates(expunge bool) error {
	s.pollChanges()
	v := s.sel
	if v == nil {
		return nil
	}
	if v.closed {
		// The mailbox is gone; nothing the client knows about it holds.
		s.bye("Selected mailbox was deleted or renamed")
		return errClose
	}
	for _, f := range v.changed {
		v.noteKeywords(f)
	}
	if v.newFlags {
		s.writeFlags()
	}
	s.sendExists()
	if expunge && len(v.gone) > 0 {
		gone := make([]uint32, 0, len(v.gone))
		for uid := range v.gone {
			gone = append(gone, uid)
		}
		slices.Sort(gone)
		// RFC 9051 7.5.1: each EXPUNGE renumbers the messages after it;
		// sending from the highest down keeps the numbers as computed.
		for _, uid := range slices.Backward(gone) {
			if i, ok := v.index(uid); ok {
				s.enc.Untagged().Number(uint32(i + 1)).SP().Atom("EXPUNGE").CRLF()
				v.remove(i)
			}
		}
	}
	if len(v.changed) > 0 {
		uids := make([]uint32, 0, len(v.changed))
		for uid := range v.changed {
			uids = append(uids, uid)
		}
		slices.Sort(uids)
		for _, uid := range uids {
			i, ok := v.index(uid)
			if !ok || v.gone[uid] || i >= v.reported {
				continue
			}
			// RFC 9051 7.4: unsolicited FETCH with the new flags; the UID
			// helps clients that work with UIDs only.
			s.enc.Untagged().Number(uint32(i + 1)).SP().Atom("FETCH").SP().BeginList().
				Atom("UID").SP().Number(uid).SP().Atom("FLAGS").SP()
			s.writeFlagList(uid, v.changed[uid])
			s.enc.EndList().CRLF()
			delete(v.changed, uid)
		}
	}
	return s.enc.Err()
}

// sendExists reports messages that arrived since the last EXISTS (RFC 9051
// 7.4.1), with a new FLAGS first if they brought new keywords.
func (s *session) sendExists() {
	v := s.sel
	if len(v.uids) <= v.reported {
		return
	}
	if v.newFlags {
		s.writeFlags()
	}
	v.reported = len(v.uids)
	s.enc.Untagged().Number(uint32(v.reported)).SP().Atom("EXISTS").CRLF()
	if !s.rev2 {
		// RFC 3501 7.3.2: RECENT accompanies a new EXISTS.
		s.enc.Untagged().Number(uint32(len(v.recent))).SP().Atom("RECENT").CRLF()
	}
}

// systemFlags are the flags of RFC 9051 2.3.2 a client may set.
var systemFlags = []string{imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagSeen, imap.FlagDraft}

// writeFlags sends the FLAGS response (RFC 9051 7.3.5).
func (s *session) writeFlags() {
	v := s.sel
	flags := slices.Clone(systemFlags)
	kws := make([]string, 0, len(v.keywords))
	for k := range v.keywords {
		kws = append(kws, k)
	}
	slices.Sort(kws)
	flags = append(flags, kws...)
	if !s.rev2 {
		flags = append(flags, imap.FlagRecent)
	}
	s.enc.Untagged().Atom("FLAGS").SP().FlagList(flags).CRLF()
	v.newFlags = false
}

// writeFlagList writes a message's flags, with \Recent for IMAP4rev1
// clients when the message is recent in this session (RFC 3501 2.3.2).
func (s *session) writeFlagList(uid uint32, flags []string) {
	if !s.rev2 && s.sel != nil && s.sel.recent[uid] {
		flags = append(slices.Clip(flags), imap.FlagRecent)
	}
	s.enc.FlagList(flags)
}

// drainChanges discards feed changes while no mailbox is selected, so the
// subscription does not overflow for nothing.
func (s *session) drainChanges() {
	if s.sub == nil {
		return
	}
	for {
		select {
		case _, ok := <-s.sub.C():
			if !ok {
				s.sub = nil
				return
			}
		default:
			s.sub.ClearOverflow()
			return
		}
	}
}
