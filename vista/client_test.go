package vista

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

const testToken = "s3cr3t-T0KEN-7f2a"

// mustClient builds a Client for tests, with a fast backoff by default.
func mustClient(tb testing.TB, cfg Config) *Client {
	tb.Helper()
	if cfg.BaseDelay == 0 {
		cfg.BaseDelay = time.Millisecond
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = 8 * time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	c, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return c
}

// recordSleeps makes c's backoff exact (the ceiling, no jitter) and
// instant, and returns a func that reports what c was asked to wait.
func recordSleeps(c *Client) func() []time.Duration {
	var (
		mu  sync.Mutex
		got []time.Duration
	)
	c.jitter = func(d time.Duration) time.Duration { return d }
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		got = append(got, d)
		mu.Unlock()
		return ctx.Err()
	}
	return func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// fixtureServer serves the Vista JSON in testdata under /WSVistaWebClient/,
// with the absolute links of the fixtures pointed at itself. It records the
// headers of every request.
type fixtureServer struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
}

const fixtureBase = "https://connect.example.com/WSVistaWebClient/"

func newFixtureServer(tb testing.TB) *fixtureServer {
	tb.Helper()
	fs := &fixtureServer{}
	files := map[string]string{
		"/WSVistaWebClient/OData.svc/Cinemas":        "cinemas.json",
		"/WSVistaWebClient/OData.svc/ScheduledFilms": "scheduled_films.json",
		"/WSVistaWebClient/OData.svc/Sessions":       "sessions_page1.json",
	}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.mu.Lock()
		fs.headers = append(fs.headers, r.Header.Clone())
		fs.mu.Unlock()
		name, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.URL.Path == "/WSVistaWebClient/OData.svc/Sessions" && r.URL.Query().Get("$skiptoken") == "'1001-14166'" {
			name = "sessions_page2.json"
		}
		b := mustRead(tb, name)
		b = bytes.ReplaceAll(b, []byte(fixtureBase), []byte(fs.URL+"/WSVistaWebClient/"))
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(b)
	}))
	tb.Cleanup(fs.Close)
	return fs
}

// fixtures holds Vista's JSON in its real shapes and the golden files of
// what the client makes of it, at the repository's testdata/ where readers
// of other packages and other languages find them too. The fuzz corpus stays
// in vista/testdata/fuzz, where go test looks for it.
const fixtures = "../testdata/vista"

func mustRead(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// golden compares got with the fixture name, or rewrites it under -update.
func golden(t *testing.T, name string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	path := filepath.Join(fixtures, name)
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("%s differs from what the client decoded; got:\n%s", path, b)
	}
}

// rowErrorMessages returns the messages of a RowErrors, failing on any other
// error.
func rowErrorMessages(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return []string{}
	}
	var re RowErrors
	if !errors.As(err, &re) {
		t.Fatalf("error = %v, want RowErrors", err)
	}
	msgs := []string{}
	for _, e := range re {
		msgs = append(msgs, e.Error())
	}
	return msgs
}

type goldenCinema struct {
	ID, Name, Address1, Address2, City, Latitude, Longitude, PhoneNumber string
	TimeZoneID, CurrencyCode, Location                                   string
}

type goldenFilm struct {
	ID, Title, Rating string
	RunTimeMinutes    int
	OpeningDate       string
	Distributor       string
	CinemaIDs         []string
}

type goldenSession struct {
	ID, CinemaID, FilmID, SessionID, Showtime, Zone, BusinessDate string
	SeatsAvailable                                                int
	ScreenName                                                    string
	ScreenNumber                                                  int
	Attributes                                                    []string
	SoldoutStatus                                                 int
	Status                                                        string
	Cancelled                                                     bool
}

// TestRawOnlyWhenKept: without KeepRaw no entity holds its row's JSON,
// so a list holds no copy of its pages.
func TestRawOnlyWhenKept(t *testing.T) {
	fs := newFixtureServer(t)
	c := mustClient(t, Config{BaseURL: fs.URL + "/WSVistaWebClient", Token: testToken, Zones: Zones{Default: time.UTC}})
	ctx := context.Background()
	cinemas, err := c.Cinemas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	films, err := c.Films(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sessions, _ := c.Sessions(ctx, nil)
	if len(cinemas) == 0 || len(films) == 0 || len(sessions) == 0 {
		t.Fatalf("%d cinemas, %d films, %d sessions: the fixtures should give some of each", len(cinemas), len(films), len(sessions))
	}
	for _, ci := range cinemas {
		if ci.Raw != nil {
			t.Errorf("cinema %s has Raw without KeepRaw", ci.ID)
		}
	}
	for _, f := range films {
		if f.Raw != nil {
			t.Errorf("film %s has Raw without KeepRaw", f.ID)
		}
	}
	for _, s := range sessions {
		if s.Raw != nil {
			t.Errorf("session %s has Raw without KeepRaw", s.ID)
		}
	}
}

func TestGolden(t *testing.T) {
	fs := newFixtureServer(t)
	c := mustClient(t, Config{
		BaseURL: fs.URL + "/WSVistaWebClient", // no trailing slash
		Token:   testToken,
		KeepRaw: true,
		Zones: Zones{
			Default:   mustLocation(t, "America/New_York"),
			Overrides: map[string]*time.Location{"1003": mustLocation(t, "Europe/Helsinki")},
		},
	})
	ctx := context.Background()

	cinemas, err := c.Cinemas(ctx)
	if err != nil {
		t.Fatalf("Cinemas: %v", err)
	}
	zones := make(map[string]*time.Location)
	var gc []goldenCinema
	for _, ci := range cinemas {
		zones[ci.ID] = ci.Location
		gc = append(gc, goldenCinema{ci.ID, ci.Name, ci.Address1, ci.Address2, ci.City, ci.Latitude, ci.Longitude,
			ci.PhoneNumber, ci.TimeZoneID, ci.CurrencyCode, ci.Location.String()})
		checkRaw(t, "cinemas.json", ci.ID, ci.Raw)
	}
	golden(t, "cinemas.golden.json", map[string]any{"cinemas": gc, "errors": []string{}})

	films, err := c.Films(ctx)
	if err != nil {
		t.Fatalf("Films: %v", err)
	}
	var gf []goldenFilm
	for _, f := range films {
		checkRaw(t, "scheduled_films.json", f.ID, f.Raw)
		gf = append(gf, goldenFilm{f.ID, f.Title, f.Rating, f.RunTimeMinutes, f.OpeningDate, f.Distributor, f.CinemaIDs})
	}
	golden(t, "films.golden.json", map[string]any{"films": gf, "errors": []string{}})

	sessions, err := c.Sessions(ctx, zones)
	msgs := rowErrorMessages(t, err)
	var gs []goldenSession
	for _, s := range sessions {
		gs = append(gs, goldenSession{s.ID, s.CinemaID, s.FilmID, s.SessionID, s.Showtime.Format(time.RFC3339),
			s.Showtime.Location().String(), s.BusinessDate, s.SeatsAvailable, s.ScreenName, s.ScreenNumber,
			s.Attributes, s.SoldoutStatus, s.Status, s.Cancelled()})
		checkRaw(t, "sessions_page1.json", s.ID, s.Raw)
	}
	golden(t, "sessions.golden.json", map[string]any{"sessions": gs, "errors": msgs})

	// The fixtures hold a bad row on page 1 (Showtime "banana", index 2);
	// whatever the golden file says, the contract says this much.
	want := `decode sessions: value[2].Showtime: "banana" is not a date`
	if len(msgs) != 1 || msgs[0] != want {
		t.Errorf("Sessions row errors = %q, want [%q]", msgs, want)
	}
	if len(sessions) != 5 {
		t.Errorf("Sessions = %d sessions, want the 5 good rows of both pages", len(sessions))
	}

	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.headers) != 4 {
		t.Errorf("requests = %d, want 4 (cinemas, films, two pages of sessions)", len(fs.headers))
	}
	for i, h := range fs.headers {
		if h.Get("Accept") != "application/json" || h.Get("connectapitoken") != testToken {
			t.Errorf("request %d headers Accept=%q connectapitoken=%q, want application/json and the token", i, h.Get("Accept"), h.Get("connectapitoken"))
		}
	}
}

