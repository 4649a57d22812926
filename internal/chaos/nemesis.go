package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/internal/redistest"
)

// A fault kind: what it does, to what, for how long, and what it may
// share the world with. The nemesis draws them from its seed.
type faultKind struct {
	name     string
	topology string // "" in every topology, else only in this one
	weight   int
	// resource: two faults on the same one never overlap. Faults on the
	// warmers name a role, "holder" (of the lease, when injected) or
	// "other", bound to a process when injected.
	resource string
	// minDur and maxDur bound how long it lasts; both 0: an instant.
	minDur, maxDur time.Duration
	// losesData: Redis may really lose the cache (see Fault.LosesData);
	// a function of the world, since a kill loses data only without AOF.
	losesData func(o Options) bool
	// inject does it and returns what heals it (nil: nothing to heal).
	inject func(n *Nemesis, f *fault) (heal func(), err error)
}

func never(Options) bool  { return false }
func always(Options) bool { return true }

// inSentinel: a fault that stops the master answering for over a second
// makes the sentinels fail over, and a failover may lose the last writes.
// CLIENT PAUSE WRITE does too: it holds PUBLISH, the sentinels' hello
// messages among them, and their link to the master with it.
func inSentinel(o Options) bool { return o.Topology == Sentinel }

// faultKinds is every fault the nemesis knows. Weights favour the faults
// that find bugs (pauses, partitions, kills) over the dull ones.
var faultKinds = []*faultKind{
	// Redis.
	{name: "redis-kill", weight: 5, resource: "redis", minDur: 2 * time.Second, maxDur: 15 * time.Second,
		losesData: func(o Options) bool { return o.Topology == Sentinel || !o.AOF }, inject: (*Nemesis).redisKill},
	{name: "redis-debug-sleep", weight: 3, resource: "redis", minDur: 2 * time.Second, maxDur: 12 * time.Second,
		losesData: inSentinel, inject: (*Nemesis).debugSleep},
	{name: "redis-pause-all", weight: 3, resource: "redis", minDur: 2 * time.Second, maxDur: 15 * time.Second,
		losesData: inSentinel, inject: func(n *Nemesis, f *fault) (func(), error) { return n.clientPause(f, "ALL") }},
	{name: "redis-pause-write", weight: 3, resource: "redis", minDur: 2 * time.Second, maxDur: 15 * time.Second,
		losesData: inSentinel, inject: func(n *Nemesis, f *fault) (func(), error) { return n.clientPause(f, "WRITE") }},
	{name: "redis-oom-noeviction", weight: 3, resource: "redis", minDur: 3 * time.Second, maxDur: 20 * time.Second,
		losesData: never, inject: func(n *Nemesis, f *fault) (func(), error) { return n.maxmemory(f, "noeviction") }},
	{name: "redis-oom-allkeys-lru", weight: 2, resource: "redis", minDur: 3 * time.Second, maxDur: 20 * time.Second,
		losesData: always, inject: func(n *Nemesis, f *fault) (func(), error) { return n.maxmemory(f, "allkeys-lru") }},
	{name: "redis-flushall", weight: 2, resource: "redis", losesData: always, inject: (*Nemesis).flushAll},
	{name: "redis-script-flush", weight: 2, resource: "redis", losesData: never, inject: (*Nemesis).scriptFlush},
	{name: "redis-password", topology: Single, weight: 2, resource: "redis", minDur: 3 * time.Second, maxDur: 20 * time.Second,
		losesData: never, inject: (*Nemesis).password},
	{name: "redis-failover", topology: Sentinel, weight: 5, resource: "redis", minDur: 5 * time.Second, maxDur: 10 * time.Second,
		losesData: always, inject: (*Nemesis).failover},

	// The network between a warmer and Redis (a proxy per warmer; the
	// sentinel topology has none: the warmers dial what the sentinels name).
	{name: "partition-both", topology: Single, weight: 3, resource: "proxy:holder", minDur: 2 * time.Second, maxDur: 20 * time.Second,
		losesData: never, inject: func(n *Nemesis, f *fault) (func(), error) {
			return n.partition(f, redistest.ToServer, redistest.ToClient)
		}},
	{name: "partition-to-redis", topology: Single, weight: 2, resource: "proxy:holder", minDur: 2 * time.Second, maxDur: 20 * time.Second,
		losesData: never, inject: func(n *Nemesis, f *fault) (func(), error) { return n.partition(f, redistest.ToServer) }},
	{name: "partition-to-warmer", topology: Single, weight: 2, resource: "proxy:holder", minDur: 2 * time.Second, maxDur: 20 * time.Second,
		losesData: never, inject: func(n *Nemesis, f *fault) (func(), error) { return n.partition(f, redistest.ToClient) }},
	{name: "partition-standby", topology: Single, weight: 1, resource: "proxy:other", minDur: 2 * time.Second, maxDur: 20 * time.Second,
		losesData: never, inject: func(n *Nemesis, f *fault) (func(), error) {
			return n.partition(f, redistest.ToServer, redistest.ToClient)
		}},
	{name: "slow-link", topology: Single, weight: 2, resource: "proxy:holder", minDur: 3 * time.Second, maxDur: 20 * time.Second,
		losesData: never, inject: (*Nemesis).slowLink},

	// The warmers.
	{name: "warmer-kill", weight: 3, resource: "warmer:holder", minDur: 1 * time.Second, maxDur: 10 * time.Second,
		losesData: never, inject: func(n *Nemesis, f *fault) (func(), error) { return n.endWarmer(f, syscall.SIGKILL) }},
	{name: "warmer-stop", weight: 4, resource: "warmer:holder", minDur: 2 * time.Second, maxDur: 20 * time.Second,
		losesData: never, inject: (*Nemesis).stopWarmer},
	{name: "warmer-term", weight: 2, resource: "warmer:holder", minDur: 1 * time.Second, maxDur: 8 * time.Second,
		losesData: never, inject: func(n *Nemesis, f *fault) (func(), error) { return n.endWarmer(f, syscall.SIGTERM) }},
	{name: "warmer-hup", weight: 1, resource: "warmer:holder", minDur: 1 * time.Second, maxDur: 8 * time.Second,
		losesData: never, inject: func(n *Nemesis, f *fault) (func(), error) { return n.endWarmer(f, syscall.SIGHUP) }},
	{name: "warmer-kill-standby", weight: 1, resource: "warmer:other", minDur: 1 * time.Second, maxDur: 10 * time.Second,
		losesData: never, inject: func(n *Nemesis, f *fault) (func(), error) { return n.endWarmer(f, syscall.SIGKILL) }},
	{name: "warmer-twin", weight: 2, resource: "twin", minDur: 5 * time.Second, maxDur: 20 * time.Second,
		losesData: never, inject: (*Nemesis).twin},

	// Vista.
	{name: "vista-5xx", weight: 3, resource: "vista", minDur: 2 * time.Second, maxDur: 20 * time.Second,
		losesData: never, inject: func(n *Nemesis, f *fault) (func(), error) {
			status := []int{500, 502, 503, 504}[f.param%4]
			return n.vistaFail(f, "mode=status&status="+strconv.Itoa(status), anyEndpoint)
		}},
	{name: "vista-429", weight: 2, resource: "vista", minDur: 2 * time.Second, maxDur: 20 * time.Second,
		losesData: never, inject: func(n *Nemesis, f *fault) (func(), error) {
			return n.vistaFail(f, "mode=rate-limit&retry_after="+strconv.Itoa(1+int(f.param%8))+"s", anyEndpoint)
		}},
	{name: "vista-hang", weight: 2, resource: "vista", minDur: 5 * time.Second, maxDur: 20 * time.Second,
		losesData: never, inject: func(n *Nemesis, f *fault) (func(), error) {
			return n.vistaFail(f, "mode=slow&delay=120s", []string{"sessions", "films", "cinemas", ""})
		}},
	{name: "vista-empty", weight: 3, resource: "vista", minDur: 5 * time.Second, maxDur: 20 * time.Second,
		losesData: never, inject: func(n *Nemesis, f *fault) (func(), error) {
			return n.vistaFail(f, "mode=empty", []string{"sessions", "", "seats", "films", "cinemas"})
		}},
	{name: "vista-truncated", weight: 2, resource: "vista", minDur: 2 * time.Second, maxDur: 20 * time.Second,
		losesData: never, inject: func(n *Nemesis, f *fault) (func(), error) {
			return n.vistaFail(f, "mode=malformed", []string{"sessions", "", "seats"})
		}},
	{name: "vista-slow", weight: 2, resource: "vista", minDur: 3 * time.Second, maxDur: 20 * time.Second,
		losesData: never, inject: func(n *Nemesis, f *fault) (func(), error) {
			return n.vistaFail(f, "mode=slow&delay="+strconv.Itoa(1+int(f.param%4))+"s", []string{""})
		}},
	{name: "vista-hostile-rows", weight: 2, resource: "vista-rows", minDur: 10 * time.Second, maxDur: 40 * time.Second,
		losesData: never, inject: (*Nemesis).hostileRows},
	{name: "vista-cancel", weight: 2, resource: "vista-cancel", losesData: never, inject: (*Nemesis).cancel},
}

