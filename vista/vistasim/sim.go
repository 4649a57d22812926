// Package vistasim is a simulated Vista Connect: an http.Handler that answers
// OData.svc/Cinemas, OData.svc/ScheduledFilms and OData.svc/Sessions the way
// Vista does, for tests, the demo and benchmarks.
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
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
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
	// longer ones get 414. Default 4096.
	MaxURLLength int

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

// Endpoint names: the keys of Requests and the values of Failure.Endpoint.
const (
	EndpointCinemas  = "cinemas"  // OData.svc/Cinemas
	EndpointFilms    = "films"    // OData.svc/ScheduledFilms
	EndpointSessions = "sessions" // OData.svc/Sessions without $filter
	EndpointSeats    = "seats"    // OData.svc/Sessions with $filter
	EndpointOther    = "other"    // anything else (answered 404)
)

var endpoints = [...]string{EndpointCinemas, EndpointFilms, EndpointSessions, EndpointSeats, EndpointOther}

const (
	epCinemas = iota
	epFilms
	epSessions
	epSeats
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

	counts [len(endpoints)]atomic.Int64
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

// ---- failures ----

// FailMode is how a request fails on purpose.
type FailMode int

// Failure modes.
const (
	// FailStatus answers Failure.Status (default 500) with an OData error.
	FailStatus FailMode = iota + 1
	// FailSlow waits Failure.Delay, or until the client gives up, then
	// answers normally.
	FailSlow
	// FailMalformed answers 200 with the first half of the real body: JSON
	// that ends too soon.
	FailMalformed
	// FailRateLimit answers 429 (or Failure.Status) with Retry-After.
	FailRateLimit
	// FailEmpty answers 200 with an empty list, {"value":[]}, as a
	// misrouted gateway or a broken Vista cache does: every list and
	// every seat check then says there is nothing.
	FailEmpty
)

func (m FailMode) String() string {
	switch m {
	case FailStatus:
		return "status"
	case FailSlow:
		return "slow"
	case FailMalformed:
		return "malformed"
	case FailRateLimit:
		return "rate-limited"
	case FailEmpty:
		return "empty"
	}
	return "FailMode(" + strconv.Itoa(int(m)) + ")"
}

// Failure makes the next matching requests fail. Failures queue: a request
// takes the first one, in the order given to Fail, that matches it.
type Failure struct {
	Mode FailMode
	// Count is how many matching requests fail before it heals; 0 is taken
	// as 1; negative fails until ClearFailures.
	Count int
	// Endpoint is one of the Endpoint constants; "" matches every request.
	Endpoint string
	// Status is the status for FailStatus (default 500) and FailRateLimit
	// (default 429).
	Status int
	// RetryAfter is sent as Retry-After, rounded up to whole seconds, by
	// FailRateLimit always (0 sends "0") and by FailStatus when positive.
	RetryAfter time.Duration
	// Delay is waited before answering, in every mode; the wait ends early
	// when the request's context is done, and then nothing is answered.
	Delay time.Duration
}

// Fail queues a failure for the next matching requests.
func (s *Server) Fail(f Failure) {
	if f.Count == 0 {
		f.Count = 1
	}
	s.failMu.Lock()
	s.failures = append(s.failures, &f)
	s.failMu.Unlock()
}

// ClearFailures drops every queued failure.
func (s *Server) ClearFailures() {
	s.failMu.Lock()
	s.failures = nil
	s.failMu.Unlock()
}

func (s *Server) takeFailure(ep string) (Failure, bool) {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	for i, f := range s.failures {
		if f.Endpoint != "" && f.Endpoint != ep {
			continue
		}
		taken := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				s.failures = slices.Delete(s.failures, i, i+1)
			}
		}
		return taken, true
	}
	return Failure{}, false
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

// ResetRequests sets every counter to zero.
func (s *Server) ResetRequests() {
	for i := range s.counts {
		s.counts[i].Store(0)
	}
}

// ---- hooks ----

// SetSeats fixes the seats available of a session at n (negative counts as
// 0) from now on, instead of the generated ones.
func (s *Server) SetSeats(id string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.ov.sessions[id]
	o.seats, o.hasSeats = max(n, 0), true
	s.ov.sessions[id] = o
}

// Remove makes a session disappear from every answer, as if Vista had
// deleted it.
func (s *Server) Remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.ov.sessions[id]
	o.removed = true
	s.ov.sessions[id] = o
}

// Cancel marks a session cancelled (Status "X") from now on; its seats stop
// selling. It stays listed until it would have ended.
func (s *Server) Cancel(id string) {
	now := s.cfg.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.ov.sessions[id]
	if !o.cancelled {
		o.cancelled, o.cancelAt = true, unixSeconds(now)
	}
	s.ov.sessions[id] = o
}

