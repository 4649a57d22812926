package vista

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/internal/testkit"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// A window query is a request of the budget like any other: a 429 with
// Retry-After on one holds every request after it, of any endpoint, and
// the window query itself is not retried (its next sweep is its retry);
// while the budget is paused, a window query waits too.
func TestWindowRetryAfterPausesBudget(t *testing.T) {
	sim := vistasim.New(vistasim.Config{Seed: 3, Clock: func() time.Time { return clockStart }})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	b, clock := MustFakeBudget(t, 4, 0)
	c := mustClient(t, Config{BaseURL: srv.URL + "/WSVistaWebClient/", Zones: Zones{Default: time.UTC}, Budget: b, MaxDelay: time.Minute})
	window := Window{From: clockStart, To: clockStart.Add(time.Hour)}

	sim.Fail(vistasim.Failure{Mode: vistasim.FailRateLimit, RetryAfter: 2 * time.Second, Endpoint: vistasim.EndpointWindow})
	_, err := c.SeatsBetween(t.Context(), window)
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("SeatsBetween error = %v, want the 429", err)
	}
	if got := sim.Requests()[vistasim.EndpointWindow]; got != 1 {
		t.Errorf("the window query made %d requests, want 1 (no retry)", got)
	}

	done := make(chan error, 1)
	go func() {
		_, _, err := c.CheckSeats(t.Context(), []string{"1001-1"})
		done <- err
	}()
	testkit.Eventually(t, 10*time.Second, "the seat check waits", func() bool { return b.Waiting() == 1 })
	windows := make(chan error, 1)
	go func() {
		_, err := c.SeatsBetween(t.Context(), window)
		windows <- err
	}()
	testkit.Eventually(t, 10*time.Second, "the next window query waits too", func() bool { return b.Waiting() == 2 })
	clock.Advance(2*time.Second - time.Millisecond)
	if got := sim.Requests()[vistasim.EndpointSeats] + sim.Requests()[vistasim.EndpointWindow]; got != 1 {
		t.Fatalf("before the 2 s passed: %d requests in all, want only the first window query", got)
	}
	clock.Advance(time.Millisecond)
	if err := <-done; err != nil {
		t.Errorf("CheckSeats after the pause: %v", err)
	}
	if err := <-windows; err != nil {
		t.Errorf("SeatsBetween after the pause: %v", err)
	}
}

// A list's pages go one after another as fast as Vista answers them: the
// rate, which bounds what may burst, does not space them out, and they do
// not use it up. Requests of their own (a seat check) still keep it.
func TestListPagesAreNotSpacedByTheRate(t *testing.T) {
	sim := vistasim.New(vistasim.Config{Seed: 3, PageSize: 10, Clock: func() time.Time { return clockStart }})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	b, clock := MustFakeBudget(t, 4, 1) // a request a second
	c := mustClient(t, Config{BaseURL: srv.URL + "/WSVistaWebClient/", Zones: Zones{Default: time.UTC}, Budget: b})

	// The clock does not move: a page that waited for the rate would wait
	// until the context ends.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	sessions, err := c.Sessions(ctx, nil)
	if err != nil {
		t.Fatalf("Sessions, the budget's clock standing still: %v (a page waited for the rate)", err)
	}
	if pages := sim.Requests()[vistasim.EndpointSessions]; pages < 5 || len(sessions) < 40 {
		t.Fatalf("%d pages, %d sessions: the test needs a list of several pages", pages, len(sessions))
	}
	// The list's first page took the rate's token; a seat check waits
	// for the next one, a second on.
	done := make(chan error, 1)
	go func() {
		_, _, err := c.CheckSeats(t.Context(), []string{sessions[0].ID})
		done <- err
	}()
	testkit.Eventually(t, 10*time.Second, "the seat check waits for the rate", func() bool { return b.Waiting() == 1 })
	clock.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatalf("CheckSeats: %v", err)
	}
}
