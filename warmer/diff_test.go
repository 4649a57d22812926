package warmer

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
)

// The diff of a list against the cache, without Redis.

func newListing(k keys.Kind, now time.Time) *listing {
	return &listing{recs: map[string]*record{}, cancelled: map[string]bool{}, expired: map[string]bool{}, keep: map[string]bool{},
		now: now, kind: k}
}

// film makes a film record with a title; the other fields are fixed.
func film(id, title string) *record {
	return &record{vals: pack([]string{id, title, "PG", "120", "2026-11-01", "Dist", "1001"})}
}

// session makes a session record showing at show with seats.
func session(id string, show time.Time, seats string) *record {
	return &record{vals: pack([]string{id, "1001", "HO1", "1", show.Format(time.RFC3339), "2026-11-26", "Screen 1", "1", seats,
		"0", "0", "open", ""}), showtime: instantOf(show)}
}

// summary shows changes as "op id [changed] reason", one per change.
func summary(changes []change) []string {
	var out []string
	for _, c := range changes {
		s := c.op.outcome() + " " + c.id
		if len(c.changed) > 0 {
			s += " [" + strings.Join(c.changed, ",") + "]"
		}
		if c.reason != "" {
			s += " " + c.reason
		}
		out = append(out, s)
	}
	return out
}

func TestPlan(t *testing.T) {
	now := time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)
	p := DefaultPolicy()
	sp := kindSpecs(baseFields)

	t.Run("films: add, update, confirm, gone", func(t *testing.T) {
		cache := map[string]*record{"a": film("a", "Alpha"), "b": film("b", "Beta"), "c": film("c", "Gamma")}
		l := newListing(keys.Films, now)
		l.recs["a"], l.recs["b"], l.recs["d"] = film("a", "Alpha"), film("b", "Beta 2"), film("d", "Delta")
		got := summary(plan(sp[keys.Films], p, cache, l, nil, now))
		want := []string{"unchanged a", "updated b [title]", "added d [id,title,rating,runtime_minutes,opening_date,distributor,cinema_ids]", "removed c gone"}
		if !slices.Equal(got, want) {
			t.Errorf("plan = %q\nwant %q", got, want)
		}
	})
	t.Run("a partial list calls nothing gone; kept rows stay as cached", func(t *testing.T) {
		cache := map[string]*record{"a": film("a", "Alpha"), "b": film("b", "Beta"), "c": film("c", "Gamma")}
		l := newListing(keys.Films, now)
		l.recs["a"] = film("a", "Alpha 2")
		l.keep["b"] = true
		l.partial = true
		got := summary(plan(sp[keys.Films], p, cache, l, nil, now))
		if want := []string{"updated a [title]"}; !slices.Equal(got, want) {
			t.Errorf("plan = %q, want %q", got, want)
		}
	})
	t.Run("sessions: why they leave", func(t *testing.T) {
		soon := now.Add(30 * time.Minute)
		cache := map[string]*record{
			"cancelled": session("cancelled", soon, "10"),
			"expired":   session("expired", now.Add(-time.Hour), "10"), // past showtime + grace, not listed
			"listedOld": session("listedOld", now.Add(-30*time.Minute), "10"),
			"gone":      session("gone", soon, "10"),
		}
		l := newListing(keys.Sessions, now)
		l.cancelled["cancelled"] = true
		l.expired["listedOld"] = true
		got := summary(plan(sp[keys.Sessions], p, cache, l, nil, now))
		want := []string{"removed cancelled cancelled", "removed gone gone", "removed listedOld expired"}
		if !slices.Equal(got, want) {
			t.Errorf("plan = %q\nwant %q (an expired session is left to the expiry)", got, want)
		}
	})
	t.Run("sessions: what a check saw since the list stays", func(t *testing.T) {
		listed := now.Add(-5 * time.Second)
		show := now.Add(5 * time.Minute)
		checked := session("s", show, "3")
		checked.checked = instantOf(now.Add(-2 * time.Second)) // after the list was fetched
		checked.nextCheck = instantOf(now.Add(4 * time.Second))
		stale := session("t", show, "7")
		stale.checked = instantOf(now.Add(-time.Minute)) // before it
		cache := map[string]*record{"s": checked, "t": stale}
		l := newListing(keys.Sessions, listed)
		l.recs["s"], l.recs["t"] = session("s", show, "9"), session("t", show, "6")
		l.recs["s"].nextCheck = instantOf(listed.Add(9 * time.Second))
		l.recs["gone"] = session("gone", show, "5")
		removed := map[string]time.Time{"gone": now.Add(-time.Second)} // a check removed it after the list
		got := summary(plan(sp[keys.Sessions], p, cache, l, removed, now))
		want := []string{"unchanged s", "updated t [seats_available]"}
		if !slices.Equal(got, want) {
			t.Errorf("plan = %q\nwant %q", got, want)
		}
		if next := l.recs["s"].nextCheck.time(); !next.Equal(checked.nextCheck.time()) {
			t.Errorf("s's next check = %v, want the cache's %v: it keeps its place", next, checked.nextCheck.time())
		}
	})
}

