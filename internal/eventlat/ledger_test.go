package main

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// TestCarried reads the rows of a real simulator answer, a check by id with
// the warmer's widest $select and a full page, so that a change in how the
// simulator writes rows shows here rather than as a benchmark with no
// samples.
func TestCarried(t *testing.T) {
	clock := func() time.Time { return time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC) }
	sim := vistasim.New(vistasim.Config{Seed: 1, Clock: clock})
	all := sim.Sessions()
	a, b := all[3], all[10]
	sim.SetSeats(a.ID, 7)
	sim.SetSeats(b.ID, 123)
	pool := map[string]bool{a.ID: true, b.ID: true}
	want := []row{{a.ID, 7}, {b.ID, 123}}
	for _, url := range []string{
		"/WSVistaWebClient/OData.svc/Sessions?$select=ID,SeatsAvailable,SoldoutStatus,Status&$filter=ID%20eq%20'" + a.ID + "'%20or%20ID%20eq%20'" + b.ID + "'",
		"/WSVistaWebClient/OData.svc/Sessions",
	} {
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d %s", url, rec.Code, rec.Body)
		}
		got, total := carried(rec.Body.Bytes(), pool)
		if total < len(want) {
			t.Errorf("carried(%s): %d rows in all, want %d or more", url, total, len(want))
		}
		slices.SortFunc(got, func(x, y row) int { return x.seats - y.seats })
		if !slices.Equal(got, want) {
			t.Errorf("carried(%s) = %v, want %v", url, got, want)
		}
	}
}

func TestLedger(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	seatsEvent := func(id string, n int) keys.Event {
		return keys.Event{Kind: keys.Sessions, Event: keys.EventItem, ID: id, SeatsAvailable: &n,
			Changed: []string{keys.FieldSeatsAvailable}}
	}
	l := newLedger([]string{"a", "b", "c"})
	ok := l.begin(1, at(0), []row{{"a", 10}, {"b", 20}, {"c", 30}})

	l.answer(at(5), "window", []row{{"a", 11}, {"b", 20}}, 300) // a: the old value
	l.answer(at(6), "seats", []row{{"a", 10}, {"b", 20}}, 2)    // b: the second answer carrying it
	l.event(at(8), seatsEvent("a", 10))
	l.event(at(9), seatsEvent("b", 20))
	l.event(at(9), seatsEvent("b", 20))  // a second event for the same change
	l.event(at(9), seatsEvent("zz", 20)) // not ours
	select {
	case <-ok:
		t.Fatal("the round is done with c neither answered nor announced")
	default:
	}
	l.end(1)
	l.event(at(40), seatsEvent("c", 30)) // after its round gave up

	// Round 2: the event comes before its answer is noted.
	ok = l.begin(2, at(100), []row{{"a", 9}})
	l.event(at(103), seatsEvent("a", 9))
	l.answer(at(102), "seats", []row{{"a", 9}}, 1)
	select {
	case <-ok:
	default:
		t.Fatal("round 2 is not done")
	}
	l.end(2)

	samples, c := l.snapshot()
	var got []string
	for _, s := range samples {
		got = append(got, s.id+" "+s.via+" "+s.latency().String())
	}
	want := []string{"a seats 2ms", "b window 4ms", "a seats 1ms"}
	if !slices.Equal(got, want) {
		t.Errorf("samples = %q, want %q", got, want)
	}
	if c.noAnswer != 1 || c.late != 1 || c.unexpected != 1 || c.noEvent != 0 || c.eventNoReply != 0 || c.eventsSeen != 6 {
		t.Errorf("counts: no answer %d, late %d, unexpected %d, no event %d, event with no answer %d, seen %d; want 1, 1, 1, 0, 0, 6",
			c.noAnswer, c.late, c.unexpected, c.noEvent, c.eventNoReply, c.eventsSeen)
	}
}

func TestQuantile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 200; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 100 * time.Millisecond}, {0.9, 180 * time.Millisecond}, {0.99, 198 * time.Millisecond}, {1, 200 * time.Millisecond}, {0, time.Millisecond}} {
		if got := quantile(d, tc.q); got != tc.want {
			t.Errorf("quantile(1..200 ms, %v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := quantile(nil, .99); got != 0 {
		t.Errorf("quantile(nil, .99) = %v, want 0", got)
	}
}

// TestMonitorLine reads lines as redis-server 7.0 writes them to MONITOR.
func TestMonitorLine(t *testing.T) {
	line := []byte(`+1796418864.085224 [0 lua] "PUBLISH" "vista:events:sessions" "{\"seq\":17,\"epoch\":\"k3x9\",\"kind\":\"sessions\",\"event\":\"item\",\"id\":\"1001-14164\",\"seats_available\":42,\"changed\":[\"seats_available\"],\"at\":\"2026-11-25T17:00:00Z\"}"` + "\r\n")
	ts, src, cmd, args, ok := monitorLine(line)
	if !ok || ts != 1796418864085224 || src != "lua" || cmd != "PUBLISH" || !strings.HasPrefix(string(args), `"vista:events:sessions" "{`) {
		t.Fatalf("monitorLine = %d, %q, %q, %.30q, %v", ts, src, cmd, args, ok)
	}
	if r, ok := eventRow(args); !ok || r != (row{"1001-14164", 42}) {
		t.Errorf("eventRow = %v, %v, want {1001-14164 42}, true", r, ok)
	}
	ts, src, cmd, _, ok = monitorLine([]byte(`+1796418864.085130 [0 127.0.0.1:59158] "evalsha" "4f1c" "3"` + "\r\n"))
	if !ok || ts != 1796418864085130 || src != "127.0.0.1:59158" || cmd != "EVALSHA" {
		t.Errorf("monitorLine(evalsha) = %d, %q, %q, %v", ts, src, cmd, ok)
	}
}