// checkRaw asserts that raw is the row of id exactly as the fixture holds it
// (the fixtures for sessions span two files).
func checkRaw(t *testing.T, file, id string, raw json.RawMessage) {
	t.Helper()
	if !json.Valid(raw) || !bytes.Contains(raw, []byte(id)) {
		t.Errorf("Raw of %s = %s, want the row's JSON", id, raw)
		return
	}
	if !bytes.Contains(mustRead(t, file), raw) && !bytes.Contains(mustRead(t, "sessions_page2.json"), raw) {
		t.Errorf("Raw of %s is not the row as received: %s", id, raw)
	}
}

// pagedServer answers from pages: the handler for request i is pages[i].
func pagedServer(t *testing.T, pages ...func(w http.ResponseWriter, r *http.Request, base string)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i >= len(pages) {
			i = len(pages) - 1
		}
		pages[i](w, r, srv.URL)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// body answers b, with {{base}} replaced by the server's URL.
func body(b string) func(w http.ResponseWriter, r *http.Request, base string) {
	return func(w http.ResponseWriter, r *http.Request, base string) {
		io.WriteString(w, strings.ReplaceAll(b, "{{base}}", base))
	}
}

// status answers code with b, and the headers kv (name, value, ...).
func status(code int, b string, kv ...string) func(w http.ResponseWriter, r *http.Request, base string) {
	return func(w http.ResponseWriter, r *http.Request, base string) {
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Set(kv[i], kv[i+1])
		}
		w.WriteHeader(code)
		io.WriteString(w, b)
	}
}

func cinemaRows(ids ...string) string {
	var rows []string
	for _, id := range ids {
		rows = append(rows, fmt.Sprintf(`{"ID":%q,"TimeZoneId":"UTC"}`, id))
	}
	return strings.Join(rows, ",")
}

func cinemaIDs(cs []Cinema) string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return strings.Join(ids, ",")
}

func TestPaging(t *testing.T) {
	tests := []struct {
		name  string
		pages []string
		want  string
	}{
		{
			name: "odata.nextLink absolute",
			pages: []string{
				`{"value":[` + cinemaRows("1", "2") + `],"odata.nextLink":"{{base}}/OData.svc/Cinemas?$skiptoken='2'"}`,
				`{"value":[` + cinemaRows("3") + `]}`,
			},
			want: "1,2,3",
		},
		{
			name: "odata.nextLink relative",
			pages: []string{
				`{"value":[` + cinemaRows("1") + `],"odata.nextLink":"Cinemas?$skiptoken=1"}`,
				`{"value":[` + cinemaRows("2") + `],"odata.nextLink":"/OData.svc/Cinemas?$skiptoken=2"}`,
				`{"value":[` + cinemaRows("3") + `]}`,
			},
			want: "1,2,3",
		},
		{
			name: "@odata.nextLink",
			pages: []string{
				`{"@odata.context":"x","value":[` + cinemaRows("1") + `],"@odata.nextLink":"Cinemas?$skip=1"}`,
				`{"@odata.context":"x","value":[` + cinemaRows("2") + `]}`,
			},
			want: "1,2",
		},
		{
			name: "__next",
			pages: []string{
				`{"value":[` + cinemaRows("1") + `],"__next":"{{base}}/OData.svc/Cinemas?$skiptoken=1"}`,
				`{"value":[` + cinemaRows("2") + `]}`,
			},
			want: "1,2",
		},
		{
			name: "v2 d.results",
			pages: []string{
				`{"d":{"results":[` + cinemaRows("1", "2") + `],"__next":"Cinemas?$skiptoken=2"}}`,
				`{"d":{"results":[` + cinemaRows("3") + `]}}`,
			},
			want: "1,2,3",
		},
		{
			name:  "v2 d array",
			pages: []string{`{"d":[` + cinemaRows("1") + `]}`},
			want:  "1",
		},
		{
			name: "empty page in the middle",
			pages: []string{
				`{"value":[],"odata.nextLink":"Cinemas?p=2"}`,
				`{"value":[` + cinemaRows("1") + `]}`,
			},
			want: "1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pages []func(http.ResponseWriter, *http.Request, string)
			for _, p := range tt.pages {
				pages = append(pages, body(p))
			}
			srv, n := pagedServer(t, pages...)
			c := mustClient(t, Config{BaseURL: srv.URL})
			got, err := c.Cinemas(context.Background())
			if err != nil {
				t.Fatalf("Cinemas: %v", err)
			}
			if ids := cinemaIDs(got); ids != tt.want {
				t.Errorf("Cinemas = %s, want %s", ids, tt.want)
			}
			if int(n.Load()) != len(tt.pages) {
				t.Errorf("requests = %d, want %d", n.Load(), len(tt.pages))
			}
		})
	}
}

