package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"
)

func TestSelfSigned(t *testing.T) {
	certPEM, keyPEM, err := SelfSigned([]string{"mx.example.org", "localhost", "192.0.2.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mx.example.org", "localhost", "127.0.0.1", "192.0.2.1"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if leaf.VerifyHostname("other.example") == nil {
		t.Error("certificate valid for a name it was not made for")
	}
	if d := time.Until(leaf.NotAfter); d <= 0 || d > time.Hour+time.Minute {
		t.Errorf("validity ends in %v", d)
	}
	if _, _, err := SelfSigned(nil, time.Hour); err == nil {
		t.Error("no names accepted")
	}
}
