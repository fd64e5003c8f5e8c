package main

import (
	"context"
	"errors"

	"posthorn/mailbox"
	"posthorn/mailbox/failpoint"
	pop3server "posthorn/protocol/pop3/server"
)

// pop3Backend serves each account's INBOX as its POP3 maildrop.
type pop3Backend struct{ store *mailbox.Store }

func (b pop3Backend) Open(ctx context.Context, account string) (pop3server.Maildrop, error) {
	acct, err := b.store.Account(account)
	if err != nil {
		return nil, err
	}
	// The messages and the UIDVALIDITY of one transaction: unique-ids
	// are both (RFC 1939 7).
	var msgs []pop3server.Message
	inbox, err := acct.Scan(mailbox.InboxName, 1, func(m mailbox.MessageInfo) error {
		// Stored messages have CRLF line ends (the strict DATA reader,
		// sendmail's canonicalMessage), so the stored size is the size as
		// sent (RFC 1939 11).
		msgs = append(msgs, pop3server.Message{UID: m.UID, Size: m.Size})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &pop3Maildrop{acct: acct, validity: inbox.UIDValidity, msgs: msgs}, nil
}

// pop3Maildrop is one session's view of an INBOX: the messages present at
// login (RFC 1939 5: numbers and sizes fixed for the session).
type pop3Maildrop struct {
	acct     *mailbox.Account
	validity uint32
	msgs     []pop3server.Message
}

func (m *pop3Maildrop) UIDValidity() uint32            { return m.validity }
func (m *pop3Maildrop) Messages() []pop3server.Message { return m.msgs }
func (m *pop3Maildrop) Close() error                   { return nil }

func (m *pop3Maildrop) Read(ctx context.Context, uid uint32) ([]byte, error) {
	raw, err := m.acct.Raw(mailbox.InboxName, uid)
	if errors.Is(err, mailbox.ErrNotFound) {
		return nil, pop3server.ErrNoMessage // expunged by IMAP meanwhile
	}
	return raw, err
}

// Delete expunges durably (one group commit) before QUIT's +OK; the store
// publishes each expunge on the account's change feed, so IMAP sessions
// see them.
func (m *pop3Maildrop) Delete(ctx context.Context, uids []uint32) error {
	if _, err := m.acct.Expunge(ctx, mailbox.InboxName, uids); err != nil {
		return err
	}
	return failpoint.Inject(failpoint.POP3Durable)
}
