// Package vistasim is a simulated Vista Connect: an http.Handler that answers
// OData.svc/Cinemas, OData.svc/ScheduledFilms and OData.svc/Sessions the way
// Vista does, for tests, the demo and benchmarks.
//
// Sessions takes two $filter shapes (query.go has the grammar): the seat
// check, `ID eq 'A' or ID eq 'B'`, and the window query, `Showtime ge
// datetime'2026-11-25T18:00:00' and Showtime lt datetime'…'`, which lists
// every session whose wall showtime lies in the window, all cinemas,
// paged like the full list. A window query may ask for several windows
// at once, joined by "or" (`(Showtime ge … and Showtime lt …) or
// (Showtime ge … and Showtime lt …)`, up to 100), and lists the sessions
// in any of them, each once. Each shape is an endpoint of its own for the
// counters and the failures, and Rows counts what each request cost the
// server: the rows it scanned and the rows it returned.
//
// Everything it serves is a pure function of Config.Seed and the clock: the
// schedule is generated from the seed, and the seats of a session, whether it
// is published yet and whether it was cancelled are computed from the time of
// the request, so nothing ticks in the background and a test moves time by
// moving its clock. Hooks on Server change single entities (SetSeats, Remove,
// Cancel, RemoveFilm...), and Fail makes the next requests fail on purpose.
//
// It imports nothing of the project, so the client under test cannot lean on
// shared code to agree with it.
package vistasim

import (
	"sync"
	"sync/atomic"
	"time"
	_ "time/tzdata" // the cinemas' zones must load in a bare container
)

// Config sets up a Server. The zero value is usable: every field has a
// default.
//
// Sizing: the schedule holds Cinemas × Screens × ShowsPerDay sessions per
// day, and about 90% of the sessions of the coming Days days are listed at
// any moment (the rest are not published yet, or already over). Cinemas 100,
// Screens 14, ShowsPerDay 5, Days 14 schedules 98,000 sessions and lists
// about 88,700; for 100k listed use Cinemas 113 (about 100,300), with Films
// 60 or so to keep the films realistic. At that size New takes about 50 ms
// and a full unpaged Sessions answer (60 MB) about 35 ms.
type Config struct {
	// Seed picks the data. The same seed and the same clock reading give
	// byte-identical responses. Default 0 (a valid seed).
	Seed uint64

	// Clock is read once per request, and by New and the hooks. Default
	// time.Now.
	Clock func() time.Time

	// Token, when set, is required in the header connectapitoken; a request
	// without it gets 401. Default "" (no token needed).
	Token string

	// Cinemas is the number of cinemas, with IDs 1001, 1002, ... and zones
	// cycling through Windows names, IANA names and one empty TimeZoneId.
	// Default 6.
	Cinemas int
	// Films is the number of films (ScheduledFilmId HO00000720, ...), each
	// shown in 2 to all cinemas. Default 12.
	Films int
	// Screens per cinema. Default 4.
	Screens int
	// ShowsPerDay per screen, from about 11:00 to about midnight local time.
	// Default 5.
	ShowsPerDay int
	// Days ahead that sessions are published for. Default 14.
	Days int

	// PageSize is the number of rows per page; longer lists carry an
	// odata.nextLink. Default 1000 (when 0); negative (NoPaging) sends every
	// list as one page.
	PageSize int
	// MaxFilterIDs is the most ids a $filter may name before the request is
	// refused with 400. Default 100.
	MaxFilterIDs int
	// MaxURLLength is the longest request URI (path and query) accepted;
	// longer ones get 414, whatever the query's shape. Default 4096.
	MaxURLLength int

	// RefuseWindows answers every window query (a Sessions $filter that
	// names Showtime) 400, as a WCF Data Services server that does not
	// allow filtering on Showtime does: "The query parameter '$filter' is
	// not supported: filtering on Showtime is not allowed."
	RefuseWindows bool
	// RowCost, when positive, is real time a request spends per row it
	// scans and per row it returns (see Rows) before it answers: a window
	// query, which scans every listed session, is then visibly slower than
	// a seat check by id. The wait ends early, and nothing is answered,
	// when the request's context is done. Default 0.
	RowCost time.Duration

	// LetterStatus sends a session's Status as the letter older servers
	// use ("O" open, "X" cancelled) instead of the number of Vista's API
	// definition (0 open, 7 cancelled, or what SetStatus set).
	LetterStatus bool
	// OmitSessionFields names properties the server's Session does not
	// have, as older Vista servers have no Status and SoldoutStatus: rows
	// leave them out, and a $select that names one is refused with 400.
	OmitSessionFields []string
}

// NoPaging as Config.PageSize sends every list as one page.
const NoPaging = -1

// Defaults of Config.
const (
	DefaultCinemas      = 6
	DefaultFilms        = 12
	DefaultScreens      = 4
	DefaultShowsPerDay  = 5
	DefaultDays         = 14
	DefaultPageSize     = 1000
	DefaultMaxFilterIDs = 100
	DefaultMaxURLLength = 4096
)

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Cinemas, DefaultCinemas)
	def(&c.Films, DefaultFilms)
	def(&c.Screens, DefaultScreens)
	def(&c.ShowsPerDay, DefaultShowsPerDay)
	def(&c.Days, DefaultDays)
	def(&c.MaxFilterIDs, DefaultMaxFilterIDs)
	def(&c.MaxURLLength, DefaultMaxURLLength)
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// Endpoint names: the keys of Requests and Rows and the values of
// Failure.Endpoint.
const (
	EndpointCinemas  = "cinemas"  // OData.svc/Cinemas
	EndpointFilms    = "films"    // OData.svc/ScheduledFilms
	EndpointSessions = "sessions" // OData.svc/Sessions without $filter
	EndpointSeats    = "seats"    // OData.svc/Sessions with a $filter that does not name Showtime (ID eq …)
	EndpointWindow   = "window"   // OData.svc/Sessions with a $filter that names Showtime
	EndpointOther    = "other"    // anything else (answered 404)
)