func TestPagingErrors(t *testing.T) {
	var otherHits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		io.WriteString(w, `{"value":[]}`)
	}))
	t.Cleanup(other.Close)

	tests := []struct {
		name    string
		pages   []string
		wantErr string
		wantReq int
	}{
		{
			name: "next link loops",
			pages: []string{
				`{"value":[` + cinemaRows("1") + `],"odata.nextLink":"Cinemas?p=2"}`,
				`{"value":[` + cinemaRows("2") + `],"odata.nextLink":"{{base}}/OData.svc/Cinemas?p=2"}`,
			},
			wantErr: "vista Cinemas: next link loops back to a page already read",
			wantReq: 2,
		},
		{
			name:    "next link to itself",
			pages:   []string{`{"value":[],"odata.nextLink":"Cinemas"}`},
			wantErr: "vista Cinemas: next link loops back to a page already read",
			wantReq: 1,
		},
		{
			name:    "next link to another host",
			pages:   []string{`{"value":[],"odata.nextLink":"` + other.URL + `/OData.svc/Cinemas?p=2"}`},
			wantErr: "vista Cinemas: next link leaves http://127.0.0.1",
			wantReq: 1,
		},
		{
			name: "second page malformed",
			pages: []string{
				`{"value":[` + cinemaRows("1") + `],"odata.nextLink":"Cinemas?p=2"}`,
				`{"value":[` + cinemaRows("2") + `,`,
			},
			wantErr: "decode cinemas: value: unexpected end of JSON input",
			wantReq: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pages []func(http.ResponseWriter, *http.Request, string)
			for _, p := range tt.pages {
				pages = append(pages, body(p))
			}
			srv, n := pagedServer(t, pages...)
			c := mustClient(t, Config{BaseURL: srv.URL, Token: testToken})
			got, err := c.Cinemas(context.Background())
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("Cinemas error = %v, want one starting %q", err, tt.wantErr)
			}
			if got != nil {
				t.Errorf("Cinemas = %s, want no cinemas when a page fails", cinemaIDs(got))
			}
			if int(n.Load()) != tt.wantReq {
				t.Errorf("requests = %d, want %d", n.Load(), tt.wantReq)
			}
		})
	}
	if otherHits.Load() != 0 {
		t.Errorf("the other host got %d requests, want none", otherHits.Load())
	}
}

func TestMalformedAndBadRows(t *testing.T) {
	t.Run("body not JSON", func(t *testing.T) {
		srv, _ := pagedServer(t, body(`<html><body>Runtime Error</body></html>`))
		c := mustClient(t, Config{BaseURL: srv.URL})
		got, err := c.Sessions(context.Background(), nil)
		var de *DecodeError
		if !errors.As(err, &de) || de.Index != -1 || de.List != "sessions" {
			t.Fatalf("Sessions error = %v, want a *DecodeError with Index -1", err)
		}
		var se *json.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Sessions error = %v, want it to wrap the *json.SyntaxError", err)
		}
		if got != nil {
			t.Errorf("Sessions = %d sessions, want none", len(got))
		}
	})
	t.Run("a bad row among good ones", func(t *testing.T) {
		srv, _ := pagedServer(t, body(`{"value":[
			{"ID":"1-1","CinemaId":"1","Showtime":"2026-11-25T20:00:00","Unknown":{"deep":[1,2]}},
			{"ID":"1-2","CinemaId":"1","Showtime":"2026-11-25T21:00:00","SeatsAvailable":"lots"},
			{"ID":"1-3","CinemaId":"1","Showtime":"2026-11-25T22:00:00"}]}`))
		c := mustClient(t, Config{BaseURL: srv.URL, Zones: Zones{Default: time.UTC}})
		got, err := c.Sessions(context.Background(), map[string]*time.Location{"1": mustLocation(t, "Europe/Berlin")})
		var re RowErrors
		if !errors.As(err, &re) || len(re) != 1 || re[0].ID != "1-2" || re[0].Field != "SeatsAvailable" {
			t.Fatalf("Sessions error = %v, want RowErrors naming 1-2 SeatsAvailable", err)
		}
		if len(got) != 2 || got[0].ID != "1-1" || got[1].ID != "1-3" {
			t.Fatalf("Sessions = %v, want 1-1 and 1-3", got)
		}
		if s := got[0].Showtime.Format(time.RFC3339); s != "2026-11-25T20:00:00+01:00" {
			t.Errorf("Showtime = %s, want 2026-11-25T20:00:00+01:00 (the cinema's zone from the map)", s)
		}
	})
	t.Run("cinema missing from the zone map", func(t *testing.T) {
		srv, _ := pagedServer(t, body(`{"value":[{"ID":"9-1","CinemaId":"9","Showtime":"2026-11-25T20:00:00"}]}`))
		c := mustClient(t, Config{BaseURL: srv.URL, Zones: Zones{
			Default:   time.UTC,
			Overrides: map[string]*time.Location{"9": mustLocation(t, "Asia/Tokyo")},
		}})
		got, err := c.Sessions(context.Background(), map[string]*time.Location{"1": time.UTC})
		if err != nil || len(got) != 1 {
			t.Fatalf("Sessions = %v, %v", got, err)
		}
		if s := got[0].Showtime.Format(time.RFC3339); s != "2026-11-25T20:00:00+09:00" {
			t.Errorf("Showtime = %s, want 2026-11-25T20:00:00+09:00 (the override for cinema 9)", s)
		}
	})
}

// seatServer answers seat checks for the sessions in known, and records each
// request's full URL and the ids it asked for.
type seatServer struct {
	*httptest.Server
	known  map[string]int // id -> seats
	reject map[string]bool
	mu     sync.Mutex
	urls   []string
	asked  [][]string
}

var seatTermRE = regexp.MustCompile(`ID eq '((?:[^']|'')*)'`)

