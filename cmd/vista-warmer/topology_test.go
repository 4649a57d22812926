package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/internal/redistest"
	"github.com/vista-warmer/vista-warmer/internal/testkit"
	rpkg "github.com/vista-warmer/vista-warmer/reader"
)

// The warmer on Redis as it is really run, each topology on real
// redis-server processes started for the test.

// metaOf reads P:meta of the prefix vista on a server.
func metaOf(c *redis.Client) map[string]string {
	m, _ := c.HGetAll(context.Background(), "vista:meta").Result()
	return m
}

func TestSentinelFailover(t *testing.T) {
	r := redistest.StartReplicated(t)
	url := "redis-sentinel://" + strings.Join(r.SentinelAddrs(), ",") + "/" + r.Name
	m, logs := MustStart(t, []string{"--demo", "--redis-url", url, "--listen", "127.0.0.1:0",
		"--instance-id", "sentinel-test", "--lease-ttl", "2s", "--sessions-cron", "@every 3s"}, nil)
	waitReady(t, m, logs)
	master := r.Master.Client(t, nil)
	if metaOf(master)["writer"] != "sentinel-test" {
		t.Fatalf("the master's P:meta = %v, want the warmer writing there", metaOf(master))
	}

	// Readers scale on the replica: the reader package reads it.
	if cs, err := rpkg.New(r.Replica.Client(t, nil), "vista").Cinemas(context.Background()); err != nil || len(cs) == 0 {
		t.Errorf("reader.Cinemas on the replica = %d, %v", len(cs), err)
	}

	// The master dies; the sentinels promote the replica. The warmer
	// writes there within the lease TTL and a few seconds.
	epoch := metaOf(master)["epoch"]
	testkit.Eventually(t, 10*time.Second, "the replica has every write", func() bool {
		return metaOf(r.Replica.Client(t, nil))["seq"] == metaOf(master)["seq"]
	})
	builds := strings.Count(logs.String(), "building the cache")
	r.Master.Stop()
	replica := r.Replica.Client(t, nil)
	ctx := context.Background()
	took := testkit.Eventually(t, 30*time.Second, "the replica promoted", func() bool {
		addr, err := r.MasterAddr(ctx)
		return err == nil && addr == r.Replica.Addr()
	})
	t.Logf("failover done in %v", took)
	promoted := time.Now()
	beat := metaOf(replica)["heartbeat"]
	took = testkit.Eventually(t, 15*time.Second, "the warmer's heartbeat on the new master", func() bool {
		h := metaOf(replica)["heartbeat"]
		return h != "" && h != beat
	})
	_ = took
	t.Logf("heartbeat on the new master %v after the failover", time.Since(promoted))
	seq0, _ := strconv.Atoi(metaOf(replica)["seq"])
	testkit.Eventually(t, 30*time.Second, "events on the new master (a full_reload every 3 s at least)", func() bool {
		seq, _ := strconv.Atoi(metaOf(replica)["seq"])
		return seq > seq0
	})
	// Readers on the replica (the new master now) and the reader package
	// work there as they did before.
	if cs, err := rpkg.New(replica, "vista").Cinemas(ctx); err != nil || len(cs) == 0 {
		t.Errorf("reader.Cinemas after the failover = %d, %v", len(cs), err)
	}
	testkit.Eventually(t, 10*time.Second, "/healthz 200 on the new master", func() bool {
		code, _ := get(t, m, "/healthz")
		return code == http.StatusOK
	})
	if code, body := get(t, m, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d %s after the failover", code, body)
	}
	// The replica had every write: the cache goes on there, under a new
	// epoch (the old master may come back without the writes made here),
	// and is not built again.
	if now := metaOf(replica)["epoch"]; now == epoch || now == "" {
		t.Errorf("epoch on the new master = %q, want a new one (was %s)", now, epoch)
	}
	if got := strings.Count(logs.String(), "building the cache"); got != builds {
		t.Errorf("the cache was built anew after the failover, though the replica had every write:\n%s", logs)
	}
	if testing.Verbose() {
		t.Log(logs)
	}
}

// upstreamRequests sums vista_warmer_upstream_requests_total from /metrics.
func upstreamRequests(tb testing.TB, m *Main) float64 {
	tb.Helper()
	_, body := get(tb, m, "/metrics")
	total := 0.0
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "vista_warmer_upstream_requests_total{") {
			f, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
			total += f
		}
	}
	return total
}