var anyEndpoint = []string{"", "sessions", "seats", "films", "cinemas"}

func kindByName(name string) *faultKind {
	for _, k := range faultKinds {
		if k.name == name {
			return k
		}
	}
	panic("chaos: no fault named " + name)
}

// Planned is one fault of a plan: which, when after the nemesis starts,
// for how long, and a number its choices are drawn from (an endpoint, a
// status).
type Planned struct {
	At, Dur time.Duration
	Name    string
	Param   uint64
}

func (p Planned) String() string {
	return fmt.Sprintf("%7.1fs %-22s %5.1fs #%d", p.At.Seconds(), p.Name, p.Dur.Seconds(), p.Param%1000)
}

// Plan draws the faults of a run from the seed: after a gap of 1 to 6
// seconds, a fault the topology has whose resource is free, for a drawn
// duration, never more than two at once. The plan is a function of the
// seed, the topology, AOF and the duration alone: a replay repeats it
// (the real timing differs a little).
func Plan(seed uint64, o Options, d time.Duration) []Planned {
	o = o.withDefaults()
	rng := rand.New(rand.NewPCG(seed, 0x6e656d65736973)) // "nemesis"
	var kinds []*faultKind
	total := 0
	for _, k := range faultKinds {
		if k.topology == "" || k.topology == o.Topology {
			kinds = append(kinds, k)
			total += k.weight
		}
	}
	var plan []Planned
	var at time.Duration
	for {
		at += time.Second + time.Duration(rng.Int64N(int64(5*time.Second)))
		if at >= d {
			return plan
		}
		busy := map[string]bool{}
		active := 0
		for _, p := range plan {
			if p.At <= at && at < p.At+p.Dur {
				busy[kindByName(p.Name).resource] = true
				active++
			}
		}
		pick := rng.IntN(total)
		var k *faultKind
		for _, c := range kinds {
			if pick < c.weight {
				k = c
				break
			}
			pick -= c.weight
		}
		param := rng.Uint64()
		dur := k.minDur
		if k.maxDur > k.minDur {
			dur += time.Duration(rng.Int64N(int64(k.maxDur - k.minDur)))
		}
		dur = dur.Round(100 * time.Millisecond)
		if active >= 2 || busy[k.resource] {
			continue // the draw is spent either way, so the plan stays a function of the seed
		}
		dur = min(dur, (d - at).Truncate(100*time.Millisecond))
		plan = append(plan, Planned{At: at, Dur: dur, Name: k.name, Param: param})
	}
}

