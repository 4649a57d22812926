package main

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vista-warmer/vista-warmer/internal/redistest"
	"github.com/vista-warmer/vista-warmer/keys"
)

// TestBoardInABrowser loads the live board in a headless Chromium, changes
// a session's seats in the simulated Vista, and sees the number change on
// the page.
func TestBoardInABrowser(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
	}
	srv := redistest.Start(t, redistest.Options{})
	m, logs := MustStart(t, []string{"--demo", "--redis-url", "redis://" + srv.Addr(), "--listen", "127.0.0.1:0"}, nil)
	waitReady(t, m, logs)

	// A session in the near window, checked every 10 s, whatever the hour
	// the test runs at: the simulated Vista moves a showing a day or more
	// away to five minutes from now, and the warmer reloads the sessions,
	// as its schedule would, to learn of it.
	sim := m.sim.sim
	cinema := sim.CinemaIDs()[0]
	now := time.Now()
	var id string
	for _, s := range sim.Sessions() {
		if s.CinemaID == cinema && s.Showtime.Sub(now) > 24*time.Hour {
			id = s.ID
			break
		}
	}
	if id == "" {
		t.Fatalf("the demo lists no session of cinema %s a day or more away", cinema)
	}
	sim.MoveSession(id, now.Add(5*time.Minute))
	if err := m.current.Load().Reload(t.Context(), keys.Sessions); err != nil {
		t.Fatalf("reload the sessions: %v", err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // the browser starts with this context, no timeout on it
		t.Fatalf("start chromium: %v", err)
	}
	cell := chromedp.CSS("#s-" + strings.ReplaceAll(id, "-", "\\-") + " td.seats")
	load, cancelLoad := context.WithTimeout(ctx, 60*time.Second)
	defer cancelLoad()
	err = chromedp.Do(load,
		chromedp.Navigate("http://"+m.HTTPAddr()+"/?cinema="+cinema),
		chromedp.WaitVisible(cell),
		chromedp.WaitVisible(chromedp.CSS("#live")),
	)
	if err != nil {
		t.Fatalf("load the board: %v\n%s", err, logs)
	}
	for live := ""; live != "live"; {
		if live, err = chromedp.Run(load, chromedp.Text(chromedp.CSS("#live"))); err != nil {
			t.Fatalf("the board's live mark: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	before, err := chromedp.Run(load, chromedp.Text(cell))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(before)
	want := strconv.Itoa((n+37)%150 + 1)
	seats, _ := strconv.Atoi(want)
	sim.SetSeats(id, seats)
	var got string
	deadline := time.Now().Add(40 * time.Second)
	for got != want {
		if time.Now().After(deadline) {
			t.Fatalf("the board shows %s seats for %s, want %s after the change", got, id, want)
		}
		if got, err = chromedp.Run(load, chromedp.Text(cell)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the board went from %s to %s seats for %s without a reload", before, got, id)
}
