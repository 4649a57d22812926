// Package vista reads cinemas, films and sessions from Vista Connect's OData
// service. It knows nothing of Redis: it turns Vista's JSON into Go values with
// real instants, and reports upstream trouble as errors a caller can act on.
package vista

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Cinema is one row of OData.svc/Cinemas.
type Cinema struct {
	ID           string
	Name         string
	Address1     string
	Address2     string
	City         string
	Latitude     string // as Vista sent it, so no float formatting creeps into diffs
	Longitude    string
	PhoneNumber  string
	TimeZoneID   string // Vista's TimeZoneId as sent: IANA, Windows, or empty
	CurrencyCode string

	// Location is the zone the cinema's wall times are read in, resolved
	// from TimeZoneID, an override or the default (see Zones).
	Location *time.Location

	// Raw is the row's JSON exactly as received.
	Raw json.RawMessage
}

// Film is a scheduled film, merged from the ScheduledFilms rows that share a
// ScheduledFilmId (Vista sends one row per cinema and film).
type Film struct {
	ID             string // ScheduledFilmId, the key films are known by
	Title          string
	Rating         string
	RunTimeMinutes int
	OpeningDate    string // calendar date, YYYY-MM-DD; empty when Vista sends none
	Distributor    string
	CinemaIDs      []string // sorted, without duplicates

	// Raw is the JSON of the first row seen for this film.
	Raw json.RawMessage
}

// Session is one row of OData.svc/Sessions: a showing of a film on a screen.
type Session struct {
	ID             string // composite, e.g. "1001-14164"
	CinemaID       string
	FilmID         string // ScheduledFilmId
	SessionID      string
	Showtime       time.Time // an instant, in the cinema's zone
	BusinessDate   string    // calendar date, YYYY-MM-DD
	SeatsAvailable int
	ScreenName     string
	ScreenNumber   int
	Attributes     []string
	SoldoutStatus  int // 0 open, 1 almost full, 2 full
	Status         string

	// Raw is the row's JSON exactly as received.
	Raw json.RawMessage
}

// Cancelled reports whether Vista marks the session as cancelled. Vista
// spells it in more than one way across versions; see cancelledStatus.
func (s Session) Cancelled() bool { return cancelledStatus(s.Status) }

// Seats is the answer of a seat check: the few fields that change while a
// session is on sale.
type Seats struct {
	ID             string
	SeatsAvailable int
	SoldoutStatus  int
	Status         string
}

// Cancelled reports whether Vista marks the session as cancelled.
func (s Seats) Cancelled() bool { return cancelledStatus(s.Status) }

func cancelledStatus(status string) bool {
	switch strings.ToLower(strings.TrimSpace(status)) {
	case "c", "x", "cancelled", "canceled":
		return true
	}
	return false
}

// Sentinel errors. Test for them with errors.Is.
var (
	// ErrUnauthorized is returned for 401 and 403: the token is missing,
	// wrong or lacks a permission. Retrying does not help.
	ErrUnauthorized = errors.New("vista: unauthorized")
	// ErrNotFound is returned for 404: the base URL or the endpoint is wrong.
	ErrNotFound = errors.New("vista: not found")
)

// StatusError is an upstream answer with a status the client does not treat
// as success, after any retries.
type StatusError struct {
	Endpoint   string // "Sessions", "Cinemas", ...
	StatusCode int
	Body       string // the start of the body, for the log; never holds the token
}

// Error says which endpoint answered what; Body never holds the token.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("vista %s: status %d", e.Endpoint, e.StatusCode)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Unwrap lets errors.Is match ErrUnauthorized and ErrNotFound.
func (e *StatusError) Unwrap() error {
	switch e.StatusCode {
	case 401, 403:
		return ErrUnauthorized
	case 404:
		return ErrNotFound
	}
	return nil
}

// DecodeError is a value Vista sent that cannot be read. It names the list,
// the row and the field: `decode sessions: value[3].Showtime: "banana" is not a date`.
type DecodeError struct {
	List  string // "sessions", "films", "cinemas"
	Index int    // the row's index in the whole list (across pages); -1 for the envelope
	ID    string // the row's ID when it could be read, so a caller can keep what it had
	Field string // Vista's field name; empty when the row itself is not an object
	Err   error
}

// Error names the list, the row and the field.
func (e *DecodeError) Error() string {
	where := "value"
	if e.Index >= 0 {
		where = fmt.Sprintf("value[%d]", e.Index)
	}
	if e.Field != "" {
		where += "." + e.Field
	}
	return fmt.Sprintf("decode %s: %s: %v", e.List, where, e.Err)
}

// Unwrap returns what was wrong with the value.
func (e *DecodeError) Unwrap() error { return e.Err }

// RowErrors collects the rows of a list that could not be decoded. A list
// call that returns RowErrors also returns every good row: a bad row never
// costs the others.
type RowErrors []*DecodeError

// Error gives the first bad row and how many more there are.
func (r RowErrors) Error() string {
	switch len(r) {
	case 0:
		return "no row errors"
	case 1:
		return r[0].Error()
	}
	return fmt.Sprintf("%v (and %d more bad rows)", r[0], len(r)-1)
}

// IDs returns the ids of the bad rows that had a readable ID.
func (r RowErrors) IDs() []string {
	var ids []string
	for _, e := range r {
		if e.ID != "" {
			ids = append(ids, e.ID)
		}
	}
	return ids
}
