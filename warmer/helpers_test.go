package warmer

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/internal/clocktest"
	"github.com/vista-warmer/vista-warmer/internal/testkit"
	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// MustRedis is testkit.MustRedis: a prefix of the test's own on the shared
// Redis, cleaned up after.
var MustRedis = testkit.MustRedis

// rig is one simulated Vista, one Redis prefix and a clock shared by both.
type rig struct {
	t      *testing.T
	ctx    context.Context
	sim    *vistasim.Server
	client *vista.Client
	clock  *testkit.Clock
	rdb    *redis.Client
	prefix string

	vistaURL string // the base URL of the simulated Vista

	runs map[*Warmer]func() // stops each warmer's Run
}

func newRig(t *testing.T) *rig {
	return newRigWith(t, rigOptions{})
}

// newRigAt is a rig whose clock starts at at.
func newRigAt(t *testing.T, at time.Time) *rig {
	return newRigWith(t, rigOptions{at: at})
}

// rigOptions change a rig's simulated Vista, what stands in front of it,
// and the client.
type rigOptions struct {
	at     time.Time // where the clock starts; clocktest.Start when zero
	sim    func(*vistasim.Config)
	front  func(http.Handler) http.Handler
	client func(*vista.Config)
}

func newRigWith(t *testing.T, o rigOptions) *rig {
	t.Helper()
	rdb, prefix := MustRedis(t)
	if o.at.IsZero() {
		o.at = clocktest.Start
	}
	clocktest.Ahead(t, o.at)
	clock := testkit.NewClock(o.at)
	simCfg := vistasim.Config{
		Seed:        7,
		Clock:       clock.Now,
		Cinemas:     3,
		Films:       5,
		Screens:     2,
		ShowsPerDay: 4,
		Days:        3,
		PageSize:    40, // so the session list comes in pages
	}
	if o.sim != nil {
		o.sim(&simCfg)
	}
	sim := vistasim.New(simCfg)
	var h http.Handler = sim
	if o.front != nil {
		h = o.front(sim)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	clientCfg := vista.Config{
		KeepRaw:    true, // the warmer decides whether to keep it
		BaseURL:    srv.URL + "/WSVistaWebClient/",
		Timeout:    time.Second,
		MaxRetries: 1,
		BaseDelay:  time.Millisecond,
		MaxDelay:   5 * time.Millisecond,
		Zones:      vista.Zones{Default: time.UTC},
	}
	if o.client != nil {
		o.client(&clientCfg)
	}
	client, err := vista.New(clientCfg)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, ctx: context.Background(), sim: sim, client: client, clock: clock, rdb: rdb, prefix: prefix,
		vistaURL: clientCfg.BaseURL, runs: map[*Warmer]func(){}}
}

// warmer returns a warmer of the rig with the given instance id.
func (r *rig) warmer(id string, tweak ...func(*Config)) *Warmer {
	r.t.Helper()
	cfg := Config{
		Redis:      r.rdb,
		Vista:      r.client,
		Prefix:     r.prefix,
		InstanceID: id,
		LeaseTTL:   2 * time.Second,
		Clock:      r.clock,
		// Run steps when the rig's clock passes what is due and when the
		// test settles it; what runs on real time waits for those.
		Tick:      time.Hour,
		BatchSize: 25, // several transactions per reload
	}
	for _, f := range tweak {
		f(&cfg)
	}
	w, err := New(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	return w
}

// step runs w (from its first step on, until the test ends or r.stop)
// and waits until it has done what is due by the rig's clock.
func (r *rig) step(w *Warmer) {
	r.t.Helper()
	if err := r.settle(w); err != nil {
		r.t.Fatalf("Settle: %v", err)
	}
}

// settle is step that returns the failure instead.
func (r *rig) settle(w *Warmer) error {
	r.t.Helper()
	r.run(w)
	return w.Settle(r.ctx)
}

// locked runs f while w's Run does not step: a test reads and sets the
// writer's state with it.
func (r *rig) locked(w *Warmer, f func()) {
	w.stepMu.Lock()
	defer w.stepMu.Unlock()
	f()
}

// reload runs w and asks it for a full reload of k.
func (r *rig) reload(w *Warmer, k keys.Kind) error {
	r.run(w)
	return w.Reload(r.ctx, k)
}

// run starts w's Run, unless it runs already.
func (r *rig) run(w *Warmer) {
	if r.runs[w] != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			r.t.Errorf("Run: %v", err)
		}
	}()
	stop := sync.OnceFunc(func() {
		cancel()
		<-done
	})
	r.runs[w] = stop
	r.t.Cleanup(stop)
}

