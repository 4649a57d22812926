package warmer

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/internal/clocktest"
	"github.com/vista-warmer/vista-warmer/internal/testkit"
	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// benchCinemas is how many cinemas the benchmarks' simulated Vista has:
// 113 make about 100k sessions, 565 about 500k (go test -bench ColdLoad
// -args -bench-cinemas 565).
var benchCinemas = flag.Int("bench-cinemas", 113, "cinemas of the benchmarks' simulated Vista (14 screens, 5 shows a day, 14 days: 884 sessions each)")

// loadProfile and loadTrace name files for a CPU profile and an
// execution trace of BenchmarkColdLoad's first load alone (of its last
// run: -benchtime 3x runs it with b.N 1, then 3): -test.cpuprofile and
// -test.trace also take in the simulator making its pages and the plain
// writes the loads are compared with. The trace shows where the loop
// waits (go tool trace, "Goroutine analysis").
var (
	loadProfile = flag.String("load-cpuprofile", "", "write a CPU profile of BenchmarkColdLoad's first load (of its last run) alone to this file")
	loadTrace   = flag.String("load-trace", "", "write an execution trace of BenchmarkColdLoad's first load (of its last run) alone to this file")
)

// gcAsTheBinary runs the benchmark's garbage collector at the binary's
// setting (GCPercent) unless GOGC is set, until the benchmark ends: at
// Go's default, a cold load of 500k sessions took about a tenth less of
// the warmer's CPU than at the binary's.
func gcAsTheBinary(b *testing.B) {
	if os.Getenv("GOGC") == "" {
		old := debug.SetGCPercent(GCPercent)
		b.Cleanup(func() { debug.SetGCPercent(old) })
	}
}

// bigVista is a simulated Vista of about 100k sessions: 113 cinemas of 14
// screens, five shows a day, two weeks ahead (see benchCinemas).
func bigVista(b *testing.B, clock *testkit.Clock) (*vista.Client, *vistasim.Server) {
	return bigVistaBehind(b, clock, func(h http.Handler) http.Handler { return h })
}

