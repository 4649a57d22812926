package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// The control API queues failures, changes sessions and tells the truth.
func TestControl(t *testing.T) {
	at := time.Date(2031, 11, 12, 10, 0, 0, 0, time.UTC)
	sim := vistasim.New(vistasim.Config{Seed: 1, Cinemas: 2, Clock: func() time.Time { return at }})
	mux := http.NewServeMux()
	control(mux, sim, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	do := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	list := "/WSVistaWebClient/OData.svc/Sessions"
	if code, body := do("POST", "/control/fail?mode=empty&count=1"); code != 200 {
		t.Fatalf("fail: %d %s", code, body)
	}
	if _, body := do("GET", list); body != `{"value":[]}` {
		t.Errorf("sessions with an empty failure queued = %.60s", body)
	}
	if _, body := do("GET", list); body == `{"value":[]}` {
		t.Errorf("sessions after the failure was used = empty")
	}
	if code, _ := do("POST", "/control/fail?mode=nonsense"); code != 400 {
		t.Errorf("a bad mode = %d, want 400", code)
	}
	id := sim.Sessions()[0].ID
	if code, body := do("POST", "/control/seats?id="+id+"&n=3"); code != 200 {
		t.Fatalf("seats: %d %s", code, body)
	}
	_, truth := do("GET", "/control/sessions")
	if !strings.Contains(truth, `"id":"`+id+`"`) || !strings.Contains(strings.SplitN(truth, "\n", 2)[0], `"seats_available":3`) {
		t.Errorf("truth after seats=3 for %s: %.200s", id, truth)
	}
	do("POST", "/control/fail?mode=status&status=503&count=-1")
	if code, _ := do("GET", list); code != 503 {
		t.Errorf("sessions with a 503 queued = %d", code)
	}
	do("POST", "/control/clear")
	if code, _ := do("GET", list); code != 200 {
		t.Errorf("sessions after clear = %d", code)
	}

	moveTo := at.Add(7 * time.Minute).UTC()
	if code, body := do("POST", "/control/move?id="+id+"&showtime="+moveTo.Format(time.RFC3339)); code != 200 {
		t.Fatalf("move: %d %s", code, body)
	}
	if _, truth := do("GET", "/control/sessions"); !strings.Contains(truth, `"showtime":"`+moveTo.Format(time.RFC3339)+`"`) {
		t.Errorf("truth after a move to %s: %.200s", moveTo, truth)
	}

	_, plain := do("GET", list)
	if code, body := do("POST", "/control/hostile?on=true"); code != 200 {
		t.Fatalf("hostile: %d %s", code, body)
	}
	_, spiked := do("GET", list)
	var page struct{ Value []map[string]any }
	if err := json.Unmarshal([]byte(spiked), &page); err != nil {
		t.Fatalf("hostile answer: %v: %.200s", err, spiked)
	}
	var plainPage struct{ Value []any }
	json.Unmarshal([]byte(plain), &plainPage)
	n := len(plainPage.Value)
	if want := n + 1 + len(hostileIDs); len(page.Value) != want {
		t.Errorf("hostile answer has %d rows, want %d (%d, a duplicate, %d hostile)", len(page.Value), want, n, len(hostileIDs))
	}
	if first, dup := page.Value[0]["ID"], page.Value[n]["ID"]; first != dup {
		t.Errorf("row %d is %v, want a copy of the first, %v", n, dup, first)
	}
	if last := page.Value[len(page.Value)-1]["ID"]; last != "1001-\a1" {
		t.Errorf("last row's ID = %q, want one with a control character", last)
	}
	do("POST", "/control/hostile?on=false")
	if _, again := do("GET", list); again == spiked {
		t.Errorf("hostile rows after they were turned off")
	}
}
