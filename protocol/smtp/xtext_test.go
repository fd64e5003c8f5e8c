package smtp

import "testing"

func TestXtext(t *testing.T) {
	tests := []struct {
		enc, dec string
		ok       bool
	}{
		{"", "", true},
		{"abc", "abc", true},
		{"e+3Dmc2@example.com", "e=mc2@example.com", true},
		{"e+3dmc2@example.com", "e=mc2@example.com", true}, // lower-case hex accepted
		{"+2B+20+00", "+ \x00", true},
		{"<>", "<>", true},
		{"a+", "", false},
		{"a+4", "", false},
		{"a+4G", "", false},
		{"a+G4", "", false},
		{"a=b", "", false},
		{"a b", "", false},
		{"a\x7f", "", false},
		{"\x01", "", false},
		{"é", "", false},
	}
	for _, tt := range tests {
		got, err := XtextDecode(tt.enc)
		if !tt.ok {
			checkReply(t, tt.enc, err, 501, "5.5.4")
			continue
		}
		if err != nil || got != tt.dec {
			t.Errorf("XtextDecode(%q) = %q, %v; want %q", tt.enc, got, err, tt.dec)
		}
	}

	encode := []struct{ in, out string }{
		{"", ""},
		{"user@example.com", "user@example.com"},
		{"e=mc2+x", "e+3Dmc2+2Bx"},
		{"a b\r\n", "a+20b+0D+0A"},
		{"é\x00\x7f~!", "+C3+A9+00+7F~!"},
	}
	for _, tt := range encode {
		if got := XtextEncode(tt.in); got != tt.out {
			t.Errorf("XtextEncode(%q) = %q, want %q", tt.in, got, tt.out)
		}
		if back, err := XtextDecode(tt.out); err != nil || back != tt.in {
			t.Errorf("round trip %q: %q, %v", tt.in, back, err)
		}
	}
}
