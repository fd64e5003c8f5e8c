package server

import (
	"slices"

	"posthorn/mailbox"
	"posthorn/protocol/imap"
)

// cmdSelect: RFC 9051 6.3.2.
func (s *session) cmdSelect(c *imap.Command) error { return s.open(c, false) }

// cmdExamine: RFC 9051 6.3.3, the read-only SELECT.
func (s *session) cmdExamine(c *imap.Command) error { return s.open(c, true) }

func (s *session) open(c *imap.Command, readOnly bool) error {
	p := c.Args()
	name, err := mailboxArg(&p)
	if err != nil {
		return err
	}
	if err := p.End(); err != nil {
		return err
	}
	if s.sel != nil {
		// RFC 9051 6.3.2: the current mailbox is closed first, without
		// expunging, and the client is told with OK [CLOSED].
		s.unselect()
		s.enc.StatusResponse("", imap.StatusOK, imap.CodeClosed, "Previous mailbox closed")
	}
	// Stale changes are dropped first: the store read below is newer, and
	// changes published after it are applied by UID and MODSEQ.
	s.drainChanges()
	info, err := s.acct.Folder(name)
	if err != nil {
		return storeError(err)
	}
	v := &view{
		name: info.Name, readOnly: readOnly, uidValidity: info.UIDValidity,
		gone: map[uint32]bool{}, changed: map[uint32][]string{},
		keywords: map[string]bool{}, recent: map[uint32]bool{},
		recentAt: recentKey{s.user, info.Name, info.UIDValidity},
	}
	var firstUnseen uint32
	err = s.acct.ForEachMessage(info.Name, 1, func(m mailbox.MessageInfo) error {
		v.uids = append(v.uids, m.UID)
		v.modSeqs = append(v.modSeqs, m.ModSeq)
		v.noteKeywords(m.Flags)
		if firstUnseen == 0 && !slices.Contains(m.Flags, imap.FlagSeen) {
			firstUnseen = uint32(len(v.uids))
		}
		return nil
	})
	if err != nil {
		return storeError(err)
	}
	v.reported = len(v.uids)
	if !s.rev2 {
		// RFC 3501 2.3.2: messages that arrived since a session last
		// selected the mailbox are \Recent here; SELECT claims them,
		// EXAMINE only looks.
		var mark uint32
		if readOnly {
			mark = s.srv.recent.mark(v.recentAt)
		} else {
			mark = s.srv.recent.claim(v.recentAt, v.lastUID())
		}
		i, _ := v.index(mark + 1)
		for _, uid := range v.uids[i:] {
			v.recent[uid] = true
		}
	}
	s.sel = v
	s.state = stateSelected

	// RFC 9051 6.3.2 (and RFC 3501 6.3.1 for the rev1 extras).
	s.writeFlags()
	s.enc.Untagged().Number(uint32(v.reported)).SP().Atom("EXISTS").CRLF()
	if !s.rev2 {
		s.enc.Untagged().Number(uint32(len(v.recent))).SP().Atom("RECENT").CRLF()
		if firstUnseen > 0 {
			s.enc.StatusResponse("", imap.StatusOK, imap.Code("UNSEEN "+itoa(firstUnseen)), "First unseen")
		}
	}
	if readOnly {
		s.enc.StatusResponse("", imap.StatusOK, imap.Code("PERMANENTFLAGS ()"), "Read-only mailbox")
	} else {
		s.enc.Untagged().Atom("OK").SP().BeginCode(imap.CodePermanentFlags).SP().
			FlagList(append(slices.Clone(systemFlags), imap.FlagWildcard)).EndCode().SP().Text("Flags permitted").CRLF()
	}
	s.enc.StatusResponse("", imap.StatusOK, imap.Code("UIDVALIDITY "+itoa(info.UIDValidity)), "UIDs valid")
	// The messages were read after the folder's record: a message
	// appended in between is in EXISTS, so UIDNEXT must be above it
	// (RFC 9051 2.3.1.1); messages after it arrive as EXISTS later.
	uidNext := max(info.UIDNext, v.lastUID()+1)
	s.enc.StatusResponse("", imap.StatusOK, imap.Code("UIDNEXT "+itoa(uidNext)), "Predicted next UID")
	if s.rev2 {
		// RFC 9051 6.3.2: a LIST response with the mailbox name.
		entries, err := s.listEntries()
		if err == nil {
			for _, e := range entries {
				if e.name == info.Name {
					s.writeListEntry("LIST", e, listOptions{}, false)
				}
			}
		}
	}
	if readOnly {
		s.okCode, s.okText = imap.CodeReadOnly, "EXAMINE completed"
	} else {
		s.okCode, s.okText = imap.CodeReadWrite, "SELECT completed"
	}
	return s.enc.Err()
}

