package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"posthorn/mailbox"
	"posthorn/mailbox/message"
)

// The IMAP interop tests: clients nobody here wrote (Python's imaplib, curl,
// mbsync, mutt) against `posthorn serve` with imap_listen (STARTTLS) and
// imaps_listen (implicit TLS), over loopback, where LOGIN in the clear is
// allowed. Every message a client reads must be byte for byte what the store
// holds, and whatever a client changes must be in the store afterwards.

const imapUser, imapPass = "demo@example.org", "secret"

// The two messages delivered over SMTP to demo@example.org's INBOX.
const (
	imapPlainMsg = "From: Alice Example <alice@remote.example>\r\n" +
		"To: demo@example.org\r\n" +
		"Subject: hello world\r\n" +
		"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n" +
		"Message-ID: <plain-1@remote.example>\r\n" +
		"\r\n" +
		"Hello, this is plain text.\r\n" +
		"A second line.\r\n"
	imapAttachmentPart = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	imapMultipartMsg   = "From: Carol <carol@remote.example>\r\n" +
		"To: demo@example.org\r\n" +
		"Subject: report attached\r\n" +
		"Date: Tue, 02 Jan 2024 11:00:00 +0000\r\n" +
		"Message-ID: <multi-2@remote.example>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n" +
		"\r\n" +
		"This is a multi-part message in MIME format.\r\n" +
		"--b1\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"See the attachment.\r\n" +
		"--b1\r\n" +
		"Content-Type: application/octet-stream; name=\"report.bin\"\r\n" +
		"Content-Disposition: attachment; filename=\"report.bin\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"\r\n" +
		imapAttachmentPart + "\r\n" +
		"--b1--\r\n"
	// imapWorkMsg is put in the folder Work (with \Seen) by imapInstance
	// when asked.
	imapWorkMsg = "From: Dave <dave@remote.example>\r\n" +
		"To: demo@example.org\r\n" +
		"Subject: work item\r\n" +
		"Date: Wed, 03 Jan 2024 12:00:00 +0000\r\n" +
		"Message-ID: <work-3@remote.example>\r\n" +
		"\r\n" +
		"A task.\r\n"
)

// imapInstance runs posthorn with IMAP (STARTTLS) and IMAPS listeners, the
// user demo@example.org, and the two messages above delivered over SMTP;
// with work, also the folder Work holding imapWorkMsg (\Seen). It returns
// the instance, started again, and the INBOX as stored.
func imapInstance(t *testing.T, work bool) (*instance, []storedMessage) {
	t.Helper()
	imapAddr, imapsAddr := freePort(t), freePort(t)
	in := newInstance(t, "-o", "imap_listen="+imapAddr, "-o", "imaps_listen="+imapsAddr)
	in.extraPorts = []string{imapAddr, imapsAddr}
	in.mustCLI(imapPass+"\n", "user", "add", imapUser)
	in.start()
	for _, m := range []string{imapPlainMsg, imapMultipartMsg} {
		if err := sendOne(in.smtp, "sender@remote.example", []string{imapUser}, m); err != nil {
			t.Fatal(err)
		}
	}
	in.stop()
	if work {
		in.withAccount(imapUser, func(acc *mailbox.Account) error {
			if err := acc.CreateFolder("Work", mailbox.RoleNone); err != nil {
				return err
			}
			_, err := acc.Append(context.Background(), "Work", []byte(imapWorkMsg), []string{`\Seen`},
				time.Date(2024, 1, 3, 12, 0, 5, 0, time.UTC))
			return err
		})
	}
	stored := in.mustFolder(imapUser, "INBOX")
	if len(stored) != 2 {
		t.Fatalf("stored %d messages in INBOX", len(stored))
	}
	for i, want := range []string{"Subject: hello world\r\n", "Subject: report attached\r\n"} {
		if !bytes.Contains(stored[i].Raw, []byte(want)) {
			t.Fatalf("INBOX message %d is not the one sent:\n%s", i+1, stored[i].Raw)
		}
	}
	in.start()
	return in, stored
}

// storedMessage is a message as the store holds it.
type storedMessage struct {
	mailbox.MessageInfo
	Raw []byte
}