// SetStatus sets a session's Status to one of the numbers of Vista's API
// definition (0 Open, 1 Closed, ... 7 Cancelled, 8 Unknown) from now on. A
// 7 stops its seats selling, as Cancel does.
func (s *Server) SetStatus(id string, status int) {
	now := s.cfg.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.ov.sessions[id]
	o.status, o.hasStatus = int8(status), true
	if status == 7 && !o.cancelled {
		o.cancelled, o.cancelAt = true, unixSeconds(now)
	}
	s.ov.sessions[id] = o
}

// MoveSession moves a session to showtime from now on, as a cinema that
// reschedules a showing does: it is listed with the new showtime (the wall
// time in its cinema's zone) and the business date of it, sells towards
// it, and stays listed until half an hour after it. A session not yet
// published is published now, and a cancellation the schedule holds for
// it is dropped (Cancel still cancels it). It keeps its id and its place
// in the lists, and it is listed only while its business day as generated
// is: a showing moved by a day or two stays listed. Restore moves it back.
// An id the schedule does not hold is ignored.
//
// Tests that need a showing at a given moment of a clock they do not
// control (the demo's real one) make one this way.
func (s *Server) MoveSession(id string, showtime time.Time) {
	now := s.cfg.Clock()
	ci, d, k, ok := s.locate(id)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.dayLocked(d)[ci][k]
	if x.id != id {
		return
	}
	start := showtime.Unix()
	mv := move{start: start, published: min(x.published, now.Unix(), start-3600)}
	s.moves[id] = mv
	x.moveTo(mv)
	s.replaceLocked(d, ci, k, x)
}

// Restore drops every hook's change to the session, film or cinema with
// this id: it is generated again.
func (s *Server) Restore(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, moved := s.moves[id]; moved {
		delete(s.moves, id)
		if ci, d, k, ok := s.locate(id); ok {
			if _, ok := s.days[d]; ok {
				s.replaceLocked(d, ci, k, s.genCinemaDay(s.cinemas[ci], d)[k])
			}
		}
	}
	delete(s.ov.sessions, id)
	delete(s.ov.goneFilms, id)
	delete(s.ov.filmTitles, id)
	delete(s.ov.goneCinemas, id)
	delete(s.ov.cinemaNames, id)
}

// RemoveFilm takes a film out of ScheduledFilms, and its sessions out of
// Sessions, until Restore.
func (s *Server) RemoveFilm(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ov.goneFilms[id] = true
}

// RemoveCinema takes a cinema out of Cinemas, and its films' rows and its
// sessions out of the other lists, until Restore.
func (s *Server) RemoveCinema(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ov.goneCinemas[id] = true
}

// SetFilmTitle renames a film in every ScheduledFilms row.
func (s *Server) SetFilmTitle(id, title string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ov.filmTitles[id] = title
}

// SetCinemaName renames a cinema.
func (s *Server) SetCinemaName(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ov.cinemaNames[id] = name
}

// SessionInfo is a session as listed at the time of the call.
type SessionInfo struct {
	ID             string // composite, e.g. "1001-196417"
	CinemaID       string
	FilmID         string // ScheduledFilmId
	SessionID      string
	Showtime       time.Time // in the zone the cinema's wall times were generated in
	ScreenNumber   int
	Capacity       int
	SeatsAvailable int
	SoldoutStatus  int
	Status         string // "O" open, "X" cancelled
	StatusCode     int    // Vista's number: 0 open, 7 cancelled, or what SetStatus set
	Published      time.Time
}

// Sessions returns the sessions a full Sessions request would list now, in
// the same order.
func (s *Server) Sessions() []SessionInfo {
	sn := s.snapshot()
	rows := sn.listSessions(nil)
	sn.fill(rows)
	out := make([]SessionInfo, len(rows))
	for i, r := range rows {
		x := r.x
		out[i] = SessionInfo{
			ID:             x.id,
			CinemaID:       x.c.ID,
			FilmID:         x.f.ID,
			SessionID:      strconv.Itoa(int(x.num)),
			Showtime:       time.Unix(x.start, 0).In(x.c.loc),
			ScreenNumber:   int(x.screen),
			Capacity:       int(x.cap),
			SeatsAvailable: int(r.seats),
			SoldoutStatus:  int(r.soldout),
			Status:         string(r.status),
			StatusCode:     int(r.code),
			Published:      time.Unix(x.published, 0).In(x.c.loc),
		}
	}
	return out
}

