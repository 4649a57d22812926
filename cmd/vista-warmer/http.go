package main

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

// status is what /readyz needs of the warmer.
type status interface {
	Readiness(ctx context.Context) (ready bool, reason string)
	Role() string
}

// probeTimeout bounds the Redis round trip of a probe: a probe that hangs
// is worse than one that fails.
const probeTimeout = 2 * time.Second

// newHandler serves /metrics, /healthz and /readyz.
func newHandler(reg *prometheus.Registry, rdb redis.UniversalClient, w status) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))

	// /healthz: the process runs and Redis answers.
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
		defer cancel()
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := rdb.Ping(ctx).Err(); err != nil {
			// The detail (addresses, auth errors) is for the log, not for
			// whoever can reach the probe.
			rw.WriteHeader(http.StatusServiceUnavailable)
			rw.Write([]byte("redis: unavailable\n"))
			return
		}
		rw.Write([]byte("ok\n"))
	})

	// /readyz: the cache is warm, whichever role this instance has.
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
		defer cancel()
		ready, reason := w.Readiness(ctx)
		body := struct {
			Role   string `json:"role"`
			Ready  bool   `json:"ready"`
			Reason string `json:"reason,omitempty"`
		}{Role: w.Role(), Ready: ready, Reason: reason}
		rw.Header().Set("Content-Type", "application/json")
		if !body.Ready {
			rw.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(rw).Encode(body)
	})

	mux.HandleFunc("GET /{$}", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Write([]byte("vista-warmer: /metrics /healthz /readyz\n"))
	})
	return mux
}
