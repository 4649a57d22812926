package warmer

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vista-warmer/vista-warmer/internal/clocktest"
	"github.com/vista-warmer/vista-warmer/internal/realvista"
	"github.com/vista-warmer/vista-warmer/internal/testkit"
	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
)

// The real rows are years old, and a session's key expires at its
// showtime in Redis's own time: served as they are, every session hash
// would be gone at once. realVista moves every date by whole 52-week
// years, which keeps weekdays, wall times and seasons (DST), to the first
// such year not behind clocktest.Start (itself ahead of the machine's
// clock), so the shift is the same whenever the tests run; the tests'
// clocks move along.
func shiftYears(from time.Time) int {
	days := 0
	for from.AddDate(0, 0, days).Before(clocktest.Start) {
		days += 364
	}
	return days
}

var (
	isoDate = regexp.MustCompile(`"(\d{4}-\d{2}-\d{2})T`)
	msDate  = regexp.MustCompile(`/Date\((-?\d+)`)
)

// shiftDates moves the dates of a Vista body by days.
func shiftDates(b []byte, days int) []byte {
	b = isoDate.ReplaceAllFunc(b, func(m []byte) []byte {
		d, err := time.Parse("2006-01-02", string(m[1:11]))
		if err != nil {
			return m
		}
		return []byte(`"` + d.AddDate(0, 0, days).Format("2006-01-02") + "T")
	})
	return msDate.ReplaceAllFunc(b, func(m []byte) []byte {
		ms, err := strconv.ParseInt(string(m[6:]), 10, 64)
		if err != nil {
			return m
		}
		return []byte("/Date(" + strconv.FormatInt(ms+int64(days)*86400000, 10))
	})
}