func newSeatServer(t *testing.T, known map[string]int, reject ...string) *seatServer {
	t.Helper()
	s := &seatServer{known: known, reject: make(map[string]bool)}
	for _, id := range reject {
		s.reject[id] = true
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/OData.svc/Sessions" || r.URL.Query().Get("$select") != "ID,SeatsAvailable,SoldoutStatus,Status" {
			http.Error(w, "bad request "+r.URL.String(), http.StatusBadRequest)
			return
		}
		var ids []string
		for _, m := range seatTermRE.FindAllStringSubmatch(r.URL.Query().Get("$filter"), -1) {
			ids = append(ids, strings.ReplaceAll(m[1], "''", "'"))
		}
		s.mu.Lock()
		s.urls = append(s.urls, s.URL+r.RequestURI)
		s.asked = append(s.asked, ids)
		s.mu.Unlock()
		var rows []string
		for _, id := range ids {
			if s.reject[id] {
				http.Error(w, `{"odata.error":{"message":{"value":"bad id"}}}`, http.StatusBadRequest)
				return
			}
			if n, ok := s.known[id]; ok {
				b, _ := json.Marshal(map[string]any{"ID": id, "SeatsAvailable": n, "SoldoutStatus": 0, "Status": "O"})
				rows = append(rows, string(b))
			}
		}
		slices.Reverse(rows) // the answer's order is not the question's
		fmt.Fprintf(w, `{"odata.metadata":"x","value":[%s]}`, strings.Join(rows, ","))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestCheckSeats(t *testing.T) {
	many := make(map[string]int)
	var manyIDs []string
	for i := range 60 {
		id := fmt.Sprintf("1001-%d", 14000+i)
		manyIDs = append(manyIDs, id)
		if i%7 != 3 {
			many[id] = i
		}
	}
	tests := []struct {
		name       string
		known      map[string]int
		reject     []string
		ids        []string
		maxURL     int
		wantSeats  string // "id=seats,..."
		wantGone   string
		wantReject []string
		minReq     int
	}{
		{
			name:      "one batch, answer reordered",
			known:     map[string]int{"A": 1, "B": 2, "C": 3},
			ids:       []string{"C", "A", "B"},
			wantSeats: "C=3,A=1,B=2",
			minReq:    1,
		},
		{
			name:      "gone sessions",
			known:     map[string]int{"A": 1},
			ids:       []string{"X", "A", "Y"},
			wantSeats: "A=1",
			wantGone:  "X,Y",
			minReq:    1,
		},
		{
			name:      "duplicated ids checked once",
			known:     map[string]int{"A": 1, "B": 2},
			ids:       []string{"A", "B", "A", "Z", "A", "Z"},
			wantSeats: "A=1,B=2",
			wantGone:  "Z",
			minReq:    1,
		},
		{
			name:      "quotes and reserved characters",
			known:     map[string]int{"x'y": 1, "a/b": 2, "c&d=e+f": 3, "ü#?%": 4, "''": 5},
			ids:       []string{"x'y", "a/b", "c&d=e+f", "ü#?%", "''"},
			wantSeats: "x'y=1,a/b=2,c&d=e+f=3,ü#?%=4,''=5",
			minReq:    1,
		},
		{
			name:      "split by URL length",
			known:     many,
			ids:       manyIDs,
			maxURL:    300,
			wantSeats: seatList(manyIDs, many),
			wantGone:  goneList(manyIDs, many),
			minReq:    8,
		},
		{
			name:       "400 narrows down to the bad ids",
			known:      map[string]int{"A": 1, "B": 2, "C": 3, "D": 4, "E": 5, "F": 6},
			reject:     []string{"BAD1", "BAD2"},
			ids:        []string{"A", "BAD1", "B", "C", "D", "BAD2", "E", "F", "G"},
			wantSeats:  "A=1,B=2,C=3,D=4,E=5,F=6",
			wantGone:   "G",
			wantReject: []string{"BAD1", "BAD2"},
			minReq:     5,
		},
		{
			name:       "400 for a lone id",
			reject:     []string{"BAD"},
			ids:        []string{"BAD"},
			wantReject: []string{"BAD"},
			minReq:     1,
		},
		{
			name:   "no ids, no request",
			ids:    nil,
			minReq: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSeatServer(t, tt.known, tt.reject...)
			c := mustClient(t, Config{BaseURL: srv.URL, MaxURLLength: tt.maxURL})
			seats, gone, err := c.CheckSeats(context.Background(), tt.ids)
			if tt.wantReject == nil && err != nil {
				t.Fatalf("CheckSeats: %v", err)
			}
			if tt.wantReject != nil {
				var rej *RejectedError
				if !errors.As(err, &rej) || !slices.Equal(rej.IDs, tt.wantReject) {
					t.Fatalf("CheckSeats error = %v, want a *RejectedError for %q", err, tt.wantReject)
				}
				var se *StatusError
				if !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest {
					t.Errorf("CheckSeats error = %v, want it to wrap the 400", err)
				}
				for _, id := range tt.wantReject {
					if !strings.Contains(err.Error(), fmt.Sprintf("%q", id)) {
						t.Errorf("CheckSeats error = %q, want it to name %q", err, id)
					}
				}
			}
			var gotSeats []string
			for _, s := range seats {
				gotSeats = append(gotSeats, fmt.Sprintf("%s=%d", s.ID, s.SeatsAvailable))
			}
			if g := strings.Join(gotSeats, ","); g != tt.wantSeats {
				t.Errorf("seats = %s, want %s", g, tt.wantSeats)
			}
			if g := strings.Join(gone, ","); g != tt.wantGone {
				t.Errorf("gone = %s, want %s", g, tt.wantGone)
			}

			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.urls) < tt.minReq {
				t.Errorf("requests = %d, want at least %d", len(srv.urls), tt.minReq)
			}
			maxURL := tt.maxURL
			if maxURL == 0 {
				maxURL = DefaultMaxURLLength
			}
			okAsked := make(map[string]int)
			for i, u := range srv.urls {
				if len(u) > maxURL {
					t.Errorf("URL %d is %d bytes, want at most %d: %s", i, len(u), maxURL, u)
				}
				if strings.Contains(u, "+") || !strings.Contains(u, "%20") {
					t.Errorf("URL %d = %s, want spaces as %%20 and no +", i, u)
				}
				if len(srv.asked[i]) == 0 {
					t.Errorf("URL %d asks for no id: %s", i, u)
				}
				rejected := false
				for _, id := range srv.asked[i] {
					rejected = rejected || slices.Contains(tt.reject, id)
				}
				for _, id := range srv.asked[i] {
					if !rejected {
						okAsked[id]++
					}
				}
			}
			for _, id := range dedup(tt.ids) {
				if slices.Contains(tt.reject, id) {
					continue
				}
				if okAsked[id] != 1 {
					t.Errorf("id %q was answered %d times, want once", id, okAsked[id])
				}
			}
		})
	}
}

func seatList(ids []string, known map[string]int) string {
	var out []string
	for _, id := range ids {
		if n, ok := known[id]; ok {
			out = append(out, fmt.Sprintf("%s=%d", id, n))
		}
	}
	return strings.Join(out, ",")
}

func goneList(ids []string, known map[string]int) string {
	var out []string
	for _, id := range ids {
		if _, ok := known[id]; !ok {
			out = append(out, id)
		}
	}
	return strings.Join(out, ",")
}

