package vistasim

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// Streams of the seeded generator, one per kind of data.
const (
	streamCinemas = 0x636e6d73 << 32
	streamFilms   = 0x666c6d73 << 32
	streamSession = 0x73657373
)

type cinema struct {
	idx                                       int
	ID, Name, Address1, Address2, City, Phone string
	Email, Zone, Currency, Loyalty, Parking   string
	Lat, Lon                                  float64
	GiftStore                                 bool
	loc                                       *time.Location
	capacity                                  []int // per screen
	films                                     []int // film indexes shown here, sorted
}

type film struct {
	idx                                             int
	ID, Title, Rating, Distributor, Synopsis, Genre string
	RunTime                                         string
	Opening                                         string // "2026-11-20T00:00:00"
	cinemas                                         []int  // cinema indexes, sorted
}

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

// place is a city the cinemas are spread over; their zones are a mix of
// Windows and IANA names, and one empty TimeZoneId.
type place struct {
	zone, city, currency, phone, brand, domain string
	lat, lon                                   float64
	districts, streets                         []string
}

var places = []place{
	{"W. Europe Standard Time", "Berlin", "EUR", "+49 30 ", "Kino", "kino.example.de", 52.52, 13.405,
		[]string{"Südstern", "Mitte", "Prenzlauer Berg", "Kreuzberg"}, []string{"Hasenheide", "Friedrichstraße", "Kastanienallee", "Oranienstraße"}},
	{"Europe/London", "London", "GBP", "+44 20 ", "Picturehouse", "pictures.example.co.uk", 51.5074, -0.1278,
		[]string{"Leicester Square", "Islington", "Brixton", "Camden"}, []string{"Charing Cross Road", "Upper Street", "Coldharbour Lane", "Parkway"}},
	{"AUS Eastern Standard Time", "Sydney", "AUD", "+61 2 ", "Event Cinemas", "events.example.com.au", -33.8688, 151.2093,
		[]string{"George Street", "Bondi Junction", "Parramatta", "Chatswood"}, []string{"George St", "Oxford St", "Church St", "Victoria Ave"}},
	{"America/New_York", "New York", "USD", "+1 212 ", "Regal", "regal.example.com", 40.7128, -74.006,
		[]string{"Union Square", "Brooklyn Heights", "Harlem", "Astoria"}, []string{"Broadway", "Court St", "Lenox Ave", "Steinway St"}},
	{"", "Reykjavík", "ISK", "+354 ", "Bíó", "bio.example.is", 64.1466, -21.9426,
		[]string{"Miðbær", "Kringlan", "Smáralind", "Álfabakki"}, []string{"Hverfisgata", "Kringlan", "Hagasmári", "Álfabakki"}},
	{"Pacific Standard Time", "Los Angeles", "USD", "+1 323 ", "Cinemark", "cinemark.example.com", 34.0522, -118.2437,
		[]string{"Hollywood", "Santa Monica", "Pasadena", "Burbank"}, []string{"Sunset Blvd", "Third Street Promenade", "Colorado Blvd", "San Fernando Blvd"}},
	{"New Zealand Standard Time", "Auckland", "NZD", "+64 9 ", "Event Cinemas", "events.example.co.nz", -36.8485, 174.7633,
		[]string{"Queen Street", "Newmarket", "Sylvia Park", "Albany"}, []string{"Queen St", "Broadway", "Mount Wellington Hwy", "Don McKinnon Dr"}},
	{"South Africa Standard Time", "Johannesburg", "ZAR", "+27 11 ", "Ster-Kinekor", "sterkinekor.example.co.za", -26.2041, 28.0473,
		[]string{"Rosebank", "Sandton", "Melville", "Fourways"}, []string{"Cradock Ave", "Rivonia Rd", "7th St", "William Nicol Dr"}},
	{"Tokyo Standard Time", "Tokyo", "JPY", "+81 3 ", "Toho Cinemas", "toho.example.jp", 35.6762, 139.6503,
		[]string{"Shinjuku", "Shibuya", "Roppongi", "Hibiya"}, []string{"Kabukicho", "Dogenzaka", "Roppongi Hills", "Yurakucho"}},
}

