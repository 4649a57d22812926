package vistasim

import (
	"testing"
	"time"
)

// SeatsAt agrees with the listing at every time asked, and never rises.
func TestSeatsAt(t *testing.T) {
	c := newClock(start)
	s := New(Config{Seed: 3, Clock: c.Now, Cinemas: 9})
	s.Cancel(s.Sessions()[0].ID) // a hook's change counts too
	for _, at := range []time.Time{start, start.Add(47 * time.Minute), start.Add(5*time.Hour + 13*time.Second)} {
		c.Set(at)
		list := s.Sessions()
		for _, x := range list {
			got, listed := s.SeatsAt(x.ID, at)
			if got != x.SeatsAvailable || !listed {
				t.Fatalf("SeatsAt(%s, %v) = %d, %v, want %d, true", x.ID, at, got, listed, x.SeatsAvailable)
			}
		}
		x := list[len(list)/2]
		prev, _ := s.SeatsAt(x.ID, at.Add(-3*time.Hour))
		for d := -3 * time.Hour; d < 3*time.Hour; d += 37 * time.Second {
			n, _ := s.SeatsAt(x.ID, at.Add(d))
			if n > prev {
				t.Fatalf("SeatsAt(%s) rose from %d to %d at %v", x.ID, prev, n, at.Add(d))
			}
			prev = n
		}
	}
	if _, listed := s.SeatsAt(s.Sessions()[0].ID, start.Add(-30*24*time.Hour)); listed {
		t.Errorf("SeatsAt a month before publication: listed")
	}
	for _, id := range []string{"", "1001", "1001-x", "9999-1", "1001-0"} {
		if n, listed := s.SeatsAt(id, start); listed || n != 0 {
			t.Errorf("SeatsAt(%q) = %d, %v, want 0, false", id, n, listed)
		}
	}
}
