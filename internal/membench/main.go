// Command membench measures the warmer's memory at a chain's size from the
// outside, as an operator sees it: it builds the binary, serves the
// simulated Vista at ~500k listed sessions on a loopback port, starts a
// throwaway redis-server, runs the warmer against both and samples the
// process's VmRSS and VmHWM every 200 ms. It reports the peak of the cold
// load, the RSS settled a while after /readyz says ready, and the peak of
// the next full sessions reload (the sessions cron is set so that one comes
// after the settled reading).
//
// The binary is built with one file added through -overlay (nothing is
// written to the tree) that serves net/http/pprof on a loopback port, so
// that heap profiles can be taken at the settled point and during the
// reload. Samples, profiles and the warmer's log go to -out.
//
//	go run ./internal/membench              # the working tree
//	go run ./internal/membench -src /tmp/before -label before
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vista-warmer/vista-warmer/internal/outside"

	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

func main() {
	var o opts
	flag.StringVar(&o.src, "src", ".", "the module whose ./cmd/vista-warmer is measured")
	flag.StringVar(&o.label, "label", "run", "names the files in -out")
	flag.StringVar(&o.out, "out", "bin/membench", "where samples, profiles and the warmer's log go")
	flag.IntVar(&o.cinemas, "cinemas", 565, "simulated cinemas: 14 screens × 5 shows × 14 days, ~888 listed sessions each")
	flag.IntVar(&o.films, "films", 80, "simulated films")
	flag.DurationVar(&o.settle, "settle", time.Minute, "how long after ready the settled RSS is read")
	flag.DurationVar(&o.reloadEvery, "reload-every", 4*time.Minute, "--sessions-cron @every: must put the second sessions load after the settled reading")
	flag.BoolVar(&o.pprof, "pprof", true, "add a pprof listener to the binary and take heap profiles")
	flag.StringVar(&o.memLimit, "gomemlimit", "", "GOMEMLIMIT for the warmer alone, e.g. 400MiB")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "membench:", err)
		os.Exit(1)
	}
}

type opts struct {
	src, label, out     string
	cinemas, films      int
	settle, reloadEvery time.Duration
	pprof               bool
	memLimit            string
}

