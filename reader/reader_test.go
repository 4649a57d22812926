package reader

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/internal/clocktest"
	"github.com/vista-warmer/vista-warmer/internal/redistest"
	"github.com/vista-warmer/vista-warmer/internal/testkit"
	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
	"github.com/vista-warmer/vista-warmer/warmer"
)

// redisURL is the Redis the tests use: REDIS_URL, or the local one.
func redisURL() string {
	if url := os.Getenv("REDIS_URL"); url != "" {
		return url
	}
	return "redis://127.0.0.1:6379/0"
}

// fixture is a warmer on the simulated Vista writing to the Redis at
// REDIS_URL under a prefix of the test's own, which is deleted at the end.
type fixture struct {
	rdb    *redis.Client
	prefix string
	sim    *vistasim.Server
	clock  *testkit.Clock
	w      *warmer.Warmer
}

// newFixture is a fixture whose clock starts at clocktest.Start.
func newFixture(t testing.TB, size ...int) *fixture {
	t.Helper()
	return newFixtureAt(t, clocktest.Start, size...)
}

// newFixtureAt is newFixture with the clock starting at at.
func newFixtureAt(t testing.TB, at time.Time, size ...int) *fixture {
	t.Helper()
	opt, err := redis.ParseURL(redisURL())
	if err != nil {
		t.Fatal(err)
	}
	return newFixtureOn(t, redis.NewClient(opt), at, size...)
}

