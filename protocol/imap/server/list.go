package server

import (
	"slices"
	"strings"

	"posthorn/mailbox"
	"posthorn/protocol/imap"
)

const delim = mailbox.HierarchyDelimiter

// maxPattern bounds a LIST pattern in runes; matching costs pattern × name.
const maxPattern = 1024

// listOptions are the selection and return options of RFC 5258 3, RFC 6154
// 5.1 (SPECIAL-USE) and RFC 5819 (STATUS).
type listOptions struct {
	selSubscribed, selSpecialUse, recursive bool
	retSubscribed, retChildren, retSpecial  bool
	status                                  []string
	extended                                bool // any option given: LIST-EXTENDED rules
}

// listEntry is one name LIST may return: a folder, or an ancestor level
// that does not exist (RFC 5258 3: \NonExistent).
type listEntry struct {
	name     string
	info     mailbox.FolderInfo
	exists   bool
	children bool
	subChild bool // a descendant is subscribed (CHILDINFO, RFC 5258 3.5)
}

// cmdList: RFC 9051 6.3.9 (LIST-EXTENDED, RFC 5258).
func (s *session) cmdList(c *imap.Command) error {
	p := c.Args()
	if err := p.SP(); err != nil {
		return err
	}
	var opt listOptions
	if p.Peek() == '(' {
		opt.extended = true
		if err := p.List(func(p *imap.Parser) error { return opt.selection(p) }); err != nil {
			return err
		}
		if opt.recursive && !opt.selSubscribed {
			// RFC 5258 3: RECURSIVEMATCH alone is a BAD.
			return bad("RECURSIVEMATCH needs another selection option")
		}
		if err := p.SP(); err != nil {
			return err
		}
	}
	ref, err := p.Mailbox()
	if err != nil {
		return err
	}
	if err := p.SP(); err != nil {
		return err
	}
	var patterns []string
	if p.Peek() == '(' {
		opt.extended = true
		err = p.List(func(p *imap.Parser) error {
			pat, err := p.ListMailbox()
			patterns = append(patterns, pat)
			return err
		})
	} else {
		var pat string
		pat, err = p.ListMailbox()
		patterns = append(patterns, pat)
	}
	if err != nil {
		return err
	}
	if p.Accept(' ') {
		if !p.AcceptKeyword("RETURN") {
			return bad("Expected RETURN")
		}
		if err := p.SP(); err != nil {
			return err
		}
		opt.extended = true
		if err := p.List(func(p *imap.Parser) error { return opt.returnOption(p) }); err != nil {
			return err
		}
	}
	if err := p.End(); err != nil {
		return err
	}
	if len(patterns) == 1 && patterns[0] == "" && !opt.extended {
		// RFC 9051 6.3.9: an empty pattern asks for the delimiter and root.
		s.enc.Untagged().Atom("LIST").SP().BeginList().Flag(`\Noselect`).EndList().
			SP().Quoted(delim).SP().String("").CRLF()
		return s.enc.Err()
	}
	if opt.selSubscribed {
		opt.retSubscribed = true // RFC 5258 3: SUBSCRIBED selection implies the return option
	}
	entries, err := s.listEntries()
	if err != nil {
		return storeError(err)
	}
	for _, e := range entries {
		if !matchAny(ref, patterns, e.name) {
			continue
		}
		childInfo := false
		switch {
		case opt.selSubscribed && !(e.exists && e.info.Subscribed):
			if !opt.recursive || !e.subChild {
				continue
			}
			childInfo = true
		case opt.selSpecialUse && (!e.exists || e.info.Role == ""):
			continue
		}
		s.writeListEntry("LIST", e, opt, childInfo)
		if opt.status != nil && e.exists {
			s.writeStatus(e.info, opt.status)
		}
	}
	return s.enc.Err()
}

func (o *listOptions) selection(p *imap.Parser) error {
	kw, err := p.Keyword()
	if err != nil {
		return err
	}
	switch kw {
	case "SUBSCRIBED":
		o.selSubscribed = true
	case "SPECIAL-USE":
		o.selSpecialUse = true
	case "RECURSIVEMATCH":
		o.recursive = true
	case "REMOTE": // RFC 5258 3: no remote mailboxes here
	default:
		return bad("Unknown LIST selection option")
	}
	return nil
}

func (o *listOptions) returnOption(p *imap.Parser) error {
	kw, err := p.Keyword()
	if err != nil {
		return err
	}
	switch kw {
	case "SUBSCRIBED":
		o.retSubscribed = true
	case "CHILDREN":
		o.retChildren = true
	case "SPECIAL-USE":
		o.retSpecial = true
	case "STATUS":
		if err := p.SP(); err != nil {
			return err
		}
		items, err := statusItemList(p)
		if err != nil {
			return err
		}
		o.status = items
	default:
		return bad("Unknown LIST return option")
	}
	return nil
}

