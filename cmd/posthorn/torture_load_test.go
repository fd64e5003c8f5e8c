package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
)

// The torture test's load: SMTP and submission senders, one IMAP worker
// per IMAP account (torture_imap_test.go), one POP3 worker per POP3
// account, and a STATUS check of the other accounts at every start. Each
// worker owns its account's mailbox (only SMTP adds to it as well), so its
// picture of the account is exact while the server runs, and after a kill
// the next read must agree with it except where a command got no answer.

// startLoad starts every client; they run until ctx is done.
func (r *tortureRun) startLoad(ctx context.Context, wg *sync.WaitGroup, seed uint64) {
	worker := 0
	goWork := func(fn func(rng *rand.Rand)) {
		worker++
		rng := rand.New(rand.NewPCG(seed, uint64(100+worker)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(rng)
		}()
	}
	for range 3 {
		goWork(func(rng *rand.Rand) { r.senderLoop(ctx, rng, tortureSMTP) })
	}
	for range 2 {
		goWork(func(rng *rand.Rand) { r.senderLoop(ctx, rng, tortureSubmission) })
	}
	for _, a := range tortureIMAPAccounts {
		mb := &tortureMailbox{account: a, folders: map[string]*tortureFolder{}, appending: map[string]bool{}}
		for _, f := range tortureIMAPFolders {
			mb.folders[f] = &tortureFolder{msgs: map[uint32]*tortureMsg{}, removed: map[uint32]string{}}
		}
		r.boxes = append(r.boxes, mb)
		goWork(func(rng *rand.Rand) { r.imapWorker(ctx, rng, mb) })
	}
	for _, a := range torturePOPAccounts {
		md := &tortureMaildrop{account: a, seen: map[uint32]string{}, maybe: map[uint32]string{}, gone: map[uint32]string{}}
		r.drops = append(r.drops, md)
		goWork(func(rng *rand.Rand) { r.popWorker(ctx, rng, md) })
	}
	goWork(func(*rand.Rand) { r.statusWorker(ctx) })
}

// tortureMessage is a message carrying its token, of 0 to ~8 KB of body
// with some lines that need dot-stuffing.
func tortureMessage(token string, rng *rand.Rand) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Torture <load@remote.test>\r\nTo: torture@example.org\r\nSubject: torture %s\r\n"+
		"Message-ID: <%s@torture.test>\r\nX-Torture: %s\r\n\r\n", token, token, token)
	for i := range rng.IntN(100) {
		if i%17 == 3 {
			b.WriteString(".")
		}
		fmt.Fprintf(&b, "%s line %d: the quick brown fox jumps over the lazy dog\r\n", token, i)
	}
	return []byte(b.String())
}

// senderLoop sends messages one per connection: over port 25 to one or two
// local accounts, or over submission to one or two remote recipients,
// sometimes with a local one.
func (r *tortureRun) senderLoop(ctx context.Context, rng *rand.Rand, path torturePath) {
	locals := append(append([]string(nil), tortureIMAPAccounts...), torturePOPAccounts...)
	pick := func(from []string) []string {
		p := rng.Perm(len(from))
		out := []string{from[p[0]]}
		if rng.IntN(3) == 0 {
			out = append(out, from[p[1]])
		}
		return out
	}
	failed := 0
	for {
		gen, ok := r.srv.next(ctx, failed)
		if !ok {
			return
		}
		addr, user, from, rcpts := r.in.smtp, "", "load@remote.test", pick(locals)
		if path == tortureSubmission {
			addr, user, from, rcpts = r.sub, tortureSubmitter, tortureSubmitter, pick(tortureRemote)
			if rng.IntN(4) == 0 {
				rcpts = append(rcpts, locals[rng.IntN(len(locals))])
			}
		}
		tok := r.model.newToken(path, rcpts)
		if err := tortureSend(addr, user, from, rcpts, tortureMessage(tok, rng)); err != nil {
			r.clientError(gen, fmt.Sprintf("%s %s", path, tok), err)
			failed = gen
			continue
		}
		r.model.ack(path, tok)
	}
}

// tortureMaildrop is a POP3 worker's picture of its account's INBOX, by
// UID (the second half of the UIDL unique-id).
type tortureMaildrop struct {
	account  string
	validity uint32
	maxUID   uint32
	seen     map[uint32]string // listed and not deleted since; token once read
	maybe    map[uint32]string // DELE'd, QUIT without answer
	gone     map[uint32]string // DELE'd, +OK to QUIT
}

// reconcileMaildrop checks a listing (UID → token, "" when not known)
// against the picture and takes it in.
func (r *tortureRun) reconcileMaildrop(md *tortureMaildrop, validity uint32, list map[uint32]string) {
	if md.validity != 0 && validity != md.validity {
		r.errorf("%s: INBOX UIDVALIDITY %d, was %d", md.account, validity, md.validity)
	}
	md.validity = validity
	for uid, tok := range md.seen {
		if got, ok := list[uid]; !ok {
			r.lost(tortureCopy{md.account, tok}, fmt.Sprintf("UID %d listed before, never deleted, not listed now", uid))
		} else if got != "" && tok != "" && got != tok {
			r.errorf("%s: INBOX UID %d holds %s, held %s: UID reused", md.account, uid, got, tok)
		}
	}
	for uid, tok := range md.gone {
		if _, ok := list[uid]; ok {
			r.resurrected(tortureCopy{md.account, tok}, fmt.Sprintf("UID %d: DELE and QUIT +OK, listed again", uid))
			delete(md.gone, uid) // reported once; from now on in the picture
			md.seen[uid] = tok
		}
	}
	for uid, tok := range md.maybe {
		_, present := list[uid]
		r.model.resolve(md.account, tok, present)
		if present {
			md.seen[uid] = tok
		} else {
			md.gone[uid] = tok
		}
	}
	clear(md.maybe)
	high := md.maxUID
	for uid, tok := range list {
		_, seen := md.seen[uid]
		_, gone := md.gone[uid]
		if seen || gone {
			continue
		}
		if uid <= md.maxUID {
			r.errorf("%s: INBOX UID %d (%s) is new but not above UID %d listed before: UID reused", md.account, uid, tok, md.maxUID)
		}
		md.seen[uid] = tok
		high = max(high, uid)
	}
	md.maxUID = high
}

