package server

import (
	"strings"

	"posthorn/mailbox"
	"posthorn/protocol/imap"
)

// mailboxArg reads SP mailbox, the single argument of several commands.
func mailboxArg(p *imap.Parser) (string, error) {
	if err := p.SP(); err != nil {
		return "", err
	}
	return p.Mailbox()
}

// cmdCreate: RFC 9051 6.3.4. A trailing hierarchy delimiter only says the
// client means to create children; the name is created without it.
func (s *session) cmdCreate(c *imap.Command) error {
	p := c.Args()
	name, err := mailboxArg(&p)
	if err != nil {
		return err
	}
	if err := p.End(); err != nil {
		return err
	}
	name = strings.TrimSuffix(name, mailbox.HierarchyDelimiter)
	if strings.EqualFold(name, "INBOX") {
		return no(imap.CodeAlreadyExists, "INBOX always exists")
	}
	return storeError(s.acct.CreateFolder(name, mailbox.RoleNone))
}

// cmdDelete: RFC 9051 6.3.5. INBOX cannot be deleted; the children of a
// deleted mailbox stay.
func (s *session) cmdDelete(c *imap.Command) error {
	p := c.Args()
	name, err := mailboxArg(&p)
	if err != nil {
		return err
	}
	if err := p.End(); err != nil {
		return err
	}
	return storeError(s.acct.DeleteFolder(name))
}

// cmdRename: RFC 9051 6.3.6. Renaming INBOX moves its messages to the new
// mailbox and leaves INBOX empty (done by the store).
func (s *session) cmdRename(c *imap.Command) error {
	p := c.Args()
	from, err := mailboxArg(&p)
	if err != nil {
		return err
	}
	to, err := mailboxArg(&p)
	if err != nil {
		return err
	}
	if err := p.End(); err != nil {
		return err
	}
	to = strings.TrimSuffix(to, mailbox.HierarchyDelimiter)
	return storeError(s.acct.RenameFolder(from, to))
}

// cmdSubscribe: RFC 9051 6.3.7. Only existing mailboxes can be subscribed.
func (s *session) cmdSubscribe(c *imap.Command) error { return s.subscribe(c, true) }

// cmdUnsubscribe: RFC 9051 6.3.8.
func (s *session) cmdUnsubscribe(c *imap.Command) error { return s.subscribe(c, false) }

func (s *session) subscribe(c *imap.Command, on bool) error {
	p := c.Args()
	name, err := mailboxArg(&p)
	if err != nil {
		return err
	}
	if err := p.End(); err != nil {
		return err
	}
	return storeError(s.acct.SetSubscribed(name, on))
}

// statusItems are the STATUS data items (RFC 9051 6.3.11; SIZE RFC 8438;
// RECENT is IMAP4rev1 only, RFC 3501 6.3.10).
var statusItems = map[string]bool{
	"MESSAGES": true, "UIDNEXT": true, "UIDVALIDITY": true, "UNSEEN": true,
	"DELETED": true, "SIZE": true, "RECENT": true,
}

// statusItemList reads "(" status-att *(SP status-att) ")".
func statusItemList(p *imap.Parser) ([]string, error) {
	var items []string
	err := p.List(func(p *imap.Parser) error {
		kw, err := p.Keyword()
		if err != nil {
			return err
		}
		if !statusItems[kw] {
			return bad("Unknown STATUS item")
		}
		items = append(items, kw)
		return nil
	})
	if err == nil && len(items) == 0 {
		err = bad("STATUS needs at least one item")
	}
	return items, err
}

// cmdStatus: RFC 9051 6.3.11.
func (s *session) cmdStatus(c *imap.Command) error {
	p := c.Args()
	name, err := mailboxArg(&p)
	if err != nil {
		return err
	}
	if err := p.SP(); err != nil {
		return err
	}
	items, err := statusItemList(&p)
	if err != nil {
		return err
	}
	if err := p.End(); err != nil {
		return err
	}
	info, err := s.acct.Folder(name)
	if err != nil {
		return storeError(err)
	}
	return s.writeStatus(info, items)
}

// writeStatus writes "* STATUS name (item value ...)" (RFC 9051 7.3.1).
func (s *session) writeStatus(info mailbox.FolderInfo, items []string) error {
	s.enc.Untagged().Atom("STATUS").SP().Mailbox(info.Name).SP().BeginList()
	for i, it := range items {
		if i > 0 {
			s.enc.SP()
		}
		s.enc.Atom(it).SP()
		switch it {
		case "MESSAGES":
			s.enc.Number(info.Messages)
		case "UIDNEXT":
			s.enc.Number(info.UIDNext)
		case "UIDVALIDITY":
			s.enc.Number(info.UIDValidity)
		case "UNSEEN":
			s.enc.Number(info.Unseen)
		case "DELETED":
			s.enc.Number(info.Deleted)
		case "SIZE":
			s.enc.Number64(info.Size)
		case "RECENT":
			s.enc.Number(s.recentCount(info))
		}
	}
	return s.enc.EndList().CRLF()
}

// recentCount counts the messages no session has seen as \Recent yet.
func (s *session) recentCount(info mailbox.FolderInfo) uint32 {
	if s.rev2 {
		return 0
	}
	mark := s.srv.recent.mark(recentKey{s.user, info.Name, info.UIDValidity})
	if s.sel != nil && s.sel.name == info.Name {
		return uint32(len(s.sel.recent))
	}
	var n uint32
	s.acct.ForEachMessage(info.Name, mark+1, func(mailbox.MessageInfo) error {
		n++
		return nil
	})
	return n
}
