package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"posthorn/protocol/sasl"
)

// Config is the parsed configuration. Keys and their meaning are fixed by
// DESIGN.md; the file format is Postfix main.cf's: "key = value" per line,
// "#" comments, a line starting with white space continues the previous one.
type Config struct {
	Hostname           string
	Domains            []string
	DataDir            string
	SMTPListen         string
	SubmissionListen   string
	SubmissionsListen  string
	POP3Listen         string
	POP3SListen        string
	IMAPListen         string
	IMAPSListen        string
	TLSCert            string
	TLSKey             string
	AllowPlaintextAuth bool
	DNSResolvers       []string
	OutboundPort       int
	RetryMin           time.Duration
	RetryMax           time.Duration
	DelayWarning       time.Duration
	MaxQueueLifetime   time.Duration
	MessageSizeLimit   int64
	MaxRecipients      int
	SMTPCommandTimeout time.Duration
	MaxConnsPerIP      int
	MaxConns           int
	MaxConnsPerAccount int
	MaxConnRatePerIP   int
	AuthFailureDelay   time.Duration
	AuthFailureMax     time.Duration
	AuthFailureWindow  time.Duration
	AuthLockout        int
	SoftErrorLimit     int
	HardErrorLimit     int
	ErrorDelay         time.Duration
	RecipientDelimiter string
	LogLevel           string
	LogFormat          string
}

// setting is one key's raw value and where it came from, for error messages.
type setting struct {
	value string
	where string // "posthorn.conf:12" or "-o"
}

// configKey describes one key: its default and how to apply a value.
type configKey struct {
	def   func() string
	apply func(c *Config, v string) error
}

// Limits on the config file itself, so that a wrong path (a log file, a
// device) fails clearly instead of being read without end.
const (
	maxConfigSize = 1 << 20
	maxConfigLine = 64 << 10
)

