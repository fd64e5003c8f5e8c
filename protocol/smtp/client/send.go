package client

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"

	"posthorn/protocol/smtp"
	"posthorn/protocol/textline"
)

// Envelope is one message's envelope.
type Envelope struct {
	From smtp.Path
	// Mail holds the parameters the message was received with. Size is
	// ignored: the client declares the size it will really send. Body
	// "8BITMIME" is passed on when the server offers 8BITMIME; SMTPUTF8,
	// Ret and EnvID as described at Send. Auth is not sent.
	Mail  smtp.MailParams
	Rcpts []Rcpt
}

// Rcpt is one recipient with its DSN parameters.
type Rcpt struct {
	Path   smtp.Path
	Params smtp.RcptParams
}

// RcptResult is the outcome for one recipient. Delivered: the server took
// responsibility (2yz after the final dot). Permanent: a 5yz, do not retry.
// Neither: try again later.
type RcptResult struct {
	Rcpt      Rcpt
	Reply     smtp.Reply
	Delivered bool
	Permanent bool
	// Local is set when the client made the reply itself (the message could
	// not be offered to this server, or the connection was lost); the
	// server said nothing about this recipient.
	Local bool
}

// Send transmits one message and returns a result for every recipient, in
// the order of env.Rcpts.
//
// MAIL carries SIZE when the server offers it (RFC 1870 4), BODY=8BITMIME
// when the message has 8-bit octets or env.Mail.Body says 8BITMIME and the
// server offers it (RFC 6152 2), SMTPUTF8 when the server offers it and the
// message is an SMTPUTF8 message or has a UTF-8 address (RFC 6531 3.4), and
// RET and ENVID when the server offers DSN (RFC 3461 4.3, 4.4); RCPT carries
// NOTIFY and ORCPT under the same condition (RFC 3461 4.1, 4.2). Whether DSN
// was offered is in Extensions, for the caller's "relayed" notices (RFC 3461
// 4.1).
//
// msg is the message as stored: line ends are made CRLF on the way and
// lines starting with "." are dot-stuffed (RFC 5321 2.3.8, 4.5.2).
//
// Send returns an error, and no results, for an envelope without
// recipients, on a connection that is no longer usable, and when the
// connection fails before any recipient has an answer; the caller retries
// every recipient then. See the package documentation for the rest.
func (c *Conn) Send(ctx context.Context, env Envelope, msg []byte) ([]RcptResult, error) {
	if len(env.Rcpts) == 0 {
		return nil, ErrNoRecipients
	}
	if c.err != nil {
		return nil, c.unusable()
	}
	defer c.watch(ctx)()
	t := &transaction{c: c, env: env, msg: msg, info: scanMessage(msg)}
	t.results = make([]RcptResult, len(env.Rcpts))
	for i, r := range env.Rcpts {
		t.results[i].Rcpt = r
	}
	if rep, refused := t.refusal(); refused {
		for i := range t.results {
			t.decide(i, rep, true)
		}
		return t.results, nil
	}
	if err := t.run(); err != nil {
		return nil, err
	}
	return t.results, nil
}

// transaction is the state of one Send.
type transaction struct {
	c       *Conn
	env     Envelope
	msg     []byte
	info    messageInfo
	results []RcptResult
	sent    []int // indices of env.Rcpts that go out as RCPT, in order
}

// decide sets the result of recipient i from rep.
func (t *transaction) decide(i int, rep smtp.Reply, local bool) {
	r := &t.results[i]
	r.Reply, r.Local = rep, local
	r.Delivered = rep.Code/100 == 2
	r.Permanent = rep.Code/100 == 5
}

