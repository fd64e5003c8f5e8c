package server

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// RFC 8314 3.3: implicit TLS (port 465): the handshake comes first, EHLO
// offers no STARTTLS, and the session counts as TLS.
func TestImplicitTLS(t *testing.T) {
	tlsConfig := testTLSConfig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be := &fakeBackend{}
	srv := New(Config{Hostname: "mx.example.org", Listener: "submissions", Backend: be, TLS: tlsConfig,
		Submission: true, Auth: fakeCredentials{}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, tls.NewListener(ln, tlsConfig))

	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	expectLine(t, br, "220 mx.example.org ESMTP")
	io.WriteString(c, "EHLO client.example\r\n")
	var ehlo []string
	for {
		l := expectLine(t, br, "250")
		ehlo = append(ehlo, strings.TrimSpace(l))
		if strings.HasPrefix(l, "250 ") {
			break
		}
	}
	joined := strings.Join(ehlo, "|")
	if strings.Contains(joined, "STARTTLS") || !strings.Contains(joined, "250-AUTH SCRAM-SHA-256 PLAIN LOGIN") {
		t.Fatalf("EHLO over implicit TLS: %s", joined)
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00secret"))
	io.WriteString(c, "AUTH PLAIN "+plain+"\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<x@remote.example>\r\nDATA\r\n")
	expectLine(t, br, "235 2.7.0")
	expectLine(t, br, "250 2.1.0")
	expectLine(t, br, "250 2.1.5")
	expectLine(t, br, "354")
	io.WriteString(c, "Subject: s\r\n\r\nx\r\n.\r\n")
	expectLine(t, br, "250 2.0.0")
	msgs := be.stored()
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].msg), "with ESMTPSA id") {
		t.Fatalf("stored: %v", msgs)
	}
}

// SCRAM-SHA-256 (RFC 5802, RFC 7677) over a real connection, with a client
// written from the RFC: the server's proof is checked too.
func TestAuthSCRAM(t *testing.T) {
	ts := startTestServerWith(t, Limits{}, nil, serverOptions{submission: true, loopbackIsRemote: true})
	c, br := dialGreeted(t, ts.addr)
	defer c.Close()
	io.WriteString(c, "EHLO client.example\r\n")
	for {
		if l := expectLine(t, br, "250"); strings.HasPrefix(l, "250 ") {
			break
		}
	}
	b64 := base64.StdEncoding
	clientNonce := "fyko+d2lbbFgONRv9qkxdawL"
	clientFirstBare := "n=alice@example.org,r=" + clientNonce
	io.WriteString(c, "AUTH SCRAM-SHA-256 "+b64.EncodeToString([]byte("n,,"+clientFirstBare))+"\r\n")
	line := expectLine(t, br, "334 ")
	serverFirst, err := b64.DecodeString(strings.TrimSpace(line[4:]))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, f := range strings.Split(string(serverFirst), ",") {
		fields[f[:1]] = f[2:]
	}
	if !strings.HasPrefix(fields["r"], clientNonce) || fields["i"] != "4096" {
		t.Fatalf("server-first %q", serverFirst)
	}
	salt, _ := b64.DecodeString(fields["s"])
	salted, _ := pbkdf2.Key(sha256.New, "secret", salt, 4096, 32)
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	finalNoProof := "c=biws,r=" + fields["r"]
	authMessage := clientFirstBare + "," + string(serverFirst) + "," + finalNoProof
	sig := mac(storedKey[:], authMessage)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	io.WriteString(c, b64.EncodeToString([]byte(finalNoProof+",p="+b64.EncodeToString(proof)))+"\r\n")
	line = expectLine(t, br, "334 ")
	serverFinal, _ := b64.DecodeString(strings.TrimSpace(line[4:]))
	wantV := "v=" + b64.EncodeToString(mac(mac(salted, "Server Key"), authMessage))
	if string(serverFinal) != wantV {
		t.Fatalf("server-final %q, want %q", serverFinal, wantV)
	}
	io.WriteString(c, "\r\n")
	expectLine(t, br, "235 2.7.0")
}
