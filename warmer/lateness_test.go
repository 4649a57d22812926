package warmer

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vista-warmer/vista-warmer/internal/testkit"
	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// checkTimes is what one tier's series of a check-timing histogram holds.
type checkTimes struct {
	count uint64
	sum   float64
	over  map[float64]uint64 // observations above each bucket's bound
}

// readCheckTimes gathers reg and returns the near tier of the histogram name.
func readCheckTimes(t *testing.T, reg *prometheus.Registry, name string) checkTimes {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			near := false
			for _, l := range m.GetLabel() {
				near = near || l.GetName() == "tier" && l.GetValue() == "near"
			}
			if !near {
				continue
			}
			h := m.GetHistogram()
			ct := checkTimes{count: h.GetSampleCount(), sum: h.GetSampleSum(), over: map[float64]uint64{}}
			for _, b := range h.GetBucket() {
				ct.over[b.GetUpperBound()] = ct.count - b.GetCumulativeCount()
			}
			return ct
		}
	}
	t.Fatalf("%s has no near series", name)
	return checkTimes{}
}

// lateRig is a rig whose clock starts at a fixed instant, with a session
// in the near window, and a warmer with metrics of its own.
type lateRig struct {
	*rig
	show time.Time // the session's showtime
}

func newLateRig(t *testing.T) *lateRig {
	t.Helper()
	clock := testkit.NewClock(time.Date(2031, 3, 14, 16, 0, 0, 0, time.UTC))
	r := newRigWith(t, rigOptions{sim: func(c *vistasim.Config) { c.Clock = clock.Now }})
	r.clock = clock
	s := r.upcoming(30*time.Minute, 48*time.Hour)
	// Nine minutes before the showtime: checked every 10 s (the near window).
	r.clock.Set(s.Showtime.Add(-9 * time.Minute))
	return &lateRig{rig: r, show: s.Showtime}
}

func (r *lateRig) warmerWithMetrics(id string, tweak ...func(*Config)) (*Warmer, *prometheus.Registry) {
	r.t.Helper()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	return r.warmer(id, append([]func(*Config){func(c *Config) { c.Metrics = m }}, tweak...)...), reg
}

// run steps w every second for d on the rig's clock.
func (r *lateRig) run(w *Warmer, d time.Duration) {
	r.t.Helper()
	for end := r.clock.Now().Add(d); r.clock.Now().Before(end); {
		r.clock.Add(time.Second)
		r.step(w)
	}
}

// A warmer stopped for five minutes and started again does not count the
// stop as lateness (it raised VistaWarmerNearChecksLate after every
// restart): the near checks overdue when it takes over are counted in
// vista_warmer_check_unkept_seconds, with how long they went unchecked.
// A check late while the warmer runs is still lateness.
func TestRestartIsNotLateness(t *testing.T) {
	r := newLateRig(t)
	first, reg1 := r.warmerWithMetrics("a")
	r.step(first)
	r.run(first, time.Minute)
	before := readCheckTimes(t, reg1, "vista_warmer_check_lateness_seconds")
	if before.count == 0 || before.over[1] != 0 {
		t.Fatalf("near checks of a running warmer: %d, %d more than 1 s late; want some, none late", before.count, before.over[1])
	}
	r.stop(first)

	const stopped = 5 * time.Minute
	r.clock.Add(stopped)
	second, reg2 := r.warmerWithMetrics("b")
	r.step(second)
	late := readCheckTimes(t, reg2, "vista_warmer_check_lateness_seconds")
	unkept := readCheckTimes(t, reg2, "vista_warmer_check_unkept_seconds")
	if late.count == 0 || late.over[1] != 0 {
		t.Errorf("near checks after the restart: %d, %d more than 1 s late (%.0f s in all); want some, none late",
			late.count, late.over[1], late.sum)
	}
	// The near checks were due within 10 s after the stop.
	if unkept.count != late.count || unkept.over[120] != unkept.count ||
		unkept.sum < float64(unkept.count)*(stopped-10*time.Second).Seconds() || unkept.sum > float64(unkept.count)*stopped.Seconds() {
		t.Errorf("unkept near checks after a %v stop = %d, %.0f s in all, %d over 120 s; want %d, each 290 to 300 s",
			stopped, unkept.count, unkept.sum, unkept.over[120], late.count)
	}

	// Running, the writer misses its checks by 30 s (a step held up, say):
	// that is lateness, and nothing unkept.
	r.run(second, 30*time.Second)
	r.clock.Add(30 * time.Second)
	r.step(second)
	after := readCheckTimes(t, reg2, "vista_warmer_check_lateness_seconds")
	if after.over[10]-late.over[10] == 0 {
		t.Errorf("near checks 30 s late while the warmer ran: none counted more than 10 s late (%d checks, %.0f s)", after.count, after.sum)
	}
	if got := readCheckTimes(t, reg2, "vista_warmer_check_unkept_seconds"); got.count != unkept.count {
		t.Errorf("unkept near checks = %d after checks late while the warmer ran, want %d as before", got.count, unkept.count)
	}
}

