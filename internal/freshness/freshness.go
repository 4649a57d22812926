// Package freshness measures how fresh the seats in Redis are and what that
// costs upstream: it plays a day of a simulated Vista (vistasim) on a
// virtual clock against a real redis-server, once per refresh policy and
// scenario, and compares when each seat change happened upstream with when
// it reached Redis.
//
// The warmer runs as in production, through its exported API (New, Config,
// Run, Settle, Policy, Fetcher): a Fetcher wrapped around the Vista client logs, for each
// session measured, every reading that reached the warmer (a seat check that
// answered for it, or a full Sessions list) and the virtual time it was
// asked. The simulator says when each session's seats changed (its seats
// are a pure function of time that never rises, so each change is found by
// bisection, to the millisecond). A change at c is in Redis at the first
// reading asked at or after c, plus the modelled latency of that request.
// Samples of the Redis hashes are compared with the log as the day plays,
// so a log that disagreed with Redis would show.
package freshness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/vista-warmer/vista-warmer/internal/fakeclock"
	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
	"github.com/vista-warmer/vista-warmer/warmer"
)

// Policy is a refresh policy under test.
type Policy struct {
	Name       string
	Policy     warmer.Policy
	CheckBatch int  // ids per seat check request; 1 asks one session at a time
	Windows    bool // window queries (contract v1.2)
}

// Policies returns the project's policy and the three baselines.
func Policies() []Policy {
	return []Policy{
		{Name: ours, Policy: warmer.DefaultPolicy(), CheckBatch: 50, Windows: true},
		// The warmer before window queries (contract v1.1): checks by id
		// alone, on the curve.
		{Name: v11, Policy: warmer.DefaultPolicy(), CheckBatch: 50},
		// VistaStorage, the library this project replaces: the same curve,
		// one request per session check.
		{Name: "per-session", Policy: warmer.DefaultPolicy(), CheckBatch: 1},
		// Every session within the horizon, before and after its showtime,
		// every near interval, batched like the project (NearWindow equal
		// to Horizon makes all of them near).
		{Name: "fixed", Policy: warmer.Policy{Horizon: time.Hour, NearWindow: time.Hour,
			NearInterval: 10 * time.Second, Base: time.Minute, Grace: 20 * time.Minute}, CheckBatch: 50},
	}
}

// Scenario is what Vista does during a run.
type Scenario struct {
	Name string
	// Latency, when set, is each request's answer time in virtual time.
	Latency Latency
	// RowCost, when set, is what each row a list or a window returns adds
	// to its answer time: a request's latency grows with its rows.
	RowCost time.Duration
	// ListOutage, when set, is how long the full Sessions list fails (503)
	// in the busiest hour of the part of the day played, from five minutes
	// past that hour, so the hourly reload at ten past falls in it.
	ListOutage time.Duration
}

// Scenarios returns the three scenarios: normal, Vista answering slowly
// (median 150 ms, p99 2 s, and 0.2 ms more for each row a list or a
// window returns), and the Sessions list failing for 10 minutes in
// the evening peak.
func Scenarios() []Scenario {
	return []Scenario{
		{Name: "normal"},
		{Name: "slow", Latency: LogNormal{Median: 150 * time.Millisecond, P99: 2 * time.Second}, RowCost: 200 * time.Microsecond},
		{Name: "list-fails", ListOutage: 10 * time.Minute},
	}
}

// Chain is the simulated chain: about 300 cinemas and 100k sessions listed
// over 14 days (300 × 4 screens × 7 shows × 14 days, about 90% listed at
// any moment: about 106k).
func Chain() vistasim.Config {
	return vistasim.Config{Seed: 1, Cinemas: 300, Films: 80, Screens: 4, ShowsPerDay: 7, Days: 14}
}

// Options configures a benchmark.
type Options struct {
	Chain vistasim.Config // Clock is set by the benchmark
	// From and To bound the part of the day measured (virtual, UTC).
	From, To time.Time
	// Warmup is played before From (the cache is built from nothing at its
	// start; after one longest interval, 22 minutes, every session is on
	// its schedule), Tail after To (a change just before To still gets
	// its check); neither is measured. Default 30m and 25m.
	Warmup, Tail time.Duration
	// Tick is how far the clock moves from one step to the next; default
	// 1s, as warmer.Run ticks.
	Tick      time.Duration
	Parallel  int // runs at once, each with a redis-server of its own; default 3
	Policies  []Policy
	Scenarios []Scenario
	Progress  io.Writer // a line per run; nil discards
}

// Tier names the bands the table reports, by the time from showtime to the
// change (rel = change − showtime).
var Tier = [...]struct {
	Name     string
	From, To time.Duration // rel in [From, To]
}{
	{"near window", -10 * time.Minute, 10 * time.Minute},
	{"approaching", -time.Hour, -10*time.Minute - time.Millisecond},
	{"started", 10*time.Minute + time.Millisecond, 20 * time.Minute},
	{"later today", -6 * time.Hour, -time.Hour - time.Millisecond},
}

// truthFrom is how long before its showtime a session's changes are
// found: the far end of the last tier.
const truthFrom = 6 * time.Hour

