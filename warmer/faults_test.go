package warmer

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/internal/clocktest"
	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// assertSeqContiguous checks that the stream numbers events 1, 2, 3... in
// the current epoch, with no number twice.
func (r *rig) assertSeqContiguous() {
	r.t.Helper()
	evs := r.events()
	epoch := r.meta()["epoch"]
	var n int64
	for _, ev := range evs {
		if ev.Epoch != epoch {
			continue
		}
		n++
		if ev.Seq != n {
			r.t.Fatalf("event %+v: seq %d, want %d", ev, ev.Seq, n)
		}
	}
	if got := r.meta()["seq"]; got != strconv.FormatInt(n, 10) {
		r.t.Errorf("meta seq = %s, want %d", got, n)
	}
}

func TestPausedWriterThatGetsTheLeaseBack(t *testing.T) {
	r := newRig(t)
	ttl := time.Second
	a := r.warmer("a", func(c *Config) { c.LeaseTTL = ttl })
	b := r.warmer("b", func(c *Config) { c.LeaseTTL = ttl })
	r.step(a)
	r.pause(a)
	time.Sleep(ttl + 200*time.Millisecond) // past a's lease
	r.step(b)
	s := r.upcoming(time.Hour, 40*time.Hour)
	r.sim.SetSeats(s.ID, 1)
	if err := r.reload(b, keys.Sessions); err != nil { // b writes events
		t.Fatal(err)
	}
	r.stop(b)
	r.step(a) // a wakes and takes the free lease: it must read what b wrote
	r.sim.SetSeats(s.ID, 0)
	if err := r.reload(a, keys.Sessions); err != nil {
		t.Fatal(err)
	}
	r.assertSeqContiguous()
	if got := r.hash(keys.Sessions, s.ID)["seats_available"]; got != "0" {
		t.Errorf("seats_available = %q, want 0", got)
	}
}

func TestStaleWriterIsFenced(t *testing.T) {
	r := newRig(t)
	a := r.warmer("a")
	r.step(a)
	// Another writer moved seq while a kept the lease (an operator's
	// script, a split brain): a's next write must not go through.
	r.rdb.HIncrBy(r.ctx, keys.Meta(r.prefix), "seq", 1)
	r.sim.SetSeats(r.upcoming(time.Hour, 40*time.Hour).ID, 0)
	n := len(r.events())
	if err := r.reload(a, keys.Sessions); err == nil {
		t.Fatal("a reload on a cache that moved under the writer succeeded")
	}
	if got := len(r.events()); got != n {
		t.Errorf("the fenced reload published %d events", got-n)
	}
	r.step(a) // reads the cache again, then writes
	if got := len(r.events()); got == n {
		t.Error("after reading the cache again the writer wrote nothing")
	}
}

func TestWrongTypeKeyIsRepaired(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a")
	r.step(w)
	s := r.upcoming(time.Hour, 40*time.Hour)
	key := keys.Session(r.prefix, s.ID)
	r.rdb.Del(r.ctx, key)
	r.rdb.Set(r.ctx, key, "not a hash", 0)
	r.sim.SetSeats(s.ID, 2)
	// The update finds a string where the hash should be: it deletes it
	// and writes the hash whole, in the same transaction.
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatalf("a reload that met a key of another type: %v", err)
	}
	h := r.hash(keys.Sessions, s.ID)
	if h["seats_available"] != "2" || h["id"] != s.ID || h["showtime"] == "" || h["state"] != "open" {
		t.Errorf("after repair the session is %v", h)
	}
	if ttl := r.rdb.TTL(r.ctx, key).Val(); ttl <= 0 {
		t.Errorf("after repair the session's TTL is %v", ttl)
	}

	// A confirmation cannot write a hash whole: it leaves the key to the
	// add that follows in the same reload.
	r.rdb.Del(r.ctx, key)
	r.rdb.Set(r.ctx, key, "not a hash", 0)
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatalf("a reload that met a key of another type: %v", err)
	}
	if h := r.hash(keys.Sessions, s.ID); h["seats_available"] != "2" || h["id"] != s.ID || h["showtime"] == "" {
		t.Errorf("after repair the session is %v", h)
	}
	r.assertSeqContiguous()
}

