package server

import (
	"strconv"
	"strings"

	"posthorn/protocol/imap"
)

// Capabilities advertised in every state (RFC 9051 7.2.2). IMAP4rev1 stays
// for the clients that do not speak rev2 (RFC 9051 appendix E allows both).
var baseCapabilities = []string{
	"IMAP4rev1", "IMAP4rev2",
	"LITERAL+",                                    // RFC 7888
	"SASL-IR",                                     // RFC 4959
	"ENABLE",                                      // RFC 5161
	"ID",                                          // RFC 2971
	"IDLE",                                        // RFC 2177
	"NAMESPACE",                                   // RFC 2342
	"UIDPLUS",                                     // RFC 4315
	"MOVE",                                        // RFC 6851
	"UNSELECT",                                    // RFC 3691
	"CHILDREN",                                    // RFC 3348
	"LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE", // RFC 5258, 5819, 6154
	"ESEARCH", "SEARCHRES", // RFC 4731, 5182
	"BINARY",      // RFC 3516
	"UTF8=ACCEPT", // RFC 6855
	"STATUS=SIZE", // RFC 8438
}

// capabilities lists the capabilities of the current state.
func (s *session) capabilities() []string {
	caps := append([]string(nil), baseCapabilities...)
	caps = append(caps, "APPENDLIMIT="+strconv.FormatInt(s.srv.limits.MessageSize, 10)) // RFC 7889
	if s.state != stateNotAuthenticated {
		return caps
	}
	if s.tls == nil && s.srv.cfg.TLS != nil {
		caps = append(caps, "STARTTLS")
	}
	if s.srv.cfg.Auth == nil || !s.plaintextAllowed() {
		// RFC 9051 6.2.3: LOGINDISABLED when LOGIN is refused (no TLS).
		caps = append(caps, "LOGINDISABLED")
	}
	if s.srv.cfg.Auth != nil {
		for _, m := range s.authMechanisms() {
			caps = append(caps, "AUTH="+m)
		}
	}
	return caps
}

// writeCapabilities writes "CAPABILITY" and the list, for the response or
// the response code.
func (s *session) writeCapabilities() {
	s.enc.Atom("CAPABILITY")
	for _, c := range s.capabilities() {
		s.enc.SP().Atom(c)
	}
}

// capabilityString is the CAPABILITY response code's text.
func (s *session) capabilityString() string {
	return "CAPABILITY " + strings.Join(s.capabilities(), " ")
}

// cmdCapability: RFC 9051 6.1.1.
func (s *session) cmdCapability(c *imap.Command) error {
	p := c.Args()
	if err := p.End(); err != nil {
		return err
	}
	s.enc.Untagged()
	s.writeCapabilities()
	return s.enc.CRLF()
}

// cmdNoop: RFC 9051 6.1.2. The updates are sent by execute.
func (s *session) cmdNoop(c *imap.Command) error {
	p := c.Args()
	if err := p.End(); err != nil {
		return err
	}
	if s.state != stateSelected {
		s.drainChanges()
	}
	return nil
}

// cmdCheck: RFC 3501 6.4.1 (removed in RFC 9051 but harmless): every write
// is durable already, so it is a NOOP.
func (s *session) cmdCheck(c *imap.Command) error { return s.cmdNoop(c) }

// cmdLogout: RFC 9051 6.1.3: BYE, then the tagged OK, then close.
func (s *session) cmdLogout(c *imap.Command) error {
	p := c.Args()
	if err := p.End(); err != nil {
		return err
	}
	s.enc.StatusResponse("", imap.StatusBYE, "", "Logging out")
	s.enc.StatusResponse(c.Tag, imap.StatusOK, "", "LOGOUT completed")
	s.flush()
	return errClose
}

// cmdEnable: RFC 5161 3. Only IMAP4rev2 (RFC 9051 6.3.1) and UTF8=ACCEPT
// (RFC 6855 3) can be enabled; unknown names are ignored. Both switch
// mailbox names and quoted strings to UTF-8.
func (s *session) cmdEnable(c *imap.Command) error {
	p := c.Args()
	var enabled []string
	n := 0
	for ; !p.AtEnd(); n++ {
		if err := p.SP(); err != nil {
			return err
		}
		name, err := p.Atom()
		if err != nil {
			return err
		}
		switch strings.ToUpper(name) {
		case "IMAP4REV2":
			if !s.rev2 {
				s.rev2 = true
				enabled = append(enabled, "IMAP4rev2")
			}
		case "UTF8=ACCEPT":
			if !s.utf8 {
				s.utf8 = true
				enabled = append(enabled, "UTF8=ACCEPT")
			}
		}
	}
	if n == 0 {
		return bad("ENABLE needs at least one capability")
	}
	if s.rev2 || s.utf8 {
		s.dec.SetUTF8(true)
		s.enc.SetUTF8(true)
	}
	// RFC 5161 3.2: one ENABLED response listing what this command enabled.
	s.enc.Untagged().Atom("ENABLED")
	for _, e := range enabled {
		s.enc.SP().Atom(e)
	}
	return s.enc.CRLF()
}

// cmdID: RFC 2971 3.1. The client's parameters are read and ignored (they
// may be logged, but are untrusted and unbounded in meaning).
func (s *session) cmdID(c *imap.Command) error {
	p := c.Args()
	if err := p.SP(); err != nil {
		return err
	}
	if !p.AcceptKeyword("NIL") {
		n := 0
		err := p.List(func(p *imap.Parser) error {
			if n++; n > 60 { // RFC 2971 3.3: at most 30 field-value pairs
				return bad("Too many ID parameters")
			}
			_, _, err := p.NString()
			return err
		})
		if err != nil {
			return err
		}
		if n%2 != 0 {
			return bad("ID parameters come in pairs")
		}
	}
	if err := p.End(); err != nil {
		return err
	}
	s.enc.Untagged().Atom("ID").SP().BeginList().
		String("name").SP().String("Posthorn").EndList().CRLF()
	return s.enc.Err()
}

// cmdNamespace: RFC 2342 5 / RFC 9051 6.3.10: one personal namespace with
// an empty prefix; no other users' or shared namespaces.
func (s *session) cmdNamespace(c *imap.Command) error {
	p := c.Args()
	if err := p.End(); err != nil {
		return err
	}
	s.enc.Untagged().Atom("NAMESPACE").SP().BeginList().BeginList().
		String("").SP().Quoted("/").EndList().EndList().SP().Nil().SP().Nil().CRLF()
	return s.enc.Err()
}
