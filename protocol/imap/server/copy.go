package server

import (
	"errors"
	"strings"

	"posthorn/mailbox"
	"posthorn/protocol/imap"
)

// cmdCopy: RFC 9051 6.4.7, "UID COPY" 6.4.9, COPYUID (RFC 4315 3).
func (s *session) cmdCopy(c *imap.Command) error { return s.copyMessages(c, false) }

// cmdMove: RFC 6851 3 (RFC 9051 6.4.8).
func (s *session) cmdMove(c *imap.Command) error { return s.copyMessages(c, true) }

func (s *session) copyMessages(c *imap.Command, move bool) error {
	uidMode := strings.HasPrefix(c.Name, "UID ")
	p := c.Args()
	if err := p.SP(); err != nil {
		return err
	}
	set, err := p.SeqSet()
	if err != nil {
		return err
	}
	dest, err := mailboxArg(&p)
	if err != nil {
		return err
	}
	if err := p.End(); err != nil {
		return err
	}
	v := s.sel
	if move && v.readOnly {
		return no(imap.CodeReadOnly, "Mailbox is read-only")
	}
	uids, err := s.resolve(set, uidMode)
	if err != nil {
		return err
	}
	if _, err := s.acct.Folder(dest); err != nil {
		if errors.Is(err, mailbox.ErrNoFolder) {
			// RFC 9051 6.4.7: TRYCREATE when the destination does not exist.
			return no(imap.CodeTryCreate, "No such mailbox")
		}
		return storeError(err)
	}
	if len(uids) == 0 {
		return nil
	}
	ctx, cancel := s.commandContext()
	defer cancel()
	src, dst, err := s.acct.Copy(ctx, v.name, uids, dest, move)
	if errors.Is(err, mailbox.ErrNoFolder) {
		return no(imap.CodeTryCreate, "No such mailbox")
	}
	if err != nil {
		return storeError(err)
	}
	if len(src) < len(uids) {
		s.okText = "Some messages were expunged meanwhile"
	}
	if len(src) == 0 {
		return nil
	}
	var code imap.Code
	if info, err := s.acct.Folder(dest); err == nil {
		var srcSet, dstSet imap.SeqSet
		for i := range src {
			srcSet.AddNum(src[i])
			dstSet.AddNum(dst[i])
		}
		code = imap.Code("COPYUID " + itoa(info.UIDValidity) + " " + srcSet.String() + " " + dstSet.String())
	}
	if !move {
		s.okCode = code
		return nil
	}
	// RFC 6851 4.3: COPYUID goes in an untagged OK before the EXPUNGE
	// responses, which execute sends as updates after this handler.
	if code != "" {
		s.enc.StatusResponse("", imap.StatusOK, code, "Moved")
	}
	for _, uid := range src {
		if _, ok := v.index(uid); ok {
			v.gone[uid] = true
		}
	}
	return s.enc.Err()
}
