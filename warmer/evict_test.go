package warmer

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/internal/clocktest"
	"github.com/vista-warmer/vista-warmer/internal/redistest"
	"github.com/vista-warmer/vista-warmer/internal/testkit"
	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// Under allkeys-lru with too little memory, Redis evicts the cache's
// keys while Run keeps it: hashes alone (readers keep P:meta and the
// indexes hot), or everything, again and again, so that the warmer
// rebuilds and loses the cache again. /healthz says so; once Redis has
// room again the cache is whole within 30 s: every index entry has its
// hash, every hash its index entry, and P:meta is there.
func TestEvictedCacheIsWholeOnceRedisHasRoom(t *testing.T) {
	for _, tt := range []struct {
		name  string
		hot   bool // read P:meta and the indexes while squeezing
		times int  // squeezes, each until the cache is no longer whole
	}{
		{"hashes", true, 1},
		{"everything, twice", false, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{Config: []string{"maxmemory-policy allkeys-lru"}})
			r := newRigWith(t, rigOptions{sim: func(c *vistasim.Config) { c.Cinemas, c.ShowsPerDay, c.Days = 8, 8, 7 }})
			r.rdb, r.prefix = srv.Client(t, nil), "vista"
			w := r.warmer("a", func(c *Config) { c.Tick = time.Second }) // evictions are watched on real time
			r.step(w)

			for range tt.times {
				testkit.Eventually(t, 10*time.Second, "the cache whole", func() bool { whole, _ := testkit.CacheWhole(t, r.rdb, r.prefix); return whole })
				mem, err := readMemory(r.ctx, r.rdb)
				if err != nil {
					t.Fatal(err)
				}
				r.rdb.ConfigSet(r.ctx, "maxmemory", strconv.FormatInt(mem.used-50_000, 10))
				for i := 0; ; i++ {
					if whole, _ := testkit.CacheWhole(t, r.rdb, r.prefix); !whole {
						break
					}
					if i == 5000 {
						t.Fatal("redis evicted nothing of the cache")
					}
					if tt.hot {
						r.rdb.HGetAll(r.ctx, keys.Meta(r.prefix))
						r.rdb.Get(r.ctx, keys.Lease(r.prefix))
						r.rdb.ZCard(r.ctx, keys.Index(r.prefix, keys.Sessions))
						r.rdb.SCard(r.ctx, keys.Index(r.prefix, keys.Films))
						r.rdb.SCard(r.ctx, keys.Index(r.prefix, keys.Cinemas))
					}
					r.rdb.Set(r.ctx, "filler:"+strconv.Itoa(i), strings.Repeat("x", 1000), 0)
				}
				if !tt.hot {
					// Everything goes: the next rebuild finds nothing.
					r.rdb.ConfigSet(r.ctx, "maxmemory", strconv.FormatInt(mem.used/2, 10))
					r.rdb.Set(r.ctx, "filler:big", strings.Repeat("x", 10000), 0)
				}
				deadline := time.Now().Add(20 * time.Second)
				for ok, why := w.Health(r.ctx); ok || !(strings.Contains(why, "evict") || strings.Contains(why, "out of memory")); ok, why = w.Health(r.ctx) {
					if time.Now().After(deadline) {
						t.Fatalf("Health = %v %q while redis evicts the cache, want a reason naming the evictions (or the memory they could not free)", ok, why)
					}
					time.Sleep(100 * time.Millisecond)
				}
				if ready, why := w.Readiness(r.ctx); ready {
					t.Errorf("Readiness = ready while redis evicts the cache, want not ready (%s)", why)
				}
				if tt.times > 1 {
					r.rdb.ConfigSet(r.ctx, "maxmemory", "0") // the warmer rebuilds, and is squeezed again
					r.rdb.Del(r.ctx, "filler:big")
				}
			}

			r.rdb.ConfigSet(r.ctx, "maxmemory", "0")
			lifted := time.Now()
			var last string
			for {
				whole, why := testkit.CacheWhole(t, r.rdb, r.prefix)
				if whole {
					break
				}
				if time.Since(lifted) > 30*time.Second {
					t.Fatalf("30 s after redis had room again, the cache is not whole: %s (was: %s)", why, last)
				}
				last = why
				time.Sleep(200 * time.Millisecond)
			}
			t.Logf("whole %v after redis had room again", time.Since(lifted).Round(100*time.Millisecond))
			deadline := time.Now().Add(15 * time.Second)
			for ok, why := w.Health(r.ctx); !ok; ok, why = w.Health(r.ctx) {
				if time.Now().After(deadline) {
					t.Fatalf("Health = %v %q once redis has room, want ok", ok, why)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// A sessions reload that Redis refused (out of memory, noeviction) goes
// again as soon as Redis takes the writes, not at the next retry or cron.
func TestRefusedReloadGoesAgainOnceRedisTakesWrites(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Config: []string{"maxmemory-policy noeviction"}})
	r := newRig(t)
	r.rdb, r.prefix = srv.Client(t, nil), "vista"
	w := r.warmer("a", func(c *Config) { c.Tick = 100 * time.Millisecond }) // Redis's memory is watched on real time
	r.step(w)

	gone := r.upcoming(2*time.Hour, 48*time.Hour)
	r.sim.Remove(gone.ID)
	mem, err := readMemory(r.ctx, r.rdb)
	if err != nil {
		t.Fatal(err)
	}
	r.rdb.ConfigSet(r.ctx, "maxmemory", strconv.FormatInt(mem.used/2, 10))
	err = r.reload(w, keys.Sessions)
	if !errors.As(err, new(*RefusedError)) {
		t.Fatalf("Reload with redis full = %v, want it refused", err)
	}
	r.rdb.ConfigSet(r.ctx, "maxmemory", "0")
	testkit.Eventually(t, 10*time.Second, "once redis takes writes again, the refused reload runs and removes "+gone.ID, func() bool {
		return r.rdb.Exists(r.ctx, keys.Session(r.prefix, gone.ID)).Val() == 0
	})
}

// Redis evicts other applications' keys (a shared Redis with volatile-ttl,
// as docs/operations.md suggests for one): the cache loses nothing, so the writer
// stays healthy and ready.
func TestOthersEvictionsLeaveTheWriterHealthy(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Config: []string{"maxmemory-policy volatile-ttl"}})
	r := newRig(t)
	r.rdb, r.prefix = srv.Client(t, nil), "vista"
	w := r.warmer("a", func(c *Config) { c.Tick = 100 * time.Millisecond }) // Redis's memory is watched on real time
	r.step(w)
	mem, err := readMemory(r.ctx, r.rdb)
	if err != nil {
		t.Fatal(err)
	}
	r.rdb.ConfigSet(r.ctx, "maxmemory", strconv.FormatInt(mem.used+200_000, 10))
	// Another application's keys, with TTLs nearer than any session's.
	for i := 0; i < 2000; i++ {
		r.rdb.Set(r.ctx, "other:"+strconv.Itoa(i), strings.Repeat("x", 500), time.Minute)
	}
	testkit.Eventually(t, 10*time.Second, "redis evicting the other keys", func() bool {
		m, _ := readMemory(r.ctx, r.rdb)
		return m.evicted > 0
	})
	if whole, why := testkit.CacheWhole(t, r.rdb, r.prefix); !whole {
		t.Fatalf("the cache lost keys to others' evictions (%s): the test needs it whole", why)
	}
	// Two sweep periods: the writer looks, and finds the cache whole.
	for end := time.Now().Add(2 * evictSweep); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if ok, why := w.Health(r.ctx); !ok {
			t.Fatalf("Health = %q while only others' keys were evicted", why)
		}
		if ready, why := w.Readiness(r.ctx); !ready {
			t.Fatalf("Readiness = %q while only others' keys were evicted", why)
		}
	}
}

