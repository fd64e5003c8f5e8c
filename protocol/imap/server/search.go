package server

import (
	"strings"
	"time"

	"posthorn/protocol/imap"
)

// searchOp is a search key of RFC 9051 6.4.4 (and NEW, OLD, RECENT of RFC
// 3501 6.4.4).
type searchOp uint8

const (
	opAnd searchOp = iota // sub: all must match (the program, "(...)")
	opOr                  // sub[0] or sub[1]
	opNot                 // not sub[0]
	opAll
	opSeqSet // set: message numbers
	opUIDSet // set: UIDs
	opFlag   // flag set
	opNoFlag // flag not set
	opRecent
	opNew
	opOld
	opBefore // internal date, by day
	opOn
	opSince
	opSentBefore // Date header, by day
	opSentOn
	opSentSince
	opLarger
	opSmaller
	opHeader // header field str contains text
	opBody
	opText
)

// searchKey is one node of a search program.
type searchKey struct {
	op    searchOp
	sub   []*searchKey
	set   imap.SeqSet
	flag  string
	field string // header field name (FROM, TO ... are HEADER on that field)
	text  []byte
	day   int // yyyymmdd
	size  int64
}

// maxSearchDepth bounds NOT/OR/parenthesis nesting: each level is a
// recursive call, and NOT chains need no parentheses the decoder counts.
const maxSearchDepth = 64

// searchOptions are the RETURN options of RFC 4731 3.1 and SAVE of RFC
// 5182 2.
type searchOptions struct {
	esearch              bool // RETURN given: answer with ESEARCH
	min, max, all, count bool
	save                 bool
}

// parseSearch reads [search-return-opts] SP search-program.
func parseSearch(p *imap.Parser) (searchOptions, *searchKey, error) {
	var opt searchOptions
	if err := p.SP(); err != nil {
		return opt, nil, err
	}
	if p.AcceptKeyword("RETURN") {
		opt.esearch = true
		if err := p.SP(); err != nil {
			return opt, nil, err
		}
		err := p.List(func(p *imap.Parser) error {
			kw, err := p.Keyword()
			if err != nil {
				return err
			}
			switch kw {
			case "MIN":
				opt.min = true
			case "MAX":
				opt.max = true
			case "ALL":
				opt.all = true
			case "COUNT":
				opt.count = true
			case "SAVE":
				opt.save = true
			default:
				return bad("Unknown SEARCH return option")
			}
			return nil
		})
		if err != nil {
			return opt, nil, err
		}
		if !opt.min && !opt.max && !opt.count && !opt.all && !opt.save {
			opt.all = true // RFC 4731 3.1: RETURN () means ALL
		}
		if err := p.SP(); err != nil {
			return opt, nil, err
		}
	}
	if p.AcceptKeyword("CHARSET") {
		if err := p.SP(); err != nil {
			return opt, nil, err
		}
		cs, err := p.AString()
		if err != nil {
			return opt, nil, err
		}
		// RFC 9051 6.4.4: US-ASCII and UTF-8 must be supported; others
		// get NO [BADCHARSET] with the list of what is.
		if !strings.EqualFold(cs, "UTF-8") && !strings.EqualFold(cs, "US-ASCII") {
			return opt, nil, no(imap.Code("BADCHARSET (UTF-8 US-ASCII)"), "Unsupported charset")
		}
		if err := p.SP(); err != nil {
			return opt, nil, err
		}
	}
	root := &searchKey{op: opAnd}
	for {
		k, err := parseSearchKey(p, 0)
		if err != nil {
			return opt, nil, err
		}
		root.sub = append(root.sub, k)
		if p.AtEnd() {
			break
		}
		if err := p.SP(); err != nil {
			return opt, nil, err
		}
	}
	return opt, root, nil
}

