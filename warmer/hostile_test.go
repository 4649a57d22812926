package warmer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// injector stands in front of the simulated Vista and adds raw rows to the
// last page of its lists: rows the simulator never sends.
type injector struct {
	mu   sync.Mutex
	rows map[string][]string // by entity set: "Cinemas", "ScheduledFilms", "Sessions"
}

func (in *injector) set(entity string, rows ...string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.rows == nil {
		in.rows = map[string][]string{}
	}
	in.rows[entity] = rows
}

func (in *injector) front(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.mu.Lock()
		extra := in.rows[path.Base(r.URL.Path)]
		in.mu.Unlock()
		if len(extra) == 0 || r.URL.Query().Has("$filter") {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var page map[string]json.RawMessage
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &page) != nil || page["odata.nextLink"] != nil {
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		var rows []json.RawMessage
		json.Unmarshal(page["value"], &rows)
		for _, x := range extra {
			rows = append(rows, json.RawMessage(x))
		}
		page["value"], _ = json.Marshal(rows)
		out, _ := json.Marshal(page)
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	})
}

// logBuffer collects a warmer's log for a test to read.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) lines(substr string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for line := range strings.SplitSeq(l.b.String(), "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

func withLog(buf *logBuffer) func(*Config) {
	return func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(buf, nil)) }
}

func withMetrics(m *Metrics) func(*Config) {
	return func(c *Config) { c.Metrics = m }
}

// keep returns the sessions of list but those for which drop says so.
func keep(list []vista.Session, drop func(vista.Session) bool) []vista.Session {
	var out []vista.Session
	for _, s := range list {
		if !drop(s) {
			out = append(out, s)
		}
	}
	return out
}

// near finds a listed, open session whose showtime is within the near
// window once the clock is set to 5 minutes before it, and sets the clock.
func (r *rig) nearSession(w *Warmer) vistasim.SessionInfo {
	r.t.Helper()
	s := r.upcoming(3*time.Hour, 40*time.Hour)
	r.clock.Set(s.Showtime.Add(-5 * time.Minute))
	r.step(w)
	return s
}

// checkNow makes every cached session due and steps, so seat checks run.
func (r *rig) checkNow(w *Warmer) {
	r.t.Helper()
	r.locked(w, func() {
		for id, rec := range w.st.cache[keys.Sessions] {
			w.st.checker.reschedule(id, rec, r.clock.Now())
		}
	})
	r.clock.Add(time.Second)
	r.step(w)
}

func TestStatusAsVistaSendsIt(t *testing.T) {
	for _, letters := range []bool{false, true} {
		name := "numbers"
		if letters {
			name = "letters"
		}
		t.Run(name, func(t *testing.T) {
			r := newRigWith(t, rigOptions{sim: func(c *vistasim.Config) { c.LetterStatus = letters }})
			w := r.warmer("a")
			s := r.nearSession(w)
			h := r.hash(keys.Sessions, s.ID)
			wantStatus := "0"
			if letters {
				wantStatus = "O"
			}
			if h["status"] != wantStatus || h["state"] != "open" {
				t.Fatalf("hash status %q state %q, want %q open", h["status"], h["state"], wantStatus)
			}
			n := len(r.events())
			if letters {
				r.sim.Cancel(s.ID)
			} else {
				r.sim.SetStatus(s.ID, 1) // closed: stays, but is not bookable
			}
			r.checkNow(w)
			evs := forID(r.eventsSince(n), s.ID)
			if letters {
				if len(evs) != 1 || evs[0].Event != keys.EventRemoved || evs[0].Reason != keys.ReasonCancelled {
					t.Fatalf("events %+v, want one removed_item cancelled", evs)
				}
				return
			}
			if len(evs) != 1 || evs[0].Event != keys.EventItem || !slices.Equal(evs[0].Changed, []string{"status", "state"}) {
				t.Fatalf("events %+v, want one item changing status and state", evs)
			}
			if h := r.hash(keys.Sessions, s.ID); h["status"] != "1" || h["state"] != "closed" {
				t.Errorf("hash status %q state %q, want 1 closed", h["status"], h["state"])
			}
			r.sim.SetStatus(s.ID, 7)
			r.checkNow(w)
			evs = forID(r.eventsSince(n), s.ID)
			if last := evs[len(evs)-1]; last.Event != keys.EventRemoved || last.Reason != keys.ReasonCancelled {
				t.Errorf("after Status 7: %+v, want removed_item cancelled", last)
			}
			r.assertSessionGone(s)
		})
	}
}

// TestServerWithoutStatus: against a Vista whose Session has no Status and
// no SoldoutStatus, sessions read as open and seat checks work, at the cost
// of two refused requests in all.
func TestServerWithoutStatus(t *testing.T) {
	var mu sync.Mutex
	refused := 0
	r := newRigWith(t, rigOptions{
		sim: func(c *vistasim.Config) { c.OmitSessionFields = []string{"Status", "SoldoutStatus"} },
		client: func(c *vista.Config) {
			c.Observe = func(endpoint string, status int, _ time.Duration) {
				if status == http.StatusBadRequest {
					mu.Lock()
					refused++
					mu.Unlock()
				}
			}
		},
	})
	w := r.warmer("a")
	s := r.nearSession(w)
	if h := r.hash(keys.Sessions, s.ID); h["status"] != "" || h["state"] != "open" || h["soldout_status"] != "0" {
		t.Fatalf("hash %v, want no status, state open", h)
	}
	n := len(r.events())
	for i := range 4 {
		r.sim.SetSeats(s.ID, 10-i)
		r.checkNow(w)
	}
	items := byEvent(forID(r.eventsSince(n), s.ID), keys.Sessions, keys.EventItem)
	if len(items) != 4 || *items[3].SeatsAvailable != 7 {
		t.Fatalf("item events %+v, want 4, the last with 7 seats", items)
	}
	if h := r.hash(keys.Sessions, s.ID); h["seats_available"] != "7" || h["state"] != "open" {
		t.Errorf("hash %v, want 7 seats, open", h)
	}
	mu.Lock()
	defer mu.Unlock()
	if refused != 2 {
		t.Errorf("Vista refused %d requests, want 2 in all", refused)
	}
}

