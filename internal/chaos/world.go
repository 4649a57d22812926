package chaos

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// ---- the simulated Vista ----

// Sim is the simulated Vista, cmd/vistasim, running as a process.
type Sim struct {
	Addr   string
	cmd    *exec.Cmd
	client *http.Client
}

func startSim(tb testing.TB, bin, dir string) *Sim {
	tb.Helper()
	logf, err := os.Create(filepath.Join(dir, "vistasim.log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--seed", "7",
		"--cinemas", "4", "--screens", "6", "--shows", "5", "--days", "5")
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start vistasim: %v", err)
	}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			addr <- strings.TrimSpace(sc.Text())
		}
		close(addr)
		io.Copy(io.Discard, out)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			tb.Fatal("vistasim ended before it listened")
		}
		return &Sim{Addr: a, cmd: cmd, client: &http.Client{Timeout: 5 * time.Second}}
	case <-time.After(10 * time.Second):
		tb.Fatal("vistasim does not say where it listens")
	}
	return nil
}

// URL is the base URL the warmers are given.
func (s *Sim) URL() string { return "http://" + s.Addr + "/WSVistaWebClient/" }

// Post calls the control API.
func (s *Sim) Post(ctx context.Context, pathAndQuery string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.Addr+pathAndQuery, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return fmt.Errorf("POST %s: %s: %s", pathAndQuery, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// Truth asks the simulator what it lists now.
func (s *Sim) Truth(ctx context.Context) (Truth, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Addr+"/control/sessions", nil)
	if err != nil {
		return Truth{}, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return Truth{}, err
	}
	defer resp.Body.Close()
	t := Truth{At: time.Now(), Seats: map[string]int{}, Status: map[string]string{}, Showtime: map[string]time.Time{}}
	dec := json.NewDecoder(resp.Body)
	for {
		var row struct {
			ID       string    `json:"id"`
			Seats    int       `json:"seats_available"`
			Status   string    `json:"status"`
			Showtime time.Time `json:"showtime"`
		}
		if err := dec.Decode(&row); err == io.EOF {
			break
		} else if err != nil {
			return Truth{}, fmt.Errorf("truth: %w", err)
		}
		t.Seats[row.ID], t.Status[row.ID], t.Showtime[row.ID] = row.Seats, row.Status, row.Showtime
	}
	return t, nil
}

// ---- the warmers ----

// Warmer is one warmer instance: a name, an instance id, an address to
// listen on and a proxy to Redis, run as one process after another
// (a restart is a new process).
type Warmer struct {
	Name   string // writer, standby, twin
	ID     string // --instance-id
	Listen string
	Proxy  *redistest.Proxy // nil in the sentinel topology
	world  *World
	file   string // its logs' names: NAME-LIFE.log

	mu    sync.Mutex
	lives []*life
}

// life is one process of a warmer.
type life struct {
	cmd     *exec.Cmd
	pid     int
	logPath string
	done    chan struct{}

	// Under the Warmer's mu.
	asked   bool // told to end (SIGTERM, SIGHUP, SIGKILL) on purpose
	killed  bool // by SIGKILL, on purpose
	paused  bool
	hung    bool // told to stop cleanly, it did not end in time and was killed
	exited  bool
	code    int // exit status; -1 ended by a signal
	signal  string
	rssWarm int64
	rssEnd  int64
}

func (w *World) newWarmer(name, id string) *Warmer {
	x := &Warmer{Name: name, ID: id, Listen: "127.0.0.1:" + strconv.Itoa(redistest.FreePort(w.tb)), world: w, file: name}
	if w.Repl == nil {
		x.Proxy = redistest.StartProxy(w.tb, w.Redis.Addr())
	}
	return x
}

// StartTwin starts a second process with the same instance id as of, on
// a port of its own, straight to Redis (or the sentinels).
func (w *World) StartTwin(of *Warmer) (*Warmer, error) {
	x := &Warmer{Name: "twin", ID: of.ID, Listen: "127.0.0.1:" + strconv.Itoa(redistest.FreePort(w.tb)), world: w, Proxy: of.Proxy,
		file: fmt.Sprintf("twin%d", len(w.twins)+1)}
	if err := x.Start(); err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.twin = x
	w.mu.Unlock()
	w.twins = append(w.twins, x)
	return x, nil
}

// StopTwin stops the twin, if one runs, as an operator does.
func (w *World) StopTwin() {
	w.mu.Lock()
	x := w.twin
	w.twin = nil
	w.mu.Unlock()
	if x != nil && !x.Stop(10*time.Second) {
		w.Logf("the twin did not stop cleanly")
	}
}

// Processes returns every warmer process the world ran, twins included.
func (w *World) Processes() []Process {
	var out []Process
	for _, x := range append([]*Warmer{w.Writer, w.Standby}, w.twins...) {
		out = append(out, x.Processes()...)
	}
	return out
}

func (x *Warmer) args() []string {
	o := x.world.o
	every := func(d time.Duration) string { return "@every " + d.String() }
	return []string{
		"--vista-url", x.world.Sim.URL(),
		"--redis-url", x.world.redisURL(x.Proxy),
		"--prefix", x.world.Prefix,
		"--listen", x.Listen,
		"--instance-id", x.ID,
		"--lease-ttl", o.LeaseTTL.String(),
		"--sessions-cron", every(o.Period),
		"--films-cron", every(o.ListPeriod),
		"--cinemas-cron", every(o.ListPeriod),
		"--near-interval", o.NearInterval.String(),
		"--max-drop", strconv.FormatFloat(o.MaxDrop*100, 'f', -1, 64) + "%",
		"--timezone", "UTC",
		"--log-format", "text",
	}
}

// Start starts a new process of the warmer. It does not wait for it to be
// ready.
func (x *Warmer) Start() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if l := x.currentLocked(); l != nil {
		return fmt.Errorf("%s is running (pid %d)", x.Name, l.pid)
	}
	n := len(x.lives) + 1
	logPath := filepath.Join(x.world.dir, fmt.Sprintf("%s-%d.log", x.file, n))
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(x.world.bin.Warmer, x.args()...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	if x.world.o.Bug != "" {
		cmd.Env = append(cmd.Env, "VISTA_WARMER_CHAOS_BUG="+x.world.o.Bug)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", x.Name, err)
	}
	l := &life{cmd: cmd, pid: cmd.Process.Pid, logPath: logPath, done: make(chan struct{}), code: -1,
		rssWarm: x.world.warmRSS.Load()}
	x.lives = append(x.lives, l)
	x.world.Logf("%s started: pid %d", x.Name, l.pid)
	go func() {
		err := cmd.Wait()
		f.Close()
		x.mu.Lock()
		l.exited = true
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				l.signal = ws.Signal().String()
			} else {
				l.code = ee.ExitCode()
			}
		} else if err == nil {
			l.code = 0
		}
		crashed := !l.asked
		x.mu.Unlock()
		x.world.Logf("%s pid %d ended: code %d signal %q asked %v", x.Name, l.pid, l.code, l.signal, !crashed)
		if crashed {
			x.world.tb.Logf("chaos: %s (pid %d) ended without being asked: code %d signal %q", x.Name, l.pid, l.code, l.signal)
		}
		close(l.done)
	}()
	return nil
}

