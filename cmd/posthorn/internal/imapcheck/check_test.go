package imapcheck

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// The checker must be able to fail: each test here plays a scripted server
// that breaks one rule and asserts the contradiction is reported; the
// controls play what a correct server may do under concurrency and assert
// nothing is.

// fakeStep is one command the scripted server expects and its answer.
type fakeStep struct {
	cmd   string   // the command after its tag starts with this
	reply []string // lines sent back: "{tag}" is the command's tag; "<DONE>" waits for IDLE's DONE
}

// scripted connects a client to a server that follows steps.
func scripted(t *testing.T, m *model, id int, steps ...fakeStep) *client {
	t.Helper()
	srv, cli := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer srv.Close()
		br := bufio.NewReader(srv)
		fmt.Fprintf(srv, "* OK scripted\r\n")
		for _, st := range steps {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Errorf("server: waiting for %q: %v", st.cmd, err)
				return
			}
			if n, ok := literalSuffix([]byte(line)); ok {
				if !strings.HasSuffix(line, "+}\r\n") {
					fmt.Fprintf(srv, "+ go ahead\r\n")
				}
				if _, err := io.ReadFull(br, make([]byte, n+2)); err != nil {
					t.Errorf("server: literal: %v", err)
					return
				}
			}
			tag, rest, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
			if !strings.HasPrefix(rest, st.cmd) {
				t.Errorf("server: got %q, want %q", rest, st.cmd)
				return
			}
			for _, r := range st.reply {
				if r == "<DONE>" {
					if l, _ := br.ReadString('\n'); l != "DONE\r\n" {
						t.Errorf("server: got %q, want DONE", l)
						return
					}
					continue
				}
				fmt.Fprintf(srv, "%s\r\n", strings.ReplaceAll(r, "{tag}", tag))
			}
		}
	}()
	cfg := &Config{ResponseTimeout: 5 * time.Second, Folders: []string{"INBOX", "Other"}, FolderTarget: 40}
	c := newClient(id, m, cfg, cli)
	if r, err := c.next(); err != nil || r.kind != "OK" {
		t.Fatalf("greeting: %v %v", r, err)
	}
	t.Cleanup(func() {
		cli.Close()
		<-done
	})
	return c
}

// selectThree: INBOX with UIDs 1, 2, 3 and no flags, selected and filled.
var selectThree = []fakeStep{
	{`SELECT "INBOX"`, []string{"* 3 EXISTS", "* OK [UIDVALIDITY 7] v", "* OK [UIDNEXT 4] n", "{tag} OK [READ-WRITE] done"}},
	{"FETCH 1:3 (UID FLAGS)", []string{"* 1 FETCH (UID 1 FLAGS ())", "* 2 FETCH (UID 2 FLAGS ())", "* 3 FETCH (UID 3 FLAGS ())", "{tag} OK done"}},
}

func steps(extra ...fakeStep) []fakeStep {
	return append(append([]fakeStep{}, selectThree...), extra...)
}

func (c *client) selectAndFill(t *testing.T) {
	t.Helper()
	c.selectFolder("INBOX", false)
	c.fill()
	if c.err != nil {
		t.Fatal(c.err)
	}
}

// wantProblem asserts exactly one contradiction, containing want ("" for
// none).
func wantProblem(t *testing.T, m *model, want string) {
	t.Helper()
	switch {
	case want == "" && m.nProblems != 0:
		t.Errorf("contradictions reported for a correct server: %q", m.problems)
	case want != "" && m.nProblems != 1:
		t.Errorf("%d contradictions %q, want one with %q", m.nProblems, m.problems, want)
	case want != "" && !strings.Contains(m.problems[0], want):
		t.Errorf("contradiction %q, want one with %q", m.problems[0], want)
	}
}

func noop(reply ...string) fakeStep { return fakeStep{"NOOP", append(reply, "{tag} OK done")} }

func TestExistsMustNotShrink(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1, steps(noop("* 2 EXISTS"))...)
	c.selectAndFill(t)
	c.opNoop("NOOP")
	wantProblem(t, m, "EXISTS 2 after 3: the message count must not shrink (RFC 9051 7.4.1)")
}

func TestUIDMustNotChange(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1, steps(noop("* 2 FETCH (UID 9 FLAGS ())"))...)
	c.selectAndFill(t)
	c.opNoop("NOOP")
	wantProblem(t, m, "message 2 was UID 2 and is now UID 9, with no EXPUNGE between")
}