// TestEmptyListIsHeldBack: one empty answer removes nothing; /readyz says
// why it is not ready; the next reload, a minute on, that still says so is
// believed.
func TestEmptyListIsHeldBack(t *testing.T) {
	r := newRig(t)
	ed := &editing{Fetcher: r.client}
	m := NewMetrics(nil)
	var logs logBuffer
	w := r.warmer("a", func(c *Config) { c.Vista = ed }, withMetrics(m), withLog(&logs))
	r.step(w)
	count := len(w.st.cache[keys.Sessions])
	n := len(r.events())

	ed.sessions = func([]vista.Session) ([]vista.Session, error) { return []vista.Session{}, nil }
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatal(err)
	}
	if evs := r.eventsSince(n); len(evs) != 0 {
		t.Fatalf("an empty list sent %d events, first %+v", len(evs), evs[0])
	}
	if got, _ := r.rdb.ZCard(r.ctx, keys.Index(r.prefix, keys.Sessions)).Result(); int(got) != count {
		t.Fatalf("P:sessions holds %d, want all %d still", got, count)
	}
	ready, reason := w.Readiness(r.ctx)
	if ready || !strings.Contains(reason, "holding back a drop of sessions") {
		t.Errorf("Readiness = %v %q, want not ready, holding back a drop of sessions", ready, reason)
	}
	if got := testutil.ToFloat64(m.dropHeld.WithLabelValues("sessions")); got != 1 {
		t.Errorf("vista_warmer_drop_held{sessions} = %v, want 1", got)
	}
	if len(logs.lines(`msg="holding back a drop`)) != 1 {
		t.Errorf("want one warning; log:\n%s", logs.lines(""))
	}

	// Half a minute on, still empty: still held.
	r.clock.Add(30 * time.Second)
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatal(err)
	}
	if evs := r.eventsSince(n); len(evs) != 0 {
		t.Fatalf("a second empty list within the minute sent %d events", len(evs))
	}
	// Step schedules the next reload within a minute of the hold, not at
	// the hourly schedule.
	if next := w.st.kinds[keys.Sessions].next; next.After(r.clock.Now().Add(ConfirmDropAfter)) {
		t.Errorf("next sessions reload in %v, want within %v", next.Sub(r.clock.Now()), ConfirmDropAfter)
	}

	// A minute after the hold, Vista says the same: believed.
	r.clock.Add(31 * time.Second)
	r.step(w)
	removed := byEvent(r.eventsSince(n), keys.Sessions, keys.EventRemoved)
	if len(removed) != count {
		t.Errorf("%d removed_item, want %d", len(removed), count)
	}
	if ready, reason := w.Readiness(r.ctx); !ready {
		t.Errorf("Readiness = %v %q after the drop was applied, want ready", ready, reason)
	}
	if got := testutil.ToFloat64(m.dropHeld.WithLabelValues("sessions")); got != 0 {
		t.Errorf("vista_warmer_drop_held{sessions} = %v, want 0", got)
	}
	if got := testutil.ToFloat64(m.dropsHeld.WithLabelValues("sessions")); got != 1 {
		t.Errorf("vista_warmer_drops_held_total{sessions} = %v, want 1", got)
	}
	r.assertSeqContiguous()
}

// TestGlitchIsForgotten: Vista answers one list empty, then whole again:
// nothing is ever removed, and the hold ends.
func TestGlitchIsForgotten(t *testing.T) {
	r := newRig(t)
	ed := &editing{Fetcher: r.client}
	w := r.warmer("a", func(c *Config) { c.Vista = ed })
	r.step(w)
	n := len(r.events())
	ed.sessions = func([]vista.Session) ([]vista.Session, error) { return nil, nil }
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatal(err)
	}
	ed.sessions = nil
	r.clock.Add(2 * time.Minute)
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatal(err)
	}
	for _, ev := range byEvent(r.eventsSince(n), keys.Sessions, keys.EventRemoved) {
		if ev.Reason != keys.ReasonExpired {
			t.Errorf("a glitch removed %+v", ev)
		}
	}
	if ready, reason := w.Readiness(r.ctx); !ready {
		t.Errorf("Readiness = %v %q, want ready once Vista answers whole again", ready, reason)
	}
}

