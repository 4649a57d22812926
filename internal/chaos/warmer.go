// The warmers: each instance run as one process after another, its
// signals, waits and logs, the twin that shares an instance id, and each
// process's RSS.

package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vista-warmer/vista-warmer/internal/redistest"
)

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
