package imapcheck

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// The model is what all clients together know about the account: every
// flag change they asked for (with the interval in which it took effect),
// every UID the server assigned them, every body they were sent. Each
// client keeps its own view of its selected mailbox (client.go); the model
// is what a client's view is checked against.
//
// Time is a logical clock shared by all clients: a command's start is
// stamped just before it is written to the socket, a response is stamped
// as soon as it has been read. The server did whatever a response reports
// between the two stamps, so when one client's stamp is below another's,
// the first event happened first in real time.
//
// A flag of a message is a register with many writers. A FLAGS value read
// in [rs, re] is possible only if some write of that value (or the
// message's creation) began before re and no write of the other value is
// known to have completed after it and before rs. A read that fails this
// test cannot be explained by any order of the concurrent commands: it is
// a contradiction, never a race of the checker.

// inFlight is the end stamp of a command whose completion was not read
// (yet, or ever).
const inFlight = math.MaxUint64

// flagWrite is one command's change to the flags of one or more messages.
type flagWrite struct {
	start, end uint64
	mask, val  flagSet // the flags decided by the command, and their values
	// definite: the command completed with OK, so the write happened
	// (maybe on a message already expunged, which does not matter). A
	// write that failed, or whose completion is unknown, may or may not
	// have happened: it can explain a read but never rule one out.
	definite bool
	desc     string // for messages: "client 3 STORE 4:5 +FLAGS (\Seen)"
}

// birth is how a message came to be: APPEND with known flags, or COPY /
// MOVE with the flags of the source (anyFlags: not modelled).
type birth struct {
	anyFlags bool
	val      flagSet
	end      uint64
}

// msgRecord is what is known about one UID of one folder.
type msgRecord struct {
	birth      *birth
	writes     []*flagWrite
	token      string // X-Imapcheck-Token the UID was assigned to (APPENDUID, COPYUID)
	assignedBy string
	hash       [32]byte // the first BODY[] fetched
	hashKnown  bool
	expungedAt uint64 // stamp of the first EXPUNGE response naming it
}

type folderState struct {
	uidValidity uint32
	maxUID      uint32 // the highest UID any client has seen in the folder
	size        int
	msgs        map[uint32]*msgRecord
}

type model struct {
	clock    atomic.Uint64
	commands atomic.Int64

	mu       sync.Mutex
	folders  map[string]*folderState
	appended map[string][32]byte // token → SHA-256 of the message APPENDed

	maxProblems int
	problems    []string
	nProblems   int
	unexpected  []string
	nUnexpected int
	expectedNO  int
}

func newModel(maxProblems int) *model {
	return &model{folders: map[string]*folderState{}, appended: map[string][32]byte{}, maxProblems: maxProblems}
}

// setSize records a folder's message count as a client last saw it (the
// driver steers folder sizes by it).
func (m *model) setSize(folder string, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.folder(folder).size = n
}

// size is a folder's message count as some client last saw it.
func (m *model) size(folder string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.folder(folder).size
}

// now advances the logical clock.
func (m *model) now() uint64 { return m.clock.Add(1) }

// folder returns the state of a folder; m.mu must be held.
func (m *model) folder(name string) *folderState {
	f := m.folders[name]
	if f == nil {
		f = &folderState{msgs: map[uint32]*msgRecord{}}
		m.folders[name] = f
	}
	return f
}

// msg returns the record of a UID; m.mu must be held.
func (m *model) msg(folder string, uid uint32) *msgRecord {
	f := m.folder(folder)
	r := f.msgs[uid]
	if r == nil {
		r = &msgRecord{}
		f.msgs[uid] = r
	}
	return r
}

func (m *model) contradiction(s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nProblems++
	if len(m.problems) < m.maxProblems {
		m.problems = append(m.problems, s)
	}
}

func (m *model) unexpectedReply(s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nUnexpected++
	if len(m.unexpected) < m.maxProblems {
		m.unexpected = append(m.unexpected, s)
	}
}

func (m *model) expectedReply() {
	m.mu.Lock()
	m.expectedNO++
	m.mu.Unlock()
}

// addWrite records a write to the given UIDs before the command is sent.
func (m *model) addWrite(folder string, uids []uint32, w *flagWrite) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, uid := range uids {
		r := m.msg(folder, uid)
		r.writes = append(r.writes, w)
	}
}

// finishWrite records how a write's command ended.
func (m *model) finishWrite(w *flagWrite, end uint64, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w.end, w.definite = end, ok
}