// TestRealDropIsAppliedOnTheSecondReload: a cinema closes half its screens;
// with --max-drop 10% the drop is held, then applied by the first reload a
// minute or more later, which agrees.
func TestRealDropIsAppliedOnTheSecondReload(t *testing.T) {
	r := newRig(t)
	ed := &editing{Fetcher: r.client}
	w := r.warmer("a", func(c *Config) { c.Vista = ed; c.MaxDrop = 0.10 })
	r.step(w)
	cinema := r.sim.CinemaIDs()[0]
	closed := func(s vista.Session) bool { return s.CinemaID == cinema && s.ScreenNumber == 1 }
	end := r.clock.Now().Add(time.Hour + ConfirmDropAfter)
	var want []string // what the closed screen still shows when the drop is applied
	for _, rec := range w.st.cache[keys.Sessions] {
		if rec.vals.get(sCinemaID) == cinema && rec.vals.get(7) == "1" && rec.showtime.time().Add(w.cfg.Policy.Grace).After(end) {
			want = append(want, rec.vals.get(0))
		}
	}
	total := len(w.st.cache[keys.Sessions])
	if f := float64(len(want)) / float64(total); f <= 0.10 || f >= 0.5 {
		t.Fatalf("the closed screen holds %d of %d sessions; the test wants between 10%% and 50%%", len(want), total)
	}
	ed.sessions = func(list []vista.Session) ([]vista.Session, error) { return keep(list, closed), nil }
	n := len(r.events())
	r.clock.Add(time.Hour) // the hourly reload
	r.step(w)
	for _, ev := range byEvent(r.eventsSince(n), keys.Sessions, keys.EventRemoved) {
		if ev.Reason != keys.ReasonExpired {
			t.Fatalf("the first reload removed %+v, want the drop held back", ev)
		}
	}
	if full := byEvent(r.eventsSince(n), keys.Sessions, keys.EventFullReload); len(full) != 0 {
		t.Errorf("a reload with a drop held back sent full_reload")
	}
	r.clock.Add(ConfirmDropAfter)
	r.step(w)
	var got []string
	for _, ev := range byEvent(r.eventsSince(n), keys.Sessions, keys.EventRemoved) {
		if ev.Reason == keys.ReasonGone {
			got = append(got, ev.ID)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("removed %d sessions, want the closed screen's %d", len(got), len(want))
	}
	if full := byEvent(r.eventsSince(n), keys.Sessions, keys.EventFullReload); len(full) != 1 || *full[0].Count != w.count(keys.Sessions) {
		t.Errorf("full_reload events %+v, want one counting %d", full, w.count(keys.Sessions))
	}
	r.assertSeqContiguous()
}

// TestEmptyCinemasAndFilmsAreHeldBack: the same guard for the other kinds.
func TestEmptyCinemasAndFilmsAreHeldBack(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a")
	r.step(w)
	n := len(r.events())
	for _, id := range r.sim.CinemaIDs() {
		r.sim.RemoveCinema(id)
	}
	for _, id := range r.sim.FilmIDs() {
		r.sim.RemoveFilm(id)
	}
	for _, k := range []keys.Kind{keys.Cinemas, keys.Films} {
		if err := r.reload(w, k); err != nil {
			t.Fatal(err)
		}
		if got, _ := r.rdb.SCard(r.ctx, keys.Index(r.prefix, k)).Result(); got == 0 {
			t.Errorf("%s: the index was emptied", k)
		}
	}
	if evs := r.eventsSince(n); len(evs) != 0 {
		t.Errorf("empty lists sent %d events", len(evs))
	}
	_, reason := w.Readiness(r.ctx)
	if !strings.Contains(reason, "cinemas") || !strings.Contains(reason, "films") {
		t.Errorf("Readiness reason %q, want it to name cinemas and films", reason)
	}
}

// TestUnsafeIDsAreRefused: ids that would land on another key are row
// errors, logged once per reload with a count, never written.
func TestUnsafeIDsAreRefused(t *testing.T) {
	in := &injector{}
	r := newRigWith(t, rigOptions{front: in.front})
	cinema := r.sim.CinemaIDs()[0]
	film := r.sim.FilmIDs()[0]
	in.set("Cinemas", `{"ID":"`+cinema+`:sessions","Name":"evil"}`, `{"ID":"{x}","Name":"tagged"}`, `{"ID":"","Name":"blank"}`)
	in.set("ScheduledFilms", `{"ScheduledFilmId":"`+film+`:sessions","CinemaId":"`+cinema+`","Title":"evil"}`)
	in.set("Sessions",
		`{"ID":"`+cinema+`-1 2","CinemaId":"`+cinema+`","Showtime":"2030-01-01T20:00:00"}`,
		`{"ID":"`+cinema+`-999999","CinemaId":"`+cinema+`:x","Showtime":"2030-01-01T20:00:00"}`)
	m := NewMetrics(nil)
	var logs logBuffer
	w := r.warmer("a", withMetrics(m), withLog(&logs))
	r.step(w)

	for _, key := range []string{keys.CinemaSessions(r.prefix, cinema), keys.FilmSessions(r.prefix, film)} {
		if typ := r.rdb.Type(r.ctx, key).Val(); typ != "zset" {
			t.Errorf("%s is a %s, want the zset index", key, typ)
		}
	}
	for _, k := range []keys.Kind{keys.Cinemas, keys.Films, keys.Sessions} {
		var members []string
		if k == keys.Sessions {
			members = r.rdb.ZRange(r.ctx, keys.Index(r.prefix, k), 0, -1).Val()
		} else {
			members = r.rdb.SMembers(r.ctx, keys.Index(r.prefix, k)).Val()
		}
		for _, id := range members {
			if vista.CheckID(id) != nil {
				t.Errorf("%s lists %q", keys.Index(r.prefix, k), id)
			}
		}
	}
	want := map[string]float64{"cinemas": 3, "films": 1, "sessions": 2}
	for kind, n := range want {
		if got := testutil.ToFloat64(m.badRows.WithLabelValues(kind, badUnsafeID)); got != n {
			t.Errorf("rows_refused_total{%s,unsafe_id} = %v, want %v", kind, got, n)
		}
	}
	// One line per kind, in the order the lists came in.
	lines := logs.lines("cannot be cached")
	if len(lines) != 3 || !slices.ContainsFunc(lines, func(l string) bool {
		return strings.Contains(l, "kind=cinemas") && strings.Contains(l, "unsafe_id=3")
	}) {
		t.Errorf("log lines about refused rows: %q, want one per kind, cinemas counting 3", lines)
	}
	// Later reloads leave cinema 1001's index as it is.
	before := r.rdb.ZCard(r.ctx, keys.CinemaSessions(r.prefix, cinema)).Val()
	for _, k := range keys.Kinds {
		if err := r.reload(w, k); err != nil {
			t.Fatal(err)
		}
	}
	if after := r.rdb.ZCard(r.ctx, keys.CinemaSessions(r.prefix, cinema)).Val(); after != before || after == 0 {
		t.Errorf("cinema %s's index went from %d to %d members", cinema, before, after)
	}
}

// TestUnsafeIDLeftByAnEarlierVersion: a cache written before ids were
// checked holds cinema "1001:sessions", whose hash sits on cinema 1001's
// index key. The warmer removes the entity without deleting that key, and
// writes the index anew.
func TestUnsafeIDLeftByAnEarlierVersion(t *testing.T) {
	r := newRig(t)
	a := r.warmer("a")
	r.step(a)
	r.stop(a)
	cinema := r.sim.CinemaIDs()[0]
	evil := cinema + ":sessions"
	idx := keys.CinemaSessions(r.prefix, cinema)
	r.rdb.SAdd(r.ctx, keys.Index(r.prefix, keys.Cinemas), evil)
	r.rdb.Del(r.ctx, idx)
	r.rdb.HSet(r.ctx, keys.Cinema(r.prefix, evil), "id", evil, "name", "evil")

	n := len(r.events())
	b := r.warmer("b")
	r.step(b)
	evs := forID(r.eventsSince(n), evil)
	if len(evs) != 1 || evs[0].Event != keys.EventRemoved || evs[0].Reason != keys.ReasonGone {
		t.Errorf("events for %q: %+v, want one removed_item gone", evil, evs)
	}
	if typ := r.rdb.Type(r.ctx, idx).Val(); typ != "zset" || r.rdb.ZCard(r.ctx, idx).Val() == 0 {
		t.Errorf("%s is a %s of %d, want cinema %s's sessions", idx, typ, r.rdb.ZCard(r.ctx, idx).Val(), cinema)
	}
	if r.rdb.SIsMember(r.ctx, keys.Index(r.prefix, keys.Cinemas), evil).Val() {
		t.Errorf("P:cinemas still lists %q", evil)
	}
}

// TestIndexesMend breaks every kind of index and shows the next reload
// mending it: missing and extra members and wrong scores while the writer
// runs, keys of another type too.
func TestIndexesMend(t *testing.T) {
	defer func(n int64) { readPage = n }(readPage)
	readPage = 7 // read the indexes in many round trips
	r := newRig(t)
	m := NewMetrics(nil)
	w := r.warmer("a", withMetrics(m))
	r.step(w)
	cinema := r.sim.CinemaIDs()[1]
	films := r.sim.FilmIDs()
	sessions := r.rdb.ZRange(r.ctx, keys.Index(r.prefix, keys.Sessions), 0, -1).Val()
	cinemaIdx := keys.CinemaSessions(r.prefix, cinema)
	filmIdx := keys.FilmSessions(r.prefix, films[0])
	inCinema := r.rdb.ZRange(r.ctx, cinemaIdx, 0, -1).Val()
	inFilm := r.rdb.ZRange(r.ctx, filmIdx, 0, -1).Val()

	// Missing members, extra members, a wrong score.
	r.rdb.SRem(r.ctx, keys.Index(r.prefix, keys.Films), films[1])
	r.rdb.SAdd(r.ctx, keys.Index(r.prefix, keys.Films), "HO-stray")
	r.rdb.SRem(r.ctx, keys.Index(r.prefix, keys.Cinemas), cinema)
	// The last sessions by showtime, which no expiry takes meanwhile.
	far := float64(r.clock.Now().Add(30 * 24 * time.Hour).Unix())
	r.rdb.ZRem(r.ctx, keys.Index(r.prefix, keys.Sessions), sessions[len(sessions)-1], sessions[len(sessions)-2])
	r.rdb.ZAdd(r.ctx, keys.Index(r.prefix, keys.Sessions), redisZ("1001-stray", far))
	r.rdb.ZRem(r.ctx, cinemaIdx, inCinema[len(inCinema)-1])
	r.rdb.ZAdd(r.ctx, cinemaIdx, redisZ("9999-stray", far))
	r.rdb.ZAdd(r.ctx, filmIdx, redisZ(inFilm[len(inFilm)-1], far))
	n := len(r.events())
	for _, k := range keys.Kinds {
		if err := r.reload(w, k); err != nil {
			t.Fatal(err)
		}
	}
	r.assertIndexesAgree(w)
	if evs := r.eventsSince(n); len(byEvent(evs, keys.Films, keys.EventItem))+len(byEvent(evs, keys.Cinemas, keys.EventItem)) != 0 {
		t.Errorf("mending an index sent item events: %+v", evs)
	}
	mended := func() float64 {
		var n float64
		for _, k := range keys.Kinds {
			n += testutil.ToFloat64(m.repairs.WithLabelValues(string(k), repairIndex))
		}
		return n
	}
	if got := mended(); got < 5 {
		t.Errorf("repairs_total{what=index} = %v, want at least 5", got)
	}

	// Mended once: the next reloads mend nothing.
	before := mended()
	for _, k := range keys.Kinds {
		if err := r.reload(w, k); err != nil {
			t.Fatal(err)
		}
	}
	if after := mended(); after != before {
		t.Errorf("reloads after the repair mended %v more", after-before)
	}

	// Keys of another type: a write that meets one fails, and the writer
	// reads the cache again and mends the indexes before it writes again.
	// One step may fail; the next goes through.
	r.rdb.Del(r.ctx, keys.Index(r.prefix, keys.Cinemas))
	r.rdb.Set(r.ctx, keys.Index(r.prefix, keys.Cinemas), "oops", 0)
	r.rdb.Del(r.ctx, keys.FilmSessions(r.prefix, films[1]))
	r.rdb.HSet(r.ctx, keys.FilmSessions(r.prefix, films[1]), "not", "an index")
	r.clock.Add(25 * time.Hour)
	if err := r.settle(w); err != nil {
		t.Logf("first step: %v", err)
	}
	r.step(w)
	r.assertIndexesAgree(w)
	if typ := r.rdb.Type(r.ctx, keys.FilmSessions(r.prefix, films[1])).Val(); typ != "zset" && typ != "none" {
		t.Errorf("film %s's index is a %s", films[1], typ)
	}
	r.assertSeqContiguous()
}

// assertIndexesAgree checks every index against the writer's cache.
func (r *rig) assertIndexesAgree(w *Warmer) {
	r.t.Helper()
	for _, k := range []keys.Kind{keys.Cinemas, keys.Films} {
		got := r.rdb.SMembers(r.ctx, keys.Index(r.prefix, k)).Val()
		if want := sortedKeys(w.st.cache[k]); !sameSet(got, want) {
			r.t.Errorf("%s = %v, want %v", keys.Index(r.prefix, k), got, want)
		}
	}
	want := map[string]map[string]float64{}
	for id, rec := range w.st.cache[keys.Sessions] {
		score := float64(rec.showtime.time().Unix())
		for _, idx := range []string{keys.Index(r.prefix, keys.Sessions), keys.CinemaSessions(r.prefix, rec.vals.get(sCinemaID)), keys.FilmSessions(r.prefix, rec.vals.get(sFilmID))} {
			if want[idx] == nil {
				want[idx] = map[string]float64{}
			}
			want[idx][id] = score
		}
	}
	for idx, members := range want {
		got := map[string]float64{}
		for _, z := range r.rdb.ZRangeWithScores(r.ctx, idx, 0, -1).Val() {
			got[z.Member.(string)] = z.Score
		}
		if !maps.Equal(got, members) {
			r.t.Errorf("%s holds %d members, want %d; it differs from the cache", idx, len(got), len(members))
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestOversizeAndOutOfRange: a huge value, a raw row past 64 KiB with
// --keep-raw, and showtimes a day past or 400 days ahead are refused; what
// the cache held for them stays.
func TestOversizeAndOutOfRange(t *testing.T) {
	in := &injector{}
	r := newRigWith(t, rigOptions{front: in.front})
	m := NewMetrics(nil)
	w := r.warmer("a", withMetrics(m), func(c *Config) { c.KeepRaw = true })
	r.step(w)
	cinema := r.sim.CinemaIDs()[0]
	s := r.upcoming(2*time.Hour, 40*time.Hour)
	before := r.hash(keys.Sessions, s.ID)
	now := r.clock.Now()
	wall := func(t time.Time) string { return t.Format("2006-01-02T15:04:05") } // in the cinema's zone
	in.set("Sessions",
		// The same session again, last, with a 5 KB screen name.
		`{"ID":"`+s.ID+`","CinemaId":"`+s.CinemaID+`","Showtime":"`+wall(s.Showtime)+`","ScreenName":"`+strings.Repeat("x", 5000)+`"}`,
		`{"ID":"`+cinema+`-800001","CinemaId":"`+cinema+`","Showtime":"`+wall(now.Add(-49*time.Hour))+`"}`,
		`{"ID":"`+cinema+`-800002","CinemaId":"`+cinema+`","Showtime":"`+wall(now.Add(500*24*time.Hour))+`"}`,
	)
	in.set("Cinemas", `{"ID":"7777","Name":"big","Description":"`+strings.Repeat("d", 70<<10)+`"}`)
	for _, k := range []keys.Kind{keys.Cinemas, keys.Sessions} {
		if err := r.reload(w, k); err != nil {
			t.Fatal(err)
		}
	}
	if h := r.hash(keys.Sessions, s.ID); h["screen_name"] != before["screen_name"] || len(h["screen_name"]) > 100 {
		t.Errorf("screen_name = %.40q..., want %q kept", h["screen_name"], before["screen_name"])
	}
	for _, id := range []string{cinema + "-800001", cinema + "-800002"} {
		if n := r.rdb.Exists(r.ctx, keys.Session(r.prefix, id)).Val(); n != 0 {
			t.Errorf("session %s with its showtime out of range was written", id)
		}
	}
	if n := r.rdb.Exists(r.ctx, keys.Cinema(r.prefix, "7777")).Val(); n != 0 {
		t.Error("a cinema of 70 KB was written")
	}
	for _, c := range []struct {
		kind, reason string
		want         float64
	}{{"sessions", badTooLarge, 1}, {"sessions", badOutOfRange, 2}, {"cinemas", badTooLarge, 1}} {
		if got := testutil.ToFloat64(m.badRows.WithLabelValues(c.kind, c.reason)); got != c.want {
			t.Errorf("rows_refused_total{%s,%s} = %v, want %v", c.kind, c.reason, got, c.want)
		}
	}
}

// TestBodyTooLargeChangesNothing: an answer past the client's bound is an
// upstream error; the reload changes nothing.
func TestBodyTooLargeChangesNothing(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a")
	r.step(w)
	small, err := vista.New(vista.Config{BaseURL: r.vistaURL, MaxBodyBytes: 4 << 10, MaxRetries: -1,
		Zones: vista.Zones{Default: time.UTC}})
	if err != nil {
		t.Fatal(err)
	}
	w.cfg.Vista = small
	n := len(r.events())
	r.sim.SetSeats(r.upcoming(2*time.Hour, 40*time.Hour).ID, 0)
	err = r.reload(w, keys.Sessions)
	if err == nil || !strings.Contains(err.Error(), "allowed") {
		t.Fatalf("Reload = %v, want an error about the answer's size", err)
	}
	if evs := r.eventsSince(n); len(evs) != 0 {
		t.Errorf("a reload whose answer was too large sent %d events", len(evs))
	}
	if ready, reason := w.Readiness(r.ctx); !ready {
		t.Errorf("Readiness = %v %q; a failed reload keeps the cache as it was", ready, reason)
	}
}

// TestDuplicateRows: the last row of an id wins, and one log line and a
// metric say how many ids came twice.
func TestDuplicateRows(t *testing.T) {
	in := &injector{}
	r := newRigWith(t, rigOptions{front: in.front})
	m := NewMetrics(nil)
	var logs logBuffer
	w := r.warmer("a", withMetrics(m), withLog(&logs))
	r.step(w)
	s := r.upcoming(2*time.Hour, 40*time.Hour)
	wall := s.Showtime.Format("2006-01-02T15:04:05") // in the cinema's zone
	in.set("Sessions",
		`{"ID":"`+s.ID+`","CinemaId":"`+s.CinemaID+`","ScheduledFilmId":"`+s.FilmID+`","Showtime":"`+wall+`","SeatsAvailable":3}`,
		`{"ID":"`+s.ID+`","CinemaId":"`+s.CinemaID+`","ScheduledFilmId":"`+s.FilmID+`","Showtime":"`+wall+`","SeatsAvailable":4}`)
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatal(err)
	}
	if got := r.hash(keys.Sessions, s.ID)["seats_available"]; got != "4" {
		t.Errorf("seats_available = %s, want the last row's 4", got)
	}
	if got := testutil.ToFloat64(m.duplicates.WithLabelValues("sessions")); got != 2 {
		t.Errorf("duplicate_rows_total{sessions} = %v, want 2", got)
	}
	if lines := logs.lines("more than once"); len(lines) != 1 || !strings.Contains(lines[0], "duplicates=2") {
		t.Errorf("log: %q, want one line counting 2", lines)
	}
}

// TestABuildTakesBackWhatALaterRowCancels: a build from nothing writes
// its list as it comes, so a row may be in Redis before a later row of
// the same id says otherwise. A session that the later row calls
// cancelled is gone once the build is in, hash and index entry; one that
// the later row lists again stays, as the later row has it.
func TestABuildTakesBackWhatALaterRowCancels(t *testing.T) {
	in := &injector{}
	r := newRigWith(t, rigOptions{front: in.front})
	m := NewMetrics(nil)
	w := r.warmer("a", withMetrics(m))
	w.chunk = 1 // every row handed over as it comes, before the rows appended to the last page
	cancelled := r.upcoming(2*time.Hour, 40*time.Hour)
	var again vistasim.SessionInfo
	for _, s := range r.sim.Sessions() {
		if s.ID != cancelled.ID && s.Status != "X" && s.Showtime.Sub(r.clock.Now()) > 2*time.Hour {
			again = s
			break
		}
	}
	row := func(s vistasim.SessionInfo, more string) string {
		wall := s.Showtime.Format("2006-01-02T15:04:05") // in the cinema's zone
		return `{"ID":"` + s.ID + `","CinemaId":"` + s.CinemaID + `","ScheduledFilmId":"` + s.FilmID + `","Showtime":"` + wall + `",` + more + `}`
	}
	in.set("Sessions", row(cancelled, `"SeatsAvailable":3,"Status":"C"`), row(again, `"SeatsAvailable":7`))
	r.step(w)

	// Written first, then removed: else the later row met the earlier
	// one before either was handed over, and the test tests nothing.
	if got := testutil.ToFloat64(m.changes.WithLabelValues("sessions", outRemoved)); got != 1 {
		t.Errorf("%v sessions removed by the build, want 1: the cancelled one, written from its first row", got)
	}
	if h := r.hash(keys.Sessions, cancelled.ID); len(h) != 0 {
		t.Errorf("the session a later row cancelled is in Redis after the build: %v", h)
	}
	index := keys.Index(r.prefix, keys.Sessions)
	if err := r.rdb.ZScore(r.ctx, index, cancelled.ID).Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("the index lists the session a later row cancelled (ZSCORE: %v)", err)
	}
	if got := r.hash(keys.Sessions, again.ID)["seats_available"]; got != "7" {
		t.Errorf("seats_available = %q for the session listed again, want the later row's 7", got)
	}
	if err := r.rdb.ZScore(r.ctx, index, again.ID).Err(); err != nil {
		t.Errorf("the index does not list the session listed again: %v", err)
	}
}

// TestNeverHalfWritten: a hash Redis lost is written whole again, and at
// no moment is there a hash of a few bookkeeping fields.
func TestNeverHalfWritten(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a", func(c *Config) { c.BatchSize = 1 })
	r.step(w)
	s := r.upcoming(2*time.Hour, 40*time.Hour)
	key := keys.Session(r.prefix, s.ID)
	watch, _ := MustRedis(t)
	var seen []int64
	var mu sync.Mutex
	r.rdb.AddHook(afterPipeline(func() {
		n := watch.HLen(r.ctx, key).Val()
		mu.Lock()
		seen = append(seen, n)
		mu.Unlock()
	}))
	r.rdb.Del(r.ctx, key) // evicted
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, n := range seen {
		if n != 0 && n < int64(len(baseFields[keys.Sessions])) {
			t.Fatalf("the hash had %d fields at one moment; HLEN after each transaction: %v", n, seen)
		}
	}
	if h := r.hash(keys.Sessions, s.ID); h["id"] != s.ID || h["showtime"] == "" || h["next_check_at"] == "" {
		t.Errorf("hash %v, want it whole again", h)
	}
}

// TestExtraFields: --session-fields and friends copy Vista fields into the
// hashes under snake_case names; they count as values.
func TestExtraFields(t *testing.T) {
	fields := vista.Fields{
		Cinemas:  []string{"HOPK", "IsGiftStoreEnabled"},
		Films:    []string{"TrailerUrl"},
		Sessions: []string{"AllowTicketSales", "SalesChannels", "AreaCategoryCodes"},
	}
	r := newRigWith(t, rigOptions{client: func(c *vista.Config) { c.Fields = fields }})
	ed := &editing{Fetcher: r.client}
	w := r.warmer("a", func(c *Config) { c.Vista = ed; c.Fields = fields })
	r.step(w)
	s := r.upcoming(2*time.Hour, 40*time.Hour)
	h := r.hash(keys.Sessions, s.ID)
	if h["allow_ticket_sales"] != "true" || h["sales_channels"] != ";CALL;RSP;GSALE;CELL;KIOSK;PDA;WWW;POSBK;POS;IVR;" || h["area_category_codes"] != `["0000000001"]` {
		t.Errorf("session %v, want the extra fields", h)
	}
	film := r.sim.FilmIDs()[0]
	if got := r.hash(keys.Films, film)["trailer_url"]; got != "https://trailers.example.com/"+film+".mp4" {
		t.Errorf("film trailer_url = %q", got)
	}
	if h := r.hash(keys.Cinemas, r.sim.CinemaIDs()[0]); h["hopk"] == "" || (h["is_gift_store_enabled"] != "true" && h["is_gift_store_enabled"] != "false") {
		t.Errorf("cinema %v, want hopk and is_gift_store_enabled", h)
	}
	n := len(r.events())
	ed.sessions = func(list []vista.Session) ([]vista.Session, error) {
		for i := range list {
			if list[i].ID == s.ID {
				list[i].Extra[1] = ";WWW;"
			}
		}
		return list, nil
	}
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatal(err)
	}
	evs := forID(r.eventsSince(n), s.ID)
	if len(evs) != 1 || !slices.Equal(evs[0].Changed, []string{"sales_channels"}) {
		t.Errorf("events %+v, want one item changing sales_channels", evs)
	}
}

// TestNewFieldsAreFilledQuietly: a cache written without state (an earlier
// version) or without an extra field asked for now gets them at the next
// reload, with no events; a field no longer asked for is deleted.
func TestNewFieldsAreFilledQuietly(t *testing.T) {
	fields := vista.Fields{Sessions: []string{"AllowTicketSales"}}
	r := newRigWith(t, rigOptions{client: func(c *vista.Config) { c.Fields = fields }})
	a := r.warmer("a")
	r.step(a)
	r.stop(a)
	ids := r.rdb.ZRange(r.ctx, keys.Index(r.prefix, keys.Sessions), 0, -1).Val()
	for _, id := range ids {
		r.rdb.HDel(r.ctx, keys.Session(r.prefix, id), "state")
		r.rdb.HSet(r.ctx, keys.Session(r.prefix, id), "old_extra", "x")
	}
	n := len(r.events())
	b := r.warmer("b", func(c *Config) { c.Fields = fields })
	r.step(b)
	if items := byEvent(r.eventsSince(n), keys.Sessions, keys.EventItem); len(items) != 0 {
		t.Errorf("filling in new fields sent %d item events, first %+v", len(items), items[0])
	}
	for _, id := range ids {
		h := r.hash(keys.Sessions, id)
		if len(h) == 0 {
			continue // expired meanwhile
		}
		if h["state"] != "open" && h["state"] != "closed" || h["allow_ticket_sales"] != "true" {
			t.Fatalf("session %s: %v, want state and allow_ticket_sales filled in", id, h)
		}
		if _, ok := h["old_extra"]; ok {
			t.Fatalf("session %s still has old_extra", id)
		}
	}
}

// afterPipeline is a go-redis hook that calls f after each pipeline or
// transaction.
type afterPipeline func()

func (f afterPipeline) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (f afterPipeline) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (f afterPipeline) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		f()
		return err
	}
}

