package warmer

import (
	"iter"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
)

// op is what a change does to the cache.
type op int

const (
	opConfirm op = iota // unchanged: only updated_at (and next_check_at) move
	opAdd
	opUpdate
	opRemove
)

// change is one entity's change. The same value drives the Redis writes, the
// event and the metrics, whatever the kind.
type change struct {
	op      op
	id      string
	old     *record // nil for an addition
	cur     *record // nil for a removal
	changed []string
	reason  string // removals only
}

// outcome is what vista_warmer_changes_total calls a change of this op.
func (o op) outcome() string {
	switch o {
	case opAdd:
		return outAdded
	case opUpdate:
		return outUpdated
	case opRemove:
		return outRemoved
	}
	return outUnchanged
}

// compare turns a cached record and an upstream one into a change; names
// are the kind's data fields.
func compare(names []string, id string, old, cur *record) change {
	if old == nil || old.missing {
		return change{op: opAdd, id: id, old: old, cur: cur, changed: diff(names, nil, cur)}
	}
	if changed := diff(names, old, cur); len(changed) > 0 {
		return change{op: opUpdate, id: id, old: old, cur: cur, changed: changed}
	}
	return change{op: opConfirm, id: id, old: old, cur: cur}
}

func removal(id string, old *record, reason string) change {
	return change{op: opRemove, id: id, old: old, reason: reason}
}

func countOp(changes []change, o op) int {
	n := 0
	for _, c := range changes {
		if c.op == o {
			n++
		}
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// plan is the diff of a full list against the cache: what to add, update,
// confirm and remove, in id order. It is pure: it reads the cache, the
// list and the policy and writes nothing but the list's records (the
// fields it keeps from the cache); commit applies what it returns.
//
// The list may have been fetched while seat checks went on (Run fetches
// beside them): what a check saw after the fetch began is newer than the
// list, so the live fields a check read since stay, an entry a check
// removed since (removed, by when) is not brought back, and an entry keeps
// its place in the schedule (and the company it is checked in) when that
// comes no later than the list would have it.
func plan(sp *spec, p Policy, cache map[string]*record, l *listing, removed map[string]time.Time, now time.Time) []change {
	rows := mergeChecks(sp, p, cache, l.rest(), l.now, removed)
	dropCheckRemoved(sp, l, removed)
	return append(rowChanges(sp, p, cache, rows, l.keep, now), goneChanges(sp, p, cache, l, maps.Keys(cache), now)...)
}

// mergeChecks readies rows of a list listed at listed for the diff (see plan):
// it leaves out what checks removed since and keeps what they saw.
func mergeChecks(sp *spec, p Policy, cache map[string]*record, rows []row, listed time.Time, removed map[string]time.Time) []row {
	if !sp.checked {
		return rows
	}
	out := rows[:0]
	for _, rw := range rows {
		id, cur := rw.id, rw.rec
		if at, ok := removed[id]; ok && at.After(listed) {
			continue // dropCheckRemoved keeps it out of the list as a whole
		}
		out = append(out, rw)
		old := cache[id]
		if old == nil || old.missing {
			continue
		}
		if cur == old {
			// The list said what the cache holds (listing.take): Vista
			// said so again at listed.
			cur.asOf = max(cur.asOf, instantOf(listed))
			continue
		}
		if old.showtime == cur.showtime && old.nextCheck.time().After(listed) &&
			!old.nextCheck.time().After(p.NextCheck(listed, cur.showtime.time())) {
			cur.nextCheck = old.nextCheck
		}
		if old.checked.time().After(listed) {
			vals := cur.vals.all()
			for _, i := range sp.live {
				vals[i] = old.vals.get(i)
			}
			cur.vals = pack(vals)
			cur.checked = old.checked
		}
	}
	return out
}

// dropCheckRemoved takes the entries checks removed after the list was fetched out
// of the list as a whole, before goneChanges reads it: they are neither
// brought back nor removed again.
func dropCheckRemoved(sp *spec, l *listing, removed map[string]time.Time) {
	if !sp.checked {
		return
	}
	for id, at := range removed {
		if at.After(l.now) {
			delete(l.recs, id)
			l.keep[id] = true
		}
	}
}

// rowChanges is the diff of a list's rows against the cache: additions,
// updates and confirmations. An id in keep had a row that could not be
// read besides the one taken: it stays as cached.
func rowChanges(sp *spec, p Policy, cache map[string]*record, rows []row, keep map[string]bool, now time.Time) []change {
	changes := make([]change, 0, len(rows))
	for _, rw := range rows {
		if sp.expires && p.Expired(now, rw.rec.showtime.time()) {
			continue // expired since the list was fetched: the expiry's, not an addition
		}
		if keep[rw.id] { // a film with one bad row of several stays as it was
			continue
		}
		changes = append(changes, compare(sp.fields, rw.id, cache[rw.id], rw.rec))
	}
	return changes
}

// goneChanges is what the list says left the cache, of the entities ids
// names (those that may have: all of the cache, or fewer): the removals.
func goneChanges(sp *spec, p Policy, cache map[string]*record, l *listing, ids iter.Seq[string], now time.Time) []change {
	var changes []change
	for id := range ids {
		old := cache[id]
		if old == nil {
			continue
		}
		if _, ok := l.recs[id]; ok || l.keep[id] {
			continue
		}
		switch {
		case l.cancelled[id]:
			changes = append(changes, removal(id, old, keys.ReasonCancelled))
		case l.expired[id]:
			changes = append(changes, removal(id, old, keys.ReasonExpired))
		case sp.expires && p.Expired(now, old.showtime.time()):
			// left to the expiry, which runs next with the same clock
		case !l.partial:
			changes = append(changes, removal(id, old, keys.ReasonGone))
		}
	}
	slices.SortFunc(changes, func(a, b change) int { return strings.Compare(a.id, b.id) })
	return changes
}