// unselect leaves the selected state (RFC 9051 3.2).
func (s *session) unselect() {
	s.sel = nil
	s.saved = nil
	s.state = stateAuthenticated
}

// cmdClose: RFC 9051 6.4.1: expunge \Deleted messages silently (unless
// read-only), then leave the mailbox.
func (s *session) cmdClose(c *imap.Command) error {
	p := c.Args()
	if err := p.End(); err != nil {
		return err
	}
	if !s.sel.readOnly {
		uids, err := s.deletedUIDs(nil)
		if err != nil {
			return storeError(err)
		}
		if len(uids) > 0 {
			ctx, cancel := s.commandContext()
			defer cancel()
			if _, err := s.acct.Expunge(ctx, s.sel.name, uids); err != nil {
				return storeError(err)
			}
		}
	}
	s.unselect()
	return nil
}

// cmdUnselect: RFC 3691 2: leave the mailbox without expunging.
func (s *session) cmdUnselect(c *imap.Command) error {
	p := c.Args()
	if err := p.End(); err != nil {
		return err
	}
	s.unselect()
	return nil
}

// cmdExpunge: RFC 9051 6.4.3.
func (s *session) cmdExpunge(c *imap.Command) error {
	p := c.Args()
	if err := p.End(); err != nil {
		return err
	}
	return s.expunge(nil)
}

// cmdUIDExpunge: RFC 4315 2.1 (RFC 9051 6.4.9): only the given UIDs.
func (s *session) cmdUIDExpunge(c *imap.Command) error {
	p := c.Args()
	if err := p.SP(); err != nil {
		return err
	}
	set, err := p.SeqSet()
	if err != nil {
		return err
	}
	if err := p.End(); err != nil {
		return err
	}
	uids, err := s.resolve(set, true)
	if err != nil {
		return err
	}
	if len(uids) == 0 {
		return nil
	}
	return s.expunge(uids)
}

// expunge removes the \Deleted messages (among only, when given) and
// reports each with EXPUNGE (RFC 9051 7.5.1) as execute sends updates.
func (s *session) expunge(only []uint32) error {
	v := s.sel
	if v.readOnly {
		return no(imap.CodeReadOnly, "Mailbox is read-only")
	}
	uids, err := s.deletedUIDs(only)
	if err != nil {
		return storeError(err)
	}
	if len(uids) == 0 {
		return nil
	}
	ctx, cancel := s.commandContext()
	defer cancel()
	removed, err := s.acct.Expunge(ctx, v.name, uids)
	for _, uid := range removed {
		if _, ok := v.index(uid); ok {
			v.gone[uid] = true
		}
	}
	return storeError(err)
}

// deletedUIDs lists the view's messages with \Deleted, limited to only
// when it is not nil.
func (s *session) deletedUIDs(only []uint32) ([]uint32, error) {
	v := s.sel
	var out []uint32
	err := s.acct.ForEachMessage(v.name, 1, func(m mailbox.MessageInfo) error {
		if !slices.Contains(m.Flags, imap.FlagDeleted) {
			return nil
		}
		if _, ok := v.index(m.UID); !ok {
			return nil // arrived after the client's view: not the client's to expunge
		}
		if only != nil {
			if _, found := slices.BinarySearch(only, m.UID); !found {
				return nil
			}
		}
		out = append(out, m.UID)
		return nil
	})
	return out, err
}
