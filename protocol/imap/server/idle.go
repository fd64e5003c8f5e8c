package server

import (
	"bytes"
	"errors"
	"net"
	"time"

	"posthorn/mailbox"
	"posthorn/protocol/imap"
)

// idleLine is what the IDLE reader goroutine read.
type idleLine struct {
	line []byte
	err  error
}

// cmdIdle: RFC 2177 3 (RFC 9051 6.3.13). After "+ idling" every change of
// the selected mailbox is sent as it happens, EXPUNGE included, until the
// client sends DONE. A goroutine reads the DONE line while this one waits
// on the change feed; it is the only reader meanwhile and has finished
// when cmdIdle returns.
func (s *session) cmdIdle(c *imap.Command) error {
	p := c.Args()
	if err := p.End(); err != nil {
		return err
	}
	if s.state == stateSelected {
		if err := s.sendUpdates(true); err != nil {
			return err
		}
	}
	if err := s.enc.Continue("idling"); err != nil {
		return err
	}
	if err := s.flush(); err != nil {
		return errClose
	}
	// RFC 2177 3 and RFC 9051 5.4: the autologout timer applies while
	// idling; clients re-issue IDLE within 29 minutes.
	s.conn.SetReadDeadline(time.Now().Add(s.srv.limits.AutoLogout))
	s.guard.Idle()
	defer s.guard.Busy()
	if s.guard.Stopping() {
		s.conn.SetReadDeadline(time.Now())
	}
	lines := make(chan idleLine, 1)
	go func() {
		line, err := s.dec.ReadLine()
		lines <- idleLine{bytes.Clone(line), err}
	}()
	for {
		changes := s.changeChannel()
		select {
		case r := <-lines:
			return s.idleDone(r)
		case ch, ok := <-changes:
			if !ok {
				s.sub = nil // the account was closed
				continue
			}
			if s.state == stateSelected {
				s.conn.SetWriteDeadline(time.Now().Add(s.srv.limits.WriteTimeout))
				s.applyChange(ch)
				if err := s.sendUpdates(true); err != nil {
					// The mailbox went away; wait for the reader to stop.
					s.conn.SetReadDeadline(time.Now())
					<-lines
					return err
				}
				if err := s.flush(); err != nil {
					s.conn.SetReadDeadline(time.Now())
					<-lines
					return errClose
				}
			}
		}
	}
}

// changeChannel is the feed channel, or nil (blocks forever) without one.
func (s *session) changeChannel() <-chan mailbox.Change {
	if s.sub == nil {
		return nil
	}
	return s.sub.C()
}

// idleDone ends IDLE on the line read: DONE completes it (RFC 2177 3),
// anything else is a BAD; a timeout or a closed connection ends the
// session.
func (s *session) idleDone(r idleLine) error {
	var ne net.Error
	switch {
	case r.err == nil && bytes.EqualFold(r.line, []byte("DONE")):
		return nil
	case r.err == nil:
		return bad("Expected DONE")
	case errors.As(r.err, &ne) && ne.Timeout():
		if s.guard.Stopping() {
			s.bye("Server shutting down")
		} else {
			s.bye("Autologout; idle for too long")
		}
		return errClose
	}
	var de *imap.DecodeError
	if errors.As(r.err, &de) {
		s.bye("Line too long")
	}
	return errClose
}
