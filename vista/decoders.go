// The decoders of each kind: a row of Cinemas, ScheduledFilms or Sessions,
// or a seat check's answer, made into the package's types.

package vista

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// decodeCinemas reads the rows of OData.svc/Cinemas; first is the index of
// rows[0] in the whole list. resolve gives the zone of a cinema.
func decodeCinemas(rows []json.RawMessage, first int, resolve func(id, tz string) *time.Location, extra []string) ([]Cinema, RowErrors) {
	return decodeRows(nil, nil, "cinemas", rows, first, cinemaDecoder(resolve, extra))
}

// cinemaDecoder returns the decoder of one row of OData.svc/Cinemas, for
// decodeRows.
func cinemaDecoder(resolve func(id, tz string) *time.Location, extra []string) func(*row, json.RawMessage) (Cinema, *DecodeError) {
	return func(r *row, raw json.RawMessage) (Cinema, *DecodeError) {
		return decodeCinema(r, raw, resolve, extra)
	}
}

func decodeCinema(r *row, raw json.RawMessage, resolve func(id, tz string) *time.Location, extra []string) (Cinema, *DecodeError) {
	var (
		c    Cinema
		derr *DecodeError
	)
	if c.ID, derr = r.idField("ID", true, true); derr != nil {
		return Cinema{}, derr
	}
	r.id = c.ID
	for _, f := range []struct {
		name string
		dst  *string
		read func(string) (string, *DecodeError)
	}{
		{"Name", &c.Name, r.str},
		{"Address1", &c.Address1, r.str},
		{"Address2", &c.Address2, r.str},
		{"City", &c.City, r.str},
		{"Latitude", &c.Latitude, r.numberText},
		{"Longitude", &c.Longitude, r.numberText},
		{"PhoneNumber", &c.PhoneNumber, r.str},
		{"TimeZoneId", &c.TimeZoneID, r.str},
		{"CurrencyCode", &c.CurrencyCode, r.str},
	} {
		if *f.dst, derr = f.read(f.name); derr != nil {
			return Cinema{}, derr
		}
	}
	if c.Extra, derr = r.extras(extra); derr != nil {
		return Cinema{}, derr
	}
	c.Location = resolve(c.ID, strings.TrimSpace(c.TimeZoneID))
	c.Raw = raw
	return c, nil
}

// filmRow is one row of OData.svc/ScheduledFilms, before merging.
type filmRow struct {
	film     Film
	cinemaID string
}

func decodeFilmRows(rows []json.RawMessage, first int, extra []string) ([]filmRow, RowErrors) {
	return decodeRows(nil, nil, "films", rows, first, filmDecoder(extra))
}

// filmDecoder returns the decoder of one row of OData.svc/ScheduledFilms,
// for decodeRows.
func filmDecoder(extra []string) func(*row, json.RawMessage) (filmRow, *DecodeError) {
	return func(r *row, raw json.RawMessage) (filmRow, *DecodeError) {
		return decodeFilmRow(r, raw, extra)
	}
}

func decodeFilmRow(r *row, raw json.RawMessage, extra []string) (filmRow, *DecodeError) {
	var (
		fr   filmRow
		derr *DecodeError
	)
	f := &fr.film
	if f.ID, derr = r.idField("ScheduledFilmId", true, true); derr != nil {
		return filmRow{}, derr
	}
	r.id = f.ID
	if fr.cinemaID, derr = r.idField("CinemaId", false, true); derr != nil {
		return filmRow{}, derr
	}
	if f.Title, derr = r.str("Title"); derr != nil {
		return filmRow{}, derr
	}
	if f.Rating, derr = r.str("Rating"); derr != nil {
		return filmRow{}, derr
	}
	if f.RunTimeMinutes, derr = r.integerText("RunTime"); derr != nil {
		return filmRow{}, derr
	}
	if f.RunTimeMinutes < 0 {
		return filmRow{}, r.fail("RunTime", fmt.Errorf("%d is not a run time", f.RunTimeMinutes))
	}
	if f.OpeningDate, derr = r.date("OpeningDate"); derr != nil {
		return filmRow{}, derr
	}
	if f.Distributor, derr = r.str("Distributor"); derr != nil {
		return filmRow{}, derr
	}
	if f.Extra, derr = r.extras(extra); derr != nil {
		return filmRow{}, derr
	}
	f.Raw = raw
	return fr, nil
}

