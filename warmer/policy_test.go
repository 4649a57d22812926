package warmer

import (
	"fmt"
	"testing"
	"time"
)

func TestInterval(t *testing.T) {
	p := DefaultPolicy()
	now := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		s      time.Duration // until showtime
		want   time.Duration
		wantOK bool
	}{
		{"far past the horizon", 5 * time.Hour, 0, false},
		{"just past the horizon", time.Hour + time.Second, 0, false},
		{"at the horizon", time.Hour, 60*time.Second + 1250*time.Second, true}, // (50m)²/2h = 20m50s: about 22 minutes in all
		{"half way", 35 * time.Minute, 60*time.Second + 312500*time.Millisecond, true},
		{"just outside the near window", 10*time.Minute + time.Second, 60*time.Second + 138889*time.Nanosecond, true},
		{"at the near window", 10 * time.Minute, 10 * time.Second, true},
		{"inside the near window", 3 * time.Minute, 10 * time.Second, true},
		{"at showtime", 0, 10 * time.Second, true},
		{"just after showtime", -time.Minute, 10 * time.Second, true},
		{"near window after showtime", -10 * time.Minute, 10 * time.Second, true},
		{"after the near window", -11 * time.Minute, 60 * time.Second, true},
		{"at the end of grace", -20 * time.Minute, 60 * time.Second, true},
		{"expired", -20*time.Minute - time.Second, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := p.Interval(now, now.Add(tt.s))
			if ok != tt.wantOK || (got-tt.want).Abs() > time.Microsecond {
				t.Errorf("Interval(showtime in %v) = %v, %v, want %v, %v", tt.s, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestIntervalGrowsWithDistance(t *testing.T) {
	p := DefaultPolicy()
	now := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	prev := time.Duration(0)
	for s := 10 * time.Minute; s <= time.Hour; s += time.Minute {
		got, ok := p.Interval(now, now.Add(s))
		if !ok || got < prev {
			t.Fatalf("Interval(showtime in %v) = %v, %v, want ≥ %v", s, got, ok, prev)
		}
		prev = got
	}
	if prev < 21*time.Minute || prev > 23*time.Minute {
		t.Errorf("Interval at the horizon = %v, want about 22m", prev)
	}
}

func TestNextCheck(t *testing.T) {
	p := DefaultPolicy()
	now := time.Date(2026, 11, 25, 17, 0, 0, 400e6, time.UTC)

	t.Run("within the horizon: the interval, cut to the second", func(t *testing.T) {
		show := now.Add(5 * time.Minute)
		got := p.NextCheck(now, show)
		if want := time.Date(2026, 11, 25, 17, 0, 10, 0, time.UTC); !got.Equal(want) {
			t.Errorf("NextCheck = %v, want %v: never more than the interval after the check", got, want)
		}
	})
	t.Run("first check: spread over the interval, stable per id", func(t *testing.T) {
		show := now.Add(5 * time.Minute)
		seen := map[time.Time]bool{}
		for i := range 40 {
			id := fmt.Sprintf("1001-%d", i)
			got := p.FirstCheck(now, show, id)
			if got.Before(now.Add(-time.Second)) || got.After(p.NextCheck(now, show)) {
				t.Errorf("FirstCheck(%q) = %v from now, want within the first interval", id, got.Sub(now))
			}
			if again := p.FirstCheck(now, show, id); !again.Equal(got) {
				t.Errorf("FirstCheck(%q) is not stable: %v and %v", id, got, again)
			}
			seen[got] = true
		}
		if len(seen) < 5 {
			t.Errorf("FirstCheck gave 40 sessions %d distinct times; the phase should spread them", len(seen))
		}
	})
	t.Run("past the horizon: when it enters", func(t *testing.T) {
		show := now.Add(3 * time.Hour)
		if got, want := p.NextCheck(now, show), show.Add(-time.Hour); !got.Equal(want) {
			t.Errorf("NextCheck = %v, want %v", got, want)
		}
		if got, want := p.FirstCheck(now, show, "x"), show.Add(-time.Hour); !got.Equal(want) {
			t.Errorf("FirstCheck = %v, want %v", got, want)
		}
	})
	t.Run("expired: never", func(t *testing.T) {
		if got := p.NextCheck(now, now.Add(-time.Hour)); !got.IsZero() {
			t.Errorf("NextCheck = %v, want zero", got)
		}
	})
}

func TestTier(t *testing.T) {
	p := DefaultPolicy()
	now := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	tests := []struct {
		s    time.Duration
		want string
	}{
		{2 * time.Hour, "beyond_horizon"},
		{30 * time.Minute, "approaching"},
		{5 * time.Minute, "near"},
		{-15 * time.Minute, "started"},
		{-time.Hour, "expired"},
	}
	for _, tt := range tests {
		if got := p.Tier(now, now.Add(tt.s)); got != tt.want {
			t.Errorf("Tier(showtime in %v) = %q, want %q", tt.s, got, tt.want)
		}
	}
}

// TestNextCheckEntersTheNearWindow: the check before a session enters the
// near window is due when it enters, not an approaching interval later.
func TestNextCheckEntersTheNearWindow(t *testing.T) {
	p := DefaultPolicy()
	show := time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC)
	now := show.Add(-p.NearWindow - 20*time.Second) // 60 s interval here
	if got, want := p.NextCheck(now, show), show.Add(-p.NearWindow); !got.Equal(want) {
		t.Errorf("NextCheck 20 s before the near window = %v, want its entry %v", got.Sub(now), want.Sub(now))
	}
	now = show.Add(-p.NearWindow - 2*time.Minute)
	if got, want := p.NextCheck(now, show), now.Add(time.Minute+time.Duration(float64(2*time.Minute)*float64(2*time.Minute)/float64(2*p.Horizon))); !got.Equal(want.Truncate(time.Second)) {
		t.Errorf("NextCheck 2 min before the near window = %v, want the interval %v", got.Sub(now), want.Sub(now))
	}
}
