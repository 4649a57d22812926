// What is listed now, as a test reads it: the sessions with their state,
// and the ids of the cinemas and the films.

package vistasim

import (
	"strconv"
	"time"
)

// SessionInfo is a session as listed at the time of the call.
type SessionInfo struct {
	ID             string // composite, e.g. "1001-196417"
	CinemaID       string
	FilmID         string // ScheduledFilmId
	SessionID      string
	Showtime       time.Time // in the zone the cinema's wall times were generated in
	ScreenNumber   int
	Capacity       int
	SeatsAvailable int
	SoldoutStatus  int
	Status         string // "O" open, "X" cancelled
	StatusCode     int    // Vista's number: 0 open, 7 cancelled, or what SetStatus set
	Published      time.Time
}

// Sessions returns the sessions a full Sessions request would list now, in
// the same order.
func (s *Server) Sessions() []SessionInfo {
	sn := s.snapshot()
	rows, _ := sn.listSessions(nil)
	sn.fill(rows)
	out := make([]SessionInfo, len(rows))
	for i, r := range rows {
		x := r.x
		out[i] = SessionInfo{
			ID:             x.id,
			CinemaID:       x.c.ID,
			FilmID:         x.f.ID,
			SessionID:      strconv.Itoa(int(x.num)),
			Showtime:       time.Unix(x.start, 0).In(x.c.loc),
			ScreenNumber:   int(x.screen),
			Capacity:       int(x.cap),
			SeatsAvailable: int(r.seats),
			SoldoutStatus:  int(r.soldout),
			Status:         string(r.status),
			StatusCode:     int(r.code),
			Published:      time.Unix(x.published, 0).In(x.c.loc),
		}
	}
	return out
}

// CinemaIDs returns the ids of the cinemas listed now.
func (s *Server) CinemaIDs() []string {
	sn := s.snapshot()
	var ids []string
	for i, c := range s.cinemas {
		if !sn.cinemaGone[i] {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// FilmIDs returns the ScheduledFilmIds of the films listed now.
func (s *Server) FilmIDs() []string {
	sn := s.snapshot()
	var ids []string
	for i, f := range s.films {
		if !sn.filmGone[i] {
			ids = append(ids, f.ID)
		}
	}
	return ids
}
