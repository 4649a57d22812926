package chaos

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/internal/redistest"
	"github.com/vista-warmer/vista-warmer/keys"
)

// The topologies a world runs Redis in.
const (
	Single   = "single"   // one redis-server; each warmer reaches it through a proxy of its own
	Sentinel = "sentinel" // a master, a replica and three sentinels; the warmers follow the master
)

// Credentials: the warmers log in as Redis's default user, whose password
// the nemesis rotates; the recorder and the nemesis as a user of their
// own, which no fault touches. The sentinel topology runs without
// passwords (a rotation there would need the replica's masterauth and the
// sentinels' auth-pass to follow).
const (
	warmerPassword = "warmer-pw"
	rotatedPass    = "rotated-pw"
	adminUser      = "chaos"
	adminPassword  = "chaos-pw"
)

// Options describe a world.
type Options struct {
	Topology string // Single or Sentinel
	AOF      bool   // Redis appends every write to its AOF (fsync always): a kill -9 loses nothing
	Bug      string // VISTA_WARMER_CHAOS_BUG for the warmers (a binary built with -tags chaosbug)

	LeaseTTL     time.Duration // --lease-ttl
	Period       time.Duration // --sessions-cron @every
	ListPeriod   time.Duration // --films-cron and --cinemas-cron @every
	NearInterval time.Duration // --near-interval
	MaxDrop      float64       // --max-drop, as a share

	// Span is how long from now sessions are wanted inside the near
	// window: a few are moved so that some are near throughout.
	Span time.Duration
}

func (o Options) withDefaults() Options {
	o.Topology = cmp.Or(o.Topology, Single)
	o.LeaseTTL = cmp.Or(o.LeaseTTL, 4*time.Second)
	o.Period = cmp.Or(o.Period, 30*time.Second)
	o.ListPeriod = cmp.Or(o.ListPeriod, 60*time.Second)
	o.NearInterval = cmp.Or(o.NearInterval, 10*time.Second)
	o.MaxDrop = cmp.Or(o.MaxDrop, 0.5)
	o.Span = cmp.Or(o.Span, 10*time.Minute)
	return o
}

// Binaries are the programs a world runs, built once per test binary.
type Binaries struct {
	Warmer, Sim string
}

// Build builds the warmer (with the build tags given, e.g. "chaosbug")
// and vistasim into dir.
func Build(tb testing.TB, dir, tags string) Binaries {
	tb.Helper()
	b := Binaries{Warmer: filepath.Join(dir, "vista-warmer"), Sim: filepath.Join(dir, "vistasim")}
	for _, job := range []struct{ out, pkg, tags string }{
		{b.Warmer, "github.com/vista-warmer/vista-warmer/cmd/vista-warmer", tags},
		{b.Sim, "github.com/vista-warmer/vista-warmer/cmd/vistasim", ""},
	} {
		args := []string{"build", "-o", job.out}
		if job.tags != "" {
			args = append(args, "-tags", job.tags)
		}
		cmd := exec.Command("go", append(args, job.pkg)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, out)
		}
	}
	return b
}

// World is every process of one run: Redis, the simulated Vista, the
// warmers and the proxies between the warmers and Redis.
type World struct {
	tb     testing.TB
	o      Options
	bin    Binaries
	dir    string
	Prefix string

	// Single topology.
	Redis *redistest.Server
	// Sentinel topology.
	Repl *redistest.Replicated

	Sim     *Sim
	Writer  *Warmer // the instance started first, as the writer
	Standby *Warmer

	mu   sync.Mutex
	twin *Warmer // a second process with a warmer's instance id, while the nemesis runs one

	twins []*Warmer // every twin so far, for Processes

	// warmRSS is a warm writer's RSS, taken after the warm-up: the
	// baseline of every process started later (a restart, a twin), which
	// runs the same binary on the same data.
	warmRSS atomic.Int64

	logMu sync.Mutex
	log   *os.File // what the world and the nemesis did, with times
}