// pause ends w's Run as a process frozen in place looks to Redis and to
// itself: its lease stays until it lapses, and when it wakes (r.step, or
// a write by hand) it still believes it writes.
func (r *rig) pause(w *Warmer) {
	r.t.Helper()
	key := keys.Lease(r.prefix)
	ttl := r.rdb.PTTL(r.ctx, key).Val()
	r.stop(w) // releases the lease, which a frozen process would not
	if ttl > 0 {
		if err := r.rdb.Set(r.ctx, key, w.keep.value, ttl).Err(); err != nil {
			r.t.Fatal(err)
		}
		w.keep.leader.Store(true)
	}
}

// stop ends w's Run, which releases the lease, as a warmer stopped with
// SIGTERM does.
func (r *rig) stop(w *Warmer) {
	if stop := r.runs[w]; stop != nil {
		stop()
		delete(r.runs, w)
	}
}

// events reads every event of the stream, in order.
func (r *rig) events() []keys.Event {
	r.t.Helper()
	msgs, err := r.rdb.XRange(r.ctx, keys.Stream(r.prefix), "-", "+").Result()
	if err != nil {
		r.t.Fatal(err)
	}
	evs := make([]keys.Event, 0, len(msgs))
	for _, m := range msgs {
		var ev keys.Event
		if err := json.Unmarshal([]byte(m.Values["data"].(string)), &ev); err != nil {
			r.t.Fatalf("stream entry %s: %v", m.ID, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// eventsSince returns the events after the first n.
func (r *rig) eventsSince(n int) []keys.Event {
	return r.events()[n:]
}

func (r *rig) meta() map[string]string {
	r.t.Helper()
	m, err := r.rdb.HGetAll(r.ctx, keys.Meta(r.prefix)).Result()
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

func (r *rig) hash(k keys.Kind, id string) map[string]string {
	r.t.Helper()
	h, err := r.rdb.HGetAll(r.ctx, keys.Entity(r.prefix, k, id)).Result()
	if err != nil {
		r.t.Fatal(err)
	}
	return h
}

// otherSeats returns a seat count other than the one the cache holds for
// the session: a change the warmer must pass on, whatever the simulator
// shows at the instant the test runs at.
func (r *rig) otherSeats(id string) int {
	r.t.Helper()
	v := r.hash(keys.Sessions, id)["seats_available"]
	cur, err := strconv.Atoi(v)
	if err != nil {
		r.t.Fatalf("seats_available of %s = %q", id, v)
	}
	if cur > 0 {
		return cur - 1 // as seats sell
	}
	return 1
}

// upcoming returns a listed session whose showtime is between from and to
// after the clock's now.
func (r *rig) upcoming(from, to time.Duration) vistasim.SessionInfo {
	r.t.Helper()
	now := r.clock.Now()
	for _, s := range r.sim.Sessions() {
		if d := s.Showtime.Sub(now); d >= from && d <= to && s.Status != "X" {
			return s
		}
	}
	r.t.Fatalf("no session between %v and %v from now", from, to)
	return vistasim.SessionInfo{}
}

// pair returns two listed sessions, both more than two hours away, the
// second starting within d after the first and accepted by ok; it stops
// the test when there are none.
func (r *rig) pair(d time.Duration, ok func(a, b vistasim.SessionInfo) bool) (vistasim.SessionInfo, vistasim.SessionInfo) {
	r.t.Helper()
	list := r.sim.Sessions()
	for i, a := range list {
		if !a.Showtime.After(r.clock.Now().Add(2 * time.Hour)) {
			continue
		}
		for j, b := range list {
			if gap := b.Showtime.Sub(a.Showtime); i != j && gap >= 0 && gap < d && ok(a, b) {
				return a, b
			}
		}
	}
	r.t.Fatalf("the simulated Vista has no two sessions within %v of each other", d)
	return vistasim.SessionInfo{}, vistasim.SessionInfo{}
}

func byEvent(evs []keys.Event, kind keys.Kind, event string) []keys.Event {
	var out []keys.Event
	for _, ev := range evs {
		if ev.Kind == kind && ev.Event == event {
			out = append(out, ev)
		}
	}
	return out
}

func forID(evs []keys.Event, id string) []keys.Event {
	var out []keys.Event
	for _, ev := range evs {
		if ev.ID == id {
			out = append(out, ev)
		}
	}
	return out
}

// reload fetches a kind's whole list, then commits it, and returns the
// error as it came, before Step or Reload make it a role change.
func (w *Warmer) reload(ctx context.Context, k keys.Kind) error {
	l, err := w.fetch(ctx, w.st, k, w.cfg.Clock.Now(), w.zones(), nil)
	if err != nil {
		return err
	}
	return w.commit(ctx, k, l)
}
