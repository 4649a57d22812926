package fakeclock

import (
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	start := time.Date(2031, 11, 12, 10, 0, 0, 0, time.UTC)
	c := New(start)
	if got := c.Add(90 * time.Second); !got.Equal(start.Add(90 * time.Second)) {
		t.Errorf("Add(90s) = %v, want %v", got, start.Add(90*time.Second))
	}
	c.Set(start)
	if !c.Now().Equal(start) {
		t.Errorf("Now after Set = %v, want %v", c.Now(), start)
	}
}

func TestClockAfter(t *testing.T) {
	start := time.Date(2031, 11, 12, 10, 0, 0, 0, time.UTC)
	c := New(start)
	now, soon, later := c.After(0), c.After(time.Minute), c.After(time.Hour)
	fired := func(ch <-chan time.Time) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	if !fired(now) {
		t.Error("After(0) has not fired")
	}
	c.Add(59 * time.Second)
	if fired(soon) {
		t.Error("After(1m) fired 59 s on")
	}
	c.Add(time.Second)
	if !fired(soon) || fired(later) {
		t.Error("a minute on: want After(1m) fired and After(1h) not")
	}
	c.Set(start.Add(2 * time.Hour))
	if !fired(later) {
		t.Error("After(1h) has not fired two hours on")
	}
}
