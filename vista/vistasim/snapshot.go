// Snapshots: what one request sees (the generated days it needs and a
// copy of the hooks' changes), and the rows of each list taken from it.

package vistasim

import (
	"slices"
	"strconv"
	"sync"
)

// snapshot is what a request sees: the generated days it needs and a copy
// of the hooks' changes, taken under the lock and read without it.
type snapshot struct {
	s          *Server
	now        float64
	days       [][][]session // in order of business day
	ov         overrides
	cinemaGone []bool
	filmGone   []bool
	filmTitle  []string
	cinemaName []string
	lo         int32
}

func (s *Server) snapshot() *snapshot {
	now := s.cfg.Clock()
	sn := &snapshot{s: s, now: unixSeconds(now)}
	s.mu.Lock()
	lo, hi := s.ensureLocked(now)
	sn.lo = lo
	sn.days = make([][][]session, 0, hi-lo+1)
	for d := lo; d <= hi; d++ {
		sn.days = append(sn.days, s.days[d])
	}
	sn.ov = s.ov.clone()
	s.mu.Unlock()

	sn.cinemaGone = make([]bool, len(s.cinemas))
	sn.cinemaName = make([]string, len(s.cinemas))
	for i, c := range s.cinemas {
		sn.cinemaGone[i] = sn.ov.goneCinemas[c.ID]
		sn.cinemaName[i] = c.Name
		if n, ok := sn.ov.cinemaNames[c.ID]; ok {
			sn.cinemaName[i] = n
		}
	}
	sn.filmGone = make([]bool, len(s.films))
	sn.filmTitle = make([]string, len(s.films))
	for i, f := range s.films {
		sn.filmGone[i] = sn.ov.goneFilms[f.ID]
		sn.filmTitle[i] = f.Title
		if t, ok := sn.ov.filmTitles[f.ID]; ok {
			sn.filmTitle[i] = t
		}
	}
	return sn
}

// sessionRow is a session with its state at the snapshot's time.
type sessionRow struct {
	x       *session
	seats   int32
	soldout int8
	status  byte // 'O' open or 'X' cancelled
	code    int8 // Vista's SessionStatus number
}

// listed reports whether x is in the listing at the snapshot's time.
func (sn *snapshot) listed(x *session) bool {
	now := sn.now
	if now < float64(x.published) || now >= float64(x.start+listedAfter) {
		return false
	}
	if sn.cinemaGone[x.c.idx] || sn.filmGone[x.f.idx] {
		return false
	}
	return len(sn.ov.sessions) == 0 || !sn.ov.sessions[x.id].removed
}

// fill computes the state of listed sessions at the snapshot's time. It is
// the costly part, so a page fills only its own rows.
func (sn *snapshot) fill(rows []sessionRow) {
	for i := range rows {
		row := &rows[i]
		x := row.x
		var o sessionOverride
		if len(sn.ov.sessions) > 0 {
			o = sn.ov.sessions[x.id]
		}
		at, status := sn.now, byte('O')
		if x.cancelAt != 0 && sn.now >= float64(x.cancelAt) {
			at, status = float64(x.cancelAt), 'X'
		}
		if o.cancelled {
			at, status = min(at, o.cancelAt), 'X'
		}
		seats := int(x.cap) - x.sold(at)
		if o.hasSeats {
			seats = o.seats
		}
		row.seats, row.status, row.soldout = int32(seats), status, 0
		row.code = 0
		if status == 'X' {
			row.code = 7
		}
		if o.hasStatus {
			row.code = o.status
		}
		switch {
		case seats <= 0:
			row.soldout = 2
		case seats*10 <= int(x.cap):
			row.soldout = 1
		}
	}
}

var sessionRowPool = sync.Pool{New: func() any { return new([]sessionRow) }}

func putSessionRows(rows []sessionRow) {
	if cap(rows) < 1<<10 {
		return
	}
	clear(rows) // let past days go
	rows = rows[:0]
	sessionRowPool.Put(&rows)
}

// listSessions returns the sessions listed now, in Vista's order; with ids
// (a $filter), only those. Their state is not filled in yet. It also
// returns the rows it scanned: every listed session, or one lookup per id.
func (sn *snapshot) listSessions(ids []string) ([]sessionRow, int) {
	if ids != nil {
		return sn.findSessions(ids)
	}
	rows := sn.scanSessions(nil)
	return rows, len(rows)
}

