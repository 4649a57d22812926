// Command vistasim serves the simulated Vista Connect of package vistasim
// as a process of its own, with a control API, so that the warmer's built
// binary can be tried against a Vista that misbehaves on demand: from a
// shell, the fault suite (make chaos), or a person at a terminal.
//
//	vistasim --listen 127.0.0.1:8470
//	vista-warmer --vista-url http://127.0.0.1:8470/WSVistaWebClient/ ...
//	curl -X POST '127.0.0.1:8470/control/fail?mode=empty&count=-1'
//	curl -X POST '127.0.0.1:8470/control/clear'
//
// The control API (POST unless said):
//
//	/control/fail?mode=M&endpoint=E&count=N&status=S&retry_after=D&delay=D
//	    queue a failure: M is status, slow, malformed, rate-limit or empty;
//	    E is cinemas, films, sessions, seats or "" (every request); count
//	    -1 fails until cleared
//	/control/clear                     every queued failure goes
//	/control/seats?id=ID&n=N           a session's seats
//	/control/remove?id=ID              a session leaves the lists
//	/control/cancel?id=ID              a session is cancelled
//	/control/restore?id=ID             a session as the schedule has it
//	/control/move?id=ID&showtime=T     a session moved to T (RFC 3339)
//	/control/hostile?on=true|false     Sessions answers carry, besides
//	    their rows, a copy of their first row and, on the last page of a
//	    list (not a seat check), rows whose ids no key may hold (empty,
//	    too long, ':', '{', '}', spaces, control characters)
//	GET /control/sessions              every listed session, as JSON lines:
//	    id, cinema_id, seats_available, status, showtime (the truth)
//	GET /control/requests              requests by endpoint, as JSON
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "vistasim:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("vistasim", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8470", "address to serve on (port 0: a free one, printed)")
	seed := fs.Uint64("seed", 1, "the programme's seed")
	cinemas := fs.Int("cinemas", 27, "cinemas")
	screens := fs.Int("screens", 6, "screens per cinema")
	shows := fs.Int("shows", 5, "shows a day per screen")
	days := fs.Int("days", 14, "days of sessions published")
	page := fs.Int("page-size", 1000, "rows a page")
	token := fs.String("token", "", "the connectapitoken required, if any")
	refuseWindows := fs.Bool("refuse-windows", false, "answer window queries (a $filter on Showtime) with 400, as a server that does not allow them")
	rowCost := fs.Duration("row-cost", 0, "what each row a request scans or returns adds to its answer time, e.g. 20us")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sim := vistasim.New(vistasim.Config{Seed: *seed, Cinemas: *cinemas, Screens: *screens, ShowsPerDay: *shows,
		Days: *days, PageSize: *page, Token: *token, RefuseWindows: *refuseWindows, RowCost: *rowCost})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	log.Info("simulated vista listening", "url", "http://"+ln.Addr().String()+"/WSVistaWebClient/",
		"sessions", len(sim.Sessions()))
	fmt.Println(ln.Addr().String())

	mux := http.NewServeMux()
	control(mux, sim, log)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// control serves sim on mux, with the control API beside it.