// refusal says whether this server cannot take the message at all.
func (t *transaction) refusal() (smtp.Reply, bool) {
	c := t.c
	// RFC 1870 4: "SIZE 0" or a bare SIZE sets no fixed maximum.
	if limit, err := strconv.ParseInt(c.ext["SIZE"], 10, 64); err == nil && limit > 0 && t.info.size > limit {
		// RFC 1870 6.2 (2): such a message is undeliverable to this server.
		return smtp.R(smtp.CodeExceededStore, smtp.EnhMsgTooBig, "Message size exceeds the fixed maximum of the receiving server"), true
	}
	if strings.EqualFold(t.env.Mail.Body, "BINARYMIME") {
		// RFC 3030 3: BINARYMIME content goes only with BDAT.
		return smtp.R(smtp.CodeFailed, smtp.EnhConversionUnsupported, "Binary content cannot be sent with DATA"), true
	}
	if t.info.eightBit && !c.has("8BITMIME") {
		// RFC 6152 3: the client "must not ... transfer a content that
		// contains characters outside of the US-ASCII octet range"; it
		// may convert or bounce, and Posthorn bounces.
		return smtp.R(smtp.CodeFailed, smtp.EnhConversionUnsupported, "Conversion required but not supported: the receiving server lacks 8BITMIME"), true
	}
	if !c.has("SMTPUTF8") {
		// RFC 6531 3.2: without SMTPUTF8 the client "MUST NOT transmit an
		// internationalized email address and MUST NOT transmit a mail
		// message containing internationalized mail headers".
		if t.nonASCIIAddress() {
			return smtp.R(smtp.CodeBadMailboxName, smtp.EnhNonASCIIAddr, "Non-ASCII addresses not permitted: the receiving server lacks SMTPUTF8"), true
		}
		if t.env.Mail.SMTPUTF8 && t.info.headerNonASCII {
			return smtp.R(smtp.CodeFailed, smtp.EnhUTF8Header, "UTF-8 header message cannot be transferred: the receiving server lacks SMTPUTF8"), true
		}
	}
	return smtp.Reply{}, false
}

func (t *transaction) nonASCIIAddress() bool {
	if !isASCII(t.env.From.String()) {
		return true
	}
	for _, r := range t.env.Rcpts {
		if !isASCII(r.Path.String()) {
			return true
		}
	}
	return false
}

// mailCommand builds MAIL FROM with its parameters (RFC 5321 4.1.1.2).
func (t *transaction) mailCommand() string {
	c, mp := t.c, t.env.Mail
	var b strings.Builder
	b.WriteString("MAIL FROM:<" + t.env.From.String() + ">")
	if c.has("SIZE") {
		b.WriteString(" SIZE=" + strconv.FormatInt(t.info.size, 10))
	}
	if c.has("8BITMIME") && (t.info.eightBit || strings.EqualFold(mp.Body, "8BITMIME")) {
		b.WriteString(" BODY=8BITMIME")
	}
	if c.has("SMTPUTF8") && (mp.SMTPUTF8 || t.nonASCIIAddress()) {
		b.WriteString(" SMTPUTF8")
	}
	if c.has("DSN") {
		if ret := strings.ToUpper(mp.Ret); ret == "FULL" || ret == "HDRS" {
			b.WriteString(" RET=" + ret)
		}
		if mp.EnvID != "" {
			b.WriteString(" ENVID=" + smtp.XtextEncode(mp.EnvID))
		}
	}
	return b.String()
}

// rcptCommand builds RCPT TO with its parameters (RFC 5321 4.1.1.3).
func (t *transaction) rcptCommand(r Rcpt) string {
	var b strings.Builder
	b.WriteString("RCPT TO:<" + r.Path.String() + ">")
	if t.c.has("DSN") {
		if n := notify(r.Params.Notify); n != "" {
			b.WriteString(" NOTIFY=" + n)
		}
		if r.Params.ORcpt != "" {
			// RFC 3461 4.2: ORCPT=addr-type ";" xtext.
			typ, addr, ok := strings.Cut(r.Params.ORcpt, ";")
			if !ok {
				typ, addr = "rfc822", r.Params.ORcpt
			}
			if isKeywordLike(typ) && addr != "" {
				b.WriteString(" ORCPT=" + typ + ";" + smtp.XtextEncode(addr))
			}
		}
	}
	return b.String()
}

// notify renders NOTIFY's value, or "" when it is empty or not valid
// (RFC 3461 4.1: NEVER alone, or SUCCESS, FAILURE and DELAY).
func notify(values []string) string {
	for _, v := range values {
		switch strings.ToUpper(v) {
		case "SUCCESS", "FAILURE", "DELAY":
		case "NEVER":
			if len(values) != 1 {
				return ""
			}
		default:
			return ""
		}
	}
	return strings.ToUpper(strings.Join(values, ","))
}

