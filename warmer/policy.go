package warmer

import (
	"hash/fnv"
	"time"
)

// Policy decides how often a session is checked, from how far its showtime
// is. Its zero value is not useful; start from DefaultPolicy.
type Policy struct {
	Horizon      time.Duration // beyond it a session is left to the full reloads
	NearWindow   time.Duration // within it of the showtime, either side...
	NearInterval time.Duration // ...a session is checked this often
	Base         time.Duration // the interval just outside the near window
	Grace        time.Duration // a session is kept until showtime + Grace

	// (v1.2) With window queries (Config.Windows), the sessions from
	// Horizon to Later ahead are read whole every LaterInterval; the
	// sessions within the horizon (and started within the grace) every
	// NearInterval. Later at or below Horizon: no later sweep.
	Later         time.Duration
	LaterInterval time.Duration
}

// DefaultPolicy returns the contract's numbers: a 1h horizon, a 10m near
// window checked every 10s, 60s just outside it, and 20m of grace; with
// window queries, the next 6h read every 2m.
func DefaultPolicy() Policy {
	return Policy{
		Horizon:       time.Hour,
		NearWindow:    10 * time.Minute,
		NearInterval:  10 * time.Second,
		Base:          time.Minute,
		Grace:         20 * time.Minute,
		Later:         6 * time.Hour,
		LaterInterval: 2 * time.Minute,
	}
}

// Interval returns how long to wait before checking a session again, and
// false when the session is not checked on its own: its showtime lies past
// the horizon (the next full reload covers it) or it has expired.
//
// With s the time until showtime: within the near window (|s| ≤ NearWindow)
// the interval is NearInterval; before it and up to the horizon it grows as
// Base + (s - NearWindow)² / (2·Horizon), about 22 minutes at a 1h horizon;
// after the showtime it is Base until showtime + Grace.
func (p Policy) Interval(now, showtime time.Time) (time.Duration, bool) {
	s := showtime.Sub(now)
	switch {
	case s > p.Horizon:
		return 0, false
	case s < -p.Grace:
		return 0, false
	case s >= -p.NearWindow && s <= p.NearWindow:
		return p.NearInterval, true
	case s < 0:
		return p.Base, true
	}
	d := (s - p.NearWindow).Seconds()
	grow := d * d / (2 * p.Horizon.Seconds())
	return p.Base + time.Duration(grow*float64(time.Second)), true
}

// Tier names the band a session is in at now, for the metrics.
func (p Policy) Tier(now, showtime time.Time) string {
	s := showtime.Sub(now)
	switch {
	case s > p.Horizon:
		return "beyond_horizon"
	case s < -p.Grace:
		return "expired"
	case s >= -p.NearWindow && s <= p.NearWindow:
		return "near"
	case s < 0:
		return "started"
	}
	return "approaching"
}

// Tiers lists every value Tier returns.
var Tiers = []string{"beyond_horizon", "approaching", "near", "started", "expired"}

// NextCheck returns when a session checked at now (its seats read from
// Vista then) is looked at again: now + Interval, cut to the whole second
// so that no gap between two checks is longer than the interval and the
// checker wakes at most once a second. Past the horizon it is the moment
// the session enters it (a full reload may come first). The zero time
// means never: the session has expired.
func (p Policy) NextCheck(now, showtime time.Time) time.Time {
	iv, ok := p.Interval(now, showtime)
	if !ok {
		if showtime.Sub(now) > p.Horizon {
			return showtime.Add(-p.Horizon)
		}
		return time.Time{}
	}
	next := now.Add(iv)
	// The check before a session enters the near window comes no later
	// than its entry: a minute's interval just outside it must not leave
	// the first near minute unchecked.
	if enter := showtime.Add(-p.NearWindow); now.Before(enter) && next.After(enter) {
		next = enter
	}
	return next.Truncate(time.Second)
}

// FirstCheck returns when a session first seen at now, in a full list, is
// first checked: at a phase of its interval that depends only on its id,
// so that the sessions of one list are not all asked for in the same
// second, and never later than NextCheck. Sessions checked together stay
// together after that, which is what lets one request carry many.
func (p Policy) FirstCheck(now, showtime time.Time, id string) time.Time {
	iv, ok := p.Interval(now, showtime)
	if !ok {
		return p.NextCheck(now, showtime)
	}
	return now.Add(time.Duration(phase(id) * float64(iv))).Truncate(time.Second)
}

// phase maps an id to [0, 1), the same on every run and every instance.
func phase(id string) float64 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return float64(h.Sum32()) / (1 << 32)
}

// longestInterval is the longest interval the policy gives: the one at
// the horizon.
func (p Policy) longestInterval() time.Duration {
	now := time.Unix(0, 0)
	iv, _ := p.Interval(now, now.Add(p.Horizon))
	return max(iv, p.NearInterval, p.Base)
}

// Expired reports whether a session showing at showtime has expired at
// now: its showtime + grace has come. A zero showtime never expires.
func (p Policy) Expired(now, showtime time.Time) bool {
	return !showtime.IsZero() && !now.Before(showtime.Add(p.Grace))
}
