// Command posthorn is a complete mail system in one binary: SMTP receiving and
// submission, local delivery, the outbound queue, POP3 and IMAP, over an
// embedded bbolt store.
//
//	posthorn [-config FILE] [-o key=value]... COMMAND
//
// Commands: serve, user add|passwd|del|list, alias add|del|list,
// queue list|show|flush|delete, sendmail, check, version.
// See docs/operations.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// version is set by the Makefile through -ldflags.
var version = "dev"

const usage = `usage: posthorn [-config FILE] [-o key=value]... COMMAND

commands:
  serve                             run every listener until SIGINT/SIGTERM
  user add ADDRESS                  add an account (password on stdin)
  user passwd ADDRESS               set a password (on stdin)
  user del ADDRESS                  delete an account and its mail
  user list                         list accounts
  alias add ALIAS TARGET[,TARGET]   add or replace an alias ("@domain" is a catch-all)
  alias del ALIAS                   delete an alias
  alias list                        list aliases
  queue list                        the outbound queue, as Postfix's mailq
  queue show ID                     one queued message with its recipients
  queue flush                       retry every deferred recipient now
  queue delete ID                   remove a message from the queue
  check                             verify the store and the queue (fsck)
  sendmail [-f FROM] [-t] [-i] [RCPT...]
                                    submit a message from standard input
  version                           print the version
`

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: testable, and the exit code returned.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("posthorn", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	configPath := fs.String("config", "", "config file (default ./posthorn.conf if present)")
	var overrides stringList
	fs.Var(&overrides, "o", "override a config key: -o key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	args = fs.Args()
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if args[0] == "version" {
		fmt.Fprintln(stdout, "posthorn", version)
		return 0
	}
	cfg, err := loadConfig(*configPath, overrides)
	if err != nil {
		fmt.Fprintln(stderr, "posthorn:", err)
		return 2
	}
	switch args[0] {
	case "serve":
		if len(args) != 1 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		logger := newLogger(cfg, stderr)
		if err := serve(cfg, logger); err != nil {
			logger.Error("posthorn stopped", "err", err)
			return 1
		}
		return 0
	case "user", "alias", "queue", "sendmail", "check":
		return adminCommand(cfg, args, stdin, stdout, stderr)
	}
	fmt.Fprintf(stderr, "posthorn: unknown command %q\n", args[0])
	fmt.Fprint(stderr, usage)
	return 2
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// exitError carries an exit code and a message for the admin commands.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageError(msg string) error { return &exitError{code: 2, msg: msg} }

var errServerRunning = errors.New("the server is running but its control socket does not answer")