// Curve bounds: the plot's minutes relative to showtime, one bucket each.
const (
	curveFrom = -70
	curveTo   = 20
)

// Result is one policy in one scenario.
type Result struct {
	Scenario, Policy string
	Tiers            [len(Tier)]Summary
	// Curve is the p99 staleness per minute of rel from curveFrom, -1
	// where no seat changed.
	Curve      []time.Duration
	Unresolved int // changes no reading came after before the run ended

	Hours          float64 // virtual hours measured
	Requests       int64   // HTTP requests to Vista, every endpoint, retries included
	SeatRequests   int64   // of which seat checks by id
	WindowRequests int64   // and window queries
	CheckIDs       int64   // ids asked in seat checks
	RedisCommands  int64   // sent by the warmer, each of a pipeline counted
	// ServerCommands is what Redis ran for the warmer (INFO commandstats),
	// the commands its scripts call included.
	ServerCommands int64

	Steps, StepErrors   int
	Sampled, Mismatched int // Redis hashes compared with the log
	Outage              [2]time.Time
	Took                time.Duration // real time
}

// Run plays every scenario for every policy and returns the results in
// that order.
func Run(ctx context.Context, o Options) ([]Result, error) {
	o = o.withDefaults()
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	start := time.Now()
	tr := buildTruth(o.Chain, o.From, o.To)
	fmt.Fprintf(progress, "truth: %d sessions, %d seat changes between %s and %s (%v)\n",
		len(tr.watch), tr.total, o.From.Format(time.DateTime), o.To.Format(time.DateTime), time.Since(start).Round(time.Millisecond))
	// Runs share nothing but the truth, which they only read (each has
	// its own simulator, clock and redis-server), so they may run side by
	// side: virtual time does not care how busy the machine is.
	out := make([]Result, len(o.Scenarios)*len(o.Policies))
	errs := make([]error, len(out))
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(o.Parallel)
	for i := range out {
		sc, p := o.Scenarios[i/len(o.Policies)], o.Policies[i%len(o.Policies)]
		g.Go(func() error {
			res, err := runOne(ctx, o, tr, sc, p)
			if err != nil {
				errs[i] = fmt.Errorf("%s/%s: %w", sc.Name, p.Name, err)
				return nil // the other runs go on; every failure is reported
			}
			out[i] = res
			mu.Lock()
			fmt.Fprintf(progress, "%s/%s: %.1f virtual hours in %v, %d steps\n",
				sc.Name, p.Name, (o.To.Sub(o.From) + o.Warmup + o.Tail).Hours(), res.Took.Round(time.Second), res.Steps)
			mu.Unlock()
			return nil
		})
	}
	g.Wait()
	return out, errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.Warmup <= 0 {
		o.Warmup = 30 * time.Minute
	}
	if o.Tail <= 0 {
		o.Tail = 25 * time.Minute
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.Parallel <= 0 {
		o.Parallel = 3
	}
	if o.Policies == nil {
		o.Policies = Policies()
	}
	if o.Scenarios == nil {
		o.Scenarios = Scenarios()
	}
	return o
}

func runOne(ctx context.Context, o Options, tr *truth, sc Scenario, p Policy) (Result, error) {
	res := Result{Scenario: sc.Name, Policy: p.Name}
	began := time.Now()
	begin, end := o.From.Add(-o.Warmup), o.To.Add(o.Tail)
	clock := fakeclock.New(begin)

	chain := o.Chain
	chain.Clock = clock.Now
	sim := vistasim.New(chain)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	client, err := vista.New(vista.Config{BaseURL: srv.URL + "/WSVistaWebClient/", Timeout: time.Minute,
		Zones: vista.Zones{Default: time.UTC},
		// Retries take no virtual time; keep their real wait short too.
		BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond})
	if err != nil {
		return res, err
	}
	rec := newRecorder(client, clock, sc.Latency, sc.RowCost, tr.watch, chain.Seed)

	// A redis-server of the run's own: its command counts are the run's.
	srvRedis, err := StartRedis(ctx)
	if err != nil {
		return res, err
	}
	defer srvRedis.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srvRedis.Addr})
	defer rdb.Close()
	hook := &countHook{}
	rdb.AddHook(hook)
	look := redis.NewClient(&redis.Options{Addr: srvRedis.Addr}) // ours: not counted
	defer look.Close()
	prefix := "fresh"
	w, err := warmer.New(warmer.Config{
		Redis: rdb, Vista: rec, Prefix: prefix, InstanceID: "freshness",
		// The lease runs on real time; a cold load of 100k sessions must
		// not outlast it.
		LeaseTTL:     time.Hour,
		Policy:       p.Policy,
		CheckBatch:   p.CheckBatch,
		Windows:      p.Windows,
		SessionsCron: "10 * * * *",
		// Run steps when the virtual clock passes what is due, and when
		// it is settled after each tick.
		Clock: clock,
		Tick:  24 * time.Hour,
	})
	if err != nil {
		return res, err
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- w.Run(runCtx) }()
	defer func() {
		stop()
		<-ran
	}()

	if sc.ListOutage > 0 {
		at := tr.busiest.Add(5 * time.Minute)
		res.Outage = [2]time.Time{at, at.Add(sc.ListOutage)}
	}
	failing := false
	var (
		measuring, measured bool
		reqs0, seats0, win0 int64
		ids0, cmds0         int64
		server0             int64
		sampled             int64 // commands the samples sent
		nextSample          = o.From
	)
	// The virtual clock moves a tick at a time, and the warmer's Run is
	// settled after each: whatever came due was done. A seat answer lands
	// at its ask time plus its latency (the recorder's reading).
	for t := begin; t.Before(end); t = t.Add(o.Tick) {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		clock.Set(t)
		if sc.ListOutage > 0 {
			switch in := !t.Before(res.Outage[0]) && t.Before(res.Outage[1]); {
			case in && !failing:
				sim.Fail(vistasim.Failure{Mode: vistasim.FailStatus, Status: 503, Count: -1, Endpoint: vistasim.EndpointSessions})
				failing = true
			case !in && failing:
				sim.ClearFailures()
				failing = false
			}
		}
		if !measuring && !t.Before(o.From) {
			measuring = true
			reqs0, seats0, win0 = requests(sim)
			_, ids0 = rec.counts()
			cmds0 = hook.n.Load()
			if server0, err = serverCommands(ctx, look); err != nil {
				return res, err
			}
		}
		if measuring && !measured && !t.Before(o.To) {
			measured = true
			reqs, seats, win := requests(sim)
			_, ids := rec.counts()
			res.Requests, res.SeatRequests, res.WindowRequests = reqs-reqs0, seats-seats0, win-win0
			res.CheckIDs, res.RedisCommands = ids-ids0, hook.n.Load()-cmds0
			server, err := serverCommands(ctx, look)
			if err != nil {
				return res, err
			}
			res.ServerCommands = server - server0 - sampled
			res.Hours = t.Sub(o.From).Hours()
		}

		if err := w.Settle(ctx); err != nil {
			res.StepErrors++
		}
		res.Steps++

		if measuring && !measured && !t.Before(nextSample) {
			nextSample = t.Add(10 * time.Minute)
			s, m, asked, err := sample(ctx, look, prefix, tr, rec, t)
			if err != nil {
				return res, err
			}
			sampled += int64(asked)
			res.Sampled += s
			res.Mismatched += m
		}
	}
	res.Took = time.Since(began)
	res.score(tr, rec)
	return res, nil
}