// mergeFilms folds the per-cinema rows into one Film per ScheduledFilmId, in
// the order films first appear. The first row's fields win; the CinemaIds of
// all rows are collected.
func mergeFilms(rows []filmRow) []Film {
	var out []Film
	at := make(map[string]int)
	for _, fr := range rows {
		i, ok := at[fr.film.ID]
		if !ok {
			i = len(out)
			at[fr.film.ID] = i
			out = append(out, fr.film)
		}
		if fr.cinemaID != "" {
			out[i].CinemaIDs = append(out[i].CinemaIDs, fr.cinemaID)
		}
	}
	for i := range out {
		slices.Sort(out[i].CinemaIDs)
		out[i].CinemaIDs = slices.Compact(out[i].CinemaIDs)
	}
	return out
}

// decodeSessions reads the rows of OData.svc/Sessions. zone gives the
// location of a cinema's wall times.
func decodeSessions(rows []json.RawMessage, first int, zone func(cinemaID string) *time.Location, extra []string) ([]Session, RowErrors) {
	return decodeRows(nil, nil, "sessions", rows, first, sessionDecoder(zone, extra))
}

// sessionDecoder returns the decoder of one row of OData.svc/Sessions, for
// decodeRows.
func sessionDecoder(zone func(cinemaID string) *time.Location, extra []string) func(*row, json.RawMessage) (Session, *DecodeError) {
	return func(r *row, raw json.RawMessage) (Session, *DecodeError) {
		return decodeSession(r, raw, zone, extra)
	}
}

func decodeSession(r *row, raw json.RawMessage, zone func(cinemaID string) *time.Location, extra []string) (Session, *DecodeError) {
	var (
		s    Session
		derr *DecodeError
	)
	if s.ID, derr = r.idField("ID", true, true); derr != nil {
		return Session{}, derr
	}
	r.id = s.ID
	if s.CinemaID, derr = r.idField("CinemaId", true, true); derr != nil {
		return Session{}, derr
	}
	if s.FilmID, derr = r.idField("ScheduledFilmId", false, true); derr != nil {
		return Session{}, derr
	}
	if s.SessionID, derr = r.idField("SessionId", false, false); derr != nil {
		return Session{}, derr
	}
	showtime, derr := r.requiredTime("Showtime")
	if derr != nil {
		return Session{}, derr
	}
	t, err := ParseLocal(strings.TrimSpace(showtime), zone(s.CinemaID))
	if err != nil {
		return Session{}, r.fail("Showtime", err)
	}
	s.Showtime = t
	if s.BusinessDate, derr = r.date("SessionBusinessDate"); derr != nil {
		return Session{}, derr
	}
	if s.SeatsAvailable, derr = r.integer("SeatsAvailable"); derr != nil {
		return Session{}, derr
	}
	if s.ScreenName, derr = r.str("ScreenName"); derr != nil {
		return Session{}, derr
	}
	if s.ScreenNumber, derr = r.integer("ScreenNumber"); derr != nil {
		return Session{}, derr
	}
	if s.Attributes, derr = r.strs("SessionAttributesNames"); derr != nil {
		return Session{}, derr
	}
	if s.SoldoutStatus, derr = r.integer("SoldoutStatus"); derr != nil {
		return Session{}, derr
	}
	if s.Status, s.State, _, derr = r.status("Status"); derr != nil {
		return Session{}, derr
	}
	if s.Extra, derr = r.extras(extra); derr != nil {
		return Session{}, derr
	}
	s.Raw = raw
	return s, nil
}

// decodeSeats reads the rows of a seat check. A row whose ID cannot be read
// yields an error with an empty ID.
func decodeSeats(rows []json.RawMessage, first int) ([]Seats, RowErrors) {
	return decodeRows(nil, nil, "sessions", rows, first, decodeSeat)
}

func decodeSeat(r *row, _ json.RawMessage) (Seats, *DecodeError) {
	var (
		s    Seats
		derr *DecodeError
	)
	if s.ID, derr = r.idField("ID", true, true); derr != nil {
		return Seats{}, derr
	}
	r.id = s.ID
	if s.SeatsAvailable, derr = r.integer("SeatsAvailable"); derr != nil {
		return Seats{}, derr
	}
	_, s.HasSoldoutStatus = r.get("SoldoutStatus")
	if s.SoldoutStatus, derr = r.integer("SoldoutStatus"); derr != nil {
		return Seats{}, derr
	}
	if s.Status, s.State, s.HasStatus, derr = r.status("Status"); derr != nil {
		return Seats{}, derr
	}
	return s, nil
}
