package vistasim

import (
	"time"
)

// SeatsAt returns the seats available that a request at t would report for
// the session id, and whether the session is listed at t; an id the
// schedule never held gives (0, false). The hooks' changes (MoveSession's
// too) count as they stand now, whatever t. Without SetSeats the seats
// never rise as t grows, so a caller can find when they change by
// bisection; it is cheap (no snapshot of the lists) for that reason.
func (s *Server) SeatsAt(id string, t time.Time) (int, bool) {
	ci, d, k, ok := s.locate(id)
	if !ok {
		return 0, false
	}

	s.mu.Lock()
	// Generated as a request would, if it was not; a day long past is
	// forgotten again by the next request.
	x := &s.dayLocked(d)[ci][k]
	o := s.ov.sessions[id]
	gone := s.ov.goneCinemas[x.c.ID] || s.ov.goneFilms[x.f.ID] || o.removed
	s.mu.Unlock()
	if x.id != id {
		return 0, false
	}

	now := unixSeconds(t)
	listed := now >= float64(x.published) && now < float64(x.start+listedAfter) && !gone
	at := now
	if x.cancelAt != 0 && now >= float64(x.cancelAt) {
		at = float64(x.cancelAt)
	}
	if o.cancelled {
		at = min(at, o.cancelAt)
	}
	seats := int(x.cap) - x.sold(at)
	if o.hasSeats {
		seats = o.seats
	}
	return seats, listed
}
