package main

import (
	"errors"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDiskFull runs the server with data_dir on a small tmpfs (ROBUSTNESS.md:
// "disk full at end of DATA: 451 4.3.0; nothing half-written; works again
// when space returns" and "free space below ~1.5x max message size: 452
// 4.3.1 at MAIL"). Deliveries go on until the disk refuses them; every
// message that got a 250 must be in the INBOX, the refusals must be 452 at
// MAIL or 451 after DATA, and after the space is freed mail flows again.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" && os.Geteuid() == 0 {
			t.Fatalf("mount tmpfs: %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	data := filepath.Join(dir, "data")
	in := newInstance(t, "-o", "data_dir="+data, "-o", "message_size_limit=64K")
	in.dir = data
	in.mustCLI("pw\n", "user", "add", "demo@example.org")
	in.start()

	// Leave about 600 KiB free.
	var fs syscall.Statfs_t
	syscall.Statfs(dir, &fs)
	free := int64(fs.Bavail) * int64(fs.Bsize)
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, make([]byte, free-600<<10), 0o600); err != nil {
		t.Fatal(err)
	}

	body := "Subject: fill\r\n\r\n" + strings.Repeat(strings.Repeat("x", 76)+"\r\n", 500) // ~39 KiB
	// Bursts of concurrent deliveries: each passes the free-space check at
	// MAIL while there is room for one, so some reach the end of DATA when
	// the disk cannot take them all (451); later ones are stopped at MAIL.
	var mu sync.Mutex
	acked, refusedAtMail, refusedAtData := 0, 0, 0
	for round := 0; round < 20 && refusedAtMail == 0; round++ {
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				err := sendOne(in.smtp, "a@remote.example", []string{"demo@example.org"}, body)
				var tpe *textproto.Error
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					acked++
				case errors.As(err, &tpe) && tpe.Code == 452 && strings.HasPrefix(tpe.Msg, "4.3.1"):
					refusedAtMail++
				case errors.As(err, &tpe) && tpe.Code == 451 && strings.HasPrefix(tpe.Msg, "4.3.0"):
					refusedAtData++
				default:
					t.Errorf("unexpected result: %v", err)
				}
			})
		}
		wg.Wait()
	}
	if acked == 0 || refusedAtMail == 0 {
		t.Fatalf("acked %d, refused at MAIL %d, after DATA %d: the disk never filled or never took mail\n%s", acked, refusedAtMail, refusedAtData, in.logs())
	}
	t.Logf("disk full: %d acknowledged, %d refused at MAIL (452 4.3.1), %d after DATA (451 4.3.0)", acked, refusedAtMail, refusedAtData)

	// Space returns: mail flows again, without a restart.
	os.Remove(junk)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := sendOne(in.smtp, "a@remote.example", []string{"demo@example.org"}, body)
		if err == nil {
			acked++
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery after the space came back: %v\n%s", err, in.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	in.stop()
	in.checkStore()
	if n := len(in.inbox("demo@example.org", "INBOX")); n != acked {
		t.Fatalf("INBOX has %d messages, %d were acknowledged", n, acked)
	}
}