func TestOutOfMemory(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Config: []string{"maxmemory-policy noeviction"}})
	m, logs := MustStart(t, []string{"--demo", "--redis-url", "redis://" + srv.Addr(), "--listen", "127.0.0.1:0",
		"--instance-id", "oom-test", "--lease-ttl", "2s"}, nil)
	waitReady(t, m, logs)
	rdb := srv.Client(t, nil)
	ctx := context.Background()

	// A minute's worth of the warmer's upstream pace, as a baseline.
	n0, t0 := upstreamRequests(t, m), time.Now()
	time.Sleep(5 * time.Second)
	pace := (upstreamRequests(t, m) - n0) / time.Since(t0).Seconds()

	// Redis runs out of memory: every write is refused.
	info, _ := rdb.Info(ctx, "memory").Result()
	var usedMemory int64
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			usedMemory, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", strconv.FormatInt(usedMemory/2, 10)).Err(); err != nil {
		t.Fatal(err)
	}
	rebuilds := strings.Count(logs.String(), "building the cache")
	took := testkit.Eventually(t, 15*time.Second, "/healthz 503 out of memory", func() bool {
		code, body := get(t, m, "/healthz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "out of memory")
	})
	t.Logf("/healthz said out of memory %v after maxmemory went under the data", took)
	n1, t1 := upstreamRequests(t, m), time.Now()
	time.Sleep(10 * time.Second)
	during := (upstreamRequests(t, m) - n1) / time.Since(t1).Seconds()
	if during > 2*pace+0.5 {
		t.Errorf("upstream requests while Redis refuses writes: %.2f/s, against %.2f/s before", during, pace)
	}
	if got := strings.Count(logs.String(), "building the cache"); got != rebuilds {
		t.Errorf("the cache was read back %d times while Redis was out of memory", got-rebuilds)
	}
	if got := strings.Count(logs.String(), "redis: the writes fail"); got != 1 {
		t.Errorf("the refused writes were logged %d times in 10 s, want once", got)
	}

	// Memory frees: the warmer is healthy and writes again within seconds.
	beat := metaOf(rdb)["heartbeat"]
	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	testkit.Eventually(t, 15*time.Second, "/healthz 200 after memory freed", func() bool {
		code, _ := get(t, m, "/healthz")
		return code == http.StatusOK
	})
	testkit.Eventually(t, 15*time.Second, "a heartbeat after memory freed", func() bool { return metaOf(rdb)["heartbeat"] != beat })
	t.Logf("healthy and writing %v after memory freed; upstream %.2f/s before, %.2f/s while refused", time.Since(freed), pace, during)
}

