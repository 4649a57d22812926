package vista

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	// Embed the tz database so a bare container, with no
	// /usr/share/zoneinfo, still knows every zone.
	_ "time/tzdata"
)

// ZoneSource says how a cinema's zone was chosen.
type ZoneSource string

// The ways a zone is chosen, in the order they are tried.
const (
	ZoneIANA     ZoneSource = "iana"     // TimeZoneId is an IANA name
	ZoneWindows  ZoneSource = "windows"  // TimeZoneId is a Windows name mapped to IANA
	ZoneOverride ZoneSource = "override" // the operator's per-cinema override
	ZoneDefault  ZoneSource = "default"  // the default zone
)

// Zones resolves the zone a cinema's wall times are read in.
type Zones struct {
	Default   *time.Location            // nil means time.Local
	Overrides map[string]*time.Location // by cinema ID
}

// Resolve returns the zone for a cinema: TimeZoneId when it is an IANA name
// or a Windows name that maps to one, else the cinema's override, else the
// default. An override therefore only fills in for a TimeZoneId that is
// empty or unknown; it never contradicts what Vista says.
//
// Loaded zones are cached, so Resolve is cheap enough to call per session,
// and it is safe for concurrent use as long as Overrides is not modified.
func (z Zones) Resolve(cinemaID, timeZoneID string) (*time.Location, ZoneSource) {
	if timeZoneID != "" {
		if e := lookupZone(timeZoneID); e.err == nil {
			return e.loc, e.src
		}
	}
	if loc := z.Overrides[cinemaID]; loc != nil {
		return loc, ZoneOverride
	}
	if z.Default != nil {
		return z.Default, ZoneDefault
	}
	return time.Local, ZoneDefault
}

// LoadZone loads a zone by IANA name ("Europe/Berlin", "UTC") or by Windows
// name ("W. Europe Standard Time"), which is mapped to IANA as Unicode CLDR
// maps it for the zone's main region. Surrounding whitespace is ignored;
// otherwise Windows names must match exactly. "" and "Local" are refused:
// they name no zone, only the machine's setting.
func LoadZone(name string) (*time.Location, error) {
	e := lookupZone(name)
	return e.loc, e.err
}

// zoneEntry is the cached outcome of loading one name.
type zoneEntry struct {
	loc *time.Location
	src ZoneSource // ZoneIANA or ZoneWindows when err is nil
	err error
}

// maxCachedZones bounds the cache: upstream sends a handful of distinct
// names, but a misbehaving one must not grow memory without end.
const maxCachedZones = 1024

var (
	zoneCache   sync.Map // name as given -> zoneEntry
	zoneCount   atomic.Int64
	errZoneName = errors.New("empty time zone name")
)

// lookupZone loads name once and remembers the outcome, failures included,
// so that a cinema with a bad TimeZoneId does not cost a tz database search
// for each of its sessions.
func lookupZone(name string) zoneEntry {
	if v, ok := zoneCache.Load(name); ok {
		return v.(zoneEntry)
	}
	e := loadZone(name)
	if zoneCount.Load() < maxCachedZones {
		if _, loaded := zoneCache.LoadOrStore(name, e); !loaded {
			zoneCount.Add(1)
		}
	}
	return e
}

func loadZone(name string) zoneEntry {
	n := strings.TrimSpace(name)
	switch n {
	case "":
		return zoneEntry{err: errZoneName}
	case "Local":
		return zoneEntry{err: fmt.Errorf("unknown time zone %q", name)}
	}
	if loc, err := time.LoadLocation(n); err == nil {
		return zoneEntry{loc: loc, src: ZoneIANA}
	}
	if iana, ok := windowsZones[n]; ok {
		if loc, err := time.LoadLocation(iana); err == nil {
			return zoneEntry{loc: loc, src: ZoneWindows}
		}
	}
	return zoneEntry{err: fmt.Errorf("unknown time zone %q", name)}
}

