package dsn

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	arrival = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	attempt = time.Date(2025, 3, 1, 14, 5, 0, 0, time.UTC)
	until   = time.Date(2025, 3, 6, 10, 0, 0, 0, time.UTC)
)

const original = "Received: from client.example (client.example [192.0.2.9])\r\n" +
	"\tby mx.posthorn.test with ESMTP id 0123456789ABC;\r\n" +
	"\tSat, 01 Mar 2025 10:00:00 +0000\r\n" +
	"From: Alice <alice@posthorn.test>\r\n" +
	"To: bob@remote.example\r\n" +
	"Subject: hello\r\n" +
	"Message-ID: <m1@posthorn.test>\r\n" +
	"\r\n" +
	"Body line one.\r\n" +
	"..leading dot\r\n"

func baseReport() Report {
	return Report{
		ReportingMTA: "mx.posthorn.test",
		Sender:       "alice@posthorn.test",
		Date:         attempt,
		MessageID:    "0123456789ABC.dsn@mx.posthorn.test",
		Arrival:      arrival,
		Original:     []byte(original),
	}
}

// checkLines asserts CRLF line ends and the RFC 5322 2.1.1 line limit.
func checkLines(t *testing.T, msg []byte) {
	t.Helper()
	for i, line := range bytes.SplitAfter(msg, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if !bytes.HasSuffix(line, []byte("\r\n")) {
			t.Fatalf("line %d does not end in CRLF: %q", i+1, line)
		}
		if bytes.Count(line, []byte("\r")) != 1 {
			t.Fatalf("line %d has a bare CR: %q", i+1, line)
		}
		if n := len(line) - 2; n > MaxLine {
			t.Fatalf("line %d is %d octets", i+1, n)
		}
	}
}

func TestComposeParseFailedHeaders(t *testing.T) {
	r := baseReport()
	r.EnvID = "QQ314159"
	r.Ret = "HDRS"
	r.Recipients = []Recipient{{
		Original:       "rfc822;Bob@Remote.Example",
		Final:          "bob@remote.example",
		Action:         Failed,
		Status:         "5.1.1",
		RemoteMTA:      "mx1.remote.example",
		DiagnosticType: DiagnosticSMTP,
		Diagnostic:     "550 5.1.1 <bob@remote.example>: Recipient address rejected",
		LastAttempt:    attempt,
	}}
	msg := Compose(r)
	checkLines(t, msg)
	m, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"From":           "Mail Delivery System <MAILER-DAEMON@mx.posthorn.test>",
		"To":             "<alice@posthorn.test>",
		"Subject":        SubjectFailed,
		"Date":           "Sat, 01 Mar 2025 14:05:00 +0000",
		"Message-Id":     "<0123456789ABC.dsn@mx.posthorn.test>",
		"Auto-Submitted": "auto-replied",
		"Mime-Version":   "1.0",
		"Content-Type":   `multipart/report; report-type=delivery-status; boundary="` + makeBoundary(r.MessageID, r.Original) + `"`,
	}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if m.Header.Get("Content-Transfer-Encoding") != "" {
		t.Errorf("ASCII DSN labelled %q", m.Header.Get("Content-Transfer-Encoding"))
	}
	wantMsg := map[string]string{
		"Original-Envelope-Id": "QQ314159",
		"Reporting-Mta":        "dns; mx.posthorn.test",
		"Arrival-Date":         "Sat, 01 Mar 2025 10:00:00 +0000",
	}
	if !reflect.DeepEqual(flat(m.PerMessage), wantMsg) {
		t.Errorf("per-message fields %v, want %v", flat(m.PerMessage), wantMsg)
	}
	if len(m.PerRecipient) != 1 {
		t.Fatalf("%d recipient groups", len(m.PerRecipient))
	}
	wantRcpt := map[string]string{
		"Original-Recipient": "rfc822;Bob@Remote.Example",
		"Final-Recipient":    "rfc822; bob@remote.example",
		"Action":             "failed",
		"Status":             "5.1.1",
		"Remote-Mta":         "dns; mx1.remote.example",
		"Diagnostic-Code":    "smtp; 550 5.1.1 <bob@remote.example>: Recipient address rejected",
		"Last-Attempt-Date":  "Sat, 01 Mar 2025 14:05:00 +0000",
	}
	if !reflect.DeepEqual(flat(m.PerRecipient[0]), wantRcpt) {
		t.Errorf("per-recipient fields\n%v\nwant\n%v", flat(m.PerRecipient[0]), wantRcpt)
	}
	if m.ReturnedType != "text/rfc822-headers" {
		t.Errorf("third part %q", m.ReturnedType)
	}
	if want := original[:strings.Index(original, "\r\n\r\n")+2]; string(m.Returned) != want {
		t.Errorf("returned %q, want %q", m.Returned, want)
	}
	if human := strings.ReplaceAll(m.Human, "\r\n", " "); !strings.Contains(human,
		"<bob@remote.example>: delivery failed (5.1.1): host mx1.remote.example said: 550 5.1.1 <bob@remote.example>: Recipient address rejected") {
		t.Errorf("human part:\n%s", m.Human)
	}
	checkRoundTrip(t, r, m.Report)
}

