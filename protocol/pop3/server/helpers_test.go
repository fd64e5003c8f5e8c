package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"posthorn/protocol/pop3"
	"posthorn/protocol/sasl"
)

// testTLSConfig returns a server TLS config with a fresh self-signed certificate.
func testTLSConfig(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pop.example.org"},
		DNSNames:     []string{"pop.example.org"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// fakeCredentials: every known account has the password "secret";
// "temp@example.org" makes the store fail.
type fakeCredentials struct{ known func(string) bool }

var errStoreDown = errors.New("store is down")

func (c fakeCredentials) Verify(ctx context.Context, user, pass string) (string, error) {
	if user == "temp@example.org" {
		return "", errStoreDown
	}
	if c.known(user) && pass == "secret" {
		return user, nil
	}
	return "", sasl.ErrAuthFailed
}

func (c fakeCredentials) SCRAM(ctx context.Context, user string) (sasl.SCRAMVerifier, string, error) {
	if !c.known(user) {
		return sasl.SCRAMVerifier{Iterations: 4096}, "", sasl.ErrUnknownUser
	}
	return sasl.NewSCRAMVerifier("secret", []byte("0123456789abcdef"), 4096), user, nil
}

// The fake store's maildrops.
const (
	msgOne  = "From: bob@example.org\r\nSubject: one\r\n\r\nHello Alice\r\n"
	msgDots = "Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nmiddle . dot\r\n.\r\nend\r\n"
	msgTop  = "Subject: top\r\nX-Folded: a\r\n b\r\n\r\nline 1\r\n\r\n.line 3\r\nline 4\r\n"
	// msgBare has bare LF line ends and no final line end: sent with CRLF,
	// counted so (RFC 1939 11).
	msgBare = "Subject: bare\n\nline\n.dot\nend"
)

type fakeMessage struct {
	uid uint32
	raw []byte
}

type fakeBox struct {
	validity uint32
	msgs     []fakeMessage
	// Faults.
	failOpen   bool
	panicOpen  bool
	failDelete bool
	failRead   map[uint32]error
}

// fakeBackend is an in-memory store that records every removal.
type fakeBackend struct {
	mu      sync.Mutex
	boxes   map[string]*fakeBox
	deletes []string // "account:uid,uid"
	opens   int
	closes  int
}

func newFakeBackend() *fakeBackend {
	msgs := func(raws ...string) []fakeMessage {
		var out []fakeMessage
		uid := uint32(1)
		for _, r := range raws {
			out = append(out, fakeMessage{uid: uid, raw: []byte(r)})
			uid += 2 // gaps, as after expunges
		}
		return out
	}
	return &fakeBackend{boxes: map[string]*fakeBox{
		"alice@example.org":   {validity: 0x6553f100, msgs: msgs(msgOne, msgDots, msgTop)},
		"bob@example.org":     {validity: 7},
		"carol@example.org":   {validity: 9, msgs: msgs(msgBare, msgOne)},
		"broken@example.org":  {failOpen: true},
		"panic@example.org":   {panicOpen: true},
		"faildel@example.org": {validity: 3, msgs: msgs(msgOne), failDelete: true},
		"gone@example.org": {validity: 4, msgs: msgs(msgOne, msgOne),
			failRead: map[uint32]error{1: ErrNoMessage, 3: errStoreDown}},
	}}
}

func (b *fakeBackend) known(user string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.boxes[user]
	return ok
}

func (b *fakeBackend) credentials() sasl.Credentials { return fakeCredentials{known: b.known} }

// deliver adds a message to a maildrop, as a delivery during a session would.
func (b *fakeBackend) deliver(account, raw string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	box := b.boxes[account]
	uid := uint32(1)
	if n := len(box.msgs); n > 0 {
		uid = box.msgs[n-1].uid + 1
	}
	box.msgs = append(box.msgs, fakeMessage{uid: uid, raw: []byte(raw)})
}

func (b *fakeBackend) deleteCalls() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.deletes) == 0 {
		return "none"
	}
	return strings.Join(b.deletes, " ")
}

func (b *fakeBackend) Open(ctx context.Context, account string) (Maildrop, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	box, ok := b.boxes[account]
	if !ok || box.failOpen {
		return nil, errStoreDown
	}
	if box.panicOpen {
		panic("fake backend: Open")
	}
	b.opens++
	d := &fakeMaildrop{b: b, account: account, validity: box.validity}
	for _, m := range box.msgs {
		d.msgs = append(d.msgs, Message{UID: m.uid, Size: pop3.WireSize(m.raw)})
	}
	return d, nil
}

type fakeMaildrop struct {
	b        *fakeBackend
	account  string
	validity uint32
	msgs     []Message
	closed   bool
}

func (d *fakeMaildrop) UIDValidity() uint32 { return d.validity }
func (d *fakeMaildrop) Messages() []Message { return d.msgs }

func (d *fakeMaildrop) Read(ctx context.Context, uid uint32) ([]byte, error) {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	box := d.b.boxes[d.account]
	if err := box.failRead[uid]; err != nil {
		return nil, err
	}
	for _, m := range box.msgs {
		if m.uid == uid {
			return slices.Clone(m.raw), nil
		}
	}
	return nil, ErrNoMessage
}

func (d *fakeMaildrop) Delete(ctx context.Context, uids []uint32) error {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	box := d.b.boxes[d.account]
	var s []string
	for _, u := range uids {
		s = append(s, fmt.Sprint(u))
	}
	d.b.deletes = append(d.b.deletes, d.account+":"+strings.Join(s, ","))
	if box.failDelete {
		return errStoreDown
	}
	box.msgs = slices.DeleteFunc(box.msgs, func(m fakeMessage) bool { return slices.Contains(uids, m.uid) })
	return nil
}

func (d *fakeMaildrop) Close() error {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	if d.closed {
		panic("maildrop closed twice")
	}
	d.closed = true
	d.b.closes++
	return nil
}
