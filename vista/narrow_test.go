package vista

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// oldVista answers seat checks like a Vista server whose Session lacks some
// properties: a $select naming one is refused with 400, as OData does. It
// refuses the ids in bad too, and counts requests by $select.
type oldVista struct {
	*httptest.Server
	lacks []string
	bad   map[string]bool

	mu       sync.Mutex
	bySelect map[string]int
	refused  int
}

func newOldVista(t *testing.T, lacks []string, bad ...string) *oldVista {
	t.Helper()
	v := &oldVista{lacks: lacks, bad: map[string]bool{}, bySelect: map[string]int{}}
	for _, id := range bad {
		v.bad[id] = true
	}
	v.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sel := r.URL.Query().Get("$select")
		v.mu.Lock()
		defer v.mu.Unlock()
		v.bySelect[sel]++
		refuse := func(msg string) {
			v.refused++
			http.Error(w, `{"odata.error":{"message":{"value":"`+msg+`"}}}`, http.StatusBadRequest)
		}
		for _, name := range strings.Split(sel, ",") {
			if slices.Contains(v.lacks, name) {
				refuse("Could not find a property named '" + name + "' on type 'Session'.")
				return
			}
		}
		var rows []string
		for _, m := range seatTermRE.FindAllStringSubmatch(r.URL.Query().Get("$filter"), -1) {
			id := m[1]
			if v.bad[id] {
				refuse("bad id")
				return
			}
			row := map[string]any{"ID": id, "SeatsAvailable": 5, "SoldoutStatus": 1, "Status": 0}
			for _, name := range v.lacks {
				delete(row, name)
			}
			b, _ := json.Marshal(row)
			rows = append(rows, string(b))
		}
		fmt.Fprintf(w, `{"value":[%s]}`, strings.Join(rows, ","))
	}))
	t.Cleanup(v.Close)
	return v
}

func (v *oldVista) counts() (map[string]int, int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return maps.Clone(v.bySelect), v.refused
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

const (
	selAll       = "ID,SeatsAvailable,SoldoutStatus,Status"
	selNoStatus  = "ID,SeatsAvailable,SoldoutStatus"
	selNarrowest = "ID,SeatsAvailable"
)

// TestSeatSelectNarrows: a server without Status (or SoldoutStatus) costs
// one (or two) refused requests in all, then every check passes with the
// narrowest $select that works, for the life of the client.
func TestSeatSelectNarrows(t *testing.T) {
	tests := []struct {
		name        string
		lacks       []string
		wantSelect  string
		wantRefused int
		wantSoldout bool
	}{
		{"every property", nil, selAll, 0, true},
		{"no Status", []string{"Status"}, selNoStatus, 1, true},
		{"no Status nor SoldoutStatus", []string{"Status", "SoldoutStatus"}, selNarrowest, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newOldVista(t, tt.lacks)
			c := mustClient(t, Config{BaseURL: v.URL, MaxURLLength: 600})
			for round := range 5 {
				list := ids(fmt.Sprintf("1001%d", round), 40) // several batches each
				seats, gone, err := c.CheckSeats(t.Context(), list)
				if err != nil || len(seats) != len(list) || len(gone) != 0 {
					t.Fatalf("round %d: CheckSeats = %d seats, %d gone, %v; want %d seats", round, len(seats), len(gone), err, len(list))
				}
				for _, s := range seats {
					if s.HasStatus != (tt.lacks == nil) || s.HasSoldoutStatus != tt.wantSoldout {
						t.Fatalf("round %d: %+v, want HasStatus %v, HasSoldoutStatus %v", round, s, tt.lacks == nil, tt.wantSoldout)
					}
					if s.Cancelled() {
						t.Fatalf("round %d: %+v reads as cancelled", round, s)
					}
				}
			}
			if got := c.SeatSelect(); got != "$select="+tt.wantSelect {
				t.Errorf("SeatSelect() = %q, want $select=%s", got, tt.wantSelect)
			}
			by, refused := v.counts()
			if refused != tt.wantRefused {
				t.Errorf("the server refused %d requests, want %d; by $select: %v", refused, tt.wantRefused, by)
			}
		})
	}
}