func run(ctx context.Context, o opts) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "membench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	bin := filepath.Join(tmp, "vista-warmer")
	if err := build(ctx, o, tmp, bin); err != nil {
		return err
	}

	// The simulated Vista runs in this process, so its memory is not the
	// warmer's. It notes each start of a full sessions list and each page.
	sim := vistasim.New(vistasim.Config{Seed: 1, Cinemas: o.cinemas, Films: o.films, Screens: 14, ShowsPerDay: 5, Days: 14})
	var listings, pages, reloadFrom atomic.Int64 // reloadFrom: pages before the second list
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	simSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); strings.HasSuffix(r.URL.Path, "/OData.svc/Sessions") && !q.Has("$filter") {
			if !q.Has("$skip") && listings.Add(1) == 2 {
				reloadFrom.Store(pages.Load())
			}
			pages.Add(1)
		}
		sim.ServeHTTP(w, r)
	})}
	go simSrv.Serve(simLn)
	defer simSrv.Close()
	listed := len(sim.Sessions())

	redisPort, err := outside.FreePort()
	if err != nil {
		return err
	}
	redisCmd := exec.Command("redis-server", "--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", tmp)
	redis, err := outside.Start(redisCmd)
	if err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	defer redis.Stop()

	httpPort, pprofPort := mustFreePort(), mustFreePort()
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	logf, err := os.Create(filepath.Join(o.out, o.label+"-warmer.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	warmer := exec.Command(bin,
		"--vista-url", "http://"+simLn.Addr().String()+"/WSVistaWebClient/",
		"--redis-url", fmt.Sprintf("redis://127.0.0.1:%d/0", redisPort),
		"--listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--timezone", "UTC",
		"--sessions-cron", "@every "+o.reloadEvery.String(),
		"--log-format", "json", "--log-level", "warn")
	warmer.Env = append(os.Environ(), fmt.Sprintf("MEMBENCH_PPROF=127.0.0.1:%d", pprofPort))
	if o.memLimit != "" {
		warmer.Env = append(warmer.Env, "GOMEMLIMIT="+o.memLimit)
	}
	warmer.Stdout, warmer.Stderr = logf, logf
	if err := outside.WaitListening(ctx, redisPort); err != nil {
		return err
	}
	began := time.Now()
	w, err := outside.Start(warmer)
	if err != nil {
		return err
	}
	defer w.Stop()

	s := &sampler{pid: warmer.Process.Pid, start: began}
	csv, err := os.Create(filepath.Join(o.out, o.label+"-rss.csv"))
	if err != nil {
		return err
	}
	defer csv.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.run(sctx, csv)

	// wait polls cond every 200 ms until it holds, the warmer exits, ctx
	// ends or limit passes.
	wait := func(what string, limit time.Duration, cond func() bool) error {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		deadline := time.After(limit)
		for !cond() {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-w.Done:
				return fmt.Errorf("the warmer exited while waiting for %s: %v (see %s)", what, w.Err, logf.Name())
			case <-deadline:
				return fmt.Errorf("no %s within %v", what, limit)
			case <-t.C:
			}
		}
		return nil
	}

	fmt.Printf("membench %s: %d cinemas, %d sessions listed, %d pages of 1000; cores %d\n",
		o.label, o.cinemas, listed, (listed+999)/1000, runtime.NumCPU())
	s.setPhase("cold")
	if err := wait("ready", 10*time.Minute, func() bool { return outside.Get(base+"/readyz") == nil }); err != nil {
		return err
	}
	ready := time.Since(began)
	s.setPhase("settle")
	fmt.Printf("  cold load: ready after %.1fs\n", ready.Seconds())
	if err := wait("settling", o.settle+time.Second, func() bool { return time.Since(began) >= ready+o.settle }); err != nil {
		return err
	}
	settled, coldPeak := s.read()
	if listings.Load() > 1 {
		return fmt.Errorf("a sessions reload began before the settled reading: raise -reload-every (ready took %v)", ready)
	}
	fmt.Printf("  peak during the cold load (VmHWM): %s\n", mb(coldPeak))
	fmt.Printf("  settled, %v after ready (VmRSS): %s with %d sessions held; %s\n", o.settle, mb(settled), sessionsHeld(base), goMem(base))
	if o.pprof {
		// The profile forces a GC: the heap after it is what is live.
		saveProfile(pprofPort, "gc=1", filepath.Join(o.out, o.label+"-heap-settled.pb.gz"))
		fmt.Printf("  live heap after a forced GC: %s\n", metricMB(base, "go_memstats_heap_alloc_bytes"))
	}
	lastReload := metric(base, `vista_warmer_last_reload_timestamp_seconds{kind="sessions"}`)

	// Reset the high-water mark, so that VmHWM is the reload's own peak.
	resetHWM := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", warmer.Process.Pid), []byte("5"), 0)
	s.setPhase("idle")
	if err := wait("sessions reload", o.reloadEvery+time.Minute, func() bool { return listings.Load() > 1 }); err != nil {
		return err
	}
	reloadBegan := time.Now()
	s.setPhase("reload")
	took := false
	if err := wait("end of the sessions reload", 10*time.Minute, func() bool {
		if o.pprof && !took && pages.Load()-reloadFrom.Load() >= int64(listed/1000) {
			// The last page or so is in: the whole list is decoded or nearly.
			// The profile is as of the last GC, none is forced.
			time.Sleep(500 * time.Millisecond)
			saveProfile(pprofPort, "", filepath.Join(o.out, o.label+"-heap-reload.pb.gz"))
			took = true
		}
		return metric(base, `vista_warmer_last_reload_timestamp_seconds{kind="sessions"}`) != lastReload
	}); err != nil {
		return err
	}
	time.Sleep(time.Second)
	rss, hwm := s.read()
	peak, sampled := hwm, s.max("reload")
	how := "VmHWM since a reset before the reload"
	if resetHWM != nil {
		peak, how = sampled, "sampled VmRSS; clear_refs: "+resetHWM.Error()
	}
	fmt.Printf("  sessions reload: %.1fs; peak %s (%s; sampled max %s); after it %s; %s\n",
		time.Since(reloadBegan).Seconds(), mb(peak), how, mb(sampled), mb(rss), goMem(base))
	fmt.Printf("  files: %s/%s-*\n", o.out, o.label)
	return nil
}

