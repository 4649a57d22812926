package chaos

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
)

// Tolerances of invariants 3 to 6.
const (
	// readSkew: the recorder stamps a read when its answer came, and a
	// read may wait up to its client's timeout (3 s) for Redis (paused,
	// sleeping, busy): two reads stamped less than this apart may have
	// been served in the other order.
	readSkew = 3 * time.Second

	// answerAge: an answer is written some time after Vista computed it
	// (a slow answer, the upstream budget's queue); Vista may have moved
	// within that time.
	answerAge = 30 * time.Second

	// farSlack: every session is refreshed by each full reload; a reload
	// takes a while to fetch and write.
	farSlack = 30 * time.Second

	// nearSlack: a near session is checked every near interval; the check
	// and its write take a moment, and the truth is sampled.
	nearSlack = 5 * time.Second

	// calmAfterHeal: after a heal the warmer retries with backoff and
	// catches up; staleness counts only from this long after.
	calmAfterHeal = 30 * time.Second

	// nearEntry: a session entering the near window still waits for its
	// check under the interval just outside it (60 s and a little), so a
	// change counts for staleness only once the session has been near for
	// that long.
	nearEntry = 70 * time.Second

	// staleLimit: a near change not shown within this long counts as this
	// stale (more than any bound can excuse) and ends the search.
	staleLimit = 5 * time.Minute

	// minStaleSamples: below this many calm near changes, a p99 is one
	// unlucky sample; the report says so and no violation is raised.
	minStaleSamples = 20
)

// obsRun is a stretch of reads in which Redis showed a session at the
// same seats: from first to last (one read: both the same).
type obsRun struct {
	first, last time.Time
	v           int
}

// observations gathers, per session, the seats the recorder read from
// Redis, as runs in time order: the snapshots' hashes and the hashes read
// on events' arrival; with announced, the seats item events announced
// too (at arrival: an event is published with its write, so Redis showed
// it by then).
func (c *checker) observations(announced bool) map[string][]obsRun {
	if out, ok := c.obsMemo[announced]; ok {
		return out
	}
	// The snapshots' runs first: an hour of snapshots holds tens of
	// millions of reads, nearly all the same as the one before.
	snaps := slices.Clone(c.h.Snapshots)
	slices.SortStableFunc(snaps, func(a, b Snapshot) int { return a.At.Compare(b.At) })
	times := make([]time.Time, len(snaps))
	runs := map[string][]obsRun{}
	for i, s := range snaps {
		times[i] = s.At
		for id, f := range s.Hashes[string(keys.Sessions)] {
			v, ok := seatsOf(f)
			if !ok {
				continue
			}
			rs := runs[id]
			if k := len(rs) - 1; k >= 0 && rs[k].v == v {
				rs[k].last = s.At
				continue
			}
			runs[id] = append(rs, obsRun{s.At, s.At, v})
		}
	}
	points := map[string][]obsRun{}
	point := func(id string, at time.Time, v int) { points[id] = append(points[id], obsRun{at, at, v}) }
	for _, e := range c.entries {
		if e.Kind != string(keys.Sessions) || e.ID == "" {
			continue
		}
		if v, ok := seatsOf(e.Hash); ok && !e.HashAt.IsZero() {
			point(e.ID, e.HashAt, v)
		}
		if announced && e.Event == keys.EventItem && e.Seats != nil {
			point(e.ID, e.At, *e.Seats)
		}
	}

	out := map[string][]obsRun{}
	for id := range runs {
		out[id] = nil
	}
	for id := range points {
		out[id] = nil
	}
	for id := range out {
		out[id] = mergeObservations(runs[id], points[id], times)
	}
	c.obsMemo[announced] = out
	return out
}