// configKeys is the one table of keys. Defaults are for a production
// install; `make run` overrides them for loopback.
var configKeys = map[string]configKey{
	"hostname": {def: defaultHostname, apply: func(c *Config, v string) error {
		if !isDomainName(v) {
			return errors.New("not a fully qualified domain name")
		}
		c.Hostname = strings.ToLower(v)
		return nil
	}},
	"domains": {def: func() string { return "" }, apply: func(c *Config, v string) error {
		c.Domains = nil
		for _, d := range splitList(v) {
			if !isDomainName(d) {
				return fmt.Errorf("%q is not a domain name", d)
			}
			c.Domains = append(c.Domains, strings.ToLower(d))
		}
		return nil
	}},
	"data_dir":             {def: constant("/var/lib/posthorn"), apply: func(c *Config, v string) error { c.DataDir = v; return notEmpty(v) }},
	"smtp_listen":          {def: constant(":25"), apply: listenKey(func(c *Config) *string { return &c.SMTPListen })},
	"submission_listen":    {def: constant(":587"), apply: listenKey(func(c *Config) *string { return &c.SubmissionListen })},
	"submissions_listen":   {def: constant(":465"), apply: listenKey(func(c *Config) *string { return &c.SubmissionsListen })},
	"pop3_listen":          {def: constant(":110"), apply: listenKey(func(c *Config) *string { return &c.POP3Listen })},
	"pop3s_listen":         {def: constant(":995"), apply: listenKey(func(c *Config) *string { return &c.POP3SListen })},
	"imap_listen":          {def: constant(":143"), apply: listenKey(func(c *Config) *string { return &c.IMAPListen })},
	"imaps_listen":         {def: constant(":993"), apply: listenKey(func(c *Config) *string { return &c.IMAPSListen })},
	"tls_cert":             {def: constant(""), apply: func(c *Config, v string) error { c.TLSCert = v; return nil }},
	"tls_key":              {def: constant(""), apply: func(c *Config, v string) error { c.TLSKey = v; return nil }},
	"allow_plaintext_auth": {def: constant("no"), apply: func(c *Config, v string) (err error) { c.AllowPlaintextAuth, err = parseBool(v); return err }},
	"dns_resolvers": {def: constant(""), apply: func(c *Config, v string) error {
		c.DNSResolvers = nil
		for _, hp := range splitList(v) {
			if _, _, err := net.SplitHostPort(hp); err != nil {
				hp = net.JoinHostPort(hp, "53")
			}
			c.DNSResolvers = append(c.DNSResolvers, hp)
		}
		return nil
	}},
	"outbound_port": {def: constant("25"), apply: func(c *Config, v string) error {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return errors.New("not a port number (1-65535)")
		}
		c.OutboundPort = p
		return nil
	}},
	"retry_min":          {def: constant("5m"), apply: durationKey(func(c *Config) *time.Duration { return &c.RetryMin })},
	"retry_max":          {def: constant("1h"), apply: durationKey(func(c *Config) *time.Duration { return &c.RetryMax })},
	"delay_warning":      {def: constant("4h"), apply: durationKey(func(c *Config) *time.Duration { return &c.DelayWarning })},
	"max_queue_lifetime": {def: constant("5d"), apply: durationKey(func(c *Config) *time.Duration { return &c.MaxQueueLifetime })},
	"message_size_limit": {def: constant("26214400"), apply: func(c *Config, v string) error {
		n, err := parseSize(v)
		// A limit below 64 KiB makes ordinary mail bounce; above 1 GiB a
		// message no longer fits comfortably in memory and in one bbolt value.
		if err != nil || n < 64<<10 || n > 1<<30 {
			return errors.New("not a size between 64K and 1G (bytes, or with K, M or G)")
		}
		c.MessageSizeLimit = n
		return nil
	}},
	"max_recipients": {def: constant("1000"), apply: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		// RFC 5321 4.5.3.1.8: at least 100 recipients must be accepted.
		if err != nil || n < 100 || n > 100000 {
			return errors.New("not a number between 100 (RFC 5321 4.5.3.1.8) and 100000")
		}
		c.MaxRecipients = n
		return nil
	}},
	// RFC 5321 4.5.3.2.7: the server's wait for the next command SHOULD be
	// at least 5 minutes; a shorter one (as Postfix's smtpd_timeout under
	// load) frees sessions that idle or trickle sooner.
	"smtp_command_timeout": {def: constant("5m"), apply: func(c *Config, v string) error {
		d, err := parseDuration(v)
		if err != nil || d < time.Second || d > time.Hour {
			return errors.New("not a duration between 1s and 1h")
		}
		c.SMTPCommandTimeout = d
		return nil
	}},
	"max_connections_per_ip": {def: constant("50"), apply: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			return errors.New("not a number between 1 and 100000")
		}
		c.MaxConnsPerIP = n
		return nil
	}},
	"max_connections": {def: constant("2000"), apply: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000000 {
			return errors.New("not a number between 1 and 1000000")
		}
		c.MaxConns = n
		return nil
	}},
	"max_connections_per_account": {def: constant("20"), apply: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			return errors.New("not a number between 1 and 100000")
		}
		c.MaxConnsPerAccount = n
		return nil
	}},
	// Abuse controls (docs/operations.md, "Abuse controls").
	"max_connection_rate_per_ip": {def: constant("600"), apply: intKey(0, 1000000, func(c *Config) *int { return &c.MaxConnRatePerIP })},
	"auth_failure_delay":         {def: constant("200ms"), apply: durationKey(func(c *Config) *time.Duration { return &c.AuthFailureDelay })},
	"auth_failure_delay_max":     {def: constant("15s"), apply: durationKey(func(c *Config) *time.Duration { return &c.AuthFailureMax })},
	"auth_failure_window":        {def: constant("15m"), apply: durationKey(func(c *Config) *time.Duration { return &c.AuthFailureWindow })},
	"auth_lockout_failures":      {def: constant("10"), apply: intKey(0, sasl.LimiterMaxLockout, func(c *Config) *int { return &c.AuthLockout })},
	"soft_error_limit":           {def: constant("10"), apply: intKey(1, 1000, func(c *Config) *int { return &c.SoftErrorLimit })},
	"hard_error_limit":           {def: constant("20"), apply: intKey(1, 1000, func(c *Config) *int { return &c.HardErrorLimit })},
	"error_delay":                {def: constant("1s"), apply: durationKey(func(c *Config) *time.Duration { return &c.ErrorDelay })},
	"recipient_delimiter": {def: constant("+"), apply: func(c *Config, v string) error {
		for _, r := range v {
			if r == '@' || r == '"' || r == '\\' || r <= ' ' || r >= 0x7f {
				return fmt.Errorf("%q cannot be a delimiter", r)
			}
		}
		c.RecipientDelimiter = v
		return nil
	}},
	"log_level": {def: constant("info"), apply: func(c *Config, v string) error {
		if !slices.Contains([]string{"debug", "info", "warn", "error"}, v) {
			return errors.New("not one of debug, info, warn, error")
		}
		c.LogLevel = v
		return nil
	}},
	"log_format": {def: constant("text"), apply: func(c *Config, v string) error {
		if v != "text" && v != "json" {
			return errors.New("not one of text, json")
		}
		c.LogFormat = v
		return nil
	}},
}

