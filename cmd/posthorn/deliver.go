package main

import (
	"context"
	"errors"
	"slices"
	"syscall"

	"posthorn/mailbox"
	"posthorn/mailbox/failpoint"
	"posthorn/protocol/smtp"
	smtpserver "posthorn/protocol/smtp/server"
)

// smtpBackend answers the SMTP server's questions. On the MX service (port
// 25) it accepts mail for the local domains only: no relaying for anyone,
// the one thing a mail server must never do. On submission (587, 465) the
// client has authenticated; it may send from its own addresses to anyone.
type smtpBackend struct {
	app *app
}

// minFreeFactor: MAIL is refused while the data_dir's free space is below
// this multiple of the message size limit, so that a message accepted at
// MAIL can still be written when its DATA arrives (ROBUSTNESS.md).
const minFreeFactor = 1.5

func (b *smtpBackend) Mail(ctx context.Context, s *smtpserver.SessionInfo, from smtp.Path, p smtp.MailParams) error {
	a := b.app
	if err := errors.Join(a.store.Err(), a.spool.Err()); err != nil {
		// ROBUSTNESS.md: after an fsync error nothing more is accepted
		// (Linux may have dropped the dirty pages); a restart is needed.
		return smtp.R(smtp.CodeLocalError, smtp.EnhSystemOther, "Mail store unavailable, try again later")
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(a.cfg.DataDir, &fs); err == nil {
		free := float64(fs.Bavail) * float64(fs.Bsize)
		if free < minFreeFactor*float64(a.cfg.MessageSizeLimit) {
			a.log.Warn("refusing mail: data_dir nearly full", "data_dir", a.cfg.DataDir, "free_bytes", int64(free))
			// RFC 3463 X.3.1: mail system full; 452 (RFC 5321 4.2.2).
			return smtp.R(smtp.CodeInsufficient, smtp.EnhSystemFull, "Insufficient system storage, try again later")
		}
	}
	if s.Account != "" {
		return b.checkSender(s.Account, from)
	}
	return nil
}

// checkSender: an authenticated client may only use its own addresses: the
// account's address, its plus-addresses, and aliases that lead to it.
// RFC 6409 6.1 lets the MSA enforce this; 553 5.7.1 as Postfix's
// reject_sender_login_mismatch.
func (b *smtpBackend) checkSender(account string, from smtp.Path) error {
	refuse := smtp.R(smtp.CodeBadMailboxName, smtp.EnhDeliveryNotAuth, "Sender address not owned by "+account)
	if from.Null || !b.app.isLocalDomain(from.Domain) {
		return refuse
	}
	res, err := b.app.store.Resolve(from.String())
	if err != nil || !slices.Contains(res.Accounts, account) {
		return refuse
	}
	return nil
}

func (b *smtpBackend) Rcpt(ctx context.Context, s *smtpserver.SessionInfo, from smtp.Path, to smtp.Path) error {
	a := b.app
	if !to.Postmaster && !a.isLocalDomain(to.Domain) {
		if s.Account != "" {
			return nil // authenticated submission relays (RFC 6409 3.1)
		}
		// RFC 5321 3.6.2 and 7.1: no relaying for unauthenticated clients.
		return smtp.R(smtp.CodeFailed, smtp.EnhDeliveryNotAuth, "Relay access denied")
	}
	res, err := a.resolveLocal(to)
	switch {
	case errors.Is(err, mailbox.ErrNoSuchUser), errors.Is(err, mailbox.ErrBadAddress):
		return smtp.R(smtp.CodeMailboxUnavail, smtp.EnhBadDestMailbox, "No such user here")
	case errors.Is(err, mailbox.ErrAliasLoop):
		return smtp.R(smtp.CodeMailboxUnavail, smtp.EnhLoop, "Alias expansion loop")
	case err != nil:
		return err
	}
	if len(res.Accounts) == 0 && len(res.Remote) == 0 {
		return smtp.R(smtp.CodeMailboxUnavail, smtp.EnhBadDestMailbox, "No such user here")
	}
	return nil
}

// Deliver makes the message durable for every recipient before the 250
// (RFC 5321 6.1): local copies fsync'd in the mailboxes, remote recipients
// fsync'd in the spool.
func (b *smtpBackend) Deliver(ctx context.Context, env *smtpserver.Envelope, msg []byte) error {
	if err := b.app.route(ctx, env, msg, env.Session.Account != ""); err != nil {
		return err
	}
	return failpoint.Inject(failpoint.SMTPDurable)
}