// windowsZones maps the Windows zone names used above to IANA names. Vista
// sends whichever the cinema was set up with.
var windowsZones = map[string]string{
	"W. Europe Standard Time":    "Europe/Berlin",
	"AUS Eastern Standard Time":  "Australia/Sydney",
	"New Zealand Standard Time":  "Pacific/Auckland",
	"Pacific Standard Time":      "America/Los_Angeles",
	"South Africa Standard Time": "Africa/Johannesburg",
	"Tokyo Standard Time":        "Asia/Tokyo",
}

func loadZone(name string) *time.Location {
	if name == "" {
		return time.UTC
	}
	if iana, ok := windowsZones[name]; ok {
		name = iana
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic("vistasim: load zone " + name + ": " + err.Error())
	}
	return loc
}

func genCinemas(cfg Config) []*cinema {
	r := rand.New(rand.NewPCG(cfg.Seed, streamCinemas))
	locs := map[string]*time.Location{}
	out := make([]*cinema, cfg.Cinemas)
	for i := range out {
		p := places[i%len(places)]
		round := i / len(places)
		district := p.districts[round%len(p.districts)]
		name := p.brand + " " + district
		if n := round / len(p.districts); n > 0 {
			name += " " + strconv.Itoa(n+1)
		}
		loc, ok := locs[p.zone]
		if !ok {
			loc = loadZone(p.zone)
			locs[p.zone] = loc
		}
		c := &cinema{
			idx:       i,
			ID:        strconv.Itoa(1001 + i),
			Name:      name,
			Address1:  strconv.Itoa(1+r.IntN(240)) + " " + p.streets[round%len(p.streets)],
			City:      p.city,
			Phone:     p.phone + strconv.Itoa(1000+r.IntN(9000)) + " " + strconv.Itoa(1000+r.IntN(9000)),
			Email:     "info" + strconv.Itoa(1001+i) + "@" + p.domain,
			Zone:      p.zone,
			Currency:  p.currency,
			Loyalty:   "LOY" + strconv.Itoa(100+r.IntN(900)),
			Lat:       round6(p.lat + (r.Float64()-0.5)*0.12),
			Lon:       round6(p.lon + (r.Float64()-0.5)*0.12),
			GiftStore: r.IntN(3) != 0,
			loc:       loc,
		}
		if r.IntN(2) == 0 {
			c.Address2 = district
		}
		if r.IntN(2) == 0 {
			c.Parking = "Parking at the " + district + " car park, validated for " + strconv.Itoa(2+r.IntN(3)) + " hours."
		}
		c.capacity = make([]int, cfg.Screens)
		for s := range c.capacity {
			c.capacity[s] = 80 + r.IntN(221)
		}
		out[i] = c
	}
	return out
}

var (
	titles = []string{
		"The Last Harbour", "Midnight Orchard", "Crimson Frontier", "Paper Lanterns",
		"Kōbe Nights", "The Quiet Signal", "Wild Horizon", "Échos d'Émile",
		"Dune Runners", `"Bob" & the Giant`, "The Glass Kingdom", "Ordinary Saints",
		"Frozen River", "Electric Dreams: Part II", "Back\\Slash", "Lantern Bay",
	}
	adjectives   = []string{"Silent", "Last", "Golden", "Hidden", "Broken", "Electric", "Lost", "Burning"}
	nouns        = []string{"Voyage", "Empire", "Garden", "Signal", "Echo", "Tide", "Summit", "Letters"}
	ratings      = []string{"G", "PG", "M", "12A", "15", "R16", "R18", "PG-13", "R", "MA15+"}
	distributors = []string{"Universal", "Warner Bros.", "Sony Pictures", "StudioCanal", "A24", "Roadshow", "Toho", "Madman"}
)

