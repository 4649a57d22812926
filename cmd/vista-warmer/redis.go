package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/warmer"
)

// openRedis connects to Redis and, when it answers, asks whether it is a
// cluster: there every key must share one slot, so the prefix needs a hash
// tag, and the client has to follow the cluster's redirections. A Redis that
// does not answer yet is not fatal: the warmer keeps trying, and /healthz
// says so meanwhile.
func openRedis(ctx context.Context, opts *redis.Options, prefix string, log *slog.Logger) (redis.UniversalClient, error) {
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := rdb.Info(ctx).Result() // the default sections: server and cluster among them, on every version
	var rerr redis.Error
	switch {
	case errors.As(err, &rerr) && strings.HasPrefix(err.Error(), "ERR"):
		// The server answered, but not to INFO: not a Redis that is a cluster.
		return rdb, nil
	case errors.As(err, &rerr):
		if code, _ := warmer.Refusal(err); code != "auth" && code != "acl" { // checkCredentials says those
			// LOADING, MASTERDOWN...: it cannot tell us yet.
			log.Warn("redis cannot say whether it is a cluster; assuming it is not", "addr", opts.Addr, "err", err)
		}
		return rdb, nil
	case err != nil:
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			log.Warn("redis is not answering yet; the warmer keeps trying", "addr", opts.Addr, "err", err)
		}
		return rdb, nil
	case strings.Contains(info, "redis_mode:sentinel"):
		rdb.Close()
		return nil, sentinelGiven(ctx, opts)
	case !strings.Contains(info, "cluster_enabled:1"):
		return rdb, nil
	}
	rdb.Close()
	log.Info("redis is a cluster; following its slots", "addr", opts.Addr)
	return newClusterClient(opts, prefix)
}

// sentinelGiven is the usage error for a plain URL that names a Sentinel:
// it knows no data commands. It names the masters the Sentinel watches.
func sentinelGiven(ctx context.Context, opts *redis.Options) error {
	masters := "MASTER"
	sc := redis.NewSentinelClient(&redis.Options{Addr: opts.Addr, Username: opts.Username, Password: opts.Password, TLSConfig: opts.TLSConfig})
	defer sc.Close()
	if ms, err := sc.Masters(ctx).Result(); err == nil {
		var names []string
		for _, m := range ms {
			switch fields := m.(type) {
			case []any: // RESP2: name, value, ...
				for i := 0; i+1 < len(fields); i += 2 {
					if fields[i] == "name" {
						names = append(names, fmt.Sprint(fields[i+1]))
					}
				}
			case map[any]any: // RESP3
				if name, ok := fields["name"]; ok {
					names = append(names, fmt.Sprint(name))
				}
			}
		}
		if len(names) > 0 {
			masters = strings.Join(names, " or ")
		}
	}
	return usagef("--redis-url: %s is a Redis Sentinel, not a Redis server: give redis-sentinel://%s/%s", opts.Addr, opts.Addr, masters)
}

// newClusterClient returns a cluster client seeded with the node of opts,
// or a usage error when the prefix has no hash tag.
func newClusterClient(opts *redis.Options, prefix string) (redis.UniversalClient, error) {
	if _, ok := keys.HashTag(prefix); !ok {
		return nil, usagef("--prefix: %q has no hash tag, and Redis at %s is a cluster where all keys must share one slot: use e.g. --prefix {%s}", prefix, opts.Addr, prefix)
	}
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:           []string{opts.Addr},
		Dialer:          opts.Dialer,
		Protocol:        opts.Protocol,
		Username:        opts.Username,
		Password:        opts.Password,
		MaxRetries:      opts.MaxRetries,
		MinRetryBackoff: opts.MinRetryBackoff,
		MaxRetryBackoff: opts.MaxRetryBackoff,
		DialTimeout:     opts.DialTimeout,
		ReadTimeout:     opts.ReadTimeout,
		WriteTimeout:    opts.WriteTimeout,
		PoolSize:        opts.PoolSize,
		MinIdleConns:    opts.MinIdleConns,
		TLSConfig:       opts.TLSConfig,
	}), nil
}