// Nemesis injects the faults of a plan into a world, records each as a
// Fault, and keeps the simulated Vista's seats changing all the time.
type Nemesis struct {
	w    *World
	rec  *Recorder
	rdb  redis.UniversalClient
	plan []Planned
	d    time.Duration

	faults []Fault
	// targets: the warmers and proxies faults hold now, so a second fault
	// meant for the holder's process takes the other one.
	procBusy  map[*Warmer]bool
	proxyBusy map[*Warmer]bool
	// rotated: the warmers' password is rotated now. A warmer started
	// then would stop at once, as the contract says of credentials
	// refused at start (exit status 1): its restart waits in pending
	// until the password is restored, as an orchestrator's retry would.
	rotated bool
	pending []*Warmer
}

// fault is one planned fault being run.
type fault struct {
	Planned
	kind   *faultKind
	param  uint64
	index  int // in Nemesis.faults
	heal   func()
	target *Warmer
}

// NewNemesis makes a nemesis for w that runs plan for d, telling rec when
// Redis lost data.
func NewNemesis(w *World, rec *Recorder, plan []Planned, d time.Duration) *Nemesis {
	return &Nemesis{w: w, rec: rec, rdb: w.AdminClient(), plan: plan, d: d,
		procBusy: map[*Warmer]bool{}, proxyBusy: map[*Warmer]bool{}}
}

