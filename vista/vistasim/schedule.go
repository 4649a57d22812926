// The schedule: sessions generated one business day at a time from the
// seed, with MoveSession's moves applied, and the seats each has sold at a
// given time.

package vistasim

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	day        = 24 * time.Hour
	daySeconds = int64(day / time.Second)
	// listedAfter is how long a session stays listed after its showtime.
	listedAfter = 30 * 60
	// epochDay anchors session numbers, so they read like Vista's (small
	// integers) and stay the same whenever a day is generated.
	epochDay = 10957 // 2000-01-01
)

// session is one generated showing. Everything that changes with time is
// computed from these fields and the clock.
type session struct {
	id        string
	c         *cinema
	f         *film
	num       int32 // SessionId
	screen    int16 // 1-based
	cap       int16
	attrs     uint8 // index into attributeSets
	ord       int64 // listing order
	start     int64 // showtime, Unix seconds
	published int64 // Unix seconds
	cancelAt  int64 // Unix seconds; 0 when never cancelled
	demand    float64
	phase     float64
	showtime  [19]byte // local wall time, "2026-11-25T20:00:00"
	business  [19]byte // "2026-11-25T00:00:00"
}

// attributeSets are the SessionAttributesNames a session can have.
var attributeSets = [][]string{
	{}, {}, {}, {"OV"}, {"OV"}, {"3D"}, {"3D", "OV"}, {"IMAX"}, {"Dolby Atmos"}, {"Kids"}, {"OV", "Subtitled"},
}

// ensureLocked generates the business days around now that are missing and
// forgets the ones long past. The caller holds s.mu.
func (s *Server) ensureLocked(now time.Time) (lo, hi int32) {
	lo, hi = s.dayRange(now)
	for d := lo; d <= hi; d++ {
		s.dayLocked(d)
	}
	for d := range s.days {
		if d < lo-1 {
			delete(s.days, d)
		}
	}
	return lo, hi
}

// dayLocked returns business day d, generated with MoveSession's moves if
// it was not yet. The caller holds s.mu.
func (s *Server) dayLocked(d int32) [][]session {
	day, ok := s.days[d]
	if ok {
		return day
	}
	day = s.genDay(d)
	for id, mv := range s.moves {
		if ci, md, k, ok := s.locate(id); ok && md == d && day[ci][k].id == id {
			day[ci][k].moveTo(mv)
		}
	}
	s.days[d] = day
	return day
}

// replaceLocked puts x in the place of session k of cinema ci on day d. It
// copies the day's lists rather than write over them: a snapshot taken
// before may be reading them. The caller holds s.mu.
func (s *Server) replaceLocked(d int32, ci, k int, x session) {
	day := slices.Clone(s.days[d])
	day[ci] = slices.Clone(day[ci])
	day[ci][k] = x
	s.days[d] = day
}

// locate says where the schedule holds the session id: its cinema's
// index, its business day and its index within the cinema's day. It reads
// only the id (the day need not be generated), so the caller still checks
// that the session found there has this id.
func (s *Server) locate(id string) (ci int, d int32, k int, ok bool) {
	cid, n, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, 0, false
	}
	ci, found = s.cinemaByID[cid]
	if !found {
		return 0, 0, 0, false
	}
	num, err := strconv.ParseInt(n, 10, 32)
	if err != nil || num < 1 {
		return 0, 0, 0, false
	}
	perDay := int64(s.cfg.Screens * s.cfg.ShowsPerDay)
	return ci, int32((num-1)/perDay) + epochDay, int((num - 1) % perDay), true
}

// move is where MoveSession put a session: its showtime and when it was
// published, Unix seconds.
type move struct{ start, published int64 }

// moveTo gives x the showtime and publication of mv, and the business date
// of its new showtime (one before 06:00 belongs to the day before); the
// schedule's cancellation of it is dropped.
func (x *session) moveTo(mv move) {
	x.start, x.published, x.cancelAt = mv.start, mv.published, 0
	t := time.Unix(mv.start, 0).In(x.c.loc)
	appendWall(x.showtime[:0], t)
	b := t.Add(-6 * time.Hour)
	appendWall(x.business[:0], time.Date(b.Year(), b.Month(), b.Day(), 0, 0, 0, 0, time.UTC))
}