func control(mux *http.ServeMux, sim *vistasim.Server, log *slog.Logger) {
	rows := &hostile{next: sim}
	mux.Handle("/", rows)
	mux.HandleFunc("POST /control/hostile", func(w http.ResponseWriter, r *http.Request) {
		on, err := strconv.ParseBool(r.URL.Query().Get("on"))
		if err != nil {
			http.Error(w, "on: true or false", http.StatusBadRequest)
			return
		}
		rows.on.Store(on)
		log.Info("hostile rows", "on", on)
	})
	modes := map[string]vistasim.FailMode{"status": vistasim.FailStatus, "slow": vistasim.FailSlow,
		"malformed": vistasim.FailMalformed, "rate-limit": vistasim.FailRateLimit, "empty": vistasim.FailEmpty}
	mux.HandleFunc("POST /control/fail", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		mode, ok := modes[q.Get("mode")]
		if !ok {
			http.Error(w, "mode: one of status, slow, malformed, rate-limit, empty", http.StatusBadRequest)
			return
		}
		f := vistasim.Failure{Mode: mode, Endpoint: q.Get("endpoint")}
		var err error
		if v := q.Get("count"); v != "" {
			f.Count, err = strconv.Atoi(v)
		}
		if v := q.Get("status"); v != "" && err == nil {
			f.Status, err = strconv.Atoi(v)
		}
		if v := q.Get("retry_after"); v != "" && err == nil {
			f.RetryAfter, err = time.ParseDuration(v)
		}
		if v := q.Get("delay"); v != "" && err == nil {
			f.Delay, err = time.ParseDuration(v)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sim.Fail(f)
		log.Info("failure queued", "mode", q.Get("mode"), "endpoint", f.Endpoint, "count", f.Count)
	})
	mux.HandleFunc("POST /control/clear", func(w http.ResponseWriter, r *http.Request) {
		sim.ClearFailures()
		log.Info("failures cleared")
	})
	byID := func(name string, f func(id string, r *http.Request) error) {
		mux.HandleFunc("POST /control/"+name, func(w http.ResponseWriter, r *http.Request) {
			id := r.URL.Query().Get("id")
			if id == "" {
				http.Error(w, "id is required", http.StatusBadRequest)
				return
			}
			if err := f(id, r); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
			}
		})
	}
	byID("seats", func(id string, r *http.Request) error {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil {
			return fmt.Errorf("n: %w", err)
		}
		sim.SetSeats(id, n)
		return nil
	})
	byID("remove", func(id string, _ *http.Request) error { sim.Remove(id); return nil })
	byID("cancel", func(id string, _ *http.Request) error { sim.Cancel(id); return nil })
	byID("restore", func(id string, _ *http.Request) error { sim.Restore(id); return nil })
	byID("move", func(id string, r *http.Request) error {
		t, err := time.Parse(time.RFC3339, r.URL.Query().Get("showtime"))
		if err != nil {
			return fmt.Errorf("showtime: %w", err)
		}
		sim.MoveSession(id, t)
		return nil
	})
	mux.HandleFunc("GET /control/sessions", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		bw := bufio.NewWriter(w)
		enc := json.NewEncoder(bw)
		for _, s := range sim.Sessions() {
			enc.Encode(map[string]any{"id": s.ID, "cinema_id": s.CinemaID, "seats_available": s.SeatsAvailable,
				"status": s.Status, "showtime": s.Showtime.UTC().Format(time.RFC3339)})
		}
		bw.Flush()
	})
	mux.HandleFunc("GET /control/requests", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(sim.Requests())
	})
}

// hostile adds rows to the Sessions answers of next while on: a copy of
// each page's first row (a duplicate, which Vista sends now and then) and,
// on the last page of a list, rows whose ids the contract says no key may
// hold. A warmer must refuse those alone and keep the rest of the list.
type hostile struct {
	next http.Handler
	on   atomic.Bool
}

// hostileIDs are ids no key may hold: empty, over 128 bytes, or with ':',
// '{', '}', whitespace or a control character.
var hostileIDs = []string{"", strings.Repeat("9", 129), "1001-1:x", "{1001}-1", "1001-}", "1001 1", "1001-\t1", "1001-\a1"}

func (h *hostile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.on.Load() || !strings.HasSuffix(r.URL.Path, "/Sessions") {
		h.next.ServeHTTP(w, r)
		return
	}
	rec := &recorder{header: http.Header{}, code: http.StatusOK}
	h.next.ServeHTTP(rec, r)
	var page map[string]json.RawMessage
	var rows []json.RawMessage
	if rec.code != http.StatusOK || json.Unmarshal(rec.body.Bytes(), &page) != nil ||
		json.Unmarshal(page["value"], &rows) != nil || len(rows) == 0 {
		rec.copyTo(w)
		return
	}
	rows = append(rows, rows[0])
	// Seat checks ($filter by id) get the duplicate only: Vista answers
	// them with the ids asked for, which the warmer took from rows it
	// accepted.
	if page["odata.nextLink"] == nil && page["__next"] == nil && !r.URL.Query().Has("$filter") {
		var first map[string]json.RawMessage
		json.Unmarshal(rows[0], &first)
		for _, id := range hostileIDs {
			row := map[string]json.RawMessage{}
			for k, v := range first {
				row[k] = v
			}
			row["ID"], _ = json.Marshal(id)
			b, _ := json.Marshal(row)
			rows = append(rows, b)
		}
	}
	page["value"], _ = json.Marshal(rows)
	out, _ := json.Marshal(page)
	rec.body.Reset()
	rec.body.Write(out)
	rec.header.Del("Content-Length")
	rec.copyTo(w)
}

// recorder keeps an answer to change it before it goes out.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.code = code }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

func (r *recorder) copyTo(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	w.WriteHeader(r.code)
	w.Write(r.body.Bytes())
}