func TestSeatBatchesBound(t *testing.T) {
	c := mustClient(t, Config{BaseURL: "https://connect.example.com/WSVistaWebClient/", MaxURLLength: 400})
	var ids []string
	for i := range 500 {
		ids = append(ids, fmt.Sprintf("%d-%s", i, strings.Repeat("x", i%37)))
	}
	var covered []string
	for _, b := range c.seatBatches(ids) {
		if u := c.seatURL(0, b); len(u) > 400 {
			t.Errorf("batch of %d ids has a URL of %d bytes, want at most 400", len(b), len(u))
		}
		covered = append(covered, b...)
	}
	if !slices.Equal(covered, ids) {
		t.Errorf("batches cover %d ids, want all %d in order", len(covered), len(ids))
	}
}

func TestCheckSeatsUnreadableRow(t *testing.T) {
	// A row without a readable ID might be any of the ids asked: none of
	// them may be called gone.
	srv, _ := pagedServer(t, body(`{"value":[{"ID":{"x":1},"SeatsAvailable":3},{"ID":"A","SeatsAvailable":"x"}]}`))
	c := mustClient(t, Config{BaseURL: srv.URL})
	seats, gone, err := c.CheckSeats(context.Background(), []string{"A", "B"})
	var re RowErrors
	if !errors.As(err, &re) || len(re) != 2 {
		t.Fatalf("CheckSeats error = %v, want RowErrors for both rows", err)
	}
	if len(seats) != 0 || len(gone) != 0 {
		t.Errorf("CheckSeats = %v, gone %v; want neither seats nor gone", seats, gone)
	}
}

func TestStatusAndRetries(t *testing.T) {
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	ok := body(`{"value":[` + cinemaRows("1") + `]}`)
	tests := []struct {
		name       string
		pages      []func(http.ResponseWriter, *http.Request, string)
		maxDelay   time.Duration
		wantReq    int
		wantSleeps []time.Duration
		wantIs     error // nil with wantStatus 0: success
		wantStatus int
	}{
		{name: "401", pages: pages(status(401, "token rejected")), wantReq: 1, wantIs: ErrUnauthorized, wantStatus: 401},
		{name: "403", pages: pages(status(403, "")), wantReq: 1, wantIs: ErrUnauthorized, wantStatus: 403},
		{name: "404", pages: pages(status(404, "no such entity set")), wantReq: 1, wantIs: ErrNotFound, wantStatus: 404},
		{name: "400", pages: pages(status(400, "bad filter")), wantReq: 1, wantStatus: 400},
		{name: "500 exhausts retries", pages: pages(status(500, "boom")), wantReq: 4, wantSleeps: ms(1, 2, 4), wantStatus: 500},
		{name: "backoff capped", pages: pages(status(502, "")), maxDelay: 3 * time.Millisecond, wantReq: 4, wantSleeps: ms(1, 2, 3), wantStatus: 502},
		{name: "503 then success", pages: pages(status(503, ""), ok), wantReq: 2, wantSleeps: ms(1)},
		{name: "408 then success", pages: pages(status(408, ""), ok), wantReq: 2, wantSleeps: ms(1)},
		{name: "429 Retry-After 0", pages: pages(status(429, "", "Retry-After", "0"), ok), wantReq: 2, wantSleeps: ms(0)},
		{name: "429 Retry-After past date", pages: pages(status(429, "", "Retry-After", past), ok), wantReq: 2, wantSleeps: ms(0)},
		{name: "429 Retry-After honoured", pages: pages(status(429, "", "Retry-After", "7"), ok), maxDelay: time.Minute, wantReq: 2, wantSleeps: []time.Duration{7 * time.Second}},
		{name: "503 Retry-After capped", pages: pages(status(503, "", "Retry-After", "120"), ok), maxDelay: 30 * time.Second, wantReq: 2, wantSleeps: []time.Duration{30 * time.Second}},
		{name: "503 Retry-After garbage", pages: pages(status(503, "", "Retry-After", "soon"), ok), wantReq: 2, wantSleeps: ms(1)},
		{name: "500 Retry-After ignored", pages: pages(status(500, "", "Retry-After", "5"), ok), wantReq: 2, wantSleeps: ms(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, n := pagedServer(t, tt.pages...)
			c := mustClient(t, Config{BaseURL: srv.URL, MaxRetries: 3, MaxDelay: tt.maxDelay})
			sleeps := recordSleeps(c)
			got, err := c.Cinemas(context.Background())
			if int(n.Load()) != tt.wantReq {
				t.Errorf("requests = %d, want %d", n.Load(), tt.wantReq)
			}
			if tt.wantSleeps != nil || tt.wantReq == 1 {
				if s := sleeps(); !slices.Equal(s, tt.wantSleeps) {
					t.Errorf("sleeps = %v, want %v", s, tt.wantSleeps)
				}
			}
			if tt.wantStatus == 0 {
				if err != nil || len(got) != 1 {
					t.Fatalf("Cinemas = %v, %v; want one cinema", got, err)
				}
				return
			}
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != tt.wantStatus || se.Endpoint != "Cinemas" {
				t.Fatalf("Cinemas error = %v, want a *StatusError %d for Cinemas", err, tt.wantStatus)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Cinemas error = %v, want errors.Is %v", err, tt.wantIs)
			}
			if tt.wantIs == nil && (errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrNotFound)) {
				t.Errorf("Cinemas error = %v, want neither ErrUnauthorized nor ErrNotFound", err)
			}
		})
	}
}

func pages(p ...func(http.ResponseWriter, *http.Request, string)) []func(http.ResponseWriter, *http.Request, string) {
	return p
}

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, n := range v {
		out[i] = time.Duration(n) * time.Millisecond
	}
	return out
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"0", 0, true},
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"Wed, 25 Nov 2026 17:00:30 GMT", 30 * time.Second, true},
		{"Wednesday, 25-Nov-26 17:01:00 GMT", time.Minute, true}, // RFC 850
		{"Wed Nov 25 17:00:05 2026", 5 * time.Second, true},      // asctime
		{"Wed, 25 Nov 2026 16:00:00 GMT", 0, true},               // past
		{"99999999999999999999", 0, false},                       // overflows uint64
		{"9999999999999", time.Duration(1<<63 - 1).Truncate(time.Second), true},
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestBackoffJitter(t *testing.T) {
	c := mustClient(t, Config{BaseURL: "http://h/", BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second})
	var asked []time.Duration
	c.jitter = func(d time.Duration) time.Duration { asked = append(asked, d); return d / 2 }
	var got []time.Duration
	retry := c.backoff()
	for range 6 {
		got = append(got, c.jitter(retry.NextBackOff()))
	}
	wantCeil := ms(100, 200, 400, 800, 1000, 1000)
	if !slices.Equal(asked, wantCeil) {
		t.Errorf("backoff ceilings = %v, want %v", asked, wantCeil)
	}
	if want := ms(50, 100, 200, 400, 500, 500); !slices.Equal(got, want) {
		t.Errorf("backoff = %v, want %v (the jitter's choice)", got, want)
	}
	for range 1000 {
		if d := fullJitter(10 * time.Millisecond); d < 0 || d > 10*time.Millisecond {
			t.Fatalf("fullJitter(10ms) = %v, want within [0, 10ms]", d)
		}
	}
	if d := fullJitter(0); d != 0 {
		t.Errorf("fullJitter(0) = %v, want 0", d)
	}
}

