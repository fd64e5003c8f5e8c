package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"posthorn/dnsmx"
	"posthorn/mailbox"
	"posthorn/mailbox/failpoint"
	"posthorn/protocol/sasl"
	"posthorn/protocol/smtp"
	smtpserver "posthorn/protocol/smtp/server"
	"posthorn/spool"
)

// app holds the parts of a running system that serve and the admin
// commands share: the mail store, the outbound spool, the queue-ID source.
type app struct {
	cfg   *Config
	store *mailbox.Store
	spool *spool.Spool
	log   *slog.Logger
	newID func() string
	// serving: this is the server's app (admin commands come over the
	// control socket), not one a CLI command opened for itself.
	serving bool
}

// openApp opens the store and the spool in cfg.DataDir.
func openApp(cfg *Config, logger *slog.Logger) (*app, error) {
	st, err := openStore(cfg, logger)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, store: st, log: logger, newID: smtpserver.NewQueueIDGenerator(time.Now)}
	resolver, err := newResolver(cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	self, local := selfAddrs(cfg)
	sp, err := spool.Open(filepath.Join(cfg.DataDir, "spool.db"), spool.Options{
		Hostname:     cfg.Hostname,
		Resolver:     resolver,
		OutboundPort: cfg.OutboundPort,
		RetryMin:     cfg.RetryMin,
		RetryMax:     cfg.RetryMax,
		DelayWarning: cfg.DelayWarning,
		MaxLifetime:  cfg.MaxQueueLifetime,
		// Opportunistic STARTTLS on port 25 has no name to check the
		// certificate against that an attacker could not also change
		// (RFC 7435); it protects against passive listeners.
		TLS:       &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
		SelfHosts: []string{cfg.Hostname},
		SelfAddrs: self,
		LocalAddr: local,
		Bounce:    a.bounce,
		Logger:    logger,
		// The real clock, or in a failpoint build one a test can move on.
		Now: failpoint.Now,
	})
	if err != nil {
		st.Close()
		if errors.Is(err, mailbox.ErrLocked) {
			return nil, errServerRunning
		}
		return nil, fmt.Errorf("spool: %w", err)
	}
	a.spool = sp
	return a, nil
}

func (a *app) Close() error {
	return errors.Join(a.spool.Close(), a.store.Close())
}

// newResolver uses dns_resolvers, or /etc/resolv.conf when unset.
func newResolver(cfg *Config) (*dnsmx.DNSResolver, error) {
	servers := cfg.DNSResolvers
	if len(servers) == 0 {
		var err error
		if servers, err = dnsmx.SystemServers(); err != nil || len(servers) == 0 {
			// Without a resolver nothing can be relayed, but local delivery
			// and the admin commands still work; queued mail waits.
			servers = []string{"127.0.0.1:53"}
		}
	}
	return dnsmx.NewResolver(servers, 0), nil
}

// selfAddrs returns the addresses that are "us" for MX loop detection: the
// address smtp_listen is bound to, or every local interface address when it
// is bound to all; and the source address for outbound connections (the
// bound address, so that a server on 127.0.0.2 sends from 127.0.0.2).
func selfAddrs(cfg *Config) (self []netip.Addr, local netip.Addr) {
	host, _, err := net.SplitHostPort(cfg.SMTPListen)
	if err == nil && host != "" {
		if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
			return []netip.Addr{ip.Unmap()}, ip.Unmap()
		}
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if pn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(pn.IP); ok {
				self = append(self, ip.Unmap())
			}
		}
	}
	return self, netip.Addr{}
}

func (a *app) isLocalDomain(d string) bool {
	return slices.Contains(a.cfg.Domains, strings.ToLower(d))
}

// bounce delivers a DSN made by the spool to the original sender: into the
// INBOX of a local sender, or back into the spool from <> for a remote one.
func (a *app) bounce(ctx context.Context, to smtp.Path, msg []byte) error {
	env := &smtpserver.Envelope{
		ID:       a.newID(),
		From:     smtp.Path{Null: true},
		Rcpts:    []smtpserver.RcptTo{{Path: to}},
		Received: time.Now(),
	}
	return a.route(ctx, env, msg, true)
}

