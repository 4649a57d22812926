package testkit

import (
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	start := time.Date(2031, 11, 12, 10, 0, 0, 0, time.UTC)
	c := NewClock(start)
	if got := c.Add(90 * time.Second); !got.Equal(start.Add(90 * time.Second)) {
		t.Errorf("Add(90s) = %v, want %v", got, start.Add(90*time.Second))
	}
	c.Set(start)
	if !c.Now().Equal(start) {
		t.Errorf("Now after Set = %v, want %v", c.Now(), start)
	}
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, time.Second, "the third call", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("cond called %d times, want 3", n)
	}
}
