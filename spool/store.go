package spool

import (
	"bytes"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"posthorn/protocol/smtp"
)

// Buckets; see doc.go for keys and values.
var (
	bucketMeta     = []byte("meta")
	bucketMessages = []byte("messages")
	bucketBodies   = []byte("bodies")
	bucketRcpts    = []byte("rcpts")
	bucketSchedule = []byte("schedule")
	bucketNotices  = []byte("notices")

	keyVersion = []byte("version")
)

const (
	storeVersion = 1
	maxIDLength  = 64
	// maxRcptsPerTransaction: RFC 5321 4.5.3.1.8 makes servers take at
	// least 100 recipients; more go in further transactions (4.5.4.1:
	// "a limit on the number of RCPT commands per MAIL command MAY be
	// imposed").
	maxRcptsPerTransaction = 100
)

// msgRecord is the value in bucketMessages (JSON).
type msgRecord struct {
	From     pathRecord `json:"from"`
	Body     string     `json:"body,omitempty"` // BODY= (RFC 6152, 3030)
	SMTPUTF8 bool       `json:"smtputf8,omitempty"`
	Ret      string     `json:"ret,omitempty"`   // RET= (RFC 3461 4.3)
	EnvID    string     `json:"envid,omitempty"` // ENVID=, decoded (RFC 3461 4.4)
	Arrival  time.Time  `json:"arrival"`
	Size     int        `json:"size"`
	Rcpts    uint32     `json:"rcpts"` // recipient indexes are 0..Rcpts-1
}

// pathRecord is a stored smtp.Path, spelled out so that the file format
// does not follow the fields of another package's struct.
type pathRecord struct {
	Null   bool   `json:"null,omitempty"`
	Local  string `json:"local,omitempty"`
	Domain string `json:"domain,omitempty"`
}

func toPathRecord(p smtp.Path) pathRecord {
	return pathRecord{Null: p.Null, Local: p.Local, Domain: p.Domain}
}

func (p pathRecord) path() smtp.Path {
	return smtp.Path{Null: p.Null, Local: p.Local, Domain: p.Domain}
}

// rcptRecord is the value in bucketRcpts (JSON).
type rcptRecord struct {
	Path   pathRecord `json:"path"`
	Notify []string   `json:"notify,omitempty"` // NOTIFY= (RFC 3461 4.1)
	ORcpt  string     `json:"orcpt,omitempty"`  // ORCPT= "type;addr", decoded (RFC 3461 4.2)
	// Domain is where the recipient is routed: lowercase, A-labels, or an
	// address literal.
	Domain   string    `json:"domain"`
	Status   Status    `json:"status"`
	Attempts int       `json:"attempts,omitempty"`
	Next     time.Time `json:"next,omitzero"` // the schedule key's time while queued
	Last     time.Time `json:"last,omitzero"`
	Reply    *result   `json:"reply,omitempty"` // of the last attempt
	// Code is the RFC 3463 status of the last outcome, for the log and DSN.
	Code string `json:"code,omitempty"`
	// DelayNotified: the "delayed" DSN covering this recipient went out
	// (or was not wanted), so it is never sent twice.
	DelayNotified bool `json:"delay_notified,omitempty"`
	// Notice is the DSN action still to be reported ("failed", "delayed",
	// "relayed"); the message is in bucketNotices while any is set.
	Notice string `json:"notice,omitempty"`
}

// result is what one attempt produced for a recipient: a reply of the
// remote server (Code ≠ 0), or a local reason (Code 0: DNS, connection).
type result struct {
	Code     int    `json:"code,omitempty"`
	Enhanced string `json:"enh,omitempty"`
	Text     string `json:"text"`
	Host     string `json:"host,omitempty"`  // the remote MTA's name
	Relay    string `json:"relay,omitempty"` // "host[ip]:port"
}

// String renders the reply as the log and `queue list` show it.
func (r *result) String() string {
	if r == nil {
		return ""
	}
	if r.Code == 0 {
		if r.Enhanced == "" {
			return r.Text
		}
		return r.Enhanced + " " + r.Text
	}
	return smtp.Reply{Code: r.Code, Enhanced: r.Enhanced, Text: strings.ReplaceAll(r.Text, "\n", " ")}.Error()
}

func initBuckets(db *bolt.DB) error {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketMessages, bucketBodies, bucketRcpts, bucketSchedule, bucketNotices} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		v := meta.Get(keyVersion)
		switch {
		case v == nil:
			return meta.Put(keyVersion, []byte{storeVersion})
		case len(v) != 1 || v[0] != storeVersion:
			return fmt.Errorf("unknown store version %v", v)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("spool: init %s: %w", db.Path(), err)
	}
	return nil
}

// rcptKey names one recipient: the message ID and its index.
type rcptKey struct {
	id  string
	idx uint32
}

