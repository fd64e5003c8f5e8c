package smtp

import (
	"reflect"
	"strings"
	"testing"
)

func TestMailParams(t *testing.T) {
	tests := []struct {
		params string
		want   MailParams
		code   int
		enh    string
		text   string // substring the reply text must hold
	}{
		{params: "", want: MailParams{}},
		{params: "  ", want: MailParams{}},
		{params: "SIZE=12345", want: MailParams{Size: 12345}},
		{params: "size=0", want: MailParams{Size: 0}},
		{params: "SIZE=9223372036854775807", want: MailParams{Size: 9223372036854775807}},
		{params: "SIZE=00000000000000000001", want: MailParams{Size: 1}}, // 20 digits
		{params: "BODY=8bitmime", want: MailParams{Body: "8BITMIME"}},
		{params: "BODY=7BIT", want: MailParams{Body: "7BIT"}},
		{params: "BODY=BINARYMIME", want: MailParams{Body: "BINARYMIME"}},
		{params: "SMTPUTF8", want: MailParams{SMTPUTF8: true}},
		{params: "smtputf8", want: MailParams{SMTPUTF8: true}},
		{params: "RET=hdrs", want: MailParams{Ret: "HDRS"}},
		{params: "RET=FULL", want: MailParams{Ret: "FULL"}},
		{params: "ENVID=QQ314159", want: MailParams{EnvID: "QQ314159"}},
		{params: "ENVID=a+20b+2Bc", want: MailParams{EnvID: "a b+c"}},
		{params: "ENVID=" + strings.Repeat("x", 100), want: MailParams{EnvID: strings.Repeat("x", 100)}},
		{params: "AUTH=<>", want: MailParams{Auth: "<>"}},
		{params: "AUTH=e+3Dmc2@example.com", want: MailParams{Auth: "e=mc2@example.com"}},
		{params: "SIZE=1000 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=x AUTH=a@b",
			want: MailParams{Size: 1000, Body: "8BITMIME", SMTPUTF8: true, Ret: "HDRS", EnvID: "x", Auth: "a@b"}},
		{params: "SIZE=1   BODY=7BIT", want: MailParams{Size: 1, Body: "7BIT"}},

		// Unknown: 555 5.5.4 with the keyword.
		{params: "FOO=bar", code: 555, enh: "5.5.4", text: "FOO"},
		{params: "X-Custom", code: 555, enh: "5.5.4", text: "X-CUSTOM"},
		{params: "NOTIFY=NEVER", code: 555, enh: "5.5.4", text: "NOTIFY"}, // RCPT only
		{params: "SIZE=1 " + strings.Repeat("K", 400), code: 555, enh: "5.5.4", text: "KKK..."},

		// Given twice: 501 5.5.4 (RFC 3461 4.5).
		{params: "SIZE=1 SIZE=2", code: 501, enh: "5.5.4", text: "SIZE"},
		{params: "RET=FULL ret=HDRS", code: 501, enh: "5.5.4", text: "RET"},
		{params: "ENVID=a ENVID=a", code: 501, enh: "5.5.4", text: "ENVID"},
		{params: "SMTPUTF8 SMTPUTF8", code: 501, enh: "5.5.4", text: "SMTPUTF8"},
		{params: "BODY=7BIT BODY=8BITMIME", code: 501, enh: "5.5.4", text: "BODY"},
		{params: "AUTH=<> AUTH=<>", code: 501, enh: "5.5.4", text: "AUTH"},

		// Bad values: 501 5.5.4 with the keyword.
		{params: "SIZE", code: 501, enh: "5.5.4", text: "SIZE"},
		{params: "SIZE=", code: 501, enh: "5.5.4", text: "SIZE"},
		{params: "SIZE=-1", code: 501, enh: "5.5.4", text: "SIZE"},
		{params: "SIZE=+1", code: 501, enh: "5.5.4", text: "SIZE"},
		{params: "SIZE=1k", code: 501, enh: "5.5.4", text: "SIZE"},
		{params: "SIZE=0x10", code: 501, enh: "5.5.4", text: "SIZE"},
		{params: "SIZE=9223372036854775808", code: 501, enh: "5.5.4", text: "SIZE"},   // int64 overflow
		{params: "SIZE=99999999999999999999", code: 501, enh: "5.5.4", text: "SIZE"},  // 20 digits, overflow
		{params: "SIZE=000000000000000000001", code: 501, enh: "5.5.4", text: "SIZE"}, // 21 digits
		{params: "SIZE=1=2", code: 501, enh: "5.5.4", text: "SIZE"},
		{params: "BODY=8BIT", code: 501, enh: "5.5.4", text: "BODY"},
		{params: "BODY", code: 501, enh: "5.5.4", text: "BODY"},
		{params: "SMTPUTF8=yes", code: 501, enh: "5.5.4", text: "SMTPUTF8"},
		{params: "RET=NONE", code: 501, enh: "5.5.4", text: "RET"},
		{params: "RET", code: 501, enh: "5.5.4", text: "RET"},
		{params: "ENVID", code: 501, enh: "5.5.4", text: "ENVID"},
		{params: "ENVID=a+2", code: 501, enh: "5.5.4", text: "ENVID"},
		{params: "ENVID=a+0D+0Ab", code: 501, enh: "5.5.4", text: "ENVID"}, // CRLF once decoded
		{params: "ENVID=+C3+A9", code: 501, enh: "5.5.4", text: "ENVID"},   // non-ASCII once decoded
		{params: "ENVID=" + strings.Repeat("x", 101), code: 501, enh: "5.5.4", text: "ENVID"},
		{params: "ENVID=é", code: 501, enh: "5.5.4", text: "ENVID"},
		{params: "AUTH", code: 501, enh: "5.5.4", text: "AUTH"},
		{params: "AUTH=a+00b", code: 501, enh: "5.5.4", text: "AUTH"},
		{params: "AUTH=" + strings.Repeat("a", 501), code: 501, enh: "5.5.4", text: "AUTH"},

		// Parameter syntax (RFC 5321 4.1.2 esmtp-param).
		{params: "=1", code: 501, enh: "5.5.4"},
		{params: "-X=1", code: 501, enh: "5.5.4"},
		{params: "SI_ZE=1", code: 501, enh: "5.5.4"},
		{params: "SIZE=1\t", code: 501, enh: "5.5.4", text: "SIZE"},
		{params: "BODY=\xff", code: 501, enh: "5.5.4", text: "BODY"},
		{params: "SIZÉ=1", code: 501, enh: "5.5.4"},
	}
	for _, tt := range tests {
		arg := "FROM:<a@b>"
		if tt.params != "" {
			arg += " " + tt.params
		}
		_, mp, err := ParseMail(arg)
		checkReply(t, arg, err, tt.code, tt.enh)
		if tt.code == 0 && mp != tt.want {
			t.Errorf("%q: got %+v, want %+v", arg, mp, tt.want)
		}
		if tt.code != 0 && err != nil && !strings.Contains(err.(Reply).Text, tt.text) {
			t.Errorf("%q: reply %q lacks %q", arg, err.(Reply).Text, tt.text)
		}
	}
}

