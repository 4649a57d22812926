package warmer

import (
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
)

// The data fields of each kind's hash, in the order a record holds them.
// The bookkeeping fields (raw, updated_at, changed_at, next_check_at) are not
// data: they never make a change and never appear in an event's "changed".
var fields = map[keys.Kind][]string{
	keys.Cinemas: {"id", "name", "address1", "address2", "city", "latitude", "longitude", "timezone"},
	keys.Films:   {"id", "title", "rating", "runtime_minutes", "opening_date", "distributor", "cinema_ids"},
	keys.Sessions: {"id", "cinema_id", "film_id", "session_id", "showtime", "business_date",
		"screen_name", "screen_number", "seats_available", "soldout_status", "status", "attributes"},
}

// Positions of the fields the engine reads back.
const (
	cTimezone = 7

	sCinemaID       = 1
	sFilmID         = 2
	sShowtime       = 4
	sSeatsAvailable = 8
	sSoldoutStatus  = 9
	sStatus         = 10
)

// Bookkeeping fields.
const (
	fRaw         = "raw"
	fUpdatedAt   = "updated_at"
	fChangedAt   = "changed_at"
	fNextCheckAt = "next_check_at"
)

// record is one entity as the cache holds it: its data fields as strings, in
// the order of fields[kind]. The same record feeds the diff, the Redis
// writes, the events and the metrics, whatever the kind.
type record struct {
	vals []string
	raw  string // upstream JSON, kept only with KeepRaw, and only until written

	// rawSum is a checksum of the raw field the hash holds (0: none), so the
	// cache can tell a stale raw without keeping every row in memory.
	rawSum uint64

	// Sessions only: the showtime, for the indexes' scores, the TTL and the
	// schedule, and when the warmer looks at the session next.
	showtime  time.Time
	nextCheck time.Time

	// missing marks an id that an index lists but whose hash is gone (it
	// expired or was evicted while no warmer wrote); it differs from any
	// upstream record.
	missing bool
}

// diff returns the names of the fields that differ between a cached record
// and a new one.
func diff(k keys.Kind, old, cur *record) []string {
	if old == nil || old.missing {
		return slices.Clone(fields[k])
	}
	var changed []string
	for i, name := range fields[k] {
		if old.vals[i] != cur.vals[i] {
			changed = append(changed, name)
		}
	}
	return changed
}

func cinemaRecord(c vista.Cinema, keepRaw bool) *record {
	zone := ""
	if c.Location != nil {
		zone = c.Location.String()
	}
	return &record{
		vals: []string{c.ID, c.Name, c.Address1, c.Address2, c.City, c.Latitude, c.Longitude, zone},
		raw:  rawOf(c.Raw, keepRaw),
	}
}

func filmRecord(f vista.Film, keepRaw bool) *record {
	return &record{
		vals: []string{f.ID, f.Title, f.Rating, strconv.Itoa(f.RunTimeMinutes), f.OpeningDate,
			f.Distributor, strings.Join(f.CinemaIDs, ",")},
		raw: rawOf(f.Raw, keepRaw),
	}
}

func sessionRecord(s vista.Session, keepRaw bool) *record {
	return &record{
		vals: []string{s.ID, s.CinemaID, s.FilmID, s.SessionID, s.Showtime.Format(time.RFC3339),
			s.BusinessDate, s.ScreenName, strconv.Itoa(s.ScreenNumber), strconv.Itoa(s.SeatsAvailable),
			strconv.Itoa(s.SoldoutStatus), s.Status, strings.Join(s.Attributes, ",")},
		raw:      rawOf(s.Raw, keepRaw),
		showtime: s.Showtime,
	}
}

// withSeats returns a copy of a cached session record with the answer of a
// seat check applied.
func withSeats(old *record, s vista.Seats) *record {
	cur := *old
	cur.vals = slices.Clone(old.vals)
	cur.vals[sSeatsAvailable] = strconv.Itoa(s.SeatsAvailable)
	cur.vals[sSoldoutStatus] = strconv.Itoa(s.SoldoutStatus)
	cur.vals[sStatus] = s.Status
	cur.missing = false
	return &cur
}

func rawOf(raw []byte, keep bool) string {
	if !keep {
		return ""
	}
	return string(raw)
}

// checksum is rawSum's function; the empty string sums to 0.
func checksum(s string) uint64 {
	if s == "" {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64() | 1
}

// recordFromHash rebuilds a record from a hash read back from Redis.
func recordFromHash(k keys.Kind, h map[string]string) *record {
	names := fields[k]
	r := &record{vals: make([]string, len(names)), rawSum: checksum(h[fRaw])}
	for i, name := range names {
		r.vals[i] = h[name]
	}
	if k == keys.Sessions {
		r.showtime, _ = time.Parse(time.RFC3339, r.vals[sShowtime])
		r.nextCheck, _ = time.Parse(time.RFC3339, h[fNextCheckAt])
	}
	return r
}