// ConfigError names the key and where its value came from.
type ConfigError struct {
	Where string // "file:line" or "-o"
	Key   string
	Err   error
}

func (e *ConfigError) Error() string {
	if e.Key == "" {
		return e.Where + ": " + e.Err.Error()
	}
	return e.Where + ": " + e.Key + ": " + e.Err.Error()
}

// parseConfigFile reads "key = value" lines. It checks the syntax and that
// every key is known and set once; values are checked by buildConfig.
func parseConfigFile(r io.Reader, name string) (map[string]setting, error) {
	out := make(map[string]setting)
	br := bufio.NewReaderSize(io.LimitReader(r, maxConfigSize+1), 4096)
	var lastKey string
	total := 0
	for lineNo := 1; ; lineNo++ {
		where := name + ":" + strconv.Itoa(lineNo)
		line, err := readConfigLine(br)
		total += len(line) + 1
		if total > maxConfigSize {
			return nil, &ConfigError{Where: where, Err: errors.New("config file larger than 1 MiB")}
		}
		if errors.Is(err, errConfigLineTooLong) {
			return nil, &ConfigError{Where: where, Err: err}
		}
		if err != nil && line == "" {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, &ConfigError{Where: where, Err: err}
		}
		if !utf8.ValidString(line) {
			return nil, &ConfigError{Where: where, Err: errors.New("not valid UTF-8")}
		}
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || trimmed[0] == '#':
			// comment or blank line
		case line[0] == ' ' || line[0] == '\t':
			// Continuation of the previous value, as in Postfix main.cf.
			if lastKey == "" {
				return nil, &ConfigError{Where: where, Err: errors.New("continuation line without a key before it")}
			}
			s := out[lastKey]
			s.value = strings.TrimSpace(s.value + " " + trimmed)
			out[lastKey] = s
			continue
		default:
			key, value, ok := strings.Cut(trimmed, "=")
			key = strings.TrimSpace(key)
			if !ok {
				return nil, &ConfigError{Where: where, Err: fmt.Errorf("expected \"key = value\", got %q", truncate(trimmed, 40))}
			}
			if _, known := configKeys[key]; !known {
				return nil, &ConfigError{Where: where, Key: key, Err: errors.New("unknown key")}
			}
			if prev, dup := out[key]; dup {
				return nil, &ConfigError{Where: where, Key: key, Err: fmt.Errorf("already set at %s", prev.where)}
			}
			out[key] = setting{value: strings.TrimSpace(value), where: where}
			lastKey = key
			continue
		}
		lastKey = ""
		if err != nil {
			return out, nil
		}
	}
}

var errConfigLineTooLong = errors.New("line longer than 64 KiB")

// readConfigLine reads one line of at most maxConfigLine octets.
func readConfigLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > maxConfigLine {
			return "", errConfigLineTooLong
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		return s, err
	}
}

// parseOverride parses one -o key=value.
func parseOverride(kv string) (string, setting, error) {
	key, value, ok := strings.Cut(kv, "=")
	key = strings.TrimSpace(key)
	if !ok {
		return "", setting{}, &ConfigError{Where: "-o", Err: fmt.Errorf("expected key=value, got %q", truncate(kv, 40))}
	}
	if _, known := configKeys[key]; !known {
		return "", setting{}, &ConfigError{Where: "-o", Key: key, Err: errors.New("unknown key")}
	}
	return key, setting{value: strings.TrimSpace(value), where: "-o " + key}, nil
}