// Faults returns the faults injected so far.
func (n *Nemesis) Faults() []Fault { return slices.Clone(n.faults) }

// Run injects and heals the plan's faults on time (or as soon after as
// the world lets it) for the nemesis's duration, then heals whatever is
// left. It returns when the last fault is healed.
func (n *Nemesis) Run(ctx context.Context, tb interface{ Logf(string, ...any) }) {
	type step struct {
		at   time.Duration
		heal bool
		f    *fault
	}
	var steps []step
	for _, p := range n.plan {
		f := &fault{Planned: p, kind: kindByName(p.Name), param: p.Param}
		steps = append(steps, step{p.At, false, f})
		if p.Dur > 0 {
			steps = append(steps, step{p.At + p.Dur, true, f})
		}
	}
	// Heals first at the same moment: a resource is freed before it is
	// taken again.
	slices.SortStableFunc(steps, func(a, b step) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		if a.heal != b.heal {
			if a.heal {
				return -1
			}
			return 1
		}
		return 0
	})
	// lag is how far the world held the nemesis up (a restart, a
	// replica syncing again): the steps after it move by as much, so that
	// each fault lasts as planned. Past a quarter more than the planned
	// time, no new fault starts.
	defer n.rdb.Close()
	start := time.Now()
	var lag time.Duration
	var open []*fault
	for _, s := range steps {
		if wait := time.Until(start.Add(s.at + lag)); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			break
		}
		n.revive()
		if !s.heal && time.Since(start) > steps[len(steps)-1].at*5/4+5*time.Second {
			n.w.Logf("skip %s: the nemesis is far behind its plan", s.f.Name)
			continue
		}
		switch i := slices.Index(open, s.f); {
		case !s.heal:
			if err := n.inject(s.f); err != nil {
				tb.Logf("chaos: %s: %v", s.f.Name, err)
				break
			}
			if s.f.Dur > 0 {
				open = append(open, s.f)
			} else if s.f.heal != nil {
				n.healFault(s.f)
			}
		case i >= 0:
			n.healFault(s.f)
			open = slices.Delete(open, i, i+1)
		}
		if over := time.Since(start) - (s.at + lag); over > 100*time.Millisecond {
			lag += over
		}
	}
	for i := len(open) - 1; i >= 0; i-- {
		n.healFault(open[i])
	}
	if wait := time.Until(start.Add(n.d + lag)); wait > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	n.HealAll()
}

