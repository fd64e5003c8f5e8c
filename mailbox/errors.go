package mailbox

import "errors"

// Sentinel errors. Every error the package returns wraps one of these (or a
// context error) so that callers can map them to protocol replies with
// errors.Is; the wrapping text adds context for logs only.
var (
	ErrExists       = errors.New("mailbox: already exists")
	ErrNotFound     = errors.New("mailbox: not found")
	ErrNoSuchUser   = errors.New("mailbox: no such user")
	ErrAuthFailed   = errors.New("mailbox: authentication failed")
	ErrBadAddress   = errors.New("mailbox: invalid address")
	ErrAliasLoop    = errors.New("mailbox: alias expansion too deep")
	ErrStoreFailed  = errors.New("mailbox: store failed after an fsync error; restart required")
	ErrFolderExists = errors.New("mailbox: folder exists")
	ErrNoFolder     = errors.New("mailbox: no such folder")

	// ErrBadFolderName: empty, too long, not UTF-8, a control character, a
	// LIST wildcard, or an empty hierarchy component.
	ErrBadFolderName = errors.New("mailbox: invalid folder name")
	// ErrBadRole: a folder role other than the Role* constants.
	ErrBadRole = errors.New("mailbox: invalid folder role")
	// ErrInbox: INBOX cannot be deleted, and nothing can be renamed to INBOX
	// or into itself.
	ErrInbox = errors.New("mailbox: operation not allowed on INBOX")
	// ErrBadFlag: an unknown system flag (\Recent included: RFC 9051 2.3.2
	// says clients cannot set it) or a keyword that is not an atom.
	ErrBadFlag = errors.New("mailbox: invalid flag")
	// ErrTooManyKeywords: more than MaxKeywords keywords on one message.
	ErrTooManyKeywords = errors.New("mailbox: too many keywords")
	// ErrBadPassword: a password longer than MaxPasswordLength.
	ErrBadPassword = errors.New("mailbox: invalid password")
	// ErrTooManyTargets: an alias with no targets or more than MaxAliasTargets.
	ErrTooManyTargets = errors.New("mailbox: bad number of alias targets")
	// ErrUIDsExhausted: UIDNEXT reached 2^32-1 in a folder (RFC 9051 2.3.1.1:
	// UIDs are 32 bits); the folder must be recreated to get a new UIDVALIDITY.
	ErrUIDsExhausted = errors.New("mailbox: folder has no UIDs left")
	// ErrClosed: the Store, the Account or the Committer has been closed
	// (after Close, or the account after DeleteUser).
	ErrClosed = errors.New("mailbox: closed")
	// ErrLocked: another process holds a database file open (bbolt takes an
	// exclusive flock); the CLI must then talk to the running server.
	ErrLocked = errors.New("mailbox: database is locked by another process")
	// ErrCorrupt: a record in a database file cannot be decoded.
	ErrCorrupt = errors.New("mailbox: corrupt record")
)
