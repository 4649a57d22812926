package warmer

import (
	"testing"
	"time"
)

// A run of failures of one operation is logged at once, then once a
// minute with how many failures the line stands for; another operation's
// run is its own; the end of the runs is told once.
func TestComplaintsOnceAMinute(t *testing.T) {
	var c complaints
	t0 := time.Date(2031, 3, 4, 20, 0, 0, 0, time.UTC)
	steps := []struct {
		op      string
		at      time.Duration
		wantLog bool
		wantN   int
	}{
		{"take_over", 0, true, 1},
		{"take_over", time.Second, false, 0},
		{"expire", time.Second, true, 1},
		{"take_over", 59 * time.Second, false, 0},
		{"take_over", 61 * time.Second, true, 3},
		{"take_over", 62 * time.Second, false, 0},
	}
	for _, s := range steps {
		if log, n := c.failed(s.op, t0.Add(s.at)); log != s.wantLog || n != s.wantN {
			t.Errorf("failed(%s) at +%v = %v, %d, want %v, %d", s.op, s.at, log, n, s.wantLog, s.wantN)
		}
	}
	all := func(string) bool { return true }
	rec := c.ok(t0.Add(70*time.Second), all)
	if len(rec) != 2 {
		t.Fatalf("ok = %+v, want the two runs that ended", rec)
	}
	for _, r := range rec {
		if r.op == "take_over" && (r.failures != 5 || r.lasted != 70*time.Second) {
			t.Errorf("take_over's run = %+v, want 5 failures over 70s", r)
		}
	}
	if rec := c.ok(t0.Add(71*time.Second), all); len(rec) != 0 {
		t.Errorf("ok again = %+v, want nothing: the runs were told", rec)
	}
	if log, _ := c.failed("take_over", t0.Add(72*time.Second)); !log {
		t.Error("a new run after the end was not logged at once")
	}
}