func (n *Nemesis) inject(f *fault) error {
	o := n.w.Options()
	n.w.Logf("inject %s for %v (param %d)", f.Name, f.Dur, f.param%1000)
	start := time.Now()
	heal, err := f.kind.inject(n, f)
	if err != nil {
		n.w.Logf("inject %s failed: %v", f.Name, err)
		return err
	}
	f.heal = heal
	// The target: redis, vista, twin, or the warmer a fault on a process
	// or a link was bound to.
	target := strings.FieldsFunc(f.kind.resource, func(r rune) bool { return r == ':' || r == '-' })[0]
	if f.target != nil {
		target = f.target.Name
	}
	f.index = len(n.faults)
	n.faults = append(n.faults, Fault{Name: f.Name, Target: target, Start: start, End: time.Now(), LosesData: f.kind.losesData(o)})
	return nil
}

func (n *Nemesis) healFault(f *fault) {
	if f.heal != nil {
		f.heal()
	}
	n.faults[f.index].End = time.Now()
	n.w.Logf("healed %s", f.Name)
}

// HealAll puts the world right whatever the faults left: Redis running,
// answering and roomy, with the warmers' password; the proxies open;
// Vista answering; both warmers running.
func (n *Nemesis) HealAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.w.Sim.Post(ctx, "/control/clear")
	n.w.Sim.Post(ctx, "/control/hostile?on=false")
	if n.w.Repl == nil {
		c := n.w.NodeClient(n.w.Redis.Addr())
		if c.Ping(ctx).Err() != nil {
			n.w.Redis.Restart()
		}
		c.ConfigSet(ctx, "requirepass", warmerPassword)
		c.ConfigSet(ctx, "maxmemory", "0")
		c.ConfigSet(ctx, "maxmemory-policy", "noeviction")
		c.Close()
	} else {
		for _, s := range []*redistest.Server{n.w.Repl.Master, n.w.Repl.Replica} {
			c := n.w.NodeClient(s.Addr())
			if c.Ping(ctx).Err() != nil {
				s.Restart()
			}
			c.ConfigSet(ctx, "maxmemory", "0")
			c.ConfigSet(ctx, "maxmemory-policy", "noeviction")
			c.Close()
		}
		n.waitReplicated(20 * time.Second)
	}
	n.rotated, n.pending = false, nil
	for _, x := range []*Warmer{n.w.Writer, n.w.Standby} {
		if x.Proxy != nil {
			x.Proxy.Heal()
		}
		if x.Running() {
			x.Signal(syscall.SIGCONT)
		} else if err := x.Start(); err != nil {
			n.w.Logf("heal all: %v", err)
		}
	}
	n.w.StopTwin()
}

// ---- Redis ----

// master is the server that is the master now, and a client of it.
func (n *Nemesis) master(ctx context.Context) (*redistest.Server, *redis.Client, error) {
	s, err := n.w.Master(ctx)
	if err != nil {
		return nil, nil, err
	}
	return s, n.w.NodeClient(s.Addr()), nil
}

func (n *Nemesis) redisKill(f *fault) (func(), error) {
	ctx := context.Background()
	s, c, err := n.master(ctx)
	if err != nil {
		return nil, err
	}
	c.Close()
	s.Stop() // SIGKILL
	return func() {
		s.Restart()
		if n.w.Repl != nil || !n.w.Options().AOF {
			n.rec.MarkLost()
		}
		if n.w.Repl != nil {
			n.waitReplicated(20 * time.Second)
		}
	}, nil
}

func (n *Nemesis) debugSleep(f *fault) (func(), error) {
	ctx := context.Background()
	_, c, err := n.master(ctx)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	secs := strconv.FormatFloat(f.Dur.Seconds(), 'f', 1, 64)
	go func() {
		defer close(done)
		// The reply comes when the sleep ends: the client waits longer.
		cctx, cancel := context.WithTimeout(ctx, f.Dur+10*time.Second)
		defer cancel()
		c.Do(cctx, "DEBUG", "SLEEP", secs)
		c.Close()
	}()
	if n.w.Repl != nil {
		n.rec.MarkLost()
	}
	return func() {
		select {
		case <-done:
		case <-time.After(15 * time.Second):
		}
		if n.w.Repl != nil {
			n.waitReplicated(20 * time.Second)
		}
	}, nil
}