func TestAdoptHalfBuiltCacheStaysQuiet(t *testing.T) {
	r := newRig(t)
	r.sim.Fail(vistasim.Failure{Mode: vistasim.FailStatus, Status: 500, Count: -1, Endpoint: vistasim.EndpointSessions})
	a := r.warmer("a")
	if err := r.settle(a); err == nil {
		t.Fatal("the first build succeeded with Vista's sessions failing")
	}
	r.stop(a)
	r.sim.ClearFailures()
	b := r.warmer("b")
	r.step(b)
	if items := byEvent(r.events(), keys.Sessions, keys.EventItem); len(items) != 0 {
		t.Errorf("finishing a build from nothing sent %d session item events", len(items))
	}
	if got := byEvent(r.events(), keys.Sessions, keys.EventFullReload); len(got) != 1 {
		t.Errorf("sessions full_reload events = %d, want 1", len(got))
	}
	r.assertSeqContiguous()
}

func TestVanishedKeysAreWrittenWhole(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a")
	r.step(w)
	film := r.sim.FilmIDs()[0]
	s := r.upcoming(2*time.Hour, 40*time.Hour)
	r.rdb.Del(r.ctx, keys.Film(r.prefix, film), keys.Session(r.prefix, s.ID))
	for _, k := range []keys.Kind{keys.Films, keys.Sessions} {
		if err := r.reload(w, k); err != nil {
			t.Fatal(err)
		}
	}
	if h := r.hash(keys.Films, film); h["id"] != film || h["title"] == "" || h["cinema_ids"] == "" {
		t.Errorf("film written back as %v", h)
	}
	h := r.hash(keys.Sessions, s.ID)
	if h["id"] != s.ID || h["showtime"] == "" || h["cinema_id"] != s.CinemaID {
		t.Errorf("session written back as %v", h)
	}
	if ttl := r.rdb.TTL(r.ctx, keys.Session(r.prefix, s.ID)).Val(); ttl <= 0 {
		t.Errorf("session written back with TTL %v", ttl)
	}
	r.assertSeqContiguous()
}

func TestRemovingAMissingHashCleansEveryIndex(t *testing.T) {
	r := newRig(t)
	a := r.warmer("a")
	r.step(a)
	r.stop(a)
	s := r.upcoming(2*time.Hour, 40*time.Hour)
	r.rdb.Del(r.ctx, keys.Session(r.prefix, s.ID)) // evicted while no warmer ran
	r.sim.Remove(s.ID)
	b := r.warmer("b")
	r.step(b)
	evs := forID(r.events(), s.ID)
	if len(evs) != 1 || evs[0].Reason != keys.ReasonGone {
		t.Errorf("events for %s = %+v, want removed_item gone", s.ID, evs)
	}
	r.assertSessionGone(s)
}

// editing wraps a Fetcher and edits what Vista said, for changes the
// simulated Vista does not make on its own.
type editing struct {
	Fetcher
	sessions func([]vista.Session) ([]vista.Session, error)
}

func (e editing) Sessions(ctx context.Context, zones map[string]*time.Location) ([]vista.Session, error) {
	list, err := e.Fetcher.Sessions(ctx, zones)
	if err != nil || e.sessions == nil {
		return list, err
	}
	return e.sessions(list)
}

