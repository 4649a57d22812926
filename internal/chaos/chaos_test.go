package chaos

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The recorder's and the nemesis's clients follow failovers and lose
// Redis all the time: go-redis would say so on stderr, between the
// report's lines.
func init() { redis.SetLogger(quiet{}) }

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// TestChaos is make chaos: the built warmer, as a writer and a standby,
// against real redis-servers and the simulated Vista, with a nemesis
// injecting faults drawn from CHAOS_SEED for CHAOS_DURATION; then the
// world is healed, left to calm down, and the recorded history is held
// against the invariants.
//
//	CHAOS_DURATION  how long the nemesis runs (required: the test skips without it)
//	CHAOS_SEED      the seed the faults are drawn from (default 1); odd seeds run the
//	                single Redis with AOF, even ones without
//	CHAOS_TOPOLOGY  single, sentinel, or both (default): the two side by side
//	CHAOS_KEEP      1: keep the history (JSON) even when nothing is violated
//
// Each topology's logs, report and (on a violation) history go to
// bin/chaos/TOPOLOGY-seed-SEED/.
func TestChaos(t *testing.T) {
	v := os.Getenv("CHAOS_DURATION")
	if v == "" {
		t.Skip("the robustness suite runs with make chaos (CHAOS_DURATION=2m CHAOS_SEED=1)")
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("CHAOS_DURATION=%q: want a duration such as 2m", v)
	}
	seed := uint64(1)
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("CHAOS_SEED=%q: want a number", v)
		}
	}
	topologies := []string{Single, Sentinel}
	switch v := os.Getenv("CHAOS_TOPOLOGY"); v {
	case "", "both":
	case Single, Sentinel:
		topologies = []string{v}
	default:
		t.Fatalf("CHAOS_TOPOLOGY=%q: single, sentinel or both", v)
	}
	bins := Build(t, t.TempDir(), "")
	for _, topo := range topologies {
		t.Run(topo, func(t *testing.T) {
			if len(topologies) > 1 {
				t.Parallel()
			}
			o := Options{Topology: topo, AOF: topo == Single && seed%2 == 1}
			r := run{seed: seed, d: d, opts: o, plan: Plan(seed, o, d), seatsEvery: time.Second}
			h, w := r.do(t, bins)
			vs := Check(h)
			report := Report(h, vs)
			replay := fmt.Sprintf("make chaos DURATION=%s SEED=%d TOPOLOGY=%s", d, seed, topo)
			out := r.keep(t, w, h, report, len(vs) > 0 || os.Getenv("CHAOS_KEEP") == "1")
			fmt.Printf("\n== chaos %s, seed %d, %v (AOF %v) ==\n%s\n%s\nlogs: %s\n", topo, seed, d, o.AOF, report, rssLine(h), out)
			t.Logf("chaos %s, seed %d: %d violations; logs in %s", topo, seed, len(vs), out)
			if len(vs) > 0 {
				t.Errorf("seed %d, %s: %d violations of the invariants (the report above); replay: %s", seed, topo, len(vs), replay)
			}
		})
	}
}

