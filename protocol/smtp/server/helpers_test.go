package server

import (
	"crypto/tls"
	"testing"

	"posthorn/protocol/tlsutil"
)

// testTLSConfig returns a server TLS config with a fresh self-signed certificate.
func testTLSConfig(t testing.TB) *tls.Config {
	t.Helper()
	cfg, err := tlsutil.ServerConfig("mx.example.org")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
