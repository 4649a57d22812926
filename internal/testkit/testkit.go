// Package testkit is what the project's tests share: a clock a test moves
// by hand, Eventually for waiting on a condition instead of a fixed sleep,
// and a prefix of its own on the shared Redis. The fixed instants a fake
// clock starts at are in internal/clocktest.
package testkit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/internal/fakeclock"
	"github.com/vista-warmer/vista-warmer/keys"
)

// Clock is a clock a test moves by hand (see fakeclock).
type Clock = fakeclock.Clock

// NewClock returns a Clock at start.
func NewClock(start time.Time) *Clock { return fakeclock.New(start) }

// Eventually polls cond until it holds and returns how long that took,
// or fails the test once within has passed, saying what it waited for.
// It polls often at first and then every 100 ms, so that a condition
// that holds at once costs nothing and a long wait little CPU.
func Eventually(tb testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	tb.Helper()
	start := time.Now()
	poll := time.Millisecond
	for !cond() {
		if time.Since(start) > within {
			tb.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(poll)
		poll = min(2*poll, 100*time.Millisecond)
	}
	return time.Since(start)
}

// MustRedis connects to the Redis at REDIS_URL (default 127.0.0.1:6379,
// which make test starts when none answers) and returns a prefix no other
// test uses. Every key under it is deleted when the test ends; nothing
// else in that Redis is touched.
func MustRedis(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatalf("REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opt)
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		tb.Fatalf("no Redis at %s (make test starts one): %v", opt.Addr, err)
	}
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(tb.Name(), "_")
	prefix := fmt.Sprintf("vwtest:%s:%08x", name, rand.Uint32())
	tb.Cleanup(func() {
		iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		var doomed []string
		for iter.Next(ctx) {
			doomed = append(doomed, iter.Val())
		}
		for start := 0; start < len(doomed); start += 1000 {
			rdb.Del(ctx, doomed[start:min(start+1000, len(doomed))]...)
		}
		rdb.Close()
	})
	return rdb, prefix
}

// CacheWhole reports whether the cache under prefix is whole: P:meta there,
// each kind's index naming exactly the hashes there are, and none missing.
func CacheWhole(t testing.TB, rdb *redis.Client, prefix string) (bool, string) {
	t.Helper()
	ctx := context.Background()
	if n, _ := rdb.Exists(ctx, keys.Meta(prefix)).Result(); n == 0 {
		return false, "no P:meta"
	}
	for _, k := range keys.Kinds {
		var ids []string
		var err error
		if k == keys.Sessions {
			ids, err = rdb.ZRange(ctx, keys.Index(prefix, k), 0, -1).Result()
		} else {
			ids, err = rdb.SMembers(ctx, keys.Index(prefix, k)).Result()
		}
		if err != nil {
			return false, err.Error()
		}
		if len(ids) == 0 {
			return false, "index of " + string(k) + " empty"
		}
		missing := 0
		for _, id := range ids {
			if n, _ := rdb.Exists(ctx, keys.Entity(prefix, k, id)).Result(); n == 0 {
				missing++
			}
		}
		hashes := 0
		iter := rdb.Scan(ctx, 0, keys.Entity(prefix, k, "*"), 1000).Iterator()
		for iter.Next(ctx) {
			if typ, _ := rdb.Type(ctx, iter.Val()).Result(); typ == "hash" {
				hashes++
			}
		}
		if missing > 0 || hashes != len(ids) {
			return false, strconv.Itoa(len(ids)) + " " + string(k) + " indexed, " + strconv.Itoa(missing) + " of them without a hash, " + strconv.Itoa(hashes) + " hashes"
		}
	}
	return true, ""
}