// newFixtureOn is newFixtureAt on a Redis of the test's choosing.
func newFixtureOn(t testing.TB, rdb *redis.Client, at time.Time, size ...int) *fixture {
	t.Helper()
	clocktest.Ahead(t, at)
	opt := rdb.Options()
	var err error
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("no Redis at %s (make test starts one): %v", opt.Addr, err)
	}
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "_")
	prefix := fmt.Sprintf("vwtest:%s:%08x", name, rand.Uint32())
	t.Cleanup(func() {
		var doomed []string
		iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			doomed = append(doomed, iter.Val())
		}
		if len(doomed) > 0 {
			rdb.Del(ctx, doomed...)
		}
		rdb.Close()
	})
	c := testkit.NewClock(at)
	cinemas := 2
	if len(size) > 0 {
		cinemas = size[0]
	}
	sim := vistasim.New(vistasim.Config{Seed: 3, Clock: c.Now, Cinemas: cinemas, Films: 4, Screens: 2, ShowsPerDay: 4, Days: 2})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	client, err := vista.New(vista.Config{BaseURL: srv.URL, Zones: vista.Zones{Default: time.UTC}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := warmer.New(warmer.Config{Redis: rdb, Vista: client, Prefix: prefix, InstanceID: "reader-test",
		LeaseTTL: 5 * time.Second, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{rdb: rdb, prefix: prefix, sim: sim, clock: c, w: w}
	runCtx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		w.Run(runCtx)
	}()
	t.Cleanup(func() {
		stop()
		<-ran
	})
	f.step(t)
	return f
}

// now is the Position after the last event the warmer wrote: a Watch
// from it hands on what the warmer writes next, with no wait for the
// Watch to find where the stream ends.
func (f *fixture) now(t testing.TB, r *Reader) Position {
	t.Helper()
	ctx := context.Background()
	seq, err := f.rdb.HGet(ctx, keys.Meta(f.prefix), keys.MetaSeq).Int64()
	if err != nil {
		t.Fatal(err)
	}
	pos, err := r.After(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// step waits until the warmer has done what is due by the fixture's
// clock.
func (f *fixture) step(t testing.TB) {
	t.Helper()
	if err := f.w.Settle(context.Background()); err != nil {
		t.Fatalf("warmer: %v", err)
	}
}

// loseCache deletes everything of the cache but the lease, as a Redis
// restarted without its data would, and lets the warmer build it anew.
func (f *fixture) loseCache() {
	ctx := context.Background()
	iter := f.rdb.Scan(ctx, 0, f.prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		if iter.Val() != keys.Lease(f.prefix) {
			f.rdb.Del(ctx, iter.Val())
		}
	}
	for i := 0; i < 3; i++ {
		f.clock.Add(10 * time.Second)
		f.w.Settle(ctx)
	}
}

// near returns a listed session a few hours ahead and moves the clock to
// five minutes before it, where it is checked every 10 s.
func (f *fixture) near(t *testing.T) vistasim.SessionInfo {
	t.Helper()
	for _, s := range f.sim.Sessions() {
		if d := s.Showtime.Sub(f.clock.Now()); d > 2*time.Hour && s.Status != "X" {
			f.clock.Add(d - 5*time.Minute)
			f.step(t)
			return s
		}
	}
	t.Fatal("no session ahead")
	return vistasim.SessionInfo{}
}

// otherSeats returns n seat counts in a row, each different from the one
// before it and the first different from cur (the seats the cache holds):
// changes the warmer must pass on, whatever the simulator shows at the
// instant the test runs at. They go down, as seats sell, unless that would
// go below zero.
func otherSeats(cur, n int) []int {
	step := -1
	if cur < n {
		step = 1
	}
	out := make([]int, n)
	for i := range out {
		out[i] = cur + step*(i+1)
	}
	return out
}

// seats returns the seats the cache holds for a session.
func (f *fixture) seats(t *testing.T, id string) int {
	t.Helper()
	v, err := f.rdb.HGet(context.Background(), keys.Session(f.prefix, id), "seats_available").Result()
	if err != nil {
		t.Fatalf("the seats of %s in the cache: %v", id, err)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("the seats of %s in the cache: %q", id, v)
	}
	return n
}

func TestGetAndList(t *testing.T) {
	clocktest.Each(t, testGetAndList)
}

func testGetAndList(t *testing.T, at time.Time) {
	f := newFixtureAt(t, at)
	r := New(f.rdb, f.prefix)
	ctx := context.Background()

	cinemas, err := r.Cinemas(ctx)
	if err != nil || len(cinemas) != 2 {
		t.Fatalf("Cinemas = %d, %v", len(cinemas), err)
	}
	films, err := r.Films(ctx)
	if err != nil || len(films) == 0 {
		t.Fatalf("Films = %d, %v", len(films), err)
	}
	c := cinemas[0]
	if c.Location == nil || c.Name == "" || c.UpdatedAt.IsZero() {
		t.Errorf("cinema %+v", c)
	}
	now := f.clock.Now()
	sessions, err := r.CinemaSessions(ctx, c.ID, now, now.Add(48*time.Hour))
	if err != nil || len(sessions) == 0 {
		t.Fatalf("CinemaSessions = %d, %v", len(sessions), err)
	}
	s := sessions[0]
	h := f.rdb.HGetAll(ctx, keys.Session(f.prefix, s.ID)).Val()
	if s.CinemaID != c.ID || strconv.Itoa(s.SeatsAvailable) != h["seats_available"] || string(s.State) != h["state"] {
		t.Errorf("session %+v against its hash %v", s, h)
	}
	if s.Showtime.Location().String() != c.Location.String() || s.Showtime.Format(time.RFC3339) != h["showtime"] {
		t.Errorf("showtime %v in %v, want %s in the cinema's zone %v", s.Showtime, s.Showtime.Location(), h["showtime"], c.Location)
	}
	for i := 1; i < len(sessions); i++ {
		if sessions[i].Showtime.Before(sessions[i-1].Showtime) {
			t.Errorf("sessions out of showtime order at %d", i)
		}
	}
	one, err := r.Session(ctx, s.ID)
	if err != nil || one.ID != s.ID || !one.Showtime.Equal(s.Showtime) {
		t.Errorf("Session(%s) = %+v, %v", s.ID, one, err)
	}
	if _, err := r.Session(ctx, "no-such-id"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Session of an unknown id: %v, want ErrNotFound", err)
	}
	if fm, err := r.Film(ctx, s.FilmID); err != nil || fm.Title == "" {
		t.Errorf("Film(%s) = %+v, %v", s.FilmID, fm, err)
	}
}

// watcher runs a Watch in the background and collects what it hands on.
type watcher struct {
	mu     sync.Mutex
	events []Event
	done   chan error
	cancel context.CancelFunc
}

func watch(r *Reader, from Position) *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{done: make(chan error, 1), cancel: cancel}
	go func() {
		w.done <- r.Watch(ctx, from, func(ev Event) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.events = append(w.events, ev)
			return nil
		})
	}()
	return w
}

func (w *watcher) got() []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Event(nil), w.events...)
}

func (w *watcher) stop(t *testing.T) {
	w.cancel()
	if err := <-w.done; !errors.Is(err, context.Canceled) {
		t.Errorf("Watch ended with %v, want context.Canceled", err)
	}
}