// route delivers a message to its recipients: local ones to their
// mailboxes (aliases, catch-all, plus-addressing; alias targets elsewhere
// are forwarded through the spool), others into the spool. remoteAllowed is
// false for the MX service, which never relays for its clients. Both parts
// are durable when route returns nil.
func (a *app) route(ctx context.Context, env *smtpserver.Envelope, msg []byte, remoteAllowed bool) error {
	var accounts []string
	var remote []spool.Rcpt
	for _, r := range env.Rcpts {
		if !r.Path.Postmaster && !a.isLocalDomain(r.Path.Domain) {
			if !remoteAllowed {
				return smtp.R(smtp.CodeFailed, smtp.EnhDeliveryNotAuth, "Relay access denied")
			}
			remote = append(remote, spool.Rcpt{Path: r.Path, Params: r.Params})
			continue
		}
		res, err := a.resolveLocal(r.Path)
		if err != nil {
			return smtp.R(smtp.CodeLocalError, smtp.EnhBadDestMailbox, "Recipient "+r.Path.String()+" no longer available, try again later")
		}
		accounts = append(accounts, res.Accounts...)
		for _, fwd := range res.Remote {
			p, err := pathOf(fwd)
			if err != nil {
				a.log.Warn("alias target is not an address", "alias", r.Path.String(), "target", fwd)
				continue
			}
			params := r.Params
			if params.ORcpt == "" {
				// RFC 3461 4.2: the original recipient goes along.
				params.ORcpt = "rfc822;" + r.Path.String()
			}
			remote = append(remote, spool.Rcpt{Path: p, Params: params})
		}
	}
	slices.Sort(accounts)
	accounts = slices.Compact(accounts)

	var localErr, spoolErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		if len(remote) > 0 {
			spoolErr = a.spool.Enqueue(ctx, spool.Message{
				ID: env.ID, From: env.From, Mail: env.Mail, Rcpts: remote, Arrival: env.Received,
			}, msg)
		}
	}()
	if len(accounts) > 0 {
		// RFC 5321 4.4: final delivery adds the Return-Path.
		rp := "Return-Path: <" + env.From.String() + ">\r\n"
		full := make([]byte, 0, len(rp)+len(msg))
		full = append(append(full, rp...), msg...)
		localErr = a.store.Deliver(ctx, accounts, full, env.Received)
	}
	<-done
	if err := errors.Join(localErr, spoolErr); err != nil {
		a.log.Error("delivery failed", "queue_id", env.ID, "accounts", accounts, "remote", len(remote), "err", err)
		// ROBUSTNESS.md: disk full or an fsync error at the end of DATA is
		// 451 4.3.0; the client keeps the message and retries.
		return smtp.R(smtp.CodeLocalError, smtp.EnhSystemOther, "Local error in processing, try again later")
	}
	if len(accounts) > 0 {
		a.log.Info("delivered", "queue_id", env.ID, "accounts", accounts, "size", len(msg))
	}
	if len(remote) > 0 {
		a.log.Info("queued", "queue_id", env.ID, "remote_rcpts", len(remote), "size", len(msg))
	}
	return nil
}

// resolveLocal resolves an address in a local domain.
func (a *app) resolveLocal(to smtp.Path) (mailbox.Resolution, error) {
	addr := to.String()
	if to.Postmaster {
		// RFC 5321 4.5.1: <Postmaster> without a domain must be accepted; it
		// means the postmaster of this host's primary domain.
		addr = "postmaster@" + a.cfg.Domains[0]
	}
	return a.store.Resolve(addr)
}

// pathOf parses a plain address (an alias target) into a Path.
func pathOf(addr string) (smtp.Path, error) {
	p, _, err := smtp.ParseRcpt("TO:<"+addr+">", true)
	return p, err
}

// credentials adapts the store to what the SASL mechanisms need.
type credentials struct{ store *mailbox.Store }

func (c credentials) Verify(ctx context.Context, user, password string) (string, error) {
	acc, err := c.store.Authenticate(user, password)
	if errors.Is(err, mailbox.ErrAuthFailed) {
		return "", sasl.ErrAuthFailed
	}
	return acc, err
}

func (c credentials) SCRAM(ctx context.Context, user string) (sasl.SCRAMVerifier, string, error) {
	sec, err := c.store.SCRAMSecret(user)
	if errors.Is(err, mailbox.ErrNoSuchUser) {
		return sasl.SCRAMVerifier{Iterations: sec.Iterations}, "", sasl.ErrUnknownUser
	}
	if err != nil {
		return sasl.SCRAMVerifier{}, "", err
	}
	return sasl.VerifierFromSaltedPassword(sec.SaltedPassword, sec.Salt, sec.Iterations), sec.Account, nil
}