// NewWorld starts Redis and the simulated Vista, and makes the two
// warmers ready to start (StartWarmers), so that a recording can begin
// before the first load. Everything it starts is stopped when the test
// ends.
func NewWorld(tb testing.TB, bin Binaries, o Options) *World {
	tb.Helper()
	o = o.withDefaults()
	w := &World{tb: tb, o: o, bin: bin, dir: tb.TempDir(), Prefix: "vista"}
	var err error
	if w.log, err = os.Create(filepath.Join(w.dir, "world.log")); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { w.log.Close() })

	conf := []string{"enable-debug-command local"}
	switch o.Topology {
	case Single:
		conf = append(conf, "requirepass "+warmerPassword,
			"user "+adminUser+" on >"+adminPassword+" ~* &* +@all")
		if o.AOF {
			conf = append(conf, "appendonly yes", "appendfsync always")
		}
		w.Redis = redistest.Start(tb, redistest.Options{Config: conf})
	case Sentinel:
		// A replica that syncs again after a failover gets its copy at
		// once, not 5 s later.
		w.Repl = redistest.StartReplicated(tb, append(conf, "repl-diskless-sync-delay 0")...)
		// A master that comes back after a failover is made a replica
		// within a second, not ten: the sentinels ask INFO every second.
		for _, s := range w.Repl.Sentinels {
			c := redis.NewClient(&redis.Options{Addr: s.Addr()})
			err := c.Do(context.Background(), "SENTINEL", "DEBUG", "INFO-PERIOD", 1000).Err()
			c.Close()
			if err != nil {
				tb.Logf("SENTINEL DEBUG INFO-PERIOD: %v (a demoted master then waits up to 10 s)", err)
			}
		}
	default:
		tb.Fatalf("topology %q: single or sentinel", o.Topology)
	}

	w.Sim = startSim(tb, bin.Sim, w.dir)
	w.moveNear(o.Span)

	w.Writer = w.newWarmer("writer", "chaos-writer")
	w.Standby = w.newWarmer("standby", "chaos-standby")
	tb.Cleanup(w.stopAll)
	return w
}

// StartWarmers starts the writer, waits until it is ready, then the
// standby, and waits for it too.
func (w *World) StartWarmers() {
	w.tb.Helper()
	if err := w.Writer.Start(); err != nil {
		w.tb.Fatal(err)
	}
	if err := w.Writer.WaitReady(90 * time.Second); err != nil {
		w.tb.Fatalf("the writer: %v\n%s", err, w.Writer.Output())
	}
	if err := w.Standby.Start(); err != nil {
		w.tb.Fatal(err)
	}
	if err := w.Standby.WaitReady(60 * time.Second); err != nil {
		w.tb.Fatalf("the standby: %v\n%s", err, w.Standby.Output())
	}
}

// Logf writes a line to the world's log (world.log in its folder).
func (w *World) Logf(format string, args ...any) {
	w.logMu.Lock()
	defer w.logMu.Unlock()
	fmt.Fprintf(w.log, "%s %s\n", time.Now().UTC().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// Dir is the world's folder: logs of every process.
func (w *World) Dir() string { return w.dir }

// Options returns the world's options, defaults filled in.
func (w *World) Options() Options { return w.o }

// Warmers returns the warmers that may be running: writer, standby and,
// while there is one, the twin.
func (w *World) Warmers() []*Warmer {
	out := []*Warmer{w.Writer, w.Standby}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.twin != nil {
		out = append(out, w.twin)
	}
	return out
}

// AdminClient returns a client of Redis as the recorder and the nemesis
// use it: straight to the server (no proxy), as a user no fault touches,
// following the master in the sentinel topology. Its calls fail fast
// rather than hang, since Redis is killed and paused all the time.
func (w *World) AdminClient() redis.UniversalClient {
	if w.Repl != nil {
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: w.Repl.Name, SentinelAddrs: w.Repl.SentinelAddrs(),
			DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
			MaxRetries: -1, PoolSize: 8,
		})
	}
	return redis.NewClient(w.nodeOptions(w.Redis.Addr()))
}