// checkRead checks that the flags in mask, read as val in [rs, re], are
// possible; it returns one problem per impossible flag.
func (m *model) checkRead(folder string, uid uint32, mask, val flagSet, rs, re uint64) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.folder(folder).msgs[uid]
	var out []string
	mask.each(func(bit flagSet) {
		v := val.has(bit)
		if r == nil || r.possible(bit, v, rs, re) {
			return
		}
		out = append(out, fmt.Sprintf("%s %s on UID %d is impossible: %s", flagName(bit), setOrNot(v), uid, r.history(bit, re)))
	})
	return out
}

func setOrNot(v bool) string {
	if v {
		return "set"
	}
	return "not set"
}

// possible reports whether flag bit can read as v in [rs, re].
func (r *msgRecord) possible(bit flagSet, v bool, rs, re uint64) bool {
	// overwritten: a definite write of the other value began after
	// `after` and completed before the read began.
	overwritten := func(after uint64) bool {
		for _, w := range r.writes {
			if w.definite && w.mask.has(bit) && w.val.has(bit) != v && w.start > after && w.end < rs {
				return true
			}
		}
		return false
	}
	// The message's creation comes before every write to it, whatever the
	// stamps say; an unknown creation (another client's APPEND not yet
	// answered) may have set anything.
	if b := r.birth; b == nil || b.anyFlags || b.val.has(bit) == v {
		if !overwritten(0) {
			return true
		}
	}
	for _, w := range r.writes {
		if w.mask.has(bit) && w.val.has(bit) == v && w.start < re && !overwritten(w.end) {
			return true
		}
	}
	return false
}

// history describes the writes of one flag up to re, for messages.
func (r *msgRecord) history(bit flagSet, re uint64) string {
	var b bytes.Buffer
	switch {
	case r.birth == nil:
		b.WriteString("created unseen")
	case r.birth.anyFlags:
		b.WriteString("created by COPY/MOVE")
	default:
		fmt.Fprintf(&b, "created with it %s", setOrNot(r.birth.val.has(bit)))
	}
	n := 0
	for _, w := range r.writes {
		if !w.mask.has(bit) || w.start >= re {
			continue
		}
		if n++; n > 8 {
			b.WriteString("; ...")
			break
		}
		end := "in flight"
		if w.end != inFlight {
			end = fmt.Sprint(w.end)
		}
		state := "failed"
		if w.definite {
			state = "done"
		}
		fmt.Fprintf(&b, "; [%d,%s] %s it (%s, %s)", w.start, end, map[bool]string{true: "set", false: "cleared"}[w.val.has(bit)], w.desc, state)
	}
	return b.String()
}

// settled returns the flags whose value is certain throughout [ns, ne]: a
// definite write completed before ns and every other write of the flag
// that began before ne completed before it began (or, with no such write,
// the message's creation completed before ns).
func (m *model) settled(folder string, uid uint32, ns, ne uint64) (mask, val flagSet, why map[flagSet]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.folder(folder).msgs[uid]
	if r == nil {
		return 0, 0, nil
	}
	why = map[flagSet]string{}
	allFlags.each(func(bit flagSet) {
		var last *flagWrite
		for _, w := range r.writes {
			if w.mask.has(bit) && w.start < ne && (last == nil || w.start > last.start) {
				last = w
			}
		}
		if last == nil {
			if b := r.birth; b != nil && !b.anyFlags && b.end < ns {
				mask |= bit
				val |= b.val & bit
				why[bit] = "as created by APPEND"
			}
			return
		}
		if !last.definite || last.end >= ns {
			return
		}
		for _, w := range r.writes {
			if w != last && w.mask.has(bit) && w.start < ne && w.end >= last.start {
				return
			}
		}
		mask |= bit
		val |= last.val & bit
		why[bit] = fmt.Sprintf("by %s, completed at %d", last.desc, last.end)
	})
	return mask, val, why
}

// checkOwnWrite checks the FLAGS a command's own STORE (or FETCH BODY[])
// returned at re: each flag it wrote must read as written, unless another
// write of the other value could have come after it.
func (m *model) checkOwnWrite(folder string, uid uint32, own *flagWrite, got flagSet, re uint64) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.folder(folder).msgs[uid]
	var out []string
	own.mask.each(func(bit flagSet) {
		v := got.has(bit)
		if v == own.val.has(bit) {
			return
		}
		if r != nil {
			for _, w := range r.writes {
				if w != own && w.mask.has(bit) && w.val.has(bit) == v && w.start < re && w.end > own.start {
					return
				}
			}
		}
		history := "no history"
		if r != nil {
			history = r.history(bit, re)
		}
		out = append(out, fmt.Sprintf("%s %s on UID %d right after this command %s it, and no other command could have changed it: %s",
			flagName(bit), setOrNot(v), uid, map[bool]string{true: "set", false: "cleared"}[own.val.has(bit)], history))
	})
	return out
}