// ParseLocal reads one of Vista's wall-clock times, "2026-11-25T20:00:00",
// in loc and returns the instant, in loc. A fraction of a second
// ("20:00:00.1234567") and a bare date ("2026-11-25", read as midnight) are
// accepted. A value that carries its own offset ("Z", "+01:00") is read with
// that offset instead of loc. A nil loc means UTC, as in package time.
//
// OData v2 answers (Vista's V1 endpoints) write dates in Microsoft's JSON
// form, which ParseLocal reads too:
//
//   - /Date(1795636800000)/ is a wall time counted in milliseconds as if it
//     were UTC: 2026-11-25T20:00:00, read in loc like the ISO form above.
//   - /Date(1795633200000+0100)/ is an instant (19:00 UTC); the offset only
//     names the zone the writer was in, so the instant is shown in loc.
//
// Around a daylight-saving change a wall time may occur twice or not at all;
// ParseLocal decides rather than leave it to time.Date:
//
//   - A repeated wall time (clocks go back) is its first occurrence, the
//     earlier instant, still on summer time: Europe/Berlin 2026-10-25 02:30
//     is 02:30+02:00.
//   - A missing wall time (clocks go forward) is read with the offset in
//     force before the change, which moves it forward by the length of the
//     gap: Europe/Berlin 2026-03-29 02:30 is 03:30+02:00.
//
// A showing listed at a time that does not exist most likely starts an hour
// of the clock later, and of two candidates the earlier one keeps the warmer
// from checking a session too late.
func ParseLocal(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	if d, ok := parseMSDate(s); ok {
		sec, nsec := d.unix()
		if d.hasOffset {
			return time.Unix(sec, nsec).In(loc), nil
		}
		return time.Unix(resolveWall(sec, loc), nsec).In(loc), nil
	}
	st, ok := parseStamp(s)
	if !ok {
		return time.Time{}, notDate(s)
	}
	wall := time.Date(st.year, time.Month(st.month), st.day, st.hour, st.min, st.sec, 0, time.UTC).Unix()
	if st.hasOffset {
		return time.Unix(wall-int64(st.offset), int64(st.nsec)).In(loc), nil
	}
	return time.Unix(resolveWall(wall, loc), int64(st.nsec)).In(loc), nil
}

// resolveWall turns a wall time, given as the Unix seconds it would be in
// UTC, into Unix seconds in loc, with the rules documented on ParseLocal.
// The candidate offsets are those in force a day either side: no zone is
// a day from UTC, and real zones do not change offset twice within two
// days (one that did would fall to the gap rule).
func resolveWall(wall int64, loc *time.Location) int64 {
	const day = 24 * 60 * 60
	before := offsetAt(wall-day, loc)
	after := offsetAt(wall+day, loc)
	// The earlier instant comes from the larger offset: try it first.
	hi, lo := before, after
	if lo > hi {
		hi, lo = lo, hi
	}
	if u := wall - int64(hi); offsetAt(u, loc) == hi {
		return u
	}
	if lo != hi {
		if u := wall - int64(lo); offsetAt(u, loc) == lo {
			return u
		}
	}
	// In a gap: keep the offset in force before the change.
	return wall - int64(before)
}

// offsetAt returns loc's offset east of UTC, in seconds, at Unix time u.
func offsetAt(u int64, loc *time.Location) int {
	_, off := time.Unix(u, 0).In(loc).Zone()
	return off
}

// ParseDate reads a calendar date, "2026-11-25" or "2026-11-25T00:00:00"
// (the time part, with any fraction or offset, is checked and dropped), and
// returns it as "2026-11-25". An empty value is a missing optional date, not
// an error: it returns "".
//
// The OData v2 forms name the day of their wall time: /Date(1551139200000)/
// (midnight counted as if UTC) and /Date(1551135600000+0100)/ (midnight at
// +01:00) are both "2019-02-26".
func ParseDate(s string) (string, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return "", nil
	}
	if d, ok := parseMSDate(t); ok {
		sec, _ := d.unix()
		if d.hasOffset {
			sec += int64(d.offset)
		}
		return time.Unix(sec, 0).UTC().Format("2006-01-02"), nil
	}
	if _, ok := parseStamp(t); !ok {
		return "", notDate(s)
	}
	return t[:len("2006-01-02")], nil
}

func notDate(s string) error { return fmt.Errorf("%q is not a date", s) }

// stamp is a parsed ISO 8601 date and time of the shapes Vista sends.
type stamp struct {
	year, month, day int
	hour, min, sec   int
	nsec             int
	hasOffset        bool
	offset           int // seconds east of UTC, when hasOffset
}