// NodeClient returns a client of one server of the world, as the admin.
func (w *World) NodeClient(addr string) *redis.Client {
	return redis.NewClient(w.nodeOptions(addr))
}

func (w *World) nodeOptions(addr string) *redis.Options {
	o := &redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: 2 * time.Second,
		WriteTimeout: 2 * time.Second, MaxRetries: -1, PoolSize: 8}
	if w.Repl == nil {
		o.Username, o.Password = adminUser, adminPassword
	}
	return o
}

// Master returns the server that is the master now: the one server in the
// single topology; in the sentinel one, the one the sentinels name.
func (w *World) Master(ctx context.Context) (*redistest.Server, error) {
	if w.Repl == nil {
		return w.Redis, nil
	}
	addr, err := w.Repl.MasterAddr(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range []*redistest.Server{w.Repl.Master, w.Repl.Replica} {
		if s.Addr() == addr {
			return s, nil
		}
	}
	return nil, fmt.Errorf("the sentinels name %s as the master, which is not ours", addr)
}

// redisURL is the URL a warmer is given: its proxy in the single topology,
// the sentinels in the other.
func (w *World) redisURL(proxy *redistest.Proxy) string {
	if w.Repl != nil {
		return "redis-sentinel://" + strings.Join(w.Repl.SentinelAddrs(), ",") + "/" + w.Repl.Name
	}
	return "redis://:" + warmerPassword + "@" + proxy.Addr() + "/0"
}

// moveNear moves a few sessions far from now to showtimes spread from a
// little before now to span after it, so that sessions are inside the
// near window whatever the hour: a run at 4 in the morning checks near
// sessions too.
func (w *World) moveNear(span time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := w.Sim.Truth(ctx)
	if err != nil {
		w.tb.Fatalf("vistasim's truth: %v", err)
	}
	now := time.Now()
	var far []string
	for id, st := range tr.Showtime {
		if st.Sub(now) > 30*time.Hour {
			far = append(far, id)
		}
	}
	slices.Sort(far)
	const n = 30
	if len(far) < n {
		w.tb.Fatalf("vistasim lists %d sessions beyond 30 hours, want %d to move near now", len(far), n)
	}
	start := now.Add(-8 * time.Minute)
	step := (span + 16*time.Minute) / n
	for i := range n {
		id := far[i*len(far)/n]
		at := start.Add(time.Duration(i) * step).Truncate(time.Minute)
		if err := w.Sim.Post(ctx, "/control/move?id="+url.QueryEscape(id)+"&showtime="+url.QueryEscape(at.UTC().Format(time.RFC3339))); err != nil {
			w.tb.Fatalf("move %s: %v", id, err)
		}
	}
}

// stopAll stops every warmer (twins included), ending any pause first.
func (w *World) stopAll() {
	for _, x := range append([]*Warmer{w.Writer, w.Standby}, w.twins...) {
		x.Kill()
	}
}

// holderName maps P:lease's value (instance id, a space, the process's
// token) to the warmer with that id: the writer's id may be the twin's
// too, which the nemesis does not tell apart.
func (w *World) holderName(value string) string {
	id, _, _ := strings.Cut(value, " ")
	switch id {
	case "":
		return ""
	case w.Writer.ID:
		return w.Writer.Name
	case w.Standby.ID:
		return w.Standby.Name
	}
	return id
}

// Holder reads P:lease and names the warmer holding it ("" when none).
func (w *World) Holder(ctx context.Context, rdb redis.UniversalClient) (string, error) {
	v, err := rdb.Get(ctx, keys.Lease(w.Prefix)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return w.holderName(v), nil
}