// bytes is the key in bucketRcpts: ID, NUL, index as uint32 BE. NUL never
// occurs in an ID, so the rcpts of a message are one prefix range.
func (k rcptKey) bytes() []byte {
	b := make([]byte, 0, len(k.id)+5)
	b = append(b, k.id...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint32(b, k.idx)
}

func rcptPrefix(id string) []byte { return append([]byte(id), 0) }

func parseRcptKey(b []byte) (rcptKey, bool) {
	i := bytes.IndexByte(b, 0)
	if i <= 0 || len(b)-i != 5 {
		return rcptKey{}, false
	}
	return rcptKey{id: string(b[:i]), idx: binary.BigEndian.Uint32(b[i+1:])}, true
}

// scheduleKey is the key in bucketSchedule: the next attempt as Unix
// nanoseconds (uint64 BE, so keys sort by time), then the rcpts key.
func scheduleKey(t time.Time, k rcptKey) []byte {
	ns := max(t.UnixNano(), 0)
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(k.id)+5), uint64(ns))
	return append(b, k.bytes()...)
}

func parseScheduleKey(b []byte) (time.Time, rcptKey, bool) {
	if len(b) < 8 {
		return time.Time{}, rcptKey{}, false
	}
	k, ok := parseRcptKey(b[8:])
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))), k, ok
}

func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("spool: record %q: %w", key, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// txBuckets are the buckets of one transaction.
type txBuckets struct {
	messages, bodies, rcpts, schedule, notices *bolt.Bucket
}

func buckets(tx *bolt.Tx) txBuckets {
	return txBuckets{
		messages: tx.Bucket(bucketMessages),
		bodies:   tx.Bucket(bucketBodies),
		rcpts:    tx.Bucket(bucketRcpts),
		schedule: tx.Bucket(bucketSchedule),
		notices:  tx.Bucket(bucketNotices),
	}
}

// putRcpt stores r under k and keeps the schedule index in step: old is
// the record as it was (nil for a new one).
func (b txBuckets) putRcpt(k rcptKey, old, r *rcptRecord) error {
	if old != nil && old.Status == StatusQueued {
		if err := b.schedule.Delete(scheduleKey(old.Next, k)); err != nil {
			return err
		}
	}
	if r.Status == StatusQueued {
		if err := b.schedule.Put(scheduleKey(r.Next, k), []byte(r.Domain)); err != nil {
			return err
		}
	} else {
		r.Next = time.Time{}
	}
	return putJSON(b.rcpts, k.bytes(), r)
}

// eachRcpt calls fn for every recipient record of message id. The records
// are read first, so fn may change the bucket (bbolt cursors do not
// survive changes under them).
func (b txBuckets) eachRcpt(id string, fn func(k rcptKey, r *rcptRecord) error) error {
	type entry struct {
		k rcptKey
		r rcptRecord
	}
	var all []entry
	prefix := rcptPrefix(id)
	c := b.rcpts.Cursor()
	for key, v := c.Seek(prefix); key != nil && bytes.HasPrefix(key, prefix); key, v = c.Next() {
		k, ok := parseRcptKey(key)
		if !ok {
			continue
		}
		var r rcptRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("spool: record %q: %w", key, err)
		}
		all = append(all, entry{k, r})
	}
	for i := range all {
		if err := fn(all[i].k, &all[i].r); err != nil {
			return err
		}
	}
	return nil
}

// deleteMessage removes every record of message id.
func (b txBuckets) deleteMessage(id string) error {
	var keys [][]byte
	err := b.eachRcpt(id, func(k rcptKey, r *rcptRecord) error {
		if r.Status == StatusQueued {
			if err := b.schedule.Delete(scheduleKey(r.Next, k)); err != nil {
				return err
			}
		}
		keys = append(keys, k.bytes())
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.rcpts.Delete(k); err != nil {
			return err
		}
	}
	for _, bk := range []*bolt.Bucket{b.messages, b.bodies, b.notices} {
		if err := bk.Delete([]byte(id)); err != nil {
			return err
		}
	}
	return nil
}

// validID: queue IDs become keys and log fields, so they are short and
// plain: letters, digits, ".", "-", "_".
func validID(id string) bool {
	if id == "" || len(id) > maxIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// uniqueID returns id, or id with a suffix if a message has it already.
func uniqueID(messages *bolt.Bucket, id string) string {
	if messages.Get([]byte(id)) == nil {
		return id
	}
	base := id
	if len(base) > maxIDLength-8 {
		base = base[:maxIDLength-8]
	}
	for n := 2; ; n++ {
		cand := base + "-" + strconv.Itoa(n)
		if messages.Get([]byte(cand)) == nil {
			return cand
		}
	}
}

// idEncoding keeps generated IDs sortable by time, as the SMTP server's.
var idEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// newID makes a queue ID from the clock in microseconds, unique within the
// process; uniqueID settles a clash with an ID from elsewhere.
func (s *Spool) newID() string {
	s.idMu.Lock()
	v := uint64(s.now().UnixMicro())
	if v <= s.lastID {
		v = s.lastID + 1
	}
	s.lastID = v
	s.idMu.Unlock()
	return idEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, v))
}

// routeDomain is the domain a recipient is routed by: an address literal
// as written, otherwise lowercase without a trailing dot, U-labels turned
// into A-labels (RFC 5890; dnsmx wants ASCII names).
func routeDomain(domain string) string {
	if strings.HasPrefix(domain, "[") {
		return domain
	}
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	if a, ok := toASCIIDomain(d); ok {
		return a
	}
	return d // not a valid name: the route lookup bounces it (5.1.2)
}
