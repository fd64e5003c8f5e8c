package main

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"syscall"

	"posthorn/mailbox"
	"posthorn/protocol/smtp"
	smtpserver "posthorn/protocol/smtp/server"
)

// localBackend is the SMTP server's Backend for port 25: it accepts mail for
// the local domains only and delivers it to mailboxes. No relaying: a
// recipient in any other domain is refused (an open relay is the one thing
// a mail server must never be).
type localBackend struct {
	cfg   *Config
	store *mailbox.Store
	log   *slog.Logger
}

// minFreeFactor: MAIL is refused while the data_dir's free space is below
// this multiple of the message size limit, so that a message accepted at
// MAIL can still be written when its DATA arrives (ROBUSTNESS.md).
const minFreeFactor = 1.5

func (b *localBackend) Mail(ctx context.Context, s *smtpserver.SessionInfo, from smtp.Path, p smtp.MailParams) error {
	if err := b.store.Err(); err != nil {
		// ROBUSTNESS.md: after an fsync error nothing more is accepted
		// (Linux may have dropped the dirty pages); a restart is needed.
		return smtp.R(smtp.CodeLocalError, smtp.EnhSystemOther, "Mail store unavailable, try again later")
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(b.cfg.DataDir, &fs); err == nil {
		free := float64(fs.Bavail) * float64(fs.Bsize)
		if free < minFreeFactor*float64(b.cfg.MessageSizeLimit) {
			b.log.Warn("refusing mail: data_dir nearly full", "data_dir", b.cfg.DataDir, "free_bytes", int64(free))
			// RFC 5321 4.5.3.1.10 / RFC 3463: 452 4.3.1 mail system full.
			return smtp.R(smtp.CodeInsufficient, smtp.EnhSystemFull, "Insufficient system storage, try again later")
		}
	}
	return nil
}

func (b *localBackend) Rcpt(ctx context.Context, s *smtpserver.SessionInfo, from smtp.Path, to smtp.Path) error {
	_, err := b.resolve(to)
	return err
}

// resolve maps a recipient to local accounts, or to the reply refusing it.
func (b *localBackend) resolve(to smtp.Path) ([]string, error) {
	addr := to.String()
	if to.Postmaster {
		// RFC 5321 4.5.1: <Postmaster> without a domain must be accepted; it
		// means the postmaster of this host's primary domain.
		addr = "postmaster@" + b.cfg.Domains[0]
	} else if !b.isLocalDomain(to.Domain) {
		// RFC 5321 3.6.2 and 7.1: no relaying for unauthenticated clients.
		return nil, smtp.R(smtp.CodeFailed, smtp.EnhDeliveryNotAuth, "Relay access denied")
	}
	res, err := b.store.Resolve(addr)
	switch {
	case errors.Is(err, mailbox.ErrNoSuchUser), errors.Is(err, mailbox.ErrBadAddress):
		return nil, smtp.R(smtp.CodeMailboxUnavail, smtp.EnhBadDestMailbox, "No such user here")
	case errors.Is(err, mailbox.ErrAliasLoop):
		return nil, smtp.R(smtp.CodeMailboxUnavail, smtp.EnhLoop, "Alias expansion loop")
	case err != nil:
		return nil, err
	}
	if len(res.Accounts) == 0 {
		// Forwarding to remote addresses needs the outbound queue.
		return nil, smtp.R(smtp.CodeMailboxUnavail, smtp.EnhBadDestMailbox, "No such user here")
	}
	return res.Accounts, nil
}

func (b *localBackend) isLocalDomain(d string) bool {
	return slices.Contains(b.cfg.Domains, strings.ToLower(d))
}

// Deliver writes the message to every recipient's INBOX, durably, before
// returning (RFC 5321 6.1). The Return-Path is added here, at final
// delivery (RFC 5321 4.4).
func (b *localBackend) Deliver(ctx context.Context, env *smtpserver.Envelope, msg []byte) error {
	var accounts []string
	for _, r := range env.Rcpts {
		accs, err := b.resolve(r.Path)
		if err != nil {
			// The account went away between RCPT and the end of DATA.
			return smtp.R(smtp.CodeLocalError, smtp.EnhBadDestMailbox, "Recipient "+r.Path.String()+" no longer available, try again later")
		}
		accounts = append(accounts, accs...)
	}
	slices.Sort(accounts)
	accounts = slices.Compact(accounts)

	rp := "Return-Path: <" + env.From.String() + ">\r\n"
	full := make([]byte, 0, len(rp)+len(msg))
	full = append(full, rp...)
	full = append(full, msg...)
	if err := b.store.Deliver(ctx, accounts, full, env.Received); err != nil {
		b.log.Error("local delivery failed", "queue_id", env.ID, "accounts", accounts, "err", err)
		// ROBUSTNESS.md: disk full or an fsync error at the end of DATA is
		// 451 4.3.0; the client keeps the message and retries.
		return smtp.R(smtp.CodeLocalError, smtp.EnhSystemOther, "Local error in processing, try again later")
	}
	b.log.Info("delivered", "queue_id", env.ID, "accounts", accounts, "size", len(full))
	return nil
}
