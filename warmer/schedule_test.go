package warmer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// TestTimelineOrder: under many sessions, rescheduled and removed at
// random, the timeline hands out each standing entry once, in time order,
// and nothing stale; compacting keeps that.
func TestTimelineOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)
	at := map[string]time.Time{} // what each record says now
	pushed := map[slot]int{}     // how often each promise was made
	tl := timeline{valid: func(s slot) bool { return at[s.id].Equal(s.time()) }}
	push := func(id string, when time.Time) {
		at[id] = when
		tl.push(when, id)
		pushed[slot{at: instantOf(when), id: id}]++
	}
	const n = 20000
	for i := range n {
		push(fmt.Sprintf("s%d", i), base.Add(time.Duration(rng.IntN(3600))*time.Second))
	}
	for i := range n / 2 { // rescheduled: the old entries go stale
		id := fmt.Sprintf("s%d", rng.IntN(n))
		push(id, base.Add(time.Duration(rng.IntN(3600))*time.Second))
		if i%7 == 0 {
			push(id, at[id]) // the same promise twice
		}
	}
	for range n / 10 { // removed
		delete(at, fmt.Sprintf("s%d", rng.IntN(n)))
	}
	tl.compact(len(at))

	var last time.Time
	got := map[string]int{}
	for now := base; now.Before(base.Add(2 * time.Hour)); now = now.Add(17 * time.Second) {
		for {
			s, ok := tl.pop(now)
			if !ok {
				break
			}
			if s.time().After(now) {
				t.Fatalf("popped %s due %v at %v", s.id, s.time(), now)
			}
			if s.time().Before(last) {
				t.Fatalf("popped %s due %v after one due %v", s.id, s.time(), last)
			}
			if want, ok := at[s.id]; !ok || !want.Equal(s.time()) {
				t.Fatalf("popped a stale entry %s %v (record says %v, %v)", s.id, s.time(), want, ok)
			}
			last = s.time()
			got[s.id]++
		}
	}
	for id := range at {
		if got[id] == 0 {
			t.Errorf("%s (due %v) never came out", id, at[id])
		}
	}
	for id, c := range got {
		if want := pushed[slot{at: instantOf(at[id]), id: id}]; c != want {
			t.Errorf("%s came out %d times, want %d: as often as it was pushed for its time", id, c, want)
		}
	}
	if _, ok := tl.peek(); ok {
		t.Errorf("entries left after every due time passed")
	}
}

// TestShowtimeTiers: the tier counts read from the showtimes agree with
// counting every session, for moments around the showtimes.
func TestShowtimeTiers(t *testing.T) {
	p := DefaultPolicy()
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)
	var shows []time.Time
	var counts showtimes
	for range 5000 {
		st := base.Add(time.Duration(rng.IntN(6*3600)-3600) * time.Second).Truncate(5 * time.Minute)
		shows = append(shows, st)
		counts.add(st, 1)
	}
	for i := 0; i < len(shows); i += 3 { // some leave again
		counts.add(shows[i], -1)
	}
	for now := base.Add(-time.Hour); now.Before(base.Add(7 * time.Hour)); now = now.Add(7*time.Minute + 13*time.Second) {
		want := map[string]int{}
		for i, st := range shows {
			if i%3 != 0 {
				want[p.Tier(now, st)]++
			}
		}
		got := counts.tiers(p, now)
		for _, tier := range Tiers {
			if got[tier] != want[tier] {
				t.Errorf("at %v: %s = %d, want %d", now.Sub(base), tier, got[tier], want[tier])
			}
		}
	}
}

// askCounter counts the session ids a warmer asks Vista's seats for.
type askCounter struct {
	Fetcher
	ids, calls atomic.Int64
}

func (a *askCounter) CheckSeats(ctx context.Context, ids []string) ([]vista.Seats, []string, error) {
	a.ids.Add(int64(len(ids)))
	a.calls.Add(1)
	return a.Fetcher.CheckSeats(ctx, ids)
}