// clusterClient asks the Redis of opts again whether it is a cluster, and
// returns a cluster client if it is (nil if it is not).
func clusterClient(ctx context.Context, opts *redis.Options, prefix string) (redis.UniversalClient, error) {
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := c.Info(ctx, "cluster").Result()
	if err != nil || !strings.Contains(info, "cluster_enabled:1") {
		return nil, nil
	}
	return newClusterClient(opts, prefix)
}

// clusterHint is a hook on the plain client that signals when a node
// answers as a cluster does (MOVED, ASK, CLUSTERDOWN): Redis became a
// cluster, or the warmer started before it was one.
type clusterHint struct{ seen chan<- struct{} }

func (h clusterHint) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h clusterHint) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(err)
		return err
	}
}

func (h clusterHint) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.check(err)
		for _, cmd := range cmds {
			h.check(cmd.Err())
		}
		return err
	}
}

func (h clusterHint) check(err error) {
	if err == nil {
		return
	}
	if msg := err.Error(); strings.HasPrefix(msg, "MOVED ") || strings.HasPrefix(msg, "ASK ") || strings.HasPrefix(msg, "CLUSTERDOWN") {
		select {
		case h.seen <- struct{}{}:
		default:
		}
	}
}

// checkCredentials stops the start when Redis refuses the credentials
// (or the user's commands): that does not mend itself, and retrying would
// only fill the log. A Redis that does not answer yet is not fatal.
func checkCredentials(ctx context.Context, rdb redis.UniversalClient, shown string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := rdb.Ping(ctx).Err()
	if code, why := warmer.Refusal(err); code == "auth" || code == "acl" {
		return fmt.Errorf("%s: %s (%v); check the user and password in --redis-url", shown, why, err)
	}
	return nil
}

// warnEviction warns when Redis may evict the cache's keys to make room:
// a maxmemory with any policy but noeviction. The warmer mends what is
// evicted, but readers meanwhile miss entries and Vista is asked again.
func warnEviction(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return
	}
	var maxmemory, policy string
	for _, line := range strings.Split(info, "\n") {
		name, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch name {
		case "maxmemory":
			maxmemory = v
		case "maxmemory_policy":
			policy = v
		}
	}
	if maxmemory != "" && maxmemory != "0" && policy != "" && policy != "noeviction" {
		log.Warn("redis may evict the cache's keys when it is full (maxmemory-policy "+policy+"); "+
			"with noeviction it refuses writes instead, which the warmer waits out and /healthz reports",
			"maxmemory", maxmemory, "policy", policy)
	}
}

// openSentinel returns a client of the master the sentinels name, which
// follows it through failovers: go-redis asks the sentinels again when the
// master changes or stops answering.
func openSentinel(opts *redis.Options, sc *SentinelConfig) redis.UniversalClient {
	return redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:       sc.Master,
		SentinelAddrs:    sc.Addrs,
		SentinelUsername: sc.Username,
		SentinelPassword: sc.Password,
		Username:         opts.Username,
		Password:         opts.Password,
		DB:               opts.DB,
		TLSConfig:        opts.TLSConfig,
	})
}

// redactURL returns a Redis URL fit for a log line: passwords, in the user
// part or as sentinel_password, become xxxxx.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "(unprintable URL)"
	}
	rest, query, hasQuery := strings.Cut(rest, "?")
	authority, path, hasPath := strings.Cut(rest, "/")
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		if user, _, hasPw := strings.Cut(authority[:at], ":"); hasPw {
			authority = user + ":xxxxx" + authority[at:]
		}
	}
	out := scheme + "://" + authority
	if hasPath {
		out += "/" + path
	}
	if hasQuery {
		q, err := url.ParseQuery(query)
		if err != nil {
			return out + "?(unprintable query)"
		}
		if q.Has("sentinel_password") {
			q.Set("sentinel_password", "xxxxx")
		}
		out += "?" + q.Encode()
	}
	return out
}
