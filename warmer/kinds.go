package warmer

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
)

// The contract's data fields of each kind's hash, in the order a record
// holds them; the extra fields an operator asks for (Config.Fields) follow
// them. The bookkeeping fields (raw, updated_at, changed_at,
// next_check_at) are not data: they never make a change and never appear
// in an event's "changed".
var baseFields = keys.Fields

// Where a record holds the fields the engine reads, found by name in the
// contract's field lists (a record holds a kind's fields in their order;
// the extras follow them).
var (
	cTimezone = at(keys.Cinemas, keys.FieldTimezone)

	sCinemaID       = at(keys.Sessions, keys.FieldCinemaID)
	sFilmID         = at(keys.Sessions, keys.FieldFilmID)
	sShowtime       = at(keys.Sessions, keys.FieldShowtime)
	sSeatsAvailable = at(keys.Sessions, keys.FieldSeatsAvailable)
	sSoldoutStatus  = at(keys.Sessions, keys.FieldSoldoutStatus)
	sStatus         = at(keys.Sessions, keys.FieldStatus)
	sState          = at(keys.Sessions, keys.FieldState)
)

// at is where a record of kind k holds the contract field name.
func at(k keys.Kind, name string) int {
	i := slices.Index(keys.Fields[k], name)
	if i < 0 {
		panic(fmt.Sprintf("warmer: the contract has no %s field %q", k, name))
	}
	return i
}

// Bookkeeping fields.
const (
	fRaw         = keys.FieldRaw
	fUpdatedAt   = keys.FieldUpdatedAt
	fChangedAt   = keys.FieldChangedAt
	fNextCheckAt = keys.FieldNextCheckAt
)

var bookkeeping = []string{fRaw, fUpdatedAt, fChangedAt, fNextCheckAt}

// SnakeCase turns a Vista field name into the name of its hash field:
// AllowTicketSales → allow_ticket_sales, TrailerUrl → trailer_url,
// FilmHOPK → film_hopk, EDICode → edi_code, GenreId2 → genre_id2.
func SnakeCase(name string) string {
	rs := []rune(name)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// CheckFields reports whether extra names Vista fields the warmer can keep
// (Config.Fields): names of letters, digits and _, whose snake_case names
// are no field the warmer writes already.
func CheckFields(extra vista.Fields) error {
	_, err := fieldNames(extra)
	return err
}

// fieldNames returns the data fields of each kind: the contract's, then
// the extra fields named in extra (Vista's spelling) under their snake_case
// names. It refuses a name that is not a Vista field name, or whose hash
// field would be one the warmer already writes.
func fieldNames(extra vista.Fields) (map[keys.Kind][]string, error) {
	out := map[keys.Kind][]string{}
	for _, k := range keys.Kinds {
		names := slices.Clone(baseFields[k])
		for _, vn := range extraOf(extra, k) {
			if !validFieldName(vn) {
				return nil, fmt.Errorf("%s field %q is not a Vista field name (letters, digits and _)", k.Singular(), vn)
			}
			sn := SnakeCase(vn)
			if slices.Contains(names, sn) || slices.Contains(bookkeeping, sn) {
				return nil, fmt.Errorf("%s field %s would be written as %q, which the warmer already writes", k.Singular(), vn, sn)
			}
			names = append(names, sn)
		}
		out[k] = names
	}
	return out, nil
}

func extraOf(f vista.Fields, k keys.Kind) []string {
	switch k {
	case keys.Cinemas:
		return f.Cinemas
	case keys.Films:
		return f.Films
	}
	return f.Sessions
}

func validFieldName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r < 128 && (unicode.IsLetter(r) || i > 0 && unicode.IsDigit(r))) {
			return false
		}
	}
	return true
}