func (x *Warmer) currentLocked() *life {
	if len(x.lives) == 0 {
		return nil
	}
	if l := x.lives[len(x.lives)-1]; !l.exited {
		return l
	}
	return nil
}

// Pid is the running process's pid, 0 when none runs.
func (x *Warmer) Pid() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	if l := x.currentLocked(); l != nil {
		return l.pid
	}
	return 0
}

// Started reports whether a process of the warmer was ever started.
func (x *Warmer) Started() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.lives) > 0
}

// Running reports whether a process of the warmer runs (paused or not).
func (x *Warmer) Running() bool { return x.Pid() != 0 }

// Signal sends sig to the running process. SIGTERM, SIGHUP and SIGKILL
// mark it as told to end; SIGSTOP and SIGCONT as paused or not.
func (x *Warmer) Signal(sig syscall.Signal) error {
	x.mu.Lock()
	l := x.currentLocked()
	if l == nil {
		x.mu.Unlock()
		return fmt.Errorf("%s is not running", x.Name)
	}
	switch sig {
	case syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT:
		l.asked = true
	case syscall.SIGKILL:
		l.asked, l.killed = true, true
	case syscall.SIGSTOP:
		l.paused = true
	case syscall.SIGCONT:
		l.paused = false
	}
	x.mu.Unlock()
	x.world.Logf("%s pid %d: %s", x.Name, l.pid, sig)
	if sig == syscall.SIGTERM || sig == syscall.SIGHUP || sig == syscall.SIGINT {
		// A paused process cannot act on it until it runs again.
		l.cmd.Process.Signal(syscall.SIGCONT)
	}
	return l.cmd.Process.Signal(sig)
}