func TestTimeoutRetried(t *testing.T) {
	release := make(chan struct{})
	srv, n := pagedServer(t, func(w http.ResponseWriter, r *http.Request, base string) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	var mu sync.Mutex
	var statuses []int
	c := mustClient(t, Config{
		BaseURL:    srv.URL,
		Timeout:    50 * time.Millisecond,
		MaxRetries: 2,
		Observe: func(ep string, status int, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			statuses = append(statuses, status)
		},
	})
	_, err := c.Films(context.Background())
	if err == nil || !strings.Contains(err.Error(), "vista ScheduledFilms: no answer within 50ms") {
		t.Fatalf("Films error = %v, want a timeout", err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		t.Errorf("Films error = %v, want it not to pass for the caller's context", err)
	}
	if n.Load() != 3 {
		t.Errorf("requests = %d, want 3 (one and two retries)", n.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(statuses, []int{0, 0, 0}) {
		t.Errorf("observed statuses = %v, want [0 0 0]", statuses)
	}
}

func TestConnectionErrorRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var calls atomic.Int32
	c := mustClient(t, Config{
		BaseURL:    "http://" + addr + "/vista",
		MaxRetries: 2,
		Observe: func(ep string, status int, d time.Duration) {
			if ep == "cinemas" && status == 0 {
				calls.Add(1)
			}
		},
	})
	_, err = c.Cinemas(context.Background())
	var se *StatusError
	if err == nil || errors.As(err, &se) {
		t.Fatalf("Cinemas error = %v, want a transport error", err)
	}
	if calls.Load() != 3 {
		t.Errorf("attempts = %d, want 3", calls.Load())
	}
}

func TestCancel(t *testing.T) {
	t.Run("during a request", func(t *testing.T) {
		srv, _ := pagedServer(t, func(w http.ResponseWriter, r *http.Request, base string) {
			<-r.Context().Done()
		})
		c := mustClient(t, Config{BaseURL: srv.URL, Timeout: time.Minute})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(30*time.Millisecond, cancel)
		err := within(t, 2*time.Second, func() error {
			_, err := c.Sessions(ctx, nil)
			return err
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Sessions error = %v, want context.Canceled", err)
		}
	})
	t.Run("during a backoff", func(t *testing.T) {
		srv, n := pagedServer(t, status(500, ""))
		c := mustClient(t, Config{BaseURL: srv.URL, BaseDelay: time.Hour, MaxDelay: time.Hour})
		c.jitter = func(d time.Duration) time.Duration { return d }
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(30*time.Millisecond, cancel)
		err := within(t, 2*time.Second, func() error {
			_, err := c.Cinemas(ctx) // a list: a seat check is not retried
			return err
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Cinemas error = %v, want context.Canceled", err)
		}
		if n.Load() != 1 {
			t.Errorf("requests = %d, want 1", n.Load())
		}
	})
	t.Run("before the first request", func(t *testing.T) {
		srv, n := pagedServer(t, body(`{"value":[]}`))
		c := mustClient(t, Config{BaseURL: srv.URL})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := c.Cinemas(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Cinemas error = %v, want context.Canceled", err)
		}
		if n.Load() != 0 {
			t.Errorf("requests = %d, want 0", n.Load())
		}
	})
}

// within runs f and fails the test if it has not returned after d.
func within(t *testing.T, d time.Duration, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("still running after %v, want a prompt return", d)
		return nil
	}
}

func TestHeaders(t *testing.T) {
	for _, token := range []string{testToken, ""} {
		t.Run(fmt.Sprintf("token %q", token), func(t *testing.T) {
			var got http.Header
			srv, _ := pagedServer(t, func(w http.ResponseWriter, r *http.Request, base string) {
				got = r.Header.Clone()
				io.WriteString(w, `{"value":[]}`)
			})
			c := mustClient(t, Config{BaseURL: srv.URL, Token: token})
			if _, _, err := c.CheckSeats(context.Background(), []string{"A"}); err != nil {
				t.Fatal(err)
			}
			if a := got.Get("Accept"); a != "application/json" {
				t.Errorf("Accept = %q, want application/json", a)
			}
			v, ok := got["Connectapitoken"]
			if token == "" && ok {
				t.Errorf("connectapitoken sent without a token: %q", v)
			}
			if token != "" && got.Get("connectapitoken") != token {
				t.Errorf("connectapitoken = %q, want the token", got.Get("connectapitoken"))
			}
		})
	}
}

func TestTokenNeverShown(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	echo := func(code int) func(http.ResponseWriter, *http.Request, string) {
		return func(w http.ResponseWriter, r *http.Request, base string) {
			w.WriteHeader(code)
			fmt.Fprintf(w, "you sent token %s\n\tin %s", r.Header.Get("connectapitoken"), r.URL)
		}
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := l.Addr().String()
	l.Close()
	tests := []struct {
		name  string
		pages []func(http.ResponseWriter, *http.Request, string)
		base  string // instead of the server's URL
	}{
		{name: "401 echoing the token", pages: pages(echo(401))},
		{name: "500 echoing the token", pages: pages(echo(500))},
		{name: "400 echoing the token", pages: pages(echo(400))},
		{name: "not JSON echoing the token", pages: pages(echo(200))},
		{name: "bad row", pages: pages(body(`{"value":[{"ID":"1","Latitude":[]}]}`))},
		{name: "next link elsewhere", pages: pages(body(`{"value":[],"odata.nextLink":"https://elsewhere.example/?t=1"}`))},
		{name: "connection refused", base: "http://" + closedAddr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := tt.base
			if base == "" {
				srv, _ := pagedServer(t, tt.pages...)
				base = srv.URL
			}
			c := mustClient(t, Config{BaseURL: base, Token: testToken, MaxRetries: 1, Logger: logger})
			_, err := c.Cinemas(context.Background())
			if err == nil {
				t.Fatal("Cinemas succeeded, want an error")
			}
			var errs []error
			if _, _, e := c.CheckSeats(context.Background(), []string{"A"}); e != nil {
				errs = append(errs, e)
			}
			for _, e := range append(errs, err) {
				for _, s := range []string{e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
					if strings.Contains(s, testToken) {
						t.Errorf("error shows the token: %s", s)
					}
				}
			}
			if s := c.String(); strings.Contains(s, testToken) {
				t.Errorf("String() = %s, shows the token", s)
			}
		})
	}
	if strings.Contains(logs.String(), testToken) {
		t.Errorf("logs show the token:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("logs = %q, want the retries logged", logs.String())
	}
}

func TestRedirectDropsToken(t *testing.T) {
	var otherToken atomic.Value
	otherToken.Store("unset")
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherToken.Store(r.Header.Get("connectapitoken"))
		io.WriteString(w, `{"value":[`+cinemaRows("9")+`]}`)
	}))
	t.Cleanup(other.Close)
	var sameToken string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/OData.svc/Cinemas":
			http.Redirect(w, r, "/moved/OData.svc/Cinemas", http.StatusFound)
		case "/moved/OData.svc/Cinemas":
			sameToken = r.Header.Get("connectapitoken")
			http.Redirect(w, r, other.URL+"/OData.svc/Cinemas", http.StatusTemporaryRedirect)
		}
	}))
	t.Cleanup(srv.Close)
	for _, hc := range []*http.Client{nil, {Timeout: time.Minute}} {
		c := mustClient(t, Config{BaseURL: srv.URL, Token: testToken, HTTPClient: hc})
		got, err := c.Cinemas(context.Background())
		if err != nil || cinemaIDs(got) != "9" {
			t.Fatalf("Cinemas = %v, %v", got, err)
		}
		if sameToken != testToken {
			t.Errorf("token on a redirect within the host = %q, want it kept", sameToken)
		}
		if v := otherToken.Load(); v != "" {
			t.Errorf("token on a redirect to another host = %q, want none", v)
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		want    string // String()
	}{
		{name: "trailing slash added", cfg: Config{BaseURL: "https://connect.example.com/WSVistaWebClient"}, want: "vista.Client(https://connect.example.com/WSVistaWebClient/)"},
		{name: "kept", cfg: Config{BaseURL: "http://10.0.0.5:8080/WSVistaWebClient/"}, want: "vista.Client(http://10.0.0.5:8080/WSVistaWebClient/)"},
		{name: "host only", cfg: Config{BaseURL: "https://h"}, want: "vista.Client(https://h/)"},
		{name: "password hidden", cfg: Config{BaseURL: "https://u:pa55@h/x", Token: testToken}, want: "vista.Client(https://u:xxxxx@h/x/)"},
		{name: "empty", cfg: Config{}, wantErr: "vista: base URL: want an absolute http or https URL"},
		{name: "relative", cfg: Config{BaseURL: "/WSVistaWebClient/"}, wantErr: "vista: base URL: want an absolute http or https URL"},
		{name: "ftp", cfg: Config{BaseURL: "ftp://h/"}, wantErr: "vista: base URL: want an absolute http or https URL"},
		{name: "no host", cfg: Config{BaseURL: "https:///x"}, wantErr: "vista: base URL: no host"},
		{name: "query", cfg: Config{BaseURL: "https://h/x?token=" + testToken}, wantErr: "vista: base URL: must not have a query or a fragment"},
		{name: "unparsable", cfg: Config{BaseURL: "https://u:pa55@h:port/x", Token: testToken}, wantErr: `vista: base URL: invalid port ":port" after host`},
		{name: "URL length too small", cfg: Config{BaseURL: "https://h/", MaxURLLength: 100}, wantErr: "vista: MaxURLLength 100 is too small for the base URL (need at least 133)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("New(%q) error = %v, want %q", tt.cfg.BaseURL, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "pa55") || strings.Contains(err.Error(), testToken) {
					t.Errorf("New error shows a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q): %v", tt.cfg.BaseURL, err)
			}
			if s := c.String(); s != tt.want {
				t.Errorf("String() = %s, want %s", s, tt.want)
			}
		})
	}
}

