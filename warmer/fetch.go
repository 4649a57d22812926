package warmer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
)

// listing is one whole list as Vista sent it, made into records.
type listing struct {
	recs map[string]*record
	// Sessions Vista lists as cancelled, and those it still lists past
	// their showtime + grace: the reason a cached one leaves by.
	cancelled, expired map[string]bool
	// keep holds the ids of rows Vista sent but that could not be taken:
	// they stay as cached. partial is set when such a row had no readable
	// id, so nothing can be called gone in this reload.
	keep    map[string]bool
	partial bool

	bad        map[string]int // rows refused, by reason
	firstBad   string         // the first refused row, for the log
	duplicates int            // rows whose id an earlier row had
	firstDup   string

	began time.Time // when the fetch began, in real time, for the log
	now   time.Time // when it began, on the warmer's clock

	kind keys.Kind

	// cached, when set, reads the cache the list is taken into: a row
	// that says what the cache holds keeps the cached record (see take).
	cached func(id string) *record

	// emit, when set, hands the writer the rows taken so far, at least
	// chunk of them at a time (see flush), while later pages are still
	// being fetched. pending are the rows taken since the last chunk;
	// repeated holds the ids of rows already handed over that the list
	// named once more (see seen): the last row of each is written at
	// the end, with the rest of pending.
	emit     func(rows []row, again bool) error
	chunk    int
	pending  []row
	handed   bool           // a chunk went to the writer
	waiting  map[string]int // the ids in pending, and where
	repeated map[string]bool
}

// row is one entity of a list, taken as a record.
type row struct {
	id  string
	rec *record
}

// The reasons a row is refused, as the metric labels them.
const (
	badUnreadable = "unreadable"   // a value cannot be read
	badUnsafeID   = "unsafe_id"    // an id cannot be part of a key
	badTooLarge   = "too_large"    // a text value over 4 KiB, raw over 64 KiB
	badOutOfRange = "out_of_range" // a showtime a day past or 400 days ahead
)

var badReasons = []string{badUnreadable, badUnsafeID, badTooLarge, badOutOfRange}

// Bounds on what the warmer takes from Vista, beyond the client's own.
const (
	// MaxRawBytes bounds the raw field (--keep-raw): a longer row is refused.
	MaxRawBytes = 64 << 10
	// A showtime further in the past than this, or further ahead than
	// maxAhead, is refused: no cinema lists such sessions, and a garbled
	// date must not become a key that never expires.
	maxBehind = 24 * time.Hour
	maxAhead  = 400 * 24 * time.Hour
)

func (l *listing) refuse(reason, id, msg string) {
	if l.bad == nil {
		l.bad = map[string]int{}
	}
	l.bad[reason]++
	if l.firstBad == "" {
		l.firstBad = msg
	}
	if id != "" {
		l.keep[id] = true
	}
}

// seen counts a row whose id an earlier row of the list had: the last row
// wins, and whatever an earlier one said of the id is forgotten.
func (l *listing) seen(id string) {
	if l.recs[id] == nil && !l.cancelled[id] && !l.expired[id] && !l.keep[id] {
		return // every row with an id lands in one of these
	}
	l.duplicates++
	if l.firstDup == "" {
		l.firstDup = id
	}
	if l.emit != nil && l.recs[id] != nil {
		if at, ok := l.waiting[id]; ok {
			l.pending[at].rec = nil // not handed over yet: the row that follows stands
			delete(l.waiting, id)
		} else {
			l.repeated[id] = true // handed over already: what the list says last is written at the end
		}
	}
	delete(l.recs, id)
	delete(l.cancelled, id)
	delete(l.expired, id)
	delete(l.keep, id)
}

// take keeps a row's record, unless it is too large to cache.
func (l *listing) take(id string, r *record) {
	if len(r.raw) > MaxRawBytes {
		l.refuse(badTooLarge, id, fmt.Sprintf("%s %s: raw is %d bytes, more than %d", l.kind.Singular(), id, len(r.raw), MaxRawBytes))
		return
	}
	r.rawSum = checksum(r.raw)
	if l.cached != nil {
		// What the cache holds already: its record stands for the row, and
		// the new one is garbage at once. At 500k sessions a reload then
		// holds records only for what changed.
		if old := l.cached(id); old != nil && old.vals == r.vals && old.rawSum == r.rawSum && old.showtime == r.showtime &&
			!old.missing && !old.unsafe && old.absent == nil && old.stray == nil {
			l.put(old.vals.get(0), old)
			return
		}
	}
	if key := r.vals.get(0); key == id {
		id = key // the map's key shares the record's memory
	}
	l.put(id, r)
}

func (l *listing) put(id string, r *record) {
	l.recs[id] = r
	if l.emit != nil {
		l.waiting[id] = len(l.pending)
		l.pending = append(l.pending, row{id, r})
	}
}