func TestPacked(t *testing.T) {
	for _, fields := range [][]string{
		{},
		{""},
		{"a", "", "ccc"},
		{strings.Repeat("x", 300), "é", "\x00\x01", ""},
		{"a", "b", "c", "d", "e"},
	} {
		p := pack(fields)
		if got := p.all(); len(fields) > 0 && !slices.Equal(got, fields) {
			t.Errorf("pack(%q).all() = %q", fields, got)
		}
		for i, f := range fields {
			if got := p.get(i); got != f {
				t.Errorf("pack(%q).get(%d) = %q", fields, i, got)
			}
		}
		if got := p.get(len(fields)); got != "" {
			t.Errorf("past the last field: %q", got)
		}
		for _, at := range [][]int{{0}, {len(fields)}, {2, 0}, {3, 1, 3, 0}, {0, 1, 2, 3, 4}} {
			out := make([]string, len(at))
			for j := range out {
				out[j] = "left over"
			}
			p.getEach(at, out)
			for j, i := range at {
				if out[j] != p.get(i) {
					t.Errorf("pack(%q).getEach(%v)[%d] = %q, get(%d) = %q", fields, at, j, out[j], i, p.get(i))
				}
			}
		}
		if len(fields) > 1 {
			if got := p.with(1, "new").all(); got[1] != "new" || got[0] != fields[0] || len(got) != len(fields) {
				t.Errorf("with(1) = %q", got)
			}
		}
	}
}

// TestUnchangedRowsKeepTheirRecords: a reload takes the cached record for
// a row that says what the cache holds, so it holds new records only for
// what changed.
func TestUnchangedRowsKeepTheirRecords(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a")
	r.step(w)
	s := r.upcoming(3*time.Hour, 40*time.Hour)
	before := map[string]*record{}
	for id, rec := range w.st.cache[keys.Sessions] {
		before[id] = rec
	}
	r.sim.SetSeats(s.ID, 1)
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatal(err)
	}
	kept := 0
	for id, rec := range w.st.cache[keys.Sessions] {
		switch {
		case id == s.ID && rec == before[id]:
			t.Errorf("session %s changed but kept its old record", id)
		case id != s.ID && rec == before[id]:
			kept++
		}
	}
	if kept != len(before)-1 {
		t.Errorf("%d of %d unchanged sessions kept their records, want all", kept, len(before)-1)
	}
	if got := r.hash(keys.Sessions, s.ID)["seats_available"]; got != "1" {
		t.Errorf("seats_available = %s, want 1", got)
	}
}