// parseSearchKey reads one search-key.
func parseSearchKey(p *imap.Parser, depth int) (*searchKey, error) {
	if depth > maxSearchDepth {
		return nil, bad("Search program nested too deeply")
	}
	switch c := p.Peek(); {
	case c == '(':
		k := &searchKey{op: opAnd}
		err := p.List(func(p *imap.Parser) error {
			sub, err := parseSearchKey(p, depth+1)
			k.sub = append(k.sub, sub)
			return err
		})
		if err == nil && len(k.sub) == 0 {
			err = bad("Empty search key list")
		}
		return k, err
	case c >= '0' && c <= '9', c == '*', c == '$':
		set, err := p.SeqSet()
		return &searchKey{op: opSeqSet, set: set}, err
	}
	kw, err := p.Keyword()
	if err != nil {
		return nil, err
	}
	flag := func(op searchOp, f string) (*searchKey, error) { return &searchKey{op: op, flag: f}, nil }
	switch kw {
	case "ALL":
		return &searchKey{op: opAll}, nil
	case "ANSWERED":
		return flag(opFlag, imap.FlagAnswered)
	case "DELETED":
		return flag(opFlag, imap.FlagDeleted)
	case "DRAFT":
		return flag(opFlag, imap.FlagDraft)
	case "FLAGGED":
		return flag(opFlag, imap.FlagFlagged)
	case "SEEN":
		return flag(opFlag, imap.FlagSeen)
	case "UNANSWERED":
		return flag(opNoFlag, imap.FlagAnswered)
	case "UNDELETED":
		return flag(opNoFlag, imap.FlagDeleted)
	case "UNDRAFT":
		return flag(opNoFlag, imap.FlagDraft)
	case "UNFLAGGED":
		return flag(opNoFlag, imap.FlagFlagged)
	case "UNSEEN":
		return flag(opNoFlag, imap.FlagSeen)
	case "RECENT":
		return &searchKey{op: opRecent}, nil
	case "NEW":
		return &searchKey{op: opNew}, nil
	case "OLD":
		return &searchKey{op: opOld}, nil
	case "KEYWORD", "UNKEYWORD":
		if err := p.SP(); err != nil {
			return nil, err
		}
		f, err := p.Atom() // flag-keyword = atom
		if err != nil {
			return nil, err
		}
		if kw == "KEYWORD" {
			return flag(opFlag, f)
		}
		return flag(opNoFlag, f)
	case "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE":
		if err := p.SP(); err != nil {
			return nil, err
		}
		d, err := p.Date()
		if err != nil {
			return nil, err
		}
		ops := map[string]searchOp{"BEFORE": opBefore, "ON": opOn, "SINCE": opSince,
			"SENTBEFORE": opSentBefore, "SENTON": opSentOn, "SENTSINCE": opSentSince}
		return &searchKey{op: ops[kw], day: dayOf(d)}, nil
	case "LARGER", "SMALLER":
		if err := p.SP(); err != nil {
			return nil, err
		}
		n, err := p.Number64()
		if err != nil {
			return nil, err
		}
		if kw == "LARGER" {
			return &searchKey{op: opLarger, size: n}, nil
		}
		return &searchKey{op: opSmaller, size: n}, nil
	case "FROM", "TO", "CC", "BCC", "SUBJECT", "BODY", "TEXT":
		if err := p.SP(); err != nil {
			return nil, err
		}
		s, err := p.AString()
		if err != nil {
			return nil, err
		}
		switch kw {
		case "BODY":
			return &searchKey{op: opBody, text: []byte(s)}, nil
		case "TEXT":
			return &searchKey{op: opText, text: []byte(s)}, nil
		}
		return &searchKey{op: opHeader, field: kw, text: []byte(s)}, nil
	case "HEADER":
		if err := p.SP(); err != nil {
			return nil, err
		}
		field, err := p.AString()
		if err != nil {
			return nil, err
		}
		if err := p.SP(); err != nil {
			return nil, err
		}
		s, err := p.AString()
		if err != nil {
			return nil, err
		}
		return &searchKey{op: opHeader, field: field, text: []byte(s)}, nil
	case "UID":
		if err := p.SP(); err != nil {
			return nil, err
		}
		set, err := p.SeqSet()
		return &searchKey{op: opUIDSet, set: set}, err
	case "NOT":
		if err := p.SP(); err != nil {
			return nil, err
		}
		sub, err := parseSearchKey(p, depth+1)
		return &searchKey{op: opNot, sub: []*searchKey{sub}}, err
	case "OR":
		if err := p.SP(); err != nil {
			return nil, err
		}
		a, err := parseSearchKey(p, depth+1)
		if err != nil {
			return nil, err
		}
		if err := p.SP(); err != nil {
			return nil, err
		}
		b, err := parseSearchKey(p, depth+1)
		return &searchKey{op: opOr, sub: []*searchKey{a, b}}, err
	}
	return nil, bad("Unknown search key")
}

// dayOf is t's calendar day in its own zone as yyyymmdd: SEARCH compares
// dates "disregarding time and timezone" (RFC 9051 6.4.4).
func dayOf(t time.Time) int {
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d
}
