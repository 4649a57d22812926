package vistasim

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
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