func TestUIDsMustAscend(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1,
		fakeStep{`SELECT "INBOX"`, []string{"* 3 EXISTS", "* OK [UIDVALIDITY 7] v", "{tag} OK [READ-WRITE] done"}},
		fakeStep{"FETCH 1:3 (UID FLAGS)", []string{"* 1 FETCH (UID 1 FLAGS ())", "* 2 FETCH (UID 5 FLAGS ())", "* 3 FETCH (UID 4 FLAGS ())", "{tag} OK done"}})
	c.selectAndFill(t)
	wantProblem(t, m, "UIDs do not ascend: message 2 is UID 5, message 3 is UID 4")
}

func TestNumberBeyondExists(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1, steps(noop("* 4 FETCH (FLAGS (\\Seen))"))...)
	c.selectAndFill(t)
	c.opNoop("NOOP")
	wantProblem(t, m, "FETCH for message 4 but the mailbox has 3 messages")
}

func fetchFlags(seqs ...uint32) *command {
	return &command{kind: "FETCH", name: "FETCH", args: FormatSet(seqs) + " (FLAGS)", noExpunge: true, folder: "INBOX", wantFlags: true, seqs: seqs}
}

func TestNoExpungeDuringFetch(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1, steps(fakeStep{"FETCH 1 (FLAGS)", []string{"* 3 EXPUNGE", "* 1 FETCH (FLAGS ())", "{tag} OK done"}})...)
	c.selectAndFill(t)
	c.exec(fetchFlags(1))
	wantProblem(t, m, "EXPUNGE while responding to FETCH (RFC 9051 7.5.1)")
}

// Control: UID FETCH may carry EXPUNGE (RFC 9051 7.5.1).
func TestExpungeDuringUIDFetchAllowed(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1, steps(fakeStep{"UID FETCH 1 (FLAGS)", []string{"* 1 FETCH (UID 1 FLAGS ())", "* 3 EXPUNGE", "{tag} OK done"}})...)
	c.selectAndFill(t)
	c.exec(&command{kind: "UID FETCH", name: "UID FETCH", args: "1 (FLAGS)", folder: "INBOX", wantFlags: true, targets: []uint32{1}})
	wantProblem(t, m, "")
	if len(c.view.slots) != 2 {
		t.Errorf("view has %d messages after EXPUNGE, want 2", len(c.view.slots))
	}
}

func TestBodyMustBeWhatWasAppended(t *testing.T) {
	m := newModel(10)
	msg := []byte("Subject: test\r\nX-Imapcheck-Token: tok-1\r\n\r\nHello.\r\n")
	altered := strings.Replace(string(msg), "Hello", "Hullo", 1)
	c := scripted(t, m, 1, steps(
		fakeStep{"APPEND", []string{"* 4 EXISTS", "{tag} OK [APPENDUID 7 4] done"}},
		fakeStep{"UID FETCH 4 (BODY.PEEK[])", []string{fmt.Sprintf("* 4 FETCH (UID 4 BODY[] {%d}\r\n%s)", len(altered), altered), "{tag} OK done"}},
	)...)
	c.selectAndFill(t)
	c.exec(&command{kind: "APPEND", name: "APPEND", args: `"INBOX"`, literal: msg, dest: "INBOX", token: "tok-1"})
	c.exec(&command{kind: "UID FETCH", name: "UID FETCH", args: "4 (BODY.PEEK[])", folder: "INBOX", wantBody: true, targets: []uint32{4}})
	wantProblem(t, m, "BODY[] (")
	if !strings.Contains(m.problems[0], "differs from the message APPENDed with token tok-1") {
		t.Errorf("got %q", m.problems[0])
	}
}

func TestBodyMustNotChangeBetweenFetches(t *testing.T) {
	m := newModel(10)
	body := func(s string) string {
		msg := "X-Imapcheck-Token: tok-2\r\n\r\n" + s
		return fmt.Sprintf("* 1 FETCH (UID 1 BODY[] {%d}\r\n%s)", len(msg), msg)
	}
	m.registerAppend("tok-2", []byte("X-Imapcheck-Token: tok-2\r\n\r\nfirst"))
	c := scripted(t, m, 1, steps(
		fakeStep{"UID FETCH 1 (BODY.PEEK[])", []string{body("first"), "{tag} OK done"}},
		fakeStep{"UID FETCH 1 (BODY.PEEK[])", []string{body("other"), "{tag} OK done"}},
	)...)
	c.selectAndFill(t)
	for range 2 {
		c.exec(&command{kind: "UID FETCH", name: "UID FETCH", args: "1 (BODY.PEEK[])", folder: "INBOX", wantBody: true, targets: []uint32{1}})
	}
	if m.nProblems != 2 || !strings.Contains(m.problems[1], "BODY[] of UID 1 differs from an earlier fetch of it") {
		t.Errorf("contradictions %q", m.problems)
	}
}