// run sends the commands and the data and fills in the results. It
// returns an error only when no recipient got an answer.
func (t *transaction) run() error {
	c := t.c
	mail := t.mailCommand()
	cmds := []command{{line: mail, timeout: c.to.Mail}}
	for i, r := range t.env.Rcpts {
		line := t.rcptCommand(r)
		if !safeCommand(line) {
			// A control character would end or split the command line.
			t.decide(i, smtp.R(smtp.CodeArgSyntax, smtp.EnhBadDestSyntax, "Invalid recipient address"), true)
			continue
		}
		t.sent = append(t.sent, i)
		cmds = append(cmds, command{line: line, timeout: c.to.Rcpt})
	}
	if !safeCommand(mail) {
		rep := smtp.R(smtp.CodeArgSyntax, smtp.EnhBadSenderMailbox, "Invalid sender address")
		for _, i := range t.sent {
			t.decide(i, rep, true)
		}
		return nil
	}
	if len(t.sent) == 0 {
		return nil
	}
	cmds = append(cmds, command{line: "DATA", timeout: c.to.DataInit})

	replies, err := t.commands(cmds)
	if err != nil && len(replies) < 2 && (len(replies) == 0 || replies[0].Code/100 == 2) {
		return err // no recipient has an answer
	}
	lost := lostReply(err)

	// RFC 5321 4.1.1.2: a refused MAIL refuses the whole transaction.
	if rep := replies[0]; rep.Code/100 != 2 {
		for _, i := range t.sent {
			t.decide(i, rep, false)
		}
		t.endUnsent(replies, len(cmds))
		return nil
	}
	var accepted []int
	for j, i := range t.sent {
		if 1+j >= len(replies) {
			t.decide(i, lost, true)
			continue
		}
		if rep := replies[1+j]; rep.Code/100 == 2 {
			accepted = append(accepted, i)
		} else {
			t.decide(i, rep, false)
		}
	}
	if len(accepted) == 0 {
		t.endUnsent(replies, len(cmds))
		return nil
	}
	if len(replies) < len(cmds) {
		for _, i := range accepted {
			t.decide(i, lost, true)
		}
		return nil
	}
	if rep := replies[len(cmds)-1]; rep.Code/100 != 3 {
		// DATA refused (RFC 5321 4.1.1.4): that reply applies to all. A
		// 2yz to DATA makes no sense and must not count as delivery.
		local := rep.Code/100 == 2
		if local {
			rep = smtp.R(smtp.CodeLocalError, smtp.EnhProtoOther, "Unexpected reply to DATA: "+rep.Error())
		}
		for _, i := range accepted {
			t.decide(i, rep, local)
		}
		c.needReset = true
		return nil
	}
	rep, local := t.data()
	for _, i := range accepted {
		t.decide(i, rep, local)
	}
	return nil
}

// commands sends MAIL, the RCPTs and DATA: as one group with PIPELINING
// (RFC 2920 3.1), otherwise one by one, stopping when MAIL fails or no
// RCPT was accepted. An RSET goes first when the last transaction was left
// open; it may lead a group (RFC 2920 3.1). The replies returned are those
// of cmds, in order; they may stop short of len(cmds) without an error in
// lock-step mode.
func (t *transaction) commands(cmds []command) ([]smtp.Reply, error) {
	c := t.c
	pipelined := c.has("PIPELINING")
	reset := c.needReset
	c.needReset = false
	if pipelined {
		if reset {
			cmds = append([]command{{line: "RSET", timeout: c.to.Command}}, cmds...)
		}
		replies, err := c.pipeline(cmds)
		if reset && len(replies) > 0 {
			// The RSET reply matters only as a 421, which the pipeline
			// has already copied to the commands after it.
			replies = replies[1:]
		}
		return replies, err
	}
	if reset {
		_, rep, err := c.cmd("RSET", c.to.Command)
		if err != nil {
			return nil, err
		}
		if rep.Code/100 != 2 {
			return nil, c.fail(&ReplyError{Command: "RSET", Reply: rep})
		}
	}
	var replies []smtp.Reply
	for k, cmd := range cmds {
		if k == len(cmds)-1 && !t.anyAccepted(replies) {
			break // no DATA without a recipient
		}
		_, rep, err := c.cmd(cmd.line, cmd.timeout)
		if err != nil {
			return replies, err
		}
		replies = append(replies, rep)
		if rep.Code == smtp.CodeUnavailable {
			for len(replies) < len(cmds) {
				replies = append(replies, rep)
			}
			break
		}
		if k == 0 && rep.Code/100 != 2 {
			break
		}
	}
	return replies, nil
}

