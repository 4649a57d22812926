package main

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
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
	info, err := rdb.Info(ctx, "cluster").Result()
	var rerr redis.Error
	switch {
	case errors.As(err, &rerr) && strings.HasPrefix(err.Error(), "ERR"):
		// The server answered but knows no such section: not a cluster.
		return rdb, nil
	case errors.As(err, &rerr):
		// NOAUTH, LOADING, MASTERDOWN...: it cannot tell us yet.
		log.Warn("redis cannot say whether it is a cluster; assuming it is not", "addr", opts.Addr, "err", err)
		return rdb, nil
	case err != nil:
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			log.Warn("redis is not answering yet; the warmer keeps trying", "addr", opts.Addr, "err", err)
		}
		return rdb, nil
	case !strings.Contains(info, "cluster_enabled:1"):
		return rdb, nil
	}
	rdb.Close()
	if _, ok := keys.HashTag(prefix); !ok {
		return nil, usagef("--prefix: %q has no hash tag, and Redis at %s is a cluster where all keys must share one slot: use e.g. --prefix {%s}", prefix, opts.Addr, prefix)
	}
	log.Info("redis is a cluster; following its slots", "addr", opts.Addr)
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

// redactURL returns a Redis URL fit for a log line.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unprintable URL)"
	}
	return u.Redacted()
}
