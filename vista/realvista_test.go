package vista

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/internal/realvista"
	"github.com/vista-warmer/vista-warmer/keys"
)

// realSamples returns the folder of the real samples, or skips the test.
func realSamples(tb testing.TB) string { return realvista.Samples(tb) }

// sampleRows reads a sample file's rows: the value of an OData envelope,
// a bare array, or one bare row.
func sampleRows(tb testing.TB, dir, name string) []json.RawMessage {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		tb.Fatal(err)
	}
	b = bytes.TrimSpace(b)
	var rows []json.RawMessage
	switch b[0] {
	case '[':
		err = json.Unmarshal(b, &rows)
	case '{':
		var env struct {
			Value []json.RawMessage `json:"value"`
		}
		if err = json.Unmarshal(b, &env); err == nil && env.Value != nil {
			rows = env.Value
		} else {
			rows = []json.RawMessage{b}
		}
	}
	if err != nil || len(rows) == 0 {
		tb.Fatalf("%s: no rows (%v)", name, err)
	}
	return rows
}

// rowMap is a row by field name.
func rowMap(tb testing.TB, raw json.RawMessage) map[string]json.RawMessage {
	tb.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// scalar is a JSON value as the text the decoder keeps: a string's
// contents, a number's literal, "" for null.
func scalar(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	if string(v) == "null" {
		return ""
	}
	return string(v)
}

// wantInstant reads a Vista date the long way round, with package time, as
// a check on ParseLocal: ISO with or without offset, /Date(ms)/ and
// /Date(ms±hhmm)/.
func wantInstant(t *testing.T, s string, loc *time.Location) time.Time {
	t.Helper()
	if inner, ok := strings.CutPrefix(s, "/Date("); ok {
		inner = strings.TrimSuffix(inner, ")/")
		num := inner
		if i := strings.LastIndexAny(inner, "+-"); i > 0 {
			num = inner[:i]
		}
		ms, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		u := time.UnixMilli(ms).UTC()
		if num != inner { // an instant
			return u
		}
		w := time.Date(u.Year(), u.Month(), u.Day(), u.Hour(), u.Minute(), u.Second(), u.Nanosecond(), loc)
		return w
	}
	if t2, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t2
	}
	t2, err := time.ParseInLocation("2006-01-02T15:04:05", s, loc)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return t2
}

// The Yorck Kinos in Berlin, whose rows most samples are, give no
// TimeZoneId: they are read in Berlin's zone, as --timezone would say.
func berlinZone(t *testing.T) func(string) *time.Location {
	berlin := mustLocation(t, "Europe/Berlin")
	return func(string) *time.Location { return berlin }
}

// checkSession checks that every field the warmer reads came through.
func checkSession(t *testing.T, raw json.RawMessage, s Session) {
	t.Helper()
	m := rowMap(t, raw)
	where := s.ID
	eq := func(field, got string) {
		t.Helper()
		if v, ok := m[field]; ok && scalar(v) != got {
			t.Errorf("%s: %s = %q, Vista sent %s", where, field, got, v)
		}
	}
	eq("ID", s.ID)
	eq("CinemaId", s.CinemaID)
	eq("ScheduledFilmId", s.FilmID)
	eq("SessionId", s.SessionID)
	eq("ScreenName", s.ScreenName)
	eq("SeatsAvailable", strconv.Itoa(s.SeatsAvailable))
	if v, ok := m["ScreenNumber"]; ok && string(v) != "null" {
		eq("ScreenNumber", strconv.Itoa(s.ScreenNumber))
	}
	if v, ok := m["SoldoutStatus"]; ok && string(v) != "null" {
		eq("SoldoutStatus", strconv.Itoa(s.SoldoutStatus))
	}
	if v, ok := m["SessionAttributesNames"]; ok {
		var want []string
		json.Unmarshal(v, &want)
		if !slices.Equal(s.Attributes, want) && !(len(want) == 0 && len(s.Attributes) == 0) {
			t.Errorf("%s: attributes %q, Vista sent %s", where, s.Attributes, v)
		}
	}
	if want := wantInstant(t, scalar(m["Showtime"]), s.Showtime.Location()); !s.Showtime.Equal(want) {
		t.Errorf("%s: Showtime %s, Vista sent %s (%s)", where, s.Showtime, m["Showtime"], want)
	}
	if v, ok := m["SessionBusinessDate"]; ok && string(v) != "null" {
		if want := wantDate(t, scalar(v)); s.BusinessDate != want {
			t.Errorf("%s: SessionBusinessDate %q, Vista sent %s", where, s.BusinessDate, v)
		}
	}
	wantState := keys.StateOpen // no Status: open
	if v, ok := m["Status"]; ok && string(v) != "null" {
		n, err := strconv.Atoi(scalar(v))
		if err != nil {
			t.Fatalf("%s: Status %s is not Vista's number", where, v)
		}
		wantState = keys.States[n]
		eq("Status", s.Status)
	}
	if s.State != wantState {
		t.Errorf("%s: state %s, want %s (Status %s)", where, s.State, wantState, m["Status"])
	}
}