// A replica promoted by a failover may lack the last writes, and readers
// have seen their seqs: a writer taking over the cache there starts a new
// epoch rather than hand out those seqs again with other data.
func TestCacheOnAPromotedReplicaStartsANewEpoch(t *testing.T) {
	r, _, replica, _, epoch := replicated(t)
	rep := replica.Client(t, nil)
	if err := rep.Do(r.ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	r.rdb = rep // the failover: the writer of the next term writes here
	b := r.warmer("b")
	r.run(b)
	testkit.Eventually(t, 10*time.Second, "b writes once a's lease has lapsed", func() bool { return b.Role() == "writer" })
	r.step(b)
	if got := r.meta()[keys.MetaEpoch]; got == epoch || got == "" {
		t.Errorf("epoch on the promoted replica = %q, want a new one (was %s)", got, epoch)
	}

	// The same Redis, written to again by another writer: adopted.
	c := r.warmer("c")
	epoch = r.meta()[keys.MetaEpoch]
	r.stop(b)
	r.step(c)
	if got := r.meta()[keys.MetaEpoch]; got != epoch {
		t.Errorf("epoch after a takeover on the same Redis = %q, want %s kept", got, epoch)
	}
}

// The failover the robustness suite found (sentinel, seed 20261203): a
// master that a writer took the cache over on follows another master for
// a while (which took writes it never received), then is promoted again.
// Its cache was taken over under its own old replication id, which is
// neither its id now nor the one it was promoted from; a writer taking
// over there starts a new epoch too.
func TestCacheOnARepromotedMasterStartsANewEpoch(t *testing.T) {
	r, _, b, w1, epoch := replicated(t)
	r.stop(w1)
	rb := b.Client(t, nil)
	// b is promoted, and a follows it, then a is promoted again.
	if err := rb.Do(r.ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.rdb.Do(r.ctx, "REPLICAOF", "127.0.0.1", strconv.Itoa(b.Port)).Err(); err != nil {
		t.Fatal(err)
	}
	bid, _, err := replID(r.ctx, rb)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "a follows b", func() bool {
		id, _, _ := replID(r.ctx, r.rdb)
		return id == bid && strings.Contains(r.rdb.Info(r.ctx, "replication").Val(), "master_link_status:up")
	})
	if err := r.rdb.Do(r.ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	w2 := r.warmer("two")
	r.step(w2)
	if got := r.meta()[keys.MetaEpoch]; got == epoch || got == "" {
		t.Errorf("epoch on the master promoted again = %q, want a new one (was %s)", got, epoch)
	}
}

// replicated starts a master and a replica of it, and a warmer "a" that
// builds the cache on the master (the rig's Redis), once the replica
// holds it too; it returns the epoch.
func replicated(t *testing.T) (r *rig, master, replica *redistest.Server, a *Warmer, epoch string) {
	t.Helper()
	master = redistest.Start(t, redistest.Options{})
	replica = redistest.Start(t, redistest.Options{Config: []string{"replicaof 127.0.0.1 " + strconv.Itoa(master.Port)}})
	r = newRig(t)
	r.rdb, r.prefix = master.Client(t, nil), "vista"
	a = r.warmer("a")
	r.step(a)
	epoch = r.meta()[keys.MetaEpoch]
	rep := replica.Client(t, nil)
	testkit.Eventually(t, 10*time.Second, "the replica has the cache", func() bool {
		return rep.HGet(r.ctx, keys.Meta(r.prefix), keys.MetaEpoch).Val() == epoch
	})
	return r, master, replica, a, epoch
}

// A rebuild that Redis evicted from unseen leaves a cache smaller than
// the whole; a quiet look at it must not make Redis seem to have room
// for the whole cache, or the next loss is rebuilt at once, not after
// the minute a rebuild waits under pressure.
func TestRoomForCacheRemembersTheWholeCache(t *testing.T) {
	const MiB = 1 << 20
	at := clocktest.Start
	ev := eviction{seen: -1}
	ev.note(memory{used: 10 * MiB, policy: "allkeys-lru"}, at, true)
	ev.note(memory{used: 10 * MiB, policy: "allkeys-lru"}, at.Add(2*time.Second), true)
	if !ev.roomForCache() {
		t.Fatal("no maxmemory: no room for the cache")
	}
	// maxmemory at 40% of the cache: Redis evicts.
	ev.note(memory{used: 4 * MiB, max: 4 * MiB, policy: "allkeys-lru", evicted: 900}, at.Add(4*time.Second), true)
	if ev.roomForCache() {
		t.Error("room for a 10 MiB cache in a 4 MiB maxmemory")
	}
	// Rebuilt, partly evicted unseen; then quiet at 3 MiB of 4.
	for i := range 3 {
		ev.note(memory{used: 3 * MiB, max: 4 * MiB, policy: "allkeys-lru", evicted: 900}, at.Add(time.Duration(6+2*i)*time.Second), true)
	}
	if ev.roomForCache() {
		t.Errorf("room for the cache after a quiet look at a part of it (whole %s)", mib(ev.whole))
	}
	// maxmemory lifted above the whole cache: room at once.
	ev.note(memory{used: 3 * MiB, max: 12 * MiB, policy: "allkeys-lru", evicted: 900}, at.Add(12*time.Second), true)
	if !ev.roomForCache() {
		t.Error("no room with maxmemory 12 MiB for a 10 MiB cache")
	}
}
