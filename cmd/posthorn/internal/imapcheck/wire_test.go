package imapcheck

import (
	"bufio"
	"slices"
	"strings"
	"testing"
)

func TestReadAndParseResponses(t *testing.T) {
	wire := "* 3 FETCH (UID 7 FLAGS (\\Seen $Label1 \\Recent) BODY[] {5}\r\nab)cd RFC822.SIZE 5)\r\n" +
		"* 2 FETCH (FLAGS () BODY[HEADER.FIELDS (Subject)] {3}\r\nx\r\n ENVELOPE (NIL \"a \\\"q\\\"\" ((NIL NIL \"b\" \"c\")) NIL NIL NIL NIL NIL NIL NIL))\r\n" +
		"a1 OK [APPENDUID 9 12] APPEND completed\r\n" +
		"* OK [PERMANENTFLAGS (\\Seen \\*)] Flags permitted\r\n" +
		"* ESEARCH (TAG \"c1.5\") UID ALL 3:5,9 COUNT 4\r\n" +
		"* SEARCH 2 4\r\n" +
		"* 4 EXPUNGE\r\n" +
		"+ idling\r\n"
	br := bufio.NewReader(strings.NewReader(wire))
	var rs []*response
	for {
		raw, err := readRaw(br)
		if err != nil {
			break
		}
		r, err := parseResponse(raw)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		rs = append(rs, r)
	}
	if len(rs) != 8 {
		t.Fatalf("got %d responses", len(rs))
	}
	f := rs[0].fetch
	if rs[0].num != 3 || f.uid != 7 || !slices.Equal(f.flags, []string{`\Seen`, "$Label1", `\Recent`}) || string(f.body) != "ab)cd" {
		t.Errorf("FETCH: %+v", f)
	}
	if set, unknown := parseFlags(f.flags); set != flagSeen|flagBit("$label1") || unknown != nil {
		t.Errorf("flags %v %v", set, unknown)
	}
	if f := rs[1].fetch; !f.hasFlags || len(f.flags) != 0 || f.hasBody || f.hasUID {
		t.Errorf("second FETCH: %+v", f)
	}
	if r := rs[2]; r.tag != "a1" || r.kind != "OK" || r.code != "APPENDUID" || r.args != "9 12" || r.text != "APPEND completed" {
		t.Errorf("tagged: %+v", r)
	}
	if r := rs[3]; r.code != "PERMANENTFLAGS" || r.text != "Flags permitted" {
		t.Errorf("status: %+v", r)
	}
	if e := rs[4].esrch; e.tag != "c1.5" || !e.uid || !slices.Equal(e.all, []uint32{3, 4, 5, 9}) || e.count != 4 {
		t.Errorf("ESEARCH: %+v", e)
	}
	if !slices.Equal(rs[5].search, []uint32{2, 4}) || rs[6].kind != "EXPUNGE" || rs[6].num != 4 || rs[7].tag != "+" {
		t.Errorf("SEARCH/EXPUNGE/+: %+v %+v %+v", rs[5], rs[6], rs[7])
	}
}

func TestSets(t *testing.T) {
	got, err := ExpandSet("1:3,7,10:9")
	if err != nil || !slices.Equal(got, []uint32{1, 2, 3, 7, 10, 9}) {
		t.Errorf("parseSet: %v %v", got, err)
	}
	if s := FormatSet([]uint32{9, 1, 2, 3, 7, 10}); s != "1:3,7,9:10" {
		t.Errorf("formatSet: %q", s)
	}
	for _, bad := range []string{"", "0", "1:*", "a", "1,,2"} {
		if _, err := ExpandSet(bad); err == nil {
			t.Errorf("ExpandSet(%q) accepted", bad)
		}
	}
}

func TestFlagSets(t *testing.T) {
	s := flagSeen | flagDeleted
	if s.apply('+', flagBit(`\Draft`)) != s|flagBit(`\Draft`) || s.apply('-', flagSeen) != flagDeleted || s.apply('=', 0) != 0 {
		t.Error("apply")
	}
	if mask, val := storeWrite('=', flagSeen); mask != allFlags || val != flagSeen {
		t.Error("storeWrite =")
	}
	if _, unknown := parseFlags([]string{`\seen`, "$Other"}); !slices.Equal(unknown, []string{"$Other"}) {
		t.Errorf("unknown %v", unknown)
	}
	if s.String() != `(\Seen \Deleted)` {
		t.Errorf("String %q", s.String())
	}
}