// TestSeatSelectNarrowsOnceUnderConcurrency: checks started together on a
// server without Status still cost one refused request in all.
func TestSeatSelectNarrowsOnceUnderConcurrency(t *testing.T) {
	v := newOldVista(t, []string{"Status"})
	c := mustClient(t, Config{BaseURL: v.URL})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			list := ids(fmt.Sprintf("100%d", g), 3)
			if seats, _, err := c.CheckSeats(t.Context(), list); err != nil || len(seats) != 3 {
				t.Errorf("CheckSeats = %d seats, %v; want 3", len(seats), err)
			}
		})
	}
	wg.Wait()
	if by, refused := v.counts(); refused != 1 {
		t.Errorf("the server refused %d requests, want 1; by $select: %v", refused, by)
	}
}

// TestSeatSelectNotBlamedForBadIDs: on a server with every property, a
// first batch refused for a bad id costs two narrower tries once; the
// $select stays as it was, the bad id is found, and later refusals are
// put down to their ids without trying narrower $selects again.
func TestSeatSelectNotBlamedForBadIDs(t *testing.T) {
	v := newOldVista(t, nil, "1001-BAD", "1002-BAD")
	c := mustClient(t, Config{BaseURL: v.URL})
	for _, list := range [][]string{
		{"1001-1", "1001-BAD", "1001-2"},
		{"1002-1", "1002-BAD", "1002-2", "1002-3"},
	} {
		seats, _, err := c.CheckSeats(t.Context(), list)
		var rej *RejectedError
		if len(seats) != len(list)-1 || !errors.As(err, &rej) || len(rej.IDs) != 1 {
			t.Fatalf("CheckSeats(%q) = %d seats, %v; want all but the bad id, and it rejected", list, len(seats), err)
		}
	}
	if got := c.SeatSelect(); got != "$select="+selAll {
		t.Errorf("SeatSelect() = %q, want the widest", got)
	}
	by, _ := v.counts()
	if narrower := by[selNoStatus] + by[selNarrowest]; narrower != 2 {
		t.Errorf("narrower $selects were tried %d times, want 2 in all; by $select: %v", narrower, by)
	}
}

// TestSeatSelectOnALoneID: a server without Status whose first check
// asks for one session narrows the $select too, rather than call the id
// refused.
func TestSeatSelectOnALoneID(t *testing.T) {
	v := newOldVista(t, []string{"Status", "SoldoutStatus"})
	c := mustClient(t, Config{BaseURL: v.URL})
	seats, gone, err := c.CheckSeats(t.Context(), []string{"1001-1"})
	if err != nil || len(seats) != 1 || len(gone) != 0 {
		t.Fatalf("CheckSeats = %v, %v, %v; want the one session's seats", seats, gone, err)
	}
}

// TestSeatChecksOnTheSimulatedOlderServer: against the simulated Vista
// without Status and SoldoutStatus, the whole session list reads as open
// and seat checks work after two refused requests in all.
func TestSeatChecksOnTheSimulatedOlderServer(t *testing.T) {
	now := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	sim := vistasim.New(vistasim.Config{Seed: 3, Clock: func() time.Time { return now },
		OmitSessionFields: []string{"Status", "SoldoutStatus"}})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c := mustClient(t, Config{BaseURL: srv.URL + "/WSVistaWebClient/", Zones: Zones{Default: time.UTC}})
	sessions, err := c.Sessions(t.Context(), nil)
	if err != nil || len(sessions) == 0 {
		t.Fatalf("Sessions = %d, %v", len(sessions), err)
	}
	var list []string
	for _, s := range sessions[:30] {
		if s.Status != "" || s.State != keys.StateOpen {
			t.Fatalf("%s: status %q, state %s; want none, open", s.ID, s.Status, s.State)
		}
		list = append(list, s.ID)
	}
	sim.ResetRequests()
	for range 3 {
		seats, gone, err := c.CheckSeats(t.Context(), list)
		if err != nil || len(seats) != len(list) || len(gone) != 0 {
			t.Fatalf("CheckSeats = %d seats, %d gone, %v; want %d seats", len(seats), len(gone), err, len(list))
		}
	}
	if got := sim.Requests()[vistasim.EndpointSeats]; got != 3+2 {
		t.Errorf("3 checks cost %d seat requests, want 5 (two refused in all)", got)
	}
	if got := c.SeatSelect(); got != "$select="+selNarrowest {
		t.Errorf("SeatSelect() = %s, want $select=%s", got, selNarrowest)
	}
}
