package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"posthorn/mailbox/failpoint"
	imapserver "posthorn/protocol/imap/server"
	"posthorn/protocol/netserve"
	pop3server "posthorn/protocol/pop3/server"
	"posthorn/protocol/sasl"
	smtpserver "posthorn/protocol/smtp/server"
)

// serve runs every configured listener and the outbound queue under one
// errgroup until SIGINT or SIGTERM, then drains: listeners stop accepting,
// transactions in flight get their grace period, delivery attempts in
// flight finish, and the store and spool are closed last.
func serve(cfg *Config, logger *slog.Logger) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	a, err := openApp(cfg, logger)
	if err != nil {
		return err
	}
	a.serving = true
	defer func() {
		if err := a.Close(); err != nil {
			logger.Error("closing the store", "err", err)
		}
	}()
	tlsConfig, err := loadTLS(cfg, logger)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	g, ctx := errgroup.WithContext(ctx)

	backend := &smtpBackend{app: a}
	// One limiter for every service, so that password guessing cannot move
	// from one port to another to escape it; the same for the connection
	// rate (nil when max_connection_rate_per_ip is 0).
	limiter := sasl.NewLimiterWith(sasl.LimiterConfig{
		Delay:    cfg.AuthFailureDelay,
		MaxDelay: cfg.AuthFailureMax,
		Window:   cfg.AuthFailureWindow,
		Lockout:  cfg.AuthLockout,
	}, time.Now)
	connRate := netserve.NewRateLimiter(cfg.MaxConnRatePerIP, time.Now)
	limits := smtpserver.Limits{
		MessageSize:      cfg.MessageSizeLimit,
		Recipients:       cfg.MaxRecipients,
		SoftErrors:       cfg.SoftErrorLimit,
		HardErrors:       cfg.HardErrorLimit,
		ErrorDelay:       cfg.ErrorDelay,
		CommandTimeout:   cfg.SMTPCommandTimeout,
		PerIPConnections: cfg.MaxConnsPerIP,
		Connections:      cfg.MaxConns,
	}
	smtpListeners := []struct {
		name, addr  string
		submission  bool
		implicitTLS bool
	}{
		{"smtp", cfg.SMTPListen, false, false},
		{"submission", cfg.SubmissionListen, true, false},
		{"submissions", cfg.SubmissionsListen, true, true},
	}
	for _, l := range smtpListeners {
		if l.addr == "" {
			continue
		}
		ln, err := listen(l.name, l.addr, l.implicitTLS, tlsConfig)
		if err != nil {
			return err
		}
		sc := smtpserver.Config{
			Hostname:       cfg.Hostname,
			Listener:       l.name,
			Backend:        backend,
			TLS:            tlsConfig,
			ConnectionRate: connRate,
			Limits:         limits,
			Logger:         logger,
			NewID:          a.newID,
		}
		if l.submission {
			sc.Submission = true
			sc.Auth = credentials{store: a.store}
			sc.Limiter = limiter
			sc.AllowPlaintextAuth = cfg.AllowPlaintextAuth
		}
		srv := smtpserver.New(sc)
		logger.Info("listening", "service", l.name, "addr", ln.Addr().String())
		g.Go(func() error { return srv.Serve(ctx, ln) })
	}
	// POP3 on 110 (STLS) and 995 (implicit TLS): one lock table for both,
	// so a maildrop is locked once per process (RFC 1939 4).
	pop3Locks := pop3server.NewLocks()
	pop3Listeners := []struct {
		name, addr  string
		implicitTLS bool
	}{
		{"pop3", cfg.POP3Listen, false},
		{"pop3s", cfg.POP3SListen, true},
	}
	for _, l := range pop3Listeners {
		if l.addr == "" {
			continue
		}
		ln, err := listen(l.name, l.addr, l.implicitTLS, tlsConfig)
		if err != nil {
			return err
		}
		srv := pop3server.New(pop3server.Config{
			Hostname:           cfg.Hostname,
			Listener:           l.name,
			Backend:            pop3Backend{store: a.store},
			Auth:               credentials{store: a.store},
			Limiter:            limiter,
			ConnectionRate:     connRate,
			Locks:              pop3Locks,
			TLS:                tlsConfig,
			AllowPlaintextAuth: cfg.AllowPlaintextAuth,
			Limits: pop3server.Limits{
				SoftErrors:       cfg.SoftErrorLimit,
				HardErrors:       cfg.HardErrorLimit,
				ErrorDelay:       cfg.ErrorDelay,
				PerIPConnections: cfg.MaxConnsPerIP,
				Connections:      cfg.MaxConns,
			},
			Logger: logger,
		})
		logger.Info("listening", "service", l.name, "addr", ln.Addr().String())
		g.Go(func() error { return srv.Serve(ctx, ln) })
	}
	// IMAP (RFC 9051): imap_listen offers STARTTLS; imaps_listen is implicit
	// TLS (RFC 8314 3.3). The same limiter as SMTP and POP3.
	imapLimits := imapserver.Limits{
		MessageSize: cfg.MessageSizeLimit,
		// As Dovecot, IMAP closes after too many BADs without delaying
		// them: soft_error_limit and error_delay are SMTP's and POP3's.
		BadCommands:           cfg.HardErrorLimit,
		PerIPConnections:      cfg.MaxConnsPerIP,
		PerAccountConnections: cfg.MaxConnsPerAccount,
		Connections:           cfg.MaxConns,
	}
	for _, l := range []struct {
		name, addr  string
		implicitTLS bool
	}{
		{"imap", cfg.IMAPListen, false},
		{"imaps", cfg.IMAPSListen, true},
	} {
		if l.addr == "" {
			continue
		}
		ln, err := listen(l.name, l.addr, l.implicitTLS, tlsConfig)
		if err != nil {
			return err
		}
		srv := imapserver.New(imapserver.Config{
			Hostname: cfg.Hostname,
			Listener: l.name,
			OpenAccount: func(name string) (imapserver.Account, error) {
				acct, err := a.store.Account(name)
				if err != nil {
					return nil, err // no typed-nil interface
				}
				return acct, nil
			},
			Auth:               credentials{store: a.store},
			Limiter:            limiter,
			ConnectionRate:     connRate,
			TLS:                tlsConfig,
			AllowPlaintextAuth: cfg.AllowPlaintextAuth,
			Limits:             imapLimits,
			Logger:             logger,
		})
		logger.Info("listening", "service", l.name, "addr", ln.Addr().String())
		g.Go(func() error { return srv.Serve(ctx, ln) })
	}
	g.Go(func() error { return a.spool.Run(ctx) })
	g.Go(func() error { return serveControl(ctx, a) })

	logger.Info("posthorn started", "version", version, "hostname", cfg.Hostname, "domains", cfg.Domains, "data_dir", cfg.DataDir)
	err = g.Wait()
	logger.Info("posthorn stopping")
	return err
}

// listen opens a listener; implicitTLS wraps it in TLS from the first byte
// (RFC 8314 3.3: ports 465, 993 and 995).
func listen(name, addr string, implicitTLS bool, tlsConfig *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s_listen: %w", name, err)
	}
	ln = failpoint.Listener(ln) // the listener itself, except in test builds
	if implicitTLS {
		ln = tls.NewListener(ln, tlsConfig)
	}
	return ln, nil
}