func TestComposeParseFailedFull(t *testing.T) {
	r := baseReport()
	r.Ret = "FULL"
	r.Recipients = []Recipient{
		{Final: "carol@remote.example", Action: Failed, Status: "5.1.2",
			DiagnosticType: DiagnosticLocal, Diagnostic: "Host or domain name not found: remote.example", LastAttempt: attempt},
		{Final: "dave@other.example", Action: Delayed, Status: "4.4.1", RemoteMTA: "mx.other.example",
			DiagnosticType: DiagnosticLocal, Diagnostic: "connect to mx.other.example[192.0.2.7]:25: connection refused",
			LastAttempt: attempt, WillRetryUntil: until},
	}
	msg := Compose(r)
	checkLines(t, msg)
	m, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if m.ReturnedType != "message/rfc822" || string(m.Returned) != original {
		t.Errorf("returned %q %q", m.ReturnedType, m.Returned)
	}
	if got := m.Header.Get("Subject"); got != SubjectFailed {
		t.Errorf("Subject %q", got)
	}
	if m.PerMessage.Get("Original-Envelope-Id") != "" {
		t.Error("Original-Envelope-Id without ENVID (RFC 3464 2.2.1)")
	}
	if got := m.PerRecipient[0].Get("Original-Recipient"); got != "" {
		t.Errorf("Original-Recipient without ORCPT: %q", got)
	}
	if got := m.PerRecipient[0].Get("Remote-Mta"); got != "" {
		t.Errorf("Remote-MTA without a remote: %q", got)
	}
	if got := m.PerRecipient[1].Get("Will-Retry-Until"); got != "Thu, 06 Mar 2025 10:00:00 +0000" {
		t.Errorf("Will-Retry-Until %q", got)
	}
	checkRoundTrip(t, r, m.Report)
}

func TestComposeParseDelayed(t *testing.T) {
	r := baseReport()
	r.Ret = "FULL" // RFC 3461 6.2: no failure, so headers only
	r.EnvID = "env-7"
	r.Recipients = []Recipient{{
		Original: "rfc822;bob@remote.example", Final: "bob@remote.example",
		Action: Delayed, Status: "4.2.0", RemoteMTA: "mx1.remote.example",
		DiagnosticType: DiagnosticSMTP, Diagnostic: "451 4.2.0 Try again later",
		LastAttempt: attempt, WillRetryUntil: until,
	}}
	msg := Compose(r)
	checkLines(t, msg)
	m, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get("Subject"); got != SubjectDelayed {
		t.Errorf("Subject %q", got)
	}
	if m.ReturnedType != "text/rfc822-headers" {
		t.Errorf("delayed DSN returned %q", m.ReturnedType)
	}
	rc := m.PerRecipient[0]
	if rc.Get("Action") != "delayed" || rc.Get("Status") != "4.2.0" || rc.Get("Will-Retry-Until") == "" {
		t.Errorf("recipient fields %v", flat(rc))
	}
	if !strings.Contains(m.Human, "you do not need to resend") {
		t.Errorf("human part:\n%s", m.Human)
	}
	checkRoundTrip(t, r, m.Report)
}

