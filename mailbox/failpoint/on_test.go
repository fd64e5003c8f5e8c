//go:build failpoint

package failpoint

import "testing"

func TestParse(t *testing.T) {
	p, err := parse("a=kill; b=3*error;c=sleep(10ms)")
	if err != nil {
		t.Fatal(err)
	}
	if p["a"].action != "kill" || p["a"].nth != 0 {
		t.Errorf("a = %+v", p["a"])
	}
	if p["b"].action != "error" || p["b"].nth != 3 {
		t.Errorf("b = %+v", p["b"])
	}
	if p["c"].action != "sleep" || p["c"].sleep.Milliseconds() != 10 {
		t.Errorf("c = %+v", p["c"])
	}
	for _, bad := range []string{"a", "=kill", "a=explode", "a=0*kill", "a=x*kill", "a=sleep(x)"} {
		if _, err := parse(bad); err == nil {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
}

func TestNth(t *testing.T) {
	p, _ := parse("x=2*error")
	points = p
	loadOnce.Do(func() {})
	if Inject("x") != nil || !IsInjected(Inject("x")) || Inject("x") != nil {
		t.Error("2*error must fire on the second hit only")
	}
	if Inject("unknown") != nil {
		t.Error("an unconfigured point fired")
	}
}