func redisZ(member string, score float64) redis.Z { return redis.Z{Score: score, Member: member} }

// TestOtherKeysOfTheLayoutMend: P:meta, P:events and P:lease holding
// another type stop nothing for long: a writer builds anew, deletes the
// stream's stray key, and takes a lease nobody could hold.
func TestOtherKeysOfTheLayoutMend(t *testing.T) {
	r := newRig(t)
	a := r.warmer("a")
	r.step(a)
	r.stop(a)
	r.rdb.Del(r.ctx, keys.Meta(r.prefix), keys.Stream(r.prefix))
	r.rdb.Set(r.ctx, keys.Meta(r.prefix), "oops", 0)
	r.rdb.Set(r.ctx, keys.Stream(r.prefix), "oops", 0)
	r.rdb.HSet(r.ctx, keys.Lease(r.prefix), "held", "by nobody")
	b := r.warmer("b")
	if err := r.settle(b); err != nil {
		t.Logf("first step: %v", err)
	}
	r.step(b)
	if b.Role() != "writer" {
		t.Fatalf("role %s, want writer", b.Role())
	}
	for key, want := range map[string]string{keys.Meta(r.prefix): "hash", keys.Stream(r.prefix): "stream", keys.Lease(r.prefix): "string"} {
		if typ := r.rdb.Type(r.ctx, key).Val(); typ != want {
			t.Errorf("%s is a %s, want a %s", key, typ, want)
		}
	}
	if ready, reason := b.Readiness(r.ctx); !ready {
		t.Errorf("not ready: %s", reason)
	}
	r.assertSeqContiguous()
}

