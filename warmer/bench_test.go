package warmer

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// bigVista is a simulated Vista of about 100k sessions: 113 cinemas of 14
// screens, five shows a day, two weeks ahead.
func bigVista(b *testing.B, clock *fakeClock) (*vista.Client, *vistasim.Server) {
	sim := vistasim.New(vistasim.Config{
		Seed: 1, Clock: clock.Now,
		Cinemas: 113, Films: 40, Screens: 14, ShowsPerDay: 5, Days: 14,
	})
	srv := httptest.NewServer(sim)
	b.Cleanup(srv.Close)
	client, err := vista.New(vista.Config{BaseURL: srv.URL, Timeout: time.Minute, Zones: vista.Zones{Default: time.UTC}})
	if err != nil {
		b.Fatal(err)
	}
	return client, sim
}

// BenchmarkColdLoad builds the cache of ~100k sessions from nothing into
// the local Redis: fetch, decode, diff, and the fenced writes. Besides the
// time to a warm cache it reports the CPU time Redis spent meanwhile
// (INFO cpu), and their ratio: how far the warmer is from being as fast
// as Redis can take the writes (1.0), whatever the machine's speed.
func BenchmarkColdLoad(b *testing.B) {
	clock := &fakeClock{now: time.Now().Truncate(time.Second)}
	client, _ := bigVista(b, clock)
	ctx := context.Background()
	sessions := 0
	var took time.Duration
	var redisCPU float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		rdb, prefix := MustRedis(b)
		w, err := New(Config{Redis: rdb, Vista: client, Prefix: prefix, InstanceID: "bench", Clock: clock, LeaseTTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		cpu0 := redisCPUSeconds(b, rdb)
		b.StartTimer()
		start := time.Now()
		if err := w.Step(ctx); err != nil {
			b.Fatal(err)
		}
		took += time.Since(start)
		b.StopTimer()
		redisCPU += redisCPUSeconds(b, rdb) - cpu0
		sessions = w.count(keys.Sessions)
		w.stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(sessions), "sessions")
	b.ReportMetric(float64(sessions*b.N)/took.Seconds(), "sessions/s")
	b.ReportMetric(redisCPU/float64(b.N), "redis-cpu-s/op")
	b.ReportMetric(took.Seconds()/redisCPU, "ready/redis-cpu")
}

// redisCPUSeconds reads the CPU time the Redis server has used, user and
// system, from INFO cpu.
func redisCPUSeconds(b *testing.B, rdb redis.UniversalClient) float64 {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for _, line := range strings.Split(info, "\n") {
		name, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (name == "used_cpu_sys" || name == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}

// BenchmarkSteadyReload reloads ~100k unchanged sessions: the diff finds
// nothing, so only updated_at and next_check_at are written.
func BenchmarkSteadyReload(b *testing.B) {
	w := warmBig(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := w.Reload(ctx, keys.Sessions); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(w.count(keys.Sessions)), "sessions")
}

// warmBig returns a writer with ~100k sessions cached, on a clock that
// stands still, so nothing changes between its reloads.
func warmBig(b *testing.B) *Warmer {
	clock := &fakeClock{now: time.Now().Truncate(time.Second)}
	client, _ := bigVista(b, clock)
	rdb, prefix := MustRedis(b)
	w, err := New(Config{Redis: rdb, Vista: client, Prefix: prefix, InstanceID: "bench", Clock: clock, LeaseTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Step(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.stop)
	return w
}

// BenchmarkIdleStep is the cost of one tick with ~100k sessions cached and
// nothing due: the scan for due checks and expiries that runs every second.
func BenchmarkIdleStep(b *testing.B) {
	w := warmBig(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := w.Step(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiff measures the diff alone, the part of a reload that runs for
// every session every hour.
func BenchmarkDiff(b *testing.B) {
	old := sessionRecordFor("1001-1", 42)
	for _, seats := range []int{42, 41} {
		cur := sessionRecordFor("1001-1", seats)
		b.Run(fmt.Sprintf("seats=%d", seats), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				compare(baseFields[keys.Sessions], "1001-1", old, cur)
			}
		})
	}
}

func sessionRecordFor(id string, seats int) *record {
	return &record{vals: pack([]string{id, "1001", "HO1", "1", "2026-11-25T20:00:00+01:00", "2026-11-25",
		"Screen 1", "1", fmt.Sprint(seats), "0", "0", "open", "OV"})}
}

// BenchmarkIndexCheck is the check every reload ends with: each index of
// ~100k sessions (P:sessions, 113 cinemas', 40 films') read back and found
// to agree with the cache, so nothing is written.
func BenchmarkIndexCheck(b *testing.B) {
	w := warmBig(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := w.repairIndexes(ctx, keys.Sessions); err != nil {
			b.Fatal(err)
		}
	}
}
