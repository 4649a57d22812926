package vistasim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// start is a Wednesday afternoon in Europe, night in Sydney and Auckland,
// morning in New York and Los Angeles.
var start = time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)

// clock is a settable clock for Config.Clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// MustServer starts a simulator with a settable clock behind a real HTTP
// server.
func MustServer(tb testing.TB, cfg Config) (*Server, *httptest.Server, *clock) {
	tb.Helper()
	c := newClock(start)
	if cfg.Clock == nil {
		cfg.Clock = c.Now
	}
	s := New(cfg)
	ts := httptest.NewServer(s)
	tb.Cleanup(ts.Close)
	return s, ts, c
}

const base = "/WSVistaWebClient/OData.svc/"

type feed struct {
	Metadata string           `json:"odata.metadata"`
	Value    []map[string]any `json:"value"`
	NextLink string           `json:"odata.nextLink"`
}

// get fetches a URL (relative to ts) and returns the status, the header and
// the body.
func get(tb testing.TB, ts *httptest.Server, path string, header ...string) (int, http.Header, []byte) {
	tb.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = ts.URL + path
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, resp.Header, body
}

// mustFeed fetches one page and decodes it.
func mustFeed(tb testing.TB, ts *httptest.Server, path string) feed {
	tb.Helper()
	status, _, body := get(tb, ts, path)
	if status != http.StatusOK {
		tb.Fatalf("GET %s: status %d: %s", path, status, body)
	}
	var f feed
	if err := json.Unmarshal(body, &f); err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	return f
}

// mustAll follows nextLinks to the end and returns every row and the
// number of pages.
func mustAll(tb testing.TB, ts *httptest.Server, path string) ([]map[string]any, int) {
	tb.Helper()
	var rows []map[string]any
	pages := 0
	for next := path; next != ""; pages++ {
		f := mustFeed(tb, ts, next)
		rows = append(rows, f.Value...)
		next = f.NextLink
		if pages > 10000 {
			tb.Fatal("nextLink never ends")
		}
	}
	return rows, pages
}

// seatsPath is a seat check as the client sends it.
func seatsPath(ids ...string) string {
	var terms []string
	for _, id := range ids {
		terms = append(terms, "ID eq '"+strings.ReplaceAll(id, "'", "''")+"'")
	}
	return base + "Sessions?$select=ID,SeatsAvailable,SoldoutStatus,Status&$filter=" + url.PathEscape(strings.Join(terms, " or "))
}

// serve calls the handler directly, so two servers see the same Host.
func serve(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://vista.test"+path, nil))
	return rec
}

func ids(rows []map[string]any) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r["ID"].(string))
	}
	return out
}

func TestDeterminism(t *testing.T) {
	fixed := func() time.Time { return start }
	paths := []string{base + "Cinemas", base + "ScheduledFilms", base + "Sessions", base + "Sessions?$skip=1000", seatsPath("1001-196504", "1003-196521")}
	a := New(Config{Seed: 7, Clock: fixed})
	b := New(Config{Seed: 7, Clock: fixed})
	other := New(Config{Seed: 8, Clock: fixed})
	for _, p := range paths {
		ra, rb := serve(a, p), serve(b, p)
		if ra.Code != http.StatusOK {
			t.Fatalf("GET %s: status %d", p, ra.Code)
		}
		if !bytes.Equal(ra.Body.Bytes(), rb.Body.Bytes()) {
			t.Errorf("GET %s: two servers with seed 7 answer differently", p)
		}
	}
	for _, p := range []string{base + "Cinemas", base + "ScheduledFilms", base + "Sessions"} {
		if bytes.Equal(serve(a, p).Body.Bytes(), serve(other, p).Body.Bytes()) {
			t.Errorf("GET %s: seeds 7 and 8 answer the same", p)
		}
	}
}

func TestPaging(t *testing.T) {
	s, ts, _ := MustServer(t, Config{PageSize: 100})
	want := s.Sessions()
	rows, pages := mustAll(t, ts, base+"Sessions")
	if len(rows) != len(want) {
		t.Fatalf("paged Sessions has %d rows, want %d", len(rows), len(want))
	}
	if wantPages := (len(want) + 99) / 100; pages != wantPages {
		t.Errorf("pages = %d, want %d", pages, wantPages)
	}
	got := ids(rows)
	for i := range want {
		if got[i] != want[i].ID {
			t.Fatalf("row %d = %s, want %s", i, got[i], want[i].ID)
		}
	}

	first := mustFeed(t, ts, base+"Sessions?$select=ID&custom=1")
	u, err := url.Parse(first.NextLink)
	if err != nil {
		t.Fatal(err)
	}
	if host := strings.TrimPrefix(ts.URL, "http://"); u.Host != host || u.Scheme != "http" {
		t.Errorf("nextLink %s: want host %s", first.NextLink, host)
	}
	if q := u.Query(); q.Get("$skip") != "100" || q.Get("$select") != "ID" || q.Get("custom") != "1" {
		t.Errorf("nextLink %s: want $skip=100 and the original options", first.NextLink)
	}
	if want := ts.URL + base + "$metadata#Sessions&$select=ID"; first.Metadata != want {
		t.Errorf("odata.metadata = %q, want %q", first.Metadata, want)
	}

	t.Run("top", func(t *testing.T) {
		rows, pages := mustAll(t, ts, base+"Sessions?$top=250")
		if len(rows) != 250 || pages != 3 {
			t.Errorf("$top=250: %d rows in %d pages, want 250 in 3", len(rows), pages)
		}
		rows, _ = mustAll(t, ts, base+"Sessions?$skip=10&$top=5")
		if got := ids(rows); !slices.Equal(got, ids(mustFeed(t, ts, base+"Sessions").Value[10:15])) {
			t.Errorf("$skip=10&$top=5 = %v", got)
		}
	})

	t.Run("no paging", func(t *testing.T) {
		s, ts, _ := MustServer(t, Config{PageSize: NoPaging})
		f := mustFeed(t, ts, base+"Sessions")
		if len(f.Value) != len(s.Sessions()) || f.NextLink != "" {
			t.Errorf("NoPaging: %d rows, nextLink %q; want %d rows, no nextLink", len(f.Value), f.NextLink, len(s.Sessions()))
		}
	})

	t.Run("default", func(t *testing.T) {
		_, ts, _ := MustServer(t, Config{})
		f := mustFeed(t, ts, base+"Sessions")
		if len(f.Value) != DefaultPageSize || f.NextLink == "" {
			t.Errorf("default page: %d rows, nextLink %q; want %d and a nextLink", len(f.Value), f.NextLink, DefaultPageSize)
		}
	})
}

