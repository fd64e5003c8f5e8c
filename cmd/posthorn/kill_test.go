package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/smtp"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// sendOne delivers one message with net/smtp and reports whether the server
// answered 250 to the end of DATA.
func sendOne(addr, from string, to []string, body string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("loadgen.example"); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	if err := w.Close(); err != nil { // reads the reply to the final dot
		return err
	}
	c.Quit()
	return nil
}

var tokenRE = regexp.MustCompile(`X-Token: (k9-\d+-\d+-\d+)`)

// TestKill9 delivers from many concurrent clients while the server is killed
// with SIGKILL at random moments and restarted. Every message that got its
// 250 must be in both recipients' INBOX after the last restart; none twice
// (the load generator never retries, so a duplicate would be our bug).
func TestKill9(t *testing.T) {
	rounds := 6
	if s := os.Getenv("POSTHORN_KILL_ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	const clients = 20
	in := newInstance(t)
	in.mustCLI("pw1\n", "user", "add", "one@example.org")
	in.mustCLI("pw2\n", "user", "add", "two@example.org")

	var mu sync.Mutex
	acked := map[string]bool{}
	attempted := 0
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	var state map[string]folderState

	for round := range rounds {
		in.start()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for g := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					token := fmt.Sprintf("k9-%d-%d-%d", round, g, i)
					body := "Subject: kill test\r\nX-Token: " + token + "\r\n\r\n" + string(make4k(token)) + "\r\n"
					mu.Lock()
					attempted++
					mu.Unlock()
					if err := sendOne(in.smtp, "load@remote.example", []string{"one@example.org", "two@example.org"}, body); err != nil {
						return // killed
					}
					mu.Lock()
					acked[token] = true
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(150+rng.IntN(600)) * time.Millisecond)
		in.kill()
		cancel()
		wg.Wait()
		// After each crash: the files pass fsck, UIDNEXT and MODSEQ
		// did not go back.
		next := in.checkStore()
		if state != nil {
			checkMonotonic(t, state, next)
		}
		state = next
	}
	// A last clean start and stop: the store must open after the kills.
	in.start()
	in.stop()

	for _, account := range []string{"one@example.org", "two@example.org"} {
		seen := map[string]int{}
		for _, raw := range in.inbox(account, "INBOX") {
			m := tokenRE.FindSubmatch(raw)
			if m == nil {
				t.Fatalf("%s: stored message without token:\n%q", account, raw)
			}
			seen[string(m[1])]++
		}
		missing := 0
		for tok := range acked {
			if seen[tok] == 0 {
				missing++
				t.Errorf("%s: message %s got 250 but is missing", account, tok)
			}
		}
		for tok, n := range seen {
			if n > 1 {
				t.Errorf("%s: message %s stored %d times", account, tok, n)
			}
		}
		t.Logf("%s: %d rounds, %d attempted, %d acknowledged, %d stored, %d missing", account, rounds, attempted, len(acked), len(seen), missing)
	}
	if len(acked) < rounds*clients {
		t.Fatalf("only %d messages acknowledged in %d rounds: the load did not run", len(acked), rounds)
	}
}

// make4k returns a 4 KiB body of text lines.
func make4k(seed string) []byte {
	line := []byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-" + seed)
	var b []byte
	for len(b) < 4096 {
		b = append(b, line...)
		b = append(b, '\r', '\n')
	}
	return b
}
