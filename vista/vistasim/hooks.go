// The hooks: changes a test makes to single sessions, films and cinemas
// (seats, removal, cancellation, status, a new showtime, names), and
// Restore, which drops them.

package vistasim

import (
	"time"
)

// SetSeats fixes the seats available of a session at n (negative counts as
// 0) from now on, instead of the generated ones.
func (s *Server) SetSeats(id string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.ov.sessions[id]
	o.seats, o.hasSeats = max(n, 0), true
	s.ov.sessions[id] = o
}

// Remove makes a session disappear from every answer, as if Vista had
// deleted it.
func (s *Server) Remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.ov.sessions[id]
	o.removed = true
	s.ov.sessions[id] = o
}

// Cancel marks a session cancelled (Status "X") from now on; its seats stop
// selling. It stays listed until it would have ended.
func (s *Server) Cancel(id string) {
	now := s.cfg.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.ov.sessions[id]
	if !o.cancelled {
		o.cancelled, o.cancelAt = true, unixSeconds(now)
	}
	s.ov.sessions[id] = o
}

// SetStatus sets a session's Status to one of the numbers of Vista's API
// definition (0 Open, 1 Closed, ... 7 Cancelled, 8 Unknown) from now on. A
// 7 stops its seats selling, as Cancel does.
func (s *Server) SetStatus(id string, status int) {
	now := s.cfg.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.ov.sessions[id]
	o.status, o.hasStatus = int8(status), true
	if status == 7 && !o.cancelled {
		o.cancelled, o.cancelAt = true, unixSeconds(now)
	}
	s.ov.sessions[id] = o
}

// MoveSession moves a session to showtime from now on, as a cinema that
// reschedules a showing does: it is listed with the new showtime (the wall
// time in its cinema's zone) and the business date of it, sells towards
// it, and stays listed until half an hour after it. A session not yet
// published is published now, and a cancellation the schedule holds for
// it is dropped (Cancel still cancels it). It keeps its id and its place
// in the lists, and it is listed only while its business day as generated
// is: a showing moved by a day or two stays listed. Restore moves it back.
// An id the schedule does not hold is ignored.
//
// Tests that need a showing at a given moment of a clock they do not
// control (the demo's real one) make one this way.
func (s *Server) MoveSession(id string, showtime time.Time) {
	now := s.cfg.Clock()
	ci, d, k, ok := s.locate(id)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.dayLocked(d)[ci][k]
	if x.id != id {
		return
	}
	start := showtime.Unix()
	mv := move{start: start, published: min(x.published, now.Unix(), start-3600)}
	s.moves[id] = mv
	x.moveTo(mv)
	s.replaceLocked(d, ci, k, x)
}

// Restore drops every hook's change to the session, film or cinema with
// this id: it is generated again.
func (s *Server) Restore(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, moved := s.moves[id]; moved {
		delete(s.moves, id)
		if ci, d, k, ok := s.locate(id); ok {
			if _, ok := s.days[d]; ok {
				s.replaceLocked(d, ci, k, s.genCinemaDay(s.cinemas[ci], d)[k])
			}
		}
	}
	delete(s.ov.sessions, id)
	delete(s.ov.goneFilms, id)
	delete(s.ov.filmTitles, id)
	delete(s.ov.goneCinemas, id)
	delete(s.ov.cinemaNames, id)
}

// RemoveFilm takes a film out of ScheduledFilms, and its sessions out of
// Sessions, until Restore.
func (s *Server) RemoveFilm(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ov.goneFilms[id] = true
}

// RemoveCinema takes a cinema out of Cinemas, and its films' rows and its
// sessions out of the other lists, until Restore.
func (s *Server) RemoveCinema(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ov.goneCinemas[id] = true
}

// SetFilmTitle renames a film in every ScheduledFilms row.
func (s *Server) SetFilmTitle(id, title string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ov.filmTitles[id] = title
}

// SetCinemaName renames a cinema.
func (s *Server) SetCinemaName(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ov.cinemaNames[id] = name
}