// record is one entity as the cache holds it: its data fields as strings, in
// the order of the warmer's field names for its kind. The same record feeds
// the diff, the Redis writes, the events and the metrics, whatever the kind.
type record struct {
	vals packed
	raw  string // upstream JSON, kept only with KeepRaw, and only until written

	// rawSum is a checksum of the raw field the hash holds (0: none), so the
	// cache can tell a stale raw without keeping every row in memory.
	rawSum uint64

	// Sessions only: the showtime, for the indexes' scores, the TTL and the
	// schedule, and when the warmer looks at the session next.
	showtime  instant
	nextCheck instant
	checked   instant // when a seat check last gave its seats and status
	asOf      instant // when Vista said what the record holds (zero: read from Redis)

	// missing marks an id that an index lists but whose hash is gone (it
	// expired or was evicted while no warmer wrote); it differs from any
	// upstream record.
	missing bool
	// unsafe marks an id read back from an index that could not be a key
	// of its own (an earlier version wrote it): removing it must not touch
	// the key it would name, which may be another entity's index.
	unsafe bool

	// absent marks the data fields the hash read back lacked (fields added
	// by an upgrade or a new Config.Fields): they are filled in at the next
	// write, quietly, as they are no change of Vista's. stray lists hash
	// fields the warmer no longer writes (an extra field dropped from the
	// configuration): they are deleted at the next write.
	absent []bool
	stray  []string
}

// instant is a moment as Unix nanoseconds, 0 for none: a third of a
// time.Time, which matters four times over in each of 500k records.
type instant int64

func instantOf(t time.Time) instant {
	if t.IsZero() {
		return 0
	}
	return instant(t.UnixNano())
}

func (i instant) time() time.Time {
	if i == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(i))
}

// diff returns the names of the fields that differ between a cached record
// and a new one. A field the hash lacked is no difference: it is filled in
// without an event.
func diff(names []string, old, cur *record) []string {
	if old == nil || old.missing {
		return names // every field: the kind's own slice, shared and never written
	}
	if old.vals == cur.vals {
		return nil
	}
	was, is := old.vals.all(), cur.vals.all()
	var changed []string
	for i, name := range names {
		if was[i] != is[i] && !(old.absent != nil && old.absent[i]) {
			changed = append(changed, name)
		}
	}
	return changed
}

// withExtra appends an entity's extra values, n of them whatever the
// client handed over.
func withExtra(vals []string, extra []string, n int) []string {
	for i := range n {
		vals = append(vals, extraAt(extra, i))
	}
	return vals
}

// extraAt is the i-th extra value Vista sent, "" past the last.
func extraAt(extra []string, i int) string {
	if i < len(extra) {
		return extra[i]
	}
	return ""
}

func (w *Warmer) cinemaRecord(c vista.Cinema) *record {
	zone := ""
	if c.Location != nil {
		zone = c.Location.String()
	}
	return &record{
		vals: pack(withExtra([]string{c.ID, c.Name, c.Address1, c.Address2, c.City, c.Latitude, c.Longitude, zone},
			c.Extra, w.nExtra(keys.Cinemas))),
		raw: rawOf(c.Raw, w.cfg.KeepRaw),
	}
}

func (w *Warmer) filmRecord(f vista.Film) *record {
	return &record{
		vals: pack(withExtra([]string{f.ID, f.Title, f.Rating, strconv.Itoa(f.RunTimeMinutes), f.OpeningDate,
			f.Distributor, strings.Join(f.CinemaIDs, ",")}, f.Extra, w.nExtra(keys.Films))),
		raw: rawOf(f.Raw, w.cfg.KeepRaw),
	}
}

