package vista_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

func windowClient(t *testing.T, cfg vistasim.Config) (*vista.Client, *vistasim.Server) {
	t.Helper()
	sim := vistasim.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := vista.New(vista.Config{BaseURL: srv.URL + "/WSVistaWebClient/", Zones: vista.Zones{Default: time.UTC}})
	if err != nil {
		t.Fatal(err)
	}
	return c, sim
}

// SeatsBetween reads, over every page, the seats of exactly the sessions
// whose wall showtime lies in the window, each cinema on its own clock.
func TestSeatsBetweenReadsTheWallWindow(t *testing.T) {
	at := time.Date(2031, 11, 26, 18, 0, 0, 0, time.UTC)
	c, sim := windowClient(t, vistasim.Config{Seed: 3, Cinemas: 9, Screens: 3, ShowsPerDay: 6, Days: 2, PageSize: 7,
		Clock: func() time.Time { return at }})
	from, to := time.Date(2031, 11, 26, 17, 0, 0, 0, time.UTC), time.Date(2031, 11, 26, 21, 30, 0, 0, time.UTC)
	want := map[string]int{}
	for _, s := range sim.Sessions() {
		y, mo, d := s.Showtime.Date()
		h, mi, sec := s.Showtime.Clock()
		wall := time.Date(y, mo, d, h, mi, sec, 0, time.UTC)
		if !wall.Before(from) && wall.Before(to) {
			want[s.ID] = s.SeatsAvailable
		}
	}
	if len(want) <= 7 {
		t.Fatalf("%d sessions in the window, want more than a page (the test needs paging)", len(want))
	}
	got, err := c.SeatsBetween(context.Background(), vista.Window{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("SeatsBetween = %d sessions, want %d", len(got), len(want))
	}
	for _, s := range got {
		if n, ok := want[s.ID]; !ok || n != s.SeatsAvailable {
			t.Errorf("session %s: %d seats, in window %v with %d", s.ID, s.SeatsAvailable, ok, n)
		}
	}
	if n := sim.Requests()[vistasim.EndpointWindow]; n < 2 {
		t.Errorf("window requests = %d, want one per page", n)
	}
}

// A server that refuses the shape answers 400, which the caller sees as a
// *StatusError, once: a window query is not retried.
func TestSeatsBetweenRefused(t *testing.T) {
	c, sim := windowClient(t, vistasim.Config{Seed: 3, RefuseWindows: true})
	at := time.Date(2031, 11, 26, 18, 0, 0, 0, time.UTC)
	_, err := c.SeatsBetween(context.Background(), vista.Window{From: at, To: at.Add(time.Hour)})
	var se *vista.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest {
		t.Fatalf("SeatsBetween on a server refusing windows: %v, want a 400 StatusError", err)
	}
	if n := sim.Requests()[vistasim.EndpointWindow]; n != 1 {
		t.Errorf("window requests = %d, want 1 (no retry)", n)
	}
}

// Several windows go in one request, joined by or, and are split only
// where the URL would pass MaxURLLength; the answer is their union, each
// session once.
func TestSeatsBetweenSeveralWindows(t *testing.T) {
	at := time.Date(2031, 11, 26, 18, 0, 0, 0, time.UTC)
	sim := vistasim.New(vistasim.Config{Seed: 3, Cinemas: 9, Screens: 3, ShowsPerDay: 6, Days: 2, PageSize: vistasim.NoPaging,
		Clock: func() time.Time { return at }})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	day := time.Date(2031, 11, 26, 0, 0, 0, 0, time.UTC)
	var windows []vista.Window
	for h := 11; h < 23; h += 2 { // six windows of an hour, with gaps; two overlap
		windows = append(windows, vista.Window{From: day.Add(time.Duration(h) * time.Hour), To: day.Add(time.Duration(h+1) * time.Hour)})
	}
	windows = append(windows, vista.Window{From: day.Add(11*time.Hour + 30*time.Minute), To: day.Add(12*time.Hour + 30*time.Minute)})
	want := map[string]bool{}
	for _, s := range sim.Sessions() {
		y, mo, d := s.Showtime.Date()
		h, mi, sec := s.Showtime.Clock()
		wall := time.Date(y, mo, d, h, mi, sec, 0, time.UTC)
		for _, w := range windows {
			if !wall.Before(w.From) && wall.Before(w.To) {
				want[s.ID] = true
			}
		}
	}
	for _, tc := range []struct {
		maxURL, requests int
	}{{2000, 1}, {600, 3}} {
		c, err := vista.New(vista.Config{BaseURL: srv.URL + "/WSVistaWebClient/", Zones: vista.Zones{Default: time.UTC}, MaxURLLength: tc.maxURL})
		if err != nil {
			t.Fatal(err)
		}
		sim.ResetRequests()
		got, err := c.SeatsBetween(context.Background(), windows...)
		if err != nil {
			t.Fatalf("MaxURLLength %d: %v", tc.maxURL, err)
		}
		seen := map[string]bool{}
		for _, s := range got {
			if seen[s.ID] || !want[s.ID] {
				t.Errorf("MaxURLLength %d: session %s twice or outside every window", tc.maxURL, s.ID)
			}
			seen[s.ID] = true
		}
		if len(seen) != len(want) {
			t.Errorf("MaxURLLength %d: %d sessions, want %d", tc.maxURL, len(seen), len(want))
		}
		if n := sim.Requests()[vistasim.EndpointWindow]; n != int64(tc.requests) {
			t.Errorf("MaxURLLength %d: %d requests, want %d", tc.maxURL, n, tc.requests)
		}
	}
}