func (n *Nemesis) clientPause(f *fault, mode string) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, c, err := n.master(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// CLIENT UNPAUSE would itself be paused under ALL: the pause is given
	// its end.
	if err := c.Do(ctx, "CLIENT", "PAUSE", f.Dur.Milliseconds(), mode).Err(); err != nil {
		return nil, err
	}
	if n.w.Repl == nil {
		return nil, nil
	}
	// Under WRITE too: it holds PUBLISH, and with it the sentinels' hello
	// messages on their link to the master, so they call it down.
	n.rec.MarkLost()
	return func() { n.waitReplicated(20 * time.Second) }, nil
}

func (n *Nemesis) maxmemory(f *fault, policy string) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, c, err := n.master(ctx)
	if err != nil {
		return nil, err
	}
	c.Close()
	info, err := n.w.NodeClient(s.Addr()).InfoMap(ctx, "memory").Result()
	if err != nil {
		return nil, err
	}
	mem := info["Memory"]
	used, _ := strconv.ParseInt(mem["used_memory"], 10, 64)
	startup, _ := strconv.ParseInt(mem["used_memory_startup"], 10, 64)
	limit := used - (used-startup)/20 // full: every write refused
	if policy != "noeviction" {
		limit = startup + (used-startup)*6/10 // evicts about 40% of the data
	}
	c = n.w.NodeClient(s.Addr())
	defer c.Close()
	if err := c.ConfigSet(ctx, "maxmemory-policy", policy).Err(); err != nil {
		return nil, err
	}
	if err := c.ConfigSet(ctx, "maxmemory", strconv.FormatInt(limit, 10)).Err(); err != nil {
		return nil, err
	}
	n.w.Logf("maxmemory %d (used %d, startup %d) %s", limit, used, startup, policy)
	if policy != "noeviction" {
		n.rec.MarkLost()
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c := n.w.NodeClient(s.Addr())
		defer c.Close()
		c.ConfigSet(ctx, "maxmemory", "0")
		c.ConfigSet(ctx, "maxmemory-policy", "noeviction")
	}, nil
}

func (n *Nemesis) flushAll(f *fault) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := n.rdb.FlushAll(ctx).Err(); err != nil {
		return nil, err
	}
	n.rec.MarkLost()
	return nil, nil
}

func (n *Nemesis) scriptFlush(f *fault) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return nil, n.rdb.ScriptFlush(ctx).Err()
}

// password rotates the warmers' password and drops their connections,
// so that they must log in again and cannot until it is restored.
func (n *Nemesis) password(f *fault) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := n.rdb.ConfigSet(ctx, "requirepass", rotatedPass).Err(); err != nil {
		return nil, err
	}
	n.rdb.Do(ctx, "CLIENT", "KILL", "USER", "default")
	n.rotated = true
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.rdb.ConfigSet(ctx, "requirepass", warmerPassword)
		n.rotated = false
		for _, x := range n.pending {
			n.restart(x)
		}
		n.pending = nil
	}, nil
}

func (n *Nemesis) failover(f *fault) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	before, _ := n.w.Repl.MasterAddr(ctx)
	s := redis.NewSentinelClient(&redis.Options{Addr: n.w.Repl.Sentinels[int(f.param%3)].Addr()})
	defer s.Close()
	if err := s.Failover(ctx, n.w.Repl.Name).Err(); err != nil {
		return nil, err
	}
	n.rec.MarkLost()
	return func() {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if after, err := n.w.Repl.MasterAddr(context.Background()); err == nil && after != before {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		n.waitReplicated(20 * time.Second)
	}, nil
}