// CinemaIDs returns the ids of the cinemas listed now.
func (s *Server) CinemaIDs() []string {
	sn := s.snapshot()
	var ids []string
	for i, c := range s.cinemas {
		if !sn.cinemaGone[i] {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// FilmIDs returns the ScheduledFilmIds of the films listed now.
func (s *Server) FilmIDs() []string {
	sn := s.snapshot()
	var ids []string
	for i, f := range s.films {
		if !sn.filmGone[i] {
			ids = append(ids, f.ID)
		}
	}
	return ids
}

// ---- HTTP ----

// contentType is what Vista's OData (Web API, OData v3) sends.
const contentType = "application/json; odata=minimalmetadata; streaming=true; charset=utf-8"

var _ http.Handler = (*Server)(nil)

// ServeHTTP answers GET .../OData.svc/Cinemas, .../OData.svc/ScheduledFilms
// and .../OData.svc/Sessions under any base path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	set, ep := classify(r)
	s.counts[ep].Add(1)
	if ep == epOther {
		writeError(w, http.StatusNotFound, "No HTTP resource was found that matches the request URI '"+r.URL.Path+"'.")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "The requested resource does not support http method '"+r.Method+"'.")
		return
	}
	if n := len(r.URL.EscapedPath()) + 1 + len(r.URL.RawQuery); n > s.cfg.MaxURLLength {
		writeError(w, http.StatusRequestURITooLong, fmt.Sprintf("The request URI is %d bytes long; the limit is %d.", n, s.cfg.MaxURLLength))
		return
	}
	if s.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("connectapitoken")), []byte(s.cfg.Token)) != 1 {
		writeError(w, http.StatusUnauthorized, "Authorization has been denied for this request.")
		return
	}

	malformed := false
	if f, ok := s.takeFailure(endpoints[ep]); ok {
		if f.Delay > 0 && !sleep(r.Context(), f.Delay) {
			return
		}
		switch f.Mode {
		case FailStatus:
			status := cmp(f.Status, http.StatusInternalServerError)
			if f.RetryAfter > 0 {
				w.Header().Set("Retry-After", retryAfter(f.RetryAfter))
			}
			writeError(w, status, "An error has occurred (simulated "+strconv.Itoa(status)+").")
			return
		case FailRateLimit:
			w.Header().Set("Retry-After", retryAfter(f.RetryAfter))
			writeError(w, cmp(f.Status, http.StatusTooManyRequests), "Too many requests (simulated).")
			return
		case FailMalformed:
			malformed = true
		case FailEmpty:
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"value":[]}`))
			return
		}
	}

	q, err := parseQuery(r.URL.RawQuery, s.cfg.MaxFilterIDs)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var body bytes.Buffer
	var out io.Writer = &body
	if !malformed {
		out = newStreamWriter(w)
	}
	w.Header().Set("Content-Type", contentType)
	sn := s.snapshot()
	switch ep {
	case epCinemas:
		err = writeList(out, r, set, q, s.fieldsCinema, s.cfg.PageSize, sn.listCinemas(q.ids), nil)
	case epFilms:
		err = writeList(out, r, set, q, s.fieldsFilm, s.cfg.PageSize, sn.listFilms(q.ids), nil)
	default:
		rows := sn.listSessions(q.ids)
		err = writeList(out, r, set, q, s.fieldsSession, s.cfg.PageSize, rows, sn.fill)
		putSessionRows(rows)
	}
	if err != nil {
		// Only a bad $select gets here, before anything was written.
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if malformed {
		b := body.Bytes()
		b = b[:len(b)/2]
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
		return
	}
	out.(*streamWriter).Flush()
}

// classify names the entity set and the endpoint counter of a request.
func classify(r *http.Request) (set string, ep int) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	i := strings.LastIndex(p, "/OData.svc/")
	if i < 0 {
		return "", epOther
	}
	switch set = p[i+len("/OData.svc/"):]; set {
	case "Cinemas":
		return set, epCinemas
	case "ScheduledFilms":
		return set, epFilms
	case "Sessions":
		if strings.Contains(r.URL.RawQuery, "filter=") {
			for k := range splitQuery(r.URL.RawQuery) {
				if k == "$filter" {
					return set, epSeats
				}
			}
		}
		return set, epSessions
	}
	return "", epOther
}

func cmp(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func retryAfter(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(max(d, 0).Seconds())), 10)
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	b := make([]byte, 0, 128+len(msg))
	b = append(b, `{"odata.error":{"code":"","message":{"lang":"en-US","value":`...)
	b = appendString(b, msg)
	b = append(b, "}}}"...)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}
