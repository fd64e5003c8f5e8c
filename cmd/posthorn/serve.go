package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sync/errgroup"

	smtpserver "posthorn/protocol/smtp/server"
)

// serve runs every configured listener under one errgroup until SIGINT or
// SIGTERM, then drains: listeners stop accepting, transactions in flight
// get their grace period, and the store is closed last.
func serve(cfg *Config, logger *slog.Logger) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	st, err := openStore(cfg, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
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

	backend := &localBackend{cfg: cfg, store: st, log: logger}
	limits := smtpserver.Limits{
		MessageSize: cfg.MessageSizeLimit,
		Recipients:  cfg.MaxRecipients,
	}
	if cfg.SMTPListen != "" {
		ln, err := net.Listen("tcp", cfg.SMTPListen)
		if err != nil {
			return fmt.Errorf("smtp_listen: %w", err)
		}
		srv := smtpserver.New(smtpserver.Config{
			Hostname: cfg.Hostname,
			Listener: "smtp",
			Backend:  backend,
			TLS:      tlsConfig,
			Limits:   limits,
			Logger:   logger,
		})
		logger.Info("listening", "service", "smtp", "addr", ln.Addr().String())
		g.Go(func() error { return srv.Serve(ctx, ln) })
	}
	g.Go(func() error { return serveControl(ctx, cfg, st, logger) })

	logger.Info("posthorn started", "version", version, "hostname", cfg.Hostname, "domains", cfg.Domains, "data_dir", cfg.DataDir)
	err = g.Wait()
	logger.Info("posthorn stopping")
	return err
}
