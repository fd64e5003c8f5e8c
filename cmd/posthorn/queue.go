package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"posthorn/spool"
)

// queueCommand runs `posthorn queue list|show|flush|delete`.
func queueCommand(a *app, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError("usage: posthorn queue list|show ID|flush|delete ID")
	}
	want := func(n int, form string) error {
		if len(args) != n {
			return usageError("usage: posthorn queue " + args[0] + form)
		}
		return nil
	}
	switch args[0] {
	case "list":
		if err := want(1, ""); err != nil {
			return err
		}
		entries, err := a.spool.List()
		if err != nil {
			return err
		}
		printQueue(stdout, entries, time.Now())
	case "show":
		if err := want(2, " ID"); err != nil {
			return err
		}
		e, raw, err := a.spool.Show(args[1])
		if errors.Is(err, spool.ErrNotFound) {
			return fmt.Errorf("no message %s in the queue", args[1])
		} else if err != nil {
			return err
		}
		printQueue(stdout, []spool.Entry{e}, time.Now())
		fmt.Fprintf(stdout, "\n--- message (%d octets) ---\n", len(raw))
		stdout.Write(raw)
	case "flush":
		if err := want(1, ""); err != nil {
			return err
		}
		a.spool.Flush()
		fmt.Fprintln(stdout, "every deferred recipient is due now")
	case "delete":
		if err := want(2, " ID"); err != nil {
			return err
		}
		if err := a.spool.Delete(args[1]); errors.Is(err, spool.ErrNotFound) {
			return fmt.Errorf("no message %s in the queue", args[1])
		} else if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted %s\n", args[1])
	default:
		return usageError("usage: posthorn queue list|show ID|flush|delete ID")
	}
	return nil
}

// printQueue prints entries as Postfix's mailq does: one block per message
// with its ID, age, size and sender, then each recipient with its state,
// attempts, next attempt and the last reply.
func printQueue(w io.Writer, entries []spool.Entry, now time.Time) {
	if len(entries) == 0 {
		fmt.Fprintln(w, "Mail queue is empty")
		return
	}
	fmt.Fprintf(w, "%-14s %8s %8s  %s\n", "-Queue ID-", "--Age--", "--Size--", "-Sender/Recipient-")
	rcpts, size := 0, 0
	for _, e := range entries {
		from := e.From.String()
		if e.From.Null {
			from = "<>"
		}
		fmt.Fprintf(w, "%-14s %8s %8d  %s\n", e.ID, shortDuration(now.Sub(e.Arrival)), e.Size, from)
		for _, r := range e.Rcpts {
			rcpts++
			line := fmt.Sprintf("%33s  %s  %s", "", r.Path.String(), r.Status)
			if r.Attempts > 0 {
				line += fmt.Sprintf(", %d attempts", r.Attempts)
			}
			if r.Status == spool.StatusQueued && !r.NextAttempt.IsZero() {
				line += ", next " + r.NextAttempt.Local().Format("Jan _2 15:04:05")
				if d := r.NextAttempt.Sub(now); d > 0 {
					line += " (in " + shortDuration(d) + ")"
				}
			}
			fmt.Fprintln(w, line)
			if r.LastReply != "" {
				relay := ""
				if r.Relay != "" {
					relay = " from " + r.Relay
				}
				fmt.Fprintf(w, "%35s(%s%s)\n", "", r.LastReply, relay)
			}
		}
		size += e.Size
	}
	fmt.Fprintf(w, "-- %d KiB in %d messages, %d recipients.\n", (size+1023)/1024, len(entries), rcpts)
}

// shortDuration renders 3d4h, 2h5m, 4m10s, 12s.
func shortDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%ds", d/time.Minute, d%time.Minute/time.Second)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}