func TestRcptParams(t *testing.T) {
	tests := []struct {
		params string
		want   RcptParams
		code   int
		enh    string
		text   string
	}{
		{params: "", want: RcptParams{}},
		{params: "NOTIFY=NEVER", want: RcptParams{Notify: []string{"NEVER"}}},
		{params: "notify=never", want: RcptParams{Notify: []string{"NEVER"}}},
		{params: "NOTIFY=SUCCESS", want: RcptParams{Notify: []string{"SUCCESS"}}},
		{params: "NOTIFY=failure,Delay", want: RcptParams{Notify: []string{"FAILURE", "DELAY"}}},
		{params: "NOTIFY=SUCCESS,FAILURE,DELAY", want: RcptParams{Notify: []string{"SUCCESS", "FAILURE", "DELAY"}}},
		{params: "NOTIFY=SUCCESS,SUCCESS", want: RcptParams{Notify: []string{"SUCCESS"}}},
		{params: "ORCPT=rfc822;a@b", want: RcptParams{ORcpt: "rfc822;a@b"}},
		{params: "ORCPT=RFC822;e+3Dmc2@example.com", want: RcptParams{ORcpt: "rfc822;e=mc2@example.com"}},
		{params: "ORCPT=UTF-8;j\\x{00F6}ran@example.org", want: RcptParams{ORcpt: `utf-8;j\x{00F6}ran@example.org`}},
		{params: "NOTIFY=FAILURE ORCPT=rfc822;a@b", want: RcptParams{Notify: []string{"FAILURE"}, ORcpt: "rfc822;a@b"}},

		{params: "SIZE=1", code: 555, enh: "5.5.4", text: "SIZE"}, // MAIL only
		{params: "XFOO", code: 555, enh: "5.5.4", text: "XFOO"},

		{params: "NOTIFY=NEVER NOTIFY=NEVER", code: 501, enh: "5.5.4", text: "NOTIFY"},
		{params: "ORCPT=rfc822;a@b ORCPT=rfc822;a@b", code: 501, enh: "5.5.4", text: "ORCPT"},

		{params: "NOTIFY", code: 501, enh: "5.5.4", text: "NOTIFY"},
		{params: "NOTIFY=", code: 501, enh: "5.5.4", text: "NOTIFY"},
		{params: "NOTIFY=NEVER,SUCCESS", code: 501, enh: "5.5.4", text: "NOTIFY"},
		{params: "NOTIFY=FAILURE,NEVER", code: 501, enh: "5.5.4", text: "NOTIFY"},
		{params: "NOTIFY=SUCCESS,", code: 501, enh: "5.5.4", text: "NOTIFY"},
		{params: "NOTIFY=,SUCCESS", code: 501, enh: "5.5.4", text: "NOTIFY"},
		{params: "NOTIFY=ALWAYS", code: 501, enh: "5.5.4", text: "NOTIFY"},
		{params: "ORCPT", code: 501, enh: "5.5.4", text: "ORCPT"},
		{params: "ORCPT=a@b", code: 501, enh: "5.5.4", text: "ORCPT"},
		{params: "ORCPT=x400;a", code: 501, enh: "5.5.4", text: "ORCPT"},
		{params: "ORCPT=rfc822;", code: 501, enh: "5.5.4", text: "ORCPT"},
		{params: "ORCPT=rfc822;a+0D+0Ab", code: 501, enh: "5.5.4", text: "ORCPT"},
		{params: "ORCPT=rfc822;a+", code: 501, enh: "5.5.4", text: "ORCPT"},
		{params: "ORCPT=utf-8;jöran@example.org", code: 501, enh: "5.5.4", text: "ORCPT"},
		{params: "ORCPT=rfc822;" + strings.Repeat("a", 494), code: 501, enh: "5.5.4", text: "ORCPT"},
	}
	for _, tt := range tests {
		arg := "TO:<a@b>"
		if tt.params != "" {
			arg += " " + tt.params
		}
		_, rp, err := ParseRcpt(arg, true)
		checkReply(t, arg, err, tt.code, tt.enh)
		if tt.code == 0 && !reflect.DeepEqual(rp, tt.want) {
			t.Errorf("%q: got %+v, want %+v", arg, rp, tt.want)
		}
		if tt.code != 0 && err != nil && !strings.Contains(err.(Reply).Text, tt.text) {
			t.Errorf("%q: reply %q lacks %q", arg, err.(Reply).Text, tt.text)
		}
	}
	// 500 characters of ORCPT value are accepted (RFC 3461 5.4 (c)).
	arg := "TO:<a@b> ORCPT=rfc822;" + strings.Repeat("a", 493)
	if _, rp, err := ParseRcpt(arg, false); err != nil || len(rp.ORcpt) != 500 {
		t.Errorf("500-character ORCPT: %v", err)
	}
}

// TestErrorOrder pins which error wins when several apply.
func TestErrorOrder(t *testing.T) {
	// The SMTPUTF8 parameter may come after the address it allows.
	if _, _, err := ParseMail("FROM:<jö@b> SIZE=1 SMTPUTF8"); err != nil {
		t.Errorf("SMTPUTF8 after address: %v", err)
	}
	// A bad parameter is reported before the missing SMTPUTF8.
	_, _, err := ParseMail("FROM:<jö@b> FOO=1")
	checkReply(t, "unknown param with UTF-8 address", err, 555, "5.5.4")
	// A bad address is reported before bad parameters.
	_, _, err = ParseMail("FROM:<a b> FOO=1")
	checkReply(t, "bad address and bad param", err, 501, "5.1.7")
}
