package main

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vista-warmer/vista-warmer/warmer"
)

// status is what the probes need of the warmer.
type status interface {
	Health(ctx context.Context) (ok bool, reason string)
	Status(ctx context.Context) warmer.Status
}

// probeTimeout bounds the Redis round trip of a probe: a probe that hangs
// is worse than one that fails.
const probeTimeout = 2 * time.Second

// newHandler serves /metrics, /healthz and /readyz (contract section 5).
func newHandler(reg *prometheus.Registry, w status, b *board) http.Handler {
	mux := http.NewServeMux()
	if b != nil {
		b.routes(mux) // the live board at /
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))

	// /healthz: this instance can do its job: Redis answers, is no
	// replica, takes the lease and, as writer, the writes. The reason
	// says what is wrong, without addresses or credentials.
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
		defer cancel()
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ok, reason := w.Health(ctx); !ok {
			rw.WriteHeader(http.StatusServiceUnavailable)
			rw.Write([]byte(reason + "\n"))
			return
		}
		rw.Write([]byte("ok\n"))
	})

	// /readyz: the cache is warm, whichever role this instance has, with
	// the heartbeat's age and the last reloads.
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
		defer cancel()
		st := w.Status(ctx)
		rw.Header().Set("Content-Type", "application/json")
		if !st.Ready {
			rw.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(rw).Encode(st)
	})

	if b == nil {
		mux.HandleFunc("GET /{$}", func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
			rw.Write([]byte("vista-warmer: /metrics /healthz /readyz\n"))
		})
	}
	return mux
}
