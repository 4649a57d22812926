// Invariants 4 and 5, held on the snapshots of the cache: once calm has
// lasted, the last one equals the truth, and none holds too few sessions.

package chaos

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
)

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
