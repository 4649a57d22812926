package main

import (
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
	mux.Handle("/", sim)
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
}
