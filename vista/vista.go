// Package vista reads cinemas, films and sessions from Vista Connect's OData
// service. It knows nothing of Redis: it turns Vista's JSON into Go values with
// real instants, and reports upstream trouble as errors a caller can act on.
package vista

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vista-warmer/vista-warmer/keys"
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

	// Extra holds the values of Config.Fields.Cinemas, in that order.
	Extra []string

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

	// Extra holds the values of Config.Fields.Films, in that order, from
	// the first row seen for this film.
	Extra []string

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
	SoldoutStatus  int        // 0 open, 1 almost full, 2 full
	Status         string     // as Vista sent it: "7", "X", "Open"; "" when it sent none
	State          keys.State // Status, normalised

	// Extra holds the values of Config.Fields.Sessions, in that order.
	Extra []string

	// Raw is the row's JSON exactly as received.
	Raw json.RawMessage
}

// Cancelled reports whether Vista marks the session as cancelled.
func (s Session) Cancelled() bool { return s.State == keys.StateCancelled }

// Seats is the answer of a seat check: the few fields that change while a
// session is on sale.
type Seats struct {
	ID             string
	SeatsAvailable int
	SoldoutStatus  int
	Status         string
	State          keys.State

	// HasSoldoutStatus and HasStatus report whether the answer carried
	// those fields. A server that has no such property is asked without it
	// (see CheckSeats), and then what the full list said stands.
	HasSoldoutStatus, HasStatus bool
}

// Cancelled reports whether Vista marks the session as cancelled.
func (s Seats) Cancelled() bool { return s.HasStatus && s.State == keys.StateCancelled }

// ParseStatus normalises a session's Status as sent: Vista's number (7), the
// same as a string ("7"), or the letter and word forms of older servers
// ("O", "X", "Open", "Cancelled"), in any case. No Status at all ("") is
// open. The letters O (open), C and X (cancelled) are the ones Vista has
// sent; "Canceled" is read as "Cancelled". Anything else is unknown.
func ParseStatus(status string) keys.State {
	s := strings.ToLower(strings.TrimSpace(status))
	if s == "" {
		return keys.StateOpen
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n >= 0 && n < len(keys.States) {
			return keys.States[n]
		}
		return keys.StateUnknown
	}
	switch s {
	case "o":
		return keys.StateOpen
	case "c", "x", "canceled":
		return keys.StateCancelled
	}
	for _, st := range keys.States {
		if s == string(st) {
			return st
		}
	}
	return keys.StateUnknown
}

// Sentinel errors. Test for them with errors.Is.
var (
	// ErrUnauthorized is returned for 401 and 403: the token is missing,
	// wrong or lacks a permission. Retrying does not help.
	ErrUnauthorized = errors.New("vista: unauthorized")
	// ErrNotFound is returned for 404: the base URL or the endpoint is wrong.
	ErrNotFound = errors.New("vista: not found")

	// ErrUnsafeID is wrapped by the DecodeError of a row whose id could not
	// be a safe part of a cache key (see CheckID). Such a row never named
	// anything the cache holds, so its DecodeError has no ID.
	ErrUnsafeID = errors.New("cannot be part of a key")
	// ErrTooLarge is wrapped by the DecodeError of a row with a text value
	// longer than MaxTextBytes.
	ErrTooLarge = errors.New("too large")
)

// Bounds on what a row may hold. A value past them is a row error: it is
// never stored, and it costs only its row.
const (
	// MaxIDBytes bounds an id.
	MaxIDBytes = 128
	// MaxTextBytes bounds a text value the client hands on: a name, an
	// address, the attributes joined by commas, an extra field.
	MaxTextBytes = 4 << 10
)

// CheckID reports whether id can be used as it is in a cache key such as
// P:session:{ID}: it must be 1 to MaxIDBytes bytes of valid UTF-8 with no
// ':' (the key separator), '{' or '}' (Redis Cluster hash tags),
// whitespace or control characters. Vista's ids ("1001-14164",
// "HO00000720", "0000000001") all pass. The error wraps ErrUnsafeID.
func CheckID(id string) error {
	if plainID(id) {
		return nil
	}
	fail := func(why string) error {
		return fmt.Errorf("%q %w: %s", excerpt(id), ErrUnsafeID, why)
	}
	switch {
	case id == "":
		return fail("empty")
	case len(id) > MaxIDBytes:
		return fail(fmt.Sprintf("%d bytes, more than %d", len(id), MaxIDBytes))
	case !utf8.ValidString(id):
		return fail("not valid UTF-8")
	}
	for _, r := range id {
		switch {
		case r == ':':
			return fail("holds ':'")
		case r == '{' || r == '}':
			return fail("holds a brace")
		case unicode.IsSpace(r):
			return fail("holds whitespace")
		case unicode.IsControl(r):
			return fail("holds a control character")
		}
	}
	return nil
}

// plainID reports whether id is 1 to MaxIDBytes bytes of printable
// ASCII other than ':', '{' and '}': an id CheckID passes with a look at
// each byte. Every id of every row goes through CheckID; decoding a
// sweep's answer spent a twentieth of its time on the rune-by-rune
// check for ids that never needed it.
func plainID(id string) bool {
	if id == "" || len(id) > MaxIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == ':' || c == '{' || c == '}' {
			return false
		}
	}
	return true
}

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
