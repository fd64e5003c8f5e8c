package imap

import (
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	good := map[string]time.Time{
		"1-Feb-1994":  time.Date(1994, 2, 1, 0, 0, 0, 0, time.UTC),
		"01-FEB-1994": time.Date(1994, 2, 1, 0, 0, 0, 0, time.UTC),
		"29-feb-2000": time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC),
		"31-Dec-9999": time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
	}
	for in, want := range good {
		if got, err := ParseDate(in); err != nil || !got.Equal(want) {
			t.Errorf("ParseDate(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "29-Feb-1900", "0-Jan-2000", "32-Jan-2000", "1-Feb-94", "001-Feb-1994",
		"1 Feb 1994", "1-February-1994", "1-Feb-1994 ", "a-Feb-1994", "1-Feb-19x4", "\"1-Feb-1994\""} {
		if _, err := ParseDate(in); err == nil {
			t.Errorf("ParseDate(%q) accepted", in)
		}
	}
}

func TestParseDateTime(t *testing.T) {
	good := map[string]struct {
		utc    time.Time
		offset int
	}{
		"17-Jul-1996 02:44:25 -0700": {time.Date(1996, 7, 17, 9, 44, 25, 0, time.UTC), -7 * 3600},
		" 1-jan-2000 00:00:00 +0000": {time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		"01-Jan-2000 23:59:60 +0530": {time.Date(2000, 1, 1, 18, 29, 59, 0, time.UTC), 5*3600 + 1800},
	}
	for in, want := range good {
		got, err := ParseDateTime(in)
		if _, off := got.Zone(); err != nil || !got.Equal(want.utc) || off != want.offset {
			t.Errorf("ParseDateTime(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{
		"17-Jul-1996 02:44:25 -07000", "17-Jul-1996 02:44:25", "7-Jul-1996 02:44:25 -0700",
		"17-Jul-1996 24:00:00 +0000", "17-Jul-1996 02:60:00 +0000", "17-Jul-1996 02:44:61 +0000",
		"17-Jul-1996 02:44:25 +0060", "17-Jul-1996 02:44:25 *0700", "31-Jun-1996 02:44:25 +0000",
		"17-Jul-1996T02:44:25 +0000", "17/Jul/1996 02:44:25 +0000", "17-Jul-1996 2:44:25 +00000",
	} {
		if _, err := ParseDateTime(in); err == nil {
			t.Errorf("ParseDateTime(%q) accepted", in)
		}
	}
}

func TestFormatDates(t *testing.T) {
	loc := time.FixedZone("", -7*3600)
	tm := time.Date(1996, 7, 7, 2, 44, 25, 999, loc)
	if got := FormatDateTime(tm); got != "07-Jul-1996 02:44:25 -0700" {
		t.Errorf("FormatDateTime = %q", got)
	}
	if got := FormatDate(tm); got != "7-Jul-1996" {
		t.Errorf("FormatDate = %q", got)
	}
	if got := FormatDateTime(time.Date(2024, 12, 31, 23, 5, 9, 0, time.FixedZone("", 5*3600+45*60))); got != "31-Dec-2024 23:05:09 +0545" {
		t.Errorf("FormatDateTime = %q", got)
	}
	if got := FormatDateTime(time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)); got != "31-Dec-9999 23:59:59 +0000" {
		t.Errorf("year clamp: %q", got)
	}
	for _, s := range []string{"17-Jul-1996 02:44:25 -0700", "01-Jan-0000 00:00:00 +9959"} {
		tm, err := ParseDateTime(s)
		if err != nil || FormatDateTime(tm) != s {
			t.Errorf("round trip %q: %q %v", s, FormatDateTime(tm), err)
		}
	}
}
