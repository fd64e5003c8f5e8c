package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestInteropCurlIMAP: curl's imap:// and imaps:// URLs: LIST, a message
// by UID and a section of it, SEARCH and STATUS as custom requests, and an
// upload (APPEND).
func TestInteropCurlIMAP(t *testing.T) {
	curl := requireTool(t, "curl")
	in, stored := imapInstance(t, false)
	run := func(args ...string) string {
		t.Helper()
		args = append([]string{"-sS", "--max-time", "30", "-u", imapUser + ":" + imapPass}, args...)
		cmd := exec.Command(curl, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := runBounded(cmd, 40*time.Second); err != nil {
			// -v shows the IMAP exchange.
			v, _ := exec.Command(curl, append([]string{"-v"}, args...)...).CombinedOutput()
			t.Fatalf("curl %v: %v\n%s\n%s\nserver log:\n%s", args, err, stderr.String(), v, in.logs())
		}
		return stdout.String()
	}
	listRE := regexp.MustCompile(`^\* LIST \(([^)]*)\) "/" (.*)\r$`)
	_, text := splitMessage(stored[0].Raw)
	bases := []struct{ name, url string }{
		{"imap", "imap://" + in.opt("imap_listen")},
		{"imap starttls", "imap://" + in.opt("imap_listen")},
		{"imaps", "imaps://" + in.opt("imaps_listen")},
	}
	for _, b := range bases {
		tls := []string{}
		switch b.name {
		case "imap starttls":
			tls = []string{"--ssl-reqd", "-k"}
		case "imaps":
			tls = []string{"-k"}
		}
		// LIST of everything.
		list := run(append(tls, b.url+"/")...)
		var names []string
		for _, l := range strings.SplitAfter(list, "\n") {
			if l == "" {
				continue
			}
			m := listRE.FindStringSubmatch(strings.TrimSuffix(l, "\n"))
			if m == nil {
				t.Fatalf("curl %s LIST: line %q in\n%s", b.name, l, list)
			}
			name := strings.Trim(m[2], `"`)
			names = append(names, name)
			role := map[string]string{"Sent": `\Sent`, "Drafts": `\Drafts`, "Trash": `\Trash`, "Junk": `\Junk`, "Archive": `\Archive`}[name]
			if role != "" && !strings.Contains(strings.ToLower(m[1]), strings.ToLower(role)) {
				t.Errorf("curl %s LIST: %q lacks %s", b.name, l, role)
			}
		}
		sort.Strings(names)
		if want := []string{"Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"}; !slices.Equal(names, want) {
			t.Errorf("curl %s LIST: %v, want %v\n%s", b.name, names, want, list)
		}
		// Each message by UID, byte for byte; the text of the first.
		for i, m := range stored {
			got := run(append(tls, fmt.Sprintf("%s/INBOX;UID=%d", b.url, m.UID))...)
			if got != string(m.Raw) {
				t.Errorf("curl %s INBOX;UID=%d (message %d):\n got %q\nwant %q", b.name, m.UID, i+1, got, m.Raw)
			}
		}
		if got := run(append(tls, fmt.Sprintf("%s/INBOX;UID=%d;SECTION=TEXT", b.url, stored[0].UID))...); got != text {
			t.Errorf("curl %s SECTION=TEXT:\n got %q\nwant %q", b.name, got, text)
		}
		if got := run(append(tls, fmt.Sprintf("%s/INBOX;UID=%d;SECTION=2", b.url, stored[1].UID))...); got != imapAttachmentPart {
			t.Errorf("curl %s SECTION=2:\n got %q\nwant %q", b.name, got, imapAttachmentPart)
		}
		// Custom requests.
		if got := run(append(tls, b.url+"/INBOX", "-X", "SEARCH SUBJECT hello")...); got != "* SEARCH 1\r\n" {
			t.Errorf("curl %s SEARCH SUBJECT hello: %q, want %q", b.name, got, "* SEARCH 1\r\n")
		}
		if got := run(append(tls, b.url+"/INBOX", "-X", "SEARCH FROM carol")...); got != "* SEARCH 2\r\n" {
			t.Errorf("curl %s SEARCH FROM carol: %q, want %q", b.name, got, "* SEARCH 2\r\n")
		}
		if got := run(append(tls, b.url+"/", "-X", "STATUS INBOX (MESSAGES)")...); got != "* STATUS INBOX (MESSAGES 2)\r\n" {
			t.Errorf("curl %s STATUS: %q, want %q", b.name, got, "* STATUS INBOX (MESSAGES 2)\r\n")
		}
	}
	// Upload: APPEND to Drafts, over each transport.
	upload := filepath.Join(t.TempDir(), "draft.eml")
	var drafts []string
	for i, b := range bases {
		tls := map[string][]string{"imap starttls": {"--ssl-reqd", "-k"}, "imaps": {"-k"}}[b.name]
		msg := fmt.Sprintf("From: demo@example.org\r\nTo: x@example.net\r\nSubject: draft %d via %s\r\n\r\nA draft.\r\n", i+1, b.name)
		os.WriteFile(upload, []byte(msg), 0o600)
		if got := run(append(tls, "-T", upload, b.url+"/Drafts")...); got != "" {
			t.Errorf("curl %s upload printed %q", b.name, got)
		}
		drafts = append(drafts, msg)
	}
	in.stop()
	// curl fetches BODY[] (not BODY.PEEK[]): both are \Seen now.
	checkFolder(t, "INBOX", in.mustFolder(imapUser, "INBOX"), []string{string(stored[0].Raw), string(stored[1].Raw)}, [][]string{{`\Seen`}, {`\Seen`}})
	// curl appends with (\Seen).
	checkFolder(t, "Drafts", in.mustFolder(imapUser, "Drafts"), drafts, [][]string{{`\Seen`}, {`\Seen`}, {`\Seen`}})
}

// ---------------------------------------------------------------------
// mbsync

// TestInteropMbsync: mbsync (isync) syncs the account with a local Maildir
// both ways: first in the clear, then over IMAPS, then after STARTTLS,
// trusting posthorn's self-signed certificate. Maildir holds LF line ends;
// mbsync converts, so the server keeps CRLF.
func TestInteropMbsync(t *testing.T) {
	mbsync := requireTool(t, "mbsync")
	in, stored := imapInstance(t, true)
	work := in.mustFolderAfterRestart(imapUser, "Work")
	dir := t.TempDir()
	mail := filepath.Join(dir, "mail")
	if err := os.MkdirAll(mail, 0o700); err != nil {
		t.Fatal(err)
	}
	ver, _ := exec.Command(mbsync, "--version").CombinedOutput()
	// isync 1.5 renamed SSLType to TLSType; 1.4 (Debian bookworm) knows only SSLType.
	tlsKey := "SSLType"
	if m := regexp.MustCompile(`isync (\d+)\.(\d+)`).FindStringSubmatch(string(ver)); m != nil {
		major, _ := strconv.Atoi(m[1])
		minor, _ := strconv.Atoi(m[2])
		if major > 1 || (major == 1 && minor >= 5) {
			tlsKey = "TLSType"
		}
	}
	cert := filepath.Join(in.dir, "tls", "selfsigned-cert.pem")
	sync := func(step, transport string) string {
		t.Helper()
		addr, tlsType := in.opt("imap_listen"), "None"
		switch transport {
		case "imaps":
			addr, tlsType = in.opt("imaps_listen"), "IMAPS"
		case "starttls":
			tlsType = "STARTTLS"
		}
		host, port := hostPort(t, addr)
		certLine := ""
		if tlsType != "None" {
			certLine = "CertificateFile " + cert + "\n"
		}
		rc := filepath.Join(dir, "mbsyncrc")
		os.WriteFile(rc, []byte(fmt.Sprintf(`IMAPAccount posthorn
Host %s
Port %s
User %s
Pass %s
%s %s
%sAuthMechs LOGIN
Timeout 20
PipelineDepth 1

IMAPStore remote
Account posthorn

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel posthorn
Far :remote:
Near :local:
Patterns *
Create Both
Remove None
Expunge Both
SyncState *
`, host, port, imapUser, imapPass, tlsKey, tlsType, certLine, mail, mail)), 0o600)
		cmd := exec.Command(mbsync, "-c", rc, "-V", "-Dn", "-a")
		cmd.Env = append(os.Environ(), "HOME="+dir)
		var outBuf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
		err := runBounded(cmd, 40*time.Second)
		if err != nil {
			t.Fatalf("mbsync %s (%s): %v\n%s\nserver log:\n%s", step, transport, err, outBuf.String(), in.logs())
		}
		return outBuf.String()
	}
	// local reads a local Maildir folder: contents by UID (mbsync puts
	// ",U=<uid>" in file names) and the file names.
	local := func(folder string) (map[uint32]string, map[uint32]string) {
		t.Helper()
		byUID, names := map[uint32]string{}, map[uint32]string{}
		files, _ := filepath.Glob(filepath.Join(mail, folder, "cur", "*"))
		news, _ := filepath.Glob(filepath.Join(mail, folder, "new", "*"))
		uidRE := regexp.MustCompile(`,U=(\d+)`)
		for _, f := range append(files, news...) {
			m := uidRE.FindStringSubmatch(filepath.Base(f))
			if m == nil {
				t.Fatalf("local %s: file %s without a UID", folder, f)
			}
			uid, _ := strconv.Atoi(m[1])
			b, _ := os.ReadFile(f)
			byUID[uint32(uid)], names[uint32(uid)] = string(b), f
		}
		return byUID, names
	}
	checkLocal := func(step, folder string, want []storedMessage) {
		t.Helper()
		got, names := local(folder)
		if len(got) != len(want) {
			t.Fatalf("%s: local %s has %d messages %v, want %d", step, folder, len(got), names, len(want))
		}
		for _, m := range want {
			if g := dropTUID(got[m.UID]); g != lf(string(m.Raw)) {
				t.Errorf("%s: local %s UID %d:\n got %q\nwant %q", step, folder, m.UID, g, lf(string(m.Raw)))
			}
			info := ""
			if i := strings.LastIndex(names[m.UID], ":2,"); i >= 0 {
				info = names[m.UID][i+3:]
			}
			if seen := slices.Contains(m.Flags, `\Seen`); seen != strings.Contains(info, "S") {
				t.Errorf("%s: local %s UID %d is %s, server flags %v", step, folder, m.UID, filepath.Base(names[m.UID]), m.Flags)
			}
		}
	}

	// 1. Server → local.
	log1 := sync("first sync", "plain")
	checkLocal("first sync", "INBOX", stored)
	checkLocal("first sync", "Work", work)
	for _, f := range []string{"Sent", "Drafts", "Trash", "Junk", "Archive"} {
		if st, err := os.Stat(filepath.Join(mail, f, "cur")); err != nil || !st.IsDir() {
			t.Errorf("first sync: local folder %s not created: %v\n%s", f, err, log1)
		}
	}

	// 2. Local → server: a new message in Work, a new folder Local with a
	// seen message; and a new message on the server for the INBOX.
	newWork := "From: demo@example.org\nTo: x@example.net\nSubject: written locally\nDate: Fri, 05 Jan 2024 09:00:00 +0000\nMessage-ID: <local-1@example.org>\n\nLocal body,\nsecond line.\n"
	newLocal := "From: demo@example.org\nSubject: in a new local folder\nMessage-ID: <local-2@example.org>\n\nHello from Maildir.\n"
	for _, d := range []string{"Local/cur", "Local/new", "Local/tmp"} {
		os.MkdirAll(filepath.Join(mail, d), 0o700)
	}
	os.WriteFile(filepath.Join(mail, "Work", "new", "1704445200.P1Q1.testhost"), []byte(newWork), 0o600)
	os.WriteFile(filepath.Join(mail, "Local", "cur", "1704445201.P1Q2.testhost:2,S"), []byte(newLocal), 0o600)
	lateMsg := "From: Eve <eve@remote.example>\r\nTo: demo@example.org\r\nSubject: late\r\nDate: Sat, 06 Jan 2024 09:00:00 +0000\r\n\r\nArrived between syncs.\r\n"
	if err := sendOne(in.smtp, "eve@remote.example", []string{imapUser}, lateMsg); err != nil {
		t.Fatal(err)
	}
	log2 := sync("second sync", "imaps")
	in.stop()
	inbox := in.mustFolder(imapUser, "INBOX")
	if len(inbox) != 3 || !bytes.HasSuffix(inbox[2].Raw, []byte(lateMsg)) {
		t.Fatalf("INBOX after delivery: %d messages", len(inbox))
	}
	checkFolder(t, "Work", withoutTUID(in.mustFolder(imapUser, "Work")),
		[]string{string(work[0].Raw), strings.ReplaceAll(newWork, "\n", "\r\n")}, [][]string{{`\Seen`}, {}})
	localFolder, err := in.folder(imapUser, "Local")
	if err != nil {
		t.Fatalf("second sync: folder Local not created on the server: %v (folders %v)\n%s", err, in.folderNames(imapUser), log2)
	}
	checkFolder(t, "Local", withoutTUID(localFolder), []string{strings.ReplaceAll(newLocal, "\n", "\r\n")}, [][]string{{`\Seen`}})
	in.start()
	checkLocal("second sync", "INBOX", inbox)

	// 3. Flag the first INBOX message and delete the first Work message
	// locally; mbsync sets \Flagged, and \Deleted with EXPUNGE.
	_, names := local("INBOX")
	f := names[inbox[0].UID]
	flagged := filepath.Join(mail, "INBOX", "cur", filepath.Base(f)+":2,F") // from new/: no info yet
	if i := strings.LastIndex(f, ":2,"); i >= 0 {
		info := []byte(f[i+3:] + "F")
		slices.Sort(info)
		flagged = filepath.Join(mail, "INBOX", "cur", filepath.Base(f[:i+3]+string(info)))
	}
	if err := os.Rename(f, flagged); err != nil {
		t.Fatal(err)
	}
	_, names = local("Work")
	if err := os.Remove(names[work[0].UID]); err != nil {
		t.Fatal(err)
	}
	log3 := sync("third sync", "starttls")
	in.stop()
	checkFolder(t, "INBOX", in.mustFolder(imapUser, "INBOX"),
		[]string{string(inbox[0].Raw), string(inbox[1].Raw), string(inbox[2].Raw)}, [][]string{{`\Flagged`}, {}, {}})
	checkFolder(t, "Work", withoutTUID(in.mustFolder(imapUser, "Work")), []string{strings.ReplaceAll(newWork, "\n", "\r\n")}, [][]string{{}})
	if t.Failed() {
		t.Logf("third sync:\n%s", log3)
	}
}

// mbsync puts a header field "X-TUID: <12 characters>" at the end of the
// header of every message it copies, either way (isync's sync.c: it finds
// the copy by it when the server reports no UID); the rest must be intact.
var tuidRE = regexp.MustCompile(`(?m)^X-TUID: [A-Za-z0-9+/]{12}\r?\n`)

func dropTUID(msg string) string {
	header, _, _ := strings.Cut(msg, "\n\n")
	if strings.Contains(msg, "\r\n\r\n") {
		header, _, _ = strings.Cut(msg, "\r\n\r\n")
	}
	loc := tuidRE.FindStringIndex(msg)
	if loc == nil || loc[0] > len(header) {
		return msg
	}
	return msg[:loc[0]] + msg[loc[1]:]
}

func withoutTUID(msgs []storedMessage) []storedMessage {
	for i := range msgs {
		msgs[i].Raw = []byte(dropTUID(string(msgs[i].Raw)))
	}
	return msgs
}

// mustFolderAfterRestart reads a folder from the store with the server
// stopped, then starts it again.
func (in *instance) mustFolderAfterRestart(account, folder string) []storedMessage {
	in.t.Helper()
	in.stop()
	msgs := in.mustFolder(account, folder)
	in.start()
	return msgs
}

// ---------------------------------------------------------------------
// mutt

// TestInteropMutt: mutt, in a pseudo-terminal made by script(1), pipes the
// first INBOX message to a file (raw, not decoded), then saves it to Work
// and expunges it from the INBOX.
func TestInteropMutt(t *testing.T) {
	mutt := requireTool(t, "mutt")
	script := requireTool(t, "script")
	in, stored := imapInstance(t, true)
	work := in.mustFolderAfterRestart(imapUser, "Work")
	dir := t.TempDir()
	host, port := hostPort(t, in.opt("imap_listen"))
	folderURL := fmt.Sprintf("imap://%s@%s:%s/", strings.ReplaceAll(imapUser, "@", "%40"), host, port)
	base := fmt.Sprintf(`set folder="%s"
set spoolfile="+INBOX"
set imap_user="%s"
set imap_pass="%s"
set imap_passive=yes
set imap_check_subscribed=no
set ssl_starttls=no
set ssl_force_tls=no
set header_cache=""
set message_cachedir=""
set confirmappend=no
set confirmcreate=no
set wait_key=no
set move=no
set delete=yes
set quit=yes
set record=""
set postponed="+Drafts"
set pipe_decode=no
set sort=date
set mail_check=60
set timeout=60
set beep=no
set help=no
set mark_old=no
`, folderURL, imapUser, imapPass)
	run := func(step, push string) {
		t.Helper()
		rc := filepath.Join(dir, "muttrc")
		os.WriteFile(rc, []byte(base+"push \""+push+"\"\n"), 0o600)
		os.Remove(filepath.Join(dir, ".muttdebug0"))
		shell := fmt.Sprintf("stty cols 132 rows 40; exec %s -n -d 2 -F %s -f +INBOX", mutt, rc)
		cmd := exec.Command(script, "-qec", shell, "/dev/null")
		cmd.Env = append(os.Environ(), "HOME="+dir, "TERM=xterm", "LANG=C.UTF-8")
		// script copies its stdin to the terminal: a pipe nobody writes,
		// closed only after mutt is gone, so that EOF never reaches mutt.
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		defer stdin.Close()
		var screen bytes.Buffer
		cmd.Stdout, cmd.Stderr = &screen, &screen
		if err := runBounded(cmd, 30*time.Second); err != nil {
			debug, _ := os.ReadFile(filepath.Join(dir, ".muttdebug0"))
			t.Fatalf("mutt %s: %v\nscreen:\n%s\nmutt debug log:\n%s\nserver log:\n%s", step, err, screenText(screen.Bytes()), debug, in.logs())
		}
	}

	// Reading: pipe the first message, raw.
	out := filepath.Join(dir, "piped.eml")
	run("pipe", "<first-entry><pipe-message>cat > "+out+"<enter><quit>")
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// mutt pipes an mbox-style "From " line first, then the message with
	// its line ends made local (LF).
	first, rest, _ := strings.Cut(string(got), "\n")
	if !strings.HasPrefix(first, "From ") {
		rest = string(got)
	}
	if rest != lf(string(stored[0].Raw)) {
		t.Errorf("mutt piped:\n got %q\nwant %q", got, lf(string(stored[0].Raw)))
	}

	// Moving: save the first message to Work, sync (expunge), quit.
	run("save", "<first-entry><save-message><kill-line>=Work<enter><sync-mailbox><quit>")
	in.stop()
	checkFolder(t, "INBOX", in.mustFolder(imapUser, "INBOX"), []string{string(stored[1].Raw)}, [][]string{{}})
	// Piping fetches BODY.PEEK[] ($imap_peek): the copy is still unseen.
	checkFolder(t, "Work", in.mustFolder(imapUser, "Work"), []string{string(work[0].Raw), string(stored[0].Raw)}, [][]string{{`\Seen`}, {}})
}

// screenText drops terminal escape sequences from a screen capture.
func screenText(b []byte) string {
	s := regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|[()][A-Z0-9]|[=>])`).ReplaceAllString(string(b), "")
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}
