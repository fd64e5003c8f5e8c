package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"posthorn/dnsmx/dnstest"
)

// TestTorture is ROBUSTNESS.md's "kill -9 at random under load": while
// clients deliver over SMTP, submit to a remote domain, APPEND, STORE,
// EXPUNGE and MOVE over IMAP and RETR and DELE over POP3, all at once, the
// server is killed with SIGKILL at random moments and started again, many
// times. A model of every message follows what each client was told; at
// the end (and at every reconnect on the way) the store must agree with it
// (DESIGN.md, Invariants):
//
//   - every message acknowledged (250 after DATA, OK after APPEND) is in its
//     account, or at the remote sink once the queue has drained, unless its
//     deletion was acknowledged;
//   - an acknowledged deletion (+OK to POP3 QUIT, OK to EXPUNGE or MOVE)
//     never comes back; a POP3 session cut before QUIT deletes nothing;
//   - a MOVE cut by a kill leaves the message in the source or the
//     destination, perhaps both, never neither;
//   - UIDVALIDITY never changes, UIDNEXT never goes down, a UID is never
//     given to another message (RFC 9051 2.3.1.1), flags set with a tagged
//     OK stay set;
//   - the store opens at every start.
//
// Duplicates (a kill after the commit, before the reply) are allowed and
// counted. The default run is short for `make test`;
// POSTHORN_TORTURE_TIME=30m runs as long as asked.
func TestTorture(t *testing.T) {
	duration := tortureDuration(t)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))

	sink := newTortureSink(t, tortureSinkIP, seed)
	zone := dnstest.New(t)
	zone.Set("sink.test", dns.TypeMX, dnstest.MX(10, "mx.sink.test"))
	zone.SetAddrs("mx.sink.test", tortureSinkIP)

	r := &tortureRun{t: t, srv: newTortureServer(), sink: sink,
		sub: freePort(t), pop3: freePort(t), imap: freePort(t)}
	r.in = newInstance(t,
		"-o", "submission_listen="+r.sub, "-o", "pop3_listen="+r.pop3, "-o", "imap_listen="+r.imap,
		"-o", "dns_resolvers="+zone.Addr(), "-o", "outbound_port="+sink.port,
		"-o", "retry_min=1s", "-o", "retry_max=5s", "-o", "log_level=info",
		// The load is one address opening hundreds of connections a
		// second: the connection rate limit would rightly refuse it.
		"-o", "max_connection_rate_per_ip=0")
	r.in.extraPorts = []string{r.sub, r.pop3, r.imap}
	local := append(append([]string{tortureSubmitter}, tortureIMAPAccounts...), torturePOPAccounts...)
	for _, a := range local {
		r.in.mustCLI(torturePassword(a)+"\n", "user", "add", a)
	}
	r.model = newTortureModel(local)
	defer func() {
		if t.Failed() {
			logs := r.in.logs()
			t.Logf("server log, last 64 KiB:\n%s", logs[max(0, len(logs)-64<<10):])
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	var load sync.WaitGroup
	// Also on t.Fatal: the clients stop before the test ends.
	defer func() { cancel(); load.Wait() }()
	r.startLoad(ctx, &load, seed)

	start := time.Now()
	rounds, kills := r.killLoop(duration, rng)

	// A last, clean start: the load stops with the server up, so that
	// every client's last command gets its answer; then the queue drains
	// to the sink.
	r.in.start()
	r.srv.set(true)
	rounds++
	cancel()
	tortureWait(t, &load, 2*time.Minute, "the load to stop")
	waitQueue(t, r.in, "the queue to drain to the sink", 3*time.Minute, queueEmpty)

	reads := map[string]map[string]*tortureFolderRead{}
	for _, a := range local {
		read, err := tortureReadAccount(r.imap, a, nil)
		if err != nil {
			t.Fatalf("reading %s over IMAP at the end: %v", a, err)
		}
		reads[a] = read
	}
	localDups, sinkDups := r.verify(reads)
	r.in.stop()

	m := r.model
	m.mu.Lock()
	defer m.mu.Unlock()
	f := &r.findings
	f.mu.Lock()
	defer f.mu.Unlock()
	t.Logf("torture: %v (seed %d), %d rounds, %d kills; acknowledged: smtp %d, submission %d, append %d "+
		"(copies: %d local, %d remote); deletions acknowledged: pop3 %d, expunge %d, move %d; flag stores %d; STATUS rounds %d; "+
		"missing %d, duplicates %d (local %d, at the sink %d), resurrected deletions %d",
		time.Since(start).Round(time.Second), seed, rounds, kills,
		m.ackedBy[tortureSMTP], m.ackedBy[tortureSubmission], m.ackedBy[tortureAppend],
		m.ackedCopies(false), m.ackedCopies(true),
		r.counts.popDeleted.Load(), r.counts.expunged.Load(), r.counts.moved.Load(), r.counts.stored.Load(), r.counts.statusChecks.Load(),
		len(f.lost), localDups+sinkDups, localDups, sinkDups, len(f.resurrected))
	if kills < 3 || m.ackedBy[tortureSMTP] == 0 || m.ackedBy[tortureSubmission] == 0 || m.ackedBy[tortureAppend] == 0 ||
		r.counts.popDeleted.Load() == 0 || r.counts.expunged.Load() == 0 || r.counts.moved.Load() == 0 ||
		r.counts.statusChecks.Load() == 0 {
		t.Errorf("the load did not run on every path (%d kills)", kills)
	}
}

const (
	tortureDefaultTime = 20 * time.Second
	tortureSinkIP      = "127.0.0.5" // the remote MX: not us (our SMTP is on 127.0.0.1)
	tortureSubmitter   = "submit@example.org"
	// tortureMaxPicture bounds an IMAP account's messages: the worker
	// expunges in bulk above it, so that reading every folder stays cheap.
	tortureMaxPicture = 300
)

var (
	tortureIMAPAccounts = []string{"imap1@example.org", "imap2@example.org"}
	torturePOPAccounts  = []string{"pop1@example.org", "pop2@example.org"}
	tortureRemote       = []string{"r1@sink.test", "r2@sink.test"}
	// tortureIMAPFolders are the folders every account is made with
	// (mailbox: defaultFolders); the IMAP workers use all of them.
	tortureIMAPFolders = []string{"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}
)

func torturePassword(account string) string { return "pw-" + account }

// tortureDuration is POSTHORN_TORTURE_TIME or the default; it must fit in
// the test binary's -timeout with room for the end.
func tortureDuration(t *testing.T) time.Duration {
	t.Helper()
	d := tortureDefaultTime
	if s := os.Getenv("POSTHORN_TORTURE_TIME"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d <= 0 {
			t.Fatalf("POSTHORN_TORTURE_TIME=%q: want a duration such as 30m", s)
		}
	}
	if dl, ok := t.Deadline(); ok && time.Until(dl) < d+5*time.Minute {
		t.Fatalf("POSTHORN_TORTURE_TIME=%v does not fit in -timeout: run with -timeout 0 or above %v", d, d+5*time.Minute)
	}
	return d
}

// tortureWait waits for wg, at most limit.
func tortureWait(t *testing.T, wg *sync.WaitGroup, limit time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("timed out after %v waiting for %s", limit, what)
	}
}

// tortureRun is one torture test: the instance, its clients' shared state
// and what they found.
type tortureRun struct {
	t               *testing.T
	in              *instance
	sub, pop3, imap string
	srv             *tortureServer
	model           *tortureModel
	sink            *tortureSink
	boxes           []*tortureMailbox  // the IMAP workers' pictures
	drops           []*tortureMaildrop // the POP3 workers' pictures
	counts          struct{ popDeleted, expunged, moved, stored, statusChecks atomic.Int64 }
	errs            atomic.Int64
	findings        tortureFindings
}

// tortureFindings are the acknowledged copies found lost or come back.
type tortureFindings struct {
	mu          sync.Mutex
	lost        map[tortureCopy]bool
	resurrected map[tortureCopy]bool
}

func (r *tortureRun) errorf(format string, args ...any) {
	switch n := r.errs.Add(1); {
	case n <= 40:
		r.t.Errorf(format, args...)
	case n == 41:
		r.t.Error("torture: more errors not shown")
	}
}

// lost reports an acknowledged copy that is gone.
func (r *tortureRun) lost(c tortureCopy, why string) {
	r.findings.mu.Lock()
	if r.findings.lost == nil {
		r.findings.lost = map[tortureCopy]bool{}
	}
	r.findings.lost[c] = true
	r.findings.mu.Unlock()
	r.errorf("LOST: %s for %s: %s", c.token, c.rcpt, why)
}

// resurrected reports a copy whose deletion was acknowledged and that is
// there again.
func (r *tortureRun) resurrected(c tortureCopy, why string) {
	r.findings.mu.Lock()
	if r.findings.resurrected == nil {
		r.findings.resurrected = map[tortureCopy]bool{}
	}
	r.findings.resurrected[c] = true
	r.findings.mu.Unlock()
	r.errorf("RESURRECTED: %s for %s: %s", c.token, c.rcpt, why)
}

// clientError judges a client's error. A broken connection once the
// generation it talked to has been killed is the test working; a refusal,
// or a broken connection while that generation still runs, is a finding.
func (r *tortureRun) clientError(gen int, what string, err error) {
	if isTortureRefused(err) || !r.srv.killedSince(gen) {
		r.errorf("%s (server generation %d, still up): %v", what, gen, err)
	}
}

// killLoop starts the server, lets the load run for 0.2 to 2 s, kills it
// with SIGKILL, and again, for d.
func (r *tortureRun) killLoop(d time.Duration, rng *rand.Rand) (rounds, kills int) {
	var state map[string]folderState
	for end := time.Now().Add(d); time.Now().Before(end); {
		tortureTrimLog(r.in, 4<<20)
		r.in.start() // fails the test if the store does not open
		r.srv.set(true)
		rounds++
		time.Sleep(time.Duration(200+rng.IntN(1800)) * time.Millisecond) // the random moment
		r.srv.set(false)
		r.in.kill()
		kills++
		// fsck after every crash, bbolt's page check included; UIDNEXT
		// and HIGHESTMODSEQ never go back, UIDVALIDITY never changes.
		next := r.in.checkStore()
		if state != nil {
			checkMonotonic(r.t, state, next)
		}
		state = next
	}
	return rounds, kills
}

// tortureTrimLog keeps the last keep bytes of the server's log: a long run
// restarts thousands of times.
func tortureTrimLog(in *instance, keep int) {
	in.logMu.Lock()
	defer in.logMu.Unlock()
	if b := in.log.Bytes(); len(b) > keep {
		tail := append([]byte(nil), b[len(b)-keep:]...)
		in.log.Reset()
		in.log.Write(tail)
	}
}

// tortureServer tells the clients which generation of the server runs.
type tortureServer struct {
	mu      sync.Mutex
	gen     int // counts starts
	up      bool
	changed chan struct{} // closed and replaced at every change
}

func newTortureServer() *tortureServer { return &tortureServer{changed: make(chan struct{})} }

// set marks the server up (a new generation) or down; down comes before
// the kill, so that a client's broken connection finds it down.
func (s *tortureServer) set(up bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if up {
		s.gen++
	}
	s.up = up
	close(s.changed)
	s.changed = make(chan struct{})
}

// next waits until a generation other than skip (the one a client failed
// in, or has done its work in) is up and returns it; false once ctx is
// done.
func (s *tortureServer) next(ctx context.Context, skip int) (int, bool) {
	for ctx.Err() == nil {
		s.mu.Lock()
		gen, up, changed := s.gen, s.up, s.changed
		s.mu.Unlock()
		if up && gen != skip {
			return gen, true
		}
		select {
		case <-changed:
		case <-ctx.Done():
		}
	}
	return 0, false
}

// killedSince reports whether generation gen is over.
func (s *tortureServer) killedSince(gen int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen != gen || !s.up
}

// torturePath is how a message entered the server.
type torturePath int

const (
	tortureSMTP       torturePath = iota // port 25, to local accounts
	tortureSubmission                    // AUTH on the submission port, mostly to the sink
	tortureAppend                        // IMAP APPEND
	torturePaths
)

func (p torturePath) String() string { return [...]string{"smtp", "sub", "app"}[p] }

// tortureCopy is one recipient's copy of one message.
type tortureCopy struct{ rcpt, token string }

// tortureGone is what a client was told about deleting a copy.
type tortureGone int

const (
	tortureKept      tortureGone = iota // not deleted: there, if acknowledged
	tortureMaybeGone                    // the deletion got no answer: either way
	tortureGoneSure                     // deletion acknowledged (or seen done): never back
)

// tortureModel is every message the clients sent and what they were told.
type tortureModel struct {
	mu       sync.Mutex
	seq      int
	rcpts    map[string][]string // token → recipients
	acked    map[tortureCopy]bool
	gone     map[tortureCopy]tortureGone
	ackedBy  [torturePaths]int
	arrivals map[string]chan struct{} // local account → poked at each acknowledged delivery
}

func newTortureModel(accounts []string) *tortureModel {
	m := &tortureModel{rcpts: map[string][]string{}, acked: map[tortureCopy]bool{},
		gone: map[tortureCopy]tortureGone{}, arrivals: map[string]chan struct{}{}}
	for _, a := range accounts {
		m.arrivals[a] = make(chan struct{}, 1)
	}
	return m
}

// newToken registers a message about to be sent.
func (m *tortureModel) newToken(p torturePath, rcpts []string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	tok := fmt.Sprintf("tt-%s-%d", p, m.seq)
	m.rcpts[tok] = rcpts
	return tok
}

// ack records that the server acknowledged the message for every recipient.
func (m *tortureModel) ack(p torturePath, token string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ackedBy[p]++
	for _, r := range m.rcpts[token] {
		m.acked[tortureCopy{r, token}] = true
		if ch, ok := m.arrivals[r]; ok {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// belongs reports whether token was sent to rcpt: anything else in an
// account is another account's mail, or garbage.
func (m *tortureModel) belongs(rcpt, token string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Contains(m.rcpts[token], rcpt)
}

func (m *tortureModel) setGone(rcpt, token string, g tortureGone) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gone[tortureCopy{rcpt, token}] = g
}

// resolve settles a deletion that got no answer, once a read after the
// restart shows whether it happened: what a read shows is on disk.
func (m *tortureModel) resolve(rcpt, token string, present bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := tortureCopy{rcpt, token}
	if m.gone[c] != tortureMaybeGone {
		return
	}
	if present {
		delete(m.gone, c)
	} else {
		m.gone[c] = tortureGoneSure
	}
}

// ackedCopies counts acknowledged copies for remote or local recipients;
// the caller holds m.mu.
func (m *tortureModel) ackedCopies(remote bool) int {
	n := 0
	for c := range m.acked {
		if slices.Contains(tortureRemote, c.rcpt) == remote {
			n++
		}
	}
	return n
}

// verify checks the final reads of every account and the sink against the
// pictures and the model, and returns the duplicates found.
func (r *tortureRun) verify(reads map[string]map[string]*tortureFolderRead) (localDups, sinkDups int) {
	for _, mb := range r.boxes {
		r.reconcile(mb, reads[mb.account])
	}
	for _, md := range r.drops {
		inbox := reads[md.account]["INBOX"]
		if inbox == nil {
			continue // verify reports the folders
		}
		list := map[uint32]string{}
		for uid, m := range inbox.msgs {
			list[uid] = m.token
		}
		r.reconcileMaildrop(md, inbox.validity, list)
	}
	copies := map[tortureCopy]int{}
	for account, folders := range reads {
		var names []string
		for name, fr := range folders {
			names = append(names, name)
			for uid, m := range fr.msgs {
				if !r.model.belongs(account, m.token) {
					r.errorf("%s %s UID %d: message %q was not sent to this account (a bounce?)", account, name, uid, m.token)
					continue
				}
				copies[tortureCopy{account, m.token}]++
			}
		}
		sort.Strings(names)
		want := slices.Clone(tortureIMAPFolders)
		sort.Strings(want)
		if !slices.Equal(names, want) {
			r.errorf("%s: folders %v, want %v", account, names, want)
		}
	}
	got, bad := r.sink.received()
	for _, b := range bad {
		r.errorf("the sink got a message without a token:\n%s", b)
	}
	for c, n := range got {
		if !r.model.belongs(c.rcpt, c.token) {
			r.errorf("the sink got %s for %s, which was not sent there", c.token, c.rcpt)
		}
		copies[c] += n
	}

	m := r.model
	m.mu.Lock()
	var lost, back []tortureCopy
	for c := range m.acked {
		if m.gone[c] == tortureKept && copies[c] == 0 {
			lost = append(lost, c)
		}
	}
	for c, g := range m.gone {
		if g == tortureGoneSure && copies[c] > 0 {
			back = append(back, c)
		}
	}
	m.mu.Unlock()
	for _, c := range lost {
		where := "its account"
		if strings.HasSuffix(c.rcpt, "@sink.test") {
			where = "the sink after the queue drained"
		}
		r.lost(c, "acknowledged, not deleted, not in "+where)
	}
	for _, c := range back {
		r.resurrected(c, "deletion acknowledged, present at the end")
	}
	for c, n := range copies {
		if n > 1 && strings.HasSuffix(c.rcpt, "@sink.test") {
			sinkDups += n - 1
		} else if n > 1 {
			localDups += n - 1
		}
	}
	return localDups, sinkDups
}