var endpoints = [...]string{EndpointCinemas, EndpointFilms, EndpointSessions, EndpointSeats, EndpointWindow, EndpointOther}

const (
	epCinemas = iota
	epFilms
	epSessions
	epSeats
	epWindow
	epOther
)

// Server is a simulated Vista Connect. It is an http.Handler; its methods
// are safe for concurrent use.
type Server struct {
	cfg        Config
	cinemas    []*cinema
	films      []*film
	cinemaByID map[string]int
	filmByID   map[string]int

	fieldsCinema  fieldSet[cinemaRow]
	fieldsFilm    fieldSet[filmRow]
	fieldsSession fieldSet[sessionRow]

	mu    sync.Mutex
	days  map[int32][][]session // business day → cinema index → sessions
	ov    overrides
	moves map[string]move // MoveSession's, by session id: applied to a day whenever it is generated

	failMu   sync.Mutex
	failures []*Failure

	counts   [len(endpoints)]atomic.Int64
	scanned  [len(endpoints)]atomic.Int64
	returned [len(endpoints)]atomic.Int64
}

// overrides are the hooks' changes. They are copied for each request, so
// they stay small.
type overrides struct {
	sessions    map[string]sessionOverride
	goneFilms   map[string]bool
	goneCinemas map[string]bool
	filmTitles  map[string]string
	cinemaNames map[string]string
}

type sessionOverride struct {
	seats     int
	hasSeats  bool
	status    int8 // Vista's SessionStatus number, when hasStatus
	hasStatus bool
	removed   bool
	cancelled bool
	cancelAt  float64 // Unix seconds
}

func (o *overrides) clone() overrides {
	return overrides{
		sessions:    cloneMap(o.sessions),
		goneFilms:   cloneMap(o.goneFilms),
		goneCinemas: cloneMap(o.goneCinemas),
		filmTitles:  cloneMap(o.filmTitles),
		cinemaNames: cloneMap(o.cinemaNames),
	}
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if len(m) == 0 {
		return nil
	}
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// New builds the cinemas, the films and the schedule around the clock's
// current time. It panics only if the embedded zone database is broken.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, days: make(map[int32][][]session), moves: make(map[string]move)}
	s.ov = overrides{
		sessions:    map[string]sessionOverride{},
		goneFilms:   map[string]bool{},
		goneCinemas: map[string]bool{},
		filmTitles:  map[string]string{},
		cinemaNames: map[string]string{},
	}
	now := cfg.Clock()
	s.cinemas = genCinemas(cfg)
	s.films = genFilms(cfg, now, s.cinemas)
	s.cinemaByID = make(map[string]int, len(s.cinemas))
	for i, c := range s.cinemas {
		s.cinemaByID[c.ID] = i
	}
	s.filmByID = make(map[string]int, len(s.films))
	for i, f := range s.films {
		s.filmByID[f.ID] = i
	}
	s.fieldsCinema = cinemaFields()
	s.fieldsFilm = filmFields()
	s.fieldsSession = sessionFields(cfg.LetterStatus, cfg.OmitSessionFields)
	s.mu.Lock()
	s.ensureLocked(now)
	s.mu.Unlock()
	return s
}

// ---- counters ----

// Requests returns how many requests each endpoint has received since New
// or ResetRequests, failed ones included. Every Endpoint constant is a key.
func (s *Server) Requests() map[string]int64 {
	m := make(map[string]int64, len(endpoints))
	for i, name := range endpoints {
		m[name] = s.counts[i].Load()
	}
	return m
}

// RowCount is what the requests to one endpoint cost the server.
type RowCount struct {
	// Requests is the number of requests, as Requests counts them.
	Requests int64
	// Scanned is the rows the server examined to answer them: every
	// listed session for a full Sessions list or a window query, every
	// listed cinema or film row for those lists (with or without a
	// $filter), and one lookup per distinct id a seat check names. A
	// request refused or failed on purpose before its rows are read scans
	// none.
	Scanned int64
	// Returned is the rows written in the pages the requests sent: one
	// page each, never more than Config.PageSize.
	Returned int64
}

// Rows returns what each endpoint's requests have cost since New or
// ResetRequests. Every Endpoint constant is a key.
func (s *Server) Rows() map[string]RowCount {
	m := make(map[string]RowCount, len(endpoints))
	for i, name := range endpoints {
		m[name] = RowCount{
			Requests: s.counts[i].Load(),
			Scanned:  s.scanned[i].Load(),
			Returned: s.returned[i].Load(),
		}
	}
	return m
}

// ResetRequests sets every counter, Requests' and Rows', to zero.
func (s *Server) ResetRequests() {
	for i := range s.counts {
		s.counts[i].Store(0)
		s.scanned[i].Store(0)
		s.returned[i].Store(0)
	}
}