func TestCredentialsRefused(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Config: []string{"requirepass first-secret"}})

	// Refused at start: one line, exit status 1.
	logs := &syncBuffer{}
	m := &Main{Stdout: io.Discard, Stderr: logs, LookupEnv: env(nil)}
	if err := m.ParseFlags(t.Context(), []string{"--demo", "--redis-url", "redis://:wrong-secret@" + srv.Addr(), "--listen", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	err := m.Run(context.Background())
	m.Close()
	if err == nil || !strings.Contains(err.Error(), "redis refuses the credentials") {
		t.Fatalf("Run with a wrong password = %v, want the credentials refused", err)
	}
	if code := m.fail(err); code != 1 || strings.Contains(logs.String(), "wrong-secret") {
		t.Errorf("exit status %d, log:\n%s", code, logs)
	}

	// Refused later (the password rotated): /healthz says so, the log
	// says it once a minute, and the warmer keeps trying.
	m, logs = MustStart(t, []string{"--demo", "--redis-url", "redis://:first-secret@" + srv.Addr(), "--listen", "127.0.0.1:0",
		"--lease-ttl", "2s"}, nil)
	waitReady(t, m, logs)
	admin := srv.Client(t, &redis.Options{Password: "first-secret"})
	ctx := context.Background()
	if err := admin.ConfigSet(ctx, "requirepass", "second-secret").Err(); err != nil {
		t.Fatal(err)
	}
	admin = srv.Client(t, &redis.Options{Password: "second-secret"})
	rotated := len(logs.String())
	admin.ClientKillByFilter(ctx, "TYPE", "normal") // the warmer's connections, authenticated before
	testkit.Eventually(t, 15*time.Second, "/healthz 503 credentials refused", func() bool {
		code, body := get(t, m, "/healthz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "refuses the credentials")
	})
	// Every path fails now, once a step: the lease, the writes, the
	// take-over's reads. Each says so once, at once, and not again
	// within the minute.
	time.Sleep(8 * time.Second)
	if n := strings.Count(logs.String(), "redis: the lease keeper's requests fail"); n != 1 {
		t.Errorf("the refused lease was logged %d times, want once:\n%s", n, logs)
	}
	said := map[string]int{}
	for _, line := range strings.Split(logs.String()[rotated:], "\n") {
		if strings.Contains(line, " WRN ") || strings.Contains(line, " ERR ") {
			msg, _, _ := strings.Cut(line[strings.Index(line, "R ")+2:], "=") // up to the first attribute
			said[msg]++
		}
	}
	for msg, n := range said {
		if n > 1 {
			t.Errorf("logged %d times in 8 s, want once: %s", n, msg)
		}
	}
	if strings.Contains(logs.String(), "unexpected type") {
		t.Errorf("a go-redis internal error reached the log:\n%s", logs)
	}
	if strings.Contains(logs.String(), "first-secret") || strings.Contains(logs.String(), "second-secret") {
		t.Errorf("a password reached the log")
	}
}

func TestReplicaIsNotHealthy(t *testing.T) {
	master := redistest.Start(t, redistest.Options{Config: []string{"maxmemory 1gb", "maxmemory-policy allkeys-lru"}})
	replica := redistest.Start(t, redistest.Options{Config: []string{"replicaof 127.0.0.1 " + strconv.Itoa(master.Port)}})
	m, logs := MustStart(t, []string{"--demo", "--redis-url", "redis://" + replica.Addr(), "--listen", "127.0.0.1:0",
		"--lease-ttl", "2s"}, nil)
	testkit.Eventually(t, 10*time.Second, "/healthz 503 on a replica", func() bool {
		code, body := get(t, m, "/healthz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "replica")
	})
	if code, body := get(t, m, "/readyz"); code == http.StatusOK {
		t.Errorf("/readyz on a replica = %d %s, want not ready", code, body)
	}

	// On the master with a policy that evicts, the start warns.
	m2, logs2 := MustStart(t, []string{"--demo", "--redis-url", "redis://" + master.Addr(), "--listen", "127.0.0.1:0"}, nil)
	waitReady(t, m2, logs2)
	if !strings.Contains(logs2.String(), "maxmemory-policy allkeys-lru") {
		t.Errorf("no warning of the evicting policy:\n%s", logs2)
	}
	_ = logs
}

func TestTLS(t *testing.T) {
	certs := redistest.NewCerts(t)
	srv := redistest.Start(t, redistest.Options{TLS: certs})
	url := "rediss://" + srv.Addr()

	// With the private CA and the client certificate: a warm cache.
	m, logs := MustStart(t, []string{"--demo", "--redis-url", url, "--listen", "127.0.0.1:0",
		"--redis-ca", certs.CA, "--redis-cert", certs.ClientCert, "--redis-key", certs.ClientKey}, nil)
	waitReady(t, m, logs)
	if code, body := get(t, m, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %s", code, body)
	}

	// Without the client certificate, Redis refuses the handshake: the
	// warmer keeps trying and says so on /healthz.
	m2, _ := MustStart(t, []string{"--demo", "--redis-url", url, "--listen", "127.0.0.1:0", "--redis-ca", certs.CA}, map[string]string{})
	testkit.Eventually(t, 10*time.Second, "/healthz 503 without a client certificate", func() bool {
		code, body := get(t, m2, "/healthz")
		return code == http.StatusServiceUnavailable && strings.HasPrefix(body, "TLS with redis fails")
	})

	// Verification off in the URL: a warning at start.
	m3, logs3 := MustStart(t, []string{"--demo", "--redis-url", url + "?skip_verify=true", "--listen", "127.0.0.1:0",
		"--redis-cert", certs.ClientCert, "--redis-key", certs.ClientKey}, nil)
	waitReady(t, m3, logs3)
	if !strings.Contains(logs3.String(), "does not verify the server's certificate") {
		t.Errorf("no warning that verification is off:\n%s", logs3)
	}

	// A flag that needs TLS on a plain URL is refused.
	err := (&Main{Stdout: io.Discard, Stderr: io.Discard, LookupEnv: env(nil)}).ParseFlags(t.Context(),
		[]string{"--demo", "--redis-url", "redis://" + srv.Addr(), "--redis-ca", certs.CA})
	if err == nil || !strings.Contains(err.Error(), "--redis-ca: needs a rediss:// --redis-url") {
		t.Errorf("--redis-ca with redis:// = %v", err)
	}
}

func TestCluster(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []string{"pubsub", "sharded"} {
		t.Run(mode, func(t *testing.T) {
			c := redistest.StartCluster(t, 3)
			m, logs := MustStart(t, []string{"--demo", "--redis-url", "redis://" + c.Nodes[0].Addr(), "--prefix", "{vista}",
				"--events", mode, "--listen", "127.0.0.1:0", "--sessions-cron", "@every 3s"}, nil)
			waitReady(t, m, logs)
			reader := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
			defer reader.Close()
			var sub *redis.PubSub
			if mode == "sharded" {
				sub = reader.SSubscribe(ctx, "{vista}:events:sessions")
			} else {
				sub = reader.Subscribe(ctx, "{vista}:events:sessions")
			}
			defer sub.Close()
			select {
			case msg := <-sub.Channel():
				if !strings.Contains(msg.Payload, `"kind":"sessions"`) {
					t.Errorf("event %s", msg.Payload)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("no %s event in 30 s:\n%s", mode, logs)
			}
		})
	}

	t.Run("started after the warmer", func(t *testing.T) {
		port := redistest.ClusterPort(t)
		m, logs := MustStart(t, []string{"--demo", "--redis-url", "redis://127.0.0.1:" + strconv.Itoa(port), "--prefix", "{vista}",
			"--listen", "127.0.0.1:0"}, nil)
		time.Sleep(2 * time.Second) // the warmer finds nothing there
		// {vista} hashes to slot 996, which the first node serves: the
		// warmer's node, the second, answers MOVED.
		c := redistest.StartCluster(t, 3, redistest.ClusterPort(t), port)
		up := time.Now()
		waitReady(t, m, logs)
		t.Logf("warm %v after the cluster came up", time.Since(up))
		if !strings.Contains(logs.String(), "redis is a cluster now") {
			t.Errorf("the warmer did not say it found a cluster:\n%s", logs)
		}
		n, err := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()}).ZCard(ctx, "{vista}:sessions").Result()
		if err != nil || n == 0 {
			t.Errorf("ZCARD {vista}:sessions = %d, %v", n, err)
		}
		if code, body := get(t, m, "/healthz"); code != http.StatusOK {
			t.Errorf("/healthz = %d %s", code, body)
		}
	})
}

// docsACL returns the ACL SETUSER line for a user that docs/operations.md
// gives (Redis as you run it, ACL users) as a redis.conf user line with
// the password given: the test runs the users docs/operations.md gives,
// exactly.
func docsACL(tb testing.TB, user, placeholder, password string) string {
	tb.Helper()
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "ACL SETUSER "+user+" "); ok {
			return "user " + user + " " + strings.ReplaceAll(rest, placeholder, password)
		}
	}
	tb.Fatalf("docs/operations.md has no ACL SETUSER line for %s", user)
	return ""
}

