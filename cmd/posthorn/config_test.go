package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestConfigFile(t *testing.T) {
	in := `# Posthorn test config
hostname = mx.example.org
domains = example.org,
    example.net
data_dir=/tmp/x

smtp_listen = 127.0.0.1:2525
submission_listen =
message_size_limit = 10M
max_queue_lifetime = 5d
delay_warning = 1d12h
allow_plaintext_auth = yes
dns_resolvers = 127.0.0.1:5353, 127.0.0.2
`
	settings, err := parseConfigFile(strings.NewReader(in), "test.conf")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := buildConfig(settings)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"hostname", cfg.Hostname, "mx.example.org"},
		{"domains", strings.Join(cfg.Domains, ","), "example.org,example.net"},
		{"data_dir", cfg.DataDir, "/tmp/x"},
		{"smtp_listen", cfg.SMTPListen, "127.0.0.1:2525"},
		{"submission_listen", cfg.SubmissionListen, ""},
		{"imap_listen default", cfg.IMAPListen, ":143"},
		{"message_size_limit", cfg.MessageSizeLimit, int64(10 << 20)},
		{"max_queue_lifetime", cfg.MaxQueueLifetime, 5 * 24 * time.Hour},
		{"delay_warning", cfg.DelayWarning, 36 * time.Hour},
		{"allow_plaintext_auth", cfg.AllowPlaintextAuth, true},
		{"dns_resolvers", strings.Join(cfg.DNSResolvers, ","), "127.0.0.1:5353,127.0.0.2:53"},
		{"max_recipients default", cfg.MaxRecipients, 1000},
		{"recipient_delimiter default", cfg.RecipientDelimiter, "+"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// A config error names the key and the line (issue: "A config error names the key and line").
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"hostname = a.example\nbogus_key = 1\n", "test.conf:2: bogus_key: unknown key"},
		{"\n\nmessage_size_limit = 10x\n", "test.conf:3: message_size_limit: not a size"},
		{"max_recipients = 99\n", "test.conf:1: max_recipients: not a number between 100"},
		{"hostname = a\nhostname = b\n", "test.conf:2: hostname: already set at test.conf:1"},
		{"just words\n", "test.conf:1: expected \"key = value\""},
		{"  continued\n", "test.conf:1: continuation line without a key"},
		{"smtp_listen = 25\n", "test.conf:1: smtp_listen: not host:port"},
		{"retry_min = 2h\nretry_max = 1h\n", "test.conf:1: retry_min: greater than retry_max"},
		{"delay_warning = soon\n", "test.conf:1: delay_warning: invalid duration"},
		{"tls_cert = /x.pem\n", "test.conf:1: tls_cert: tls_cert and tls_key must be set together"},
		{"allow_plaintext_auth = maybe\n", "test.conf:1: allow_plaintext_auth: not yes or no"},
		{"outbound_port = 70000\n", "test.conf:1: outbound_port: not a port number"},
		{"domains = exa mple..org\n", "test.conf:1: domains: \"mple..org\" is not a domain name"},
		{"hostname = a\xffb\n", "test.conf:1: not valid UTF-8"},
	} {
		settings, err := parseConfigFile(strings.NewReader(tc.in), "test.conf")
		if err == nil {
			_, err = buildConfig(settings)
		}
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("config %q: error %v, want prefix %q", tc.in, err, tc.want)
		}
		var ce *ConfigError
		if err != nil && !errors.As(err, &ce) {
			t.Errorf("config %q: error %T is not a *ConfigError", tc.in, err)
		}
	}
}

func TestConfigOverrides(t *testing.T) {
	cfg, err := loadConfig("", []string{"hostname=mx.example.net", "message_size_limit = 1M", "domains=a.example"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hostname != "mx.example.net" || cfg.MessageSizeLimit != 1<<20 || cfg.Domains[0] != "a.example" {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
	if _, err := loadConfig("", []string{"nope=1"}); err == nil || err.Error() != "-o: nope: unknown key" {
		t.Fatalf("unknown override: %v", err)
	}
	if _, err := loadConfig("", []string{"max_recipients=5"}); err == nil || !strings.HasPrefix(err.Error(), "-o max_recipients: max_recipients:") {
		t.Fatalf("bad override value: %v", err)
	}
	if _, err := loadConfig("/nonexistent/posthorn.conf", nil); err == nil {
		t.Fatal("missing explicit config file accepted")
	}
}

func TestConfigLimits(t *testing.T) {
	long := "hostname = " + strings.Repeat("a", maxConfigLine+10) + "\n"
	if _, err := parseConfigFile(strings.NewReader(long), "t"); err == nil || !strings.Contains(err.Error(), "line longer") {
		t.Fatalf("over-long line: %v", err)
	}
	big := strings.Repeat("# comment line\n", maxConfigSize/15+10)
	if _, err := parseConfigFile(strings.NewReader(big), "t"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("over-large file: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"5d": 5 * 24 * time.Hour, "1d12h": 36 * time.Hour, "30s": 30 * time.Second, "4h": 4 * time.Hour, "0d1m": time.Minute,
	} {
		got, err := parseDuration(in)
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "5", "-1d", "1x", "1d1d", "99999d"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) accepted", in)
		}
	}
}

// FuzzConfig: the parser never panics, and whatever it accepts builds or
// fails with a *ConfigError naming where.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"hostname = mx.example.org\ndomains = example.org\n",
		"# comment\n\nsmtp_listen = 127.0.0.1:25\n  \n",
		"domains = a.example,\n b.example\n",
		"message_size_limit = 10M\nmax_recipients = 100\n",
		"retry_min = 1m\nretry_max = 2h\ndelay_warning = 4h\nmax_queue_lifetime = 5d\n",
		"=\n", " = x\n", "key\n", "\x00\n", "hostname = a\r\n", "\xff=\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		settings, err := parseConfigFile(strings.NewReader(in), "f")
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Where, "f:") {
				t.Fatalf("error %v does not say where", err)
			}
			return
		}
		for k, s := range settings {
			if _, ok := configKeys[k]; !ok {
				t.Fatalf("unknown key %q accepted", k)
			}
			if !strings.HasPrefix(s.where, "f:") {
				t.Fatalf("setting %q has no position", k)
			}
		}
		if _, err := buildConfig(settings); err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Key == "" {
				t.Fatalf("build error %v does not name a key", err)
			}
		}
	})
}

// The example config in docs/ parses, and each key there has its default.
func TestExampleConfig(t *testing.T) {
	cfg, err := loadConfig("../../docs/posthorn.conf.example", nil)
	if err != nil {
		t.Fatal(err)
	}
	def, err := buildConfig(map[string]setting{
		"hostname": {value: "mx.example.org"}, "domains": {value: "example.org, example.net"},
	})
	if err != nil {
		t.Fatal(err)
	}
	def.DNSResolvers, cfg.DNSResolvers = nil, nil
	if fmt.Sprintf("%+v", cfg) != fmt.Sprintf("%+v", def) {
		t.Fatalf("the example differs from the defaults:\n example %+v\ndefaults %+v", cfg, def)
	}
}