func TestAppendUIDMustBeNew(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1, steps(fakeStep{"APPEND", []string{"{tag} OK [APPENDUID 7 2] done"}})...)
	c.selectAndFill(t)
	c.exec(&command{kind: "APPEND", name: "APPEND", args: `"INBOX"`, literal: c.message("tok-3"), litPlus: true, dest: "INBOX", token: "tok-3"})
	wantProblem(t, m, "APPENDUID gives UID 2, not above UID 3 already seen in INBOX")
}

func TestCopyUIDMustBeNew(t *testing.T) {
	m := newModel(10)
	m.observeUID("Other", 10)
	c := scripted(t, m, 1, steps(fakeStep{`COPY 1 "Other"`, []string{"{tag} OK [COPYUID 9 1 10] done"}})...)
	c.selectAndFill(t)
	c.exec(&command{kind: "COPY", name: "COPY", args: `1 "Other"`, folder: "INBOX", dest: "Other", targets: []uint32{1}})
	wantProblem(t, m, "COPYUID gives UID 10, not above UID 10 already seen in Other")
}

func TestUIDValidityMustNotChange(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1, steps(fakeStep{`SELECT "INBOX"`, []string{"* OK [CLOSED] c", "* 3 EXISTS", "* OK [UIDVALIDITY 8] v", "{tag} OK [READ-WRITE] done"}})...)
	c.selectAndFill(t)
	c.selectFolder("INBOX", false)
	wantProblem(t, m, "UIDVALIDITY of INBOX changed from 7 to 8")
}

func TestSelectMustSayClosed(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1, steps(fakeStep{`SELECT "INBOX"`, []string{"* 3 EXISTS", "* OK [UIDVALIDITY 7] v", "{tag} OK [READ-WRITE] done"}})...)
	c.selectAndFill(t)
	c.selectFolder("INBOX", false)
	wantProblem(t, m, "without OK [CLOSED] (RFC 9051 6.3.2)")
}

func TestNoBAD(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1, steps(fakeStep{"NOOP", []string{"{tag} BAD what?"}})...)
	c.selectAndFill(t)
	c.opNoop("NOOP")
	wantProblem(t, m, "BAD for a well-formed command")
}

func TestUnexpectedNO(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1, steps(
		fakeStep{"FETCH 1 (FLAGS)", []string{"{tag} NO [EXPUNGEISSUED] gone"}},
		fakeStep{"FETCH 2 (FLAGS)", []string{"{tag} NO [SERVERBUG] oops"}},
	)...)
	c.selectAndFill(t)
	c.exec(fetchFlags(1))
	c.exec(fetchFlags(2))
	if m.expectedNO != 1 || m.nUnexpected != 1 || !strings.Contains(m.unexpected[0], "SERVERBUG") {
		t.Errorf("expected NO %d, unexpected %q", m.expectedNO, m.unexpected)
	}
}

func storeCmd(set, item string, op byte, flags flagSet, silent bool, uids ...uint32) *command {
	mask, val := storeWrite(op, flags)
	return &command{kind: "STORE", name: "STORE", args: set + " " + item + " " + flags.String(), noExpunge: true,
		folder: "INBOX", targets: uids, silent: silent, op: op, opFlags: flags, write: &flagWrite{mask: mask, val: val}}
}

var flagFlagged = flagBit(`\Flagged`)

// The example of the brief: this client's STORE +FLAGS \Flagged, then a
// FETCH without \Flagged, and nothing could have cleared it.
func TestStoredFlagMustStay(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1, steps(
		fakeStep{"STORE 1 +FLAGS", []string{`* 1 FETCH (FLAGS (\Flagged))`, "{tag} OK done"}},
		fakeStep{"FETCH 1 (FLAGS)", []string{`* 1 FETCH (FLAGS ())`, "{tag} OK done"}},
	)...)
	c.selectAndFill(t)
	c.exec(storeCmd("1", "+FLAGS", '+', flagFlagged, false, 1))
	c.exec(fetchFlags(1))
	wantProblem(t, m, `\Flagged not set on UID 1 is impossible`)
}

// Control: the same answers are fine when another client's -FLAGS
// \Flagged was in flight meanwhile (reported in the same response as the
// FETCH).
func TestStoredFlagClearedConcurrently(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1, steps(
		fakeStep{"STORE 1 +FLAGS", []string{`* 1 FETCH (FLAGS (\Flagged))`, "{tag} OK done"}},
		fakeStep{"FETCH 1 (FLAGS)", []string{`* 1 FETCH (FLAGS ())`, "{tag} OK done"}},
	)...)
	c.selectAndFill(t)
	c.exec(storeCmd("1", "+FLAGS", '+', flagFlagged, false, 1))
	m.addWrite("INBOX", []uint32{1}, &flagWrite{start: m.now(), end: inFlight, mask: flagFlagged, desc: "client 2 STORE -FLAGS"})
	c.exec(fetchFlags(1))
	wantProblem(t, m, "")
}