// realVista serves the real samples as Vista would, their dates moved by
// days: each file as a list, and seat checks answered from the session
// rows, with the fields the $select names.
func realVista(t *testing.T, dir string, days int, files map[string]string) *httptest.Server {
	t.Helper()
	bodies := map[string][]byte{}
	for set, name := range files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		bodies[set] = shiftDates(b, days)
	}
	term := regexp.MustCompile(`ID eq '((?:[^']|'')*)'`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set := filepath.Base(r.URL.Path)
		body, ok := bodies[set]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		filter := r.URL.Query().Get("$filter")
		if filter == "" {
			w.Write(body)
			return
		}
		var list struct{ Value []map[string]json.RawMessage }
		json.Unmarshal(body, &list)
		want := map[string]bool{}
		for _, m := range term.FindAllStringSubmatch(filter, -1) {
			want[strings.ReplaceAll(m[1], "''", "'")] = true
		}
		sel := strings.Split(r.URL.Query().Get("$select"), ",")
		var rows []map[string]json.RawMessage
		for _, row := range list.Value {
			var id string
			json.Unmarshal(row["ID"], &id)
			if !want[id] {
				continue
			}
			out := map[string]json.RawMessage{}
			for _, f := range sel {
				if v, ok := row[f]; ok {
					out[f] = v
				}
			}
			rows = append(rows, out)
		}
		json.NewEncoder(w).Encode(map[string]any{"value": rows})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// realWarmer is a writer on the real Yorck cinemas and films and the
// sessions of file, on a clock at then moved as realVista moves the dates;
// it has taken its first step. days is the move.
func realWarmer(t *testing.T, then time.Time, sessions string) (r *rig, w *Warmer, m *Metrics, days int) {
	t.Helper()
	dir := realvista.Samples(t)
	clocktest.Ahead(t, clocktest.Start)
	days = shiftYears(then)
	srv := realVista(t, dir, days, map[string]string{
		"Cinemas":        "elixir-vista-api-cache_cinemas_yorck2019_RECONSTRUCTED.json",
		"ScheduledFilms": "elixir-vista-api-cache_scheduledfilms_yorck2019_RECONSTRUCTED.json",
		"Sessions":       sessions,
	})
	client, err := vista.New(vista.Config{BaseURL: srv.URL, Zones: vista.Zones{Default: then.Location()}, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	rdb, prefix := MustRedis(t)
	clock := testkit.NewClock(then.AddDate(0, 0, days))
	m = NewMetrics(nil)
	w, err = New(Config{Redis: rdb, Vista: client, Prefix: prefix, InstanceID: "real", Clock: clock, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	r = &rig{t: t, ctx: t.Context(), rdb: rdb, prefix: prefix, clock: clock, runs: map[*Warmer]func(){}}
	r.step(w)
	return r, w, m, days
}

// TestRealYorckProgramme warms the cache from the real Yorck Kinos data of
// 2019, on a clock set to then: 13 cinemas, the films and every session not
// yet over, each readable as the contract says.
func TestRealYorckProgramme(t *testing.T) {
	berlin, _ := vista.LoadZone("Europe/Berlin")
	then := time.Date(2019, 4, 24, 19, 55, 0, 0, berlin)
	r, w, m, days := realWarmer(t, then, "elixir-vista-api-cache_sessions_yorck2019_RECONSTRUCTED.json")
	rdb, prefix, now := r.rdb, r.prefix, r.clock.Now()
	dir := realvista.Samples(t)

	if n := rdb.SCard(t.Context(), keys.Index(prefix, keys.Cinemas)).Val(); n != 13 {
		t.Errorf("%d cinemas, want the 13 of Yorck", n)
	}
	var sessions struct {
		Value []struct{ ID, Showtime, ScreenName string }
	}
	b, _ := os.ReadFile(filepath.Join(dir, "elixir-vista-api-cache_sessions_yorck2019_RECONSTRUCTED.json"))
	json.Unmarshal(b, &sessions)
	want := 0
	for _, s := range sessions.Value {
		st, _ := time.ParseInLocation("2006-01-02T15:04:05", s.Showtime, berlin)
		if st = st.AddDate(0, 0, days); st.Add(20*time.Minute).After(now) && st.After(now.Add(-24*time.Hour)) {
			want++
		}
	}
	if n := rdb.ZCard(t.Context(), keys.Index(prefix, keys.Sessions)).Val(); int(n) != want || want == 0 {
		t.Errorf("%d sessions cached, want the %d not over yet", n, want)
	}
	h := r.hash(keys.Sessions, "1001-17426") // Avengers: Endgame, 2019-04-24 20:00 in Kino 1
	show := time.Date(2019, 4, 24, 20, 0, 0, 0, berlin).AddDate(0, 0, days)
	if h["showtime"] != show.Format(time.RFC3339) || h["state"] != "open" || h["status"] != "" ||
		h["screen_name"] != "Kino 1" || h["attributes"] != "OmU" || h["business_date"] != show.Format("2006-01-02") {
		t.Errorf("session 1001-17426 = %v", h)
	}
	// It starts in 5 minutes: checked at once, seats from the real row.
	if h["seats_available"] != "76" || h["next_check_at"] == "" {
		t.Errorf("session 1001-17426 seats %q, next check %q", h["seats_available"], h["next_check_at"])
	}
	if f := r.hash(keys.Films, "HO00000822"); f["title"] != "Avengers: Endgame" {
		t.Errorf("film HO00000822 = %v", f)
	}
	// Rows of the day before are over and refused; nothing else is.
	for _, reason := range badReasons {
		if n := testutil.ToFloat64(m.badRows.WithLabelValues("sessions", reason)); n != 0 && reason != badOutOfRange {
			t.Errorf("%v real session rows refused as %s", n, reason)
		}
	}
	if ready, reason := w.Readiness(t.Context()); !ready {
		t.Errorf("not ready: %s", reason)
	}
}

// TestRealProbeRowsCached: the real row with Vista's documented values,
// through the warmer: Status 7 is never cached, 1 is closed, dates with
// ticks and offsets or in OData v2's form land at the right instant, and
// rows years in the past are refused.
func TestRealProbeRowsCached(t *testing.T) {
	berlin, _ := vista.LoadZone("Europe/Berlin")
	then := time.Date(2019, 2, 26, 12, 0, 0, 0, berlin)
	r, _, m, days := realWarmer(t, then, "probe_sessions_real-row_with_documented-values.json")
	rdb, prefix := r.rdb, r.prefix
	show := time.Date(2019, 2, 26, 20, 0, 0, 0, berlin).AddDate(0, 0, days).Format(time.RFC3339)
	want := map[string]string{
		"1001-90003": show + " open",
		"1001-90005": show + " closed",
		"1001-90006": show + " open",
		"1001-90007": show + " open",
		"1001-90010": show + " open", // 19:00Z
	}
	for id, w := range want {
		h := r.hash(keys.Sessions, id)
		if got := h["showtime"] + " " + h["state"]; got != w {
			t.Errorf("session %s: %s, want %s", id, got, w)
		}
	}
	if h, d := r.hash(keys.Sessions, "1001-90003"), show[:10]; h["business_date"] != d {
		t.Errorf("1001-90003 business_date %q, want %s (from /Date(...+0100)/)", h["business_date"], d)
	}
	if n := rdb.Exists(t.Context(), keys.Session(prefix, "1001-90004")).Val(); n != 0 {
		t.Error("the cancelled session (Status 7) was cached")
	}
	if n := testutil.ToFloat64(m.badRows.WithLabelValues("sessions", badOutOfRange)); n != 2 {
		t.Errorf("%v rows refused as out of range, want 2 (2017 and 2018)", n)
	}
}