// With window queries on (the default), the restarted warmer's first
// sweep reads the near sessions before any check by id falls due: the
// sweep is their check, and the five minutes they went unchecked count in
// vista_warmer_check_unkept_seconds all the same (they counted nowhere).
func TestRestartWithWindowsCountsUnkept(t *testing.T) {
	r := newLateRig(t)
	windows := func(c *Config) { c.Windows = true }
	first, _ := r.warmerWithMetrics("a", windows)
	r.step(first)
	r.run(first, time.Minute)
	r.stop(first)

	const stopped = 5 * time.Minute
	r.clock.Add(stopped)
	second, reg := r.warmerWithMetrics("b", windows)
	r.step(second)
	unkept := readCheckTimes(t, reg, "vista_warmer_check_unkept_seconds")
	if unkept.count == 0 || unkept.sum < float64(unkept.count)*(stopped-10*time.Second).Seconds() || unkept.sum > float64(unkept.count)*stopped.Seconds() {
		t.Errorf("unkept near checks after a %v stop, windows on = %d, %.0f s in all; want some, each 290 to 300 s", stopped, unkept.count, unkept.sum)
	}
	r.run(second, time.Minute)
	// The sweeps take the near checks up: each counts in the lateness
	// histogram, none late, so VistaWarmerNearChecksLate has data.
	if late := readCheckTimes(t, reg, "vista_warmer_check_lateness_seconds"); late.count == 0 || late.over[1] != 0 {
		t.Errorf("near checks after the restart, windows on: %d, %d more than 1 s late; want some, none late", late.count, late.over[1])
	}
	if got := readCheckTimes(t, reg, "vista_warmer_check_unkept_seconds"); got.count != unkept.count {
		t.Errorf("unkept near checks = %d a minute after the restart, want %d: each counted once", got.count, unkept.count)
	}
}

// A writer paused past its lease (SIGSTOP, a frozen VM) that takes the
// lease back with nobody having written keeps its state, and counts the
// pause as unkept, not as lateness.
func TestPausePastTheLeaseIsNotLateness(t *testing.T) {
	r := newLateRig(t)
	w, reg := r.warmerWithMetrics("a")
	r.step(w)
	r.run(w, 30*time.Second)
	before := readCheckTimes(t, reg, "vista_warmer_check_lateness_seconds")
	st := w.st

	// The lease runs out while the process sleeps; nobody else writes.
	// The lease is kept on real time: the pause lasts a renewal's interval.
	if err := r.rdb.Del(r.ctx, keys.Lease(r.prefix)).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(w.cfg.LeaseTTL / 3)
	r.clock.Add(3 * time.Minute)
	r.step(w)
	if w.st != st {
		t.Fatal("the writer read the cache anew; want it kept (nobody wrote meanwhile)")
	}
	late := readCheckTimes(t, reg, "vista_warmer_check_lateness_seconds")
	unkept := readCheckTimes(t, reg, "vista_warmer_check_unkept_seconds")
	if late.count == before.count || late.over[1] != before.over[1] {
		t.Errorf("near checks after the pause: %d, %d more than 1 s late; want more than %d, none more late than before",
			late.count, late.over[1], before.count)
	}
	if unkept.count == 0 || unkept.over[120] != unkept.count {
		t.Errorf("unkept near checks after a 3 m pause = %d, %d over 120 s; want all of them over 120 s", unkept.count, unkept.over[120])
	}
}

// A check by id that a sweep took up counts as a check once: when the
// sweep's answer reads the session, or, when the sweep fails, when the
// check goes by id after all, from the time it fell due. (It counted at
// once when the sweep went out, and again when a failed sweep sent it
// by id.)
func TestFailedSweepCountsItsChecksOnce(t *testing.T) {
	r := newLateRig(t)
	w, reg := r.warmerWithMetrics("a", func(c *Config) { c.Windows = true })
	r.step(w)
	r.run(w, time.Minute) // the sweeps take the near checks up
	late0, due0 := allObservations(t, reg, "vista_warmer_check_lateness_seconds"), dueChecks(t, reg)
	r.sim.Fail(vistasim.Failure{Mode: vistasim.FailStatus, Status: 503, Endpoint: vistasim.EndpointWindow, Count: -1})
	r.run(w, time.Minute)
	late, due := allObservations(t, reg, "vista_warmer_check_lateness_seconds")-late0, dueChecks(t, reg)-due0
	if late == 0 || late != due {
		t.Errorf("a minute of failing sweeps: %d checks counted in the lateness, %d sessions checked by id when due; want as many, more than none", late, due)
	}
	if n := testutil.ToFloat64(w.m.sweeps.WithLabelValues("near", "failed")); n == 0 {
		t.Error("no near sweep failed")
	}
}

// allObservations is the count of a histogram's observations, all series.
func allObservations(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// dueChecks is vista_warmer_session_checks_total{how="due"}.
func dueChecks(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "vista_warmer_session_checks_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "how" && l.GetValue() == "due" {
					return uint64(m.GetCounter().GetValue())
				}
			}
		}
	}
	return 0
}