func TestSessionMoves(t *testing.T) {
	r := newRig(t)
	ed := &editing{Fetcher: r.client}
	w := r.warmer("a", func(c *Config) { c.Vista = ed })
	r.step(w)
	s := r.upcoming(2*time.Hour, 40*time.Hour)
	other := r.sim.FilmIDs()[0]
	if other == s.FilmID {
		other = r.sim.FilmIDs()[1]
	}
	later := s.Showtime.Add(45 * time.Minute)
	ed.sessions = func(list []vista.Session) ([]vista.Session, error) {
		for i := range list {
			if list[i].ID == s.ID {
				list[i].Showtime = later
				list[i].FilmID = other
			}
		}
		return list, nil
	}
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatal(err)
	}
	evs := forID(r.events(), s.ID)
	if len(evs) != 1 || !slices.Equal(evs[0].Changed, []string{"film_id", "showtime"}) {
		t.Fatalf("events = %+v, want one item changing film_id and showtime", evs)
	}
	for _, idx := range []string{keys.Index(r.prefix, keys.Sessions), keys.CinemaSessions(r.prefix, s.CinemaID), keys.FilmSessions(r.prefix, other)} {
		if score, err := r.rdb.ZScore(r.ctx, idx, s.ID).Result(); err != nil || int64(score) != later.Unix() {
			t.Errorf("%s score = %v, %v, want %d", idx, score, err, later.Unix())
		}
	}
	if _, err := r.rdb.ZScore(r.ctx, keys.FilmSessions(r.prefix, s.FilmID), s.ID).Result(); err == nil {
		t.Errorf("the old film's index still lists %s", s.ID)
	}
	exp, _ := r.rdb.ExpireTime(r.ctx, keys.Session(r.prefix, s.ID)).Result()
	if want := later.Add(20 * time.Minute).Unix(); int64(exp/time.Second) != want {
		t.Errorf("EXPIRETIME = %v, want %d", exp, want)
	}
}

func TestBadRowsKeepWhatTheCacheHas(t *testing.T) {
	tests := []struct {
		name   string
		badID  string // "" for a bad row without a readable id
		wantOK bool   // whether the dropped session is still cached
	}{
		{"bad row with an id", "the dropped one", true},
		{"bad row without an id", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			ed := &editing{Fetcher: r.client}
			w := r.warmer("a", func(c *Config) { c.Vista = ed })
			r.step(w)
			s := r.upcoming(2*time.Hour, 40*time.Hour)
			gone := r.upcoming(s.Showtime.Sub(r.clock.Now())+time.Second, 60*time.Hour)
			ed.sessions = func(list []vista.Session) ([]vista.Session, error) {
				var out []vista.Session
				for _, x := range list {
					if x.ID != s.ID && x.ID != gone.ID {
						out = append(out, x)
					}
				}
				id := s.ID
				if tt.badID == "" {
					id = ""
				}
				return out, vista.RowErrors{{List: "sessions", Index: 3, ID: id, Field: "Showtime", Err: errBanana}}
			}
			n := len(r.events())
			if err := r.reload(w, keys.Sessions); err != nil {
				t.Fatal(err)
			}
			if len(r.hash(keys.Sessions, s.ID)) == 0 {
				t.Errorf("the session of the bad row was dropped")
			}
			removed := byEvent(r.eventsSince(n), keys.Sessions, keys.EventRemoved)
			if tt.badID == "" && len(removed) != 0 {
				t.Errorf("a reload with an unreadable row removed %+v", removed)
			}
			if tt.badID != "" && (len(removed) != 1 || removed[0].ID != gone.ID) {
				t.Errorf("removed = %+v, want only %s", removed, gone.ID)
			}
		})
	}
}

var errBanana = jsonError(`"banana" is not a date`)

type jsonError string

func (e jsonError) Error() string { return string(e) }