// A STORE must answer with the flags it set.
func TestStoreAnswerMustShowItsChange(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1, steps(fakeStep{"STORE 2 +FLAGS", []string{`* 2 FETCH (FLAGS (\Seen))`, "{tag} OK done"}})...)
	c.selectAndFill(t)
	c.exec(storeCmd("2", "+FLAGS", '+', flagFlagged, false, 2))
	if m.nProblems == 0 || !strings.Contains(strings.Join(m.problems, "\n"), `\Flagged not set on UID 2 right after this command set it`) {
		t.Errorf("contradictions %q", m.problems)
	}
}

// Another client's change completed before NOOP began must be reported by
// it (RFC 9051 5.2; the .SILENT race of RFC 9051 6.4.6's note).
func TestNoopMustReportFlagChange(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1, steps(noop(), noop(`* 3 FETCH (UID 3 FLAGS (\Flagged))`))...)
	c.selectAndFill(t)
	w := &flagWrite{start: m.now(), end: inFlight, mask: flagFlagged, val: flagFlagged, desc: "client 2 STORE +FLAGS"}
	m.addWrite("INBOX", []uint32{3}, w)
	m.finishWrite(w, m.now(), true)
	c.opNoop("NOOP")
	wantProblem(t, m, `after NOOP the client has \Flagged not set on UID 3, but it was set by client 2 STORE +FLAGS`)
	c.opNoop("NOOP") // control: reported now
	if m.nProblems != 1 {
		t.Errorf("contradictions %q", m.problems)
	}
}

// FETCH ... OK [EXPUNGEISSUED] without message 2 says it is expunged: the
// next NOOP must report it.
func TestNoopMustReportExpungeIssued(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1, steps(
		fakeStep{"FETCH 1:3 (FLAGS)", []string{`* 1 FETCH (FLAGS ())`, `* 3 FETCH (FLAGS ())`, "{tag} OK [EXPUNGEISSUED] some gone"}},
		noop(),
	)...)
	c.selectAndFill(t)
	c.exec(fetchFlags(1, 2, 3))
	c.opNoop("NOOP")
	wantProblem(t, m, "message 2 (UID 2) was expunged")
}

// EXPUNGE must remove a message whose \Deleted was set before it.
func TestExpungeMustRemoveDeleted(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1, steps(
		fakeStep{"STORE 2 +FLAGS.SILENT", []string{"{tag} OK done"}},
		fakeStep{"EXPUNGE", []string{"{tag} OK done"}},
	)...)
	c.selectAndFill(t)
	c.exec(storeCmd("2", "+FLAGS.SILENT", '+', flagDeleted, true, 2))
	c.exec(&command{kind: "EXPUNGE", name: "EXPUNGE", folder: "INBOX"})
	wantProblem(t, m, `UID 2 still in the mailbox after EXPUNGE, but \Deleted was set`)
}

// Control: a correct IDLE session, with updates while idling.
func TestIdleUpdates(t *testing.T) {
	m := newModel(10)
	c := scripted(t, m, 1, steps(fakeStep{"IDLE", []string{"+ idling", "* 4 EXISTS", "* 2 EXPUNGE", "<DONE>", "{tag} OK done"}})...)
	c.selectAndFill(t)
	c.exec(&command{kind: "IDLE", name: "IDLE", idleFor: 50 * time.Millisecond, folder: "INBOX"})
	wantProblem(t, m, "")
	if c.err != nil || len(c.view.slots) != 3 || c.view.slots[1].uid != 3 || c.view.slots[2].uid != 0 {
		t.Errorf("view after IDLE: %+v, %v", c.view.slots, c.err)
	}
}

// A search on a flag is a read of it: a message matching FLAGGED that no
// one flagged is impossible.
func TestSearchMustAgreeWithFlags(t *testing.T) {
	m := newModel(10)
	m.assign("INBOX", 1, "", "test", &birth{end: 1}, 0)
	c := scripted(t, m, 1, steps(fakeStep{"SEARCH FLAGGED", []string{"* SEARCH 1", "{tag} OK done"}})...)
	c.selectAndFill(t)
	c.exec(&command{kind: "SEARCH", name: "SEARCH", args: "FLAGGED", noExpunge: true, folder: "INBOX",
		search: &searchCheck{bit: flagFlagged, positive: true}})
	wantProblem(t, m, `\Flagged set on UID 1 is impossible: created with it not set`)
}
