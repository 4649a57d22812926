// The nemesis's faults on the simulated Vista: failing answers, hostile
// rows and cancelled sessions.

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"
)

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