func TestObserveEndpoints(t *testing.T) {
	fs := newFixtureServer(t)
	var mu sync.Mutex
	var got []string
	c := mustClient(t, Config{
		BaseURL: fs.URL + "/WSVistaWebClient/",
		Zones:   Zones{Default: time.UTC},
		Observe: func(ep string, status int, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, fmt.Sprintf("%s %d", ep, status))
			if d < 0 {
				t.Errorf("Observe(%s) duration %v, want >= 0", ep, d)
			}
		},
	})
	ctx := context.Background()
	c.Cinemas(ctx)
	c.Films(ctx)
	c.Sessions(ctx, nil)
	c.CheckSeats(ctx, []string{"1001-14164"})
	// The fixture answers a seat check with both pages of sessions.
	want := []string{"cinemas 200", "films 200", "sessions 200", "sessions 200", "seats 200", "seats 200"}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("observed %q, want %q", got, want)
	}
}

func TestURLs(t *testing.T) {
	c := mustClient(t, Config{BaseURL: "https://connect.example.com/WSVistaWebClient"})
	if got, want := c.listURL(epFilms).String(), "https://connect.example.com/WSVistaWebClient/OData.svc/ScheduledFilms"; got != want {
		t.Errorf("listURL(films) = %s, want %s", got, want)
	}
	got := c.seatURL(0, []string{"1001-14164", "O'Brien 2"})
	want := "https://connect.example.com/WSVistaWebClient/OData.svc/Sessions?$select=ID,SeatsAvailable,SoldoutStatus,Status&$filter=ID%20eq%20%271001-14164%27%20or%20ID%20eq%20%27O%27%27Brien%202%27"
	if got != want {
		t.Errorf("seatURL =\n%s\nwant\n%s", got, want)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if f := u.Query().Get("$filter"); f != "ID eq '1001-14164' or ID eq 'O''Brien 2'" {
		t.Errorf("$filter reads back as %q", f)
	}
}

// TestBodyBound: an answer larger than MaxBodyBytes, whether it says so in
// Content-Length or streams without one, is an error: nothing of it is read
// as a list.
func TestBodyBound(t *testing.T) {
	big := `{"value":[` + strings.TrimSuffix(strings.Repeat(cinemaRows("1")+",", 40), ",") + `]}`
	for _, chunked := range []bool{false, true} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !chunked {
				w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			}
			io.WriteString(w, big)
			if chunked {
				w.(http.Flusher).Flush()
			}
		}))
		c := mustClient(t, Config{BaseURL: srv.URL, MaxBodyBytes: int64(len(big) - 1)})
		cinemas, err := c.Cinemas(t.Context())
		if err == nil || len(cinemas) != 0 || !strings.Contains(err.Error(), "allowed") {
			t.Errorf("chunked=%v: Cinemas = %d cinemas, %v; want an error about the size", chunked, len(cinemas), err)
		}
		c = mustClient(t, Config{BaseURL: srv.URL, MaxBodyBytes: int64(len(big))})
		if cinemas, err := c.Cinemas(t.Context()); err != nil || len(cinemas) != 40 {
			t.Errorf("chunked=%v: at the bound, Cinemas = %d cinemas, %v; want 40", chunked, len(cinemas), err)
		}
		srv.Close()
	}
}