func TestACLUsers(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Config: []string{
		docsACL(t, "vista-warmer", "WARMER_PASSWORD", "warmer-pw"),
		docsACL(t, "vista-reader", "READER_PASSWORD", "reader-pw"),
	}})
	m, logs := MustStart(t, []string{"--demo", "--redis-url", "redis://vista-warmer:warmer-pw@" + srv.Addr(), "--listen", "127.0.0.1:0",
		"--sessions-cron", "@every 3s"}, nil)
	waitReady(t, m, logs)
	time.Sleep(4 * time.Second) // a reload and seat checks as this user too
	if code, body := get(t, m, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %s", code, body)
	}
	if strings.Contains(logs.String(), "NOPERM") {
		t.Errorf("the warmer's user lacks a permission:\n%s", logs)
	}

	ctx := context.Background()
	reader := srv.Client(t, &redis.Options{Username: "vista-reader", Password: "reader-pw"})
	ids, err := reader.ZRange(ctx, "vista:sessions", 0, 0).Result()
	if err != nil || len(ids) != 1 {
		t.Fatalf("the reader's ZRANGE = %v, %v", ids, err)
	}
	if h, err := reader.HGetAll(ctx, "vista:session:"+ids[0]).Result(); err != nil || h["id"] != ids[0] {
		t.Errorf("the reader's HGETALL = %v, %v", h, err)
	}
	if _, err := reader.XRevRangeN(ctx, "vista:events", "+", "-", 1).Result(); err != nil {
		t.Errorf("the reader's XREVRANGE: %v", err)
	}
	sub := reader.Subscribe(ctx, "vista:events:sessions")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Errorf("the reader's SUBSCRIBE: %v", err)
	}
	// The reader package works as this user: lists, and Watch.
	rd := rpkg.New(reader, "vista")
	if cs, err := rd.Cinemas(ctx); err != nil || len(cs) == 0 {
		t.Errorf("reader.Cinemas as the read-only user = %d, %v", len(cs), err)
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rd.Watch(wctx, rpkg.Position{Epoch: metaOf(srv.Client(t, &redis.Options{Username: "vista-reader", Password: "reader-pw"}))["epoch"], Seq: 1},
		func(rpkg.Event) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("reader.Watch as the read-only user ended with %v", err)
	}
	if err := reader.HSet(ctx, "vista:session:"+ids[0], "seats_available", "0").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("the reader wrote a session: %v", err)
	}
	if err := reader.Get(ctx, "other:key").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("the reader read outside the prefix: %v", err)
	}
}

