package warmer

import (
	"container/heap"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
)

// The schedule: when each cached session is checked next and when it
// expires, kept in two min-heaps so that a step takes what is due in
// O(due · log n) and never walks every session. A heap entry is a promise
// that may have been broken since (the session was removed, checked early,
// or rewritten with another showtime): it counts only while the record it
// names still says the same time, and stale entries are dropped as they
// come to the top. Every write of a session pushes its current times.

// slot is one heap entry: a session id and the time it is due.
type slot struct {
	at instant
	id string
}

func (s slot) time() time.Time { return s.at.time() }

// dueHeap is a min-heap of slots by time, then id, for container/heap.
type dueHeap []slot

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].id < h[j].id
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)   { *h = append(*h, x.(slot)) }
func (h *dueHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	*h = old[:len(old)-1]
	return s
}

// timeline is a heap of due times with lazy deletion: valid says whether
// an entry still stands for its record.
type timeline struct {
	h     dueHeap
	valid func(slot) bool
	// looked counts the entries looked at, stale ones included: the
	// schedule's whole cost in sessions, which tests hold to what is due.
	looked int
}

func (t *timeline) push(at time.Time, id string) {
	if at.IsZero() {
		return
	}
	heap.Push(&t.h, slot{at: instantOf(at), id: id})
}

// peek returns the earliest standing entry, dropping stale ones on the way.
func (t *timeline) peek() (slot, bool) {
	for len(t.h) > 0 {
		t.looked++
		if t.valid(t.h[0]) {
			return t.h[0], true
		}
		heap.Pop(&t.h)
	}
	return slot{}, false
}

// pop removes and returns the earliest standing entry due at or before
// until.
func (t *timeline) pop(until time.Time) (slot, bool) {
	s, ok := t.peek()
	if !ok || s.at > instantOf(until) {
		return slot{}, false
	}
	heap.Pop(&t.h)
	return s, true
}

// next is the earliest standing time, zero when there is none.
func (t *timeline) next() time.Time {
	s, _ := t.peek()
	return s.time()
}

// compact drops the stale entries once they outnumber the standing ones,
// so a day of rewrites does not grow the heap without bound; live is the
// number of entries that can stand (the cached sessions).
func (t *timeline) compact(live int) {
	if len(t.h) < 1024 || len(t.h) < 2*live {
		return
	}
	t.h = slices.DeleteFunc(t.h, func(s slot) bool { return !t.valid(s) })
	sort.Sort(t.h) // a sorted slice is a heap, and its repeats are neighbours
	t.h = slices.Compact(t.h)
}

// showtimes counts the cached sessions by showtime (whole seconds), so the
// tier gauges are read by looking at the few distinct showtimes near now,
// not at every session.
type showtimes struct {
	n      map[int64]int
	total  int
	sorted []int64 // the keys of n, in order; nil when a key came or went
}

func (s *showtimes) add(t time.Time, d int) {
	if s.n == nil {
		s.n = map[int64]int{}
	}
	k := t.Unix()
	s.total += d
	before := s.n[k]
	s.n[k] = before + d
	switch {
	case s.n[k] <= 0:
		delete(s.n, k)
		s.sorted = nil
	case before == 0:
		s.sorted = nil
	}
}

// tiers counts the sessions in each of the policy's tiers at now.
func (s *showtimes) tiers(p Policy, now time.Time) map[string]int {
	s.sort()
	out := make(map[string]int, len(Tiers))
	total := s.total
	// Only the showtimes from grace ago to the horizon need a look; the
	// rest are beyond the horizon, or expired, by counting.
	lo := now.Add(-p.Grace).Unix()
	start, _ := slices.BinarySearch(s.sorted, lo)
	expired := 0
	for _, k := range s.sorted[:start] {
		expired += s.n[k]
	}
	inside := 0
	for _, k := range s.sorted[start:] {
		show := time.Unix(k, 0)
		if show.Sub(now) > p.Horizon {
			break
		}
		out[p.Tier(now, show)] += s.n[k]
		inside += s.n[k]
	}
	out["expired"] += expired
	out["beyond_horizon"] += total - inside - expired
	return out
}

// place puts a session written to the cache on the schedule and counts
// it by showtime; unplace takes the one it replaces off the counts (its
// heap entries go stale by themselves).
//
// A time that stands already is not pushed again (a confirmation keeps
// the showtime and mostly the next check): repeats would grow the heaps by
// the whole cache at every reload. prev is the record cur replaces.
func (st *state) place(id string, prev, cur *record) {
	if prev == nil || prev.showtime != cur.showtime {
		st.expiries.push(cur.showtime.time().Add(st.grace), id)
	}
	if cur.missing {
		return
	}
	st.shows.add(cur.showtime.time(), 1)
	st.offsetShows(cur).add(cur.showtime.time(), 1)
	if prev == nil || prev.missing || prev.nextCheck != cur.nextCheck || st.checker.asked(id) {
		st.checker.put(cur.nextCheck.time(), id)
	}
}

func (st *state) unplace(r *record) {
	if r != nil && !r.missing {
		st.shows.add(r.showtime.time(), -1)
		st.offsetShows(r).add(r.showtime.time(), -1)
	}
}

// offsetShows returns the showtimes counted for r's UTC offset, which its
// showtime field carries (RFC 3339): the window sweeps ask Vista in wall
// time, one window per offset.
func (st *state) offsetShows(r *record) *showtimes {
	off := 0
	if v := r.vals.get(sShowtime); len(v) >= 6 && (v[len(v)-6] == '+' || v[len(v)-6] == '-') {
		h, _ := strconv.Atoi(v[len(v)-5 : len(v)-3])
		m, _ := strconv.Atoi(v[len(v)-2:])
		off = h*3600 + m*60
		if v[len(v)-6] == '-' {
			off = -off
		}
	}
	if st.offsets == nil {
		st.offsets = map[int]*showtimes{}
	}
	s := st.offsets[off]
	if s == nil {
		s = &showtimes{}
		st.offsets[off] = s
	}
	return s
}

// sort makes sorted again when a showtime came or went.
func (s *showtimes) sort() {
	if s.sorted == nil {
		s.sorted = make([]int64, 0, len(s.n))
		for k := range s.n {
			s.sorted = append(s.sorted, k)
		}
		slices.Sort(s.sorted)
	}
}

// within reports whether a showtime in [from, to) is counted.
func (s *showtimes) within(from, to time.Time) bool {
	s.sort()
	i, _ := slices.BinarySearch(s.sorted, from.Unix())
	return i < len(s.sorted) && s.sorted[i] < to.Unix()
}

// schedule sets up the schedule of a state whose cache was just read.
func (w *Warmer) schedule(st *state) {
	grace := w.cfg.Policy.Grace
	st.grace = grace
	var windows []*sweep
	if _, ok := w.cfg.Vista.(WindowFetcher); ok && w.cfg.Windows {
		windows = w.cfg.Policy.sweeps()
	}
	st.checker = newChecker(w.cfg.Policy, w.cfg.CheckBatch, w.m, windows, func(s slot) bool {
		r := st.cache[keys.Sessions][s.id]
		return r != nil && !r.missing && r.nextCheck == s.at
	})
	st.expiries.valid = func(s slot) bool {
		r := st.cache[keys.Sessions][s.id]
		return r != nil && r.showtime != 0 && r.showtime+instant(grace) == s.at
	}
}
