package main

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"posthorn/cmd/posthorn/internal/imapcheck"
)

// TestIMAPCheck runs the IMAP concurrency checker (internal/imapcheck)
// against the real binary: many sessions of one account running random
// commands on shared folders, every response checked against what the
// sessions together did. The default is short, for `make test`; the long
// run is
//
//	POSTHORN_IMAPCHECK_CLIENTS=50 POSTHORN_IMAPCHECK_TIME=5m \
//	    go test -run TestIMAPCheck -timeout 20m ./cmd/posthorn -v
//
// (POSTHORN_IMAPCHECK_CHECKPOINT sets the checkpoint interval,
// POSTHORN_IMAPCHECK_SEED the random seed, POSTHORN_IMAPCHECK_TRACE a file
// to write every command and response to.) Any contradiction fails, as
// does any NO other than NO [EXPUNGEISSUED] (which RFC 9051 7.1 allows for
// a message expunged by another session; Posthorn answers OK
// [EXPUNGEISSUED] instead) and any BAD: the checker only sends commands
// the server must carry out.
func TestIMAPCheck(t *testing.T) {
	clients := imapcheckEnvInt(t, "POSTHORN_IMAPCHECK_CLIENTS", 10)
	duration := imapcheckEnvDuration(t, "POSTHORN_IMAPCHECK_TIME", 12*time.Second)
	every := imapcheckEnvDuration(t, "POSTHORN_IMAPCHECK_CHECKPOINT", max(duration/3, 4*time.Second))
	seed := uint64(imapcheckEnvInt(t, "POSTHORN_IMAPCHECK_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("imapcheck: %d clients, %v, checkpoint every %v, seed %d", clients, duration, every, seed)

	const imapcheckAccount, imapcheckPassword = "check@example.org", "check-secret"
	imapAddr := freePort(t)
	in := newInstance(t, "-o", "imap_listen="+imapAddr,
		"-o", "max_connections_per_account="+strconv.Itoa(clients+5),
		"-o", "max_connections_per_ip="+strconv.Itoa(clients+10),
		"-o", "log_level=info")
	in.extraPorts = []string{imapAddr}
	in.mustCLI(imapcheckPassword+"\n", "user", "add", imapcheckAccount)
	in.start()

	ctx, cancel := context.WithTimeout(context.Background(), duration+5*time.Minute)
	defer cancel()
	cfg := imapcheck.Config{
		Addr: imapAddr, User: imapcheckAccount, Password: imapcheckPassword,
		Clients: clients, Duration: duration, CheckpointEvery: every, Seed: seed,
	}
	if name := os.Getenv("POSTHORN_IMAPCHECK_TRACE"); name != "" {
		f, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cfg.Trace = f
	}
	rep, err := imapcheck.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("imapcheck: %v\n%s", err, in.logs())
	}
	t.Logf("imapcheck report:\n%s", rep)
	if rep.ContradictionCount > 0 || rep.UnexpectedCount > 0 {
		t.Errorf("%d contradictions, %d unexpected NO (seed %d)", rep.ContradictionCount, rep.UnexpectedCount, seed)
	}
	// The run must have done the work it claims to check.
	for _, k := range imapcheck.OpKinds() {
		if rep.Ops[k] == 0 {
			t.Errorf("operation %s never ran", k)
		}
	}
	if rep.Appended == 0 || rep.Bodies == 0 || rep.Checkpoints < 2 {
		t.Errorf("appended %d, bodies checked %d, checkpoints %d: too little to check", rep.Appended, rep.Bodies, rep.Checkpoints)
	}
	if rep.Commands < int64(clients)*20 {
		t.Errorf("only %d commands", rep.Commands)
	}
	in.stop()
}

func imapcheckEnvInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

func imapcheckEnvDuration(t *testing.T, name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration", name, s)
	}
	return d
}