// bigVistaBehind is bigVista behind a handler of the benchmark's.
func bigVistaBehind(b *testing.B, clock *testkit.Clock, front func(http.Handler) http.Handler) (*vista.Client, *vistasim.Server) {
	sim := vistasim.New(vistasim.Config{
		Seed: 1, Clock: clock.Now,
		Cinemas: *benchCinemas, Films: 40, Screens: 14, ShowsPerDay: 5, Days: 14,
	})
	srv := httptest.NewServer(front(sim))
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
// as Redis can take the writes (1.0), whatever the machine's speed, and
// the CPU time the warmer's process spent. Where Redis runs on this
// host, it also reports how long Redis idled during a load, waiting for
// the warmer, and how long it waited for a CPU with work to do: on two
// cores the warmer's goroutines and Redis compete for them.
//
// The simulated Vista's answers are made once and replayed (its clock
// stands still): it runs in this process, and what it spends making pages
// is a real Vista's, on its own machine, not the warmer's.
func BenchmarkColdLoad(b *testing.B) {
	gcAsTheBinary(b)
	clock := testkit.NewClock(clocktest.Start)
	client, _ := bigVistaBehind(b, clock, replayed)
	ctx := context.Background()
	// Every page made once, before the clock starts.
	if _, err := client.Cinemas(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := client.Films(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := client.Sessions(ctx, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	sessions := 0
	var took time.Duration
	var redisCPU, ownCPU, plainCPU float64
	streamed := 0
	var idle, cpuWait time.Duration // Redis's, while it loaded
	scheds := true
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		rdb, prefix := MustRedis(b)
		w, err := New(Config{Redis: rdb, Vista: client, Prefix: prefix, InstanceID: "bench", Clock: clock, LeaseTTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		cpu0 := redisCPUSeconds(b, rdb)
		ran0, waited0, sched0 := redisSched(rdb)
		own0 := ownCPUSeconds()
		profiling := startLoadProfile(b, i)
		b.StartTimer()
		start := time.Now()
		stop := running(b, w)
		if err := w.Settle(ctx); err != nil {
			b.Fatal(err)
		}
		took += time.Since(start)
		b.StopTimer()
		if ran1, waited1, sched1 := redisSched(rdb); sched0 && sched1 {
			idle += time.Since(start) - (ran1 - ran0) - (waited1 - waited0)
			cpuWait += waited1 - waited0
		} else {
			scheds = false
		}
		profiling()
		redisCPU += redisCPUSeconds(b, rdb) - cpu0
		ownCPU += ownCPUSeconds() - own0
		sessions = w.count(keys.Sessions)
		if n := rdb.ZCard(ctx, keys.Index(prefix, keys.Sessions)).Val(); n != int64(sessions) {
			b.Fatalf("the index lists %d sessions of the %d loaded", n, sessions)
		}
		stop()
		streamed += w.streamed // the loop's, which stop ended
		plainCPU += plainWrites(b, rdb, prefix)
		b.StartTimer()
	}
	b.ReportMetric(float64(sessions), "sessions")
	b.ReportMetric(float64(sessions*b.N)/took.Seconds(), "sessions/s")
	b.ReportMetric(redisCPU/float64(b.N), "redis-cpu-s/op")
	b.ReportMetric(took.Seconds()/redisCPU, "ready/redis-cpu")
	b.ReportMetric(ownCPU/float64(b.N), "warmer-cpu-s/op")
	// Issue 19's baseline: what plain pipelined writes of the same data
	// cost the same Redis in the same run.
	b.ReportMetric(plainCPU/float64(b.N), "plain-redis-cpu-s/op")
	b.ReportMetric(redisCPU/plainCPU, "redis-cpu/plain")
	b.ReportMetric(took.Seconds()/plainCPU, "ready/plain-redis-cpu")
	b.ReportMetric(float64(streamed)/float64(b.N), "streamed-chunks/op")
	if scheds {
		b.ReportMetric(idle.Seconds()/float64(b.N), "redis-idle-s/op")
		b.ReportMetric(cpuWait.Seconds()/float64(b.N), "redis-cpu-wait-s/op")
	}
}

// startLoadProfile starts what -load-cpuprofile and -load-trace ask
// for, for the first load, and returns what stops it; a benchmark that
// fails meanwhile stops it too, and the files keep what was written.
func startLoadProfile(b *testing.B, load int) func() {
	var stops []func() error
	stopAll := sync.OnceFunc(func() {
		for _, stop := range stops {
			if err := stop(); err != nil {
				b.Error(err)
			}
		}
	})
	b.Cleanup(stopAll)
	start := func(name string, begin func(io.Writer) error, end func()) {
		if name == "" || load > 0 {
			return
		}
		f, err := os.Create(name)
		if err != nil {
			b.Fatal(err)
		}
		if err := begin(f); err != nil {
			f.Close()
			b.Fatalf("%s: %v (not with -test.cpuprofile or -test.trace)", name, err)
		}
		stops = append(stops, func() error { end(); return f.Close() })
	}
	start(*loadProfile, pprof.StartCPUProfile, pprof.StopCPUProfile)
	start(*loadTrace, trace.Start, trace.Stop)
	return stopAll
}

// plainWrites writes what the warmer wrote under prefix again, under a
// prefix of its own, as plain pipelined commands (HSET and PEXPIREAT for
// each hash, ZADD and SADD for the indexes, 500 commands a round trip),
// and returns the Redis CPU seconds that took: the cheapest way to put
// the same data in Redis, the baseline a cold load's Redis CPU is
// compared with. What it reads back first is not counted; the warmer's
// keys are deleted before it writes, and the keys it writes after.
func plainWrites(b *testing.B, rdb *redis.Client, prefix string) float64 {
	ctx := context.Background()
	var cmds []func(redis.Pipeliner, string)
	iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var names []string
	for iter.Next(ctx) {
		names = append(names, iter.Val())
	}
	if err := iter.Err(); err != nil {
		b.Fatal(err)
	}
	for chunk := range slices.Chunk(names, 500) {
		pipe := rdb.Pipeline()
		types := make([]*redis.StatusCmd, len(chunk))
		for i, k := range chunk {
			types[i] = pipe.Type(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		pipe = rdb.Pipeline()
		reads := make([]func() func(redis.Pipeliner, string), len(chunk))
		for i, k := range chunk {
			rest := strings.TrimPrefix(k, prefix)
			switch types[i].Val() {
			case "hash":
				h, at := pipe.HGetAll(ctx, k), pipe.PExpireTime(ctx, k)
				reads[i] = func() func(redis.Pipeliner, string) {
					fields, exp := h.Val(), at.Val()
					return func(p redis.Pipeliner, to string) {
						p.HSet(ctx, to+rest, fields)
						if exp > 0 {
							p.PExpireAt(ctx, to+rest, time.UnixMilli(int64(exp/time.Millisecond)))
						}
					}
				}
			case "zset":
				z := pipe.ZRangeWithScores(ctx, k, 0, -1)
				reads[i] = func() func(redis.Pipeliner, string) {
					members := z.Val()
					return func(p redis.Pipeliner, to string) { p.ZAdd(ctx, to+rest, members...) }
				}
			case "set":
				m := pipe.SMembers(ctx, k)
				reads[i] = func() func(redis.Pipeliner, string) {
					members := m.Val()
					return func(p redis.Pipeliner, to string) { p.SAdd(ctx, to+rest, members) }
				}
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		for _, r := range reads {
			if r != nil {
				cmds = append(cmds, r())
			}
		}
	}
	// Into a keyspace as empty as the warmer's was: a dict twice the size
	// costs every write more.
	for chunk := range slices.Chunk(names, 1000) {
		if err := rdb.Del(ctx, chunk...).Err(); err != nil {
			b.Fatal(err)
		}
	}
	to := prefix + "-plain"
	cpu0 := redisCPUSeconds(b, rdb)
	for chunk := range slices.Chunk(cmds, 250) {
		pipe := rdb.Pipeline()
		for _, c := range chunk {
			c(pipe, to)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	took := redisCPUSeconds(b, rdb) - cpu0
	iter = rdb.Scan(ctx, 0, to+":*", 1000).Iterator()
	var written []string
	for iter.Next(ctx) {
		written = append(written, iter.Val())
	}
	for chunk := range slices.Chunk(written, 1000) {
		rdb.Unlink(ctx, chunk...)
	}
	return took
}

// replayed answers each GET as h answered it the first time.
func replayed(h http.Handler) http.Handler {
	type answer struct {
		code   int
		header http.Header
		body   []byte
	}
	var mu sync.Mutex
	seen := map[string]*answer{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		a := seen[r.URL.String()]
		mu.Unlock()
		if a == nil || r.Method != http.MethodGet {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			a = &answer{code: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
			if r.Method == http.MethodGet {
				mu.Lock()
				seen[r.URL.String()] = a
				mu.Unlock()
			}
		}
		for k, v := range a.header {
			w.Header()[k] = v
		}
		w.WriteHeader(a.code)
		w.Write(a.body)
	})
}

// ownCPUSeconds is the CPU time this process has used, user and system.
func ownCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
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

// redisSched reads how long Redis's main thread has run and how long it
// has waited for a CPU while it had work (Linux's schedstat), when the
// server runs on this host; ok false otherwise. The rest of a load's
// time Redis had nothing to do: it waited for the warmer.
func redisSched(rdb redis.UniversalClient) (ran, waited time.Duration, ok bool) {
	pid := rdb.InfoMap(context.Background(), "server").Item("Server", "process_id")
	if comm, err := os.ReadFile("/proc/" + pid + "/comm"); pid == "" || err != nil || !strings.HasPrefix(string(comm), "redis-server") {
		return 0, 0, false // another host's, or a container's
	}
	raw, err := os.ReadFile("/proc/" + pid + "/task/" + pid + "/schedstat")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(raw))
	if len(f) < 2 {
		return 0, 0, false
	}
	r, err1 := strconv.ParseInt(f[0], 10, 64)
	w, err2 := strconv.ParseInt(f[1], 10, 64)
	return time.Duration(r), time.Duration(w), err1 == nil && err2 == nil
}

// BenchmarkSteadyReload reloads ~100k unchanged sessions: the diff finds
// nothing, so only updated_at and next_check_at are written.
func BenchmarkSteadyReload(b *testing.B) {
	gcAsTheBinary(b)
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
	clock := testkit.NewClock(clocktest.Start)
	client, _ := bigVista(b, clock)
	rdb, prefix := MustRedis(b)
	w, err := New(Config{Redis: rdb, Vista: client, Prefix: prefix, InstanceID: "bench", Clock: clock, LeaseTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(running(b, w))
	if err := w.Settle(context.Background()); err != nil {
		b.Fatal(err)
	}
	return w
}

// BenchmarkIdleStep is the cost of one pass of Run's loop with ~100k
// sessions cached and nothing due: the scan for due checks and expiries
// that runs every second.
func BenchmarkIdleStep(b *testing.B) {
	w := warmBig(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := w.Settle(ctx); err != nil {
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

// answerClock is a Fetcher that notes when each seat check's answer came
// back from Vista.
type answerClock struct {
	Fetcher
	mu sync.Mutex
	at map[string]time.Time
}

func (a *answerClock) CheckSeats(ctx context.Context, ids []string) ([]vista.Seats, []string, error) {
	seats, gone, err := a.Fetcher.CheckSeats(ctx, ids)
	now := time.Now()
	a.mu.Lock()
	for _, id := range ids {
		a.at[id] = now
	}
	a.mu.Unlock()
	return seats, gone, err
}

// BenchmarkAnswerToEvent is the time from a seat check's answer arriving
// from Vista to its item event arriving at a subscriber of the sessions
// channel: the diff, the fenced write and the publish, as the write path
// runs it (Step), with a subscriber on the same host. Each op changes the
// seats of a few near sessions and checks them.
func BenchmarkAnswerToEvent(b *testing.B) {
	clock := testkit.NewClock(clocktest.Start)
	sim := vistasim.New(vistasim.Config{Seed: 3, Clock: clock.Now, Cinemas: 6, Screens: 4, ShowsPerDay: 5, Days: 2})
	srv := httptest.NewServer(sim)
	b.Cleanup(srv.Close)
	client, err := vista.New(vista.Config{BaseURL: srv.URL, Zones: vista.Zones{Default: time.UTC}})
	if err != nil {
		b.Fatal(err)
	}
	ac := &answerClock{Fetcher: client, at: map[string]time.Time{}}
	rdb, prefix := MustRedis(b)
	w, err := New(Config{Redis: rdb, Vista: ac, Prefix: prefix, InstanceID: "bench", Clock: clock, LeaseTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Cleanup(running(b, w))
	if err := w.Settle(ctx); err != nil {
		b.Fatal(err)
	}
	// A moment with a few sessions in the near window.
	var near []vistasim.SessionInfo
	for _, s := range sim.Sessions() {
		if s.Showtime.Sub(clock.Now()) > 2*time.Hour {
			clock.Set(s.Showtime.Add(-5 * time.Minute))
			break
		}
	}
	if err := w.Reload(ctx, keys.Sessions); err != nil {
		b.Fatal(err)
	}
	for _, s := range sim.Sessions() {
		if d := s.Showtime.Sub(clock.Now()); d >= 0 && d < 10*time.Minute && w.st.cache[keys.Sessions][s.ID] != nil {
			near = append(near, s)
		}
	}
	if len(near) == 0 {
		b.Fatal("no session in the near window")
	}
	sub := rdb.Subscribe(ctx, keys.Channel(prefix, keys.Sessions))
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		b.Fatal(err)
	}
	got := make(chan map[string]time.Time)
	want := len(near)
	go func() {
		seen := map[string]time.Time{}
		for msg := range sub.Channel() {
			var ev keys.Event
			if json.Unmarshal([]byte(msg.Payload), &ev) == nil && ev.Event == keys.EventItem {
				seen[ev.ID] = time.Now()
			}
			if len(seen) == want {
				got <- seen
				seen = map[string]time.Time{}
			}
		}
	}()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for _, s := range near {
			sim.SetSeats(s.ID, 10+i%50)
			w.stepMu.Lock()
			w.st.checker.reschedule(s.ID, w.st.cache[keys.Sessions][s.ID], clock.Now())
			w.stepMu.Unlock()
		}
		b.StartTimer()
		if err := w.Settle(ctx); err != nil {
			b.Fatal(err)
		}
		seen := <-got
		ac.mu.Lock()
		for id, at := range seen {
			lat = append(lat, at.Sub(ac.at[id]))
		}
		ac.mu.Unlock()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(len(near)), "sessions/op")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// timedHandler adds up the time its handler spends answering: the
// simulated Vista's share of the process's CPU, to take off the warmer's.
type timedHandler struct {
	h     http.Handler
	spent atomic.Int64
}

func (t *timedHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	t.h.ServeHTTP(w, r)
	t.spent.Add(int64(time.Since(start)))
}

// cpuTime is the process's CPU time, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSteadyChecks plays ten minutes of an evening at ~100k sessions,
// a step a second, and reports the warmer's CPU time per session checked:
// the process's CPU less the time the simulated Vista (in the same
// process) spent answering. One op is the ten minutes.
func BenchmarkSteadyChecks(b *testing.B) {
	gcAsTheBinary(b)
	clock := testkit.NewClock(clocktest.Start)
	sim := vistasim.New(vistasim.Config{Seed: 1, Clock: clock.Now, Cinemas: 113, Films: 40, Screens: 14, ShowsPerDay: 5, Days: 14})
	th := &timedHandler{h: sim}
	srv := httptest.NewServer(th)
	b.Cleanup(srv.Close)
	client, err := vista.New(vista.Config{BaseURL: srv.URL, Timeout: time.Minute, Zones: vista.Zones{Default: time.UTC}})
	if err != nil {
		b.Fatal(err)
	}
	ac := &askCounter{Fetcher: client}
	rdb, prefix := MustRedis(b)
	// Reloads once a day, so the ten minutes are seat checks only.
	w, err := New(Config{Redis: rdb, Vista: ac, Prefix: prefix, InstanceID: "bench", Clock: clock, LeaseTTL: time.Hour,
		SessionsCron: "@every 24h", FilmsCron: "@every 24h", CinemasCron: "@every 24h"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// 19:50 tomorrow, in the zone the simulated cinemas use here: a busy
	// evening, with a first load taken there.
	day := clock.Now().AddDate(0, 0, 1)
	clock.Set(time.Date(day.Year(), day.Month(), day.Day(), 19, 50, 0, 0, time.UTC))
	b.Cleanup(running(b, w))
	if err := w.Settle(ctx); err != nil {
		b.Fatal(err)
	}
	for range 120 { // two minutes to settle into the schedule
		clock.Add(time.Second)
		if err := w.Settle(ctx); err != nil {
			b.Fatal(err)
		}
	}
	var cpu, simSpent time.Duration
	var checked, calls int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cpu0, sim0, asked0, calls0 := cpuTime(b), th.spent.Load(), ac.ids.Load(), ac.calls.Load()
		for range 600 {
			clock.Add(time.Second)
			if err := w.Settle(ctx); err != nil {
				b.Fatal(err)
			}
		}
		cpu += cpuTime(b) - cpu0
		simSpent += time.Duration(th.spent.Load() - sim0)
		checked += ac.ids.Load() - asked0
		calls += ac.calls.Load() - calls0
	}
	b.StopTimer()
	tiers := w.st.shows.tiers(w.cfg.Policy, clock.Now())
	b.ReportMetric(float64(checked)/float64(b.N)/600, "checks/s")
	b.ReportMetric(float64(calls)/float64(checked), "requests/check")
	b.ReportMetric(float64(tiers["near"]), "near-sessions")
	b.ReportMetric(float64((cpu-simSpent).Microseconds())/1000/float64(checked), "warmer-cpu-ms/check")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(checked), "process-cpu-ms/check")
}

// running starts w's Run and returns what stops it (and waits for it).
func running(tb testing.TB, w *Warmer) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			tb.Error(err)
		}
	}()
	return sync.OnceFunc(func() {
		cancel()
		<-done
	})
}