// parseStamp reads "YYYY-MM-DD", optionally followed by "THH:MM:SS", a
// fraction of one to nine digits (more are cut), and "Z" or ±HH:MM. It is
// written out by hand rather than with time.Parse because it runs for every
// session of every reload, and because time.Parse cannot make the seconds'
// fraction and the offset both optional in one layout.
func parseStamp(s string) (stamp, bool) {
	var st stamp
	s = strings.TrimSpace(s)
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return st, false
	}
	var ok1, ok2, ok3 bool
	st.year, ok1 = digits(s[0:4])
	st.month, ok2 = digits(s[5:7])
	st.day, ok3 = digits(s[8:10])
	if !ok1 || !ok2 || !ok3 || st.month < 1 || st.month > 12 || st.day < 1 || st.day > daysIn(st.year, st.month) {
		return st, false
	}
	s = s[10:]
	if s == "" {
		return st, true
	}
	if len(s) < 9 || (s[0] != 'T' && s[0] != 't' && s[0] != ' ') || s[3] != ':' || s[6] != ':' {
		return st, false
	}
	st.hour, ok1 = digits(s[1:3])
	st.min, ok2 = digits(s[4:6])
	st.sec, ok3 = digits(s[7:9])
	if !ok1 || !ok2 || !ok3 || st.hour > 23 || st.min > 59 || st.sec > 59 {
		return st, false
	}
	s = s[9:]
	if s != "" && (s[0] == '.' || s[0] == ',') {
		i := 1
		scale := 100_000_000
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			st.nsec += int(s[i]-'0') * scale
			scale /= 10
		}
		if i == 1 {
			return st, false
		}
		s = s[i:]
	}
	switch {
	case s == "":
		return st, true
	case s == "Z" || s == "z":
		st.hasOffset = true
		return st, true
	case len(s) == 6 && (s[0] == '+' || s[0] == '-') && s[3] == ':':
		h, okh := digits(s[1:3])
		m, okm := digits(s[4:6])
		if !okh || !okm || h > 23 || m > 59 {
			return st, false
		}
		st.hasOffset = true
		st.offset = h*3600 + m*60
		if s[0] == '-' {
			st.offset = -st.offset
		}
		return st, true
	}
	return st, false
}

// msDate is a date in Microsoft's JSON form, /Date(ms)/ or /Date(ms±hhmm)/.
type msDate struct {
	ms        int64 // milliseconds since 1970-01-01T00:00:00 (UTC, or the wall clock)
	hasOffset bool
	offset    int // seconds east of UTC, when hasOffset
}

// The years a /Date()/ may name: 0001 to 9999, as for the ISO form.
const (
	minMSDate = -62135596800000 // 0001-01-01T00:00:00Z
	maxMSDate = 253402300799999 // 9999-12-31T23:59:59.999Z
)

// parseMSDate reads /Date(1795636800000)/ or /Date(1795633200000+0100)/.
// JSON writers often escape the slashes (\/Date(...)\/); by the time a
// value gets here the JSON string has been unquoted, so they are plain.
func parseMSDate(s string) (msDate, bool) {
	var d msDate
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "/Date(")
	if !ok {
		return d, false
	}
	if rest, ok = strings.CutSuffix(rest, ")/"); !ok {
		return d, false
	}
	end := 0
	if end < len(rest) && rest[end] == '-' {
		end++
	}
	start := end
	for end < len(rest) && '0' <= rest[end] && rest[end] <= '9' {
		end++
	}
	if end == start || end-start > 15 {
		return d, false
	}
	ms, err := strconv.ParseInt(rest[:end], 10, 64)
	if err != nil || ms < minMSDate || ms > maxMSDate {
		return d, false
	}
	d.ms = ms
	switch tail := rest[end:]; {
	case tail == "":
	case len(tail) == 5 && (tail[0] == '+' || tail[0] == '-'):
		h, okh := digits(tail[1:3])
		m, okm := digits(tail[3:5])
		if !okh || !okm || h > 23 || m > 59 {
			return d, false
		}
		d.hasOffset, d.offset = true, h*3600+m*60
		if tail[0] == '-' {
			d.offset = -d.offset
		}
	default:
		return d, false
	}
	return d, true
}

// unix splits the milliseconds into Unix seconds and nanoseconds.
func (d msDate) unix() (sec, nsec int64) {
	sec = d.ms / 1000
	rem := d.ms % 1000
	if rem < 0 {
		sec, rem = sec-1, rem+1000
	}
	return sec, rem * int64(time.Millisecond)
}

// digits reads a run of ASCII digits as a non-negative number.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysIn returns the number of days in month m of year y.
func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