// popWorker logs in again and again: UIDL, RETR of up to 20 messages, DELE
// of most of them, QUIT. With the maildrop empty it waits for a delivery.
func (r *tortureRun) popWorker(ctx context.Context, rng *rand.Rand, md *tortureMaildrop) {
	failed := 0
	for {
		gen, ok := r.srv.next(ctx, failed)
		if !ok {
			return
		}
		empty, err := r.popSession(rng, md)
		if err != nil {
			r.clientError(gen, md.account+": POP3", err)
			failed = gen
			continue
		}
		if empty {
			select {
			case <-r.model.arrivals[md.account]:
			case <-ctx.Done():
			}
		}
	}
}

func (r *tortureRun) popSession(rng *rand.Rand, md *tortureMaildrop) (empty bool, err error) {
	c, err := tortureDialPOP3(r.pop3, md.account, torturePassword(md.account))
	if err != nil {
		return false, err
	}
	defer c.close()
	lines, err := c.multi("UIDL")
	if err != nil {
		return false, err
	}
	list := map[uint32]string{}
	numbers := map[uint32]string{} // UID → message number
	var validity uint32
	for _, l := range lines {
		num, id, _ := strings.Cut(l, " ")
		v, err1 := strconv.ParseUint(id[:min(8, len(id))], 16, 32)
		uid, err2 := strconv.ParseUint(id[min(8, len(id)):], 16, 32)
		if len(id) != 16 || err1 != nil || err2 != nil {
			return false, &tortureRefused{"UIDL", l}
		}
		validity = uint32(v)
		list[uint32(uid)] = ""
		numbers[uint32(uid)] = num
	}
	if len(list) == 0 {
		validity = md.validity
	}
	r.reconcileMaildrop(md, validity, list)
	if len(list) == 0 {
		_, err := c.cmd("QUIT")
		return true, err
	}
	var uids []uint32
	for uid := range list {
		uids = append(uids, uid)
	}
	rng.Shuffle(len(uids), func(i, j int) { uids[i], uids[j] = uids[j], uids[i] })
	var dele []uint32
	for _, uid := range uids[:min(20, len(uids))] {
		body, err := c.multi("RETR " + numbers[uid])
		if err != nil {
			return false, err
		}
		tok := ""
		if m := tortureTokenRE.FindStringSubmatch(strings.Join(body, "\n")); m != nil {
			tok = m[1]
		}
		if !r.model.belongs(md.account, tok) {
			r.errorf("%s: RETR of UID %d gave %q, which was not sent to this account", md.account, uid, tok)
		}
		if old := md.seen[uid]; old != "" && old != tok {
			r.errorf("%s: INBOX UID %d holds %s, held %s: UID reused", md.account, uid, tok, old)
		}
		md.seen[uid] = tok
		if rng.IntN(10) < 8 {
			if _, err := c.cmd("DELE " + numbers[uid]); err != nil {
				return false, err
			}
			dele = append(dele, uid)
		}
	}
	// RFC 1939 6: the messages go at QUIT, not before: a session cut
	// before QUIT deletes nothing, so until then they stay in md.seen.
	for _, uid := range dele {
		md.maybe[uid] = md.seen[uid]
		delete(md.seen, uid)
		r.model.setGone(md.account, md.maybe[uid], tortureMaybeGone)
	}
	if _, err := c.cmd("QUIT"); err != nil {
		return false, err
	}
	for _, uid := range dele {
		md.gone[uid] = md.maybe[uid]
		r.model.setGone(md.account, md.maybe[uid], tortureGoneSure)
		delete(md.maybe, uid)
	}
	r.counts.popDeleted.Add(int64(len(dele)))
	return false, nil
}

// statusWorker checks, once per start of the server, every folder of the
// accounts without an IMAP worker (which checks its own at every read):
// UIDVALIDITY never changes and UIDNEXT never goes down (RFC 9051 2.3.1.1).
func (r *tortureRun) statusWorker(ctx context.Context) {
	last := map[string][2]uint32{} // "account folder" → last UIDVALIDITY, UIDNEXT
	checked := 0
	for {
		gen, ok := r.srv.next(ctx, checked)
		if !ok {
			return
		}
		for _, a := range append([]string{tortureSubmitter}, torturePOPAccounts...) {
			if err := r.statusCheck(a, last); err != nil {
				r.clientError(gen, a+": STATUS", err)
				break
			}
		}
		r.counts.statusChecks.Add(1)
		checked = gen
	}
}

func (r *tortureRun) statusCheck(account string, last map[string][2]uint32) error {
	c, err := tortureDialIMAP(r.imap, account, torturePassword(account))
	if err != nil {
		return err
	}
	defer c.close()
	for _, f := range tortureIMAPFolders {
		validity, next, err := c.status(f)
		if err != nil {
			return err
		}
		was, ok := last[account+" "+f]
		if ok && validity != was[0] {
			r.errorf("%s %s: UIDVALIDITY %d, was %d", account, f, validity, was[0])
		}
		if ok && next < was[1] {
			r.errorf("%s %s: UIDNEXT %d, was %d: it went down", account, f, next, was[1])
		}
		last[account+" "+f] = [2]uint32{validity, next}
	}
	return nil
}
