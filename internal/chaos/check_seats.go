package chaos

import (
	"cmp"
	"fmt"
	"maps"
	"math"
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

// checkFinal is invariant 4: once calm has lasted two reload periods, the
// last snapshot equals the truth.
func (c *checker) checkFinal() []Violation {
	h := c.h
	calm := h.Calm
	if calm.IsZero() {
		calm = h.Start
	}
	due := calm.Add(2 * c.period)
	var s *Snapshot
	for i := range h.Snapshots {
		if !h.Snapshots[i].At.Before(due) && (s == nil || h.Snapshots[i].At.After(s.At)) {
			s = &h.Snapshots[i]
		}
	}
	if s == nil {
		return []Violation{{Invariant: invFinal, At: c.end, What: fmt.Sprintf(
			"the run ended too soon: no snapshot at or after the calm plus two reload periods (%s)", c.clock(due))}}
	}

	var vs []Violation
	add := func(what string, ids []string, detail func(string) string) {
		if len(ids) == 0 {
			return
		}
		slices.Sort(ids)
		var eg []string
		for _, id := range ids[:min(len(ids), 3)] {
			eg = append(eg, detail(id))
		}
		vs = append(vs, Violation{Invariant: invFinal, At: s.At, What: fmt.Sprintf(
			"%s: %d (e.g. %s)", what, len(ids), strings.Join(eg, "; "))})
	}
	plain := func(id string) string { return id }
	if s.Meta == nil {
		vs = append(vs, Violation{Invariant: invFinal, At: s.At, What: "P:meta is missing"})
	}

	// A session key expires at showtime + grace and the warmer unindexes
	// it about then; the history does not carry the grace, so sessions
	// already past their showtime may be half gone.
	past := func(id string) bool {
		rs := c.truth[id]
		return len(rs) > 0 && !rs[len(rs)-1].showtime.IsZero() && !rs[len(rs)-1].showtime.After(s.At)
	}

	// The index equals the keys, for every kind.
	kinds := map[string]bool{}
	for k := range s.Index {
		kinds[k] = true
	}
	for k := range s.Hashes {
		kinds[k] = true
	}
	for _, k := range sortedKeys(kinds) {
		indexed := map[string]bool{}
		var noHash, noIndex, badID []string
		for _, id := range s.Index[k] {
			indexed[id] = true
			if s.Hashes[k][id] == nil && !(k == string(keys.Sessions) && past(id)) {
				noHash = append(noHash, id)
			}
		}
		for id, f := range s.Hashes[k] {
			if f == nil {
				continue
			}
			if !indexed[id] && !(k == string(keys.Sessions) && past(id)) {
				noIndex = append(noIndex, id)
			}
			if f["id"] != id {
				badID = append(badID, id)
			}
		}
		add("P:"+k+" names ids with no hash", noHash, plain)
		add(k+" hashes no index names", noIndex, plain)
		add(k+" hashes whose id field is not their id", badID, func(id string) string {
			return fmt.Sprintf("%s says %q", id, s.Hashes[k][id]["id"])
		})
	}

	// Sessions against the truth.
	ti := c.nearestTruth(s.At)
	if ti < 0 {
		return append(vs, Violation{Invariant: invFinal, At: s.At, What: "no truth was recorded to compare with"})
	}
	cached := map[string]bool{}
	for _, id := range cachedSessions(*s) {
		cached[id] = true
	}
	// Required: live now and a reload period ago, so that a session
	// published (or restored) since the last reload is not yet owed.
	need := maps.Clone(c.live(ti))
	if oi := c.nearestTruth(s.At.Add(-c.period - farSlack)); oi >= 0 && oi != ti {
		before := c.live(oi)
		for id := range need {
			if !before[id] {
				delete(need, id)
			}
		}
	}
	var missing, extra, seats, showtime []string
	for id := range need {
		if !cached[id] {
			missing = append(missing, id)
		}
	}
	hs := s.Hashes[string(keys.Sessions)]
	for id := range cached {
		rs := c.truth[id]
		from, to := s.At.Add(-c.period-farSlack), s.At.Add(c.nearEvery)
		if len(rs) > 0 && !rs[len(rs)-1].showtime.IsZero() && rs[len(rs)-1].showtime.Sub(s.At).Abs() <= nearWindow {
			from = s.At.Add(-2*c.nearEvery - nearSlack)
		}
		if !listedOpen(rs, s.At.Add(-c.period-farSlack), to) {
			// Vista stops listing a session after it began; the warmer
			// keeps it until its grace ends.
			if !past(id) {
				extra = append(extra, id)
			}
			continue
		}
		if v, ok := seatsOf(hs[id]); !ok || !(heldSeats(rs, v, from, to) || changedNear(rs, from, to)) {
			seats = append(seats, id)
		}
		if st, err := time.Parse(time.RFC3339, hs[id]["showtime"]); err == nil && !heldShowtime(rs, st, s.At.Add(-c.period-farSlack), to) {
			showtime = append(showtime, id)
		}
	}
	add("sessions Vista lists that Redis lacks (hash or index)", missing, plain)
	add("sessions in Redis that Vista does not list, or cancelled", extra, plain)
	add("sessions whose seats differ from Vista's", seats, func(id string) string {
		return fmt.Sprintf("%s: %s in Redis, Vista %s", id, hs[id]["seats_available"], truthSummary(c.truth[id], s.At))
	})
	add("sessions whose showtime differs from Vista's", showtime, func(id string) string {
		return fmt.Sprintf("%s: %s in Redis", id, hs[id]["showtime"])
	})
	return vs
}

// heldShowtime reports whether a run overlapping [from, to] has the
// showtime st (or carries none).
func heldShowtime(rs []truthRun, st time.Time, from, to time.Time) bool {
	for _, r := range rs {
		if overlaps(r.first, r.last, from, to) && (r.showtime.IsZero() || r.showtime.Equal(st)) {
			return true
		}
	}
	return false
}

// checkDrop is invariant 5: no snapshot holds fewer sessions than
// (1 - max-drop) of the truth, except while Redis itself lost data (the
// fault's span and two reload periods after) and before the first full
// load. Consecutive short snapshots make one violation.
func (c *checker) checkDrop() []Violation {
	var vs []Violation
	var open *Violation
	low, lowOf, n := math.MaxInt, 0, 0
	flush := func() {
		if open != nil {
			open.What = fmt.Sprintf("%s; %d snapshots, as few as %d of %d", open.What, n, low, lowOf)
			vs = append(vs, *open)
			open = nil
		}
	}
	snaps := slices.Clone(c.h.Snapshots)
	slices.SortStableFunc(snaps, func(a, b Snapshot) int { return a.At.Compare(b.At) })
	for _, s := range snaps {
		if c.firstLoad.IsZero() || s.At.Before(c.firstLoad) {
			continue
		}
		if _, ok := c.lossNear(s.At, 2*c.period); ok {
			flush()
			continue
		}
		ti := c.nearestTruth(s.At)
		if ti < 0 {
			continue
		}
		// The truth counts only sessions still ahead of their showtime;
		// Redis counts every cached one (some past their showtime, within
		// the grace): the comparison errs toward the cache.
		want := c.liveCount(ti)
		got := len(cachedSessions(s))
		if float64(got) >= (1-c.maxDrop)*float64(want) {
			flush()
			continue
		}
		if open == nil {
			open = &Violation{Invariant: invDrop, At: s.At, What: fmt.Sprintf(
				"Redis held %d sessions while Vista listed %d (at least %.0f%% due, --max-drop %.0f%%)",
				got, want, 100*(1-c.maxDrop), 100*c.maxDrop)}
			low, lowOf, n = got, want, 0
		}
		n++
		if got < low {
			low, lowOf = got, want
		}
	}
	flush()
	return vs
}

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
