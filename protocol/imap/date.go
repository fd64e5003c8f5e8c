package imap

import (
	"errors"
	"time"
)

// Dates of RFC 9051 9:
//
//	date       = date-text / DQUOTE date-text DQUOTE
//	date-text  = date-day "-" date-month "-" date-year   ; "1-Feb-1994"
//	date-time  = DQUOTE date-day-fixed "-" date-month "-" date-year
//	             SP time SP zone DQUOTE                  ; "17-Jul-1996 02:44:25 -0700"
//	date-day-fixed = (SP DIGIT) / 2DIGIT
//	zone       = ("+" / "-") 4DIGIT
//
// Month names are case-insensitive (RFC 9051 9). Days must exist in their
// month; hours, minutes and seconds must be in range, and zone minutes below
// 60. A leap second (60) is accepted and read as 59, since time.Time has no
// leap seconds and rolling over could change the day or leave year 9999.

const dateTimeLen = len("17-Jul-1996 02:44:25 -0700")

var monthNames = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

var (
	errDate     = errors.New("invalid date (expected d-Mon-yyyy)")
	errDateTime = errors.New("invalid date-time (expected \"dd-Mon-yyyy hh:mm:ss +zzzz\")")
)

// ParseDate parses date-text ("1-Feb-1994") and returns midnight UTC of that
// day. SEARCH compares dates "disregarding time and timezone" (RFC 9051
// 6.4.4), so the server applies its own zone to the day.
func ParseDate(s string) (time.Time, error) { return parseDate(s) }

// ParseDateTime parses the contents of a date-time, without the quotes:
// "17-Jul-1996 02:44:25 -0700". The result carries the zone's offset.
func ParseDateTime(s string) (time.Time, error) { return parseDateTime(s) }

func parseDate[T string | []byte](s T) (time.Time, error) {
	n := len(s)
	if n != 10 && n != 11 {
		return time.Time{}, errDate
	}
	day, ok := digits2(s, 0, n-9)
	if !ok || s[n-9] != '-' || s[n-5] != '-' {
		return time.Time{}, errDate
	}
	mon, ok := parseMonth(s, n-8)
	if !ok {
		return time.Time{}, errDate
	}
	year, ok := digitsN(s, n-4, 4)
	if !ok {
		return time.Time{}, errDate
	}
	t := time.Date(year, mon, day, 0, 0, 0, 0, time.UTC)
	if t.Day() != day {
		return time.Time{}, errDate
	}
	return t, nil
}

func parseDateTime[T string | []byte](s T) (time.Time, error) {
	if len(s) != dateTimeLen || s[2] != '-' || s[6] != '-' || s[11] != ' ' ||
		s[14] != ':' || s[17] != ':' || s[20] != ' ' {
		return time.Time{}, errDateTime
	}
	var day int
	var ok bool
	if s[0] == ' ' {
		day, ok = digitsN(s, 1, 1)
	} else {
		day, ok = digitsN(s, 0, 2)
	}
	if !ok {
		return time.Time{}, errDateTime
	}
	mon, ok1 := parseMonth(s, 3)
	year, ok2 := digitsN(s, 7, 4)
	hh, ok3 := digitsN(s, 12, 2)
	mm, ok4 := digitsN(s, 15, 2)
	ss, ok5 := digitsN(s, 18, 2)
	zh, ok6 := digitsN(s, 22, 2)
	zm, ok7 := digitsN(s, 24, 2)
	sign := s[21]
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || (sign != '+' && sign != '-') ||
		hh > 23 || mm > 59 || ss > 60 || zm > 59 {
		return time.Time{}, errDateTime
	}
	if time.Date(year, mon, day, 0, 0, 0, 0, time.UTC).Day() != day {
		return time.Time{}, errDateTime
	}
	ss = min(ss, 59)
	off := (zh*60 + zm) * 60
	if sign == '-' {
		off = -off
	}
	zone := time.UTC
	if off != 0 {
		zone = time.FixedZone("", off)
	}
	return time.Date(year, mon, day, hh, mm, ss, 0, zone), nil
}

// digits2 reads a 1- or 2-digit number s[i:j].
func digits2[T string | []byte](s T, i, j int) (int, bool) {
	if j-i < 1 || j-i > 2 {
		return 0, false
	}
	return digitsN(s, i, j-i)
}

// digitsN reads exactly n decimal digits at s[i:].
func digitsN[T string | []byte](s T, i, n int) (int, bool) {
	if i < 0 || i+n > len(s) {
		return 0, false
	}
	v := 0
	for k := i; k < i+n; k++ {
		c := s[k]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// parseMonth reads a three-letter month name at s[i:], in any case.
func parseMonth[T string | []byte](s T, i int) (time.Month, bool) {
	if i+3 > len(s) {
		return 0, false
	}
	for m, name := range monthNames {
		if equalFoldASCII(s[i:i+3], name) {
			return time.Month(m + 1), true
		}
	}
	return 0, false
}

// FormatDate returns date-text: "1-Feb-1994".
func FormatDate(t time.Time) string { return string(AppendDate(nil, t)) }

// FormatDateTime returns a date-time without the quotes:
// "17-Jul-1996 02:44:25 -0700".
func FormatDateTime(t time.Time) string { return string(AppendDateTime(nil, t)) }

// AppendDate appends date-text for t's day in t's location.
func AppendDate(dst []byte, t time.Time) []byte {
	t = clampYear(t)
	dst = appendInt(dst, t.Day(), 1)
	dst = append(dst, '-')
	dst = append(dst, monthNames[t.Month()-1]...)
	dst = append(dst, '-')
	return appendInt(dst, t.Year(), 4)
}

// AppendDateTime appends a date-time without the quotes, in t's location.
// The day is written with two digits (date-day-fixed allows " 1" and "01";
// "01" keeps the value free of spaces). Offsets are whole minutes; seconds of
// a historical zone offset are dropped.
func AppendDateTime(dst []byte, t time.Time) []byte {
	t = clampYear(t)
	dst = appendInt(dst, t.Day(), 2)
	dst = append(dst, '-')
	dst = append(dst, monthNames[t.Month()-1]...)
	dst = append(dst, '-')
	dst = appendInt(dst, t.Year(), 4)
	dst = append(dst, ' ')
	dst = appendInt(dst, t.Hour(), 2)
	dst = append(dst, ':')
	dst = appendInt(dst, t.Minute(), 2)
	dst = append(dst, ':')
	dst = appendInt(dst, t.Second(), 2)
	_, off := t.Zone()
	off /= 60
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	dst = append(dst, ' ', sign)
	dst = appendInt(dst, min(off/60, 99), 2)
	return appendInt(dst, off%60, 2)
}

// clampYear keeps t within the 4DIGIT years 0000-9999 of date-year.
func clampYear(t time.Time) time.Time {
	if y := t.Year(); y < 0 {
		return time.Date(0, 1, 1, 0, 0, 0, 0, t.Location())
	} else if y > 9999 {
		return time.Date(9999, 12, 31, 23, 59, 59, 0, t.Location())
	}
	return t
}

// appendInt appends v (>= 0) zero-padded to width digits.
func appendInt(dst []byte, v, width int) []byte {
	var b [20]byte
	i := len(b)
	for v >= 10 || width > 1 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		width--
	}
	i--
	b[i] = byte('0' + v)
	return append(dst, b[i:]...)
}