// waitReplicated waits, at most d, until the replica follows the master
// with its link up: the next fault then starts from a world that has a
// replica to fail over to.
func (n *Nemesis) waitReplicated(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		m, err := n.w.Master(ctx)
		if err == nil {
			for _, s := range []*redistest.Server{n.w.Repl.Master, n.w.Repl.Replica} {
				if s == m {
					continue
				}
				c := n.w.NodeClient(s.Addr())
				info, _ := c.Info(ctx, "replication").Result()
				c.Close()
				if strings.Contains(info, "role:slave") && strings.Contains(info, "master_port:"+strconv.Itoa(m.Port)) &&
					strings.Contains(info, "master_link_status:up") {
					cancel()
					return
				}
			}
		}
		cancel()
		time.Sleep(250 * time.Millisecond)
	}
	n.w.Logf("the replica did not follow the master within %v", d)
}

// ---- the warmers and their links ----

// bind picks the warmer a fault on role "holder" or "other" hits: the
// lease's holder now (the writer when none) or the other one; when a
// fault already holds that one, the other one.
func (n *Nemesis) bind(role string, busy map[*Warmer]bool) *Warmer {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	holder, _ := n.w.Holder(ctx, n.rdb)
	first, second := n.w.Writer, n.w.Standby
	if holder == n.w.Standby.Name {
		first, second = second, first
	}
	if role == "other" {
		first, second = second, first
	}
	if busy[first] && !busy[second] {
		return second
	}
	return first
}

func role(f *fault) string {
	_, r, _ := strings.Cut(f.kind.resource, ":")
	return r
}

func (n *Nemesis) partition(f *fault, dirs ...int) (func(), error) {
	x := n.bind(role(f), n.proxyBusy)
	f.target = x
	n.proxyBusy[x] = true
	x.Proxy.Hold(dirs...)
	return func() {
		x.Proxy.Heal()
		delete(n.proxyBusy, x)
	}, nil
}

func (n *Nemesis) slowLink(f *fault) (func(), error) {
	x := n.bind(role(f), n.proxyBusy)
	f.target = x
	n.proxyBusy[x] = true
	x.Proxy.Slow(time.Duration(100+f.param%900) * time.Millisecond)
	return func() {
		x.Proxy.Heal()
		delete(n.proxyBusy, x)
	}, nil
}

// endWarmer sends sig (SIGKILL, SIGTERM, SIGHUP: each ends the warmer)
// and starts it again when the fault heals. A warmer told to stop
// cleanly that is still running when the fault heals did not stop: it
// is killed, and its process counts as crashed.
func (n *Nemesis) endWarmer(f *fault, sig syscall.Signal) (func(), error) {
	x := n.bind(role(f), n.procBusy)
	f.target = x
	if err := x.Signal(sig); err != nil {
		return nil, err
	}
	n.procBusy[x] = true
	return func() {
		delete(n.procBusy, x)
		if !x.Wait(10 * time.Second) {
			n.w.Logf("%s did not end within 10s of %s; killed", x.Name, sig)
			x.hung()
			x.Kill()
		}
		n.restart(x)
	}, nil
}

// revive starts again, as an orchestrator would (systemd's
// Restart=on-failure, a Kubernetes pod), a warmer that ended without a
// fault holding it down: a crash is recorded all the same, and the rest
// of the run goes on with two warmers.
func (n *Nemesis) revive() {
	for _, x := range []*Warmer{n.w.Writer, n.w.Standby} {
		if !x.Started() || x.Running() || n.procBusy[x] || slices.Contains(n.pending, x) {
			continue
		}
		n.w.Logf("%s ended without being asked; starting it again", x.Name)
		n.restart(x)
	}
}

// restart starts x again, or once the password is restored.
func (n *Nemesis) restart(x *Warmer) {
	if n.rotated {
		n.w.Logf("%s starts again once the password is restored", x.Name)
		n.pending = append(n.pending, x)
		return
	}
	if err := x.Start(); err != nil {
		n.w.Logf("restart %s: %v", x.Name, err)
	}
}

