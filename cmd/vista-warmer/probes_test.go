package main

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/internal/redistest"
	"github.com/vista-warmer/vista-warmer/internal/testkit"
)

// While Redis hangs (every byte held, both ways, by a proxy), the probes
// answer from what the warmer saw, at once: none takes a second. /healthz
// turns 503 and /readyz stops saying ready once the cache has not been
// kept for a lease TTL; both come back when Redis does.
func TestProbesWhileRedisHangs(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := redistest.StartProxy(t, srv.Addr())
	const ttl = 4 * time.Second
	m, logs := MustStart(t, []string{"--demo", "--redis-url", "redis://" + proxy.Addr(), "--listen", "127.0.0.1:0",
		"--lease-ttl", ttl.String()}, nil)
	waitReady(t, m, logs)

	client := &http.Client{Timeout: 5 * time.Second}
	probe := func(path string) (int, string, time.Duration) {
		start := time.Now()
		resp, err := client.Get("http://" + m.HTTPAddr() + path)
		took := time.Since(start)
		if err != nil {
			return 0, err.Error(), took
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), took
	}

	proxy.Hold(redistest.ToServer, redistest.ToClient)
	held, logged := time.Now(), len(logs.String())
	slow, answers := 0, 0
	var healthDown, readyDown time.Duration
	var readyLate, flaps []string
	for time.Since(held) < 3*ttl {
		for _, path := range []string{"/healthz", "/readyz"} {
			code, body, took := probe(path)
			answers++
			if took > time.Second {
				slow++
				t.Logf("%s took %v while redis hangs", path, took)
			}
			at := time.Since(held)
			switch {
			case path == "/healthz" && code == http.StatusServiceUnavailable && healthDown == 0:
				healthDown = at
				t.Logf("/healthz 503 %v after redis hung: %s", at.Round(100*time.Millisecond), strings.TrimSpace(body))
				// The metric says what /healthz says, by the same rule,
				// not once the keeper's round trip times out.
				if _, metrics, _ := probe("/metrics"); !strings.Contains(metrics, "\nvista_warmer_redis_up 0\n") {
					t.Errorf("/healthz says redis is unreachable, but vista_warmer_redis_up is not 0")
				}
			case path == "/readyz" && code == http.StatusServiceUnavailable && readyDown == 0:
				readyDown = at
				t.Logf("/readyz 503 %v after redis hung: %s", at.Round(100*time.Millisecond), strings.TrimSpace(body))
			case path == "/readyz" && code == http.StatusOK && at > 2*ttl:
				readyLate = append(readyLate, at.Round(100*time.Millisecond).String())
			case path == "/healthz" && code == http.StatusOK && healthDown > 0:
				flaps = append(flaps, at.Round(100*time.Millisecond).String())
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if slow > 0 {
		t.Errorf("%d of %d probe answers took over a second while redis hung", slow, answers)
	}
	if healthDown == 0 {
		t.Errorf("/healthz never said 503 in %v of redis hanging", 3*ttl)
	}
	// Cut off for over a lease TTL, the writer cannot know it still holds
	// the lease (a standby may have taken it): it no longer says so.
	if _, body, _ := probe("/metrics"); !strings.Contains(body, "\nvista_warmer_lease_held 0\n") {
		t.Errorf("vista_warmer_lease_held is not 0 %v into the hang", time.Since(held).Round(time.Second))
	}
	if len(flaps) > 0 {
		t.Errorf("/healthz said 200 again at %v while redis still hung (503 first at %v)", flaps, healthDown)
	}
	if readyDown == 0 || len(readyLate) > 0 {
		t.Errorf("/readyz said ready at %v after redis hung, over twice the lease TTL without a write (first 503 at %v)", readyLate, readyDown)
	}

	hung := time.Since(held)
	proxy.Heal()
	testkit.Eventually(t, 30*time.Second, "/healthz and /readyz 200 once redis answers", func() bool {
		hc, _, _ := probe("/healthz")
		rc, _, _ := probe("/readyz")
		_, metrics, _ := probe("/metrics")
		return hc == http.StatusOK && rc == http.StatusOK && strings.Contains(metrics, "\nvista_warmer_redis_up 1\n")
	})
	// The log says Redis does not answer, and then how long it was gone:
	// from its first unanswered round trip, whether or not a request
	// failed meanwhile (go-redis retries one that hangs, and the retry may
	// go through once Redis answers).
	since := func() string { return logs.String()[logged:] }
	testkit.Eventually(t, 10*time.Second, "the silence and its end logged", func() bool {
		return strings.Contains(since(), "redis does not answer") && strings.Contains(since(), "redis answers again")
	})
	line := since()[strings.Index(since(), "redis answers again"):]
	line = line[:strings.IndexByte(line, '\n')]
	_, after, _ := strings.Cut(line, "after=")
	after, _, _ = strings.Cut(after, " ")
	t.Logf("%s (hung %v)", line, hung.Round(100*time.Millisecond))
	if d, err := time.ParseDuration(after); err != nil || d < hung-ttl {
		t.Errorf("the log says %q of a hang of %v, want about the hang", line, hung.Round(100*time.Millisecond))
	}
}

// When the writer's Redis becomes a replica (a failover seen through a
// plain redis:// URL), every view says so: /healthz names it, /readyz is
// not ready, and lease_held is 0, so the alerts count no writer here.
// Made master again, the warmer writes again and says so.
func TestBecomingAReplicaIsSaidEverywhere(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	other := redistest.Start(t, redistest.Options{})
	m, logs := MustStart(t, []string{"--demo", "--redis-url", "redis://" + srv.Addr(), "--listen", "127.0.0.1:0",
		"--lease-ttl", "2s"}, nil)
	waitReady(t, m, logs)
	held := func() string {
		_, body := get(t, m, "/metrics")
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, "vista_warmer_lease_held "); ok {
				return v
			}
		}
		return "absent"
	}
	if got := held(); got != "1" {
		t.Fatalf("lease_held = %s on the writer, want 1", got)
	}
	admin := srv.Client(t, nil)
	if err := admin.Do(t.Context(), "REPLICAOF", "127.0.0.1", strconv.Itoa(other.Port)).Err(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "replica said by /healthz, /readyz and lease_held", func() bool {
		hc, hb := get(t, m, "/healthz")
		rc, _ := get(t, m, "/readyz")
		return hc == http.StatusServiceUnavailable && strings.Contains(hb, "replica") && rc == http.StatusServiceUnavailable && held() == "0"
	})
	if err := admin.Do(t.Context(), "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "writing again once master", func() bool {
		hc, _ := get(t, m, "/healthz")
		rc, _ := get(t, m, "/readyz")
		return hc == http.StatusOK && rc == http.StatusOK && held() == "1"
	})
}