func TestParseFilter(t *testing.T) {
	tests := []struct {
		in   string
		want []string // nil: an error
	}{
		{"ID eq 'A'", []string{"A"}},
		{"ID eq 'A' or ID eq 'B'", []string{"A", "B"}},
		{"  (ID   eq  'A')or(ID eq 'B' )  ", []string{"A", "B"}},
		{"((ID eq 'A') or ((ID eq 'B') or ID eq 'C'))", []string{"A", "B", "C"}},
		{"ID eq 'O''Brien'", []string{"O'Brien"}},
		{"ID eq ''''", []string{"'"}},
		{"ID eq ''", []string{""}},
		{"ID eq 'a b'", []string{"a b"}},
		{"", nil},
		{"ID eq A", nil},
		{"ID ne 'A'", nil},
		{"Id eq 'A'", nil},
		{"Name eq 'A'", nil},
		{"ID eq 'A' and ID eq 'B'", nil},
		{"ID eq 'A' or ID eq 'B' and ID eq 'C'", nil},
		{"(ID eq 'A' or ID eq 'B') and ID eq 'C'", nil},
		{"ID eq 'A' or", nil},
		{"ID eq 'A", nil},
		{"(ID eq 'A'", nil},
		{"ID eq 'A')", nil},
		{"ID eq 'A' ID eq 'B'", nil},
		{"substringof('A', ID)", nil},
		{"SeatsAvailable gt 0", nil},
	}
	for _, tt := range tests {
		f, err := parseFilter(tt.in)
		got := f.ids
		if f.window != nil {
			t.Errorf("parseFilter(%q): a window, want ids", tt.in)
		}
		if tt.want == nil {
			if err == nil {
				t.Errorf("parseFilter(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("parseFilter(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestSeatCheck(t *testing.T) {
	s, ts, _ := MustServer(t, Config{})
	all := s.Sessions()
	a, b := all[3].ID, all[40].ID
	sel := "$select=ID,SeatsAvailable,SoldoutStatus,Status"
	many := func(n int) string {
		var terms []string
		for i := range n {
			terms = append(terms, fmt.Sprintf("ID eq '%s'", all[i].ID))
		}
		return strings.Join(terms, " or ")
	}
	tests := []struct {
		name   string
		filter string // raw, escaped here
		status int
		want   []string
	}{
		{"one", "ID eq '" + a + "'", 200, []string{a}},
		{"two in listing order", "ID eq '" + b + "' or ID eq '" + a + "'", 200, []string{a, b}},
		{"spaces and parentheses", "  ( ID  eq '" + a + "' )or(ID eq '" + b + "')", 200, []string{a, b}},
		{"twice", "ID eq '" + a + "' or ID eq '" + a + "'", 200, []string{a}},
		{"unknown ids are absent", "ID eq 'nope' or ID eq '9999-1' or ID eq '1001-1' or ID eq '" + a + "'", 200, []string{a}},
		{"quote escaped", "ID eq 'O''Brien'", 200, []string{}},
		{"100 ids", many(100), 200, nil},
		{"101 ids", many(101), 400, nil},
		{"other operator", "ID ne '" + a + "'", 400, nil},
		{"other property", "CinemaId eq '1001'", 400, nil},
		{"unquoted", "ID eq " + a, 400, nil},
		{"unterminated", "ID eq '" + a, 400, nil},
		{"and", "ID eq '" + a + "' and ID eq '" + b + "'", 400, nil},
		{"empty", "", 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, esc := range []func(string) string{url.PathEscape, url.QueryEscape} {
				status, _, body := get(t, ts, base+"Sessions?"+sel+"&$filter="+esc(tt.filter))
				if status != tt.status {
					t.Fatalf("status %d, want %d: %s", status, tt.status, body)
				}
				if status != http.StatusOK {
					if !bytes.Contains(body, []byte(`"odata.error"`)) {
						t.Errorf("error body %s is not an OData error", body)
					}
					continue
				}
				var f feed
				if err := json.Unmarshal(body, &f); err != nil {
					t.Fatal(err)
				}
				got := ids(f.Value)
				if tt.want != nil && !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
					t.Errorf("ids = %q, want %q", got, tt.want)
				}
				for _, row := range f.Value {
					if len(row) != 4 || row["SeatsAvailable"] == nil || row["SoldoutStatus"] == nil || row["Status"] == nil {
						t.Errorf("row %v: want exactly ID, SeatsAvailable, SoldoutStatus, Status", row)
					}
				}
			}
		})
	}

	t.Run("long URL", func(t *testing.T) {
		s, ts, _ := MustServer(t, Config{MaxURLLength: 300})
		var list []string
		for _, x := range s.Sessions()[:20] {
			list = append(list, x.ID)
		}
		if status, _, _ := get(t, ts, seatsPath(list...)); status != http.StatusRequestURITooLong {
			t.Errorf("status %d, want 414", status)
		}
		if status, _, _ := get(t, ts, seatsPath(list[:2]...)); status != http.StatusOK {
			t.Errorf("short seat check: status %d, want 200", status)
		}
	})

	t.Run("matches the listing", func(t *testing.T) {
		var list []string
		for _, x := range all[:50] {
			list = append(list, x.ID)
		}
		f := mustFeed(t, ts, seatsPath(list...))
		if len(f.Value) != 50 {
			t.Fatalf("%d rows, want 50", len(f.Value))
		}
		for i, row := range f.Value {
			x := all[i]
			if row["ID"] != x.ID || row["SeatsAvailable"] != float64(x.SeatsAvailable) ||
				row["SoldoutStatus"] != float64(x.SoldoutStatus) || row["Status"] != float64(x.StatusCode) {
				t.Errorf("row %v, want %+v", row, x)
			}
		}
	})
}

func TestSelectAndOptions(t *testing.T) {
	_, ts, _ := MustServer(t, Config{})
	tests := []struct {
		path   string
		status int
		keys   []string // nil: don't check
	}{
		{base + "Sessions?$select=ID,Showtime", 200, []string{"ID", "Showtime"}},
		{base + "Sessions?$select=Showtime,%20ID", 200, []string{"ID", "Showtime"}},
		{base + "Sessions?%24select=ID", 200, []string{"ID"}},
		{base + "Cinemas?$select=ID,TimeZoneId", 200, []string{"ID", "TimeZoneId"}},
		{base + "ScheduledFilms?$select=ScheduledFilmId,CinemaId", 200, []string{"CinemaId", "ScheduledFilmId"}},
		{base + "Sessions?$select=*", 200, nil},
		{base + "Sessions?$format=json", 200, nil},
		{base + "Sessions?$select=ID,Nope", 400, nil},
		{base + "Sessions?$select=id", 400, nil},
		{base + "Sessions?$select=", 400, nil},
		{base + "Sessions?$skip=-1", 400, nil},
		{base + "Sessions?$skip=x", 400, nil},
		{base + "Sessions?$top=1&$top=2", 400, nil},
		{base + "Sessions?$orderby=Showtime", 400, nil},
		{base + "Sessions?$format=xml", 400, nil},
		{base + "Sessions?%zz", 400, nil},
	}
	for _, tt := range tests {
		status, _, body := get(t, ts, tt.path)
		if status != tt.status {
			t.Errorf("GET %s: status %d, want %d: %.200s", tt.path, status, tt.status, body)
			continue
		}
		if tt.keys == nil || status != 200 {
			continue
		}
		var f feed
		if err := json.Unmarshal(body, &f); err != nil {
			t.Fatal(err)
		}
		for _, row := range f.Value {
			var keys []string
			for k := range row {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, tt.keys) {
				t.Fatalf("GET %s: keys %v, want %v", tt.path, keys, tt.keys)
			}
		}
	}
}

func TestRouting(t *testing.T) {
	_, ts, _ := MustServer(t, Config{Token: "s3cret"})
	auth := []string{"connectapitoken", "s3cret"}
	tests := []struct {
		method, path string
		header       []string
		status       int
	}{
		{"GET", base + "Cinemas", auth, 200},
		{"GET", "/OData.svc/Cinemas", auth, 200},
		{"GET", "/a/b/OData.svc/ScheduledFilms/", auth, 200},
		{"GET", base + "Sessions", auth, 200},
		{"GET", base + "Cinemas", nil, 401},
		{"GET", base + "Cinemas", []string{"connectapitoken", "wrong"}, 401},
		{"GET", base + "Cinemas", []string{"Authorization", "s3cret"}, 401},
		{"GET", base + "Films", auth, 404},
		{"GET", base + "$metadata", auth, 404},
		{"GET", "/", auth, 404},
		{"GET", "/Sessions", auth, 404},
		{"POST", base + "Sessions", auth, 405},
		{"DELETE", base + "Cinemas", auth, 405},
		{"HEAD", base + "Cinemas", auth, 405},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, ts.URL+tt.path, nil)
		for i := 0; i+1 < len(tt.header); i += 2 {
			req.Header.Set(tt.header[i], tt.header[i+1])
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s: Content-Type %q", tt.method, tt.path, ct)
		}
		if tt.method != "HEAD" && !json.Valid(body) {
			t.Errorf("%s %s: body is not JSON: %s", tt.method, tt.path, body)
		}
		if tt.status == 405 && resp.Header.Get("Allow") != "GET" {
			t.Errorf("%s %s: Allow %q, want GET", tt.method, tt.path, resp.Header.Get("Allow"))
		}
	}
}

var (
	wallRe = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$`)
	dateRe = regexp.MustCompile(`^\d{4}-\d\d-\d\dT00:00:00$`)
)

func TestData(t *testing.T) {
	s, ts, _ := MustServer(t, Config{Seed: 3, PageSize: NoPaging})

	cinemas := mustFeed(t, ts, base+"Cinemas").Value
	if len(cinemas) != DefaultCinemas {
		t.Fatalf("%d cinemas, want %d", len(cinemas), DefaultCinemas)
	}
	zones := map[string]bool{}
	for i, c := range cinemas {
		if want := strconv.Itoa(1001 + i); c["ID"] != want {
			t.Errorf("cinema %d: ID %v, want %s", i, c["ID"], want)
		}
		for _, k := range []string{"Name", "Address1", "Address2", "City", "PhoneNumber", "CurrencyCode", "TimeZoneId", "LoyaltyCode"} {
			if _, ok := c[k].(string); !ok {
				t.Errorf("cinema %v: %s = %#v, want a string", c["ID"], k, c[k])
			}
		}
		for _, k := range []string{"Latitude", "Longitude"} {
			if _, ok := c[k].(float64); !ok {
				t.Errorf("cinema %v: %s = %#v, want a number", c["ID"], k, c[k])
			}
		}
		if _, ok := c["IsGiftStoreEnabled"].(bool); !ok {
			t.Errorf("cinema %v: IsGiftStoreEnabled = %#v", c["ID"], c["IsGiftStoreEnabled"])
		}
		if _, ok := c["ParkingInfo"]; !ok {
			t.Errorf("cinema %v: no ParkingInfo", c["ID"])
		}
		zones[c["TimeZoneId"].(string)] = true
	}
	for _, z := range []string{"", "Europe/London", "W. Europe Standard Time", "America/New_York"} {
		if !zones[z] {
			t.Errorf("no cinema has TimeZoneId %q (have %v)", z, zones)
		}
	}

	films := mustFeed(t, ts, base+"ScheduledFilms").Value
	byFilm := map[string][]string{}
	for _, f := range films {
		id, cid := f["ScheduledFilmId"].(string), f["CinemaId"].(string)
		if f["ID"] != cid+"-"+id {
			t.Errorf("film row ID %v, want %s-%s", f["ID"], cid, id)
		}
		if !regexp.MustCompile(`^HO\d{8}$`).MatchString(id) {
			t.Errorf("ScheduledFilmId %q", id)
		}
		if rt, ok := f["RunTime"].(string); !ok || rt == "" || strings.Trim(rt, "0123456789") != "" {
			t.Errorf("film %s: RunTime %#v, want minutes as a string", id, f["RunTime"])
		}
		if od, _ := f["OpeningDate"].(string); !dateRe.MatchString(od) {
			t.Errorf("film %s: OpeningDate %q", id, od)
		}
		for _, k := range []string{"Title", "Rating", "Distributor", "Synopsis"} {
			if _, ok := f[k].(string); !ok {
				t.Errorf("film %s: %s = %#v", id, k, f[k])
			}
		}
		byFilm[id] = append(byFilm[id], cid)
	}
	if len(byFilm) != DefaultFilms {
		t.Errorf("%d films, want %d", len(byFilm), DefaultFilms)
	}
	for id, cs := range byFilm {
		if len(cs) < 2 {
			t.Errorf("film %s is shown in %v, want 2 cinemas or more", id, cs)
		}
	}

	sessions := mustFeed(t, ts, base+"Sessions").Value
	info := map[string]SessionInfo{}
	for _, x := range s.Sessions() {
		info[x.ID] = x
	}
	if len(sessions) != len(info) || len(sessions) < 1000 {
		t.Fatalf("%d sessions listed, Sessions() has %d", len(sessions), len(info))
	}
	zoneOf := map[string]string{}
	for _, c := range cinemas {
		zoneOf[c["ID"].(string)] = c["TimeZoneId"].(string)
	}
	attrs := map[int]bool{}
	for _, x := range sessions {
		id := x["ID"].(string)
		cid, sid := x["CinemaId"].(string), x["SessionId"].(string)
		if id != cid+"-"+sid {
			t.Errorf("session %s: CinemaId %s, SessionId %s", id, cid, sid)
		}
		if !slices.Contains(byFilm[x["ScheduledFilmId"].(string)], cid) {
			t.Errorf("session %s: film %v is not scheduled at cinema %s", id, x["ScheduledFilmId"], cid)
		}
		st, bd := x["Showtime"].(string), x["SessionBusinessDate"].(string)
		if !wallRe.MatchString(st) || !dateRe.MatchString(bd) {
			t.Fatalf("session %s: Showtime %q, SessionBusinessDate %q", id, st, bd)
		}
		loc := loadZone(zoneOf[cid])
		at, err := time.ParseInLocation("2006-01-02T15:04:05", st, loc)
		if err != nil || !at.Equal(info[id].Showtime) {
			t.Errorf("session %s: Showtime %s in %s is %v, want %v", id, st, loc, at, info[id].Showtime)
		}
		business := at
		if at.Hour() < 6 {
			business = at.AddDate(0, 0, -1)
		}
		if want := business.Format("2006-01-02") + "T00:00:00"; bd != want {
			t.Errorf("session %s at %s: SessionBusinessDate %s, want %s", id, st, bd, want)
		}
		if h := at.Hour(); h > 2 && h < 10 {
			t.Errorf("session %s at %s: outside opening hours", id, st)
		}
		if x["ScreenName"] != fmt.Sprintf("Screen %v", x["ScreenNumber"]) {
			t.Errorf("session %s: ScreenName %v, ScreenNumber %v", id, x["ScreenName"], x["ScreenNumber"])
		}
		a, ok := x["SessionAttributesNames"].([]any)
		if !ok {
			t.Errorf("session %s: SessionAttributesNames %#v", id, x["SessionAttributesNames"])
		}
		attrs[len(a)] = true
		if _, ok := x["SeatsAvailable"].(float64); !ok {
			t.Errorf("session %s: SeatsAvailable %#v", id, x["SeatsAvailable"])
		}
		for _, k := range []string{"AreaCategoryCodes", "SalesChannels", "PriceGroupCode", "TypeCode"} {
			if _, ok := x[k]; !ok {
				t.Errorf("session %s: no %s", id, k)
			}
		}
	}
	if !attrs[0] || !attrs[1] || !attrs[2] {
		t.Errorf("attribute list lengths seen: %v, want 0, 1 and 2", attrs)
	}
}

// TestZones runs over the autumn changes of clocks in Europe and the US.
func TestZones(t *testing.T) {
	c := newClock(time.Date(2026, 10, 20, 12, 0, 0, 0, time.UTC))
	s := New(Config{Clock: c.Now, Cinemas: 9})
	for _, x := range s.Sessions() {
		wall := x.Showtime.Format("2006-01-02T15:04:05")
		at, err := time.ParseInLocation("2006-01-02T15:04:05", wall, x.Showtime.Location())
		if err != nil || !at.Equal(x.Showtime) {
			t.Errorf("session %s: %s read back as %v, want %v", x.ID, wall, at, x.Showtime)
		}
	}
}

func TestSeatsOverTime(t *testing.T) {
	s, _, c := MustServer(t, Config{Days: 3})
	type seen struct {
		seats  int
		status string
	}
	last := map[string]seen{}
	soldOut, almost, cancelled := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for step := 0; step < 3*24*4; step++ {
		for _, x := range s.Sessions() {
			if x.SeatsAvailable < 0 || x.SeatsAvailable > x.Capacity {
				t.Fatalf("%v: session %s has %d seats of %d", c.Now(), x.ID, x.SeatsAvailable, x.Capacity)
			}
			want := 0
			switch {
			case x.SeatsAvailable == 0:
				want = 2
				soldOut[x.ID] = true
			case x.SeatsAvailable*10 <= x.Capacity:
				want = 1
				almost[x.ID] = true
			}
			if x.SoldoutStatus != want {
				t.Errorf("session %s: SoldoutStatus %d with %d of %d seats, want %d", x.ID, x.SoldoutStatus, x.SeatsAvailable, x.Capacity, want)
			}
			if x.Status == "X" {
				cancelled[x.ID] = true
			}
			prev, ok := last[x.ID]
			if ok && x.SeatsAvailable > prev.seats {
				t.Errorf("%v: session %s seats rose from %d to %d", c.Now(), x.ID, prev.seats, x.SeatsAvailable)
			}
			if ok && prev.status == "X" && x.Status != "X" {
				t.Errorf("session %s: cancelled, then %q", x.ID, x.Status)
			}
			last[x.ID] = seen{x.SeatsAvailable, x.Status}
		}
		c.Add(15 * time.Minute)
	}
	total := len(last)
	t.Logf("%d sessions: %d sold out, %d almost, %d cancelled", total, len(soldOut), len(almost), len(cancelled))
	if len(soldOut) == 0 || len(almost) == 0 {
		t.Errorf("%d sold out and %d almost full of %d, want some of each", len(soldOut), len(almost), total)
	}
	if len(cancelled) == 0 || len(cancelled) > total/20 {
		t.Errorf("%d of %d cancelled, want about 2%%", len(cancelled), total)
	}
}

// TestSalesNearShowtime checks that a demo sees seats move within a minute.
func TestSalesNearShowtime(t *testing.T) {
	s, _, c := MustServer(t, Config{})
	var near, changedMinute, changedSeconds int
	for step := 0; step < 24; step++ {
		before := map[string]int{}
		for _, x := range s.Sessions() {
			if d := x.Showtime.Sub(c.Now()); d > 0 && d < time.Hour {
				before[x.ID] = x.SeatsAvailable
			}
		}
		c.Add(10 * time.Second)
		for _, x := range s.Sessions() {
			if n, ok := before[x.ID]; ok && n != x.SeatsAvailable {
				changedSeconds++
			}
		}
		c.Add(50 * time.Second)
		for _, x := range s.Sessions() {
			if n, ok := before[x.ID]; ok && n != x.SeatsAvailable {
				changedMinute++
			}
		}
		near += len(before)
		c.Add(time.Hour)
	}
	t.Logf("of %d sessions in their last hour, %d changed in 10 s, %d in a minute", near, changedSeconds, changedMinute)
	if near == 0 || changedMinute*4 < near || changedSeconds == 0 {
		t.Errorf("of %d sessions in their last hour, %d changed in 10 s and %d in a minute; want a quarter or more in a minute",
			near, changedSeconds, changedMinute)
	}
}

func TestPublishing(t *testing.T) {
	s, _, c := MustServer(t, Config{})
	before := map[string]bool{}
	check := func() []SessionInfo {
		now := c.Now()
		list := s.Sessions()
		for _, x := range list {
			if x.Published.After(now) || !x.Showtime.Add(30*time.Minute).After(now) || x.Showtime.After(now.Add(DefaultDays*24*time.Hour)) {
				t.Errorf("at %v: session %s published %v, showtime %v is listed", now, x.ID, x.Published, x.Showtime)
			}
		}
		return list
	}
	for _, x := range check() {
		before[x.ID] = true
	}
	c.Add(24 * time.Hour)
	horizon := start.Add(DefaultDays * 24 * time.Hour)
	var late, edge int
	for _, x := range check() {
		if before[x.ID] {
			continue
		}
		if x.Showtime.Before(horizon) {
			late++ // published after start, inside the window
		} else {
			edge++ // entered the window
		}
	}
	if late == 0 || edge == 0 {
		t.Errorf("after a day: %d sessions published late and %d entering the window, want some of each", late, edge)
	}
}

func TestPastSessionsDisappear(t *testing.T) {
	s, ts, c := MustServer(t, Config{})
	x := s.Sessions()[0]
	listed := func() bool {
		return len(mustFeed(t, ts, seatsPath(x.ID)).Value) == 1 && slices.ContainsFunc(s.Sessions(), func(y SessionInfo) bool { return y.ID == x.ID })
	}
	c.Set(x.Showtime.Add(29 * time.Minute))
	if !listed() {
		t.Errorf("session %s not listed 29 minutes after its showtime", x.ID)
	}
	c.Set(x.Showtime.Add(30 * time.Minute))
	if listed() {
		t.Errorf("session %s still listed 30 minutes after its showtime", x.ID)
	}
}

// TestDaysAhead moves the clock far, both ways: days are generated as
// needed, and the same each time.
func TestDaysAhead(t *testing.T) {
	s, ts, c := MustServer(t, Config{PageSize: NoPaging})
	n0 := len(s.Sessions())
	first := serve(s, base+"Sessions").Body.String()
	for _, d := range []time.Duration{30 * 24 * time.Hour, 400 * 24 * time.Hour} {
		c.Set(start.Add(d))
		list := s.Sessions()
		if len(list) < n0*8/10 || len(list) > n0*12/10 {
			t.Errorf("after %v: %d sessions, want about %d", d, len(list), n0)
		}
		if f := mustFeed(t, ts, base+"Sessions"); len(f.Value) != len(list) {
			t.Errorf("after %v: %d rows, want %d", d, len(f.Value), len(list))
		}
	}
	c.Set(start)
	if serve(s, base+"Sessions").Body.String() != first {
		t.Error("back at the start, the sessions differ")
	}
}

func TestFailures(t *testing.T) {
	sessions := base + "Sessions"
	tests := []struct {
		name     string
		failures []Failure
		path     string
		want     []int // statuses of successive requests; 0 means 200 with bad JSON
	}{
		{"status twice", []Failure{{Mode: FailStatus, Status: 503, Count: 2}}, sessions, []int{503, 503, 200}},
		{"status default", []Failure{{Mode: FailStatus}}, sessions, []int{500, 200}},
		{"rate limited", []Failure{{Mode: FailRateLimit, RetryAfter: 1500 * time.Millisecond}}, sessions, []int{429, 200}},
		{"malformed", []Failure{{Mode: FailMalformed, Count: 2}}, base + "Cinemas", []int{0, 0, 200}},
		{"other endpoint", []Failure{{Mode: FailStatus, Endpoint: EndpointSeats}}, sessions, []int{200, 200}},
		{"matching endpoint", []Failure{{Mode: FailStatus, Endpoint: EndpointSeats}}, seatsPath("1001-1"), []int{500, 200}},
		{"queued in order", []Failure{{Mode: FailStatus, Status: 502}, {Mode: FailRateLimit}}, sessions, []int{502, 429, 200}},
		{"until cleared", []Failure{{Mode: FailStatus, Status: 503, Count: -1}}, sessions, []int{503, 503, 503, 503}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts, _ := MustServer(t, Config{})
			for _, f := range tt.failures {
				s.Fail(f)
			}
			for i, want := range tt.want {
				status, h, body := get(t, ts, tt.path)
				switch {
				case want == 0:
					if status != 200 || json.Valid(body) {
						t.Errorf("request %d: status %d, valid JSON %v; want 200 with broken JSON", i, status, json.Valid(body))
					}
				case status != want:
					t.Errorf("request %d: status %d, want %d", i, status, want)
				case status == 429 && tt.name == "rate limited" && h.Get("Retry-After") != "2":
					t.Errorf("request %d: Retry-After %q, want 2", i, h.Get("Retry-After"))
				case status == 429 && h.Get("Retry-After") == "":
					t.Errorf("request %d: no Retry-After", i)
				case status >= 400 && !json.Valid(body):
					t.Errorf("request %d: error body %s is not JSON", i, body)
				}
			}
			s.ClearFailures()
			if status, _, _ := get(t, ts, tt.path); status != 200 {
				t.Errorf("after ClearFailures: status %d", status)
			}
		})
	}

	t.Run("empty", func(t *testing.T) {
		s, ts, _ := MustServer(t, Config{})
		s.Fail(Failure{Mode: FailEmpty, Count: 2})
		for _, path := range []string{sessions, seatsPath("1001-1"), sessions} {
			status, _, body := get(t, ts, path)
			want := `{"value":[]}`
			if path == sessions && s.Requests()[EndpointSessions] > 1 {
				want = "" // healed: the real list
			}
			if status != 200 || (want != "" && string(body) != want) || (want == "" && string(body) == `{"value":[]}`) {
				t.Errorf("GET %s: %d %.40s, want 200 %q", path, status, body, want)
			}
		}
	})

	t.Run("slow", func(t *testing.T) {
		s, ts, _ := MustServer(t, Config{})
		s.Fail(Failure{Mode: FailSlow, Delay: 200 * time.Millisecond})
		t0 := time.Now()
		if status, _, _ := get(t, ts, sessions); status != 200 {
			t.Errorf("status %d, want 200", status)
		}
		if d := time.Since(t0); d < 200*time.Millisecond {
			t.Errorf("answered in %v, want 200ms or more", d)
		}
		t0 = time.Now()
		get(t, ts, sessions)
		if d := time.Since(t0); d > 150*time.Millisecond {
			t.Errorf("healed answer took %v", d)
		}
	})

	t.Run("slow honours the context", func(t *testing.T) {
		s, ts, _ := MustServer(t, Config{})
		s.Fail(Failure{Mode: FailSlow, Delay: time.Minute})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+sessions, nil)
		t0 := time.Now()
		_, err := ts.Client().Do(req)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want a deadline", err)
		}
		// ts.Close in Cleanup waits for the handler: it must not sleep on.
		ts.Close()
		if d := time.Since(t0); d > 5*time.Second {
			t.Errorf("handler went on for %v after the client left", d)
		}
	})
}

func TestRequests(t *testing.T) {
	s, ts, _ := MustServer(t, Config{Token: "t", PageSize: 500})
	auth := []string{"connectapitoken", "t"}
	get(t, ts, base+"Cinemas", auth...)
	get(t, ts, base+"ScheduledFilms", auth...)
	get(t, ts, base+"ScheduledFilms") // 401 counts too
	get(t, ts, base+"Sessions", auth...)
	get(t, ts, base+"Sessions?$skip=500", auth...)
	get(t, ts, seatsPath("1001-1"), auth...)
	get(t, ts, base+"Sessions?%24filter=ID%20eq%20'x'", auth...)
	get(t, ts, base+"Sessions?%24filter=Showtime%20ge%20datetime'2026-11-25T18:00'", auth...)
	get(t, ts, base+"Nope", auth...)
	s.Fail(Failure{Mode: FailStatus, Endpoint: EndpointCinemas})
	get(t, ts, base+"Cinemas", auth...)
	want := map[string]int64{"cinemas": 2, "films": 2, "sessions": 2, "seats": 2, "window": 1, "other": 1}
	if got := s.Requests(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Requests() = %v, want %v", got, want)
	}
	s.ResetRequests()
	if got := s.Requests(); fmt.Sprint(got) != fmt.Sprint(map[string]int64{"cinemas": 0, "films": 0, "sessions": 0, "seats": 0, "window": 0, "other": 0}) {
		t.Errorf("after ResetRequests: %v", got)
	}
}

func TestHooks(t *testing.T) {
	s, ts, c := MustServer(t, Config{PageSize: NoPaging})
	find := func(id string) (SessionInfo, bool) {
		for _, x := range s.Sessions() {
			if x.ID == id {
				return x, true
			}
		}
		return SessionInfo{}, false
	}
	seats := func(id string) map[string]any {
		f := mustFeed(t, ts, seatsPath(id))
		if len(f.Value) == 0 {
			return nil
		}
		return f.Value[0]
	}
	// A session an hour or more away: it sells while the clock moves.
	var x SessionInfo
	for _, y := range s.Sessions() {
		if d := y.Showtime.Sub(start); d > time.Hour && d < 4*time.Hour && y.Status == "O" && y.SeatsAvailable > 20 {
			x = y
			break
		}
	}
	if x.ID == "" {
		t.Fatal("no session an hour away")
	}

	t.Run("SetSeats", func(t *testing.T) {
		defer s.Restore(x.ID)
		s.SetSeats(x.ID, 7)
		if got := seats(x.ID); got["SeatsAvailable"] != 7.0 || got["SoldoutStatus"] != 1.0 {
			t.Errorf("after SetSeats(7): %v", got)
		}
		s.SetSeats(x.ID, -3)
		if got, _ := find(x.ID); got.SeatsAvailable != 0 || got.SoldoutStatus != 2 {
			t.Errorf("after SetSeats(-3): %+v", got)
		}
		s.Restore(x.ID)
		if got, _ := find(x.ID); got.SeatsAvailable != x.SeatsAvailable {
			t.Errorf("after Restore: %d seats, want %d", got.SeatsAvailable, x.SeatsAvailable)
		}
	})

	t.Run("Remove", func(t *testing.T) {
		defer s.Restore(x.ID)
		s.Remove(x.ID)
		if _, ok := find(x.ID); ok || seats(x.ID) != nil {
			t.Error("removed session still listed")
		}
		if strings.Contains(serve(s, base+"Sessions").Body.String(), `"`+x.ID+`"`) {
			t.Error("removed session in Sessions")
		}
		s.Restore(x.ID)
		if _, ok := find(x.ID); !ok {
			t.Error("restored session not listed")
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		defer c.Set(start)
		defer s.Restore(x.ID)
		s.Cancel(x.ID)
		c.Add(50 * time.Minute)
		got := seats(x.ID)
		if got["Status"] != 7.0 || got["SeatsAvailable"] != float64(x.SeatsAvailable) {
			t.Errorf("cancelled, 50 minutes on: %v, want Status 7 and %d seats still", got, x.SeatsAvailable)
		}
		s.Restore(x.ID)
		if got, _ := find(x.ID); got.Status != "O" || got.SeatsAvailable >= x.SeatsAvailable {
			t.Errorf("restored, 50 minutes on: %+v, want open with fewer than %d seats", got, x.SeatsAvailable)
		}
	})

	t.Run("MoveSession", func(t *testing.T) {
		defer c.Set(start)
		defer s.Restore(x.ID)
		// A showing two days on, moved to five minutes from now.
		var y SessionInfo
		for _, z := range s.Sessions() {
			if d := z.Showtime.Sub(start); z.CinemaID == x.CinemaID && d > 48*time.Hour && d < 72*time.Hour && z.Status == "O" {
				y = z
				break
			}
		}
		if y.ID == "" {
			t.Fatal("no session two days on")
		}
		defer s.Restore(y.ID)
		to := start.Add(5 * time.Minute)
		s.MoveSession(y.ID, to)
		got, ok := find(y.ID)
		if !ok || !got.Showtime.Equal(to) || got.Showtime.Location() != y.Showtime.Location() || got.SeatsAvailable > y.SeatsAvailable {
			t.Fatalf("moved to %v: %+v (listed %v), want that showtime in %v and at most %d seats", to, got, ok, y.Showtime.Location(), y.SeatsAvailable)
		}
		local := to.In(y.Showtime.Location())
		for _, row := range mustFeed(t, ts, base+"Sessions").Value {
			if row["ID"] != y.ID {
				continue
			}
			if want := local.Format("2006-01-02T15:04:05"); row["Showtime"] != want {
				t.Errorf("Showtime %v, want %s", row["Showtime"], want)
			}
			if want := local.Add(-6*time.Hour).Format("2006-01-02") + "T00:00:00"; row["SessionBusinessDate"] != want {
				t.Errorf("SessionBusinessDate %v, want %s", row["SessionBusinessDate"], want)
			}
		}
		if n, listed := s.SeatsAt(y.ID, start); !listed || n != got.SeatsAvailable {
			t.Errorf("SeatsAt now = %d, %v; want %d, listed", n, listed, got.SeatsAvailable)
		}
		// It sells towards its new showtime, and goes half an hour after.
		c.Set(to.Add(-time.Minute))
		if later, _ := find(y.ID); later.SeatsAvailable > got.SeatsAvailable {
			t.Errorf("seats rose from %d to %d as the showtime came", got.SeatsAvailable, later.SeatsAvailable)
		}
		c.Set(to.Add(30 * time.Minute))
		if _, ok := find(y.ID); ok {
			t.Errorf("still listed half an hour after its new showtime")
		}
		// A day forgotten and generated again keeps the move.
		c.Set(start.Add(8 * 24 * time.Hour))
		s.Sessions()
		c.Set(start)
		if got, ok := find(y.ID); !ok || !got.Showtime.Equal(to) {
			t.Errorf("after its day was generated again: %+v (listed %v), want the showtime %v", got, ok, to)
		}
		s.Restore(y.ID)
		if got, ok := find(y.ID); !ok || !got.Showtime.Equal(y.Showtime) {
			t.Errorf("after Restore: %+v (listed %v), want the showtime %v", got, ok, y.Showtime)
		}
		s.MoveSession("9999-1", to) // no such cinema: nothing happens
		s.MoveSession(x.CinemaID+"-0", to)
	})

	t.Run("films and cinemas", func(t *testing.T) {
		film, cinema := x.FilmID, x.CinemaID
		s.RemoveFilm(film)
		s.SetFilmTitle(s.FilmIDs()[0], `Nouveau "Titre" ☃`)
		s.SetCinemaName("1002", "Renamed")
		s.RemoveCinema(cinema)
		defer func() {
			for _, id := range []string{film, cinema, "1002", s.FilmIDs()[0]} {
				s.Restore(id)
			}
		}()
		for _, row := range mustFeed(t, ts, base+"ScheduledFilms").Value {
			if row["ScheduledFilmId"] == film || row["CinemaId"] == cinema {
				t.Errorf("ScheduledFilms row %v after RemoveFilm(%s), RemoveCinema(%s)", row["ID"], film, cinema)
			}
			if row["ScheduledFilmId"] == s.FilmIDs()[0] && row["Title"] != `Nouveau "Titre" ☃` {
				t.Errorf("row %v: Title %q after SetFilmTitle", row["ID"], row["Title"])
			}
		}
		for _, row := range mustFeed(t, ts, base+"Sessions").Value {
			if row["ScheduledFilmId"] == film || row["CinemaId"] == cinema {
				t.Errorf("session %v of a removed film or cinema", row["ID"])
			}
		}
		for _, row := range mustFeed(t, ts, base+"Cinemas").Value {
			if row["ID"] == cinema {
				t.Errorf("cinema %s listed after RemoveCinema", cinema)
			}
			if row["ID"] == "1002" && cinema != "1002" && row["Name"] != "Renamed" {
				t.Errorf("cinema 1002: Name %q after SetCinemaName", row["Name"])
			}
		}
		if slices.Contains(s.FilmIDs(), film) || slices.Contains(s.CinemaIDs(), cinema) {
			t.Errorf("FilmIDs %v or CinemaIDs %v still hold %s, %s", s.FilmIDs(), s.CinemaIDs(), film, cinema)
		}
		s.Restore(film)
		s.Restore(cinema)
		if _, ok := find(x.ID); !ok {
			t.Error("session not back after Restore of its film and cinema")
		}
	})
}

// TestConcurrent is for the race detector.
func TestConcurrent(t *testing.T) {
	s, ts, c := MustServer(t, Config{PageSize: 200})
	list := s.Sessions()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				id := list[(g*20+i)%len(list)].ID
				switch i % 5 {
				case 0:
					s.SetSeats(id, i)
				case 1:
					s.Cancel(id)
				case 2:
					s.Fail(Failure{Mode: FailStatus, Count: 1})
				case 3:
					c.Add(time.Minute)
				case 4:
					s.Restore(id)
				}
				get(t, ts, seatsPath(id))
				get(t, ts, base+"Sessions?$skip="+strconv.Itoa(i*100))
				s.Requests()
			}
		})
	}
	wg.Wait()
}

// discard is a ResponseWriter that only counts.
type discard struct {
	h http.Header
	n int64
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }

// BenchmarkSessions100k measures full Sessions answers over about 100k
// sessions: one page, every page of 1000, and one 100-id seat check.
func BenchmarkSessions100k(b *testing.B) {
	cfg := Config{Cinemas: 113, Screens: 14, ShowsPerDay: 5, Days: 14, Films: 60, PageSize: NoPaging,
		Clock: func() time.Time { return start }}
	t0 := time.Now()
	s := New(cfg)
	built := time.Since(t0)
	list := s.Sessions()
	b.Logf("New: %d sessions listed, built in %v", len(list), built)
	var filter []string
	for i := range 100 {
		filter = append(filter, list[i*997%len(list)].ID)
	}

	b.Run("one page", func(b *testing.B) {
		b.ReportAllocs()
		req := httptest.NewRequest(http.MethodGet, "http://vista.test"+base+"Sessions", nil)
		var n int64
		for b.Loop() {
			w := &discard{h: http.Header{}}
			s.ServeHTTP(w, req)
			n = w.n
		}
		b.SetBytes(n)
		b.ReportMetric(float64(len(list)), "sessions")
	})

	b.Run("pages of 1000", func(b *testing.B) {
		paged := New(Config{Cinemas: 113, Screens: 14, ShowsPerDay: 5, Days: 14, Films: 60, Clock: cfg.Clock})
		b.ReportAllocs()
		for b.Loop() {
			pages := 0
			for skip := 0; skip < len(list); skip += 1000 {
				req := httptest.NewRequest(http.MethodGet, "http://vista.test"+base+"Sessions?$skip="+strconv.Itoa(skip), nil)
				paged.ServeHTTP(&discard{h: http.Header{}}, req)
				pages++
			}
			b.ReportMetric(float64(pages), "pages")
		}
	})

	b.Run("seat check of 100", func(b *testing.B) {
		b.ReportAllocs()
		req := httptest.NewRequest(http.MethodGet, "http://vista.test"+seatsPath(filter...), nil)
		for b.Loop() {
			w := &discard{h: http.Header{}}
			s.ServeHTTP(w, req)
		}
	})
}

// TestStatusForms: Status is Vista's number by default, the letter with
// LetterStatus; SetStatus sets any number, and 7 cancels.
func TestStatusForms(t *testing.T) {
	s, ts, _ := MustServer(t, Config{})
	x := s.Sessions()[0]
	s.SetStatus(x.ID, 1)
	row := mustFeed(t, ts, seatsPath(x.ID)).Value[0]
	if row["Status"] != 1.0 {
		t.Errorf("after SetStatus(1): %v, want Status 1", row)
	}
	if got := s.Sessions()[0]; got.StatusCode != 1 || got.Status != "O" {
		t.Errorf("Sessions()[0] = %+v, want StatusCode 1, still open", got)
	}
	s.SetStatus(x.ID, 7)
	if got := s.Sessions()[0]; got.StatusCode != 7 || got.Status != "X" {
		t.Errorf("after SetStatus(7): %+v, want StatusCode 7, Status X", got)
	}

	s, ts, _ = MustServer(t, Config{LetterStatus: true})
	x = s.Sessions()[0]
	s.Cancel(x.ID)
	if row := mustFeed(t, ts, seatsPath(x.ID)).Value[0]; row["Status"] != "X" {
		t.Errorf("LetterStatus, cancelled: %v, want Status \"X\"", row)
	}
}

// TestOmitSessionFields: a server without Status and SoldoutStatus leaves
// them out of its rows and refuses a $select that names them.
func TestOmitSessionFields(t *testing.T) {
	s, ts, _ := MustServer(t, Config{OmitSessionFields: []string{"Status", "SoldoutStatus"}})
	x := s.Sessions()[0]
	for _, row := range mustFeed(t, ts, base+"Sessions").Value {
		if _, ok := row["Status"]; ok {
			t.Fatalf("row %v has a Status", row)
		}
		if _, ok := row["SoldoutStatus"]; ok {
			t.Fatalf("row %v has a SoldoutStatus", row)
		}
	}
	if status, _, body := get(t, ts, seatsPath(x.ID)); status != http.StatusBadRequest || !strings.Contains(string(body), "Could not find a property") {
		t.Errorf("$select with Status: %d %s, want 400 naming a property", status, body)
	}
	narrow := strings.Replace(seatsPath(x.ID), "SoldoutStatus,Status", "SoldoutStatus", 1)
	if status, _, _ := get(t, ts, narrow); status != http.StatusBadRequest {
		t.Errorf("$select with SoldoutStatus: %d, want 400", status)
	}
	narrowest := strings.Replace(seatsPath(x.ID), ",SoldoutStatus,Status", "", 1)
	if f := mustFeed(t, ts, narrowest); len(f.Value) != 1 || f.Value[0]["SeatsAvailable"] != float64(x.SeatsAvailable) {
		t.Errorf("$select=ID,SeatsAvailable: %v, want the session's seats", f.Value)
	}
}