// A sweep that stays out past its interval lets the check it took up go
// by id; when the sweep then fails, the session read by id since is left
// on the schedule that reading gave it, not sent again as overdue from
// the time it first fell due (it was, with half a minute of lateness).
func TestLateFailedSweepLeavesAReadSessionAlone(t *testing.T) {
	p := DefaultPolicy()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	t0 := time.Date(2031, 3, 14, 16, 0, 0, 0, time.UTC)
	cache := map[string]*record{}
	st := &state{cache: map[keys.Kind]map[string]*record{keys.Sessions: cache}, since: t0.Add(-time.Hour)}
	windows := p.sweeps()
	c := newChecker(p, 48, m, windows, func(s slot) bool { r := cache[s.id]; return r != nil && r.nextCheck == s.at })
	st.checker = c
	r := &record{showtime: instantOf(t0.Add(30 * time.Minute)), nextCheck: instantOf(t0.Add(2 * time.Second))}
	cache["s1"] = r
	c.put(r.nextCheck.time(), "s1")

	near := windows[0]
	near.flying, near.sentAt = true, time.Now() // the near sweep goes out at t0
	near.flyFrom, near.flyTo, near.held = t0.Add(near.from), t0.Add(near.to), map[string]time.Time{}
	sweep := &ask{st: st, window: near, asked: t0}
	if asks := c.due(st, t0.Add(2*time.Second)); len(asks) != 0 { // s1 falls due: the sweep takes it up
		t.Fatalf("%d checks by id while the sweep is out", len(asks))
	}
	near.sentAt = time.Now().Add(-near.every - time.Second) // the sweep is late
	asks := c.due(st, t0.Add(12*time.Second))
	if len(asks) != 1 {
		t.Fatalf("%d checks by id once the sweep is late, want 1", len(asks))
	}
	// Its answer is written.
	c.written("s1")
	c.late(asks[0], cache)
	read := t0.Add(12 * time.Second)
	next := p.NextCheck(read, r.showtime.time())
	r.nextCheck, r.checked, r.asOf = instantOf(next), instantOf(read), instantOf(read)
	c.put(next, "s1")
	before := allObservations(t, reg, "vista_warmer_check_lateness_seconds")

	sweep.err = errors.New("timeout") // the sweep fails at t0+30s
	held := near.held
	near.held = nil
	c.swept(sweep, t0.Add(30*time.Second))
	c.sweepChanges(sweep, held, cache, nil, func(string, *ask) bool { return false })
	if got := r.nextCheck.time(); !got.Equal(next) {
		t.Errorf("s1's next check after the failed sweep: %v, want %v, as its reading at +12s set it", got.Sub(t0), next.Sub(t0))
	}
	if asks := c.due(st, t0.Add(31*time.Second)); len(asks) != 0 {
		t.Errorf("s1 asked again by id at +31s, due %v", asks[0].due)
	}
	if n := allObservations(t, reg, "vista_warmer_check_lateness_seconds"); n != before {
		t.Errorf("%d more lateness observations after the failed sweep, want none", n-before)
	}
}

// A check that falls due while a sweep is out is taken up by it, and
// counts when its answer reads the session: on time, as the sweep had
// asked before the check fell due.
func TestCheckDueDuringASweepCountsOnTime(t *testing.T) {
	p := DefaultPolicy()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	t0 := time.Date(2031, 3, 14, 16, 0, 0, 0, time.UTC)
	r := session("1001-1", t0.Add(5*time.Minute), "41") // in the near tier
	r.nextCheck = instantOf(t0.Add(2 * time.Second))
	cache := map[string]*record{"1001-1": r}
	st := &state{cache: map[keys.Kind]map[string]*record{keys.Sessions: cache}, since: t0.Add(-time.Hour)}
	windows := p.sweeps()
	c := newChecker(p, 48, m, windows, func(s slot) bool { r := cache[s.id]; return r != nil && r.nextCheck == s.at })
	st.checker = c
	c.put(r.nextCheck.time(), "1001-1")
	near := windows[0]
	near.flying, near.sentAt = true, time.Now() // the near sweep goes out at t0
	near.flyFrom, near.flyTo, near.held = t0.Add(near.from), t0.Add(near.to), map[string]time.Time{}
	if asks := c.due(st, t0.Add(2*time.Second)); len(asks) != 0 {
		t.Fatalf("%d checks by id while the sweep is out", len(asks))
	}
	sweep := &ask{st: st, window: near, asked: t0,
		seats: []vista.Seats{{ID: "1001-1", SeatsAvailable: 41, HasSoldoutStatus: true, HasStatus: true, Status: "0", State: keys.StateOpen}}}
	held := near.held
	near.held = nil
	c.swept(sweep, t0.Add(3*time.Second))
	c.sweepChanges(sweep, held, cache, baseFields[keys.Sessions], func(string, *ask) bool { return false })
	late := readCheckTimes(t, reg, "vista_warmer_check_lateness_seconds")
	if late.count != 1 || late.sum != 0 {
		t.Errorf("lateness after the sweep read the session: %d observations, %v s in all; want 1, on time", late.count, late.sum)
	}
}