func genFilms(cfg Config, now time.Time, cinemas []*cinema) []*film {
	r := rand.New(rand.NewPCG(cfg.Seed, streamFilms))
	y, m, d := now.UTC().Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	out := make([]*film, cfg.Films)
	for i := range out {
		title := ""
		if i < len(titles) {
			title = titles[i]
		} else {
			title = "The " + adjectives[r.IntN(len(adjectives))] + " " + nouns[r.IntN(len(nouns))] + " " + strconv.Itoa(i/len(titles)+1)
		}
		opening := today.AddDate(0, 0, r.IntN(70)-60)
		f := &film{
			idx:         i,
			ID:          "HO" + pad(720+i*17, 8),
			Title:       title,
			Rating:      ratings[r.IntN(len(ratings))],
			Distributor: distributors[r.IntN(len(distributors))],
			Genre:       "000" + strconv.Itoa(10+r.IntN(20)),
			RunTime:     strconv.Itoa(85 + r.IntN(96)),
			Opening:     string(appendWall(nil, opening)),
		}
		f.Synopsis = title + " follows " + []string{"two sisters", "a retired pilot", "a small-town band", "an unlikely detective"}[r.IntN(4)] +
			" through " + []string{"one long night", "a hard winter", "the summer of 1999", "a city that never sleeps"}[r.IntN(4)] +
			".\nRated " + f.Rating + "."
		// 2 to all cinemas.
		n := len(cinemas)
		if n > 2 {
			n = 2 + r.IntN(len(cinemas)-1)
		}
		f.cinemas = r.Perm(len(cinemas))[:n]
		out[i] = f
	}
	// Every cinema shows at least one film.
	for _, f := range out {
		for _, c := range f.cinemas {
			cinemas[c].films = append(cinemas[c].films, f.idx)
		}
	}
	for _, c := range cinemas {
		if len(c.films) == 0 {
			f := out[c.idx%len(out)]
			f.cinemas = append(f.cinemas, c.idx)
			c.films = []int{f.idx}
		}
		slices.Sort(c.films)
	}
	for _, f := range out {
		slices.Sort(f.cinemas)
	}
	return out
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

// snapshot is what a request sees: the generated days it needs and a copy
// of the hooks' changes, taken under the lock and read without it.
type snapshot struct {
	s          *Server
	now        float64
	days       [][][]session // in order of business day
	ov         overrides
	cinemaGone []bool
	filmGone   []bool
	filmTitle  []string
	cinemaName []string
	lo         int32
}

func (s *Server) snapshot() *snapshot {
	now := s.cfg.Clock()
	sn := &snapshot{s: s, now: unixSeconds(now)}
	s.mu.Lock()
	lo, hi := s.ensureLocked(now)
	sn.lo = lo
	sn.days = make([][][]session, 0, hi-lo+1)
	for d := lo; d <= hi; d++ {
		sn.days = append(sn.days, s.days[d])
	}
	sn.ov = s.ov.clone()
	s.mu.Unlock()

	sn.cinemaGone = make([]bool, len(s.cinemas))
	sn.cinemaName = make([]string, len(s.cinemas))
	for i, c := range s.cinemas {
		sn.cinemaGone[i] = sn.ov.goneCinemas[c.ID]
		sn.cinemaName[i] = c.Name
		if n, ok := sn.ov.cinemaNames[c.ID]; ok {
			sn.cinemaName[i] = n
		}
	}
	sn.filmGone = make([]bool, len(s.films))
	sn.filmTitle = make([]string, len(s.films))
	for i, f := range s.films {
		sn.filmGone[i] = sn.ov.goneFilms[f.ID]
		sn.filmTitle[i] = f.Title
		if t, ok := sn.ov.filmTitles[f.ID]; ok {
			sn.filmTitle[i] = t
		}
	}
	return sn
}

// sessionRow is a session with its state at the snapshot's time.
type sessionRow struct {
	x       *session
	seats   int32
	soldout int8
	status  byte // 'O' open or 'X' cancelled
	code    int8 // Vista's SessionStatus number
}

// listed reports whether x is in the listing at the snapshot's time.
func (sn *snapshot) listed(x *session) bool {
	now := sn.now
	if now < float64(x.published) || now >= float64(x.start+listedAfter) {
		return false
	}
	if sn.cinemaGone[x.c.idx] || sn.filmGone[x.f.idx] {
		return false
	}
	return len(sn.ov.sessions) == 0 || !sn.ov.sessions[x.id].removed
}

// fill computes the state of listed sessions at the snapshot's time. It is
// the costly part, so a page fills only its own rows.
func (sn *snapshot) fill(rows []sessionRow) {
	for i := range rows {
		row := &rows[i]
		x := row.x
		var o sessionOverride
		if len(sn.ov.sessions) > 0 {
			o = sn.ov.sessions[x.id]
		}
		at, status := sn.now, byte('O')
		if x.cancelAt != 0 && sn.now >= float64(x.cancelAt) {
			at, status = float64(x.cancelAt), 'X'
		}
		if o.cancelled {
			at, status = min(at, o.cancelAt), 'X'
		}
		seats := int(x.cap) - x.sold(at)
		if o.hasSeats {
			seats = o.seats
		}
		row.seats, row.status, row.soldout = int32(seats), status, 0
		row.code = 0
		if status == 'X' {
			row.code = 7
		}
		if o.hasStatus {
			row.code = o.status
		}
		switch {
		case seats <= 0:
			row.soldout = 2
		case seats*10 <= int(x.cap):
			row.soldout = 1
		}
	}
}

var sessionRowPool = sync.Pool{New: func() any { return new([]sessionRow) }}

func putSessionRows(rows []sessionRow) {
	if cap(rows) < 1<<10 {
		return
	}
	clear(rows) // let past days go
	rows = rows[:0]
	sessionRowPool.Put(&rows)
}

// listSessions returns the sessions listed now, in Vista's order; with ids
// (a $filter), only those. Their state is not filled in yet.
func (sn *snapshot) listSessions(ids []string) []sessionRow {
	if ids != nil {
		return sn.findSessions(ids)
	}
	rows := *sessionRowPool.Get().(*[]sessionRow)
	for _, day := range sn.days {
		for _, list := range day {
			for i := range list {
				if x := &list[i]; sn.listed(x) {
					rows = append(rows, sessionRow{x: x})
				}
			}
		}
	}
	return rows
}

// findSessions looks the ids up by the number they carry, without a scan.
func (sn *snapshot) findSessions(ids []string) []sessionRow {
	s := sn.s
	perDay := int32(s.cfg.Screens * s.cfg.ShowsPerDay)
	var rows []sessionRow
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		x := sn.lookup(id, perDay)
		if x == nil {
			continue
		}
		if sn.listed(x) {
			rows = append(rows, sessionRow{x: x})
		}
	}
	slices.SortFunc(rows, func(a, b sessionRow) int { return int(sign(a.x.ord - b.x.ord)) })
	return rows
}