// anyAccepted reports whether a RCPT among replies (MAIL's first) got 2yz.
func (t *transaction) anyAccepted(replies []smtp.Reply) bool {
	for _, rep := range replies[min(1, len(replies)):] {
		if rep.Code/100 == 2 {
			return true
		}
	}
	return false
}

// endUnsent closes a transaction that sends no data. RFC 2920 3.1: when DATA
// was pipelined and "accepted the client SMTP should send a single dot";
// in every case the next transaction starts with RSET.
func (t *transaction) endUnsent(replies []smtp.Reply, ncmds int) {
	c := t.c
	c.needReset = true
	if len(replies) == ncmds && replies[ncmds-1].Code/100 == 3 && c.err == nil {
		c.writeLine(".", c.to.DataTerm)
		if c.flush() == nil {
			c.readReply(c.to.DataTerm)
		}
	}
}

// data sends the message after 354 and returns the final reply, which
// applies to every accepted recipient (RFC 5321 4.2.5). A connection lost
// before that reply arrives gives a temporary local reply: the server may
// have taken the message, and a duplicate beats a loss (RFC 5321 6.1).
func (t *transaction) data() (smtp.Reply, bool) {
	c := t.c
	c.trace("C: ", "[message data, "+strconv.FormatInt(t.info.size, 10)+" octets]", ".")
	c.writeTimeout = c.to.DataBlock
	dw := textline.NewDotWriter(c.w)
	_, err := dw.Write(t.msg)
	if err == nil {
		err = dw.Close()
	}
	if err == nil {
		err = c.flush()
	} else {
		err = c.fail(err)
	}
	if err != nil {
		return lostReply(err), true
	}
	_, rep, err := c.readReply(c.to.DataTerm)
	if err != nil {
		return lostReply(err), true
	}
	return rep, false
}

// lostReply is the temporary result of a lost connection (RFC 3463 X.4.2
// "Bad connection"). Its text says what happened in general terms only.
func lostReply(err error) smtp.Reply {
	what := "Connection to the receiving server lost"
	var pe *ProtocolError
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		what = "Delivery attempt cancelled"
	case errors.Is(err, os.ErrDeadlineExceeded):
		what = "Timed out waiting for the receiving server"
	case errors.As(err, &pe):
		what = "Protocol error from the receiving server"
	case isTimeout(err):
		what = "Timed out waiting for the receiving server"
	}
	return smtp.R(smtp.CodeLocalError, smtp.EnhBadConnection, what)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// safeCommand reports whether line has no control characters, which could
// end the command early or smuggle another (RFC 5321 2.3.8).
func safeCommand(line string) bool {
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// isKeywordLike reports whether s is a non-empty run of letters, digits and
// hyphens (an RFC 3461 addr-type).
func isKeywordLike(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// messageInfo is what Send needs to know about a message before MAIL.
type messageInfo struct {
	// size is the octets that go out, CRLF line ends included, not counting
	// dot-stuffing or the final dot (RFC 1870 4). It counts line ends the
	// way textline.DotWriter writes them: a bare CR or LF becomes CRLF and a
	// last line without one gets one.
	size           int64
	eightBit       bool // an octet over 127 (RFC 6152)
	headerNonASCII bool // an octet over 127 before the first empty line
}

func scanMessage(msg []byte) messageInfo {
	var info messageInfo
	inHeader := true
	lineLen := 0
	for i := 0; i < len(msg); i++ {
		switch b := msg[i]; b {
		case '\r', '\n':
			if b == '\r' && i+1 < len(msg) && msg[i+1] == '\n' {
				i++
			}
			info.size += 2
			if lineLen == 0 {
				inHeader = false
			}
			lineLen = 0
		default:
			info.size++
			lineLen++
			if b >= 0x80 {
				info.eightBit = true
				info.headerNonASCII = info.headerNonASCII || inHeader
			}
		}
	}
	if lineLen > 0 {
		info.size += 2
	}
	return info
}