// TestStepsLookOnlyAtWhatIsDue: a step looks at the sessions that are due
// (and a few that ride along), not at every cached session: over two
// minutes of steps a second on an evening of ~1,700 sessions, the
// schedule looks at a handful of entries per session it checks.
func TestStepsLookOnlyAtWhatIsDue(t *testing.T) {
	r := newRigWith(t, rigOptions{sim: func(c *vistasim.Config) {
		c.Cinemas, c.Screens, c.ShowsPerDay, c.Days = 12, 4, 5, 7
	}})
	ac := &askCounter{Fetcher: r.client}
	w := r.warmer("a", func(c *Config) { c.Vista = ac })
	r.step(w)
	// An evening moment, clear of the hourly reload at :10.
	s := r.upcoming(5*time.Hour, 40*time.Hour)
	start := s.Showtime.Add(-15 * time.Minute)
	if m := start.Minute(); m >= 5 && m < 15 {
		start = start.Add(-20 * time.Minute)
	}
	r.clock.Set(start)
	r.step(w) // the reloads that are due, and the checks of this moment
	sessions := len(w.st.cache[keys.Sessions])
	if sessions < 1000 {
		t.Fatalf("%d sessions cached, want over 1000 for the test to mean something", sessions)
	}
	looked0 := w.st.checker.timeline.looked + w.st.expiries.looked
	asked0 := ac.ids.Load()
	const steps = 120
	for range steps {
		r.clock.Add(time.Second)
		r.step(w)
	}
	looked := w.st.checker.timeline.looked + w.st.expiries.looked - looked0
	asked := int(ac.ids.Load() - asked0)
	expired := sessions - len(w.st.cache[keys.Sessions]) // no reload in the window: nothing is added
	t.Logf("%d sessions cached; %d steps looked at %d schedule entries, asked for %d sessions and expired %d",
		sessions, steps, looked, asked, expired)
	if asked == 0 {
		t.Fatal("no session was checked in two minutes of an evening: the test proves nothing")
	}
	// Each check pops its entry and peeks at the next; the search for
	// riders looks at the entries due within half an interval, some of
	// which cannot ride (beyond the horizon); an expiry pops its entry and
	// drops its check's; a pass of Run's loop with nothing due peeks once
	// per heap, and a second of the clock makes up to three passes (the
	// clock passing what is due, the answers coming in, the settle). How
	// many of each there are depends on the day the simulated programme
	// is made for: the bound is loose, and still a fraction of what one
	// walk of every session per step would look at.
	if limit := 8*(asked+expired) + 6*steps + 50; looked > limit {
		t.Errorf("the schedule looked at %d entries for %d sessions checked and %d expired in %d steps, want at most %d",
			looked, asked, expired, steps, limit)
	}
	if looked >= sessions {
		t.Errorf("two minutes of steps looked at %d entries, as many as the %d sessions cached: something walks them all", looked, sessions)
	}
}

// TestRidersOutsideTheHorizonKeepTheirPlace: a session looked at to fill a
// request that is not yet within the horizon is not checked, and keeps
// its next check: it is checked when it enters.
func TestRidersOutsideTheHorizonKeepTheirPlace(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a")
	r.step(w)
	a, b := r.pair(2*time.Hour, func(a, b vistasim.SessionInfo) bool {
		return b.Showtime.Sub(a.Showtime) > w.cfg.Policy.Horizon+10*time.Minute
	})
	r.clock.Set(a.Showtime.Add(-5 * time.Minute))
	r.step(w)
	now := r.clock.Now()
	cache := w.st.cache[keys.Sessions]
	for id, rec := range cache {
		w.st.checker.reschedule(id, rec, now.Add(time.Hour))
	}
	w.st.checker.reschedule(a.ID, cache[a.ID], now.Add(time.Second))
	// b is due to be looked at within the fill's reach, but is not in
	// the horizon then.
	w.st.checker.reschedule(b.ID, cache[b.ID], now.Add(30*time.Second))
	r.clock.Add(time.Second)
	r.step(w)
	if next := cache[b.ID].nextCheck.time(); next.IsZero() {
		t.Fatalf("session %s lost its next check", b.ID)
	}
	found := false
	for _, s := range w.st.checker.timeline.h {
		found = found || (s.id == b.ID && w.st.checker.timeline.valid(s))
	}
	if !found {
		t.Errorf("session %s, outside the horizon, was dropped from the schedule when a request was filled", b.ID)
	}
}

// TestHeapsDoNotGrowWithReloads: unchanged reloads push no new entries.
func TestHeapsDoNotGrowWithReloads(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a")
	r.step(w)
	before := len(w.st.checker.timeline.h) + len(w.st.expiries.h)
	for range 5 {
		if err := r.reload(w, keys.Sessions); err != nil {
			t.Fatal(err)
		}
	}
	if after := len(w.st.checker.timeline.h) + len(w.st.expiries.h); after > before+10 {
		t.Errorf("five unchanged reloads grew the heaps from %d to %d entries", before, after)
	}
}

// TestMovedPastTheHorizonIsCheckedWhenItEnters: a session whose check
// comes due after its showtime moved beyond the horizon is not checked
// then, and not forgotten either: it is checked when it enters.
func TestMovedPastTheHorizonIsCheckedWhenItEnters(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a")
	s := r.nearSession(w)
	later := s.Showtime.Add(3 * time.Hour)
	var moved record
	r.locked(w, func() {
		cache := w.st.cache[keys.Sessions]
		moved = *cache[s.ID]
		moved.showtime = instantOf(later)
		cache[s.ID] = &moved // as a list moving its showtime, with the next check kept
		w.st.checker.reschedule(s.ID, &moved, r.clock.Now())
	})
	r.clock.Add(time.Second)
	r.step(w)
	want := later.Add(-w.cfg.Policy.Horizon)
	if got := moved.nextCheck.time(); !got.Equal(want) {
		t.Fatalf("next check %v, want %v: when it enters the horizon", got, want)
	}
	found := false
	for _, sl := range w.st.checker.timeline.h {
		found = found || (sl.id == s.ID && w.st.checker.timeline.valid(sl))
	}
	if !found {
		t.Errorf("session %s has no place in the schedule", s.ID)
	}
}