func (sn *snapshot) lookup(id string, perDay int32) *session {
	dash := -1
	for i := 0; i < len(id); i++ {
		if id[i] == '-' {
			dash = i
			break
		}
	}
	if dash < 0 {
		return nil
	}
	ci, ok := sn.s.cinemaByID[id[:dash]]
	if !ok {
		return nil
	}
	num, err := strconv.ParseInt(id[dash+1:], 10, 32)
	if err != nil || num < 1 {
		return nil
	}
	d := int32((num-1)/int64(perDay)) + epochDay
	k := int((num - 1) % int64(perDay))
	if d < sn.lo || int(d-sn.lo) >= len(sn.days) {
		return nil
	}
	x := &sn.days[d-sn.lo][ci][k]
	if x.id != id {
		return nil
	}
	return x
}

func sign(v int64) int64 {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

// cinemaRow is a cinema as listed now.
type cinemaRow struct {
	c    *cinema
	name string
}

func (sn *snapshot) listCinemas(ids []string) []cinemaRow {
	want := idSet(ids)
	var rows []cinemaRow
	for i, c := range sn.s.cinemas {
		if sn.cinemaGone[i] || (want != nil && !want[c.ID]) {
			continue
		}
		rows = append(rows, cinemaRow{c: c, name: sn.cinemaName[i]})
	}
	return rows
}

// filmRow is one row of ScheduledFilms: a film at a cinema.
type filmRow struct {
	c     *cinema
	f     *film
	id    string
	title string
}

func (sn *snapshot) listFilms(ids []string) []filmRow {
	want := idSet(ids)
	var rows []filmRow
	for ci, c := range sn.s.cinemas {
		if sn.cinemaGone[ci] {
			continue
		}
		for _, fi := range c.films {
			f := sn.s.films[fi]
			id := c.ID + "-" + f.ID
			if sn.filmGone[fi] || (want != nil && !want[id]) {
				continue
			}
			rows = append(rows, filmRow{c: c, f: f, id: id, title: sn.filmTitle[fi]})
		}
	}
	return rows
}

func idSet(ids []string) map[string]bool {
	if ids == nil {
		return nil
	}
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// appendWall appends t's wall clock as Vista writes it, with no offset.
func appendWall(b []byte, t time.Time) []byte {
	y, m, d := t.Date()
	hh, mm, ss := t.Clock()
	b = append(b, pad(y, 4)...)
	b = append(b, '-', byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+hh/10), byte('0'+hh%10), ':', byte('0'+mm/10), byte('0'+mm%10), ':', byte('0'+ss/10), byte('0'+ss%10))
	return b
}

func pad(n, width int) string {
	s := strconv.Itoa(n)
	for len(s) < width {
		s = "0" + s
	}
	return s
}

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }
