package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os/user"
	"strings"
	"time"

	"posthorn/protocol/smtp"
	smtpserver "posthorn/protocol/smtp/server"
)

// `posthorn sendmail` is the sendmail(8) interface for local programs (cron,
// scripts): the message on standard input, recipients as arguments or, with
// -t, from its To, Cc and Bcc fields. It is run by the server (over the
// control socket) or, with no server running, against the store directly:
// local recipients are delivered at once, remote ones wait in the spool.

// sendmailDefaultSender adds "-f USER@hostname" when no -f is given: the CLI
// knows the Unix user, the server on the other side of the socket does not.
func sendmailDefaultSender(cfg *Config, args []string) []string {
	for i, a := range args[1:] {
		if a == "--" {
			break
		}
		if a == "-f" || (strings.HasPrefix(a, "-f") && len(a) > 2) || (a == "-r" && i+2 < len(args)) {
			return args
		}
	}
	name := "root"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	out := []string{args[0], "-f", name + "@" + cfg.Hostname}
	return append(out, args[1:]...)
}

// sendmailOptions are the parsed sendmail flags.
type sendmailOptions struct {
	from       string
	fromSet    bool
	fromName   string
	readHeader bool // -t
	ignoreDots bool // -i, -oi
	rcpts      []string
}

func parseSendmailArgs(args []string) (sendmailOptions, error) {
	var o sendmailOptions
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			o.rcpts = append(o.rcpts, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			o.rcpts = append(o.rcpts, a)
			continue
		}
		value := func() (string, error) {
			if len(a) > 2 {
				return a[2:], nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("sendmail: %s needs a value", a)
			}
			i++
			return args[i], nil
		}
		var err error
		switch {
		case strings.HasPrefix(a, "-f"), strings.HasPrefix(a, "-r"):
			o.from, err = value()
			o.fromSet = true
		case strings.HasPrefix(a, "-F"):
			o.fromName, err = value()
		case a == "-t":
			o.readHeader = true
		case a == "-i", a == "-oi":
			o.ignoreDots = true
		case strings.HasPrefix(a, "-o"), strings.HasPrefix(a, "-B"), a == "-v", a == "-bm", a == "-Am", a == "-Ac":
			// Delivery-mode and similar options of other sendmails: no meaning here.
			if a == "-o" || a == "-B" {
				_, err = value()
			}
		default:
			return o, usageError("sendmail: unknown option " + a + "\nusage: posthorn sendmail [-f FROM] [-F NAME] [-t] [-i] [RCPT...]")
		}
		if err != nil {
			return o, err
		}
	}
	return o, nil
}

// sendmail submits one message.
func sendmail(a *app, args []string, input string, stdout io.Writer) error {
	o, err := parseSendmailArgs(args)
	if err != nil {
		return err
	}
	from := smtp.Path{Null: true}
	if f := strings.Trim(o.from, "<>"); f != "" {
		if from, err = pathOf(f); err != nil {
			return fmt.Errorf("sendmail: bad sender %q", o.from)
		}
	}
	header, body := canonicalMessage(input, o.ignoreDots)
	var addrs []string
	for _, r := range o.rcpts {
		addrs = append(addrs, splitList(r)...)
	}
	if o.readHeader {
		var fromHeader []string
		header, fromHeader = headerRecipients(header)
		addrs = append(addrs, fromHeader...)
	}
	if len(addrs) == 0 {
		return usageError("sendmail: no recipients (give them as arguments, or -t)")
	}
	env := &smtpserver.Envelope{ID: a.newID(), From: from, Received: time.Now()}
	for _, addr := range addrs {
		p, err := pathOf(addr)
		if err != nil {
			return fmt.Errorf("sendmail: bad recipient %q", addr)
		}
		env.Rcpts = append(env.Rcpts, smtpserver.RcptTo{Path: p})
	}

	// A Received line for the local origin, and the fields RFC 5322 3.6
	// requires that local programs often leave out.
	var msg bytes.Buffer
	fmt.Fprintf(&msg, "Received: by %s (Posthorn sendmail) id %s;\r\n\t%s\r\n", a.cfg.Hostname, env.ID, env.Received.Format(time.RFC1123Z))
	have := headerNames(header)
	if !have["from"] && !from.Null {
		addr := mail.Address{Name: o.fromName, Address: from.String()}
		msg.WriteString("From: " + addr.String() + "\r\n")
	}
	if !have["date"] {
		msg.WriteString("Date: " + env.Received.Format(time.RFC1123Z) + "\r\n")
	}
	if !have["message-id"] {
		msg.WriteString("Message-ID: <" + strings.ToLower(env.ID) + "@" + a.cfg.Hostname + ">\r\n")
	}
	msg.WriteString(header)
	msg.WriteString("\r\n")
	msg.WriteString(body)
	if int64(msg.Len()) > a.cfg.MessageSizeLimit {
		return fmt.Errorf("sendmail: message larger than message_size_limit (%d octets)", a.cfg.MessageSizeLimit)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := a.route(ctx, env, msg.Bytes(), true); err != nil {
		var r smtp.Reply
		if errors.As(err, &r) {
			return fmt.Errorf("sendmail: %s", r.Error())
		}
		return err
	}
	fmt.Fprintf(stdout, "queued as %s\n", env.ID)
	return nil
}

// canonicalMessage splits the input into header (with CRLF line ends,
// without the blank line) and body, with every line ending in CRLF (local
// programs write LF). Without -i a line of a single "." ends the input, as
// in sendmail(8). A leading mbox "From " line is dropped.
func canonicalMessage(input string, ignoreDots bool) (header, body string) {
	var lines []string
	for _, l := range strings.SplitAfter(input, "\n") {
		if l == "" {
			continue
		}
		l = strings.TrimRight(l, "\r\n")
		if !ignoreDots && l == "." {
			break
		}
		lines = append(lines, l)
	}
	if len(lines) > 0 && strings.HasPrefix(lines[0], "From ") {
		lines = lines[1:]
	}
	var h, b strings.Builder
	inHeader := true
	for _, l := range lines {
		if inHeader && l == "" {
			inHeader = false
			continue
		}
		if inHeader && !isHeaderLine(l) {
			// Not a header (RFC 5322 2.2): the rest is body.
			inHeader = false
		}
		if inHeader {
			h.WriteString(l + "\r\n")
		} else {
			b.WriteString(l + "\r\n")
		}
	}
	return h.String(), b.String()
}

func isHeaderLine(l string) bool {
	if l[0] == ' ' || l[0] == '\t' {
		return true // continuation
	}
	i := strings.IndexByte(l, ':')
	if i <= 0 {
		return false
	}
	for _, c := range l[:i] {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// headerRecipients returns the addresses of To, Cc and Bcc, and the header
// without its Bcc fields (sendmail -t: Bcc recipients get the message, the
// others do not see them).
func headerRecipients(header string) (string, []string) {
	var out strings.Builder
	var addrs []string
	fields := splitFields(header)
	for _, f := range fields {
		name, value, _ := strings.Cut(f, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "to", "cc", "bcc":
			list, err := mail.ParseAddressList(strings.TrimSpace(value))
			if err == nil {
				for _, a := range list {
					addrs = append(addrs, a.Address)
				}
			}
			if strings.EqualFold(strings.TrimSpace(name), "bcc") {
				continue
			}
		}
		out.WriteString(f)
	}
	return out.String(), addrs
}

// splitFields splits a header into fields, each with its continuation lines.
func splitFields(header string) []string {
	var fields []string
	for _, l := range strings.SplitAfter(header, "\r\n") {
		if l == "" {
			continue
		}
		if (l[0] == ' ' || l[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1] += l
			continue
		}
		fields = append(fields, l)
	}
	return fields
}

func headerNames(header string) map[string]bool {
	names := map[string]bool{}
	for _, f := range splitFields(header) {
		if name, _, ok := strings.Cut(f, ":"); ok {
			names[strings.ToLower(strings.TrimSpace(name))] = true
		}
	}
	return names
}
