package warmer

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vista-warmer/vista-warmer/internal/testkit"
	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// readings wraps the rig's client and notes, on the rig's clock, each time
// Vista gave a session's seats: a check by id or a window query that went
// through.
type readings struct {
	*vista.Client
	clock *testkit.Clock
	mu    sync.Mutex
	at    map[string][]time.Time
	byID  map[string][]time.Time
}

func newReadings(r *rig) *readings {
	return &readings{Client: r.client, clock: r.clock, at: map[string][]time.Time{}, byID: map[string][]time.Time{}}
}

func (l *readings) CheckSeats(ctx context.Context, ids []string) ([]vista.Seats, []string, error) {
	now := l.clock.Now()
	seats, gone, err := l.Client.CheckSeats(ctx, ids)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.byID[id] = append(l.byID[id], now)
	}
	if err == nil {
		for _, s := range seats {
			l.at[s.ID] = append(l.at[s.ID], now)
		}
	}
	return seats, gone, err
}

func (l *readings) SeatsBetween(ctx context.Context, ws ...vista.Window) ([]vista.Seats, error) {
	now := l.clock.Now()
	seats, err := l.Client.SeatsBetween(ctx, ws...)
	if err == nil {
		l.mu.Lock()
		for _, s := range seats {
			l.at[s.ID] = append(l.at[s.ID], now)
		}
		l.mu.Unlock()
	}
	return seats, err
}

func (l *readings) maxGap(id string, from time.Time) (gap time.Duration, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var prev time.Time
	for _, t := range l.at[id] {
		if t.Before(from) {
			prev = t
			continue
		}
		if !prev.IsZero() && t.Sub(prev) > gap {
			gap, at = t.Sub(prev), prev
		}
		prev = t
	}
	return gap, at
}

// keptTheFloor fails t when session s, from from on, went longer than its
// interval on the curve (plus a second) without a reading; why says what
// the test did to the sweeps.
func (l *readings) keptTheFloor(t *testing.T, w *Warmer, s vistasim.SessionInfo, from time.Time, why string) {
	t.Helper()
	iv, _ := w.cfg.Policy.Interval(w.cfg.Clock.Now(), s.Showtime)
	if gap, at := l.maxGap(s.ID, from.Add(-iv)); gap > iv+time.Second {
		t.Errorf("session %s (near, interval %v) went %v without a reading from %v (%s); the curve is the floor",
			s.ID, iv, gap, at.Sub(from), why)
	}
}

// A near sweep that fails (a single 503) lets the checks by id it held
// back go at once: no session goes longer than its interval unread.
func TestFailedSweepKeepsTheFloor(t *testing.T) {
	r := newRig(t)
	log := newReadings(r)
	w, s := r.windowedBefore(6*time.Minute, 3*time.Hour, func(c *Config) { c.Vista = log })
	r.stepFor(w, time.Minute, time.Second)
	from := r.clock.Now()
	r.sim.Fail(vistasim.Failure{Mode: vistasim.FailStatus, Status: 503, Endpoint: vistasim.EndpointWindow, Count: 1})
	r.stepFor(w, time.Minute, time.Second)
	log.keptTheFloor(t, w, s, from, "one window query failed")
}

// A sweep that lacks a session (it moved in Vista) lets the check by id it
// held back go at once, not an interval late.
func TestLackedSessionKeepsTheFloor(t *testing.T) {
	r := newRig(t)
	log := newReadings(r)
	w, s := r.windowedBefore(6*time.Minute, 3*time.Hour, func(c *Config) { c.Vista = log })
	r.stepFor(w, time.Minute, time.Second)
	from := r.clock.Now()
	r.sim.MoveSession(s.ID, s.Showtime.Add(3*time.Hour)) // out of the near window, the cache does not know yet
	r.stepFor(w, time.Minute, time.Second)
	log.keptTheFloor(t, w, s, from, "the sweeps lack it: moved")
}

