package warmer

import (
	"fmt"
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

// windowed is a warmer of the rig with window queries on.
func (r *rig) windowed(id string, tweak ...func(*Config)) *Warmer {
	return r.warmer(id, append([]func(*Config){func(c *Config) { c.Windows = true }}, tweak...)...)
}

// windowedBefore loads a windowed warmer of the rig, then moves the clock
// to before the showtime of a session at least ahead of the start, and
// steps; it returns the warmer and that session.
func (r *rig) windowedBefore(before, ahead time.Duration, tweak ...func(*Config)) (*Warmer, vistasim.SessionInfo) {
	r.t.Helper()
	w := r.windowed("a", tweak...)
	r.step(w)
	s := r.upcoming(ahead, 40*time.Hour)
	r.clock.Set(s.Showtime.Add(-before))
	r.step(w)
	return w, s
}

// stepFor moves the clock by every until d has passed, settling w each
// time.
func (r *rig) stepFor(w *Warmer, d, every time.Duration) {
	r.t.Helper()
	for end := r.clock.Now().Add(d); r.clock.Now().Before(end); {
		r.clock.Add(every)
		r.step(w)
	}
}

// A seat change of a session half an hour ahead reaches Redis at the next
// near sweep, within the near interval, where its check by id would have
// come minutes later; and the sweeps stand in for the checks by id, which
// do not go out while every session is in the windows' answers.
func TestWindowCarriesSeatsAtTheNearInterval(t *testing.T) {
	r := newRig(t)
	w, s := r.windowedBefore(30*time.Minute, 3*time.Hour)
	r.stepFor(w, 3*time.Minute, 10*time.Second) // every session's check is confirmed by a sweep

	r.sim.ResetRequests()
	seats := r.otherSeats(s.ID)
	r.sim.SetSeats(s.ID, seats)
	r.clock.Add(10 * time.Second)
	r.step(w)
	if got := r.hash(keys.Sessions, s.ID)[keys.FieldSeatsAvailable]; got != strconv.Itoa(seats) {
		t.Fatalf("seats_available 10 s after the change = %q, want %d", got, seats)
	}
	r.stepFor(w, 10*time.Minute, 10*time.Second)
	reqs := r.sim.Requests()
	if reqs[vistasim.EndpointWindow] < 55 {
		t.Errorf("window queries in 10 min = %d, want about 60 (one near sweep each 10 s, a later one each 2 min)", reqs[vistasim.EndpointWindow])
	}
	if reqs[vistasim.EndpointSeats] > 2 {
		t.Errorf("checks by id in 10 min of sweeps = %d, want at most 2 (the sweeps confirm every session)", reqs[vistasim.EndpointSeats])
	}
	if got := testutil.ToFloat64(w.m.sweeps.WithLabelValues("near", "ok")); got < 50 {
		t.Errorf("window_queries_total{near,ok} = %v, want about 60", got)
	}
	// The hash still says when a check by id is due at the latest, on
	// the curve: the floor under the sweeps.
	h := r.hash(keys.Sessions, s.ID)
	next, err := time.Parse(time.RFC3339, h["next_check_at"])
	if err != nil {
		t.Fatalf("next_check_at %q: %v", h["next_check_at"], err)
	}
	iv, _ := w.cfg.Policy.Interval(r.clock.Now(), s.Showtime)
	if d := next.Sub(r.clock.Now()); d <= 0 || d > iv+10*time.Second {
		t.Errorf("next_check_at is %v from now, want within the curve's interval %v", d, iv)
	}
}

// A session four hours ahead, which checks by id never look at, gets its
// seat changes from the later sweep within its interval.
func TestLaterSweepReadsTheRestOfTheDay(t *testing.T) {
	r := newRig(t)
	w, s := r.windowedBefore(4*time.Hour, 6*time.Hour)
	seats := r.otherSeats(s.ID)
	r.sim.SetSeats(s.ID, seats)
	r.stepFor(w, w.cfg.Policy.LaterInterval+10*time.Second, 10*time.Second)
	if got := r.hash(keys.Sessions, s.ID)[keys.FieldSeatsAvailable]; got != strconv.Itoa(seats) {
		t.Fatalf("seats_available a later interval after the change = %q, want %d", got, seats)
	}
}

// A window answer never removes: a session gone from Vista is removed by
// its check by id, under the drop guard, and one moved out of the window
// stays.
func TestWindowNeverRemoves(t *testing.T) {
	r := newRig(t)
	w := r.windowed("a")
	r.step(w)
	gone := r.upcoming(3*time.Hour, 40*time.Hour)
	r.clock.Set(gone.Showtime.Add(-5 * time.Minute))
	r.step(w)
	r.stepFor(w, time.Minute, 10*time.Second)
	moved := r.upcoming(20*time.Minute, 50*time.Minute)
	n := len(r.events())

	r.sim.Remove(gone.ID)
	r.sim.MoveSession(moved.ID, moved.Showtime.Add(3*time.Hour))
	r.stepFor(w, 30*time.Second, 10*time.Second)
	for _, ev := range byEvent(r.eventsSince(n), keys.Sessions, keys.EventRemoved) {
		if ev.ID == moved.ID {
			t.Errorf("the session moved out of the near window was removed: %+v", ev)
		}
		if ev.ID == gone.ID && ev.Reason != keys.ReasonGone {
			t.Errorf("the session gone from Vista was removed as %q, want gone (by its check by id)", ev.Reason)
		}
	}
	if len(forID(byEvent(r.eventsSince(n), keys.Sessions, keys.EventRemoved), gone.ID)) != 1 {
		t.Errorf("the session gone from Vista was not removed within three near intervals")
	}
	if len(r.hash(keys.Sessions, moved.ID)) == 0 {
		t.Errorf("the moved session's hash is gone")
	}
}

// A Vista that refuses window queries (400) costs one refused query per
// window an hour; the checks by id keep the seats fresh as before.
func TestRefusedWindowsFallBackToChecksByID(t *testing.T) {
	r := newRigWith(t, rigOptions{sim: func(c *vistasim.Config) { c.RefuseWindows = true }})
	w, s := r.windowedBefore(5*time.Minute, 3*time.Hour)
	r.sim.ResetRequests()
	seats := r.otherSeats(s.ID)
	r.sim.SetSeats(s.ID, seats)
	r.stepFor(w, 30*time.Minute, 10*time.Second)
	reqs := r.sim.Requests()
	if got := reqs[vistasim.EndpointWindow]; got > 2 {
		t.Errorf("refused window queries in 30 min = %d, want at most one per window (then an hour off)", got)
	}
	if got := testutil.ToFloat64(w.m.sweeps.WithLabelValues("near", "refused")); got < 1 {
		t.Errorf("window_queries_total{near,refused} = %v, want 1 (the test needs a refusal)", got)
	}
	if reqs[vistasim.EndpointSeats] == 0 {
		t.Fatalf("no checks by id while windows are refused")
	}
	if got := r.hash(keys.Sessions, s.ID)[keys.FieldSeatsAvailable]; got != strconv.Itoa(seats) && len(r.hash(keys.Sessions, s.ID)) > 0 {
		t.Errorf("seats_available = %q, want %d from the checks by id", got, seats)
	}
}

// Window queries that fail back off: after three failures in a row, a
// minute, doubling; the checks by id carry on meanwhile.
func TestFailingWindowsBackOff(t *testing.T) {
	r := newRig(t)
	w, s := r.windowedBefore(8*time.Minute, 3*time.Hour)
	r.sim.ResetRequests()
	r.sim.Fail(vistasim.Failure{Mode: vistasim.FailStatus, Status: 503, Endpoint: vistasim.EndpointWindow, Count: -1})
	r.stepFor(w, 10*time.Minute, 10*time.Second)
	reqs := r.sim.Requests()
	// Near: 3 failures, then 1, 2 and 4 minutes off: 6 queries in 10 min;
	// later: 3 failures in 6 min, then off. Every 10 s would be 65.
	if got := reqs[vistasim.EndpointWindow]; got > 12 {
		t.Errorf("failing window queries in 10 min = %d, want at most 12 (backing off)", got)
	}
	if reqs[vistasim.EndpointSeats] == 0 {
		t.Errorf("no checks by id while windows fail")
	}
	r.sim.ClearFailures()
	seats := r.otherSeats(s.ID)
	r.sim.SetSeats(s.ID, seats)
	r.stepFor(w, 20*time.Second, 10*time.Second)
	if got := r.hash(keys.Sessions, s.ID)[keys.FieldSeatsAvailable]; got != strconv.Itoa(seats) {
		t.Errorf("seats_available 20 s after the change, Vista well again = %q, want %d", got, seats)
	}
}

// A chain across zones: a near sweep reads every session of the next hour,
// whatever its cinema's zone (the rig's cinemas are in Berlin, London and
// Sydney), in one window of wall time per offset.
func TestWindowReadsEveryZone(t *testing.T) {
	r := newRigWith(t, rigOptions{sim: func(c *vistasim.Config) { c.Cinemas, c.ShowsPerDay, c.PageSize = 9, 8, vistasim.NoPaging }})
	w := r.windowed("a")
	r.step(w)
	zones := map[time.Duration]bool{}
	for _, s := range r.sim.Sessions() {
		_, off := s.Showtime.Zone()
		zones[time.Duration(off)*time.Second] = true
	}
	if len(zones) < 3 {
		t.Fatalf("the simulated chain has %d UTC offsets, want 3 or more (the test needs them)", len(zones))
	}
	checked := 0
	for h := range 24 { // through a day, so that each zone has its evening
		r.clock.Add(time.Hour)
		r.sim.ResetRequests()
		r.step(w)
		now := r.clock.Now()
		var sw *sweep
		r.locked(w, func() { sw = w.st.checker.windows[0] })
		for id, rec := range w.st.cache[keys.Sessions] {
			if d := rec.showtime.time().Sub(now); d >= sw.from && d < sw.to && !sw.lastSeen[id] {
				t.Errorf("hour %d: session %s, %v from now, was not in the near sweep's answer", h, id, d)
			}
			if d := rec.showtime.time().Sub(now); d >= sw.from && d < sw.to {
				checked++
			}
		}
		if got := r.sim.Requests()[vistasim.EndpointWindow]; got > 2 {
			t.Errorf("hour %d: %d window queries in one step, want at most two: one a sweep, whatever the zones", h, got)
		}
	}
	if checked == 0 {
		t.Fatal("no session within the near sweep's span all day (the test needs some)")
	}
}

func TestWallRangesMergeOverlappingOffsets(t *testing.T) {
	at := time.Date(2031, 11, 26, 20, 0, 0, 0, time.UTC)
	shows := func(ts ...time.Time) *showtimes {
		s := &showtimes{}
		for _, t := range ts {
			s.add(t, 1)
		}
		return s
	}
	offsets := map[int]*showtimes{
		0:      shows(at.Add(10 * time.Minute)),
		3600:   shows(at.Add(30 * time.Minute)),
		-28800: shows(at.Add(50 * time.Minute)),
		32400:  shows(at.Add(5 * time.Hour)), // nothing in the span: no window
	}
	got := wallRanges(offsets, at.Add(-20*time.Minute), at.Add(time.Hour))
	want := []vista.Window{
		{From: time.Date(2031, 11, 26, 11, 40, 0, 0, time.UTC), To: time.Date(2031, 11, 26, 13, 0, 0, 0, time.UTC)},
		{From: time.Date(2031, 11, 26, 19, 40, 0, 0, time.UTC), To: time.Date(2031, 11, 26, 22, 0, 0, 0, time.UTC)},
	}
	if len(got) != len(want) {
		t.Fatalf("wallRanges = %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].From.Equal(want[i].From) || !got[i].To.Equal(want[i].To) {
			t.Errorf("window %d = %v, want %v", i, got[i], want[i])
		}
	}
}

// A Vista that answers window queries more slowly than the sweep's
// interval is asked by id instead: three slow answers in a row turn the
// sweeps off for a minute, and the checks by id keep the near window on
// its interval meanwhile.
func TestSlowWindowsFallBackToChecksByID(t *testing.T) {
	r := newRigWith(t, rigOptions{client: func(c *vista.Config) { c.Timeout = 10 * time.Second }})
	w, s := r.windowedBefore(5*time.Minute, 3*time.Hour, func(c *Config) {
		c.Policy = DefaultPolicy()
		c.Policy.NearInterval = time.Second
	})
	r.sim.Fail(vistasim.Failure{Mode: vistasim.FailSlow, Delay: 1200 * time.Millisecond, Endpoint: vistasim.EndpointWindow, Count: -1})
	r.stepFor(w, 4*time.Second, time.Second) // three slow near sweeps
	if got := testutil.ToFloat64(w.m.sweeps.WithLabelValues("near", "slow")); got < 3 {
		t.Fatalf("window_queries_total{near,slow} = %v, want 3", got)
	}
	r.sim.ResetRequests()
	seats := r.otherSeats(s.ID)
	r.sim.SetSeats(s.ID, seats)
	r.stepFor(w, 2*time.Second, time.Second)
	if got := r.hash(keys.Sessions, s.ID)[keys.FieldSeatsAvailable]; got != strconv.Itoa(seats) {
		t.Errorf("seats_available two near intervals after the change, windows slow = %q, want %d", got, seats)
	}
	reqs := r.sim.Requests()
	if reqs[vistasim.EndpointWindow] != 0 || reqs[vistasim.EndpointSeats] == 0 {
		t.Errorf("while windows are slow: %d window queries, %d checks by id; want none and some",
			reqs[vistasim.EndpointWindow], reqs[vistasim.EndpointSeats])
	}
}

// A session Vista moves into the near span, from hours ahead, is read by
// the next near sweep by its new showtime, although the cache still holds
// the old one until the next full reload.
func TestSessionMovedIntoTheWindowIsRead(t *testing.T) {
	r := newRig(t)
	w, s := r.windowedBefore(30*time.Minute, 3*time.Hour)
	r.stepFor(w, 30*time.Second, 10*time.Second)
	far := r.upcoming(7*time.Hour, 40*time.Hour) // beyond every sweep
	r.sim.MoveSession(far.ID, s.Showtime)
	seats := r.otherSeats(far.ID)
	r.sim.SetSeats(far.ID, seats)
	r.stepFor(w, 10*time.Second, 10*time.Second)
	if got := r.hash(keys.Sessions, far.ID)[keys.FieldSeatsAvailable]; got != strconv.Itoa(seats) {
		t.Errorf("seats_available of a session moved into the next hour, a near interval later = %q, want %d", got, seats)
	}
}

// scriptCalls keeps the commands of each fenced write (a call of the
// fence script) apart, in the order they went; add it with
// rdb.AddHook(seeCommands(h.keep)).
type scriptCalls struct {
	mu    sync.Mutex
	calls [][][]any
}

func (h *scriptCalls) keep(cmds []redis.Cmder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range cmds {
		if inner, ok := fencedCommands(c.Args()); ok {
			h.calls = append(h.calls, inner)
		}
	}
}

// A sweep's answer that changes a session and confirms others writes the
// change, and its event, first, in a write of its own: the event does not
// wait for Redis to run the confirmations, which follow in the next write.
func TestSweepNewsGoBeforeItsConfirmations(t *testing.T) {
	r := newRig(t)
	w, s := r.windowedBefore(5*time.Minute, 3*time.Hour)
	r.stepFor(w, 30*time.Second, 10*time.Second)
	// Every other session's check by id falls due between the next sweep
	// and the one after it: the next sweep confirms them all.
	r.locked(w, func() {
		for id, rec := range w.st.cache[keys.Sessions] {
			if id != s.ID {
				w.st.checker.reschedule(id, rec, r.clock.Now().Add(15*time.Second))
			}
		}
	})
	h := &scriptCalls{}
	r.rdb.AddHook(seeCommands(h.keep))
	r.sim.SetSeats(s.ID, r.otherSeats(s.ID))
	r.clock.Add(10 * time.Second)
	r.step(w)

	h.mu.Lock()
	defer h.mu.Unlock()
	first, confirms := -1, 0
	for i, call := range h.calls {
		for _, args := range call {
			switch name := fmt.Sprint(args[0]); {
			case name == "publish" && first < 0 && strings.Contains(fmt.Sprintf("%s", args[2]), s.ID):
				first = i
			case name == hashWriteCmd && fmt.Sprint(args[1]) != keys.Entity(r.prefix, keys.Sessions, s.ID):
				if i == first {
					t.Errorf("the write that announces %s also confirms %s", s.ID, args[1])
				}
				if first >= 0 && i > first {
					confirms++
				}
			}
		}
	}
	if first < 0 {
		t.Errorf("no write announced %s", s.ID)
	}
	if confirms == 0 {
		t.Errorf("no confirmation written after the change: the near sweep confirms the sessions whose check is due")
	}
	if t.Failed() {
		for i, call := range h.calls {
			var names []string
			for _, a := range call {
				names = append(names, fmt.Sprint(a[0]))
			}
			t.Logf("write %d: %v", i, names)
		}
	}
}

// A sweep and a check by id sent at the same instant (for a session the
// last sweep lacked) may both give the session: it is written once, with
// one event; and where one of them calls it gone, the one that found it
// is taken, as a window never removes and the other saw it.
func TestTwoAnswersOfOneInstantWriteOnce(t *testing.T) {
	for _, c := range []struct {
		name   string
		byID   func(s vista.Seats) ([]vista.Seats, []string)
		events string // the session's events, by kind
	}{
		{"both find it", func(s vista.Seats) ([]vista.Seats, []string) { return []vista.Seats{s}, nil }, "item"},
		{"the check by id calls it gone", func(s vista.Seats) ([]vista.Seats, []string) { return nil, []string{s.ID} }, "item"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			w, s := r.windowedBefore(20*time.Minute, 3*time.Hour)
			seats := vista.Seats{ID: s.ID, SeatsAvailable: r.otherSeats(s.ID), HasSoldoutStatus: true, HasStatus: true, Status: "0", State: keys.StateOpen}
			n := len(r.events())
			r.locked(w, func() {
				now := r.clock.Now()
				found, gone := c.byID(seats)
				byID := &ask{st: w.st, ids: []string{s.ID}, due: map[string]time.Time{}, asked: now, seats: found, gone: gone}
				sweep := &ask{st: w.st, window: w.st.checker.windows[0], asked: now, seats: []vista.Seats{seats}}
				for _, order := range [][]*ask{{byID, sweep}, {sweep, byID}} {
					if err := w.writeAnswers(r.ctx, order); err != nil {
						t.Fatal(err)
					}
					seats.SeatsAvailable++ // the next order writes a change again
					sweep.seats[0].SeatsAvailable = seats.SeatsAvailable
					if byID.seats != nil {
						byID.seats[0].SeatsAvailable = seats.SeatsAvailable
					}
				}
			})
			var kinds []string
			for _, ev := range forID(r.eventsSince(n), s.ID) {
				kinds = append(kinds, ev.Event)
			}
			if want := []string{c.events, c.events}; !slices.Equal(kinds, want) {
				t.Errorf("events of %s after two batches of two answers: %v, want %v (one a batch)", s.ID, kinds, want)
			}
			if got := r.hash(keys.Sessions, s.ID)[keys.FieldSeatsAvailable]; got != strconv.Itoa(seats.SeatsAvailable-1) {
				t.Errorf("seats_available = %q, want %d", got, seats.SeatsAvailable-1)
			}
		})
	}
}