// TestReadBody reads answers whose stated length is right, too short, too
// long or absent, under a limit: the bytes are the body's (cut at the
// limit) whatever the length said.
func TestReadBody(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 100) // 1000 bytes
	for _, c := range []struct {
		name         string
		said, limit  int64
		want, gotCap int
	}{
		{"right", 1000, 2001, 1000, 1000 + bytes.MinRead},
		{"too short", 10, 2001, 1000, 0},
		{"too long", 5000, 9001, 1000, 5000 + bytes.MinRead},
		{"absent", -1, 2001, 1000, 0},
		{"over the limit", 1000, 501, 501, 0},
		{"said over the limit", 3000, 501, 501, 0},
	} {
		got, err := readBody(bytes.NewReader(body), c.said, c.limit, nil)
		if err != nil || !bytes.Equal(got, body[:c.want]) {
			t.Errorf("%s: %d bytes, %v; want the first %d", c.name, len(got), err, c.want)
		}
		if c.gotCap > 0 && cap(got) != c.gotCap {
			t.Errorf("%s: read into %d bytes, want one buffer of %d", c.name, cap(got), c.gotCap)
		}
		// Into the page before's buffer, whatever it held, when it has
		// room: of any stated length, or none.
		before := bytes.Repeat([]byte("x"), 3000)
		got, err = readBody(bytes.NewReader(body), c.said, c.limit, before[:0])
		if err != nil || !bytes.Equal(got, body[:c.want]) {
			t.Errorf("%s, into a used buffer: %d bytes, %v; want the first %d", c.name, len(got), err, c.want)
		}
		if c.said < 3000-bytes.MinRead && &got[0] != &before[0] {
			t.Errorf("%s: read into a new buffer though the one given had room", c.name)
		}
	}
}

// TestListPagesShareNoBytes: a list's pages are read into one buffer, so
// what the rows of a page became must not share its bytes: sessions
// kept from the first page (with their Raw) are as they were after the
// last page was read over them.
func TestListPagesShareNoBytes(t *testing.T) {
	const pages = 3
	row := func(p, i int) string {
		return fmt.Sprintf(`{"ID":"100%d-%d","CinemaId":"100%d","ScheduledFilmId":"HO%d","Showtime":"2031-07-0%dT1%d:00:00","SeatsAvailable":%d,"ScreenName":"Screen %d%d"}`,
			p, i, p, p*10+i, p+1, i, p*100+i, p, i)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := strconv.Atoi(r.URL.Query().Get("page"))
		var rows []string
		for i := range 5 - p { // later pages shorter: their bytes land over the first's
			rows = append(rows, row(p, i))
		}
		next := ""
		if p+1 < pages {
			next = fmt.Sprintf(`,"odata.nextLink":"Sessions?page=%d"`, p+1)
		}
		w.Header().Set("Content-Type", "application/json")
		w.(http.Flusher).Flush() // streamed: no Content-Length
		fmt.Fprintf(w, `{"value":[%s]%s}`, strings.Join(rows, ","), next)
	}))
	defer srv.Close()
	c := mustClient(t, Config{BaseURL: srv.URL, KeepRaw: true, Zones: Zones{Default: time.UTC}})
	var kept []Session
	err := c.SessionPages(t.Context(), nil, func(s []Session) error {
		kept = append(kept, s...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var want, ids []string
	for p := range pages {
		for i := range 5 - p {
			want = append(want, row(p, i))
			ids = append(ids, fmt.Sprintf("100%d-%d", p, i))
		}
	}
	if len(kept) != len(want) {
		t.Fatalf("%d sessions, want %d", len(kept), len(want))
	}
	for i, s := range kept {
		if string(s.Raw) != want[i] || s.ID != ids[i] {
			t.Errorf("session %d: ID %s, Raw %s; want %s, %s", i, s.ID, s.Raw, ids[i], want[i])
		}
	}
}

// TestSeatAnswerOverPages: a seat check's answer that comes in pages is
// read whole, though each page is read into the buffer of the one before
// (a seat check keeps its rows until the last page is in).
func TestSeatAnswerOverPages(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := strconv.Atoi(r.URL.Query().Get("page"))
		var rows []string
		for i := range 4 - p { // later pages shorter: their bytes land over the first's
			rows = append(rows, fmt.Sprintf(`{"ID":"1001-%d%d","SeatsAvailable":%d,"SoldoutStatus":0,"Status":"Open"}`, p, i, 10*p+i))
		}
		next := ""
		if p < 2 {
			next = fmt.Sprintf(`,"odata.nextLink":"Sessions?page=%d"`, p+1)
		}
		w.Header().Set("Content-Type", "application/json")
		w.(http.Flusher).Flush() // streamed: no Content-Length
		fmt.Fprintf(w, `{"value":[%s]%s}`, strings.Join(rows, ","), next)
	}))
	defer srv.Close()
	c := mustClient(t, Config{BaseURL: srv.URL})
	var ids []string
	want := map[string]int{}
	for p := range 3 {
		for i := range 4 - p {
			id := fmt.Sprintf("1001-%d%d", p, i)
			ids = append(ids, id)
			want[id] = 10*p + i
		}
	}
	seats, gone, err := c.CheckSeats(t.Context(), ids)
	if err != nil || len(gone) != 0 || len(seats) != len(ids) {
		t.Fatalf("CheckSeats = %d seats, gone %v, %v; want %d seats", len(seats), gone, err, len(ids))
	}
	for _, s := range seats {
		if n, ok := want[s.ID]; !ok || s.SeatsAvailable != n {
			t.Errorf("seats %s: %d, want %d", s.ID, s.SeatsAvailable, n)
		}
	}
}