// listEntries returns every folder and every missing ancestor level, INBOX
// first, then by name.
func (s *session) listEntries() ([]*listEntry, error) {
	folders, err := s.acct.Folders()
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*listEntry, len(folders))
	for _, f := range folders {
		byName[f.Name] = &listEntry{name: f.Name, info: f, exists: true}
	}
	for _, f := range folders {
		name := f.Name
		for {
			i := strings.LastIndex(name, delim)
			if i < 0 {
				break
			}
			name = name[:i]
			e := byName[name]
			if e == nil {
				e = &listEntry{name: name}
				byName[name] = e
			}
			e.children = true
			if f.Subscribed {
				e.subChild = true
			}
		}
	}
	out := make([]*listEntry, 0, len(byName))
	for _, e := range byName {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *listEntry) int {
		switch {
		case a.name == "INBOX":
			return -1
		case b.name == "INBOX":
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	return out, nil
}

// writeListEntry writes one LIST or LSUB response (RFC 9051 7.3.2).
func (s *session) writeListEntry(kind string, e *listEntry, opt listOptions, childInfo bool) {
	var attrs []string
	if !e.exists {
		if kind == "LSUB" || !opt.extended && !s.rev2 {
			attrs = append(attrs, `\Noselect`)
		} else {
			attrs = append(attrs, `\NonExistent`) // RFC 5258 3.4, implies \Noselect
		}
	}
	// RFC 9051 7.3.2 (RFC 3348): children are always reported; it is cheap.
	if kind == "LIST" {
		if e.children {
			attrs = append(attrs, `\HasChildren`)
		} else {
			attrs = append(attrs, `\HasNoChildren`)
		}
	}
	if kind == "LIST" && opt.retSubscribed && e.exists && e.info.Subscribed {
		attrs = append(attrs, `\Subscribed`)
	}
	if kind == "LIST" && e.exists && e.info.Role != "" {
		// RFC 6154 2: special-use attributes are returned with LIST.
		attrs = append(attrs, e.info.Role)
	}
	s.enc.Untagged().Atom(kind).SP().BeginList()
	for i, a := range attrs {
		if i > 0 {
			s.enc.SP()
		}
		s.enc.Flag(a)
	}
	s.enc.EndList().SP().Quoted(delim).SP().Mailbox(e.name)
	if childInfo {
		// RFC 5258 3.5: the name matched only through a subscribed child.
		s.enc.SP().BeginList().String("CHILDINFO").SP().BeginList().String("SUBSCRIBED").EndList().EndList()
	}
	s.enc.CRLF()
}

// cmdLsub: RFC 3501 6.3.9 (deprecated by RFC 9051 but still used).
// An unsubscribed level whose children are subscribed is returned with
// \Noselect when "%" matched it.
func (s *session) cmdLsub(c *imap.Command) error {
	p := c.Args()
	ref, err := mailboxArg(&p)
	if err != nil {
		return err
	}
	if err := p.SP(); err != nil {
		return err
	}
	pat, err := p.ListMailbox()
	if err != nil {
		return err
	}
	if err := p.End(); err != nil {
		return err
	}
	if pat == "" {
		s.enc.Untagged().Atom("LSUB").SP().BeginList().Flag(`\Noselect`).EndList().
			SP().Quoted(delim).SP().String("").CRLF()
		return s.enc.Err()
	}
	entries, err := s.listEntries()
	if err != nil {
		return storeError(err)
	}
	for _, e := range entries {
		if !matchAny(ref, []string{pat}, e.name) {
			continue
		}
		subscribed := e.exists && e.info.Subscribed
		if !subscribed && !(e.subChild && strings.HasSuffix(pat, "%")) {
			continue
		}
		if !subscribed {
			e = &listEntry{name: e.name} // shown as \Noselect
		}
		s.writeListEntry("LSUB", e, listOptions{}, false)
	}
	return s.enc.Err()
}

// matchAny reports whether name matches reference+pattern for one of the
// patterns (RFC 9051 6.3.9: "*" matches anything, "%" anything but the
// delimiter; INBOX is case-insensitive).
func matchAny(ref string, patterns []string, name string) bool {
	for _, pat := range patterns {
		full := pat
		if ref != "" && !strings.HasPrefix(pat, delim) {
			// RFC 9051 6.3.9: the reference is a prefix; add the delimiter
			// when neither side has it (as most servers do).
			if strings.HasSuffix(ref, delim) || pat == "" {
				full = ref + pat
			} else {
				full = ref + delim + pat
			}
		}
		if first, rest, ok := strings.Cut(full, delim); strings.EqualFold(first, "INBOX") {
			full = "INBOX"
			if ok {
				full += delim + rest
			}
		}
		if matchPattern([]rune(full), []rune(name)) {
			return true
		}
	}
	return false
}

// matchPattern matches name against a LIST pattern by dynamic
// programming: O(len(pat)·len(name)), no backtracking blow-up.
func matchPattern(pat, name []rune) bool {
	if len(pat) > maxPattern {
		return false
	}
	// row[j]: pat[:i] matches name[:j].
	row := make([]bool, len(name)+1)
	next := make([]bool, len(name)+1)
	row[0] = true
	for _, pc := range pat {
		switch pc {
		case '*':
			next[0] = row[0]
			for j := 1; j <= len(name); j++ {
				next[j] = row[j] || next[j-1]
			}
		case '%':
			next[0] = row[0]
			for j := 1; j <= len(name); j++ {
				next[j] = row[j] || (next[j-1] && name[j-1] != '/')
			}
		default:
			next[0] = false
			for j := 1; j <= len(name); j++ {
				next[j] = row[j-1] && name[j-1] == pc
			}
		}
		row, next = next, row
	}
	return row[len(name)]
}