// waitFor waits until the watcher has handed on an event that ok accepts.
func (w *watcher) waitFor(t *testing.T, what string, ok func(Event) bool) Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, ev := range w.got() {
			if ok(ev) {
				return ev
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s within 10 s; got %+v", what, w.got())
	return Event{}
}

// contiguous checks that events follow each other by one seq in one epoch.
func contiguous(t *testing.T, evs []Event) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		if evs[i].Epoch != evs[i-1].Epoch || evs[i].Seq != evs[i-1].Seq+1 || evs[i].Resync {
			t.Errorf("event %d: %s/%d resync=%v after %s/%d", i, evs[i].Epoch, evs[i].Seq, evs[i].Resync, evs[i-1].Epoch, evs[i-1].Seq)
		}
	}
}

// TestWatchHandsOnEachChangeOnce runs at every instant of clocktest: which
// session it picks, and the seats it shows then, follow the hour.
func TestWatchHandsOnEachChangeOnce(t *testing.T) {
	clocktest.Each(t, testWatchHandsOnEachChangeOnce)
}

func testWatchHandsOnEachChangeOnce(t *testing.T, at time.Time) {
	t.Parallel() // each its own prefix; most of the time goes in waiting for a Watch to stop
	f := newFixtureAt(t, at)
	r := New(f.rdb, f.prefix)
	s := f.near(t)
	cached := f.seats(t, s.ID)
	t.Logf("session %s at %v, %d seats cached", s.ID, s.Showtime, cached)
	w := watch(r, f.now(t, r))
	for _, seats := range otherSeats(cached, 5) {
		f.sim.SetSeats(s.ID, seats)
		f.clock.Add(10 * time.Second)
		f.step(t)
		f.step(t) // the answer is written
		want := seats
		w.waitFor(t, fmt.Sprintf("item with %d seats", seats), func(ev Event) bool {
			return ev.ID == s.ID && ev.SeatsAvailable != nil && *ev.SeatsAvailable == want
		})
	}
	w.stop(t)
	evs := w.got()
	contiguous(t, evs)
	if evs[0].Resync {
		t.Errorf("the first event of a Watch from nothing is marked Resync")
	}
}

// A reader cut off (its connections killed) while events are published
// catches up from the stream with nothing lost or repeated; one started
// again from its last Position goes on where it stood.
func TestWatchCatchesUp(t *testing.T) {
	f := newFixture(t)
	// The reader has connections of its own, by a name, so the test cuts
	// off only those (the Redis may be shared with other tests).
	name := "vwtest-reader-" + strconv.FormatUint(uint64(rand.Uint32()), 16)
	opt := *f.rdb.Options()
	opt.ClientName = name
	rc := redis.NewClient(&opt)
	defer rc.Close()
	r := New(rc, f.prefix)
	s := f.near(t)
	w := watch(r, f.now(t, r))
	change := func(seats int) {
		f.sim.SetSeats(s.ID, seats)
		f.clock.Add(10 * time.Second)
		f.step(t)
		f.step(t)
	}
	v := otherSeats(f.seats(t, s.ID), 6)
	change(v[0])
	w.waitFor(t, "the first change", func(ev Event) bool { return ev.SeatsAvailable != nil && *ev.SeatsAvailable == v[0] })
	// The reader's connections go; changes go on meanwhile.
	killed := killClients(t, f.rdb, name)
	if killed == 0 {
		t.Fatal("the reader had no connection to cut")
	}
	for _, seats := range v[1:4] {
		change(seats)
	}
	w.waitFor(t, "the last change", func(ev Event) bool { return ev.SeatsAvailable != nil && *ev.SeatsAvailable == v[3] })
	w.stop(t)
	evs := w.got()
	contiguous(t, evs)

	// Stopped, then started again from where it stood: the next events.
	at := evs[len(evs)-1].Position
	change(v[4])
	change(v[5])
	w2 := watch(r, at)
	w2.waitFor(t, "the change made while it was stopped", func(ev Event) bool { return ev.SeatsAvailable != nil && *ev.SeatsAvailable == v[5] })
	w2.stop(t)
	evs2 := w2.got()
	if len(evs2) == 0 || evs2[0].Seq != at.Seq+1 || evs2[0].Resync {
		t.Fatalf("restarted Watch began with %+v, want seq %d", evs2, at.Seq+1)
	}
	contiguous(t, evs2)
}

// A new epoch (the cache built anew after Redis lost it) is handed on
// marked Resync.
func TestWatchResyncOnNewEpoch(t *testing.T) {
	f := newFixture(t)
	r := New(f.rdb, f.prefix)
	s := f.near(t)
	w := watch(r, f.now(t, r))
	f.sim.SetSeats(s.ID, otherSeats(f.seats(t, s.ID), 1)[0])
	f.clock.Add(10 * time.Second)
	f.step(t)
	f.step(t)
	first := w.waitFor(t, "a change", func(ev Event) bool { return ev.ID == s.ID })

	// Redis loses the cache: everything but the lease goes.
	f.loseCache()
	ev := w.waitFor(t, "an event of the new epoch", func(ev Event) bool { return ev.Epoch != first.Epoch })
	if !ev.Resync {
		t.Errorf("the first event of a new epoch %+v is not marked Resync", ev)
	}
	w.stop(t)
}