// usedMemory reads used_memory from INFO memory.
func usedMemory(tb testing.TB, rdb *redis.Client) int64 {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	tb.Fatal("no used_memory in INFO memory")
	return 0
}

func TestEvictionConverges(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Config: []string{"maxmemory-policy allkeys-lru"}})
	m, logs := MustStart(t, []string{"--demo", "--redis-url", "redis://" + srv.Addr(), "--listen", "127.0.0.1:0", "--lease-ttl", "2s"}, nil)
	waitReady(t, m, logs)
	rdb := srv.Client(t, nil)
	ctx := context.Background()
	epoch := metaOf(rdb)["epoch"]
	n0, t0 := upstreamRequests(t, m), time.Now()
	time.Sleep(5 * time.Second)
	pace := (upstreamRequests(t, m) - n0) / time.Since(t0).Seconds()

	// Redis may hold 40% of the cache: it evicts P:meta, P:lease, indexes
	// and hashes as the warmer writes.
	if err := rdb.ConfigSet(ctx, "maxmemory", strconv.FormatInt(usedMemory(t, rdb)*4/10, 10)).Err(); err != nil {
		t.Fatal(err)
	}
	builds := strings.Count(logs.String(), "building the cache from nothing")
	n1, t1 := upstreamRequests(t, m), time.Now()
	time.Sleep(30 * time.Second)
	during := (upstreamRequests(t, m) - n1) / time.Since(t1).Seconds()
	if got := strings.Count(logs.String(), "building the cache from nothing") - builds; got > 1 {
		t.Errorf("%d rebuilds in 30 s of eviction, want at most one", got)
	}
	// At most the one rebuild allowed: the requests of a build from
	// nothing (the cold load's, n0) over the 30 s, beyond the usual pace.
	if bound := 3*pace + n0/30 + 0.5; during > bound {
		t.Errorf("upstream requests under eviction: %.2f/s, against %.2f/s before (a rebuild's %.0f requests allow %.2f/s)", during, pace, n0, bound)
	}
	// Still squeezed, it converges: P:meta is there, or comes back within
	// the minute a rebuild waits for room at most.
	testkit.Eventually(t, 70*time.Second, "P:meta under eviction (epoch was "+epoch+")", func() bool { return metaOf(rdb)["epoch"] != "" })
	t.Logf("under eviction: upstream %.2f/s (before %.2f/s; the cold load took %.0f requests), epoch %s → %s", during, pace, n0, epoch, metaOf(rdb)["epoch"])
}

func TestDemoLeavesOthersRedisAlone(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t, nil)
	ctx := context.Background()

	// REDIS_URL in the environment: the demo runs its own Redis.
	m, logs := MustStart(t, []string{"--demo", "--listen", "127.0.0.1:0"}, map[string]string{"REDIS_URL": "redis://" + srv.Addr()})
	waitReady(t, m, logs)
	if n := rdb.DBSize(ctx).Val(); n != 0 {
		t.Errorf("the demo wrote %d keys into the Redis of REDIS_URL", n)
	}
	if m.RedisAddr() == srv.Addr() {
		t.Errorf("the demo used REDIS_URL's Redis")
	}

	// --redis-url on the command line, to a Redis holding a cache the
	// demo did not write: refused.
	rdb.HSet(ctx, "vista:meta", "schema", "1", "epoch", "theirs", "seq", "7")
	logs2 := &syncBuffer{}
	m2 := &Main{Stdout: io.Discard, Stderr: logs2, LookupEnv: env(nil)}
	if err := m2.ParseFlags(t.Context(), []string{"--demo", "--redis-url", "redis://" + srv.Addr(), "--listen", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	err := m2.Run(ctx)
	m2.Close()
	if err == nil || !strings.Contains(err.Error(), "did not write") {
		t.Fatalf("--demo into a Redis with a cache of its own: %v", err)
	}
	if got := rdb.HGet(ctx, "vista:meta", "epoch").Val(); got != "theirs" {
		t.Errorf("the cache's epoch is %q after the refused demo", got)
	}
}