// Until the sessions' first full load in an epoch goes through, no sweep
// goes out, and the checks by id go as in v1.1: only a sweep that is out
// holds one back.
func TestChecksByIDWhileSessionsUnloaded(t *testing.T) {
	for _, windows := range []bool{false, true} {
		t.Run(map[bool]string{false: "v1.1", true: "windows"}[windows], func(t *testing.T) {
			r := newRig(t)
			w0 := r.warmer("a")
			r.step(w0)
			s := r.upcoming(3*time.Hour, 40*time.Hour)
			r.stop(w0)
			// The first load of the sessions never finished in this epoch
			// (the last writer died building it), and the session list now
			// fails.
			if err := r.rdb.HDel(r.ctx, keys.Meta(r.prefix), keys.Loaded(keys.Sessions)).Err(); err != nil {
				t.Fatal(err)
			}
			r.sim.Fail(vistasim.Failure{Mode: vistasim.FailStatus, Status: 500, Endpoint: vistasim.EndpointSessions, Count: -1})
			log := newReadings(r)
			w := r.warmer("b", func(c *Config) { c.Vista = log; c.Windows = windows })
			r.clock.Set(s.Showtime.Add(-5 * time.Minute))
			_ = r.settle(w) // the session list fails: Settle says so
			for range 120 {
				r.clock.Add(time.Second)
				_ = r.settle(w)
			}
			log.mu.Lock()
			n := len(log.at[s.ID])
			log.mu.Unlock()
			if n == 0 {
				t.Errorf("session %s, 5 min to its showtime, not read once in 2 min while the session list fails", s.ID)
			}
		})
	}
}

// A later sweep that finds a session cancelled sends its check by id at
// once (contract v1.2, section 4, removals), although the session lies
// beyond the horizon, where checks by id do not go on the curve.
func TestCancelledByLaterSweepCheckedAtOnce(t *testing.T) {
	r := newRig(t)
	log := newReadings(r)
	w, s := r.windowedBefore(4*time.Hour, 6*time.Hour, func(c *Config) { c.Vista = log })
	n := len(r.events())
	r.sim.Cancel(s.ID)
	r.stepFor(w, w.cfg.Policy.LaterInterval+30*time.Second, 10*time.Second)
	log.mu.Lock()
	byID := len(log.byID[s.ID])
	log.mu.Unlock()
	removed := forID(byEvent(r.eventsSince(n), keys.Sessions, keys.EventRemoved), s.ID)
	if byID == 0 || len(removed) == 0 {
		t.Errorf("session %s, 4 h ahead, cancelled: %d checks by id, %d removals within a later interval + 30 s; want its check by id at once, and its removal",
			s.ID, byID, len(removed))
	}
}

// Without a failure, a near session is read every near interval.
func TestSweepsKeepTheFloor(t *testing.T) {
	r := newRig(t)
	log := newReadings(r)
	w, s := r.windowedBefore(6*time.Minute, 3*time.Hour, func(c *Config) { c.Vista = log })
	r.stepFor(w, time.Minute, time.Second)
	from := r.clock.Now()
	r.stepFor(w, time.Minute, time.Second)
	log.keptTheFloor(t, w, s, from, "no failure")
}

// The same within the horizon: a near sweep that finds a session
// cancelled has it removed by its check by id within two near intervals.
func TestCancelledByNearSweepCheckedAtOnce(t *testing.T) {
	r := newRig(t)
	log := newReadings(r)
	w, s := r.windowedBefore(30*time.Minute, 3*time.Hour, func(c *Config) { c.Vista = log })
	r.stepFor(w, time.Minute, 10*time.Second)
	n := len(r.events())
	log.mu.Lock()
	before := len(log.byID[s.ID])
	log.mu.Unlock()
	r.sim.Cancel(s.ID)
	r.stepFor(w, 20*time.Second, 10*time.Second)
	log.mu.Lock()
	byID := len(log.byID[s.ID]) - before
	log.mu.Unlock()
	removed := forID(byEvent(r.eventsSince(n), keys.Sessions, keys.EventRemoved), s.ID)
	if len(removed) == 0 || byID == 0 {
		t.Errorf("a session cancelled 30 min ahead: %d checks by id, %d removals within two near intervals; want both", byID, len(removed))
	}
}