// killClients closes the connections of the clients named name, and says
// how many there were.
func killClients(t *testing.T, rdb *redis.Client, name string) int {
	t.Helper()
	ctx := context.Background()
	list, err := rdb.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		var id, cname string
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			}
			if v, ok := strings.CutPrefix(f, "name="); ok {
				cname = v
			}
		}
		if cname == name && id != "" {
			if err := rdb.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err == nil {
				n++
			}
		}
	}
	return n
}

func TestMirror(t *testing.T) {
	f := newFixture(t)
	r := New(f.rdb, f.prefix)
	s := f.near(t)
	m := NewMirror(r)
	var mu sync.Mutex
	items, reloads := map[string]int{}, 0
	m.OnItem = func(k keys.Kind, id string) { mu.Lock(); items[id]++; mu.Unlock() }
	m.OnFullReload = func(keys.Kind) { mu.Lock(); reloads++; mu.Unlock() }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	}()
	select {
	case <-m.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("the mirror did not load")
	}
	ctxb := context.Background()
	if got, want := len(m.Sessions("", time.Unix(0, 0), time.Unix(1<<40, 0))), int(f.rdb.ZCard(ctxb, keys.Index(f.prefix, keys.Sessions)).Val()); got != want {
		t.Errorf("the mirror holds %d sessions, the cache %d", got, want)
	}
	if got, ok := m.Session(s.ID); !ok || got.CinemaID != s.CinemaID {
		t.Fatalf("Session(%s) = %+v, %v", s.ID, got, ok)
	}

	// A change reaches the copy and its handler.
	want := otherSeats(f.seats(t, s.ID), 1)[0]
	f.sim.SetSeats(s.ID, want)
	f.clock.Add(10 * time.Second)
	f.step(t)
	f.step(t)
	deadline := time.Now().Add(10 * time.Second)
	for got, _ := m.Session(s.ID); got.SeatsAvailable != want; got, _ = m.Session(s.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("the mirror's seats = %d, want %d", got.SeatsAvailable, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	if items[s.ID] == 0 {
		t.Errorf("OnItem was not called for %s", s.ID)
	}
	mu.Unlock()

	// A new epoch: the mirror reads the cache again.
	f.loseCache()
	deadline = time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := reloads
		mu.Unlock()
		if n > 0 && m.Position().Epoch == f.rdb.HGet(ctxb, keys.Meta(f.prefix), "epoch").Val() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mirror did not rebuild after a new epoch: %d reloads, at %+v", n, m.Position())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The rebuild's lists come after the new epoch: the mirror takes
	// them in as their full_reload events arrive.
	var got, cached int
	for {
		got, cached = len(m.Sessions("", time.Unix(0, 0), time.Unix(1<<40, 0))), int(f.rdb.ZCard(ctxb, keys.Index(f.prefix, keys.Sessions)).Val())
		if got == cached && cached > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the rebuild the mirror holds %d sessions, the cache %d", got, cached)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A Watch waits out a Redis restart (with its data kept on disk) and goes
// on with nothing lost or repeated.
func TestWatchThroughARedisRestart(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Config: []string{"appendonly yes", "appendfsync always"}})
	f := newFixtureOn(t, redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1}), clocktest.Start)
	r := New(redis.NewClient(&redis.Options{Addr: srv.Addr()}), f.prefix)
	s := f.near(t)
	w := watch(r, f.now(t, r))
	change := func(seats int) {
		f.sim.SetSeats(s.ID, seats)
		f.clock.Add(10 * time.Second)
		f.w.Settle(context.Background())
	}
	v := otherSeats(f.seats(t, s.ID), 4)
	change(v[0])
	w.waitFor(t, "a change before the restart", func(ev Event) bool { return ev.SeatsAvailable != nil && *ev.SeatsAvailable == v[0] })
	srv.Restart()
	for _, seats := range v[1:] {
		change(seats)
	}
	w.waitFor(t, "the changes after the restart", func(ev Event) bool { return ev.SeatsAvailable != nil && *ev.SeatsAvailable == v[3] })
	w.stop(t)
	contiguous(t, w.got())
}
