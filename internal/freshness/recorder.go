package freshness

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/vista-warmer/vista-warmer/internal/fakeclock"
	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/warmer"
)

// Latency draws the time Vista takes to answer one request.
type Latency interface {
	Draw(r *rand.Rand) time.Duration
}

// LogNormal is a latency whose logarithm is normal, set by its median and
// its 99th percentile: the long right tail of a loaded web service.
type LogNormal struct {
	Median, P99 time.Duration
}

// z99 is the standard normal's 99th percentile.
const z99 = 2.3263478740408408

// Draw returns one latency.
func (l LogNormal) Draw(r *rand.Rand) time.Duration {
	sigma := math.Log(float64(l.P99)/float64(l.Median)) / z99
	return time.Duration(float64(l.Median) * math.Exp(sigma*r.NormFloat64()))
}

// recorder is the warmer's Fetcher: it passes every call to Vista and logs
// what reached the warmer, and when, for the sessions being measured. It
// also draws each request's modelled latency.
type recorder struct {
	next    warmer.Fetcher
	clock   *fakeclock.Clock
	latency Latency       // nil: answers take no virtual time
	rowCost time.Duration // added to a list's or a window's answer time per row
	watch   map[string]bool

	seed uint64

	mu       sync.Mutex
	readings map[string][]obs
	checkIDs int64 // ids asked in seat checks
	checks   int64 // seat check calls
}

func newRecorder(next warmer.Fetcher, clock *fakeclock.Clock, latency Latency, rowCost time.Duration, watch map[string]bool, seed uint64) *recorder {
	return &recorder{next: next, clock: clock, latency: latency, rowCost: rowCost, watch: watch, seed: seed,
		readings: map[string][]obs{}}
}

// draw returns the latency of the request asked at at for key (its first
// id), the same on every run whatever order concurrent checks go in.
func (r *recorder) draw(key string, at time.Time) time.Duration {
	if r.latency == nil {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	return r.latency.Draw(rand.New(rand.NewPCG(r.seed^h.Sum64(), uint64(at.UnixNano()))))
}

// Cinemas passes through.
func (r *recorder) Cinemas(ctx context.Context) ([]vista.Cinema, error) {
	return r.next.Cinemas(ctx)
}

// Films passes through.
func (r *recorder) Films(ctx context.Context) ([]vista.Film, error) {
	return r.next.Films(ctx)
}

// Sessions logs a reading of every watched session in a list that the
// warmer takes in (one without error, or with row errors only).
func (r *recorder) Sessions(ctx context.Context, zones map[string]*time.Location) ([]vista.Session, error) {
	at := r.clock.Now()
	l := r.draw("sessions", at)
	list, err := r.next.Sessions(ctx, zones)
	l += time.Duration(len(list)) * r.rowCost
	var rowErrs vista.RowErrors
	if err == nil || errors.As(err, &rowErrs) {
		r.mu.Lock()
		for _, s := range list {
			if r.watch[s.ID] {
				r.readings[s.ID] = append(r.readings[s.ID], obs{at: at, in: at.Add(l)})
			}
		}
		r.mu.Unlock()
	}
	return list, err
}

// CheckSeats logs a reading of every watched session answered.
func (r *recorder) CheckSeats(ctx context.Context, ids []string) ([]vista.Seats, []string, error) {
	at := r.clock.Now()
	var l time.Duration
	if len(ids) > 0 {
		l = r.draw(ids[0], at)
	}
	seats, gone, err := r.next.CheckSeats(ctx, ids)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks++
	r.checkIDs += int64(len(ids))
	for _, s := range seats {
		if r.watch[s.ID] {
			r.readings[s.ID] = append(r.readings[s.ID], obs{at: at, in: at.Add(l)})
		}
	}
	return seats, gone, err
}

// SeatsBetween logs a reading of every watched session a window query
// answered (a warmer.WindowFetcher).
func (r *recorder) SeatsBetween(ctx context.Context, windows ...vista.Window) ([]vista.Seats, error) {
	at := r.clock.Now()
	l := r.draw("window", at)
	seats, err := r.next.(warmer.WindowFetcher).SeatsBetween(ctx, windows...)
	l += time.Duration(len(seats)) * r.rowCost
	var rowErrs vista.RowErrors
	if err == nil || errors.As(err, &rowErrs) {
		r.mu.Lock()
		for _, s := range seats {
			if r.watch[s.ID] {
				r.readings[s.ID] = append(r.readings[s.ID], obs{at: at, in: at.Add(l)})
			}
		}
		r.mu.Unlock()
	}
	return seats, err
}

func (r *recorder) counts() (checks, ids int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checks, r.checkIDs
}
