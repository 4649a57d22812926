package vista

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestCheckSeatsRefusedOutright: a Vista that refuses every seat check
// (one that does not support $select, say) costs a handful of requests per
// check, not one for every id.
func TestCheckSeatsRefusedOutright(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, `{"error":"query not supported"}`, http.StatusBadRequest)
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, BaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = fmt.Sprintf("1001-%d", i)
	}
	seats, gone, err := c.CheckSeats(t.Context(), ids)
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest || len(seats) != 0 || len(gone) != 0 {
		t.Errorf("CheckSeats = %d seats, %d gone, %v; want a 400 StatusError and nothing else", len(seats), len(gone), err)
	}
	if n := requests.Load(); n > 12 {
		t.Errorf("CheckSeats of %d ids sent %d requests to a Vista that refuses them all, want a handful", len(ids), n)
	}
}