// mergeObservations merges a session's snapshot runs and single reads
// into runs in time order. A read of another value within a snapshot run
// splits it at the snapshots on either side: Redis showed A, then B, then
// A again.
func mergeObservations(runs, points []obsRun, times []time.Time) []obsRun {
	slices.SortStableFunc(points, func(a, b obsRun) int { return a.first.Compare(b.first) })
	runs = slices.Clone(runs)
	var all []obsRun
	i := 0
	for _, p := range points {
		for i < len(runs) && runs[i].last.Before(p.first) {
			all = append(all, runs[i])
			i++
		}
		if i < len(runs) && runs[i].first.Before(p.first) && runs[i].v != p.v {
			left := runs[i]
			j, _ := slices.BinarySearchFunc(times, p.first, func(t, x time.Time) int { return t.Compare(x) })
			if j > 0 && !times[j-1].Before(left.first) {
				left.last = times[j-1] // the last snapshot before the read
				all = append(all, left)
			}
			for j < len(times) && !times[j].After(p.first) {
				j++
			}
			if j < len(times) && !times[j].After(runs[i].last) {
				runs[i].first = times[j] // the first snapshot after it
			} else {
				i++ // nothing of the run is left after the read
			}
		}
		all = append(all, p)
	}
	all = append(all, runs[i:]...)
	if len(all) == 0 {
		return nil
	}
	slices.SortStableFunc(all, func(a, b obsRun) int { return a.first.Compare(b.first) })
	merged := all[:1]
	for _, r := range all[1:] {
		if k := len(merged) - 1; merged[k].v == r.v {
			if r.last.After(merged[k].last) {
				merged[k].last = r.last
			}
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// changedNear reports whether the truth changed between two samples that
// overlap [from, to]: Vista's seats are sampled once a second, and a
// session set twice within one sample (the nemesis sells seats all the
// time) had a value between them that no sample shows.
func changedNear(rs []truthRun, from, to time.Time) bool {
	for i := 0; i+1 < len(rs); i++ {
		if overlaps(rs[i].last, rs[i+1].first, from, to) {
			return true
		}
	}
	return false
}

// checkSeats is invariant 3: per session, Redis never shows seats older
// than a value it has already shown (A, B, A), and never a value Vista
// did not have.
func (c *checker) checkSeats() []Violation {
	var vs []Violation
	obs := c.observations(false)
	for _, id := range sortedKeys(obs) {
		os, rs := obs[id], c.truth[id]
		if len(os) == 0 {
			continue
		}

		// Values Vista never had, up to the moment Redis showed them. The
		// window reaches back to the start: a far session's value may be
		// as old as the last full reload that went through, and faults
		// can hold reloads back for long; staleness is invariant 6's. A
		// value first shown soon after Vista changed may be one between
		// two samples. A value Redis held when the recording began may be
		// older than Vista's first sample: the warmers load before the
		// recorder starts.
		if len(rs) > 0 {
			invented := map[int]bool{}
			for _, o := range os {
				if invented[o.v] || o.first.Before(rs[0].first) || !o.first.After(c.firstSnap.Add(readSkew)) {
					continue // reported already, or older than the recording
				}
				if heldSeats(rs, o.v, time.Time{}, o.first.Add(readSkew)) ||
					changedNear(rs, o.first.Add(-answerAge-readSkew), o.first.Add(readSkew)) {
					continue
				}
				invented[o.v] = true
				vs = append(vs, Violation{Invariant: invSeats, At: o.first, What: fmt.Sprintf(
					"session %s: Redis shows %d seats, a value Vista never had (Vista: %s)",
					id, o.v, truthSummary(rs, o.first))})
			}
		}

		// Going back: the current value cur, first shown at curFirst, and
		// when each value was last shown.
		lastSeen := map[int]time.Time{}
		cur, curFirst := os[0].v, os[0].first
		for _, o := range os {
			if o.v == cur {
				lastSeen[o.v] = o.last
				continue
			}
			prev, back := lastSeen[o.v]
			lastSeen[o.v] = o.last
			if back && !o.first.After(curFirst.Add(readSkew)) {
				continue // two reads close together, served in either order
			}
			if back {
				// The truth may itself have gone back: a move toward the
				// old value between the moment the newer one was fetched
				// (after the old one was last shown, give or take an
				// answer's age) and now.
				dir := cmp.Compare(o.v, cur)
				_, lost := c.lossNear(o.first, 2*c.period)
				if !lost && !movedToward(rs, dir, prev.Add(-answerAge), o.first.Add(readSkew)) {
					vs = append(vs, Violation{Invariant: invSeats, At: o.first, What: fmt.Sprintf(
						"session %s: Redis went back to %d seats (last shown %s) after showing %d since %s; Vista did not (%s)",
						id, o.v, c.clock(prev), cur, c.clock(curFirst), truthSummary(rs, o.first))})
				}
			}
			cur, curFirst = o.v, o.first
		}
	}
	return vs
}

// truthSummary shows the truth's seats around t, briefly.
func truthSummary(rs []truthRun, t time.Time) string {
	if len(rs) == 0 {
		return "never listed"
	}
	i := sort.Search(len(rs), func(i int) bool { return rs[i].last.After(t) })
	lo, hi := max(i-3, 0), min(i+2, len(rs))
	var parts []string
	for _, r := range rs[lo:hi] {
		parts = append(parts, fmt.Sprintf("%d from %s", r.seats, r.first.Format("15:04:05")))
	}
	return strings.Join(parts, ", ")
}

// sortedKeys returns a map's keys in order, so that the checker's output
// does not vary from run to run.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
