package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vista-warmer/vista-warmer/keys"
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
		if st.LastReloads == nil {
			st.LastReloads = map[keys.Kind]string{} // every field, always (contract section 5)
		}
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

// healthcheck asks /healthz of the warmer listening at listen (the
// default when empty; a wildcard host is asked on loopback) and returns 0
// when it answers 200, 1 otherwise, saying why on w.
func healthcheck(listen string, w io.Writer) int {
	if listen == "" {
		listen = "127.0.0.1:9470"
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		fmt.Fprintln(w, "healthcheck:", err)
		return 1
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		fmt.Fprintln(w, "healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(w, "healthcheck: %d %s", resp.StatusCode, body)
		return 1
	}
	return 0
}
