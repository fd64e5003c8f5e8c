package server

import (
	"errors"
	"net/mail"
	"strings"

	"posthorn/mailbox"
	"posthorn/mailbox/message"
	"posthorn/protocol/imap"
)

// searchMsg is one message under evaluation; its bytes are loaded only when
// a key needs them (HEADER, BODY, TEXT, SENT*).
type searchMsg struct {
	seq    uint32
	info   mailbox.MessageInfo
	loaded bool
	raw    []byte
	part   *message.Part
}

// searchCtx holds what keys are evaluated against.
type searchCtx struct {
	s       *session
	lastSeq uint32
	lastUID uint32
	err     error // a store failure while loading a message
	gone    bool  // a message disappeared while loading
}

// cmdSearch: RFC 9051 6.4.4, "UID SEARCH" 6.4.9, ESEARCH (RFC 4731),
// SEARCHRES (RFC 5182).
func (s *session) cmdSearch(c *imap.Command) error {
	uidMode := c.Name == "UID SEARCH"
	p := c.Args()
	opt, prog, err := parseSearch(&p)
	if err != nil {
		return err
	}
	if err := p.End(); err != nil {
		return err
	}
	v := s.sel
	uids := v.uids[:v.reported]
	infos, err := s.messageInfos(uids)
	if err != nil {
		return storeError(err)
	}
	ctx := &searchCtx{s: s, lastSeq: uint32(v.reported), lastUID: v.lastUID()}
	var matched []uint32 // sequence numbers, ascending
	expunged := false
	for i, uid := range uids {
		info, ok := infos[uid]
		if !ok || v.gone[uid] {
			expunged = expunged || !ok
			continue
		}
		m := &searchMsg{seq: uint32(i + 1), info: info}
		if ctx.match(prog, m) {
			matched = append(matched, m.seq)
		}
		if ctx.err != nil {
			return storeError(ctx.err)
		}
	}
	expunged = expunged || ctx.gone
	if expunged {
		// RFC 9051 7.1 EXPUNGEISSUED (its example is a SEARCH).
		s.okCode, s.okText = imap.CodeExpungeIssued, "Some messages were expunged meanwhile"
	}
	toUID := func(seq uint32) uint32 { return v.uids[seq-1] }
	number := func(seq uint32) uint32 {
		if uidMode {
			return toUID(seq)
		}
		return seq
	}
	if opt.save {
		// RFC 5182 2.1: with MIN or MAX only those are saved.
		s.saved = s.saved[:0:0]
		switch {
		case len(matched) == 0:
		case opt.min || opt.max:
			if opt.min {
				s.saved = append(s.saved, toUID(matched[0]))
			}
			if opt.max && (!opt.min || len(matched) > 1) {
				s.saved = append(s.saved, toUID(matched[len(matched)-1]))
			}
		default:
			for _, seq := range matched {
				s.saved = append(s.saved, toUID(seq))
			}
		}
		if !opt.min && !opt.max && !opt.all && !opt.count {
			return nil // RFC 5182 2.4: SAVE alone returns no ESEARCH
		}
	}
	if !opt.esearch && !s.rev2 {
		// RFC 3501 7.2.5: "* SEARCH" with the numbers.
		s.enc.Untagged().Atom("SEARCH")
		for _, seq := range matched {
			s.enc.SP().Number(number(seq))
		}
		return s.enc.CRLF()
	}
	if !opt.esearch {
		opt.all = true // RFC 9051 6.4.4: SEARCH without RETURN is RETURN (ALL)
	}
	// RFC 4731 3.1 / RFC 9051 7.3.4: ESEARCH with the command's tag.
	s.enc.Untagged().Atom("ESEARCH").SP().BeginList().Atom("TAG").SP().String(c.Tag).EndList()
	if uidMode {
		s.enc.SP().Atom("UID")
	}
	if len(matched) > 0 {
		if opt.min {
			s.enc.SP().Atom("MIN").SP().Number(number(matched[0]))
		}
		if opt.max {
			s.enc.SP().Atom("MAX").SP().Number(number(matched[len(matched)-1]))
		}
		if opt.all {
			var set imap.SeqSet
			for _, seq := range matched {
				set.AddNum(number(seq))
			}
			s.enc.SP().Atom("ALL").SP().SeqSet(set)
		}
	}
	if opt.count {
		s.enc.SP().Atom("COUNT").SP().Number(uint32(len(matched)))
	}
	return s.enc.CRLF()
}