func TestPublishedEventFields(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a")
	r.step(w)
	film := r.sim.FilmIDs()[0]
	r.sim.RemoveFilm(film) // and its sessions
	s := r.upcoming(2*time.Hour, 40*time.Hour)
	r.sim.SetSeats(s.ID, 5)
	for _, k := range []keys.Kind{keys.Films, keys.Sessions} {
		if err := r.reload(w, k); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := r.rdb.XRange(r.ctx, keys.Stream(r.prefix), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"sessions/item":         {"seq", "epoch", "kind", "event", "id", "seats_available", "changed", "at"},
		"films/item":            {"seq", "epoch", "kind", "event", "id", "changed", "at"},
		"sessions/removed_item": {"seq", "epoch", "kind", "event", "id", "reason", "at"},
		"films/removed_item":    {"seq", "epoch", "kind", "event", "id", "reason", "at"},
		"sessions/full_reload":  {"seq", "epoch", "kind", "event", "count", "at"},
		"films/full_reload":     {"seq", "epoch", "kind", "event", "count", "at"},
		"cinemas/full_reload":   {"seq", "epoch", "kind", "event", "count", "at"},
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		data := m.Values["data"].(string)
		dec := json.NewDecoder(stringsReader(data))
		var names []string
		dec.Token()
		for dec.More() {
			tok, _ := dec.Token()
			names = append(names, tok.(string))
			var skip json.RawMessage
			dec.Decode(&skip)
		}
		shape := m.Values["kind"].(string) + "/" + m.Values["event"].(string)
		if w, ok := want[shape]; ok && !slices.Equal(names, w) {
			t.Errorf("%s has fields %v, want %v: %s", shape, names, w, data)
		}
		seen[shape] = true
	}
	for _, shape := range []string{"sessions/item", "films/removed_item", "sessions/full_reload"} {
		if !seen[shape] {
			t.Errorf("no %s event in %d", shape, len(msgs))
		}
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// TestChecksOfACinemaGoTogether runs at every instant of clocktest: the
// sessions it finds follow the hour.
func TestChecksOfACinemaGoTogether(t *testing.T) {
	clocktest.Each(t, testChecksOfACinemaGoTogether)
}

func testChecksOfACinemaGoTogether(t *testing.T, at time.Time) {
	r := newRigAt(t, at)
	w := r.warmer("a")
	r.step(w)
	// Two sessions of one cinema within the horizon of the same moment.
	a, b := r.pair(30*time.Minute, func(a, b vistasim.SessionInfo) bool { return a.CinemaID == b.CinemaID && b.Showtime.After(a.Showtime) })
	r.clock.Set(a.Showtime.Add(-20 * time.Minute))
	r.step(w)
	now := r.clock.Now()
	cache := w.st.cache[keys.Sessions]
	w.st.checker.reschedule(a.ID, cache[a.ID], now.Add(time.Second))
	w.st.checker.reschedule(b.ID, cache[b.ID], now.Add(3*time.Second)) // due within half a near interval of a
	r.sim.ResetRequests()
	r.clock.Add(time.Second)
	r.step(w)
	if got := r.sim.Requests()[vistasim.EndpointSeats]; got != 1 {
		t.Errorf("%d seat requests, want 1 for both sessions of cinema %s", got, a.CinemaID)
	}
	for _, id := range []string{a.ID, b.ID} {
		if next := w.st.cache[keys.Sessions][id].nextCheck.time(); !next.After(r.clock.Now().Add(time.Minute)) {
			t.Errorf("session %s was not checked: next check in %v", id, next.Sub(r.clock.Now()))
		}
	}
}

// Under memory pressure with an evicting policy, Redis may drop P:meta or
// P:lease while the cache's keys stay: neither is a lost cache.
func TestEvictedMetaAndLeaseAreNoLostCache(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a", func(c *Config) { c.Heartbeat = time.Millisecond })
	r.step(w)
	meta := r.meta()
	n := len(r.events())

	r.rdb.Del(r.ctx, keys.Meta(r.prefix))
	time.Sleep(2 * time.Millisecond)
	r.step(w) // the heartbeat finds P:meta gone
	r.step(w) // and the step writes it again
	after := r.meta()
	for _, f := range []string{"epoch", "seq", "schema", keys.Loaded(keys.Sessions)} {
		if after[f] != meta[f] {
			t.Errorf("P:meta %s = %q after it was evicted, want %q as before", f, after[f], meta[f])
		}
	}

	r.rdb.Del(r.ctx, keys.Lease(r.prefix))
	w.keep.lastRenew = time.Time{}
	r.step(w) // the lease is taken back
	if got := r.meta()["epoch"]; got != meta["epoch"] {
		t.Errorf("epoch %q after the lease was evicted, want %q", got, meta["epoch"])
	}
	if evs := r.eventsSince(n); len(evs) != 0 {
		t.Errorf("events after evictions: %+v, want none (no rebuild, no reload)", evs)
	}

	// Both gone at once, the indexes still there: the same.
	r.rdb.Del(r.ctx, keys.Meta(r.prefix), keys.Lease(r.prefix))
	w.keep.lastRenew = time.Time{}
	r.step(w)
	r.step(w)
	if got := r.meta(); got["epoch"] != meta["epoch"] || got["seq"] != meta["seq"] {
		t.Errorf("P:meta %v after P:meta and P:lease were evicted, want epoch %s seq %s", got, meta["epoch"], meta["seq"])
	}
}

// Seat checks that keep failing make the cache not ready (contract
// section 5): its seats are no longer fresh.
func TestFailingChecksMakeTheCacheNotReady(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a")
	r.step(w)
	s := r.upcoming(2*time.Hour, 40*time.Hour)
	r.clock.Set(s.Showtime.Add(-5 * time.Minute)) // near: checked every 10 s
	r.step(w)
	r.sim.Fail(vistasim.Failure{Mode: vistasim.FailStatus, Endpoint: vistasim.EndpointSeats, Count: -1})
	for i := 0; i < 8; i++ {
		r.clock.Add(10 * time.Second)
		r.settle(w)
	}
	ready, reason := w.Readiness(r.ctx)
	if ready || !strings.Contains(reason, "seat checks have failed for") {
		t.Fatalf("Readiness after 80 s of failing checks = %v %q, want not ready with the reason", ready, reason)
	}
	r.sim.ClearFailures()
	for i := 0; i < 2; i++ {
		r.clock.Add(10 * time.Second)
		r.step(w)
	}
	if ready, reason := w.Readiness(r.ctx); !ready {
		t.Errorf("Readiness once checks answer again = %v %q", ready, reason)
	}
}

// After a failover to a replica that lacked the last writes, P:meta's seq
// is behind what this writer wrote in the epoch: the events after it were
// sent already, so the cache is built anew under a new epoch rather than
// hand out those seqs again.
func TestSeqBehindWhatWasWrittenStartsANewEpoch(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a")
	r.step(w)
	meta := r.meta()
	seq, _ := strconv.Atoi(meta["seq"])
	if seq < 2 {
		t.Fatalf("seq %d after the build, want some events to lose", seq)
	}
	// The new master has P:meta as it was two events earlier.
	r.rdb.HSet(r.ctx, keys.Meta(r.prefix), "seq", seq-2)
	r.locked(w, w.dropState) // a failed write: the writer reads the cache again
	r.step(w)
	if got := r.meta()["epoch"]; got == meta["epoch"] {
		t.Errorf("epoch %s kept with seq %d behind the %d written: seqs %d and %d would be sent twice", got, seq-2, seq, seq-1, seq)
	}
}

// Redis loses the cache while Vista answers the cinemas list empty: the
// build anew does not take the empty list (it would give every session
// the default zone), asks again in seconds, and takes the real list once
// Vista sends it.
func TestEmptyListOnABuildAnewIsAskedAgain(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a", func(c *Config) { c.Heartbeat = time.Millisecond })
	r.step(w)
	cinemas := r.rdb.SCard(r.ctx, keys.Index(r.prefix, keys.Cinemas)).Val()
	n := len(r.events())
	r.sim.Fail(vistasim.Failure{Mode: vistasim.FailEmpty, Endpoint: vistasim.EndpointCinemas, Count: -1})
	r.rdb.Del(r.ctx, keys.Meta(r.prefix), keys.Index(r.prefix, keys.Cinemas), keys.Index(r.prefix, keys.Films),
		keys.Index(r.prefix, keys.Sessions)) // Redis lost the cache
	time.Sleep(2 * time.Millisecond)
	for range 3 {
		r.settle(w)
		r.clock.Add(time.Second)
	}
	for _, ev := range byEvent(r.eventsSince(n), keys.Cinemas, keys.EventFullReload) {
		if ev.Count != nil && *ev.Count == 0 {
			t.Errorf("the build anew took an empty cinemas list: %+v", ev)
		}
	}
	r.sim.ClearFailures()
	r.clock.Add(emptyBuildRetry)
	for range 3 {
		r.settle(w)
	}
	if got := r.rdb.SCard(r.ctx, keys.Index(r.prefix, keys.Cinemas)).Val(); got != cinemas {
		t.Errorf("%d cinemas cached after Vista sent its list again, want %d", got, cinemas)
	}
}
