package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/reader"
)

// boardPage is the live board: one page, no build step, nothing loaded
// from the internet.
//
//go:embed board.html
var boardPage []byte

// board serves the live board at / and what its page asks for: the
// cache's status, the cinemas, a cinema's next sessions, and the seat
// changes as server-sent events fed by reader.Watch.
type board struct {
	rdb    func() redis.UniversalClient // the client in use (it changes when Redis turns out a cluster)
	prefix string
	reg    prometheus.Gatherer

	mu   sync.Mutex
	on   redis.UniversalClient
	read *reader.Reader // on on: kept, so each cinema's zone is read once
}

// reader returns a Reader of the client in use.
func (b *board) reader() *reader.Reader {
	b.mu.Lock()
	defer b.mu.Unlock()
	if rdb := b.rdb(); b.read == nil || rdb != b.on {
		b.on, b.read = rdb, reader.New(rdb, b.prefix)
	}
	return b.read
}

func (b *board) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		rw.Write(boardPage)
	})
	mux.HandleFunc("GET /board/status", b.status)
	mux.HandleFunc("GET /board/cinemas", b.cinemas)
	mux.HandleFunc("GET /board/sessions", b.sessions)
	mux.HandleFunc("GET /board/events", b.events)
}

func writeJSON(rw http.ResponseWriter, v any, err error) {
	if err != nil {
		http.Error(rw, "redis: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	json.NewEncoder(rw).Encode(v)
}

func (b *board) status(rw http.ResponseWriter, r *http.Request) {
	rep, err := statusOf(r.Context(), b.rdb(), b.prefix)
	body := struct {
		statusReport
		Upstream float64 `json:"upstream_requests_total"`
	}{rep, b.upstream()}
	writeJSON(rw, body, err)
}

// upstream sums the requests to Vista so far, for the page's rate.
func (b *board) upstream() float64 {
	families, err := b.reg.Gather()
	if err != nil {
		return 0
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() == "vista_warmer_upstream_requests_total" {
			for _, m := range f.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

func (b *board) cinemas(rw http.ResponseWriter, r *http.Request) {
	list, err := b.reader().Cinemas(r.Context())
	slices.SortFunc(list, func(a, b reader.Cinema) int { return strings.Compare(a.ID, b.ID) })
	writeJSON(rw, list, err)
}

// sessions answers a cinema's sessions from a little before now to 12
// hours on, the next 40.
func (b *board) sessions(rw http.ResponseWriter, r *http.Request) {
	now := time.Now()
	list, err := b.reader().CinemaSessions(r.Context(), r.URL.Query().Get("cinema"), now.Add(-20*time.Minute), now.Add(12*time.Hour))
	if len(list) > 40 {
		list = list[:40]
	}
	if list == nil {
		list = []reader.Session{}
	}
	writeJSON(rw, list, err)
}

// events streams the seat changes as server-sent events: "seats" with the
// session's id and seats, "resync" when events were missed.
func (b *board) events(rw http.ResponseWriter, r *http.Request) {
	flusher, ok := rw.(http.Flusher)
	if !ok {
		http.Error(rw, "no streaming", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "text/event-stream")
	rw.Header().Set("Cache-Control", "no-cache")
	rw.WriteHeader(http.StatusOK)
	fmt.Fprint(rw, ": live\n\n")
	flusher.Flush()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	send := func(event, data string) error {
		if _, err := fmt.Fprintf(rw, "event: %s\ndata: %s\n\n", event, strings.ReplaceAll(data, "\n", "")); err != nil {
			return err
		}
		flusher.Flush()
		return nil
	}
	b.reader().Watch(ctx, reader.Position{}, func(ev reader.Event) error {
		if ev.Resync {
			if err := send("resync", "{}"); err != nil {
				return err
			}
		}
		if ev.Kind != keys.Sessions || ev.Event.Event != keys.EventItem || ev.SeatsAvailable == nil {
			return nil
		}
		data, _ := json.Marshal(map[string]any{"id": ev.ID, "seats": *ev.SeatsAvailable})
		return send("seats", string(data))
	})
}