func (w *Warmer) sessionRecord(s vista.Session) *record {
	var buf [512]byte // a session packs to about 150 bytes
	b := appendPacked(buf[:0], s.ID)
	b = appendPacked(b, s.CinemaID)
	b = appendPacked(b, s.FilmID)
	b = appendPacked(b, s.SessionID)
	var at [40]byte
	b = appendPacked(b, string(s.Showtime.AppendFormat(at[:0], time.RFC3339)))
	b = appendPacked(b, s.BusinessDate)
	b = appendPacked(b, s.ScreenName)
	b = appendPackedInt(b, s.ScreenNumber)
	b = appendPackedInt(b, s.SeatsAvailable)
	b = appendPackedInt(b, s.SoldoutStatus)
	b = appendPacked(b, s.Status)
	b = appendPacked(b, string(s.State))
	b = appendPackedJoined(b, s.Attributes, ',')
	for i := range w.nExtra(keys.Sessions) {
		b = appendPacked(b, extraAt(s.Extra, i))
	}
	return &record{
		vals:     packed(b),
		raw:      rawOf(s.Raw, w.cfg.KeepRaw),
		showtime: instantOf(s.Showtime),
	}
}

// nExtra is the number of extra fields of a kind.
func (w *Warmer) nExtra(k keys.Kind) int {
	return len(w.fields[k]) - len(baseFields[k])
}

// seatsSame reports whether s says what old holds: withSeats(old, s)
// would change nothing. It reads the four fields where they are packed,
// which a window answer's hundreds of rows, nearly all the same as
// before, can afford between Vista's answer and the event. A record
// whose hash lacked fields (old.absent) is never the same: compare
// decides for it.
func seatsSame(old *record, s vista.Seats) bool {
	if old.absent != nil {
		return false
	}
	var v [len(seatFields)]string
	old.vals.getEach(seatFields[:], v[:])
	if !isInt(v[0], s.SeatsAvailable) {
		return false
	}
	if s.HasSoldoutStatus && !isInt(v[1], s.SoldoutStatus) {
		return false
	}
	return !s.HasStatus || v[2] == s.Status && v[3] == string(s.State)
}

// seatFields are the positions of a session's fields that a seat check
// reads, in the order vista.Seats gives them.
var seatFields = [...]int{sSeatsAvailable, sSoldoutStatus, sStatus, sState}

// isInt reports whether s is n as strconv.Itoa writes it, without making
// a string of n: a sweep asks it of every row of its answer.
func isInt(s string, n int) bool {
	var b [20]byte
	return string(strconv.AppendInt(b[:0], int64(n), 10)) == s
}

// withSeats returns a copy of a cached session record with the answer of a
// seat check applied. What the answer did not carry (a server without
// Status, say) stays as the cache has it.
func withSeats(old *record, s vista.Seats) *record {
	cur := *old
	vals := old.vals.all()
	vals[sSeatsAvailable] = strconv.Itoa(s.SeatsAvailable)
	if s.HasSoldoutStatus {
		vals[sSoldoutStatus] = strconv.Itoa(s.SoldoutStatus)
	}
	if s.HasStatus {
		vals[sStatus] = s.Status
		vals[sState] = string(s.State)
	}
	cur.vals = pack(vals)
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
func (w *Warmer) recordFromHash(k keys.Kind, h map[string]string) *record {
	names := w.fields[k]
	vals := make([]string, len(names))
	r := &record{rawSum: checksum(h[fRaw])}
	for i, name := range names {
		v, ok := h[name]
		if !ok {
			if r.absent == nil {
				r.absent = make([]bool, len(names))
			}
			r.absent[i] = true
		}
		vals[i] = v
	}
	r.vals = pack(vals)
	if len(h) > len(names) { // more fields than the data: bookkeeping, or stray ones
		for name := range h {
			if !slices.Contains(names, name) && !slices.Contains(bookkeeping, name) {
				r.stray = append(r.stray, name)
			}
		}
		slices.Sort(r.stray)
	}
	if sp := w.specs[k]; sp.sorted || sp.expires {
		show, _ := time.Parse(time.RFC3339, vals[sShowtime])
		r.showtime = instantOf(show)
	}
	if w.specs[k].checked {
		next, _ := time.Parse(time.RFC3339, h[fNextCheckAt])
		r.nextCheck = instantOf(next)
	}
	return r
}
