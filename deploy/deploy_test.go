// Package deploy holds the files operators deploy vista-warmer with; its
// tests check them offline.
package deploy

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// binary builds the warmer once for the tests of this package.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "vista-warmer-deploy-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "vista-warmer")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/vista-warmer").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build: %v\n%s", err, out)
	}
	return bin, nil
})

func mustBinary(t *testing.T) string {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {}) // the binary's folder goes with TestMain
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := binary(); err == nil {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// exported lists the metric names the built warmer really exports at
// /metrics, running as the demo, with the series names of histograms
// (_bucket, _sum, _count).
var exportedOnce = sync.OnceValues(func() (map[string]bool, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--demo", "--listen", "127.0.0.1:0", "--log-format", "json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "http listening" {
				addr <- line.Addr
			}
		}
		close(addr)
	}()
	var a string
	select {
	case a = <-addr:
	case <-time.After(30 * time.Second):
		return nil, errors.New("the demo did not say where it listens within 30 s")
	}
	// Series with labels appear once they have a value: scrape after the
	// first full load, when requests, reloads and events have happened.
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, err := http.Get("http://" + a + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return nil, errors.New("the demo was not ready within 60 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	resp, err := http.Get("http://" + a + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		// "# TYPE vista_warmer_x histogram": every metric the registry has,
		// with or without a series yet.
		f := strings.Fields(sc.Text())
		if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" && strings.HasPrefix(f[2], "vista_warmer_") {
			names[f[2]] = true
			if f[3] == "histogram" || f[3] == "summary" {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					names[f[2]+suffix] = true
				}
			}
		}
	}
	return names, sc.Err()
})

func exported(t *testing.T) map[string]bool {
	t.Helper()
	names, err := exportedOnce()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 10 {
		t.Fatalf("found only %d metric names at /metrics", len(names))
	}
	return names
}

func TestRulesNameOnlyExportedMetrics(t *testing.T) {
	b, err := os.ReadFile("prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	names := exported(t)
	used := regexp.MustCompile(`\bvista_warmer_[a-z_]+`).FindAllString(string(b), -1)
	if len(used) == 0 {
		t.Fatal("the rules name no metric")
	}
	for _, name := range used {
		if !names[name] {
			t.Errorf("the rules use %s, which the warmer does not export", name)
		}
	}
}

func TestRulesWithPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian: apt-get install prometheus; .ci/run installs it)")
	}
	for _, args := range [][]string{{"check", "rules", "rules.yml"}, {"test", "rules", "rules_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// helpText is the warmer's --help, from the built command.
func helpText(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "run", "../cmd/vista-warmer", "--help").Output()
	if err != nil {
		t.Fatalf("vista-warmer --help: %v", err)
	}
	return string(out)
}

// settingsIn collects the flags (--name) and environment variable names
// a deployment file gives the warmer.
func settingsIn(t *testing.T, file string) (flags, vars []string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	for {
		var doc any
		if err := dec.Decode(&doc); err != nil {
			break
		}
		walk(doc, "", &flags, &vars)
	}
	return flags, vars
}

// walk finds args/command entries and environment keys in a YAML tree.
func walk(n any, key string, flags, vars *[]string) {
	switch v := n.(type) {
	case map[string]any:
		if img, ok := v["image"].(string); ok && strings.HasPrefix(img, "redis") {
			return // Redis's own settings
		}
		for k, c := range v {
			if k == "environment" {
				if m, ok := c.(map[string]any); ok {
					for name := range m {
						*vars = append(*vars, name)
					}
				}
			}
			if k == "env" {
				if list, ok := c.([]any); ok {
					for _, e := range list {
						if m, ok := e.(map[string]any); ok {
							*vars = append(*vars, m["name"].(string))
						}
					}
				}
			}
			walk(c, k, flags, vars)
		}
	case []any:
		for _, c := range v {
			if s, ok := c.(string); ok && (key == "args" || key == "command") && strings.HasPrefix(s, "--") {
				*flags = append(*flags, strings.SplitN(s, "=", 2)[0])
			}
			walk(c, key, flags, vars)
		}
	}
}

// The compose file and the Kubernetes manifests give the warmer only
// flags and variables its --help names.
func TestDeploymentFilesUseRealSettings(t *testing.T) {
	help := helpText(t)
	for _, file := range []string{"compose/compose.yaml", "kubernetes/vista-warmer.yaml"} {
		flags, vars := settingsIn(t, file)
		if len(vars) == 0 {
			t.Errorf("%s: no environment found: the test reads nothing", file)
		}
		for _, f := range flags {
			if !strings.Contains(help, "  "+f+" ") && !strings.Contains(help, "  "+f+"\n") {
				t.Errorf("%s: flag %s is not in --help", file, f)
			}
		}
		for _, v := range vars {
			if !strings.Contains(help, "["+v+"]") {
				t.Errorf("%s: variable %s is not in --help", file, v)
			}
		}
	}
}

func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	// The unit names /usr/local/bin/vista-warmer; verify wants it to exist,
	// so a copy of the unit points at a binary built for the test.
	dir := t.TempDir()
	bin := mustBinary(t)
	unit, err := os.ReadFile("systemd/vista-warmer.service")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/vista-warmer", bin)
	text = strings.ReplaceAll(text, "EnvironmentFile=/etc/vista-warmer/env", "EnvironmentFile=-/etc/vista-warmer/env")
	file := dir + "/vista-warmer.service"
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", file).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		// Units it names that this machine lacks are not the unit's fault.
		if strings.Contains(line, "vista-warmer.service") && !strings.Contains(line, "redis-server.service") &&
			!strings.Contains(line, "network-online") && strings.TrimSpace(line) != "" {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
	if err != nil && !strings.Contains(string(out), "System has not been booted") {
		t.Errorf("systemd-analyze verify failed: %v\n%s", err, out)
	}
}

// The Grafana dashboard's panels query only metrics the warmer exports,
// and cover what operators look at first.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/vista-warmer.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	names := exported(t)
	seen := map[string]bool{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, name := range regexp.MustCompile(`\bvista_warmer_[a-z_]+`).FindAllString(tg.Expr, -1) {
				seen[name] = true
				if !names[name] {
					t.Errorf("panel %q queries %s, which the warmer does not export", p.Title, name)
				}
			}
		}
	}
	for _, want := range []string{"vista_warmer_upstream_requests_total", "vista_warmer_upstream_request_duration_seconds_bucket",
		"vista_warmer_check_lateness_seconds_bucket", "vista_warmer_check_unkept_seconds_bucket", "vista_warmer_sessions", "vista_warmer_events_published_total",
		"vista_warmer_redis_write_duration_seconds_bucket", "vista_warmer_lease_held", "vista_warmer_heartbeat_timestamp_seconds"} {
		if !seen[want] {
			t.Errorf("no panel shows %s", want)
		}
	}
}
