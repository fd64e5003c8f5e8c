package imapcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config configures a run.
type Config struct {
	Addr           string // host:port of a plain IMAP listener (LOGIN allowed)
	User, Password string
	Clients        int           // sessions, all logged in to User
	Duration       time.Duration // of random operations, checkpoints not counted
	// CheckpointEvery stops all clients for a checkpoint at this interval;
	// 0: only at the end.
	CheckpointEvery time.Duration
	// Folders are the folders used, INBOX first; the others are created.
	Folders []string
	// FolderTarget is the message count per folder the driver steers to.
	FolderTarget int
	Seed         uint64
	// ResponseTimeout bounds the wait for each response.
	ResponseTimeout time.Duration
	// MaxProblems caps the messages kept per list in the Report.
	MaxProblems int
	// Trace, if set, receives every command and response line (literals
	// elided) with the client and the logical time: "3 1234 C: c3.7 NOOP".
	Trace io.Writer

	trace func(format string, args ...any)
}

func (cfg *Config) defaults() {
	if cfg.Trace != nil {
		var mu sync.Mutex
		w := cfg.Trace
		cfg.trace = func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(w, format+"\n", args...)
		}
	}
	if cfg.Clients <= 0 {
		cfg.Clients = 10
	}
	if len(cfg.Folders) == 0 {
		cfg.Folders = []string{"INBOX", "Check-A", "Check B"}
	}
	if cfg.FolderTarget <= 0 {
		cfg.FolderTarget = 40
	}
	if cfg.ResponseTimeout <= 0 {
		cfg.ResponseTimeout = time.Minute
	}
	if cfg.MaxProblems <= 0 {
		cfg.MaxProblems = 100
	}
}

// Report is the outcome of a run.
type Report struct {
	Clients     int
	Elapsed     time.Duration // the random operations, checkpoints included
	Ops         map[string]int
	Commands    int64
	Checkpoints int
	Appended    int // APPENDs completed with APPENDUID
	Bodies      int // BODY[] responses checked against what was APPENDed
	FolderSizes map[string]int

	// Contradictions: responses no order of the commands can explain.
	Contradictions     []string
	ContradictionCount int
	// Unexpected: tagged or untagged NO for what the server must do.
	Unexpected      []string
	UnexpectedCount int
	// ExpectedNO: NO [EXPUNGEISSUED] where RFC 9051 allows it.
	ExpectedNO int
}

// CommandsPerSecond is the rate of tagged commands.
func (r *Report) CommandsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Commands) / r.Elapsed.Seconds()
}

func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d clients, %v, %d commands (%.0f/s), %d checkpoints, %d appended, %d bodies checked\n",
		r.Clients, r.Elapsed.Round(time.Millisecond), r.Commands, r.CommandsPerSecond(), r.Checkpoints, r.Appended, r.Bodies)
	b.WriteString("operations:")
	for _, k := range OpKinds() {
		fmt.Fprintf(&b, " %s=%d", k, r.Ops[k])
	}
	b.WriteString("\nfolders:")
	for _, k := range slices.Sorted(maps.Keys(r.FolderSizes)) {
		fmt.Fprintf(&b, " %q=%d", k, r.FolderSizes[k])
	}
	fmt.Fprintf(&b, "\ncontradictions: %d, unexpected NO: %d, NO [EXPUNGEISSUED]: %d\n", r.ContradictionCount, r.UnexpectedCount, r.ExpectedNO)
	for _, p := range r.Contradictions {
		fmt.Fprintf(&b, "  contradiction: %s\n", p)
	}
	for _, p := range r.Unexpected {
		fmt.Fprintf(&b, "  unexpected: %s\n", p)
	}
	return b.String()
}

// Run creates the folders, logs in cfg.Clients sessions and runs random
// operations for cfg.Duration with checkpoints. An error means the run
// could not be set up; what the server did wrong is in the Report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	if len(cfg.Folders) < 2 || !strings.EqualFold(cfg.Folders[0], "INBOX") {
		return nil, errors.New("imapcheck: Folders must be INBOX and at least one more")
	}
	m := newModel(cfg.MaxProblems)
	admin, err := dial(0, m, &cfg, false)
	if err != nil {
		return nil, fmt.Errorf("imapcheck: %w", err)
	}
	for _, f := range cfg.Folders[1:] {
		cmd := &command{kind: "CREATE", name: "CREATE", args: quote(f)}
		if err := admin.exec(cmd); err != nil {
			return nil, fmt.Errorf("imapcheck: %w", err)
		}
		if cmd.tagged.kind != "OK" && cmd.tagged.code != "ALREADYEXISTS" {
			return nil, fmt.Errorf("imapcheck: CREATE %s: %s", f, cmd.tagged.line)
		}
	}
	admin.close()

	clients := make([]*client, cfg.Clients)
	errs := make([]error, cfg.Clients)
	parallel(cfg.Clients, func(i int) {
		// Half the clients speak IMAP4rev2 (RFC 9051), half IMAP4rev1.
		c, err := dial(i+1, m, &cfg, i%2 == 1)
		if err != nil {
			errs[i] = err
			return
		}
		c.selectFolder(cfg.Folders[i%len(cfg.Folders)], false)
		c.fill()
		clients[i] = c
		errs[i] = c.err
	})
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.close()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("imapcheck: %w", err)
	}

	rep := &Report{Clients: cfg.Clients}
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	for {
		roundEnd := deadline
		if cfg.CheckpointEvery > 0 && time.Until(deadline) > cfg.CheckpointEvery*3/2 {
			roundEnd = time.Now().Add(cfg.CheckpointEvery)
		}
		if d, ok := ctx.Deadline(); ok && d.Before(roundEnd) {
			roundEnd = d
		}
		parallel(len(clients), func(i int) { clients[i].loop(roundEnd) })
		final := !roundEnd.Before(deadline) || ctx.Err() != nil
		checkpoint(m, clients, &cfg, final, rep)
		if final {
			break
		}
	}
	rep.Elapsed = time.Since(start)

	rep.Ops = map[string]int{}
	for _, c := range clients {
		for k, n := range c.ops {
			rep.Ops[k] += n
		}
		rep.Appended += c.appended
		rep.Bodies += c.bodies
		if c.err != nil {
			m.contradiction(fmt.Sprintf("session broken: %v", c.err))
		}
	}
	rep.Commands = m.commands.Load()
	m.mu.Lock()
	defer m.mu.Unlock()
	rep.Contradictions, rep.ContradictionCount = m.problems, m.nProblems
	rep.Unexpected, rep.UnexpectedCount = m.unexpected, m.nUnexpected
	rep.ExpectedNO = m.expectedNO
	return rep, nil
}

