// Invariant 6: the near window's staleness, measured on each change of a
// near session's seats in calm stretches, its p99 held to the near
// interval.

package chaos

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// staleSample is one near change of a session's seats in a calm stretch:
// when the truth first showed it, and how long Redis took to show it.
type staleSample struct {
	id      string
	changed time.Time
	took    time.Duration
	shown   bool
}

// staleness measures the near window's staleness in calm stretches.
func (c *checker) staleness() []staleSample {
	var out []staleSample
	if c.firstLoad.IsZero() {
		return nil
	}
	obs := c.observations(true)
	for _, id := range sortedKeys(c.truth) {
		rs, os := c.truth[id], obs[id]
		for i := 0; i+1 < len(rs); i++ {
			a, b := rs[i], rs[i+1]
			if b.firstIdx != a.lastIdx+1 || a.seats == b.seats || b.cancelled || b.showtime.IsZero() {
				continue
			}
			// The change happened after a.last, by b.first at the latest:
			// counting from b.first errs toward the warmer by up to one
			// sampling interval.
			changed := b.first
			if s := b.showtime.Sub(changed); s > nearWindow-nearEntry || s < -nearWindow {
				continue
			}
			if changed.Before(c.firstLoad) {
				continue
			}
			// Shown: the first value Redis showed after a.last that the
			// truth took from then on (the new value, one on the way to
			// it, or a later one). A run that began before a.last and
			// still holds such a value counts from a.last.
			j := sort.Search(len(os), func(j int) bool { return !os[j].first.Before(a.last) })
			if j > 0 && !os[j-1].last.Before(a.last) {
				j--
			}
			sample := staleSample{id: id, changed: changed, took: staleLimit}
			for ; j < len(os) && !os[j].first.After(changed.Add(staleLimit)); j++ {
				o := os[j]
				at := o.first
				if at.Before(a.last) {
					at = a.last
				}
				if o.v != a.seats && heldSeats(rs[i:], o.v, a.last, at.Add(readSkew)) {
					sample.took, sample.shown = max(at.Sub(changed), 0), true
					break
				}
			}
			to := changed.Add(sample.took)
			if !sample.shown && to.After(c.end) {
				continue // the history ended before it could be shown
			}
			if !c.calm(a.last, to) {
				continue
			}
			out = append(out, sample)
		}
	}
	return out
}

// calm reports whether no fault was active within [from, to], nor healed
// less than calmAfterHeal before it.
func (c *checker) calm(from, to time.Time) bool {
	for _, f := range c.faults {
		if overlaps(f.Start, f.End.Add(calmAfterHeal), from, to) {
			return false
		}
	}
	return true
}

// p99 is the nearest-rank 99th percentile of the samples' staleness, and
// the worst sample.
func p99(ss []staleSample) (time.Duration, staleSample) {
	if len(ss) == 0 {
		return 0, staleSample{}
	}
	ds := make([]time.Duration, len(ss))
	worst := ss[0]
	for i, s := range ss {
		ds[i] = s.took
		if s.took > worst.took {
			worst = s
		}
	}
	slices.Sort(ds)
	return ds[int(math.Ceil(0.99*float64(len(ds))))-1], worst
}

// checkStaleness is invariant 6: in calm stretches, the near window's
// p99 staleness is at most the near interval plus a second. Too few
// samples make no violation (the report says so).
func (c *checker) checkStaleness() []Violation {
	ss := c.staleness()
	if len(ss) < minStaleSamples {
		return nil
	}
	p, worst := p99(ss)
	bound := c.nearEvery + time.Second
	if p <= bound {
		return nil
	}
	shown := fmt.Sprintf("shown %v later", worst.took.Round(100*time.Millisecond))
	if !worst.shown {
		shown = fmt.Sprintf("not shown within %v", staleLimit)
	}
	return []Violation{{Invariant: invStaleness, At: worst.changed, What: fmt.Sprintf(
		"near-window staleness p99 %v over %d calm changes, above %v (near interval + 1 s); worst: session %s changed at %s, %s",
		p.Round(100*time.Millisecond), len(ss), bound, worst.id, c.clock(worst.changed), shown)}}
}
