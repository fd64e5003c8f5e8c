// Package mailbox is Posthorn's mail store: accounts, passwords and aliases
// in a directory database, and each account's folders, messages, flags,
// UIDs and MODSEQs in a bbolt file of its own, with an in-memory change feed
// per account for IMAP IDLE and concurrent sessions.
//
// # Files
//
// Under the data directory (mode 0700; files 0600):
//
//	directory.db          accounts, password hashes, aliases
//	accounts/<id>.db      one file per account
//
// <id> is the account's number (decimal), allocated from a counter in
// directory.db when the account is created and never reused: addresses
// never become path names, so no address can reach outside accounts/, and a
// deleted and re-added user never finds the old mail. One file per account
// lets accounts commit in parallel; each file has its own group Committer.
//
// Every file is opened with BoltOptions: a 1 s lock timeout (a second
// process gets ErrLocked instead of hanging), the hash-map freelist, and no
// freelist sync (cheaper commits; the freelist is rebuilt at open).
//
// # directory.db
//
//	accounts  normalised address → 0x01 | id uint64 BE | password hash
//	aliases   normalised address or "@domain" → targets, normalised, NUL-separated
//	meta      "version" → 0x01; "accountseq" → last account id, uint64 BE
//
// The password hash is "$pbkdf2-sha256$i=N$SALT$HASH" (PBKDF2-HMAC-SHA256,
// RFC 8018; 16-byte salt, 32-byte key, unpadded standard base64), or empty
// when login is disabled.
//
// # accounts/<id>.db
//
//	meta      "version" → 0x01
//	          "address" → the account's address (checked at open)
//	          "modseq" → last MODSEQ, uint64 BE
//	          "uidvalidity" → last UIDVALIDITY given out, uint32 BE
//	          "folderseq" → last folder id, uint32 BE
//	folders   folder name → folder record
//	boxes     folder id (uint32 BE) → bucket of the folder's storage:
//	            msgs      UID (uint32 BE) → message record
//	            bodies    UID → raw message (RFC 5322 bytes as received)
//	            parsed    UID → Options.Parse blob (absent when none)
//	            expunged  UID → MODSEQ of its expunge, uint64 BE
//
// Folder record (43 octets + role), integers big-endian:
//
//	version 0x01 | id u32 | UIDVALIDITY u32 | UIDNEXT u32 | HIGHESTMODSEQ u64 |
//	messages u32 | unseen u32 | deleted u32 | size u64 |
//	flags u8 (bit 0 subscribed) | role length u8 | role (RFC 6154 "\Sent" ...)
//
// Message record (31 octets + keywords):
//
//	version 0x01 | MODSEQ u64 | size u64 | internal date, Unix seconds i64 |
//	zone offset, seconds east of UTC i32 | system flags u8 | keyword count u8 |
//	per keyword: length u8 | keyword
//
// System flag bits: \Seen 1, \Answered 2, \Flagged 4, \Deleted 8, \Draft 16.
// Keywords are atoms of at most MaxKeywordLength octets, at most MaxKeywords
// per message, unique without regard to case, sorted by octets.
//
// Metadata, bodies and parsed blobs are separate buckets so that a flag scan
// (SELECT, FETCH FLAGS, SEARCH on flags) never pages in message bytes. The
// folder record keeps the counters (messages, unseen, deleted, size)
// up to date on every change, so STATUS costs one lookup. Folders are
// keyed by name but store their messages under a numeric id, so renaming a
// folder rewrites one record, not its messages.
//
// # UIDs, UIDVALIDITY, MODSEQ
//
//   - UIDNEXT only rises, in the folder record, committed with the message:
//     a UID is never given out twice under one UIDVALIDITY, not after an
//     expunge, a crash or a restart (RFC 9051 2.3.1.1).
//   - A new folder's UIDVALIDITY is max(now in Unix seconds, last + 1),
//     where last is the account's highest ever: strictly above every
//     UIDVALIDITY the account used, so a folder deleted and created again
//     gets a new one. Renamed folders get a new one too (their new name may
//     have been used before); they keep their UIDs.
//   - MODSEQ is one counter per account. Every write operation (an append,
//     a STORE, an expunge, a copy or move, a folder change) takes the next
//     value, and every message it changes gets that value; messages whose
//     flags do not change keep theirs. A folder's HIGHESTMODSEQ is the
//     highest MODSEQ of any change in it, expunges included (RFC 7162 3.1).
//     The counter never decreases: it is committed with the change.
//   - Renaming INBOX (RFC 9051 6.3.6) gives INBOX's storage, with its UIDs,
//     to the new folder (which gets a new UIDVALIDITY) and gives INBOX new
//     empty storage with its old UIDVALIDITY and UIDNEXT; the moved UIDs
//     are recorded as expunged from INBOX.
//
// # Durability
//
// Writes go through a Committer (group commit): concurrent operations on
// one file share one transaction and one fsync, and a write returns only
// after its commit. A commit that fails for lack of space (ENOSPC, EDQUOT)
// fails only its own batch: the page writes failed before the meta page
// that would publish them, so the file is still the last good commit, and
// writes succeed again once space is freed. Any other commit error fails
// the whole Store: every later write returns ErrStoreFailed until a
// restart, because after an fsync error the kernel may have dropped the
// dirty pages and a later success would prove nothing. Reads use read-only
// transactions and never wait for writers.
//
// # Change feed
//
// Each Account publishes a Change for every message or folder change after
// its transaction commits, in commit order, to every Subscription. A full
// subscription channel drops the change and sets Overflowed: the committer
// never blocks on a slow reader.
//
// RFCs: 9051 (IMAP4rev2: UIDs, flags, mailbox names), 3501 (IMAP4rev1),
// 7162 (CONDSTORE/QRESYNC: MODSEQ), 6154 (special-use roles), 4315 (UIDPLUS),
// 6851 (MOVE), 5321 (address limits), 6531 (UTF-8 addresses), 8018 (PBKDF2).
package mailbox