// registerAppend remembers a message before it is APPENDed.
func (m *model) registerAppend(token string, msg []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.appended[token] = sha256.Sum256(msg)
}

// maxUID is the highest UID any client has seen in the folder.
func (m *model) maxUID(folder string) uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.folder(folder).maxUID
}

// observeUID records that a UID exists (or existed) in the folder.
func (m *model) observeUID(folder string, uid uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.folder(folder)
	f.maxUID = max(f.maxUID, uid)
}

// checkUIDValidity records a folder's UIDVALIDITY, or reports a change
// (the test never deletes or renames folders; RFC 9051 2.3.1.1).
func (m *model) checkUIDValidity(folder string, v uint32) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.folder(folder)
	switch {
	case v == 0:
		return "UIDVALIDITY 0 (RFC 9051 2.3.1.1: it is a non-zero number)"
	case f.uidValidity == 0:
		f.uidValidity = v
	case f.uidValidity != v:
		return fmt.Sprintf("UIDVALIDITY of %s changed from %d to %d", folder, f.uidValidity, v)
	}
	return ""
}

// assign records that the server gave uid to a new message (APPENDUID,
// COPYUID) in a command begun at start; it reports a UID given twice, or
// one expunged before the command began (another client may expunge the
// new message before this one reads its APPENDUID).
func (m *model) assign(folder string, uid uint32, token, by string, b *birth, start uint64) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.folder(folder)
	f.maxUID = max(f.maxUID, uid)
	r := m.msg(folder, uid)
	if r.assignedBy != "" {
		return fmt.Sprintf("UID %d in %s was given to a new message twice: before by %s", uid, folder, r.assignedBy)
	}
	if r.expungedAt != 0 && r.expungedAt < start {
		return fmt.Sprintf("UID %d in %s was given to a new message after it had been expunged", uid, folder)
	}
	r.assignedBy, r.token, r.birth = by, token, b
	return ""
}

// tokenOf is the token a UID was assigned to, "" if unknown.
func (m *model) tokenOf(folder string, uid uint32) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.folder(folder).msgs[uid]; r != nil {
		return r.token
	}
	return ""
}

// markExpunged records the first EXPUNGE seen for a UID.
func (m *model) markExpunged(folder string, uid uint32, stamp uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.msg(folder, uid)
	if r.expungedAt == 0 {
		r.expungedAt = stamp
	}
}

// expungedBefore reports whether an EXPUNGE of uid was read before stamp.
func (m *model) expungedBefore(folder string, uid uint32, stamp uint64) (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.folder(folder).msgs[uid]
	if r == nil || r.expungedAt == 0 || r.expungedAt >= stamp {
		return 0, false
	}
	return r.expungedAt, true
}

// checkBody checks a fetched BODY[]: it carries a token that was APPENDed
// with exactly these octets, the token the UID was assigned to, and the
// same octets as every earlier fetch of the UID (uid 0: not known).
func (m *model) checkBody(folder string, uid uint32, body []byte) []string {
	sum := sha256.Sum256(body)
	token := tokenIn(body)
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	if token == "" {
		out = append(out, "BODY[] has no X-Imapcheck-Token header: not a message any client APPENDed")
	} else if want, ok := m.appended[token]; !ok {
		out = append(out, fmt.Sprintf("BODY[] has token %s, which no client APPENDed", token))
	} else if want != sum {
		out = append(out, fmt.Sprintf("BODY[] (%d octets) differs from the message APPENDed with token %s", len(body), token))
	}
	if uid == 0 {
		return out
	}
	r := m.msg(folder, uid)
	if r.token != "" && token != "" && r.token != token {
		out = append(out, fmt.Sprintf("UID %d was given to token %s (%s) but BODY[] has token %s", uid, r.token, r.assignedBy, token))
	}
	if r.hashKnown && r.hash != sum {
		out = append(out, fmt.Sprintf("BODY[] of UID %d differs from an earlier fetch of it", uid))
	}
	r.hash, r.hashKnown = sum, true
	return out
}

// tokenIn returns the X-Imapcheck-Token of a message's header.
func tokenIn(msg []byte) string {
	hdr, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	for line := range bytes.SplitSeq(hdr, []byte("\r\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(tokenHeader+": ")); ok {
			return string(v)
		}
	}
	return ""
}

const tokenHeader = "X-Imapcheck-Token"
