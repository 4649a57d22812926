package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/warmer"
)

// syncBuffer is a bytes.Buffer the program's goroutines may write while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// MustStart parses args and vars and runs the program, which Close stops at
// the end of the test. Its log goes to the returned buffer.
func MustStart(tb testing.TB, args []string, vars map[string]string) (*Main, *syncBuffer) {
	tb.Helper()
	logs := &syncBuffer{}
	m := &Main{Stdout: io.Discard, Stderr: logs, LookupEnv: env(vars)}
	if err := m.ParseFlags(tb.Context(), args); err != nil {
		tb.Fatalf("ParseFlags(%q) = %v", args, err)
	}
	if err := m.Run(context.Background()); err != nil {
		m.Close()
		tb.Fatalf("Run = %v\n%s", err, logs)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("Close = %v", err)
		}
	})
	return m, logs
}

// get fetches an endpoint of m's HTTP server.
func get(tb testing.TB, m *Main, path string) (int, string) {
	tb.Helper()
	resp, err := http.Get("http://" + m.HTTPAddr() + path)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// waitReady polls /readyz until it answers 200.
func waitReady(tb testing.TB, m *Main, logs *syncBuffer) string {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := get(tb, m, "/readyz")
		if code == http.StatusOK {
			return body
		}
		if code != http.StatusServiceUnavailable {
			tb.Fatalf("GET /readyz = %d %q, want 503 until ready", code, body)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("/readyz still %d %q after 60s; log:\n%s", code, body, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDemo starts the whole program as --demo does, with the embedded Redis
// and an HTTP port of its choosing, and stops it as a signal would.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	logs := &syncBuffer{}
	m := &Main{Stdout: io.Discard, Stderr: logs, LookupEnv: env(nil)}
	if err := m.ParseFlags(ctx, []string{"--demo", "--listen", "127.0.0.1:0", "--instance-id", "demo-test"}); err != nil {
		t.Fatalf("ParseFlags = %v", err)
	}
	if err := m.Run(ctx); err != nil {
		t.Fatalf("Run = %v\n%s", err, logs)
	}
	defer m.Close()

	body := waitReady(t, m, logs)
	var ready struct {
		Role  string `json:"role"`
		Ready bool   `json:"ready"`
	}
	if err := json.Unmarshal([]byte(body), &ready); err != nil || ready.Role != "writer" || !ready.Ready {
		t.Errorf("GET /readyz = %q (%v), want {\"role\":\"writer\",\"ready\":true}", body, err)
	}
	if code, body := get(t, m, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 ok", code, body)
	}

	_, metrics := get(t, m, "/metrics")
	for _, want := range []string{`vista_warmer_build_info{build_date=`, `vista_warmer_errors_total{op="take_over"} 0`,
		`vista_warmer_errors_total{op="reload_sessions"} 0`, `vista_warmer_full_reloads_total{kind="sessions"} 1`,
		`vista_warmer_reload_duration_seconds_count{kind="sessions"} 1`, "vista_warmer_redis_up 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(logs.String(), " WRN ") {
		t.Errorf("the demo warned about something of its own:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "embedded redis listening addr="+m.RedisAddr()) {
		t.Errorf("the log does not give the embedded Redis's address %s:\n%s", m.RedisAddr(), logs)
	}
	rdb := redis.NewClient(&redis.Options{Addr: m.RedisAddr()})
	defer rdb.Close()
	ids, err := rdb.ZRange(ctx, "vista:sessions", 0, 0).Result()
	if err != nil || len(ids) != 1 {
		t.Fatalf("ZRANGE vista:sessions 0 0 = %v, %v", ids, err)
	}
	session, err := rdb.HGetAll(ctx, "vista:session:"+ids[0]).Result()
	if err != nil {
		t.Fatalf("HGETALL vista:session:%s: %v", ids[0], err)
	}
	for _, field := range []string{"id", "cinema_id", "film_id", "showtime", "seats_available", "updated_at", "next_check_at"} {
		if session[field] == "" {
			t.Errorf("vista:session:%s has no %s: %v", ids[0], field, session)
		}
	}
	if session["id"] != ids[0] {
		t.Errorf("vista:session:%s id = %q", ids[0], session["id"])
	}
	if _, err := time.Parse(time.RFC3339, session["showtime"]); err != nil {
		t.Errorf("vista:session:%s showtime = %q, not RFC 3339", ids[0], session["showtime"])
	}
	if holder, err := rdb.Get(ctx, "vista:lease").Result(); err != nil || !strings.HasPrefix(holder, "demo-test ") || len(holder) < len("demo-test ")+8 {
		t.Errorf("GET vista:lease = %q, %v; want demo-test and the process's token", holder, err)
	}
	if ttl := rdb.PTTL(ctx, "vista:lease").Val(); ttl <= 0 || ttl > 10*time.Second {
		t.Errorf("PTTL vista:lease = %v, want within (0, 10s]", ttl)
	}

	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "SUBSCRIBE vista:events:sessions"); {
		if time.Now().After(deadline) {
			t.Fatalf("no demo hints 10s after ready:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}

	code, metrics := get(t, m, "/metrics")
	for _, want := range []string{"vista_warmer_changes_total", "vista_warmer_upstream_requests_total", "go_goroutines", "process_",
		"vista_warmer_upstream_budget_in_use ", "vista_warmer_upstream_budget_waiting "} {
		if code != http.StatusOK || !strings.Contains(metrics, want) {
			t.Errorf("GET /metrics = %d without %s", code, want)
		}
	}

	// Stop as main does on a signal: the warmer returns and gives up the
	// lease, so a standby would take over at once.
	cancel()
	select {
	case <-m.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("the warmer did not return 15s after the context ended\n%s", logs)
	}
	if err := m.Err(); err != nil {
		t.Errorf("Err = %v after a clean stop", err)
	}
	if n := rdb.Exists(context.Background(), "vista:lease").Val(); n != 0 {
		t.Errorf("vista:lease still exists after the stop")
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	log := logs.String()
	for _, want := range []string{"demo: simulated vista listening", "cache is warm", "demo: the cache is warm; try these", "SUBSCRIBE vista:events:sessions", "released the lease", "stopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "context canceled") {
		t.Errorf("the log mentions context canceled:\n%s", log)
	}
}

// TestSecretsNotLogged runs the demo against a Redis with a password and
// with a token set, logging at debug level in JSON: neither secret shows.
func TestSecretsNotLogged(t *testing.T) {
	const token, password = "s3cret-token", "hunter2pw"
	mr := miniredis.RunT(t)
	mr.RequireAuth(password)
	vars := map[string]string{
		"VISTA_API_TOKEN":         token,
		"VISTA_WARMER_LOG_FORMAT": "json",
		"VISTA_WARMER_LOG_LEVEL":  "debug",
	}
	m, logs := MustStart(t, []string{"--demo", "--listen", "127.0.0.1:0", "--redis-url", "redis://:" + password + "@" + mr.Addr() + "/0"}, vars)
	waitReady(t, m, logs)
	if m.RedisAddr() != mr.Addr() {
		t.Errorf("RedisAddr = %s, want --redis-url's %s (no embedded Redis when --redis-url is given)", m.RedisAddr(), mr.Addr())
	}
	if !strings.Contains(logs.String(), `redis://:xxxxx@`) {
		t.Errorf("the log does not name the Redis URL, redacted:\n%s", logs)
	}
	code, _ := get(t, m, "/metrics")
	if code != http.StatusOK {
		t.Errorf("GET /metrics = %d", code)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Errorf("log line is not JSON: %q", sc.Text())
		}
	}
	for _, secret := range []string{token, password} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs)
		}
	}
}

// TestRunErrors: what only Run can find out is reported by Run.
func TestRunErrors(t *testing.T) {
	t.Run("listen in use", func(t *testing.T) {
		m, _ := MustStart(t, []string{"--demo", "--listen", "127.0.0.1:0"}, nil)
		logs := &syncBuffer{}
		m2 := &Main{Stdout: io.Discard, Stderr: logs, LookupEnv: env(nil)}
		if err := m2.ParseFlags(t.Context(), []string{"--demo", "--listen", m.HTTPAddr()}); err != nil {
			t.Fatal(err)
		}
		err := m2.Run(t.Context())
		m2.Close()
		if err == nil || !strings.HasPrefix(err.Error(), "--listen: ") {
			t.Errorf("Run on a busy port = %v, want a --listen error", err)
		}
	})
}

// TestHandler checks /healthz and /readyz against each state.
func TestHandler(t *testing.T) {
	age := 2.5
	tests := []struct {
		name     string
		st       fakeStatus
		path     string
		wantCode int
		wantBody string
	}{
		{"healthz", fakeStatus{healthy: true}, "/healthz", 200, "ok\n"},
		{"healthz out of memory", fakeStatus{reason: "redis is out of memory (maxmemory)"}, "/healthz", 503, "redis is out of memory (maxmemory)\n"},
		{"readyz before", fakeStatus{st: warmer.Status{Role: "writer", Reason: "not loaded"}}, "/readyz", 503, `{"role":"writer","ready":false,"reason":"not loaded","heartbeat_age_seconds":null,"last_reloads":{}}` + "\n"},
		{"readyz drop held", fakeStatus{st: warmer.Status{Role: "writer", Reason: "holding back a drop of sessions"}}, "/readyz", 503, `{"role":"writer","ready":false,"reason":"holding back a drop of sessions","heartbeat_age_seconds":null,"last_reloads":{}}` + "\n"},
		{"readyz writer", fakeStatus{st: warmer.Status{Role: "writer", Ready: true, HeartbeatAge: &age,
			LastReloads: map[keys.Kind]string{keys.Sessions: "2026-11-26T18:10:00Z"}}}, "/readyz", 200,
			`{"role":"writer","ready":true,"reason":"","heartbeat_age_seconds":2.5,"last_reloads":{"sessions":"2026-11-26T18:10:00Z"}}` + "\n"},
		{"readyz standby", fakeStatus{st: warmer.Status{Role: "standby", Ready: true}}, "/readyz", 200, `{"role":"standby","ready":true,"reason":"","heartbeat_age_seconds":null,"last_reloads":{}}` + "\n"},
		{"readyz standby not ready", fakeStatus{st: warmer.Status{Role: "standby"}}, "/readyz", 503, `{"role":"standby","ready":false,"reason":"","heartbeat_age_seconds":null,"last_reloads":{}}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandler(prometheus.NewRegistry(), tt.st, nil)
			req, _ := http.NewRequest("GET", tt.path, nil)
			rec := &recorder{header: http.Header{}}
			h.ServeHTTP(rec, req)
			if rec.code != tt.wantCode || rec.body.String() != tt.wantBody {
				t.Errorf("GET %s = %d %q, want %d %q", tt.path, rec.code, rec.body.String(), tt.wantCode, tt.wantBody)
			}
		})
	}
}

type fakeStatus struct {
	healthy bool
	reason  string
	st      warmer.Status
}

func (f fakeStatus) Health(context.Context) (bool, string) { return f.healthy, f.reason }
func (f fakeStatus) Status(context.Context) warmer.Status  { return f.st }

type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return r.body.Write(p)
}
func (r *recorder) WriteHeader(code int) { r.code = code }

// TestBinary builds the program and runs it as a user would.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "vista-warmer")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const token, password = "s3cret-token", "hunter2pw"
	// A clean environment: no REDIS_URL or token from the machine.
	baseEnv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}

	run := func(t *testing.T, env []string, args ...string) (int, string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = append(baseEnv, env...), &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("run %v: %v", args, err)
		}
		return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	}

	bad := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"bad flag", nil, []string{"--vista-url", "https://vista.example/", "--horizon", "abc"}, `vista-warmer: --horizon: "abc" is not a duration`},
		{"no url", nil, nil, "vista-warmer: --vista-url is required"},
		{"bad env", []string{"VISTA_WARMER_NEAR_WINDOW=2h"}, []string{"--demo"}, "vista-warmer: --near-window must be shorter than --horizon"},
		{"secrets and a bad value", []string{"VISTA_API_TOKEN=" + token, "REDIS_URL=redis://:" + password + "@127.0.0.1:6379/x"}, []string{"--vista-url", "https://vista.example/"}, "vista-warmer: --redis-url (from REDIS_URL): "},
		{"unknown flag", []string{"VISTA_API_TOKEN=" + token}, []string{"--vista-token", token, "--verbose"}, "vista-warmer: unknown flag --verbose"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tt.env, tt.args...)
			if code != 2 {
				t.Errorf("exit status %d, want 2; stderr %q", code, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") || !strings.HasPrefix(stderr, tt.want) {
				t.Errorf("stderr %q, want one line starting %q", stderr, tt.want)
			}
			for _, secret := range []string{token, password} {
				if strings.Contains(stdout+stderr, secret) {
					t.Errorf("output holds %q: %q", secret, stdout+stderr)
				}
			}
		})
	}

	t.Run("version", func(t *testing.T) {
		code, stdout, stderr := run(t, nil, "--version")
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "vista-warmer ") || !strings.Contains(stdout, "go1.") {
			t.Errorf("--version: exit %d, stderr %q, stdout %q", code, stderr, stdout)
		}
	})

	t.Run("help", func(t *testing.T) {
		code, stdout, stderr := run(t, []string{"VISTA_API_TOKEN=" + token, "REDIS_URL=redis://:" + password + "@h:6379/0"}, "--help")
		if code != 0 || stderr != "" || !strings.Contains(stdout, "vista-warmer --demo") {
			t.Errorf("--help: exit %d, stderr %q, stdout %q", code, stderr, stdout)
		}
		if strings.Contains(stdout, token) || strings.Contains(stdout, password) {
			t.Errorf("--help shows a secret:\n%s", stdout)
		}
	})

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run("demo stops on "+sig.String(), func(t *testing.T) {
			stderr := &syncBuffer{}
			cmd := exec.Command(bin, "--demo", "--listen", "127.0.0.1:0")
			cmd.Env, cmd.Stderr = append(baseEnv, "VISTA_API_TOKEN="+token), stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(60 * time.Second)
			for !strings.Contains(stderr.String(), "cache is warm") {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("no warm cache after 60s:\n%s", stderr)
				}
				time.Sleep(100 * time.Millisecond)
			}
			cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("exit after %v: %v\n%s", sig, err, stderr)
				}
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("still running 15s after %v:\n%s", sig, stderr)
			}
			log := stderr.String()
			for _, want := range []string{"released the lease", "stopped"} {
				if !strings.Contains(log, want) {
					t.Errorf("the log lacks %q:\n%s", want, log)
				}
			}
			if strings.Contains(log, "context canceled") || strings.Contains(log, token) {
				t.Errorf("the log holds context canceled or the token:\n%s", log)
			}
		})
	}
}
