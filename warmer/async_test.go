package warmer

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/internal/clocktest"
	"github.com/vista-warmer/vista-warmer/internal/testkit"
	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// hanging is a Fetcher whose Sessions list hangs, while hang is set, until
// the test lets it go or the context ends.
type hanging struct {
	Fetcher
	mu      sync.Mutex
	hang    bool
	started chan struct{}
	release chan struct{}
}

func (h *hanging) Sessions(ctx context.Context, zones map[string]*time.Location) ([]vista.Session, error) {
	h.mu.Lock()
	hang := h.hang
	h.mu.Unlock()
	if !hang {
		return h.Fetcher.Sessions(ctx, zones)
	}
	h.started <- struct{}{}
	select {
	case <-h.release:
		return nil, errors.New("vista Sessions: no answer within 30s")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestHangingListKeepsChecksOnTime: while the Sessions list hangs (five
// minutes of the warmer's clock), Run keeps checking near sessions on
// their schedule, and the seats they find are in Redis.
func TestHangingListKeepsChecksOnTime(t *testing.T) {
	r := newRig(t)
	h := &hanging{Fetcher: r.client, started: make(chan struct{}, 1), release: make(chan struct{})}
	w := r.warmer("a", func(c *Config) { c.Vista = h; c.Tick = 5 * time.Millisecond })
	s := r.upcoming(3*time.Hour, 40*time.Hour)
	// Just before an hourly sessions reload, five minutes before s.
	r.clock.Set(s.Showtime.Add(-5 * time.Minute))
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	testkit.Eventually(t, 10*time.Second, "the first load", func() bool { ready, _ := w.Readiness(r.ctx); return ready })

	h.mu.Lock()
	h.hang = true
	h.mu.Unlock()
	r.clock.Add(time.Hour) // the next hourly reload is due: it hangs
	r.clock.Set(s.Showtime.Add(-5 * time.Minute))
	w.stepMu.Lock()
	w.st.kinds[keys.Sessions].next = r.clock.Now()
	w.stepMu.Unlock()
	select {
	case <-h.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the sessions reload did not start")
	}
	for i := range 30 { // five minutes of 10 s near checks, with the list hanging
		seats := 90 - i
		r.sim.SetSeats(s.ID, seats)
		r.clock.Add(11 * time.Second)
		testkit.Eventually(t, 10*time.Second, "a seat check while the list hangs", func() bool {
			return r.rdb.HGet(r.ctx, keys.Session(r.prefix, s.ID), "seats_available").Val() == strconv.Itoa(seats)
		})
	}
	close(h.release)
}

// TestOlderListKeepsNewerSeats: a list fetched before a seat check is
// taken in after it; what the check saw stays, and a session it removed
// does not come back.
func TestOlderListKeepsNewerSeats(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a")
	r.step(w)
	// Two sessions near at one moment.
	s, other := r.pair(4*time.Minute, func(a, b vistasim.SessionInfo) bool { return true })
	r.clock.Set(s.Showtime.Add(-5 * time.Minute)) // both near
	r.step(w)
	var l *listing
	var err error
	r.locked(w, func() { l, err = w.fetch(r.ctx, w.st, keys.Sessions, r.clock.Now(), w.zones(), nil) }) // the list, as it is now
	if err != nil {
		t.Fatal(err)
	}
	n := len(r.events())
	r.sim.SetSeats(s.ID, 3)
	r.sim.SetStatus(other.ID, 7)
	r.checkNow(w)                                                   // the checks, after the list was fetched
	r.locked(w, func() { err = w.commit(r.ctx, keys.Sessions, l) }) // the list taken in, as Run would now
	if err != nil {
		t.Fatal(err)
	}
	if got := r.hash(keys.Sessions, s.ID)["seats_available"]; got != "3" {
		t.Errorf("seats_available = %s after the older list, want the check's 3", got)
	}
	if evs := forID(r.eventsSince(n), s.ID); len(evs) != 1 {
		t.Errorf("events for %s: %+v, want the check's one", s.ID, evs)
	}
	if evs := forID(r.eventsSince(n), other.ID); len(evs) != 1 || evs[0].Reason != keys.ReasonCancelled {
		t.Errorf("events for %s: %+v, want one removed_item cancelled", other.ID, evs)
	}
	if len(r.hash(keys.Sessions, other.ID)) != 0 {
		t.Errorf("the older list brought %s back", other.ID)
	}
}

// TestChecksGoTogetherAcrossCinemas: sessions of different cinemas due
// together, and one due a moment later, go out in one request. It runs at
// every instant of clocktest: the sessions it finds follow the hour.
func TestChecksGoTogetherAcrossCinemas(t *testing.T) {
	clocktest.Each(t, testChecksGoTogetherAcrossCinemas)
}

func testChecksGoTogetherAcrossCinemas(t *testing.T, at time.Time) {
	r := newRigAt(t, at)
	w := r.warmer("a")
	r.step(w)
	// a and b of two cinemas, c of any, all within the horizon of one
	// moment, five minutes before a (a session beyond it is not checked
	// on its own, nor along with others), and none cancelled by then.
	// The simulated showtimes change from day to day, so the search goes
	// on until it finds three; the test sets when each is due.
	openAt := func(when time.Time) map[string]bool {
		open := map[string]bool{}
		r.locked(w, func() { // the writer does not step at the moment looked at
			now := r.clock.Now()
			defer r.clock.Set(now)
			r.clock.Set(when)
			for _, s := range r.sim.Sessions() {
				open[s.ID] = s.Status != "X"
			}
		})
		return open
	}
	var a, b, c vistasim.SessionInfo
	list := r.sim.Sessions()
	for i := 0; i < len(list) && (b.ID == "" || c.ID == ""); i++ {
		a = list[i]
		if !a.Showtime.After(r.clock.Now().Add(2 * time.Hour)) {
			continue
		}
		open := openAt(a.Showtime.Add(-5 * time.Minute))
		if !open[a.ID] {
			continue
		}
		b, c = vistasim.SessionInfo{}, vistasim.SessionInfo{}
		for _, x := range list {
			if d := x.Showtime.Sub(a.Showtime); x.ID == a.ID || !open[x.ID] || d < 0 || d > w.cfg.Policy.Horizon-10*time.Minute {
				continue
			}
			if b.ID == "" && x.CinemaID != a.CinemaID {
				b = x
			} else if c.ID == "" && x.ID != b.ID {
				c = x
			}
		}
	}
	if b.ID == "" || c.ID == "" {
		t.Fatal("the simulated Vista has no three sessions of two cinemas within 50 minutes")
	}
	r.clock.Set(a.Showtime.Add(-5 * time.Minute)) // all three within the horizon
	r.step(w)
	now := r.clock.Now()
	r.locked(w, func() {
		cache := w.st.cache[keys.Sessions]
		for id, rec := range cache { // nothing else due for a while
			w.st.checker.reschedule(id, rec, now.Add(time.Hour))
		}
		w.st.checker.reschedule(a.ID, cache[a.ID], now.Add(time.Second))
		w.st.checker.reschedule(b.ID, cache[b.ID], now.Add(time.Second))
		w.st.checker.reschedule(c.ID, cache[c.ID], now.Add(4*time.Second)) // within half its interval (10 s or more)
	})
	r.sim.ResetRequests()
	r.clock.Add(time.Second)
	r.step(w)
	if got := r.sim.Requests()[vistasim.EndpointSeats]; got != 1 {
		t.Errorf("%d seat requests, want 1 for three cinemas' sessions", got)
	}
	for _, id := range []string{a.ID, b.ID, c.ID} {
		if next := w.st.cache[keys.Sessions][id].nextCheck.time(); !next.After(r.clock.Now().Add(5 * time.Second)) {
			t.Errorf("session %s was not checked: next check in %v", id, next.Sub(r.clock.Now()))
		}
	}
}
