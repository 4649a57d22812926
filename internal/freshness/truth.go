package freshness

import (
	"time"

	"github.com/vista-warmer/vista-warmer/internal/fakeclock"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// ChangeTimes returns when a non-increasing step function changes within
// (lo, hi]: for each change, the first instant, to within eps, at which
// seats shows the new value. seats must never rise as t grows; then two
// equal readings mean nothing changed between them, and bisection finds
// every step with about log2((hi-lo)/eps) readings each.
func ChangeTimes(seats func(time.Time) int, lo, hi time.Time, eps time.Duration) []time.Time {
	if !hi.After(lo) {
		return nil
	}
	var out []time.Time
	var split func(lo time.Time, vlo int, hi time.Time, vhi int)
	split = func(lo time.Time, vlo int, hi time.Time, vhi int) {
		if vlo == vhi {
			return
		}
		if hi.Sub(lo) <= eps {
			out = append(out, hi)
			return
		}
		mid := lo.Add(hi.Sub(lo) / 2)
		vmid := seats(mid)
		split(lo, vlo, mid, vmid)
		split(mid, vmid, hi, vhi)
	}
	split(lo, seats(lo), hi, seats(hi))
	return out
}

// obs is one reading of a session that reached Redis: asked of Vista at
// at, in Redis from in (at plus the modelled latency).
type obs struct {
	at, in time.Time
}

// firstIn returns when the change at c reached Redis: the earliest arrival
// of a reading asked at or after c. With latency a later reading may
// arrive first; none asked after the best arrival so far can beat it.
// False when no reading came after c.
func firstIn(readings []obs, c time.Time) (time.Time, bool) {
	lo, hi := 0, len(readings)
	for lo < hi {
		m := (lo + hi) / 2
		if readings[m].at.Before(c) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(readings) {
		return time.Time{}, false
	}
	best := readings[lo].in
	for _, r := range readings[lo+1:] {
		if r.at.After(best) {
			break
		}
		if r.in.Before(best) {
			best = r.in
		}
	}
	return best, true
}

// truth is when each measured session's seats changed upstream.
type truth struct {
	oracle   *vistasim.Server // the same chain, asked directly
	watch    map[string]bool
	showtime map[string]time.Time
	changes  map[string][]time.Time
	total    int
	busiest  time.Time // the hour of the most showtimes between From and To
}

// buildTruth lists the sessions whose showtime lies where a change in
// [from, to) can fall in the curve, and finds every seat change of theirs
// in [from, to) within curveFrom..curveTo minutes of the showtime.
func buildTruth(chain vistasim.Config, from, to time.Time) *truth {
	clock := fakeclock.New(from)
	chain.Clock = clock.Now
	tr := &truth{oracle: vistasim.New(chain), watch: map[string]bool{},
		showtime: map[string]time.Time{}, changes: map[string][]time.Time{}}
	lo := from.Add(-curveTo * time.Minute)
	hi := to.Add(truthFrom)
	// A session is listed from days before its showtime until half an
	// hour after: a list every half hour sees each.
	for t := lo; t.Before(hi.Add(30 * time.Minute)); t = t.Add(30 * time.Minute) {
		clock.Set(t)
		for _, s := range tr.oracle.Sessions() {
			if !s.Showtime.Before(lo) && s.Showtime.Before(hi) {
				tr.watch[s.ID] = true
				tr.showtime[s.ID] = s.Showtime
			}
		}
	}
	perHour := map[time.Time]int{}
	for id, st := range tr.showtime {
		if !st.Before(from) && st.Before(to) {
			perHour[st.UTC().Truncate(time.Hour)]++
		}
		a := maxTime(from, st.Add(-truthFrom))
		b := minTime(to, st.Add(curveTo*time.Minute))
		seats := func(t time.Time) int {
			n, _ := tr.oracle.SeatsAt(id, t)
			return n
		}
		for _, c := range ChangeTimes(seats, a, b, time.Millisecond) {
			if _, listed := tr.oracle.SeatsAt(id, c); listed {
				tr.changes[id] = append(tr.changes[id], c)
				tr.total++
			}
		}
	}
	for h, n := range perHour {
		if n > perHour[tr.busiest] || (n == perHour[tr.busiest] && h.Before(tr.busiest)) {
			tr.busiest = h
		}
	}
	return tr
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