// match evaluates key on m.
func (c *searchCtx) match(k *searchKey, m *searchMsg) bool {
	switch k.op {
	case opAnd:
		for _, sub := range k.sub {
			if !c.match(sub, m) {
				return false
			}
		}
		return true
	case opOr:
		return c.match(k.sub[0], m) || c.match(k.sub[1], m)
	case opNot:
		return !c.match(k.sub[0], m)
	case opAll:
		return true
	case opSeqSet:
		return c.inSet(k.set, m.seq, c.lastSeq, m.info.UID)
	case opUIDSet:
		return c.inSet(k.set, m.info.UID, c.lastUID, m.info.UID)
	case opFlag:
		return hasFlag(m.info.Flags, k.flag)
	case opNoFlag:
		return !hasFlag(m.info.Flags, k.flag)
	case opRecent:
		return c.recent(m)
	case opNew:
		return c.recent(m) && !hasFlag(m.info.Flags, imap.FlagSeen)
	case opOld:
		return !c.recent(m)
	case opBefore:
		return dayOf(m.info.InternalDate) < k.day
	case opOn:
		return dayOf(m.info.InternalDate) == k.day
	case opSince:
		return dayOf(m.info.InternalDate) >= k.day
	case opLarger:
		return m.info.Size > k.size
	case opSmaller:
		return m.info.Size < k.size
	}
	if !c.load(m) {
		return false
	}
	switch k.op {
	case opSentBefore, opSentOn, opSentSince:
		day, ok := sentDay(m)
		switch {
		case !ok:
			return false
		case k.op == opSentBefore:
			return day < k.day
		case k.op == opSentOn:
			return day == k.day
		}
		return day >= k.day
	case opHeader:
		for _, val := range headerValues(m, k.field) {
			if message.ContainsFold([]byte(val), k.text) {
				return true
			}
		}
		return false
	case opBody:
		return message.ContainsFold(m.part.BodyText(m.raw, 0), k.text)
	case opText:
		// RFC 9051 6.4.4: TEXT is the header or the body.
		return message.ContainsFold(m.part.HeaderText(m.raw, 0), k.text) ||
			message.ContainsFold(m.part.BodyText(m.raw, 0), k.text)
	}
	return false
}

// inSet matches a number against a set; "$" (RFC 5182) is the saved UIDs.
func (c *searchCtx) inSet(set imap.SeqSet, n, last, uid uint32) bool {
	if set.Saved {
		for _, u := range c.s.saved {
			if u == uid {
				return true
			}
		}
	}
	return set.Contains(n, last)
}

func (c *searchCtx) recent(m *searchMsg) bool {
	return !c.s.rev2 && c.s.sel.recent[m.info.UID]
}

// load reads the message's bytes and structure once.
func (c *searchCtx) load(m *searchMsg) bool {
	if m.loaded {
		return m.part != nil
	}
	m.loaded = true
	name := c.s.sel.name
	raw, err := c.s.acct.Raw(name, m.info.UID)
	if errors.Is(err, mailbox.ErrNotFound) {
		c.gone = true
		return false
	}
	if err != nil {
		c.err = err
		return false
	}
	blob, _ := c.s.acct.Meta(name, m.info.UID)
	m.raw, m.part = raw, message.Load(blob, raw)
	return true
}

// headerValues returns the decoded values of a header field of the message
// (RFC 9051 6.4.4: FROM, TO, CC, BCC, SUBJECT and HEADER match fields).
func headerValues(m *searchMsg, field string) []string {
	return m.part.HeaderValue(m.raw, field)
}

// sentDay is the day of the Date header in its own zone (RFC 9051 6.4.4
// SENTBEFORE/SENTON/SENTSINCE: "disregarding time and timezone").
func sentDay(m *searchMsg) (int, bool) {
	vals := m.part.HeaderValue(m.raw, "Date")
	if len(vals) == 0 {
		return 0, false
	}
	t, err := mail.ParseDate(strings.TrimSpace(vals[0]))
	if err != nil {
		return 0, false
	}
	return dayOf(t), true
}

// hasFlag compares flags without regard to case (RFC 9051 2.3.2).
func hasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if strings.EqualFold(x, f) {
			return true
		}
	}
	return false
}
