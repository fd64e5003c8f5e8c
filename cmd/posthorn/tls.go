package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"posthorn/protocol/tlsutil"
)

// loadTLS returns the server TLS configuration: the configured certificate,
// or a self-signed one kept in data_dir (made on first start), so that
// STARTTLS and the implicit-TLS ports work out of the box. Clients will not
// trust a self-signed certificate; operations.md says how to install a real one.
func loadTLS(cfg *Config, logger *slog.Logger) (*tls.Config, error) {
	certFile, keyFile := cfg.TLSCert, cfg.TLSKey
	if certFile == "" {
		certFile = filepath.Join(cfg.DataDir, "tls", "selfsigned-cert.pem")
		keyFile = filepath.Join(cfg.DataDir, "tls", "selfsigned-key.pem")
		if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
			if err := makeSelfSigned(cfg.Hostname, certFile, keyFile); err != nil {
				return nil, fmt.Errorf("self-signed certificate: %w", err)
			}
			logger.Warn("no tls_cert configured: made a self-signed certificate", "cert", certFile)
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls_cert/tls_key: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		// RFC 8996: TLS 1.0 and 1.1 are deprecated. Mail senders on port 25
		// fall back to plaintext when the handshake fails, so the floor costs
		// no mail.
		MinVersion: tls.VersionTLS12,
	}, nil
}

// makeSelfSigned writes a self-signed certificate for hostname valid for
// ten years, the key readable by the owner only.
func makeSelfSigned(hostname, certFile, keyFile string) error {
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return err
	}
	certPEM, keyPEM, err := tlsutil.SelfSigned([]string{hostname}, 10*365*24*time.Hour)
	if err != nil {
		return err
	}
	// Key first: a certificate without its key would stop the next start.
	if err := writeFileSync(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return writeFileSync(certFile, certPEM, 0o644)
}

// writeFileSync writes a file atomically: temporary file, fsync, rename.
func writeFileSync(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