func requests(sim *vistasim.Server) (all, seats, windows int64) {
	for ep, n := range sim.Requests() {
		all += n
		switch ep {
		case vistasim.EndpointSeats:
			seats = n
		case vistasim.EndpointWindow:
			windows = n
		}
	}
	return all, seats, windows
}

// sample compares the seats in Redis of up to 25 sessions in their near
// window with what the log says Redis got: the simulator's seats at the
// last reading asked. It returns how many were compared and disagreed.
func sample(ctx context.Context, rdb *redis.Client, prefix string, tr *truth, rec *recorder, now time.Time) (n, bad, asked int, err error) {
	var ids []string
	for id, st := range tr.showtime {
		if d := st.Sub(now); d >= -10*time.Minute && d <= 10*time.Minute {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = ids[:min(len(ids), 25)]
	for _, id := range ids {
		asked++
		got, err := rdb.HGet(ctx, keys.Session(prefix, id), "seats_available").Result()
		if err == redis.Nil {
			continue // expired, cancelled, or not listed
		}
		if err != nil {
			return n, bad, asked, fmt.Errorf("sample %s: %w", id, err)
		}
		rec.mu.Lock()
		rs := rec.readings[id]
		rec.mu.Unlock()
		if len(rs) == 0 {
			continue
		}
		want, _ := tr.oracle.SeatsAt(id, rs[len(rs)-1].at)
		n++
		if got != strconv.Itoa(want) {
			bad++
		}
	}
	return n, bad, asked, nil
}

// score turns the log into stalenesses.
func (res *Result) score(tr *truth, rec *recorder) {
	var tiers [len(Tier)][]time.Duration
	buckets := make([][]time.Duration, curveTo-curveFrom)
	for id, cs := range tr.changes {
		st := tr.showtime[id]
		rs := rec.readings[id]
		for _, c := range cs {
			in, ok := firstIn(rs, c)
			if !ok {
				res.Unresolved++
				continue
			}
			stale := in.Sub(c)
			rel := c.Sub(st)
			for i, tier := range Tier {
				if rel >= tier.From && rel <= tier.To {
					tiers[i] = append(tiers[i], stale)
				}
			}
			if b := int((rel - curveFrom*time.Minute) / time.Minute); b >= 0 && b < len(buckets) {
				buckets[b] = append(buckets[b], stale)
			}
		}
	}
	for i := range tiers {
		res.Tiers[i] = Summarize(tiers[i])
	}
	res.Curve = make([]time.Duration, len(buckets))
	for i, b := range buckets {
		res.Curve[i] = -1
		if len(b) > 0 {
			res.Curve[i] = Summarize(b).P99
		}
	}
}
