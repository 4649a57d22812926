package freshness

import "time"

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