// withAccount opens the store (the server must be stopped) as the server
// does, MIME structure parsed at append, and runs fn on an account.
func (in *instance) withAccount(account string, fn func(*mailbox.Account) error) {
	in.t.Helper()
	st, err := mailbox.Open(in.dir, mailbox.Options{Parse: message.ParseBlob})
	if err != nil {
		in.t.Fatal(err)
	}
	defer st.Close()
	acc, err := st.Account(account)
	if err != nil {
		in.t.Fatal(err)
	}
	if err := fn(acc); err != nil {
		in.t.Fatal(err)
	}
}

// folder returns a folder's messages with their flags in UID order, or an
// error wrapping mailbox.ErrNoFolder; the server must be stopped.
func (in *instance) folder(account, folder string) ([]storedMessage, error) {
	in.t.Helper()
	var out []storedMessage
	var ferr error
	in.withAccount(account, func(acc *mailbox.Account) error {
		msgs, err := acc.Messages(folder)
		if err != nil {
			ferr = err
			return nil
		}
		for _, m := range msgs {
			raw, err := acc.Raw(folder, m.UID)
			if err != nil {
				return err
			}
			if int64(len(raw)) != m.Size {
				return fmt.Errorf("%s UID %d: %d bytes stored, size says %d", folder, m.UID, len(raw), m.Size)
			}
			out = append(out, storedMessage{m, raw})
		}
		return nil
	})
	return out, ferr
}

func (in *instance) mustFolder(account, folder string) []storedMessage {
	in.t.Helper()
	msgs, err := in.folder(account, folder)
	if err != nil {
		in.t.Fatalf("folder %s: %v", folder, err)
	}
	return msgs
}

// folderNames lists an account's folders; the server must be stopped.
func (in *instance) folderNames(account string) []string {
	in.t.Helper()
	var names []string
	in.withAccount(account, func(acc *mailbox.Account) error {
		fs, err := acc.Folders()
		for _, f := range fs {
			names = append(names, f.Name)
		}
		return err
	})
	sort.Strings(names)
	return names
}

// checkFolder compares a stored folder with the expected messages (raw
// bytes and flags, in UID order).
func checkFolder(t *testing.T, name string, got []storedMessage, want []string, flags [][]string) {
	t.Helper()
	if len(got) != len(want) {
		var subjects []string
		for _, m := range got {
			subjects = append(subjects, subjectOf(m.Raw))
		}
		t.Fatalf("%s holds %d messages %q, want %d", name, len(got), subjects, len(want))
	}
	for i := range want {
		if string(got[i].Raw) != want[i] {
			t.Errorf("%s message %d (UID %d):\n got %q\nwant %q", name, i+1, got[i].UID, got[i].Raw, want[i])
		}
		if flags != nil && !sameFlags(got[i].Flags, flags[i]) {
			t.Errorf("%s message %d (UID %d) flags %q, want %q", name, i+1, got[i].UID, got[i].Flags, flags[i])
		}
	}
}

func subjectOf(raw []byte) string {
	for l := range strings.SplitSeq(string(raw), "\n") {
		if s, ok := strings.CutPrefix(l, "Subject: "); ok {
			return strings.TrimSpace(s)
		}
		if strings.TrimSpace(l) == "" {
			break
		}
	}
	return ""
}

// sameFlags compares flag lists as sets, case-insensitively (RFC 9051 2.3.2).
func sameFlags(got, want []string) bool {
	norm := func(fs []string) []string {
		out := []string{}
		for _, f := range fs {
			out = append(out, strings.ToLower(f))
		}
		sort.Strings(out)
		return out
	}
	return slices.Equal(norm(got), norm(want))
}

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		t.Fatalf("bad address %q", addr)
	}
	return host, port
}

func lf(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// splitMessage returns a message's header (with the empty line) and body.
func splitMessage(raw []byte) (string, string) {
	i := bytes.Index(raw, []byte("\r\n\r\n"))
	if i < 0 {
		return string(raw), ""
	}
	return string(raw[:i+4]), string(raw[i+4:])
}

// ---------------------------------------------------------------------
// Python imaplib
