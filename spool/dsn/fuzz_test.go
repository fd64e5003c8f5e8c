package dsn

import (
	"bytes"
	"testing"
)

// FuzzCompose: whatever the diagnostic, addresses and original message,
// a DSN keeps the line rules and parses back with the same recipients.
func FuzzCompose(f *testing.F) {
	f.Add("550 5.1.1 no such user", "bob@remote.example", "env", []byte(original), true)
	f.Add("a\r\nInjected: x", "b\"q\"@x", "", []byte("no header end"), false)
	f.Add(string(bytes.Repeat([]byte("x"), 3000)), "ü@ü.example", "e", []byte("H: v\n\nbare\rcr"), true)
	f.Fuzz(func(t *testing.T, diag, final, envid string, orig []byte, full bool) {
		r := baseReport()
		r.EnvID = oneLine(envid)
		r.Original = orig
		if full {
			r.Ret = "FULL"
		}
		r.Recipients = []Recipient{{Final: oneLine(final), Action: Failed, Status: "5.0.0",
			RemoteMTA: "mx.example", DiagnosticType: DiagnosticSMTP, Diagnostic: diag}}
		msg := Compose(r)
		checkLines(t, msg)
		m, err := Parse(msg)
		if err != nil {
			t.Fatalf("Parse: %v\n%q", err, msg)
		}
		if len(m.PerRecipient) != 1 || m.PerRecipient[0].Get("Action") != "failed" {
			t.Fatalf("recipients %v", m.PerRecipient)
		}
	})
}

// FuzzParse: Parse never panics.
func FuzzParse(f *testing.F) {
	r := baseReport()
	r.Recipients = []Recipient{{Final: "a@b", Action: Delayed, Status: "4.0.0"}}
	f.Add(Compose(r))
	f.Add([]byte("Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n\r\nhi\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\n\r\n\r\n--x--\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		Parse(msg)
	})
}
