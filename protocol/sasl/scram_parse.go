package sasl

import (
	"encoding/base64"
	"strings"
)

// clientFirstMessage is a parsed client-first-message (RFC 5802 7):
//
//	client-first-message      = gs2-header client-first-message-bare
//	gs2-header                = gs2-cbind-flag "," [ authzid ] ","
//	client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
type clientFirstMessage struct {
	gs2Header string // as received, e.g. "n,,"; the client echoes it in "c="
	authzid   string // decoded saslname; "" when absent
	username  string // decoded saslname
	nonce     string // c-nonce
	bare      string // client-first-message-bare as received, for AuthMessage
}

// parseClientFirst parses a client-first-message. Errors wrap ErrMalformed.
func parseClientFirst(msg []byte) (clientFirstMessage, error) {
	var cf clientFirstMessage
	if err := checkLength(MechSCRAMSHA256, msg); err != nil {
		return cf, err
	}
	// RFC 5802 7 value-safe-char: UTF-8, no NUL.
	if !validText(msg) {
		return cf, malformed(MechSCRAMSHA256, "invalid UTF-8")
	}
	s := string(msg)
	switch {
	case strings.HasPrefix(s, "n,"), strings.HasPrefix(s, "y,"):
		// "n": no channel binding; "y": the client supports it but
		// thinks the server does not, which is true here (RFC 5802 6).
	case strings.HasPrefix(s, "p="):
		// RFC 5802 6: "p" with a channel binding the server does not
		// support MUST fail; -PLUS is not offered.
		return cf, malformed(MechSCRAMSHA256, "channel binding not supported")
	default:
		// RFC 5802 5: the message starts with "n", "y" or "p", otherwise
		// authentication MUST fail.
		return cf, malformed(MechSCRAMSHA256, "bad gs2-cbind-flag")
	}
	rest := s[2:]
	i := strings.IndexByte(rest, ',')
	if i < 0 {
		return cf, malformed(MechSCRAMSHA256, "gs2-header not terminated")
	}
	if a := rest[:i]; a != "" {
		if !strings.HasPrefix(a, "a=") {
			return cf, malformed(MechSCRAMSHA256, "bad authzid")
		}
		var ok bool
		if cf.authzid, ok = decodeSASLName(a[2:]); !ok {
			return cf, malformed(MechSCRAMSHA256, "bad authzid encoding")
		}
	}
	cf.gs2Header = s[:2+i+1]
	cf.bare = rest[i+1:]

	// No value holds a raw ",": saslname escapes it, printable excludes it.
	attrs := strings.Split(cf.bare, ",")
	// RFC 5802 5.1 "m": reserved; its presence MUST cause failure.
	if strings.HasPrefix(attrs[0], "m=") {
		return cf, malformed(MechSCRAMSHA256, "mandatory extension not supported")
	}
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return cf, malformed(MechSCRAMSHA256, "want n=username,r=nonce")
	}
	var ok bool
	if cf.username, ok = decodeSASLName(attrs[0][2:]); !ok {
		// RFC 5802 5.1 "n": "=" not followed by "2C" or "3D" MUST fail.
		return cf, malformed(MechSCRAMSHA256, "bad username encoding")
	}
	if cf.nonce = attrs[1][2:]; !isPrintable(cf.nonce) {
		return cf, malformed(MechSCRAMSHA256, "bad nonce")
	}
	if !validExtensions(attrs[2:]) {
		return cf, malformed(MechSCRAMSHA256, "bad extension")
	}
	return cf, nil
}

// clientFinalMessage is a parsed client-final-message (RFC 5802 7):
//
//	client-final-message-without-proof = channel-binding "," nonce ["," extensions]
//	client-final-message = client-final-message-without-proof "," proof
type clientFinalMessage struct {
	channelBinding []byte // decoded "c=" value: cbind-input
	nonce          string // "r=" value: c-nonce s-nonce
	proof          []byte // decoded "p=" value: ClientProof
	withoutProof   string // as received, for AuthMessage
}

// parseClientFinal parses a client-final-message. Errors wrap ErrMalformed.
func parseClientFinal(msg []byte) (clientFinalMessage, error) {
	var cf clientFinalMessage
	if err := checkLength(MechSCRAMSHA256, msg); err != nil {
		return cf, err
	}
	if !validText(msg) {
		return cf, malformed(MechSCRAMSHA256, "invalid UTF-8")
	}
	s := string(msg)
	attrs := strings.Split(s, ",")
	if len(attrs) < 3 {
		return cf, malformed(MechSCRAMSHA256, "want c=,r=,p=")
	}
	var ok bool
	if !strings.HasPrefix(attrs[0], "c=") {
		return cf, malformed(MechSCRAMSHA256, "missing channel binding")
	}
	if cf.channelBinding, ok = decodeBase64(attrs[0][2:]); !ok {
		return cf, malformed(MechSCRAMSHA256, "bad channel binding encoding")
	}
	if !strings.HasPrefix(attrs[1], "r=") || !isPrintable(attrs[1][2:]) {
		return cf, malformed(MechSCRAMSHA256, "bad nonce")
	}
	cf.nonce = attrs[1][2:]
	last := attrs[len(attrs)-1]
	if !strings.HasPrefix(last, "p=") {
		return cf, malformed(MechSCRAMSHA256, "proof must come last")
	}
	if cf.proof, ok = decodeBase64(last[2:]); !ok {
		return cf, malformed(MechSCRAMSHA256, "bad proof encoding")
	}
	if !validExtensions(attrs[2 : len(attrs)-1]) {
		return cf, malformed(MechSCRAMSHA256, "bad extension")
	}
	cf.withoutProof = s[:len(s)-len(last)-1]
	return cf, nil
}

// decodeSASLName decodes a saslname (RFC 5802 7):
//
//	saslname = 1*(value-safe-char / "=2C" / "=3D")
//
// The caller has checked UTF-8 and NUL, and split on ",".
func decodeSASLName(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	if !strings.Contains(s, "=") {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '=' {
			b.WriteByte(c)
			continue
		}
		switch s[i+1 : min(i+3, len(s))] {
		case "2C":
			b.WriteByte(',')
		case "3D":
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

// isPrintable reports whether s is a non-empty run of RFC 5802 7 printable:
// %x21-2B / %x2D-7E.
func isPrintable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// validExtensions checks optional extensions (RFC 5802 7 attr-val = ALPHA "="
// value): their syntax must hold, their meaning is ignored (RFC 5802 5.1:
// unknown optional extensions MUST be ignored), except the reserved "m",
// which MUST cause failure.
func validExtensions(attrs []string) bool {
	for _, a := range attrs {
		if len(a) < 3 || a[1] != '=' || a[0] == 'm' || !isAlpha(a[0]) {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// decodeBase64 decodes RFC 5802 7 base64: padded, standard alphabet, and
// nothing else (encoding/base64 would silently skip CR and LF).
func decodeBase64(s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !('0' <= c && c <= '9') && c != '+' && c != '/' && c != '=' {
			return nil, false
		}
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	return b, err == nil
}