// flush hands the rows taken since the last chunk to the writer once
// there are l.chunk of them. The listers call it after each page, so a
// long list is written while its later pages are still on the way. It
// says whether the chunk names an id again that an earlier chunk handed
// over: the writer then takes the earlier chunk in whole before it diffs
// this one (see buildStream).
func (l *listing) flush() error {
	if l.emit == nil || len(l.pending) < l.chunk {
		return nil
	}
	chunk := l.current(l.pending)
	again := false
	for _, r := range chunk {
		if l.repeated[r.id] {
			again = true
			delete(l.repeated, r.id)
		}
	}
	l.pending = nil
	clear(l.waiting)
	l.handed = true
	return l.emit(chunk, again)
}

// current keeps the rows of a chunk that the list has not named again
// since: a row that a later one replaced is not written.
func (l *listing) current(rows []row) []row {
	out := rows[:0]
	for _, r := range rows {
		if r.rec != nil && l.recs[r.id] == r.rec {
			out = append(out, r)
		}
	}
	return out
}

// rest is what of the list the writer has not been handed: all of it when
// no chunk went ahead; otherwise the rows taken since the last chunk and
// those that named an id handed over before.
func (l *listing) rest() []row {
	if !l.handed {
		rows := make([]row, 0, len(l.recs))
		for _, id := range sortedKeys(l.recs) {
			rows = append(rows, row{id, l.recs[id]})
		}
		return rows
	}
	rows := l.current(l.pending)
	for _, id := range sortedKeys(l.repeated) {
		if _, ok := l.waiting[id]; !ok && l.recs[id] != nil {
			rows = append(rows, row{id, l.recs[id]})
		}
	}
	return rows
}

// fetch reads one whole list of a kind from Vista, at the clock's now;
// zones gives the sessions' cinemas their zones. It reads nothing of the
// writer's state but st's cache, under its lock, so Run has it run in the
// background of the writer's other work.
//
// st, when not nil, is the writer's state whose cache a row that says what
// the cache holds already is taken from, so that a reload holds a new
// record only for what changed; a list into an empty cache takes nothing
// from it.
//
// emit, when not nil, is handed the list's rows chunk by chunk while the
// rest is fetched (see listing.flush); the listing returned then holds
// the whole list, of which listing.rest is what emit was not handed.
func (w *Warmer) fetch(ctx context.Context, st *state, k keys.Kind, now time.Time, zones map[string]*time.Location, emit func(rows []row, again bool) error) (*listing, error) {
	l := &listing{recs: map[string]*record{}, cancelled: map[string]bool{}, expired: map[string]bool{}, keep: map[string]bool{},
		began: time.Now(), now: now, kind: k}
	if emit != nil {
		l.emit, l.chunk, l.waiting, l.repeated = emit, w.chunk, map[string]int{}, map[string]bool{}
	}
	cached := false
	if st != nil {
		st.mu.RLock()
		cached = len(st.cache[k]) > 0
		st.mu.RUnlock()
	}
	// A list into an empty cache (a build from nothing) has nothing to
	// take from it: what the writer caches meanwhile is this list's own
	// earlier rows, and a row naming one again is a duplicate (seen).
	if cached {
		cache := st.cache[k]
		l.cached = func(id string) *record {
			st.mu.RLock()
			defer st.mu.RUnlock()
			return cache[id]
		}
	}
	err := w.specs[k].list(ctx, w, l, zones)
	var rowErrs vista.RowErrors
	if errors.As(err, &rowErrs) {
		for _, e := range rowErrs {
			reason := badUnreadable
			switch {
			case errors.Is(e, vista.ErrUnsafeID):
				reason = badUnsafeID
			case errors.Is(e, vista.ErrTooLarge):
				reason = badTooLarge
			}
			// A row without a readable id may be any cached entity, so
			// nothing is called gone; one whose own id is unsafe names
			// nothing the cache can hold.
			if e.ID == "" && reason != badUnsafeID {
				l.partial = true
			}
			l.refuse(reason, e.ID, e.Error())
		}
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", k, err)
	}
	w.reportRows(k, l)
	return l, nil
}

// reportRows logs, once per reload, the rows of a list that were refused
// or repeated, and counts them.
func (w *Warmer) reportRows(k keys.Kind, l *listing) {
	if n := sumCounts(l.bad); n > 0 {
		attrs := []any{"kind", k, "rows", n}
		for _, reason := range badReasons {
			if c := l.bad[reason]; c > 0 {
				attrs = append(attrs, reason, c)
				w.m.badRows.WithLabelValues(string(k), reason).Add(float64(c))
			}
		}
		attrs = append(attrs, "first", l.firstBad)
		w.log.Warn("vista sent rows that cannot be cached; they are not written, and what the cache holds for their ids stays", attrs...)
	}
	if l.duplicates > 0 {
		w.m.duplicates.WithLabelValues(string(k)).Add(float64(l.duplicates))
		w.log.Warn("vista listed some ids more than once; the last row of each counts",
			"kind", k, "duplicates", l.duplicates, "first", l.firstDup)
	}
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}