// Wait waits up to d for the running process to end; it reports whether
// none runs now.
func (x *Warmer) Wait(d time.Duration) bool {
	x.mu.Lock()
	l := x.currentLocked()
	x.mu.Unlock()
	if l == nil {
		return true
	}
	select {
	case <-l.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Stop ends the running process as an operator does, SIGTERM, and waits
// for it; past the deadline it is killed. It reports whether it ended on
// its own, with status 0.
func (x *Warmer) Stop(d time.Duration) (clean bool) {
	if x.Signal(syscall.SIGTERM) != nil {
		return true
	}
	if !x.Wait(d) {
		x.Kill()
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	l := x.lives[len(x.lives)-1]
	return l.code == 0
}

// Kill ends the running process at once, if one runs, and waits for it.
func (x *Warmer) Kill() {
	x.mu.Lock()
	l := x.currentLocked()
	if l != nil {
		l.asked = true
	}
	x.mu.Unlock()
	if l == nil {
		return
	}
	l.cmd.Process.Signal(syscall.SIGCONT)
	l.cmd.Process.Kill()
	<-l.done
}

// get asks the warmer's HTTP server for path.
func (x *Warmer) get(ctx context.Context, client *http.Client, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+x.Listen+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

// WaitReady waits until /readyz answers 200.
func (x *Warmer) WaitReady(d time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		if !x.Running() {
			return fmt.Errorf("%s is not running", x.Name)
		}
		code, body, err := x.get(context.Background(), client, "/readyz")
		if err == nil && code == http.StatusOK {
			return nil
		}
		last = fmt.Sprint(code, " ", strings.TrimSpace(body), " ", err)
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %s", x.Name, d, last)
}

// Output is the tail of the running (or last) process's log.
func (x *Warmer) Output() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.lives) == 0 {
		return ""
	}
	return tail(x.lives[len(x.lives)-1].logPath, 4000)
}

func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// hung marks the running process as one that was told to stop cleanly
// and did not.
func (x *Warmer) hung() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if l := x.currentLocked(); l != nil {
		l.hung = true
	}
}

// MarkWarm records the running process's RSS as its baseline, after the
// warm-up.
func (x *Warmer) MarkWarm() int64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	l := x.currentLocked()
	if l == nil {
		return 0
	}
	l.rssWarm = RSS(l.pid)
	return l.rssWarm
}

// SetWarmRSS sets the baseline of the processes started from now on: a
// warm writer's RSS.
func (w *World) SetWarmRSS(rss int64) { w.warmRSS.Store(rss) }

// RaiseWarm raises the running process's baseline RSS to at least rss.
func (x *Warmer) RaiseWarm(rss int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if l := x.currentLocked(); l != nil {
		l.rssWarm = max(l.rssWarm, rss)
	}
}

// MarkEnd records the running process's RSS at the end.
func (x *Warmer) MarkEnd() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if l := x.currentLocked(); l != nil {
		l.rssEnd = RSS(l.pid)
	}
}

// Processes returns every process of the warmer so far, as History
// keeps them: one still running has ExitCode -1. Crashed is a process
// that ended without being told to, or was told to stop cleanly and did
// not (a status other than 0, or a signal).
func (x *Warmer) Processes() []Process {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []Process
	for _, l := range x.lives {
		p := Process{Instance: x.Name, Pid: l.pid, Killed: l.killed, ExitCode: -1,
			RSSWarm: l.rssWarm, RSSEnd: l.rssEnd, Output: tail(l.logPath, 3000)}
		if l.exited {
			p.ExitCode = l.code
			p.Crashed = !l.asked || (!l.killed && l.code != 0) || l.hung
			switch {
			case l.hung:
				p.Output = "did not stop within 10s of being told to; killed\n" + p.Output
			case l.signal != "" && !l.killed:
				p.Output = "ended by signal " + l.signal + "\n" + p.Output
			}
		}
		out = append(out, p)
	}
	return out
}

// RSS is a process's resident set in bytes (VmRSS in /proc/PID/status), 0
// when it cannot be read.
func RSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
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