// buildConfig applies defaults, then the file, then the overrides.
func buildConfig(settings map[string]setting) (*Config, error) {
	c := &Config{}
	keys := make([]string, 0, len(configKeys))
	for k := range configKeys {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic: the first error reported is stable
	for _, k := range keys {
		ck := configKeys[k]
		s, ok := settings[k]
		if !ok {
			s = setting{value: ck.def(), where: "default"}
		}
		if err := ck.apply(c, s.value); err != nil {
			return nil, &ConfigError{Where: s.where, Key: k, Err: err}
		}
	}
	if len(c.Domains) == 0 {
		c.Domains = []string{c.Hostname}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		where := "default"
		if s, ok := settings["tls_cert"]; ok {
			where = s.where
		} else if s, ok := settings["tls_key"]; ok {
			where = s.where
		}
		return nil, &ConfigError{Where: where, Key: "tls_cert", Err: errors.New("tls_cert and tls_key must be set together")}
	}
	if c.RetryMin > c.RetryMax {
		return nil, &ConfigError{Where: settings["retry_min"].where, Key: "retry_min", Err: errors.New("greater than retry_max")}
	}
	if c.AuthFailureDelay > c.AuthFailureMax {
		key := "auth_failure_delay"
		if _, ok := settings[key]; !ok {
			key = "auth_failure_delay_max"
		}
		return nil, &ConfigError{Where: settings[key].where, Key: "auth_failure_delay", Err: errors.New("greater than auth_failure_delay_max")}
	}
	return c, nil
}

// loadConfig reads the config file (path "" means ./posthorn.conf if it
// exists, else built-in defaults) and applies the -o overrides.
func loadConfig(path string, overrides []string) (*Config, error) {
	settings := make(map[string]setting)
	explicit := path != ""
	if !explicit {
		path = "posthorn.conf"
	}
	f, err := os.Open(path)
	switch {
	case err == nil:
		defer f.Close()
		settings, err = parseConfigFile(f, path)
		if err != nil {
			return nil, err
		}
	case explicit || !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("config: %w", err)
	}
	for _, kv := range overrides {
		k, s, err := parseOverride(kv)
		if err != nil {
			return nil, err
		}
		settings[k] = s
	}
	return buildConfig(settings)
}

func constant(v string) func() string { return func() string { return v } }

func defaultHostname() string {
	h, err := os.Hostname()
	if err != nil || !isDomainName(h) {
		return "localhost"
	}
	return h
}

func notEmpty(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func listenKey(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v != "" {
			if _, port, err := net.SplitHostPort(v); err != nil {
				return errors.New("not host:port (or empty to disable)")
			} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
				return errors.New("bad port")
			}
		}
		*field(c) = v
		return nil
	}
}

// intKey accepts a whole number from lo to hi.
func intKey(lo, hi int, field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("not a number between %d and %d", lo, hi)
		}
		*field(c) = n
		return nil
	}
}

func durationKey(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := parseDuration(v)
		if err != nil {
			return err
		}
		if d <= 0 {
			return errors.New("must be positive")
		}
		*field(c) = d
		return nil
	}
}

// parseDuration accepts Go durations plus a "d" unit for days: "5d", "1d12h".
func parseDuration(v string) (time.Duration, error) {
	var days time.Duration
	if i := strings.IndexByte(v, 'd'); i >= 0 {
		n, err := strconv.Atoi(v[:i])
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("invalid duration %q", v)
		}
		days = time.Duration(n) * 24 * time.Hour
		v = v[i+1:]
		if v == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use 30s, 5m, 4h, 5d)", v)
	}
	return days + d, nil
}

// parseSize accepts bytes with an optional K, M or G (binary) suffix.
func parseSize(v string) (int64, error) {
	mult := int64(1)
	if n := len(v); n > 0 {
		switch v[n-1] {
		case 'k', 'K':
			mult, v = 1<<10, v[:n-1]
		case 'm', 'M':
			mult, v = 1<<20, v[:n-1]
		case 'g', 'G':
			mult, v = 1<<30, v[:n-1]
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q", v)
	}
	return n * mult, nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "true", "on", "1":
		return true, nil
	case "no", "false", "off", "0":
		return false, nil
	}
	return false, errors.New("not yes or no")
}

func splitList(v string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		out = append(out, f)
	}
	return out
}

// isDomainName checks LDH labels (RFC 1035 2.3.1, RFC 1123 2.1).
func isDomainName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