// windowSessions returns the sessions listed now whose Showtime, the wall
// time their row carries, satisfies every bound of one group or more of
// the window, each once, in Vista's order, and the rows it scanned: every
// listed session, once, however many groups the window has.
func (sn *snapshot) windowSessions(window [][]bound) ([]sessionRow, int) {
	scanned := 0
	rows := sn.scanSessions(func(x *session) bool {
		scanned++
		for _, group := range window {
			if holdsAll(group, &x.showtime) {
				return true
			}
		}
		return false
	})
	return rows, scanned
}

// holdsAll reports whether a Showtime satisfies every bound of a group.
func holdsAll(group []bound, showtime *[19]byte) bool {
	for i := range group {
		if !group[i].holds(showtime) {
			return false
		}
	}
	return true
}

// scanSessions walks the listed sessions in Vista's order and returns
// those keep keeps (all, when keep is nil).
func (sn *snapshot) scanSessions(keep func(*session) bool) []sessionRow {
	rows := *sessionRowPool.Get().(*[]sessionRow)
	for _, day := range sn.days {
		for _, list := range day {
			for i := range list {
				if x := &list[i]; sn.listed(x) && (keep == nil || keep(x)) {
					rows = append(rows, sessionRow{x: x})
				}
			}
		}
	}
	return rows
}

// findSessions looks the ids up by the number they carry, without a scan;
// it returns the rows found and the lookups made, one per distinct id.
func (sn *snapshot) findSessions(ids []string) ([]sessionRow, int) {
	s := sn.s
	perDay := int32(s.cfg.Screens * s.cfg.ShowsPerDay)
	var rows []sessionRow
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		x := sn.lookup(id, perDay)
		if x == nil {
			continue
		}
		if sn.listed(x) {
			rows = append(rows, sessionRow{x: x})
		}
	}
	slices.SortFunc(rows, func(a, b sessionRow) int { return int(sign(a.x.ord - b.x.ord)) })
	return rows, len(seen)
}

func (sn *snapshot) lookup(id string, perDay int32) *session {
	dash := -1
	for i := 0; i < len(id); i++ {
		if id[i] == '-' {
			dash = i
			break
		}
	}
	if dash < 0 {
		return nil
	}
	ci, ok := sn.s.cinemaByID[id[:dash]]
	if !ok {
		return nil
	}
	num, err := strconv.ParseInt(id[dash+1:], 10, 32)
	if err != nil || num < 1 {
		return nil
	}
	d := int32((num-1)/int64(perDay)) + epochDay
	k := int((num - 1) % int64(perDay))
	if d < sn.lo || int(d-sn.lo) >= len(sn.days) {
		return nil
	}
	x := &sn.days[d-sn.lo][ci][k]
	if x.id != id {
		return nil
	}
	return x
}

func sign(v int64) int64 {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

// cinemaRow is a cinema as listed now.
type cinemaRow struct {
	c    *cinema
	name string
}

// listCinemas returns the cinemas listed now (with ids, only those) and
// the rows it scanned: every listed cinema.
func (sn *snapshot) listCinemas(ids []string) ([]cinemaRow, int) {
	want := idSet(ids)
	var rows []cinemaRow
	scanned := 0
	for i, c := range sn.s.cinemas {
		if sn.cinemaGone[i] {
			continue
		}
		scanned++
		if want != nil && !want[c.ID] {
			continue
		}
		rows = append(rows, cinemaRow{c: c, name: sn.cinemaName[i]})
	}
	return rows, scanned
}

// filmRow is one row of ScheduledFilms: a film at a cinema.
type filmRow struct {
	c     *cinema
	f     *film
	id    string
	title string
}

// listFilms returns the ScheduledFilms rows listed now (with ids, only
// those) and the rows it scanned: every listed one.
func (sn *snapshot) listFilms(ids []string) ([]filmRow, int) {
	want := idSet(ids)
	var rows []filmRow
	scanned := 0
	for ci, c := range sn.s.cinemas {
		if sn.cinemaGone[ci] {
			continue
		}
		for _, fi := range c.films {
			if sn.filmGone[fi] {
				continue
			}
			scanned++
			f := sn.s.films[fi]
			id := c.ID + "-" + f.ID
			if want != nil && !want[id] {
				continue
			}
			rows = append(rows, filmRow{c: c, f: f, id: id, title: sn.filmTitle[fi]})
		}
	}
	return rows, scanned
}

func idSet(ids []string) map[string]bool {
	if ids == nil {
		return nil
	}
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}
