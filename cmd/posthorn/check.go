package main

import (
	"fmt"
	"io"
)

// checkCommand is `posthorn check`: fsck for the store and the spool. It
// prints each folder's counters, the lines a test compares before and
// after a crash (UIDNEXT and HIGHESTMODSEQ must not go back, UIDVALIDITY
// must not change), then every inconsistency found, and fails if there is
// any. It runs in read transactions, so it is safe while the server runs;
// bbolt's page check needs the files quiet, so it runs only when the
// command opened them itself (no server running).
func checkCommand(a *app, args []string, stdout io.Writer) error {
	if len(args) != 0 {
		return usageError("usage: posthorn check")
	}
	pages := !a.serving
	if !pages {
		fmt.Fprintln(stdout, "pages not checked: the server is running (stop it for a full check)")
	}
	accounts, err := a.store.Check(pages)
	if err != nil {
		return err
	}
	var problems []string
	for _, c := range accounts {
		fmt.Fprintf(stdout, "account %s modseq=%d\n", c.Account, c.ModSeq)
		for _, f := range c.Folders {
			fmt.Fprintf(stdout, "folder %s %q uidvalidity=%d uidnext=%d highestmodseq=%d messages=%d\n",
				c.Account, f.Name, f.UIDValidity, f.UIDNext, f.HighestModSeq, f.Messages)
		}
		for _, p := range c.Problems {
			problems = append(problems, c.Account+": "+p)
		}
	}
	sp, err := a.spool.Check(pages)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "spool messages=%d queued=%d\n", sp.Messages, sp.Queued)
	for _, p := range sp.Problems {
		problems = append(problems, "spool: "+p)
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, "problem", p)
	}
	if len(problems) > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("check: %d problems", len(problems))}
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