// TestHalfThenEmptyKeepsTheRest: a half list is held back; a minute later
// Vista answers with nothing. The half both reloads dropped goes; the rest
// is judged against what is left, and held back.
func TestHalfThenEmptyKeepsTheRest(t *testing.T) {
	r := newRig(t)
	ed := &editing{Fetcher: r.client}
	w := r.warmer("a", func(c *Config) { c.Vista = ed })
	r.step(w)
	ids := sortedKeys(w.st.cache[keys.Sessions])
	kept := map[string]bool{}
	for _, id := range ids[:len(ids)*49/100] {
		kept[id] = true
	}
	ed.sessions = func(list []vista.Session) ([]vista.Session, error) {
		return keep(list, func(s vista.Session) bool { return !kept[s.ID] }), nil
	}
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatal(err)
	}
	if w.st.kinds[keys.Sessions].held == nil {
		t.Fatal("a list of 49% was not held back")
	}
	ed.sessions = func([]vista.Session) ([]vista.Session, error) { return []vista.Session{}, nil }
	r.clock.Add(ConfirmDropAfter)
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatal(err)
	}
	if n := r.rdb.ZCard(r.ctx, keys.Index(r.prefix, keys.Sessions)).Val(); int(n) != len(kept) {
		t.Errorf("P:sessions holds %d, want the %d the first list kept", n, len(kept))
	}
	if w.st.kinds[keys.Sessions].held == nil {
		t.Error("the rest of an empty list was not held back")
	}
	r.assertSeqContiguous()
}