// parallel runs fn(0..n-1) concurrently and waits.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { fn(i) })
	}
	wg.Wait()
}

// checkpoint runs while no client sends anything else: each catches up
// with NOOP, then selects every folder afresh and fetches UID and FLAGS of
// every message. All fresh views of a folder must be the same, and each
// client's view after NOOP must be its fresh view of that folder. At the
// end, every message's body is fetched and checked.
func checkpoint(m *model, all []*client, cfg *Config, final bool, rep *Report) {
	rep.Checkpoints++
	n := rep.Checkpoints
	var clients []*client
	for _, c := range all {
		if c.err == nil {
			clients = append(clients, c)
		}
	}
	if len(clients) == 0 {
		return
	}
	type snapshot struct {
		folder string
		slots  []slot
	}
	tracked := make([]*snapshot, len(clients))
	fresh := make([]map[string][]slot, len(clients))
	parallel(len(clients), func(i int) {
		c := clients[i]
		c.exec(&command{kind: "NOOP", name: "NOOP"})
		if c.view != nil {
			tracked[i] = &snapshot{c.view.folder, slices.Clone(c.view.slots)}
		}
	})
	parallel(len(clients), func(i int) {
		c := clients[i]
		fresh[i] = map[string][]slot{}
		for _, f := range cfg.Folders {
			c.selectFolder(f, false)
			if c.err != nil || c.view == nil {
				return
			}
			if len(c.view.slots) > 0 {
				c.exec(&command{kind: "UID FETCH", name: "UID FETCH", args: "1:* (UID FLAGS)",
					folder: f, wantFlags: true, everything: true})
			}
			if c.err == nil && c.view != nil {
				fresh[i][f] = slices.Clone(c.view.slots)
			}
		}
	})
	ref := -1
	for i, c := range clients {
		if c.err == nil && len(fresh[i]) == len(cfg.Folders) {
			ref = i
			break
		}
	}
	if ref < 0 {
		return
	}
	for i, c := range clients {
		if i != ref && c.err == nil {
			for _, f := range cfg.Folders {
				if d := diffSlots(fresh[ref][f], fresh[i][f]); d != "" {
					m.contradiction(fmt.Sprintf("checkpoint %d: %s: client %d and client %d see different messages: %s", n, f, clients[ref].id, c.id, d))
				}
			}
		}
		if t := tracked[i]; t != nil && c.err == nil {
			if d := diffSlots(fresh[i][t.folder], t.slots); d != "" {
				m.contradiction(fmt.Sprintf("checkpoint %d: %s: client %d's view after NOOP differs from a fresh SELECT: %s", n, t.folder, c.id, d))
			}
		}
	}
	rep.FolderSizes = map[string]int{}
	for f, s := range fresh[ref] {
		rep.FolderSizes[f] = len(s)
	}
	if !final {
		return
	}
	c := clients[ref]
	for _, f := range cfg.Folders {
		c.selectFolder(f, true)
		if c.err != nil || c.view == nil || len(c.view.slots) == 0 {
			continue
		}
		before := c.bodies
		cmd := &command{kind: "UID FETCH", name: "UID FETCH", args: "1:* (UID BODY.PEEK[])",
			folder: f, wantBody: true, anyBody: true, everything: true}
		c.exec(cmd)
		if c.err == nil && c.bodies-before != len(c.view.slots) {
			m.contradiction(fmt.Sprintf("checkpoint %d: %s: %d bodies for %d messages", n, f, c.bodies-before, len(c.view.slots)))
		}
	}
}

// diffSlots describes the first difference between two views ("" if the
// same); a UID or flags the second does not know are not compared.
func diffSlots(want, got []slot) string {
	if len(want) != len(got) {
		return fmt.Sprintf("%d messages vs %d", len(want), len(got))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.uid != 0 && w.uid != g.uid {
			return fmt.Sprintf("message %d is UID %d vs UID %d", i+1, w.uid, g.uid)
		}
		if g.flagsKnown && w.flags != g.flags {
			return fmt.Sprintf("message %d (UID %d) has flags %s vs %s", i+1, w.uid, w.flags, g.flags)
		}
	}
	return ""
}
