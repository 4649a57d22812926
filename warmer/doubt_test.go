package warmer

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// Vista answers every seat check with an empty list (a misrouted gateway,
// a broken cache of Vista's): the checks call every session they ask for
// gone. That is not believed: nothing is removed, and past a batch of
// doubted sessions the doubt is a held drop that /readyz names. When the
// checks find the sessions again, the doubt and the held drop go.
func TestSeatChecksThatFindNothingRemoveNothing(t *testing.T) {
	r := newRigWith(t, rigOptions{sim: func(c *vistasim.Config) { c.Cinemas, c.Screens, c.ShowsPerDay = 8, 4, 8 }})
	w := r.warmer("a", func(c *Config) { c.CheckBatch = 3 })
	r.step(w)
	s := r.upcoming(2*time.Hour, 40*time.Hour)
	r.clock.Set(s.Showtime.Add(-50 * time.Minute)) // sessions across the whole horizon are checked
	r.step(w)
	before := r.rdb.ZCard(r.ctx, keys.Index(r.prefix, keys.Sessions)).Val()
	n := len(r.events())

	r.sim.Fail(vistasim.Failure{Mode: vistasim.FailEmpty, Endpoint: vistasim.EndpointSeats, Count: -1})
	for range 60 {
		r.clock.Add(10 * time.Second)
		r.step(w)
	}
	var gone []keys.Event
	for _, ev := range byEvent(r.eventsSince(n), keys.Sessions, keys.EventRemoved) {
		if ev.Reason != keys.ReasonExpired {
			gone = append(gone, ev)
		}
	}
	if len(gone) > 0 {
		t.Errorf("empty seat answers removed %d of %d sessions: %+v", len(gone), before, gone[0])
	}
	doubted := testutil.ToFloat64(w.m.checksDoubted)
	if doubted <= 3 {
		t.Fatalf("checks_doubted_total = %v, want more than a batch (the test needs it)", doubted)
	}
	if ready, why := w.Readiness(r.ctx); ready || !strings.Contains(why, "holding back a drop of sessions") {
		t.Errorf("Readiness with %v sessions doubted = %v %q, want a held drop", doubted, ready, why)
	}
	if got := testutil.ToFloat64(w.m.dropHeld.WithLabelValues("sessions")); got != 1 {
		t.Errorf("drop_held{sessions} = %v, want 1", got)
	}

	r.sim.ClearFailures()
	for range 90 { // every doubted session is checked again, the farthest every 22 min
		r.clock.Add(20 * time.Second)
		r.step(w)
	}
	if ready, why := w.Readiness(r.ctx); !ready {
		t.Errorf("Readiness once the checks find the sessions again = %v %q", ready, why)
	}
	if len(w.st.doubted) != 0 {
		t.Errorf("%d sessions still doubted after every one was found again", len(w.st.doubted))
	}
}

// Vista answers everything empty for a while, window queries included:
// the doubt grows into a held drop. Once Vista answers again, a window
// answer that finds a doubted session ends its doubt as a check by id
// does, so the held drop goes within a sweep of the later window (2 min),
// not when each session's check by id comes round.
func TestWindowAnswersEndTheDoubt(t *testing.T) {
	r := newRigWith(t, rigOptions{sim: func(c *vistasim.Config) { c.Cinemas, c.Screens, c.ShowsPerDay = 8, 4, 8 }})
	w := r.windowed("a", func(c *Config) { c.CheckBatch = 3 })
	r.step(w)
	s := r.upcoming(2*time.Hour, 40*time.Hour)
	r.clock.Set(s.Showtime.Add(-50 * time.Minute))
	r.step(w)

	r.sim.Fail(vistasim.Failure{Mode: vistasim.FailEmpty, Count: -1}) // every request
	for range 60 {
		r.clock.Add(10 * time.Second)
		r.step(w)
	}
	if ready, why := w.Readiness(r.ctx); ready || !strings.Contains(why, "holding back a drop of sessions") {
		t.Fatalf("Readiness with every answer empty = %v %q, want a held drop (the test needs it)", ready, why)
	}
	r.sim.ClearFailures()
	for range 15 { // 2.5 min: every window swept again
		r.clock.Add(10 * time.Second)
		r.step(w)
	}
	if len(w.st.doubted) != 0 {
		t.Errorf("%d sessions still doubted 2.5 min after Vista answered again, though the windows found them", len(w.st.doubted))
	}
	if ready, why := w.Readiness(r.ctx); !ready {
		t.Errorf("Readiness 2.5 min after Vista answered again = %v %q", ready, why)
	}
}

// A session Vista really dropped is removed at its next check as before,
// when the answer found the others asked with it.
func TestSeatCheckStillRemovesWhatVistaDropped(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a")
	r.step(w)
	s := r.upcoming(2*time.Hour, 40*time.Hour)
	r.clock.Set(s.Showtime.Add(-5 * time.Minute))
	r.step(w)
	r.sim.Remove(s.ID)
	for range 3 {
		r.clock.Add(10 * time.Second)
		r.step(w)
	}
	if r.rdb.Exists(r.ctx, keys.Session(r.prefix, s.ID)).Val() != 0 {
		t.Errorf("session %s, dropped by Vista, is still cached after its checks", s.ID)
	}
	if got := testutil.ToFloat64(w.m.checkRemovals.WithLabelValues(keys.ReasonGone)); got < 1 {
		t.Errorf("check_removals_total{gone} = %v, want at least 1", got)
	}
}

// After a spell of empty answers, a session Vista really dropped and that
// is checked alone is removed once the doubt has passed: the lone answers
// do not keep the doubt open themselves.
func TestLoneGoneSessionIsRemovedAfterTheDoubt(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a", func(c *Config) { c.CheckBatch = 1 }) // every check alone
	r.step(w)
	s := r.upcoming(2*time.Hour, 40*time.Hour)
	r.clock.Set(s.Showtime.Add(-30 * time.Minute))
	r.step(w)
	// A batch of several that finds none: the doubt opens.
	w.st.doubtAt = r.clock.Now()
	r.sim.Remove(s.ID)
	for range 60 { // 30 minutes, the session checked alone now and then
		r.clock.Add(30 * time.Second)
		r.step(w)
	}
	if r.rdb.Exists(r.ctx, keys.Session(r.prefix, s.ID)).Val() != 0 {
		t.Errorf("session %s, dropped by Vista, is still cached 30 min after the doubt opened", s.ID)
	}
}
