// The faults the nemesis knows, each with what it may share the world
// with, and Plan, which draws a run's faults from its seed.

package chaos

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"syscall"
	"time"

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