// TestWrongWarmersAreCaught shows that the checker can fail: for each way
// a warmer built with -tags chaosbug can be made wrong, a short run with
// the faults that expose it must be caught by the invariant it breaks.
// make chaos-bugs runs it (CHAOS_BUGS=1).
func TestWrongWarmersAreCaught(t *testing.T) {
	if os.Getenv("CHAOS_BUGS") == "" {
		t.Skip("runs with make chaos-bugs (CHAOS_BUGS=1): each wrong warmer of -tags chaosbug must be caught")
	}
	bins := Build(t, t.TempDir(), "chaosbug")
	for _, c := range []struct {
		bug  string
		want []int // any of these invariants
		d    time.Duration
		plan []Planned
	}{
		// Both warmers believe they hold the lease, and write unfenced; a
		// writer paused past its lease wakes and writes on.
		{"skipfence", []int{invStream, invFence}, 40 * time.Second,
			[]Planned{{At: 5 * time.Second, Dur: 12 * time.Second, Name: "warmer-stop"}}},
		// One event in a hundred is numbered and never sent: fast seat
		// changes make a few hundred events.
		{"dropevent", []int{invStream}, 45 * time.Second, nil},
		// An item event goes out before its hash is written.
		{"hashafter", []int{invArrival}, 40 * time.Second, nil},
		// An empty list of sessions (Param 0: the list, not the seat
		// checks) is let through.
		{"emptylist", []int{invDrop}, 50 * time.Second,
			[]Planned{{At: 3 * time.Second, Dur: 45 * time.Second, Name: "vista-empty", Param: 0}}},
	} {
		t.Run(c.bug, func(t *testing.T) {
			t.Parallel()
			r := run{seed: 1, d: c.d, plan: c.plan, seatsEvery: 200 * time.Millisecond, calm: 10 * time.Second,
				opts: Options{Topology: Single, Bug: c.bug}}
			h, w := r.do(t, bins)
			vs := Check(h)
			report := Report(h, vs)
			caught := slices.ContainsFunc(vs, func(v Violation) bool { return slices.Contains(c.want, v.Invariant) })
			if !caught {
				out := r.keep(t, w, h, report, true)
				t.Errorf("the warmer made wrong by %s was not caught by invariant %v; the report:\n%s\nlogs: %s", c.bug, c.want, report, out)
				return
			}
			var by []string
			for _, v := range vs {
				if slices.Contains(c.want, v.Invariant) && len(by) < 3 {
					by = append(by, fmt.Sprintf("%d: %s", v.Invariant, v.What))
				}
			}
			t.Logf("%s caught (%d violations), e.g.\n  %s", c.bug, len(vs), strings.Join(by, "\n  "))
		})
	}
}

// rssLine sums up the warmers' memory: each process that ran to the end,
// its baseline (its RSS after the warm-up; for a standby, or a process
// started later, a warm writer's) and its RSS at the end.
func rssLine(h *History) string {
	var parts []string
	for _, p := range h.Processes {
		if p.RSSWarm > 0 && p.RSSEnd > 0 {
			parts = append(parts, fmt.Sprintf("%s %.1f → %.1f MiB", p.Instance, float64(p.RSSWarm)/(1<<20), float64(p.RSSEnd)/(1<<20)))
		}
	}
	if len(parts) == 0 {
		return "RSS: no process ran from the warm-up to the end"
	}
	return "RSS after the warm-up → at the end: " + strings.Join(parts, ", ")
}

// run is one run of the suite: a world, a recorder, a nemesis with its
// plan, and the calm after it.
type run struct {
	seed       uint64
	d          time.Duration // the nemesis
	calm       time.Duration // after it; default two sessions reload periods and 30 s
	opts       Options
	plan       []Planned
	seatsEvery time.Duration
}

// do runs it and returns the history, the world still up (its processes
// end with the test).
func (r *run) do(t *testing.T, bins Binaries) (*History, *World) {
	o := r.opts.withDefaults()
	if r.calm == 0 {
		r.calm = 2*o.Period + 30*time.Second
	}
	o.Span = r.d + r.calm + 5*time.Minute
	var plan strings.Builder
	for _, p := range r.plan {
		fmt.Fprintln(&plan, "  ", p)
	}
	t.Logf("seed %d, %s, AOF %v, nemesis %v, calm %v; the plan:\n%s", r.seed, o.Topology, o.AOF, r.d, r.calm, plan.String())

	w := NewWorld(t, bins, o)
	h := &History{Seed: r.seed, Duration: r.d, MaxDrop: o.MaxDrop, NearEvery: o.NearInterval,
		LeaseTTL: o.LeaseTTL, Period: o.Period, Start: time.Now()}
	// The recording begins before the warmers do: the truth then covers
	// what their first load read.
	rec := Record(w, h)
	stopped := false
	stopRec := func() {
		if !stopped {
			stopped = true
			rec.Stop()
		}
	}
	t.Cleanup(stopRec)
	w.StartWarmers()

	// Warm-up: a few seat checks go by before the baseline is taken.
	time.Sleep(5 * time.Second)
	// The baseline is a warm writer's: a standby holds less until it
	// takes over, and then grows to what the writer had, which is no leak.
	var warm int64
	for _, x := range []*Warmer{w.Writer, w.Standby} {
		rss := x.MarkWarm()
		warm = max(warm, rss)
		w.Logf("%s RSS after the warm-up: %.1f MiB", x.Name, float64(rss)/(1<<20))
	}
	w.Standby.RaiseWarm(warm)
	w.SetWarmRSS(warm)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		Seats(ctx, w, r.seed, r.seatsEvery)
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()

	nem := NewNemesis(w, rec, r.plan, r.d)
	nem.Run(ctx, t)
	h.Calm = time.Now()
	w.Logf("calm: every fault healed")
	time.Sleep(r.calm)

	for _, x := range []*Warmer{w.Writer, w.Standby} {
		x.MarkEnd()
	}
	cancel()
	wg.Wait()
	stopRec()
	h.Faults = nem.Faults()
	h.Processes = w.Processes()
	for _, x := range []*Warmer{w.Writer, w.Standby} {
		if x.Running() && !x.Stop(10*time.Second) {
			t.Errorf("%s did not stop cleanly on SIGTERM at the end:\n%s", x.Name, x.Output())
		}
	}
	return h, w
}