// TestScriptCacheLost: Redis forgets its scripts (a restart with
// persistence, a failover, SCRIPT FLUSH); the next write still writes the
// hash with its event, once.
func TestScriptCacheLost(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a")
	s := r.nearSession(w)
	if err := r.rdb.ScriptFlush(r.ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r.sim.SetSeats(s.ID, 3)
	n := len(r.events())
	r.checkNow(w)
	for range 3 {
		r.checkNow(w)
	}
	evs := byEvent(forID(r.eventsSince(n), s.ID), keys.Sessions, keys.EventItem)
	if len(evs) != 1 || *evs[0].SeatsAvailable != 3 {
		t.Errorf("one seat change gave item events %+v, want one with 3 seats", evs)
	}
	if got := r.hash(keys.Sessions, s.ID)["seats_available"]; got != "3" {
		t.Errorf("seats_available = %s, want 3", got)
	}
	r.assertSeqContiguous()
}

// TestRawSurvivesAWholeRewrite: with --keep-raw, a hash Redis lost and a
// seat check wrote whole again (a seat check carries no row) gets its raw
// back at the next reload, even when Vista's row is as it was.
func TestRawSurvivesAWholeRewrite(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a", func(c *Config) { c.KeepRaw = true })
	s := r.nearSession(w)
	seats := r.hash(keys.Sessions, s.ID)["seats_available"]
	n, _ := strconv.Atoi(seats)
	r.sim.SetSeats(s.ID, n) // from now on, the row stays as it was loaded
	r.rdb.Del(r.ctx, keys.Session(r.prefix, s.ID))
	r.sim.SetSeats(s.ID, n-1)
	r.checkNow(w) // an update of a lost hash: written whole, without raw
	if h := r.hash(keys.Sessions, s.ID); h["seats_available"] != strconv.Itoa(n-1) || h["showtime"] == "" {
		t.Fatalf("after the seat check: %v, want it whole with %d seats", h, n-1)
	}
	r.sim.SetSeats(s.ID, n) // Vista's row is as it was loaded, raw and all
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatal(err)
	}
	if raw := r.hash(keys.Sessions, s.ID)["raw"]; !strings.Contains(raw, s.ID) {
		t.Errorf("raw = %q after the next reload, want Vista's row", raw)
	}
}
