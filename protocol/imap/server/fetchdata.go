package server

import (
	"bytes"
	"errors"
	"slices"
	"time"

	"posthorn/mailbox"
	"posthorn/mailbox/message"
	"posthorn/protocol/imap"
)

// errStopScan ends a ForEachMessage walk early.
var errStopScan = errors.New("stop")

// messageInfos returns the metadata of the given UIDs (ascending) that
// still exist: one lookup each for a few, one scan for many.
func (s *session) messageInfos(uids []uint32) (map[uint32]mailbox.MessageInfo, error) {
	out := make(map[uint32]mailbox.MessageInfo, len(uids))
	if len(uids) == 0 {
		return out, nil
	}
	name := s.sel.name
	if len(uids) <= 16 {
		for _, uid := range uids {
			m, err := s.acct.Message(name, uid)
			if errors.Is(err, mailbox.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[uid] = m
		}
		return out, nil
	}
	last := uids[len(uids)-1]
	err := s.acct.ForEachMessage(name, uids[0], func(m mailbox.MessageInfo) error {
		if m.UID > last {
			return errStopScan
		}
		if _, ok := slices.BinarySearch(uids, m.UID); ok {
			out[m.UID] = m
		}
		return nil
	})
	if err != nil && err != errStopScan {
		return nil, err
	}
	return out, nil
}

// fetchChunk is how many messages' metadata a FETCH holds at once, so that
// "UID FETCH 1:* FLAGS" on a large mailbox streams in bounded memory.
const fetchChunk = 1000

// fetch writes one FETCH response per message (RFC 9051 7.5.2). Messages
// expunged meanwhile are skipped and the command completes with
// OK [EXPUNGEISSUED] (RFC 9051 7.1); no other message's data is sent.
func (s *session) fetch(uids []uint32, items []fetchItem) error {
	expunged := false
	for start := 0; start < len(uids); start += fetchChunk {
		chunk := uids[start:min(start+fetchChunk, len(uids))]
		if err := s.fetchSome(chunk, items, &expunged); err != nil {
			return err
		}
		s.conn.SetWriteDeadline(time.Now().Add(s.srv.limits.WriteTimeout))
	}
	if err := s.enc.Err(); err != nil {
		return err
	}
	if expunged {
		s.okCode, s.okText = imap.CodeExpungeIssued, "Some messages were expunged meanwhile"
	}
	return nil
}

// fetchSome is fetch for one chunk of UIDs.
func (s *session) fetchSome(uids []uint32, items []fetchItem, expunged *bool) error {
	v := s.sel
	infos, err := s.messageInfos(uids)
	if err != nil {
		return storeError(err)
	}
	needBody, setsSeen, wantsFlags := false, false, false
	for i := range items {
		needBody = needBody || items[i].needsBody()
		setsSeen = setsSeen || items[i].seen
		wantsFlags = wantsFlags || items[i].kind == fetchFlags
	}
	// RFC 9051 6.4.5: BODY[] and BINARY[] without .PEEK set \Seen, and the
	// new flags SHOULD be returned with the data.
	seenNow := map[uint32]bool{}
	if setsSeen && !v.readOnly {
		var unseen []uint32
		for _, uid := range uids {
			if m, ok := infos[uid]; ok && !slices.Contains(m.Flags, imap.FlagSeen) {
				unseen = append(unseen, uid)
			}
		}
		if len(unseen) > 0 {
			ctx, cancel := s.commandContext()
			changed, err := s.acct.StoreFlags(ctx, v.name, unseen, '+', []string{imap.FlagSeen})
			cancel()
			if err != nil {
				return storeError(err)
			}
			for _, m := range changed {
				infos[m.UID] = m
				seenNow[m.UID] = true
				if i, ok := v.index(m.UID); ok {
					v.modSeqs[i] = max(v.modSeqs[i], m.ModSeq)
				}
			}
			// A message the STORE left alone was changed (\Seen set, or
			// expunged) by another session after infos was read: its
			// flags there are out of date, and the FLAGS sent with its
			// BODY[] must include the \Seen it now has.
			for _, uid := range unseen {
				if seenNow[uid] {
					continue
				}
				m, err := s.acct.Message(v.name, uid)
				switch {
				case errors.Is(err, mailbox.ErrNotFound):
					delete(infos, uid)
				case err != nil:
					return storeError(err)
				default:
					infos[uid] = m
				}
			}
		}
	}
	for n, uid := range uids {
		m, ok := infos[uid]
		seq := v.seq(uid)
		if !ok || seq == 0 {
			*expunged = true
			continue
		}
		var raw []byte
		var part *message.Part
		if needBody {
			raw, err = s.acct.Raw(v.name, uid)
			if errors.Is(err, mailbox.ErrNotFound) {
				*expunged = true
				continue
			}
			if err != nil {
				return storeError(err)
			}
			blob, err := s.acct.Meta(v.name, uid)
			if err != nil && !errors.Is(err, mailbox.ErrNotFound) {
				return storeError(err)
			}
			part = message.Load(blob, raw)
		}
		// Keywords the client has not seen in FLAGS are announced first
		// (RFC 9051 7.3.5).
		v.noteKeywords(m.Flags)
		if v.newFlags {
			s.writeFlags()
		}
		if err := s.writeFetch(seq, m, raw, part, items, seenNow[uid] && !wantsFlags); err != nil {
			return err
		}
		if wantsFlags || seenNow[uid] {
			delete(v.changed, uid) // the client has the current flags now
		}
		if n%64 == 63 {
			s.conn.SetWriteDeadline(time.Now().Add(s.srv.limits.WriteTimeout))
		}
	}
	return s.enc.Err()
}

// writeFetch writes "* seq FETCH (...)" for one message.
func (s *session) writeFetch(seq uint32, m mailbox.MessageInfo, raw []byte, part *message.Part, items []fetchItem, addFlags bool) error {
	// BINARY data is decoded before the response starts, so that an
	// encoding we cannot undo fails the command without a broken line
	// (RFC 3516 4.3, RFC 9051 7.1 UNKNOWN-CTE).
	var bin [][]byte
	for i := range items {
		if k := items[i].kind; k != fetchBinary && k != fetchBinarySize {
			continue
		}
		data, err := binaryData(part, raw, items[i].part)
		if errors.Is(err, message.ErrNoSection) {
			if items[i].kind == fetchBinarySize {
				return no("", "No such body part") // the grammar wants a number
			}
			data, err = nil, nil // no such part: NIL, as for BODY[]
		}
		if errors.Is(err, message.ErrUnknownCTE) {
			return no(imap.CodeUnknownCTE, "Unknown Content-Transfer-Encoding")
		}
		if err != nil {
			return no("", "BINARY is only for single body parts")
		}
		if bin == nil {
			bin = make([][]byte, len(items))
		}
		bin[i] = data
	}
	e := s.enc
	e.Untagged().Number(seq).SP().Atom("FETCH").SP().BeginList()
	for i := range items {
		it := &items[i]
		if i > 0 {
			e.SP()
		}
		switch it.kind {
		case fetchUID:
			e.Atom("UID").SP().Number(m.UID)
		case fetchFlags:
			e.Atom("FLAGS").SP()
			s.writeFlagList(m.UID, m.Flags)
		case fetchInternalDate:
			e.Atom("INTERNALDATE").SP().DateTime(m.InternalDate)
		case fetchSize:
			e.Atom("RFC822.SIZE").SP().Number64(m.Size)
		case fetchEnvelope:
			e.Atom("ENVELOPE").SP()
			s.writeRendered(part.Envelope())
		case fetchBody:
			e.Atom("BODY").SP()
			s.writeRendered(part.BodyStructure(false))
		case fetchBodyStructure:
			e.Atom("BODYSTRUCTURE").SP()
			s.writeRendered(part.BodyStructure(true))
		case fetchSection:
			e.Raw(it.name).SP()
			data, err := part.FetchSection(raw, it.spec)
			if err != nil {
				// A section that does not exist is NIL (nstring, RFC 9051 9
				// msg-att-static), as Dovecot answers.
				e.Nil()
				break
			}
			e.Literal(it.slice(data))
		case fetchBinary, fetchBinarySize:
			data := bin[i]
			e.Raw(it.name).SP()
			if data == nil {
				e.Nil()
			} else if it.kind == fetchBinarySize {
				e.Number64(int64(len(data)))
			} else if d := it.slice(data); bytes.IndexByte(d, 0) >= 0 {
				e.Literal8(d) // RFC 3516 4.2: literal8 when there is NUL
			} else {
				e.Literal(d)
			}
		}
	}
	if addFlags {
		e.SP().Atom("FLAGS").SP()
		s.writeFlagList(m.UID, m.Flags)
	}
	return e.EndList().CRLF()
}

// binaryData is the decoded content of a BINARY section (RFC 3516 4.2):
// the whole message for an empty part list, else one leaf part with its
// Content-Transfer-Encoding removed.
func binaryData(part *message.Part, raw []byte, path []int) ([]byte, error) {
	if len(path) == 0 {
		return part.FetchSection(raw, message.SectionSpec{})
	}
	p, err := part.Lookup(path)
	if err != nil {
		return nil, err
	}
	return p.Decoded(raw)
}

// slice applies the partial range (RFC 9051 6.4.5): an origin past the end
// gives an empty string, a count past the end is truncated.
func (it *fetchItem) slice(data []byte) []byte {
	if !it.partial {
		return data
	}
	if it.origin >= int64(len(data)) {
		return data[:0]
	}
	data = data[it.origin:]
	if it.count < int64(len(data)) {
		data = data[:it.count]
	}
	return data
}

// writeRendered writes an ENVELOPE or BODYSTRUCTURE that mailbox/message
// rendered by the RFC 9051 9 grammar (it may contain literals, so it does
// not go through Encoder.Raw; the Encoder writes straight into s.bw).
func (s *session) writeRendered(b []byte) {
	if s.enc.Err() == nil {
		s.bw.Write(b)
	}
}