func TestComposeLongAndHostile(t *testing.T) {
	r := baseReport()
	r.Ret = "FULL"
	long := strings.Repeat("word ", 300) + strings.Repeat("x", 2500)
	// A line over 998 octets: cannot be returned as message/rfc822.
	r.Original = []byte("Subject: " + strings.Repeat("s", 1200) + "\r\nX: y\r\n\r\n" + strings.Repeat("b", 1500) + "\r\n")
	r.Recipients = []Recipient{{Final: "bob@remote.example", Action: Failed, Status: "5.0.0",
		DiagnosticType: DiagnosticSMTP, Diagnostic: "550 bad\r\nInjected: header " + long}}
	msg := Compose(r)
	checkLines(t, msg)
	m, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if m.ReturnedType != "text/rfc822-headers" {
		t.Errorf("unsafe original returned as %q", m.ReturnedType)
	}
	if m.PerRecipient[0].Get("Injected") != "" {
		t.Error("a CRLF in the diagnostic started a field")
	}
	if !strings.HasPrefix(m.PerRecipient[0].Get("Diagnostic-Code"), "smtp; 550 bad Injected: header word word") {
		t.Errorf("Diagnostic-Code %q", m.PerRecipient[0].Get("Diagnostic-Code")[:60])
	}
}

func TestComposeUTF8(t *testing.T) {
	r := baseReport()
	r.Sender = "álvaro@posthorn.test"
	r.Recipients = []Recipient{{Final: "бob@пример.example", Action: Failed, Status: "5.1.1",
		Original: "utf-8;бob@пример.example"}}
	msg := Compose(r)
	checkLines(t, msg)
	if !HasUTF8(msg) {
		t.Fatal("HasUTF8 false")
	}
	m, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Content-Transfer-Encoding") != "8bit" {
		t.Error("8-bit DSN not labelled 8bit")
	}
	if got := m.PerRecipient[0].Get("Final-Recipient"); got != "utf-8; бob@пример.example" {
		t.Errorf("Final-Recipient %q", got)
	}
	checkRoundTrip(t, r, m.Report)
}

func TestBoundaryAvoidsContent(t *testing.T) {
	r := baseReport()
	b := makeBoundary(r.MessageID, nil)
	r.Original = []byte("Subject: x\r\n\r\n--" + b + "\r\n")
	r.Ret = "FULL"
	r.Recipients = []Recipient{{Final: "bob@remote.example", Action: Failed, Status: "5.0.0"}}
	m, err := Parse(Compose(r))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Returned) != string(r.Original) {
		t.Errorf("returned %q", m.Returned)
	}
}

func TestWriteFieldFolds(t *testing.T) {
	for _, n := range []int{10, 70, 77, 78, 79, 200, 997, 998, 999, 3000} {
		var b bytes.Buffer
		v := strings.Repeat("a", n)
		writeField(&b, "Diagnostic-Code", "smtp; "+v+" tail")
		checkLines(t, b.Bytes())
		unfolded := strings.ReplaceAll(b.String(), "\r\n", "")
		if n < MaxLine-30 && unfolded != "Diagnostic-Code: smtp; "+v+" tail" {
			t.Errorf("n=%d: folding lost text: %q", n, unfolded)
		}
	}
}

func flat(h map[string][]string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = strings.Join(v, "\n")
	}
	return out
}

// checkRoundTrip compares what Parse recovered with what Compose was given.
func checkRoundTrip(t *testing.T, in, out Report) {
	t.Helper()
	in.Ret, in.Original = "", nil
	if !reflect.DeepEqual(in, normalizeTimes(out)) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
}

func normalizeTimes(r Report) Report {
	utc := func(t time.Time) time.Time {
		if t.IsZero() {
			return t
		}
		return t.UTC()
	}
	r.Date, r.Arrival = utc(r.Date), utc(r.Arrival)
	for i := range r.Recipients {
		r.Recipients[i].LastAttempt = utc(r.Recipients[i].LastAttempt)
		r.Recipients[i].WillRetryUntil = utc(r.Recipients[i].WillRetryUntil)
	}
	return r
}