// wantDate reads a Vista calendar date the long way round: the date part
// of the ISO form, or the day of a /Date()/'s wall time.
func wantDate(t *testing.T, s string) string {
	t.Helper()
	inner, ok := strings.CutPrefix(s, "/Date(")
	if !ok {
		return s[:10]
	}
	inner = strings.TrimSuffix(inner, ")/")
	var off time.Duration
	if i := strings.LastIndexAny(inner, "+-"); i > 0 {
		h, _ := strconv.Atoi(inner[i+1 : i+3])
		m, _ := strconv.Atoi(inner[i+3 : i+5])
		off = time.Duration(h)*time.Hour + time.Duration(m)*time.Minute
		if inner[i] == '-' {
			off = -off
		}
		inner = inner[:i]
	}
	ms, err := strconv.ParseInt(inner, 10, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return time.UnixMilli(ms).UTC().Add(off).Format("2006-01-02")
}

// TestRealSessionRows decodes every real session row: none is refused, and
// each field the warmer reads comes through with Vista's value. Asked for
// as extra fields, the rest of each row comes through too.
func TestRealSessionRows(t *testing.T) {
	dir := realSamples(t)
	zone := berlinZone(t)
	for _, file := range []string{
		"elixir-vista-client_test_session_row_yorck2019.json",
		"elixir-vista-api-cache_sessions_yorck2019_RECONSTRUCTED.json",
		"probe_sessions_real-row_with_documented-values.json",
	} {
		t.Run(file, func(t *testing.T) {
			rows := sampleRows(t, dir, file)
			got, errs := decodeSessions(rows, 0, zone, nil)
			if len(errs) != 0 || len(got) != len(rows) {
				t.Fatalf("%d rows: %d sessions, errors %v", len(rows), len(got), errs)
			}
			for i, s := range got {
				checkSession(t, rows[i], s)
			}
			// Every other field of the row, through --session-fields.
			for i, raw := range rows {
				m := rowMap(t, raw)
				var rest []string
				for name := range m {
					if !slices.Contains(sessionFieldsRead, name) && !strings.HasPrefix(name, "_") {
						rest = append(rest, name)
					}
				}
				sort.Strings(rest)
				one, errs := decodeSessions([]json.RawMessage{raw}, 0, zone, rest)
				if len(errs) != 0 {
					t.Fatalf("row %d with extra fields %v: %v", i, rest, errs)
				}
				for j, name := range rest {
					want := scalar(m[name])
					if v := bytes.TrimSpace(m[name]); len(v) > 0 && (v[0] == '[' || v[0] == '{') {
						var b bytes.Buffer
						json.Compact(&b, v)
						want = b.String()
					}
					if one[0].Extra[j] != want {
						t.Errorf("row %d: extra %s = %q, Vista sent %s", i, name, one[0].Extra[j], m[name])
					}
				}
			}
		})
	}
}

// sessionFieldsRead are the Session fields the decoder reads itself.
var sessionFieldsRead = []string{"ID", "CinemaId", "ScheduledFilmId", "SessionId", "Showtime",
	"SessionBusinessDate", "SeatsAvailable", "ScreenName", "ScreenNumber", "SessionAttributesNames",
	"SoldoutStatus", "Status"}

// TestRealProbeRows pins what the probes built from the real row with
// Vista's documented values mean.
func TestRealProbeRows(t *testing.T) {
	dir := realSamples(t)
	rows := sampleRows(t, dir, "probe_sessions_real-row_with_documented-values.json")
	got, errs := decodeSessions(rows, 0, berlinZone(t), nil)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	want := map[string]string{
		"1001-90001": "2018-01-09T11:05:00+01:00 open",      // 20:05 at +10:00
		"1001-90002": "2017-11-20T04:58:10+01:00 open",      // /Date(1511150290590+1300)/: an instant
		"1001-90003": "2019-02-26T20:00:00+01:00 open",      // business date /Date(...+0100)/
		"1001-90004": "2019-02-26T20:00:00+01:00 cancelled", // Status 7
		"1001-90005": "2019-02-26T20:00:00+01:00 closed",    // Status 1
		"1001-90006": "2019-02-26T20:00:00+01:00 open",      // Status 0
		"1001-90007": "2019-02-26T20:00:00+01:00 open",      // no Status at all
		"1001-90010": "2019-02-26T20:00:00+01:00 open",      // 19:00Z
	}
	for _, s := range got {
		w, ok := want[s.ID]
		if !ok {
			continue
		}
		if g := s.Showtime.Format(time.RFC3339) + " " + string(s.State); g != w {
			t.Errorf("%s: %s, want %s", s.ID, g, w)
		}
		if s.ID == "1001-90003" && s.BusinessDate != "2019-02-26" {
			t.Errorf("%s: business date %s, want 2019-02-26", s.ID, s.BusinessDate)
		}
	}
	if !got[3].Cancelled() || got[4].Cancelled() {
		t.Errorf("Status 7 cancelled: %v; Status 1 cancelled: %v", got[3].Cancelled(), got[4].Cancelled())
	}
}

// TestRealFilmRows: the real ScheduledFilm row and the reconstructed list
// of 114 rows merge into one film per ScheduledFilmId, nothing lost.
func TestRealFilmRows(t *testing.T) {
	dir := realSamples(t)
	raw := sampleRows(t, dir, "elixir-vista-client_test_scheduledfilm_row_yorck2019.json")
	frs, errs := decodeFilmRows(raw, 0, []string{"TrailerUrl", "AllowTicketSales", "CustomerRatingStatistics"})
	if len(errs) != 0 || len(frs) != 1 {
		t.Fatalf("decodeFilmRows = %v, %v", frs, errs)
	}
	f := mergeFilms(frs)[0]
	got := fmt.Sprintf("%s|%s|%s|%d|%s|%s|%q|%q", f.ID, f.Title, f.Rating, f.RunTimeMinutes, f.OpeningDate, f.Distributor, f.CinemaIDs, f.Extra)
	want := `HO00000720|Schule auf dem Zauberberg, Die|FSK unbek.|87|2019-02-28|farbfilm Verleih GmbH|["1001"]|["" "true" "{\"RatingCount\":0,\"AverageScore\":null}"]`
	if got != want {
		t.Errorf("film =\n%s\nwant\n%s", got, want)
	}

	rows := sampleRows(t, dir, "elixir-vista-api-cache_scheduledfilms_yorck2019_RECONSTRUCTED.json")
	frs, errs = decodeFilmRows(rows, 0, nil)
	if len(errs) != 0 || len(frs) != len(rows) {
		t.Fatalf("%d rows: %d decoded, errors %v", len(rows), len(frs), errs)
	}
	titles := map[string]string{}
	for i, raw := range rows {
		m := rowMap(t, raw)
		id, title, rating := scalar(m["ScheduledFilmId"]), scalar(m["Title"]), scalar(m["Rating"])
		if frs[i].film.ID != id || frs[i].film.Title != title || frs[i].film.Rating != rating {
			t.Errorf("row %d = %+v, Vista sent %s", i, frs[i].film, raw)
		}
		if _, ok := titles[id]; !ok {
			titles[id] = title
		}
	}
	films := mergeFilms(frs)
	if len(films) != len(titles) {
		t.Errorf("%d films, want one per ScheduledFilmId: %d", len(films), len(titles))
	}
	for _, f := range films {
		if f.Title != titles[f.ID] {
			t.Errorf("film %s: title %q, want the first row's %q", f.ID, f.Title, titles[f.ID])
		}
	}
}

// TestRealCinemaRows: the real cinema rows, enveloped and bare.
func TestRealCinemaRows(t *testing.T) {
	dir := realSamples(t)
	resolve := func(string, string) *time.Location { return time.UTC }
	for _, file := range []string{
		"elixir-vista-api-cache_cinemas_yorck2019_RECONSTRUCTED.json",
		"elixir-vista-client_test_cinemas_array_yorck2019.json",
	} {
		rows := sampleRows(t, dir, file)
		got, errs := decodeCinemas(rows, 0, resolve, nil)
		if len(errs) != 0 || len(got) != len(rows) {
			t.Fatalf("%s: %d rows, %d cinemas, errors %v", file, len(rows), len(got), errs)
		}
		for i, c := range got {
			m := rowMap(t, rows[i])
			if c.ID != scalar(m["ID"]) || c.Name != scalar(m["Name"]) {
				t.Errorf("%s: cinema %q %q, Vista sent %s", file, c.ID, c.Name, rows[i])
			}
		}
	}
}

// TestNotVistaSamples: what other layers or authors call Vista data is
// refused row by row, or as a whole, never half read.
func TestNotVistaSamples(t *testing.T) {
	dir := realSamples(t)
	zone := berlinZone(t)

	// A site's own JSON over Vista: no ID, so every row is refused.
	rows := sampleRows(t, dir, "celebrationcinema_site-json_EXCERPT_not-odata.json")
	got, errs := decodeSessions(rows, 0, zone, nil)
	if len(got) != 0 || len(errs) != len(rows) || errs[0].Field != "ID" {
		t.Errorf("celebrationcinema: %d sessions, errors %v; want every row refused for its ID", len(got), errs)
	}

	// A third party's invented fixture: cinemas and films read, sessions
	// without an ID refused.
	b, err := os.ReadFile(filepath.Join(dir, "schmorck_server-test_INVENTED-by-third-party.json"))
	if err != nil {
		t.Fatal(err)
	}
	var inv struct{ Cinemas, Films, Sessions json.RawMessage }
	if err := json.Unmarshal(b, &inv); err != nil {
		t.Fatal(err)
	}
	p, err := decodePage("cinemas", inv.Cinemas)
	if err != nil {
		t.Fatal(err)
	}
	if cs, errs := decodeCinemas(p.rows, 0, func(string, string) *time.Location { return time.UTC }, nil); len(errs) != 0 || len(cs) != 1 || cs[0].Latitude != "52.505" {
		t.Errorf("invented cinemas = %+v, %v", cs, errs)
	}
	p, _ = decodePage("sessions", inv.Sessions)
	if ss, errs := decodeSessions(p.rows, 0, zone, nil); len(ss) != 0 || len(errs) != 1 {
		t.Errorf("invented sessions = %+v, %v; want the row without ID refused", ss, errs)
	}

	// Vista's own documentation example is not valid JSON: the page is
	// refused whole.
	doc, err := os.ReadFile(filepath.Join(dir, "vista-docs_films-variable-data_example_ASPUBLISHED.txt"))
	if err != nil {
		t.Fatal(err)
	}
	body := doc[bytes.Index(doc, []byte("{")):bytes.Index(doc, []byte("GET: /OData.svc/CinemaOperators"))]
	if _, err := decodePage("films", body); err == nil {
		t.Error("the published (invalid) example decoded")
	}
}

// TestFieldsMatchVistasDefinition decodes the real rows while recording
// every field the decoders read and how, and checks each against Vista's
// own API definition (the swagger extract): the field exists on the
// entity, with the type the decoder expects.
func TestFieldsMatchVistasDefinition(t *testing.T) {
	dir := realSamples(t)
	var defs struct {
		Definitions map[string]struct {
			Properties map[string]struct {
				Type   string `json:"type"`
				Format string `json:"format"`
				Items  *struct {
					Type string `json:"type"`
				} `json:"items"`
			} `json:"properties"`
		} `json:"definitions"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "vista-connect-5.0.15.26_swagger_EXTRACT.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &defs); err != nil {
		t.Fatal(err)
	}
	entity := map[string]string{
		"cinemas":  "WSVistaWebClient.ServiceContracts.OData.Cinema",
		"films":    "WSVistaWebClient.ServiceContracts.OData.ScheduledFilm",
		"sessions": "WSVistaWebClient.ServiceContracts.OData.Session",
	}

	read := map[string]string{} // "list.field" -> how
	note := func(list string, reads map[string]string) {
		for field, how := range reads {
			if prev, ok := read[list+"."+field]; ok && prev != how {
				t.Errorf("%s.%s read as %s and as %s", list, field, prev, how)
			}
			read[list+"."+field] = how
		}
	}
	zone := berlinZone(t)
	sessions := sampleRows(t, dir, "elixir-vista-client_test_session_row_yorck2019.json")
	note("sessions", readsOf(t, "sessions", sessions, sessionDecoder(zone, nil)))
	note("sessions", readsOf(t, "sessions", sessions, decodeSeat))
	note("films", readsOf(t, "films", sampleRows(t, dir, "elixir-vista-client_test_scheduledfilm_row_yorck2019.json"), filmDecoder(nil)))
	note("cinemas", readsOf(t, "cinemas", sampleRows(t, dir, "elixir-vista-client_test_cinemas_array_yorck2019.json"),
		cinemaDecoder(func(string, string) *time.Location { return time.UTC }, nil)))
	if len(read) < 25 {
		t.Fatalf("recorded only %d reads: %v", len(read), read)
	}

	for key, how := range read {
		list, field, _ := strings.Cut(key, ".")
		prop, ok := defs.Definitions[entity[list]].Properties[field]
		if !ok {
			t.Errorf("%s reads %s, which Vista's %s does not define", list, field, entity[list])
			continue
		}
		typ := prop.Type
		if prop.Format != "" {
			typ += "/" + prop.Format
		}
		if prop.Items != nil {
			typ += " of " + prop.Items.Type
		}
		want := map[string]string{
			"id":           "string",
			"text":         "string",
			"number":       "number/double",
			"integer":      "integer/int32",
			"integer-text": "string",
			"strings":      "array of string",
			"date":         "string/date-time",
			"datetime":     "string/date-time",
			"status":       "integer/int32",
		}[how]
		if typ != want {
			t.Errorf("%s.%s is read as %s, which wants %q; Vista defines %q", list, field, how, want, typ)
		}
	}
}

// readsOf decodes rows with one, on a row that records its reads, and
// returns every field read and how.
func readsOf[T any](t *testing.T, list string, rows []json.RawMessage, one func(*row, json.RawMessage) (T, *DecodeError)) map[string]string {
	t.Helper()
	r := &row{list: list, reads: map[string]string{}}
	for i, raw := range rows {
		if derr := r.load(i, raw); derr == nil {
			one(r, raw)
		}
	}
	return r.reads
}
