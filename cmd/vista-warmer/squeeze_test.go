package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/internal/redistest"
	"github.com/vista-warmer/vista-warmer/internal/testkit"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// maxmemory set at once a tenth under what the cache uses, with
// allkeys-lru, as an operator squeezing Redis would, on a small cache
// (four cinemas, 3 MB with Redis's own): Redis evicts the
// lease, P:meta and the indexes as the warmer writes, and a reload fails
// on a lease or a P:meta evicted from under it. While it lasts /healthz
// and /readyz say so; once Redis has room again the reload goes again at
// once, not at its retry a minute later, and the cache is whole (P:meta
// there, every index entry with its hash, every hash indexed) within 30 s.
func TestSqueezedAtOnceIsWholeOnceRedisHasRoom(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Config: []string{"maxmemory-policy allkeys-lru"}})
	vista := httptest.NewServer(vistasim.New(vistasim.Config{Cinemas: 4}))
	t.Cleanup(vista.Close)
	m, logs := MustStart(t, []string{"--vista-url", vista.URL + "/WSVistaWebClient/", "--redis-url", "redis://" + srv.Addr(), "--listen", "127.0.0.1:0"}, nil)
	waitReady(t, m, logs)
	rdb := srv.Client(t, nil)
	ctx := context.Background()
	if err := rdb.ConfigSet(ctx, "maxmemory", strconv.FormatInt(usedMemory(t, rdb)*9/10, 10)).Err(); err != nil {
		t.Fatal(err)
	}
	squeezed := time.Now()
	var unhealthy time.Duration
	readyBroken := 0 // looks at which /readyz said ready while the cache was not whole
	for time.Since(squeezed) < 20*time.Second {
		hc, hb := get(t, m, "/healthz")
		rc, _ := get(t, m, "/readyz")
		whole, _ := testkit.CacheWhole(t, rdb, "vista")
		if hc != http.StatusOK && unhealthy == 0 {
			unhealthy = time.Since(squeezed)
			t.Logf("/healthz %d %v into the squeeze: %s", hc, unhealthy.Round(100*time.Millisecond), hb)
		}
		if rc == http.StatusOK && !whole && time.Since(squeezed) > 5*time.Second {
			readyBroken++
		}
		time.Sleep(250 * time.Millisecond)
	}
	if unhealthy == 0 {
		t.Errorf("/healthz said 200 for 20 s while redis evicted the cache")
	}
	if readyBroken > 0 {
		t.Errorf("/readyz said ready at %d looks while the cache was not whole, past the first 5 s of the squeeze", readyBroken)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	lifted := time.Now()
	for {
		whole, why := testkit.CacheWhole(t, rdb, "vista")
		if whole {
			break
		}
		if time.Since(lifted) > 30*time.Second {
			t.Fatalf("30 s after redis had room again, the cache is not whole: %s", why)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("whole %v after redis had room again", time.Since(lifted).Round(100*time.Millisecond))
	testkit.Eventually(t, 30*time.Second, "/healthz and /readyz 200 once the cache is whole", func() bool {
		hc, _ := get(t, m, "/healthz")
		rc, _ := get(t, m, "/readyz")
		return hc == http.StatusOK && rc == http.StatusOK
	})
}
