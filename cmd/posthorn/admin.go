package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"posthorn/mailbox"
	"posthorn/mailbox/message"
)

// Admin commands run in one place, execAdmin, whether the CLI opens the
// store itself or the running server runs them for it over the control
// socket: bbolt locks its files for the process that opens them, so while
// the server runs the CLI must go through it (DESIGN.md).

// adminRequest is what the CLI sends over the control socket. Stdin is
// bytes, which encoding/json carries as base64, so that a message given to
// sendmail arrives as it was written: a JSON string would replace each
// octet that is not UTF-8 (8-bit mail in Latin-1, say) with U+FFFD.
type adminRequest struct {
	Args  []string `json:"args"`
	Stdin []byte   `json:"stdin,omitempty"`
}

// adminResponse is the server's answer; Stdout is bytes for the same
// reason (`queue show` prints a message as it is queued).
type adminResponse struct {
	Stdout []byte `json:"stdout"`
	Stderr string `json:"stderr"`
	Code   int    `json:"code"`
}

const (
	controlSocketName = "control.sock"
	// maxControlResponse bounds what the CLI reads from its own server, as
	// a guard against a runaway rather than a policy: `queue list` grows
	// with the queue and `queue show` prints a whole message.
	maxControlResponse = 4 << 30
	maxPasswordLength  = 1024
)

// maxControlRequest bounds a request the server reads: the largest is a
// message for sendmail of up to message_size_limit octets, base64-encoded.
func maxControlRequest(cfg *Config) int64 {
	return (cfg.MessageSizeLimit+2)/3*4 + 1<<20
}

// errNoServer: no server answers on the control socket.
var errNoServer = errors.New("no server running")

// adminCommand runs a user or alias command.
func adminCommand(cfg *Config, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	req := adminRequest{Args: args}
	if args[0] == "sendmail" {
		msg, err := readStdin(stdin, cfg.MessageSizeLimit)
		if err != nil {
			fmt.Fprintln(stderr, "posthorn sendmail:", err)
			return 1
		}
		req.Stdin = []byte(msg)
		req.Args = sendmailDefaultSender(cfg, args)
	} else if needsPassword(args) {
		pw, err := readPassword(stdin)
		if err != nil {
			fmt.Fprintln(stderr, "posthorn:", err)
			return 1
		}
		req.Stdin = []byte(pw)
	}
	resp, err := callControl(filepath.Join(cfg.DataDir, controlSocketName), req)
	if err == nil {
		stdout.Write(resp.Stdout)
		io.WriteString(stderr, resp.Stderr)
		return resp.Code
	}
	if !errors.Is(err, errNoServer) {
		fmt.Fprintln(stderr, "posthorn:", err)
		return 1
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		fmt.Fprintln(stderr, "posthorn:", err)
		return 1
	}
	a, err := openApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(stderr, "posthorn:", err)
		return 1
	}
	defer a.Close()
	return execAdmin(a, req, stdout, stderr)
}

func needsPassword(args []string) bool {
	return len(args) >= 2 && args[0] == "user" && (args[1] == "add" || args[1] == "passwd")
}

// readStdin reads standard input up to limit octets (for sendmail).
func readStdin(r io.Reader, limit int64) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return "", err
	}
	if int64(len(b)) > limit {
		return "", fmt.Errorf("message larger than message_size_limit (%d octets)", limit)
	}
	return string(b), nil
}

// readPassword reads the first line of stdin.
func readPassword(r io.Reader) (string, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxPasswordLength+2), 64)
	line, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case len(line) > maxPasswordLength:
		return "", fmt.Errorf("password longer than %d octets", maxPasswordLength)
	case line == "":
		return "", errors.New("empty password: give it on standard input")
	}
	return line, nil
}

// openStore opens the mail store of cfg.
func openStore(cfg *Config, logger *slog.Logger) (*mailbox.Store, error) {
	st, err := mailbox.Open(cfg.DataDir, mailbox.Options{
		Logger:             logger,
		RecipientDelimiter: cfg.RecipientDelimiter,
		// The MIME structure, envelope and section offsets are computed once
		// at delivery and stored, for IMAP's FETCH and SEARCH.
		Parse: message.ParseBlob,
	})
	if err != nil {
		if errors.Is(err, mailbox.ErrLocked) {
			return nil, errServerRunning
		}
		return nil, err
	}
	return st, nil
}

