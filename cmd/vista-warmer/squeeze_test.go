package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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
		whole, _ := wholeCache(ctx, rdb, "vista")
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
		whole, why := wholeCache(ctx, rdb, "vista")
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

// wholeCache reports whether the cache under prefix is whole: P:meta
// there, and each kind's index naming exactly the hashes there are.
func wholeCache(ctx context.Context, rdb *redis.Client, prefix string) (bool, string) {
	const check = `
local p = ARGV[1]
if redis.call('EXISTS', p .. ':meta') == 0 then return 'no P:meta' end
for _, k in ipairs({'cinema', 'film', 'session'}) do
  local ids
  if k == 'session' then ids = redis.call('ZRANGE', p .. ':sessions', 0, -1)
  else ids = redis.call('SMEMBERS', p .. ':' .. k .. 's') end
  if #ids == 0 then return k .. 's: index empty' end
  for _, id in ipairs(ids) do
    if redis.call('EXISTS', p .. ':' .. k .. ':' .. id) == 0 then return k .. ' ' .. id .. ' indexed without a hash' end
  end
  local hashes = 0
  for _, key in ipairs(redis.call('KEYS', p .. ':' .. k .. ':*')) do
    if redis.call('TYPE', key).ok == 'hash' then hashes = hashes + 1 end
  end
  if hashes ~= #ids then return k .. 's: ' .. #ids .. ' indexed, ' .. hashes .. ' hashes' end
end
return ''`
	why, err := rdb.Eval(ctx, check, nil, prefix).Text()
	if err != nil {
		return false, err.Error()
	}
	return why == "", why
}