// dayRange is the business days whose sessions can be listed at now: a
// business day's showings run from about 10:30 to 01:30 the next morning,
// local time, in zones up to 14 hours from UTC.
func (s *Server) dayRange(now time.Time) (lo, hi int32) {
	sec := now.Unix()
	lo = int32(floorDiv(sec-listedAfter-40*3600, daySeconds))
	hi = int32(floorDiv(sec+int64(s.cfg.Days)*daySeconds+6*3600, daySeconds))
	return lo, hi
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// genDay generates one business day for every cinema. It depends only on
// the seed, the config and the day, so a day generated late is the same as
// one generated at New.
func (s *Server) genDay(d int32) [][]session {
	out := make([][]session, len(s.cinemas))
	for ci, c := range s.cinemas {
		out[ci] = s.genCinemaDay(c, d)
	}
	return out
}

func (s *Server) genCinemaDay(c *cinema, d int32) []session {
	cfg := &s.cfg
	r := rand.New(rand.NewPCG(cfg.Seed^streamSession, uint64(c.idx)<<32|uint64(uint32(d))))
	date := time.Unix(int64(d)*daySeconds, 0).UTC()
	y, m, dd := date.Date()
	weekend := date.Weekday() == time.Friday || date.Weekday() == time.Saturday
	var business [19]byte
	appendWall(business[:0], date)

	perDay := cfg.Screens * cfg.ShowsPerDay
	out := make([]session, 0, perDay)
	window := int64(cfg.Days) * daySeconds
	for screen := 0; screen < cfg.Screens; screen++ {
		screenFilm := c.films[r.IntN(len(c.films))]
		for slot := 0; slot < cfg.ShowsPerDay; slot++ {
			fi := screenFilm
			if r.IntN(10) < 3 {
				fi = c.films[r.IntN(len(c.films))]
			}
			minutes := slotMinutes(slot, cfg.ShowsPerDay, r)
			t := time.Date(y, m, dd, 0, minutes, 0, 0, c.loc)
			num := (d-epochDay)*int32(perDay) + int32(screen*cfg.ShowsPerDay+slot) + 1
			x := session{
				id:     c.ID + "-" + strconv.Itoa(int(num)),
				c:      c,
				f:      s.films[fi],
				num:    num,
				screen: int16(screen + 1),
				cap:    int16(c.capacity[screen]),
				attrs:  uint8(r.IntN(len(attributeSets))),
				ord:    int64(d)<<32 | int64(c.idx)<<16 | int64(screen*cfg.ShowsPerDay+slot),
				start:  t.Unix(),
				phase:  r.Float64(),
			}
			appendWall(x.showtime[:0], t.In(c.loc))
			x.business = business

			// Demand: the share of seats that would sell by showtime;
			// above 1 the session sells out before it starts.
			if r.Float64() < 0.12 {
				x.demand = 1.0 + 0.4*r.Float64()
			} else {
				x.demand = 0.15 + 0.75*r.Float64()
			}
			if h := minutes / 60; h >= 18 && h < 23 {
				x.demand *= 1.2
			}
			if weekend {
				x.demand *= 1.1
			}

			// Published: most when they enter the window, some later, a
			// few on the last day.
			lead := window
			switch p := r.Float64(); {
			case p < 0.05:
				lead = 3600 + r.Int64N(23*3600)
			case p < 0.17 && cfg.Days > 3:
				lead = 3*daySeconds + r.Int64N(window-3*daySeconds)
			}
			lead = min(lead, window)
			x.published = x.start - lead

			// About 2% are cancelled, half of them on their last day.
			if r.Float64() < 0.02 {
				var before int64
				if r.IntN(2) == 0 {
					before = 600 + r.Int64N(daySeconds-600)
				} else {
					before = 3600 + r.Int64N(max(lead-3600, 1))
				}
				x.cancelAt = x.start - before
				if x.cancelAt <= x.published {
					x.cancelAt = x.published + (x.start-x.published)/2
				}
			}
			out = append(out, x)
		}
	}
	return out
}

// slotMinutes is the local wall time of a showing, in minutes after the
// business day's midnight: from about 11:00 to about midnight, the last one
// sometimes just after, in steps of 5 minutes.
func slotMinutes(slot, perDay int, r *rand.Rand) int {
	if perDay == 1 {
		return 19*60 + 5*(r.IntN(13)-6)
	}
	base := 11*60 + slot*13*60/(perDay-1)
	switch {
	case slot == 0:
		return base + 5*r.IntN(7)
	case slot == perDay-1:
		return base + 5*(r.IntN(13)-6)
	default:
		return base + 5*(r.IntN(9)-4)
	}
}

// sold is how many seats have sold at time t (Unix seconds): a slow steady
// trickle from publication, and a rush that steepens over the last hours.
// It never falls as t grows.
func (x *session) sold(t float64) int {
	if t < float64(x.published) {
		t = float64(x.published)
	}
	left := max(float64(x.start)-t, 0)
	span := float64(x.start - x.published)
	p := 0.3*(1-left/span) + 0.7*math.Exp(-left/3600)
	n := int(x.demand*float64(x.cap)*p + x.phase)
	return min(max(n, 0), int(x.cap))
}

func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}
