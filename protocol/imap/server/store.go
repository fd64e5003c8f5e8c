package server

import (
	"posthorn/protocol/imap"
)

// cmdStore: RFC 9051 6.4.6 and, as "UID STORE", 6.4.9.
//
//	store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP
//	                  (flag-list / (flag *(SP flag)))
func (s *session) cmdStore(c *imap.Command) error {
	uidMode := c.Name == "UID STORE"
	p := c.Args()
	if err := p.SP(); err != nil {
		return err
	}
	set, err := p.SeqSet()
	if err != nil {
		return err
	}
	if err := p.SP(); err != nil {
		return err
	}
	op := byte('=')
	if p.Accept('+') {
		op = '+'
	} else if p.Accept('-') {
		op = '-'
	}
	kw, err := p.Keyword()
	if err != nil {
		return err
	}
	silent := false
	switch kw {
	case "FLAGS":
	case "FLAGS.SILENT":
		silent = true
	default:
		return bad("Expected FLAGS or FLAGS.SILENT")
	}
	if err := p.SP(); err != nil {
		return err
	}
	var flags []string
	if p.Peek() == '(' {
		if flags, err = p.FlagList(); err != nil {
			return err
		}
	} else {
		for {
			f, err := p.Flag()
			if err != nil {
				return err
			}
			flags = append(flags, f)
			if !p.Accept(' ') {
				break
			}
		}
	}
	if err := p.End(); err != nil {
		return err
	}
	v := s.sel
	if v.readOnly {
		return no(imap.CodeReadOnly, "Mailbox is read-only")
	}
	uids, err := s.resolve(set, uidMode)
	if err != nil {
		return err
	}
	if len(uids) == 0 {
		return nil
	}
	ctx, cancel := s.commandContext()
	defer cancel()
	own, err := s.acct.StoreFlags(ctx, v.name, uids, op, flags)
	if err != nil {
		return storeError(err)
	}
	// Other sessions may have changed these messages since the changes
	// were last taken in (when the command began), before or after this
	// STORE. Take their changes in now, telling ours apart by MODSEQ, so
	// that .SILENT does not hide them (RFC 9051 6.4.6 note: "the server
	// SHOULD send an untagged FETCH response if a change to a message's
	// flags from an external source is observed").
	s.ownChanges = make(map[uint32]uint64, len(own))
	for _, m := range own {
		s.ownChanges[m.UID] = m.ModSeq
	}
	s.pollChanges()
	s.ownChanges = nil
	infos, err := s.messageInfos(uids)
	if err != nil {
		return storeError(err)
	}
	expunged := false
	for _, uid := range uids {
		m, ok := infos[uid]
		i, inView := v.index(uid)
		if !ok || !inView {
			expunged = true
			continue
		}
		if silent {
			// RFC 9051 6.4.6: .SILENT suppresses the FETCH for our own
			// change; a change made elsewhere is still reported, with the
			// flags as they are now. Without one, the MODSEQ stays where
			// the feed left it, so later changes still arrive.
			if _, pending := v.changed[uid]; pending {
				v.changed[uid] = m.Flags
				v.modSeqs[i] = max(v.modSeqs[i], m.ModSeq)
			}
			continue
		}
		v.modSeqs[i] = max(v.modSeqs[i], m.ModSeq)
		delete(v.changed, uid)
		v.noteKeywords(m.Flags)
		if v.newFlags {
			s.writeFlags()
		}
		// RFC 9051 6.4.6: the new flags of each message; UID STORE
		// includes the UID (RFC 9051 6.4.9).
		s.enc.Untagged().Number(uint32(i + 1)).SP().Atom("FETCH").SP().BeginList()
		if uidMode {
			s.enc.Atom("UID").SP().Number(uid).SP()
		}
		s.enc.Atom("FLAGS").SP()
		s.writeFlagList(uid, m.Flags)
		s.enc.EndList().CRLF()
	}
	if expunged {
		s.okCode, s.okText = imap.CodeExpungeIssued, "Some messages were expunged meanwhile"
	}
	return s.enc.Err()
}
