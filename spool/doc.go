// Package spool is Posthorn's outbound queue: it stores mail for remote
// recipients durably, delivers it per destination domain over SMTP with
// opportunistic STARTTLS, retries with exponential backoff, and returns
// delivery status notifications (sub-package dsn) to the sender.
//
// # Life of a recipient
//
// Enqueue writes the message and one record per recipient in one
// group-committed, fsync'd bbolt transaction before it returns, so the SMTP
// server's 250 is a promise kept across crashes (RFC 5321 6.1). Each
// recipient is "queued" with its next attempt now; an attempt ends it as
//
//   - sent: a next hop answered 2yz after the final dot (RFC 5321 4.2.5);
//   - bounced: a 5yz, a permanent route error (NXDOMAIN 5.1.2, null MX
//     5.1.10 without connecting, MX pointing at us 5.4.6), or the
//     message's age passed MaxLifetime (5.4.7, see below);
//   - deferred (still queued): a 4yz, a lost connection (even after the
//     final dot without a reply: a duplicate is better than a loss), no
//     host reachable, a temporary DNS failure. The next attempt is
//     RetryMin·2^(attempts-1), capped at RetryMax, ±10% jitter
//     (RFC 5321 4.5.4.1), but never later than the expiry, nor than the
//     delay warning while that is still to be sent.
//
// A message's records are removed once every recipient is sent or bounced
// and every DSN it needs has been handed to Options.Bounce. List (`queue
// list`) shows each message with the recipients still queued, as Postfix's
// mailq does; Show has them all with their status.
//
// # DSNs
//
// RFC 3461 NOTIFY decides (absent means FAILURE,DELAY, RFC 3461 6.1; NEVER
// means none), and a message from the null reverse-path never gets one
// (RFC 5321 6.1 and 4.5.5: failures are logged and the recipient dropped).
//
//   - failed: one DSN per event, covering the recipients that failed in
//     it. For an expired recipient Posthorn reports Action: failed with
//     Status: 5.4.7 (RFC 3463 X.4.7 "Delivery time expired", class 5
//     because the queue has given up: RFC 3464 2.3.4 ties class 5 to
//     permanent failure) and keeps the last temporary reply, the actual
//     problem RFC 3463 asks for, in Diagnostic-Code.
//   - delayed: once, when a recipient is deferred at an age of at least
//     DelayWarning; it covers every recipient of the message still queued
//     then, with Will-Retry-Until = arrival + MaxLifetime and the last
//     temporary status (class 4).
//   - relayed: NOTIFY=SUCCESS delivered to a next hop that did not offer
//     DSN (RFC 3461 5.2.2 b), Status 2.x.x.
//
// A recipient's pending DSN is a field of its record (Notice), set in the
// same transaction as the outcome, and the message is listed in the
// notices bucket; Bounce is called after that commit and the notice is
// cleared after Bounce succeeds. A crash in between sends the DSN again at
// the next start (a duplicate, never a loss); a failed Bounce is retried
// every RetryMin.
//
// # Scheduling
//
// The scheduler reads the schedule index from its start up to now (it is
// ordered by time, so it never scans the whole queue), skips recipients
// already in flight, and groups the due ones by destination domain, then
// by message (one job = one SMTP transaction, at most 100 recipients,
// RFC 5321 4.5.3.1.8). A domain gets a worker, and one more for every 8
// jobs waiting, up to PerDomain, with at most Concurrency workers in all. A
// worker resolves the route once (dnsmx.LookupRoute with our names and
// addresses for loop detection; "[192.0.2.1]" and "[IPv6:...]" literals go
// straight to the address), tries each host in preference order and each
// of its addresses until one gives a usable session (refused, timed out,
// a greeting other than 2yz: next address; a failed STARTTLS handshake: the
// same address again without TLS), then sends the domain's jobs one after
// another over that connection. A route failure or an unreachable domain
// applies to every job waiting for that domain, and the domain is
// remembered as unreachable for RetryMin, during which its recipients are
// deferred without new connection attempts (RFC 5321 4.5.4.1: "keep a list
// of hosts it cannot reach").
//
// When Run starts, recipients whose next attempt has passed (a restart,
// a stop) are given new times: the first 100 messages at once, the rest
// 50 ms apart, or closer so that the whole spread fits in RetryMin, in
// their old order, all recipients of a message together; the others keep
// their times. When Run's context ends no
// attempt starts, those in flight have ShutdownGrace to finish, and their
// results are recorded.
//
// # Storage
//
// One bbolt file, data_dir/spool.db, opened with mailbox.OpenDB and
// written only through a mailbox.Committer (group commit). Buckets:
//
//	meta      "version" → 0x01
//	messages  ID → message record (JSON)
//	bodies    ID → the raw message as received (with our trace header)
//	rcpts     ID 0x00 index(uint32 BE) → recipient record (JSON)
//	schedule  next attempt (Unix ns, uint64 BE) ‖ ID 0x00 index(uint32 BE)
//	          → the recipient's routing domain; one entry per queued
//	          recipient, its time equal to the record's "next"
//	notices   ID → empty; messages with a DSN still to hand off
//
// IDs are the SMTP server's queue IDs (or generated alike: 13 base32hex
// characters of the arrival time in µs); they are 1–64 characters of
// [A-Za-z0-9._-], so never contain the 0x00 separator, and the recipients
// of a message are one key range. An ID already present gets a "-N"
// suffix. Message bodies live apart from the records, so scheduling and
// `queue list` never page message bytes in.
//
// Message record:
//
//	{"from": {"null": bool, "local": s, "domain": s},
//	 "body": "8BITMIME", "smtputf8": bool, "ret": "FULL"|"HDRS",
//	 "envid": s (xtext-decoded), "arrival": RFC 3339 time,
//	 "size": octets, "rcpts": number of recipient records}
//
// Recipient record:
//
//	{"path": {...as from}, "notify": ["SUCCESS","FAILURE","DELAY"|"NEVER"],
//	 "orcpt": "rfc822;addr" (decoded), "domain": routing domain (lowercase,
//	 A-labels, or the address literal), "status": "queued"|"sent"|"bounced",
//	 "attempts": n, "next": time (queued only), "last": time of the last
//	 attempt, "reply": {"code": SMTP code or 0 for a local reason,
//	 "enh": "4.2.0", "text": s, "host": remote MTA name, "relay":
//	 "host[ip]:port"}, "code": RFC 3463 status of the last outcome,
//	 "delay_notified": bool, "notice": "failed"|"delayed"|"relayed"}
//
// Times are JSON (RFC 3339 with nanoseconds). Every change to a recipient
// goes through one helper that moves its schedule entry in the same
// transaction, and all recipients of one SMTP transaction are updated in
// one bbolt transaction.
//
// # Logs
//
// One line per recipient per attempt, msg "delivery", with queue_id, rcpt,
// relay (host[ip]:port or "none"), delay (since arrival), dsn (the RFC
// 3463 status), status (sent, deferred, bounced), reply and attempts.
//
// RFCs: 5321 (4.5.4 retry strategy, 5.1 routing, 6.1 reliable delivery and
// null reverse-path, 4.5.3.1.8 recipients per transaction), 3461 (DSN
// parameters: NOTIFY, RET, ENVID, ORCPT), 3464 and 6522 (DSN format, in
// package dsn), 3463 (status codes), 7505 (null MX), 3492 and 5890
// (A-labels for internationalized domains, RFC 6531).
package spool