func TestPlanSkipsWhatExpiredSinceTheList(t *testing.T) {
	now := time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)
	p := DefaultPolicy()
	sp := kindSpecs(baseFields)[keys.Sessions]
	l := newListing(keys.Sessions, now.Add(-5*time.Minute))
	l.recs["old"] = session("old", now.Add(-p.Grace-time.Minute), "3") // past showtime + grace by now
	l.recs["new"] = session("new", now.Add(time.Hour), "3")
	got := summary(plan(sp, p, map[string]*record{}, l, nil, now))
	if len(got) != 1 || !strings.HasPrefix(got[0], "added new") {
		t.Errorf("plan = %q, want only the addition of new", got)
	}
}

// seatsSame says "nothing new" exactly when withSeats and compare would
// find a confirmation, for every field a seat answer carries or lacks.
func TestSeatsSameAgreesWithCompare(t *testing.T) {
	old := session("1001-1", time.Date(2031, 3, 4, 20, 0, 0, 0, time.UTC), "41")
	fields := baseFields[keys.Sessions]
	for _, seats := range []int{41, 40, 141} {
		for _, soldout := range []int{0, 1} {
			for _, st := range []struct {
				status string
				state  keys.State
			}{{"0", keys.StateOpen}, {"1", keys.StateOpen}, {"0", keys.StateClosed}} {
				for _, has := range [][2]bool{{true, true}, {false, true}, {true, false}, {false, false}} {
					s := vista.Seats{ID: "1001-1", SeatsAvailable: seats, SoldoutStatus: soldout, Status: st.status, State: st.state,
						HasSoldoutStatus: has[0], HasStatus: has[1]}
					want := compare(fields, s.ID, old, withSeats(old, s)).op == opConfirm
					if got := seatsSame(old, s); got != want {
						t.Errorf("seatsSame(%+v) = %v, compare says %v", s, got, want)
					}
					// A hash that lacked fields: never "the same", so the
					// sweep writes it through compare.
					lacking := *old
					lacking.absent = make([]bool, len(fields))
					lacking.absent[sState] = true
					if seatsSame(&lacking, s) {
						t.Errorf("seatsSame(%+v) of a record lacking state = true", s)
					}
				}
			}
		}
	}
}

// isInt agrees with comparing strconv.Itoa's text, on numbers and on
// texts that read as the same number but are not written so.
func TestIsIntIsItoa(t *testing.T) {
	for _, n := range []int{0, 1, -1, 9, 10, 66, -66, 1 << 40, math.MaxInt64, math.MinInt64} {
		for _, s := range []string{strconv.Itoa(n), strconv.Itoa(n) + " ", "0" + strconv.Itoa(n), "+" + strconv.Itoa(n), "", "x"} {
			if got, want := isInt(s, n), s == strconv.Itoa(n); got != want {
				t.Errorf("isInt(%q, %d) = %v, want %v", s, n, got, want)
			}
		}
	}
}

// newsFirst puts the news before the confirmations, each in its order,
// and drops a confirmation of an entity the news change.
func TestNewsFirst(t *testing.T) {
	c := func(o op, id string) change { return change{op: o, id: id} }
	news, confirms := newsFirst([]change{c(opConfirm, "a"), c(opUpdate, "b"), c(opConfirm, "c"), c(opRemove, "d"),
		c(opConfirm, "d"), c(opAdd, "e"), c(opConfirm, "b")})
	if got, want := summary(news), []string{"updated b", "removed d", "added e"}; !slices.Equal(got, want) {
		t.Errorf("news %v, want %v", got, want)
	}
	if got, want := summary(confirms), []string{"unchanged a", "unchanged c"}; !slices.Equal(got, want) {
		t.Errorf("confirmations %v, want %v", got, want)
	}
	only := []change{c(opConfirm, "a"), c(opConfirm, "b")}
	if news, confirms := newsFirst(only); news != nil || len(confirms) != 2 {
		t.Errorf("confirmations alone: %v, %v", summary(news), summary(confirms))
	}
}