// keep copies the world's logs and the report (and, when full, the
// history as JSON) to bin/chaos/TOPOLOGY-seed-SEED (or -BUG) at the
// module's top, and returns that folder.
func (r *run) keep(t *testing.T, w *World, h *History, report string, full bool) string {
	name := fmt.Sprintf("%s-seed-%d", r.opts.Topology, r.seed)
	if r.opts.Bug != "" {
		name = "bug-" + r.opts.Bug
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "bin", "chaos", name))
	if err != nil {
		return ""
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("keep: %v", err)
		return ""
	}
	files, _ := filepath.Glob(filepath.Join(w.Dir(), "*.log"))
	for _, f := range files {
		copyFile(f, filepath.Join(dir, filepath.Base(f)))
	}
	os.WriteFile(filepath.Join(dir, "report.txt"), []byte(report), 0o644)
	if full {
		if f, err := os.Create(filepath.Join(dir, "history.json.gz")); err == nil {
			z := gzip.NewWriter(f)
			json.NewEncoder(z).Encode(h)
			z.Close()
			f.Close()
		}
	}
	return dir
}

func copyFile(from, to string) {
	in, err := os.Open(from)
	if err != nil {
		return
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return
	}
	defer out.Close()
	io.Copy(out, in)
}

// TestPlanIsTheSeeds: the plan is a function of the seed and the world's
// options, never more than two faults at once, never two on one resource.
func TestPlanIsTheSeeds(t *testing.T) {
	for _, topo := range []string{Single, Sentinel} {
		o := Options{Topology: topo}
		a, b := Plan(7, o, 10*time.Minute), Plan(7, o, 10*time.Minute)
		if !slices.Equal(a, b) {
			t.Fatalf("%s: two plans of seed 7 differ", topo)
		}
		if c := Plan(8, o, 10*time.Minute); slices.Equal(a, c) {
			t.Errorf("%s: seeds 7 and 8 plan the same", topo)
		}
		if len(a) < 50 {
			t.Errorf("%s: %d faults in 10 minutes, want a fault every few seconds", topo, len(a))
		}
		seen := map[string]bool{}
		for i, p := range a {
			k := kindByName(p.Name)
			seen[p.Name] = true
			if k.topology != "" && k.topology != topo {
				t.Errorf("%s: %s planned, a fault of %s only", topo, p.Name, k.topology)
			}
			if p.At+p.Dur > 10*time.Minute {
				t.Errorf("%s: %v ends after the nemesis", topo, p)
			}
			active := 0
			for _, q := range a[:i] {
				if q.At <= p.At && p.At < q.At+q.Dur {
					active++
					if kindByName(q.Name).resource == k.resource {
						t.Errorf("%s: %v overlaps %v on %s", topo, p, q, k.resource)
					}
				}
			}
			if active >= 2 {
				t.Errorf("%s: %v starts while %d faults run", topo, p, active)
			}
		}
		for _, p := range Plan(7, o, time.Hour) {
			seen[p.Name] = true
		}
		for _, k := range faultKinds {
			if (k.topology == "" || k.topology == topo) && !seen[k.name] {
				t.Errorf("%s: %s never drawn in an hour", topo, k.name)
			}
		}
	}
}