func (n *Nemesis) stopWarmer(f *fault) (func(), error) {
	x := n.bind(role(f), n.procBusy)
	f.target = x
	if err := x.Signal(syscall.SIGSTOP); err != nil {
		return nil, err
	}
	n.procBusy[x] = true
	return func() {
		delete(n.procBusy, x)
		x.Signal(syscall.SIGCONT)
	}, nil
}

func (n *Nemesis) twin(f *fault) (func(), error) {
	if n.rotated {
		return nil, fmt.Errorf("not started: the password is rotated, and a start with refused credentials stops at once")
	}
	of := n.bind("holder", nil)
	x, err := n.w.StartTwin(of)
	if err != nil {
		return nil, err
	}
	f.target = x
	return func() { n.w.StopTwin() }, nil
}

// ---- Vista ----

func (n *Nemesis) vistaFail(f *fault, query string, endpoints []string) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ep := endpoints[(f.param/7)%uint64(len(endpoints))]
	n.w.Logf("vista fails: %s endpoint %q", query, ep)
	if err := n.w.Sim.Post(ctx, "/control/fail?"+query+"&count=-1&endpoint="+ep); err != nil {
		return nil, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		n.w.Sim.Post(ctx, "/control/clear")
	}, nil
}

func (n *Nemesis) hostileRows(f *fault) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := n.w.Sim.Post(ctx, "/control/hostile?on=true"); err != nil {
		return nil, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		n.w.Sim.Post(ctx, "/control/hostile?on=false")
	}, nil
}

// cancel cancels one to three open sessions within the hour, as a cinema
// does when a screen breaks.
func (n *Nemesis) cancel(f *fault) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ids := nearSessions(ctx, n.w.Sim, time.Hour)
	if len(ids) == 0 {
		return nil, fmt.Errorf("no open session within the hour")
	}
	rng := rand.New(rand.NewPCG(f.param, 1))
	for range 1 + rng.IntN(3) {
		id := ids[rng.IntN(len(ids))]
		if err := n.w.Sim.Post(ctx, "/control/cancel?id="+url.QueryEscape(id)); err != nil {
			return nil, err
		}
		n.w.Logf("cancelled %s", id)
	}
	return nil, nil
}

// nearSessions lists the open sessions whose showtime is within d of now,
// either side, sorted.
func nearSessions(ctx context.Context, sim *Sim, d time.Duration) []string {
	t, err := sim.Truth(ctx)
	if err != nil {
		return nil
	}
	var ids []string
	now := time.Now()
	for id, st := range t.Showtime {
		if t.Status[id] == "O" && st.Sub(now).Abs() < d {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Seats changes the seats of a random open session within the hour every
// period until ctx ends: sales never stop. A session is never set back to
// a value it was set to before: a value that comes back (A, B, A) would
// look, from outside, as if the change to B had never been seen.
func Seats(ctx context.Context, w *World, seed uint64, period time.Duration) {
	rng := rand.New(rand.NewPCG(seed, 0x7365617473)) // "seats"
	t := time.NewTicker(period)
	defer t.Stop()
	var ids []string
	used := map[string]map[int]bool{}
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if i%10 == 0 || len(ids) == 0 {
			ids = nearSessions(cctx, w.Sim, time.Hour)
		}
		if len(ids) > 0 {
			id := ids[rng.IntN(len(ids))]
			if used[id] == nil {
				used[id] = map[int]bool{}
			}
			n := rng.IntN(300)
			for j := 0; used[id][n] && j < 300; j++ {
				n = (n + 1) % 300
			}
			used[id][n] = true
			w.Sim.Post(cctx, "/control/seats?id="+url.QueryEscape(id)+"&n="+strconv.Itoa(n))
		}
		cancel()
	}
}