// A window answer and a check by id of one session, taken in the same
// batch, are both compared with the same cached record: the one asked
// last wins, whatever order they came in. (v1.1 never had two answers of a
// session in flight.)
func TestNewestAnswerInABatchWins(t *testing.T) {
	r := newRig(t)
	w := r.windowed("a")
	r.step(w)
	s := r.upcoming(3*time.Hour, 40*time.Hour)
	r.clock.Set(s.Showtime.Add(-5 * time.Minute))
	r.step(w)
	r.stepFor(w, 30*time.Second, 10*time.Second)
	var now time.Time // both asks below come after the cache's last reading
	r.locked(w, func() { now = w.st.cache[keys.Sessions][s.ID].asOf.time().Add(9 * time.Second) })
	older := r.otherSeats(s.ID)
	newer := older - 1
	r.locked(w, func() {
		sw := w.st.checker.windows[0]
		byID := &ask{st: w.st, ids: []string{s.ID}, due: map[string]time.Time{}, asked: now.Add(-8 * time.Second),
			seats: []vista.Seats{{ID: s.ID, SeatsAvailable: older}}}
		if a := w.st.cache[keys.Sessions][s.ID].asOf.time(); !a.Before(byID.asked) {
			t.Fatalf("cache asOf %v not before the check's ask %v", a, byID.asked)
		}
		win := &ask{st: w.st, window: sw, asked: now,
			seats: []vista.Seats{{ID: s.ID, SeatsAvailable: newer}}}
		w.st.checker.inflight[s.ID] = true
		// the window query, asked later, came in first
		if err := w.writeAnswers(r.ctx, []*ask{win, byID}); err != nil {
			t.Fatal(err)
		}
	})
	if got := r.hash(keys.Sessions, s.ID)[keys.FieldSeatsAvailable]; got != strconv.Itoa(newer) {
		t.Errorf("seats_available = %s, want %d (the window query asked 8 s after the check by id, which said %d); the older answer won", got, newer, older)
	}
}

// On a clock that does not sit on whole seconds (any real one), sweeps go
// on the whole second as the checks by id fall due, so they stand in for
// those checks and no session is confirmed twice.
func TestSweepsStandInOnAFractionalClock(t *testing.T) {
	for _, offset := range []time.Duration{0, 500 * time.Millisecond} {
		t.Run(offset.String(), func(t *testing.T) {
			r := newRig(t)
			w := r.windowed("a")
			r.step(w)
			s := r.upcoming(3*time.Hour, 40*time.Hour)
			r.clock.Set(s.Showtime.Add(-30*time.Minute + offset))
			r.step(w)
			r.stepFor(w, time.Minute, 250*time.Millisecond)
			r.sim.ResetRequests()
			conf0 := testutil.ToFloat64(w.m.changes.WithLabelValues(string(keys.Sessions), outUnchanged))
			r.stepFor(w, 2*time.Minute, 250*time.Millisecond)
			reqs := r.sim.Requests()
			conf := testutil.ToFloat64(w.m.changes.WithLabelValues(string(keys.Sessions), outUnchanged)) - conf0
			t.Logf("clock %v past the second: in 2 min, %d window queries, %d checks by id, %v session confirmations", offset, reqs[vistasim.EndpointWindow], reqs[vistasim.EndpointSeats], conf)
			if reqs[vistasim.EndpointSeats] > 2 {
				t.Errorf("%d checks by id in 2 min of sweeps (every near session is swept every 10 s); want at most 2", reqs[vistasim.EndpointSeats])
			}
		})
	}
}