// build compiles the warmer of o.src, with the pprof listener added
// through an overlay when asked.
func build(ctx context.Context, o opts, tmp, bin string) error {
	args := []string{"build", "-o", bin}
	if o.pprof {
		src, err := filepath.Abs(filepath.Join(o.src, "cmd", "vista-warmer", "zz_membench_pprof.go"))
		if err != nil {
			return err
		}
		file, overlay := filepath.Join(tmp, "pprof.go"), filepath.Join(tmp, "overlay.json")
		if err := os.WriteFile(file, []byte(pprofFile), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(overlay, []byte(fmt.Sprintf(`{"Replace":{%q:%q}}`, src, file)), 0o644); err != nil {
			return err
		}
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/vista-warmer")...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = o.src, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s: %w", o.src, err)
	}
	return nil
}

const pprofFile = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("MEMBENCH_PPROF"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
}
`

// sampler reads the warmer's VmRSS and VmHWM every 200 ms.
type sampler struct {
	pid   int
	start time.Time

	mu       sync.Mutex
	phase    string
	rss, hwm int64 // bytes, the last reading
	maxes    map[string]int64
}

func (s *sampler) run(ctx context.Context, w io.Writer) {
	fmt.Fprintln(w, "seconds,phase,rss_bytes,hwm_bytes")
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		rss, hwm, err := procStatus(s.pid)
		if err == nil {
			s.mu.Lock()
			s.rss, s.hwm = rss, hwm
			if s.maxes == nil {
				s.maxes = map[string]int64{}
			}
			s.maxes[s.phase] = max(s.maxes[s.phase], rss)
			fmt.Fprintf(w, "%.1f,%s,%d,%d\n", time.Since(s.start).Seconds(), s.phase, rss, hwm)
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *sampler) setPhase(p string) { s.mu.Lock(); s.phase = p; s.mu.Unlock() }

// read takes a fresh reading.
func (s *sampler) read() (rss, hwm int64) {
	rss, hwm, _ = procStatus(s.pid)
	return rss, hwm
}

func (s *sampler) max(phase string) int64 { s.mu.Lock(); defer s.mu.Unlock(); return s.maxes[phase] }

func procStatus(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, sc.Err()
}

// metric returns the value of one series of /metrics, as text.
func metric(base, series string) string {
	resp, err := outside.Client.Get(base + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return v
		}
	}
	return ""
}

func metricMB(base, name string) string {
	f, err := strconv.ParseFloat(metric(base, name), 64)
	if err != nil {
		return "?"
	}
	return mb(int64(f))
}

// goMem is the Go runtime's view, from /metrics.
func goMem(base string) string {
	return fmt.Sprintf("Go heap in use %s, heap objects' bytes %s, from the OS %s",
		metricMB(base, "go_memstats_heap_inuse_bytes"), metricMB(base, "go_memstats_heap_alloc_bytes"),
		metricMB(base, "go_memstats_sys_bytes"))
}

func sessionsHeld(base string) int {
	n := 0
	for _, tier := range []string{"beyond_horizon", "approaching", "near", "started"} {
		v, _ := strconv.ParseFloat(metric(base, `vista_warmer_sessions{tier="`+tier+`"}`), 64)
		n += int(v)
	}
	return n
}

func saveProfile(port int, query, path string) {
	resp, err := outside.Client.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?%s", port, query))
	if err != nil {
		fmt.Fprintln(os.Stderr, "membench: heap profile:", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err == nil {
		_, err = io.Copy(f, resp.Body)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "membench: heap profile:", err)
	}
}

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/1e6) }

func mustFreePort() int {
	p, err := outside.FreePort()
	if err != nil {
		panic(err)
	}
	return p
}
