package chaos

import (
	"context"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/internal/redistest"
)

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
