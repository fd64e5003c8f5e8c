package imap

// Status is the condition of a status response (RFC 9051 7.1, resp-cond-*).
type Status string

// Statuses (RFC 9051 7.1.1-7.1.5).
const (
	StatusOK      Status = "OK"
	StatusNO      Status = "NO"
	StatusBAD     Status = "BAD"
	StatusPREAUTH Status = "PREAUTH"
	StatusBYE     Status = "BYE"
)

// Code is a response code (RFC 9051 7.1, resp-text-code): an atom, optionally
// followed by SP and arguments, e.g. Code("APPENDUID 38505 3955").
type Code string

// Response codes of RFC 9051 7.1 and the extensions Posthorn implements.
const (
	CodeAlert                = Code("ALERT")
	CodeAlreadyExists        = Code("ALREADYEXISTS")
	CodeAppendUID            = Code("APPENDUID") // args: uidvalidity uid
	CodeAuthenticationFailed = Code("AUTHENTICATIONFAILED")
	CodeAuthorizationFailed  = Code("AUTHORIZATIONFAILED")
	CodeBadCharset           = Code("BADCHARSET")
	CodeCannot               = Code("CANNOT")
	CodeCapability           = Code("CAPABILITY") // args: capabilities
	CodeClientBug            = Code("CLIENTBUG")
	CodeClosed               = Code("CLOSED")
	CodeContactAdmin         = Code("CONTACTADMIN")
	CodeCopyUID              = Code("COPYUID") // args: uidvalidity source-uids dest-uids
	CodeCorruption           = Code("CORRUPTION")
	CodeExpired              = Code("EXPIRED")
	CodeExpungeIssued        = Code("EXPUNGEISSUED")
	CodeHasChildren          = Code("HASCHILDREN")
	CodeInUse                = Code("INUSE")
	CodeLimit                = Code("LIMIT")
	CodeNonExistent          = Code("NONEXISTENT")
	CodeNoPerm               = Code("NOPERM")
	CodeNotSaved             = Code("NOTSAVED") // RFC 5182 3
	CodeOverQuota            = Code("OVERQUOTA")
	CodeParse                = Code("PARSE")
	CodePermanentFlags       = Code("PERMANENTFLAGS") // args: flag list
	CodePrivacyRequired      = Code("PRIVACYREQUIRED")
	CodeReadOnly             = Code("READ-ONLY")
	CodeReadWrite            = Code("READ-WRITE")
	CodeServerBug            = Code("SERVERBUG")
	CodeTooBig               = Code("TOOBIG") // RFC 4469, RFC 7888 5, RFC 7889
	CodeTryCreate            = Code("TRYCREATE")
	CodeUIDNext              = Code("UIDNEXT")
	CodeUIDNotSticky         = Code("UIDNOTSTICKY")
	CodeUIDValidity          = Code("UIDVALIDITY")
	CodeUnavailable          = Code("UNAVAILABLE")
	CodeUnknownCTE           = Code("UNKNOWN-CTE")
)

// System flags (RFC 9051 2.3.2), in the case used on output.
const (
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagSeen     = `\Seen`
	FlagDraft    = `\Draft`
	// FlagRecent is obsolete (RFC 9051 2.3.2) and may not be set by clients.
	FlagRecent = `\Recent`
	// FlagWildcard is "\*" in PERMANENTFLAGS: new keywords may be created.
	FlagWildcard = `\*`
)

// systemFlags lists the flags a client may name with a backslash, in their
// canonical spelling. Flag names are case-insensitive (RFC 9051 9: "all
// alphabetic characters are case-insensitive").
var systemFlags = [...]string{FlagAnswered, FlagFlagged, FlagDeleted, FlagSeen, FlagDraft}