// execAdmin runs one admin command against the open store and spool.
func execAdmin(a *app, req adminRequest, stdout, stderr io.Writer) int {
	if err := adminDo(a, req, stdout); err != nil {
		fmt.Fprintln(stderr, "posthorn:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

func adminDo(a *app, req adminRequest, stdout io.Writer) error {
	cfg, st := a.cfg, a.store
	args := req.Args
	if len(args) >= 1 && args[0] == "sendmail" {
		return sendmail(a, args[1:], string(req.Stdin), stdout)
	}
	if len(args) >= 1 && args[0] == "check" {
		return checkCommand(a, args[1:], stdout)
	}
	if len(args) >= 1 && args[0] == "queue" {
		return queueCommand(a, args[1:], stdout)
	}
	if len(args) < 2 {
		return usageError(usage)
	}
	verb := args[0] + " " + args[1]
	args = args[2:]
	want := func(n int, form string) error {
		if len(args) != n {
			return usageError("usage: posthorn " + verb + form)
		}
		return nil
	}
	switch verb {
	case "user add":
		if err := want(1, " ADDRESS (password on stdin)"); err != nil {
			return err
		}
		if err := checkLocalDomain(cfg, args[0]); err != nil {
			return err
		}
		if err := st.AddUser(args[0], string(req.Stdin)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added %s\n", args[0])
	case "user passwd":
		if err := want(1, " ADDRESS (password on stdin)"); err != nil {
			return err
		}
		if err := st.SetPassword(args[0], string(req.Stdin)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password changed for %s\n", args[0])
	case "user del":
		if err := want(1, " ADDRESS"); err != nil {
			return err
		}
		if err := st.DeleteUser(args[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted %s\n", args[0])
	case "user list":
		if err := want(0, ""); err != nil {
			return err
		}
		users, err := st.Users()
		if err != nil {
			return err
		}
		for _, u := range users {
			fmt.Fprintln(stdout, u)
		}
	case "alias add":
		if err := want(2, " ALIAS TARGET[,TARGET...]"); err != nil {
			return err
		}
		if err := checkLocalDomain(cfg, args[0]); err != nil {
			return err
		}
		if err := st.AddAlias(args[0], splitList(args[1])); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "alias %s -> %s\n", args[0], strings.Join(splitList(args[1]), ", "))
	case "alias del":
		if err := want(1, " ALIAS"); err != nil {
			return err
		}
		if err := st.DeleteAlias(args[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted alias %s\n", args[0])
	case "alias list":
		if err := want(0, ""); err != nil {
			return err
		}
		aliases, err := st.Aliases()
		if err != nil {
			return err
		}
		for _, a := range aliases {
			fmt.Fprintf(stdout, "%s -> %s\n", a.Address, strings.Join(a.Targets, ", "))
		}
	default:
		return usageError(fmt.Sprintf("unknown command %q\n%s", verb, usage))
	}
	return nil
}

// checkLocalDomain refuses accounts and aliases outside the local domains:
// mail for them would never reach this server.
func checkLocalDomain(cfg *Config, addr string) error {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return fmt.Errorf("%q is not an address (local@domain, or @domain for a catch-all alias)", addr)
	}
	domain := strings.ToLower(addr[i+1:])
	if !slices.Contains(cfg.Domains, domain) {
		return fmt.Errorf("%s is not one of the local domains (domains = %s)", domain, strings.Join(cfg.Domains, ", "))
	}
	return nil
}

// callControl sends one request to the running server.
func callControl(path string, req adminRequest) (adminResponse, error) {
	var resp adminResponse
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return resp, errNoServer
		}
		return resp, fmt.Errorf("control socket: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Minute))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return resp, fmt.Errorf("control socket: %w", err)
	}
	if err := json.NewDecoder(io.LimitReader(conn, maxControlResponse)).Decode(&resp); err != nil {
		return resp, fmt.Errorf("control socket: %w", err)
	}
	return resp, nil
}

// serveControl answers admin requests on the control socket until ctx ends.
// The socket is owner-only (0600 in a 0700 data_dir): whoever can use it
// can add accounts.
func serveControl(ctx context.Context, a *app) error {
	path := filepath.Join(a.cfg.DataDir, controlSocketName)
	logger := a.log
	if _, err := callControl(path, adminRequest{Args: []string{"user", "list"}}); err == nil {
		return fmt.Errorf("another server is already running on %s", path)
	}
	os.Remove(path) // a stale socket left by a killed server
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	context.AfterFunc(ctx, func() { ln.Close() })
	defer os.Remove(path)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("control socket: %w", err)
		}
		go func() {
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Minute))
			var req adminRequest
			if err := json.NewDecoder(io.LimitReader(conn, maxControlRequest(a.cfg))).Decode(&req); err != nil {
				return
			}
			var out bytes.Buffer
			var errOut strings.Builder
			code := execAdmin(a, req, &out, &errOut)
			if len(req.Args) >= 1 && !readOnlyCommand(req.Args) {
				logger.Info("admin command", "args", req.Args, "code", code)
			}
			json.NewEncoder(conn).Encode(adminResponse{Stdout: out.Bytes(), Stderr: errOut.String(), Code: code})
		}()
	}
}

// readOnlyCommand: commands not worth a log line.
func readOnlyCommand(args []string) bool {
	if len(args) < 2 {
		return false
	}
	switch args[0] + " " + args[1] {
	case "user list", "alias list", "queue list", "queue show":
		return true
	}
	return false
}
