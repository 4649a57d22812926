package vistasim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// wallFormat is how the rows' Showtime reads, and how a window's bounds
// are written.
const wallFormat = "2006-01-02T15:04:05"

// seatSelect is the widest $select of the seat checks and the windows.
const seatSelect = "$select=ID,SeatsAvailable,SoldoutStatus,Status"

// escapeAsClient escapes a $filter as the warmer's client does: %20 for a
// space, %27 for a quote.
func escapeAsClient(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// windowFilter is the window query's $filter for [from, to), wall times.
func windowFilter(from, to string) string {
	return "Showtime ge datetime'" + from + "' and Showtime lt datetime'" + to + "'"
}

// windowPath is a window query as the client sends it.
func windowPath(filter string) string {
	return base + "Sessions?" + seatSelect + "&$filter=" + escapeAsClient(filter)
}

// wall is a session's Showtime as its row writes it.
func wall(x SessionInfo) string { return x.Showtime.Format(wallFormat) }

// inWindow lists, in order, the sessions of list whose wall showtime keeps
// says yes to.
func inWindow(list []SessionInfo, keep func(wall string) bool) []SessionInfo {
	var out []SessionInfo
	for _, x := range list {
		if keep(wall(x)) {
			out = append(out, x)
		}
	}
	return out
}

func infoIDs(list []SessionInfo) []string {
	out := []string{}
	for _, x := range list {
		out = append(out, x.ID)
	}
	return out
}

func TestParseWindowFilter(t *testing.T) {
	w := func(op cmpOp, wall string, frac int32) bound {
		b := bound{op: op, frac: frac}
		copy(b.wall[:], wall)
		return b
	}
	tests := []struct {
		in   string
		want [][]bound // nil: an error
	}{
		{"Showtime ge datetime'2026-11-25T18:00:00' and Showtime lt datetime'2026-11-25T19:20:00'",
			[][]bound{{w(opGE, "2026-11-25T18:00:00", 0), w(opLT, "2026-11-25T19:20:00", 0)}}},
		{"Showtime gt datetime'2026-11-25T18:00'", [][]bound{{w(opGT, "2026-11-25T18:00:00", 0)}}},
		{"Showtime le datetime'2026-11-25T18:00:59'", [][]bound{{w(opLE, "2026-11-25T18:00:59", 0)}}},
		{"Showtime lt datetime'2026-11-25T18:00:00.5'", [][]bound{{w(opLT, "2026-11-25T18:00:00", 500_000_000)}}},
		{"Showtime lt datetime'2026-11-25T18:00:00.0000001'", [][]bound{{w(opLT, "2026-11-25T18:00:00", 100)}}},
		{"Showtime lt datetime'2026-11-25T18:00:00.0000000'", [][]bound{{w(opLT, "2026-11-25T18:00:00", 0)}}},
		{"  (Showtime   ge datetime'2026-11-25T18:00')and(  Showtime lt datetime'2026-11-25T19:20' ) ",
			[][]bound{{w(opGE, "2026-11-25T18:00:00", 0), w(opLT, "2026-11-25T19:20:00", 0)}}},
		{"((Showtime ge datetime'2026-11-25T18:00' and Showtime lt datetime'2026-11-25T19:20'))",
			[][]bound{{w(opGE, "2026-11-25T18:00:00", 0), w(opLT, "2026-11-25T19:20:00", 0)}}},
		{"\tShowtime lt datetime'2028-02-29T23:59:59'", [][]bound{{w(opLT, "2028-02-29T23:59:59", 0)}}},
		{"Showtime ge datetime'2026-11-25T18:00' and Showtime ge datetime'2026-11-25T19:00'",
			[][]bound{{w(opGE, "2026-11-25T18:00:00", 0), w(opGE, "2026-11-25T19:00:00", 0)}}},

		// Several windows: groups joined by "or", "and" binding tighter.
		{"Showtime ge datetime'2026-11-25T18:00' or Showtime lt datetime'2026-11-25T19:20'",
			[][]bound{{w(opGE, "2026-11-25T18:00:00", 0)}, {w(opLT, "2026-11-25T19:20:00", 0)}}},
		{"(Showtime ge datetime'2031-11-26T11:40:00' and Showtime lt datetime'2031-11-26T13:00:00') or (Showtime ge datetime'2031-11-26T19:40:00' and Showtime lt datetime'2031-11-26T23:00:00')",
			[][]bound{{w(opGE, "2031-11-26T11:40:00", 0), w(opLT, "2031-11-26T13:00:00", 0)}, {w(opGE, "2031-11-26T19:40:00", 0), w(opLT, "2031-11-26T23:00:00", 0)}}},
		{"Showtime ge datetime'2026-11-25T11:00' and Showtime lt datetime'2026-11-25T12:00' or Showtime ge datetime'2026-11-25T19:00' and Showtime lt datetime'2026-11-25T20:00'",
			[][]bound{{w(opGE, "2026-11-25T11:00:00", 0), w(opLT, "2026-11-25T12:00:00", 0)}, {w(opGE, "2026-11-25T19:00:00", 0), w(opLT, "2026-11-25T20:00:00", 0)}}},
		{"Showtime lt datetime'2026-11-25T11:00' or Showtime ge datetime'2026-11-25T19:00' and Showtime lt datetime'2026-11-25T20:00'",
			[][]bound{{w(opLT, "2026-11-25T11:00:00", 0)}, {w(opGE, "2026-11-25T19:00:00", 0), w(opLT, "2026-11-25T20:00:00", 0)}}},
		{"Showtime ge datetime'2026-11-25T19:00' and Showtime lt datetime'2026-11-25T20:00' or Showtime lt datetime'2026-11-25T11:00'",
			[][]bound{{w(opGE, "2026-11-25T19:00:00", 0), w(opLT, "2026-11-25T20:00:00", 0)}, {w(opLT, "2026-11-25T11:00:00", 0)}}},
		{"((Showtime ge datetime'2026-11-25T11:00') and (Showtime lt datetime'2026-11-25T12:00') or ((Showtime gt datetime'2026-11-26T11:00') or (Showtime le datetime'2026-11-24T12:00')))",
			[][]bound{{w(opGE, "2026-11-25T11:00:00", 0), w(opLT, "2026-11-25T12:00:00", 0)}, {w(opGT, "2026-11-26T11:00:00", 0)}, {w(opLE, "2026-11-24T12:00:00", 0)}}},
		{"(Showtime ge datetime'2026-11-25T11:00' and Showtime lt datetime'2026-11-25T12:00')or(Showtime ge datetime'2026-11-25T11:00' and Showtime lt datetime'2026-11-25T12:00')",
			[][]bound{{w(opGE, "2026-11-25T11:00:00", 0), w(opLT, "2026-11-25T12:00:00", 0)}, {w(opGE, "2026-11-25T11:00:00", 0), w(opLT, "2026-11-25T12:00:00", 0)}}},

		// Refused: other operators, properties, connectives, shapes.
		{"Showtime eq datetime'2026-11-25T18:00'", nil},
		{"Showtime ne datetime'2026-11-25T18:00'", nil},
		{"Showtime GE datetime'2026-11-25T18:00'", nil},
		{"showtime ge datetime'2026-11-25T18:00'", nil},
		{"SeatsAvailable gt 0", nil},
		{"Showtime ge datetime'2026-11-25T18:00' and Showtime lt datetime'2026-11-25T19:20' and Showtime lt datetime'2026-11-25T19:00'", nil},
		{"(Showtime ge datetime'2026-11-25T18:00' and Showtime lt datetime'2026-11-25T19:20') and Showtime lt datetime'2026-11-25T19:00'", nil},
		{"Showtime lt datetime'2026-11-25T11:00' or Showtime ge datetime'2026-11-25T18:00' and Showtime lt datetime'2026-11-25T19:20' and Showtime lt datetime'2026-11-25T19:00'", nil},
		{"(Showtime ge datetime'2026-11-25T18:00' or Showtime ge datetime'2026-11-25T19:00') and Showtime lt datetime'2026-11-25T19:20'", nil},
		{"Showtime lt datetime'2026-11-25T19:20' and (Showtime ge datetime'2026-11-25T18:00' or Showtime ge datetime'2026-11-25T19:00')", nil},
		{"Showtime ge datetime'2026-11-25T18:00' or", nil},
		{"or Showtime ge datetime'2026-11-25T18:00'", nil},
		{"Showtime ge datetime'2026-11-25T18:00' or or Showtime ge datetime'2026-11-25T19:00'", nil},
		{"Showtime ge datetime'2026-11-25T18:00' or ()", nil},
		{"Showtime ge datetime'2026-11-25T18:00' Showtime ge datetime'2026-11-25T19:00'", nil},
		{"Showtime ge datetime'2026-11-25T18:00' OR Showtime ge datetime'2026-11-25T19:00'", nil},
		{"Showtime ge datetime'2026-11-25T18:00' or ID eq '1001-1'", nil},
		{"(Showtime ge datetime'2026-11-25T18:00' and Showtime lt datetime'2026-11-25T19:20') or ID eq '1001-1'", nil},
		{"ID eq '1001-1' or ID eq '1001-2' or (Showtime ge datetime'2026-11-25T18:00' and Showtime lt datetime'2026-11-25T19:20')", nil},
		{"Showtime ge datetime'2026-11-25T18:00' and ID eq '1001-1'", nil},
		{"ID eq '1001-1' or Showtime ge datetime'2026-11-25T18:00'", nil},
		{"(ID eq '1001-1') and (Showtime ge datetime'2026-11-25T18:00')", nil},
		{"datetime'2026-11-25T18:00' le Showtime", nil},
		{"Showtime ge '2026-11-25T18:00'", nil},
		{"Showtime ge 2026", nil},
		{"Showtime ge", nil},
		{"Showtime", nil},
		{"Showtime ge datetime '2026-11-25T18:00'", nil},
		{"Showtime ge DateTime'2026-11-25T18:00'", nil},
		{"Showtime ge datetimeoffset'2026-11-25T18:00:00Z'", nil},
		{"Showtime ge datetime'2026-11-25T18:00' and", nil},
		{"(Showtime ge datetime'2026-11-25T18:00'", nil},
		{"Showtime ge datetime'2026-11-25T18:00')", nil},
		{"Showtime ge datetime'2026-11-25T18:00", nil},

		// Refused: literals that are no datetime.
		{"Showtime ge datetime'2026-11-25'", nil},
		{"Showtime ge datetime'2026-11-25T18'", nil},
		{"Showtime ge datetime'2026-11-25 18:00'", nil},
		{"Showtime ge datetime'2026-11-25t18:00'", nil},
		{"Showtime ge datetime'2026-11-25T18:00:00Z'", nil},
		{"Showtime ge datetime'2026-11-25T18:00:00+01:00'", nil},
		{"Showtime ge datetime'2026-11-25T18:00:00.'", nil},
		{"Showtime ge datetime'2026-11-25T18:00:00.12345678'", nil},
		{"Showtime ge datetime'2026-11-25T18:00.5'", nil},
		{"Showtime ge datetime'2026-13-25T18:00'", nil},
		{"Showtime ge datetime'2026-02-29T18:00'", nil},
		{"Showtime ge datetime'2026-11-31T18:00'", nil},
		{"Showtime ge datetime'2026-11-00T18:00'", nil},
		{"Showtime ge datetime'2026-11-25T24:00'", nil},
		{"Showtime ge datetime'2026-11-25T18:60'", nil},
		{"Showtime ge datetime'2026-11-25T18:00:60'", nil},
		{"Showtime ge datetime'0000-01-01T00:00'", nil},
		{"Showtime ge datetime'26-11-25T18:00'", nil},
		{"Showtime ge datetime'2026-1-25T18:00:00'", nil},
		{"Showtime ge datetime'+026-11-25T18:00'", nil},
		{"Showtime ge datetime''", nil},
	}
	for _, tt := range tests {
		f, err := parseFilter(tt.in)
		if tt.want == nil {
			if err == nil {
				t.Errorf("parseFilter(%q) = %+v, want an error", tt.in, f)
			}
			continue
		}
		if err != nil || f.ids != nil || !slices.EqualFunc(f.window, tt.want, slices.Equal[[]bound]) {
			t.Errorf("parseFilter(%q) = %+v, %v; want window %+v", tt.in, f, err, tt.want)
		}
	}

	for in, want := range map[string]bool{
		"Showtime ge datetime'2026-11-25T18:00'": true,
		"(Showtime)":                             true,
		"ID eq 'x' and Showtime":                 true,
		"ID eq 'Showtime'":                       false,
		"ID eq 'it''s Showtime'":                 false,
		"ID eq 'unterminated Showtime":           false,
		"Showtimes ge 1":                         false,
		"showtime ge 1":                          false,
		"ID eq '1001-1'":                         false,
		"":                                       false,
	} {
		if got := mentionsShowtime(in); got != want {
			t.Errorf("mentionsShowtime(%q) = %v, want %v", in, got, want)
		}
	}
}

// The tests of windows use ShowsPerDay 8, which puts a showing near 18:30
// local time on every screen, at the fixed instant start.

func TestWindow(t *testing.T) {
	s, ts, _ := MustServer(t, Config{Seed: 5, ShowsPerDay: 8, PageSize: NoPaging})
	all := s.Sessions()

	check := func(t *testing.T, filter string, want []SessionInfo) {
		t.Helper()
		for _, esc := range []func(string) string{escapeAsClient, url.PathEscape, url.QueryEscape} {
			path := base + "Sessions?" + seatSelect + "&$filter=" + esc(filter)
			f := mustFeed(t, ts, path)
			if got := ids(f.Value); !slices.Equal(got, infoIDs(want)) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("GET %s:\n ids %q\nwant %q", path, got, infoIDs(want))
			}
			for i, row := range f.Value {
				x := want[i]
				if len(row) != 4 || row["SeatsAvailable"] != float64(x.SeatsAvailable) ||
					row["SoldoutStatus"] != float64(x.SoldoutStatus) || row["Status"] != float64(x.StatusCode) {
					t.Fatalf("row %v, want %+v with exactly the $select's fields", row, x)
				}
			}
			if f.NextLink != "" {
				t.Errorf("unpaged window has a nextLink %s", f.NextLink)
			}
		}
	}

	t.Run("the warmer's window", func(t *testing.T) {
		from, to := "2026-11-25T18:00:00", "2026-11-25T19:20:00"
		want := inWindow(all, func(w string) bool { return w >= from && w < to })
		if len(want) < 5 {
			t.Fatalf("only %d sessions in [%s, %s): the test needs more", len(want), from, to)
		}
		check(t, windowFilter(from, to), want)
	})

	t.Run("every day ahead", func(t *testing.T) {
		for d := range 3 {
			day := start.AddDate(0, 0, d).Format("2006-01-02")
			from, to := day+"T12:30:00", day+"T21:05:00"
			want := inWindow(all, func(w string) bool { return w >= from && w < to })
			if len(want) == 0 {
				t.Fatalf("no sessions on %s", day)
			}
			check(t, windowFilter(from, to), want)
		}
	})

	t.Run("one bound", func(t *testing.T) {
		lo := "2026-11-29T00:00:00"
		check(t, "Showtime ge datetime'"+lo+"'", inWindow(all, func(w string) bool { return w >= lo }))
		check(t, "Showtime lt datetime'"+lo+"'", inWindow(all, func(w string) bool { return w < lo }))
	})

	t.Run("nothing in it", func(t *testing.T) {
		check(t, windowFilter("2031-01-01T00:00", "2031-01-02T00:00"), nil)
		check(t, windowFilter("2026-11-26T19:00", "2026-11-26T18:00"), nil)
	})

	t.Run("bounds", func(t *testing.T) {
		// A showtime several sessions share, and the sessions on either
		// side of it.
		count := map[string]int{}
		for _, x := range all {
			count[wall(x)]++
		}
		var at string
		for _, x := range all {
			if count[wall(x)] >= 2 && wall(x) > "2026-11-26" {
				at = wall(x)
				break
			}
		}
		if at == "" {
			t.Fatal("no showtime shared by two sessions")
		}
		short := at[:16] // the same instant as hh:mm
		tests := []struct {
			filter string
			keep   func(w string) bool
		}{
			{"Showtime ge datetime'" + at + "'", func(w string) bool { return w >= at }},
			{"Showtime gt datetime'" + at + "'", func(w string) bool { return w > at }},
			{"Showtime le datetime'" + at + "'", func(w string) bool { return w <= at }},
			{"Showtime lt datetime'" + at + "'", func(w string) bool { return w < at }},
			{"Showtime ge datetime'" + short + "'", func(w string) bool { return w >= at }},
			{"Showtime le datetime'" + short + "'", func(w string) bool { return w <= at }},
			// A fraction past the second: the showtime is before it.
			{"Showtime ge datetime'" + at + ".0000001'", func(w string) bool { return w > at }},
			{"Showtime gt datetime'" + at + ".5'", func(w string) bool { return w > at }},
			{"Showtime le datetime'" + at + ".9999999'", func(w string) bool { return w <= at }},
			{"Showtime lt datetime'" + at + ".0000001'", func(w string) bool { return w <= at }},
			{"Showtime lt datetime'" + at + ".000'", func(w string) bool { return w < at }},
			// The one instant, as a closed and as a half-open range.
			{"Showtime ge datetime'" + at + "' and Showtime le datetime'" + at + "'", func(w string) bool { return w == at }},
			{"Showtime ge datetime'" + at + "' and Showtime lt datetime'" + at + "'", func(string) bool { return false }},
			{"Showtime gt datetime'" + at + "' and Showtime le datetime'" + at + "'", func(string) bool { return false }},
		}
		for _, tt := range tests {
			t.Run(tt.filter, func(t *testing.T) {
				check(t, tt.filter, inWindow(all, tt.keep))
			})
		}
		if n := len(inWindow(all, func(w string) bool { return w == at })); n < 2 {
			t.Errorf("%d sessions at %s, want 2 or more", n, at)
		}
	})

	t.Run("fields and order as the full list", func(t *testing.T) {
		from, to := "2026-11-26T11:00", "2026-11-26T23:00"
		f := mustFeed(t, ts, base+"Sessions?$filter="+escapeAsClient(windowFilter(from, to)))
		full := map[string]map[string]any{}
		var order []string
		for _, row := range mustFeed(t, ts, base+"Sessions").Value {
			full[row["ID"].(string)] = row
			order = append(order, row["ID"].(string))
		}
		if len(f.Value) == 0 {
			t.Fatal("empty window")
		}
		last := -1
		for _, row := range f.Value {
			id := row["ID"].(string)
			want, ok := full[id]
			if !ok || fmt.Sprint(row) != fmt.Sprint(want) {
				t.Fatalf("window row %v\nfull list's %v", row, want)
			}
			i := slices.Index(order, id)
			if i <= last {
				t.Fatalf("%s out of the list's order", id)
			}
			last = i
		}
	})

	t.Run("a moved session moves in and out", func(t *testing.T) {
		var x SessionInfo
		for _, y := range all {
			if wall(y) > "2026-11-27T12:00" && wall(y) < "2026-11-27T16:00" {
				x = y
				break
			}
		}
		if x.ID == "" {
			t.Fatal("no session on the 27th afternoon")
		}
		// Moved to 09:30 wall time the next morning, where nothing else is.
		defer s.Restore(x.ID)
		s.MoveSession(x.ID, time.Date(2026, 11, 28, 9, 30, 0, 0, x.Showtime.Location()))
		got := ids(mustFeed(t, ts, windowPath(windowFilter("2026-11-28T09:00", "2026-11-28T10:00"))).Value)
		if !slices.Equal(got, []string{x.ID}) {
			t.Errorf("window after the move: %q, want [%s]", got, x.ID)
		}
		old := windowPath(windowFilter(wall(x), wall(x)[:14]+"59:59"))
		if slices.Contains(ids(mustFeed(t, ts, old).Value), x.ID) {
			t.Errorf("moved session still in its old window")
		}
		s.Restore(x.ID)
		if !slices.Contains(ids(mustFeed(t, ts, old).Value), x.ID) {
			t.Errorf("restored session not back in its window")
		}
	})
}

// A cinema's showtimes are compared on its own wall time, whatever its
// zone: the same wall window holds showings hours apart in UTC, and a
// showing in the window's span of UTC but not of wall time is out.
func TestWindowZones(t *testing.T) {
	s, ts, _ := MustServer(t, Config{Seed: 5, ShowsPerDay: 8, PageSize: NoPaging})
	all := s.Sessions()
	from, to := "2026-11-26T18:00:00", "2026-11-26T19:20:00"
	got := ids(mustFeed(t, ts, windowPath(windowFilter(from, to))).Value)

	offsets := map[int]bool{}
	for _, x := range all {
		w := wall(x)
		in := w >= from && w < to
		if in != slices.Contains(got, x.ID) {
			t.Errorf("%s at %s (%s): in the answer %v, want %v", x.ID, w, x.Showtime.Location(), !in, in)
		}
		if in {
			_, off := x.Showtime.Zone()
			offsets[off] = true
		}
	}
	if len(offsets) < 3 {
		t.Errorf("the window holds cinemas of %d UTC offsets, want 3 or more", len(offsets))
	}

	// Sessions whose UTC instant is in the window read as UTC, but whose
	// wall time is not: a server comparing instants would send them.
	lo, _ := time.Parse(wallFormat, from)
	hi, _ := time.Parse(wallFormat, to)
	misread := 0
	for _, x := range all {
		u := x.Showtime.UTC()
		if !u.Before(lo) && u.Before(hi) && wall(x) != u.Format(wallFormat) {
			misread++
			if slices.Contains(got, x.ID) {
				t.Errorf("%s at %s wall, %s UTC: in the window by its UTC time", x.ID, wall(x), u.Format(wallFormat))
			}
		}
	}
	if misread == 0 {
		t.Error("no session away from UTC in the window's UTC span: the test proves nothing")
	}
}

func TestWindowPaging(t *testing.T) {
	s, ts, _ := MustServer(t, Config{Seed: 5, ShowsPerDay: 8, PageSize: 7})
	from, to := "2026-11-26T10:00", "2026-11-26T20:00"
	want := infoIDs(inWindow(s.Sessions(), func(w string) bool { return w >= from+":00" && w < to+":00" }))
	if len(want) < 30 {
		t.Fatalf("%d sessions in the window, want 30 or more", len(want))
	}
	filter := windowFilter(from, to)
	for _, sel := range []string{seatSelect, "$select=ID,SeatsAvailable,SoldoutStatus", "$select=ID,SeatsAvailable"} {
		t.Run(sel, func(t *testing.T) {
			s.ResetRequests()
			rows, pages := windowPages(t, ts, base+"Sessions?"+sel+"&$filter="+escapeAsClient(filter), filter, sel)
			wantKeys := len(strings.Split(strings.TrimPrefix(sel, "$select="), ","))
			for _, row := range rows {
				if len(row) != wantKeys {
					t.Fatalf("row %v: want the %d fields of %s", row, wantKeys, sel)
				}
			}
			got := ids(rows)
			if !slices.Equal(got, want) {
				t.Errorf("paged window:\n %q\nwant %q", got, want)
			}
			if wantPages := (len(want) + 6) / 7; pages != wantPages {
				t.Errorf("%d pages, want %d", pages, wantPages)
			}
			if n := s.Requests()[EndpointWindow]; n != int64(pages) {
				t.Errorf("Requests()[window] = %d, want %d (one per page)", n, pages)
			}
			if n := s.Requests()[EndpointSeats] + s.Requests()[EndpointSessions]; n != 0 {
				t.Errorf("the window's pages counted %d times as seat checks or lists", n)
			}
		})
	}

	t.Run("$top and $skip", func(t *testing.T) {
		f := mustFeed(t, ts, windowPath(filter)+"&$skip=3&$top=5")
		if got := ids(f.Value); !slices.Equal(got, want[3:8]) || f.NextLink != "" {
			t.Errorf("$skip=3&$top=5: %q (next %q), want %q", got, f.NextLink, want[3:8])
		}
	})
}

func TestWindowRefused(t *testing.T) {
	s, ts, _ := MustServer(t, Config{RefuseWindows: true})
	const msg = "The query parameter '$filter' is not supported: filtering on Showtime is not allowed."
	for _, filter := range []string{
		windowFilter("2026-11-25T18:00:00", "2026-11-25T19:20:00"),
		"Showtime gt datetime'2026-11-25T18:00'",
		"Showtime eq 1", // refused as a window, whatever its shape
	} {
		status, _, body := get(t, ts, windowPath(filter))
		var e struct {
			Err struct {
				Message struct{ Value string } `json:"message"`
			} `json:"odata.error"`
		}
		if err := json.Unmarshal(body, &e); status != http.StatusBadRequest || err != nil || e.Err.Message.Value != msg {
			t.Errorf("%s: status %d, body %s; want 400 %q", filter, status, body, msg)
		}
	}
	id := s.Sessions()[0].ID
	if f := mustFeed(t, ts, seatsPath(id)); len(f.Value) != 1 {
		t.Errorf("seat check with RefuseWindows: %d rows, want 1", len(f.Value))
	}
	mustFeed(t, ts, base+"Sessions")
	if got := s.Requests(); got[EndpointWindow] != 3 || got[EndpointSeats] != 1 || got[EndpointSessions] != 1 {
		t.Errorf("Requests() = %v, want 3 windows, 1 seat check, 1 list", got)
	}
}

// Filters the window does not take are refused as other unsupported
// filters are: 400 with an OData error.
func TestWindowBadFilters(t *testing.T) {
	s, ts, _ := MustServer(t, Config{})
	id := s.Sessions()[0].ID
	for _, filter := range []string{
		"Showtime ge datetime'2026-11-25T18:00' and ID eq '" + id + "'",
		"ID eq '" + id + "' or Showtime ge datetime'2026-11-25T18:00'",
		"Showtime ge datetime'2026-11-25T18:00' and Showtime lt datetime'2026-11-25T19:00' and Showtime lt datetime'2026-11-25T18:30'",
		"Showtime eq datetime'2026-11-25T18:00'",
		"Showtime ge datetime'2026-11-25T18:00' and SeatsAvailable gt 0",
		"Showtime ge datetime'2026-11-25T25:00'",
		"Showtime ge '2026-11-25T18:00'",
	} {
		status, _, body := get(t, ts, windowPath(filter))
		if status != http.StatusBadRequest || !bytes.Contains(body, []byte(`"odata.error"`)) ||
			!bytes.Contains(body, []byte("The query parameter '$filter' is not supported: ")) {
			t.Errorf("%s: status %d, body %s; want 400 with an OData error", filter, status, body)
		}
	}
	// Showtime is a property of Sessions only.
	for _, set := range []string{"Cinemas", "ScheduledFilms"} {
		status, _, body := get(t, ts, base+set+"?$filter="+escapeAsClient("Showtime ge datetime'2026-11-25T18:00'"))
		if status != http.StatusBadRequest || !json.Valid(body) {
			t.Errorf("%s with a window: status %d, body %s; want 400", set, status, body)
		}
	}
	if got := s.Requests(); got[EndpointWindow] != 7 || got[EndpointSeats] != 0 {
		t.Errorf("Requests() = %v, want the 7 bad windows counted as windows", got)
	}
}

// A failure on EndpointWindow fails the window queries and nothing else;
// one on EndpointSeats leaves the windows alone.
func TestWindowFailures(t *testing.T) {
	window := windowPath(windowFilter("2026-11-25T18:00:00", "2026-11-25T19:20:00"))
	tests := []struct {
		name   string
		f      Failure
		status int
		body   string // "" when not checked
	}{
		{"400", Failure{Mode: FailStatus, Status: 400}, 400, ""},
		{"503", Failure{Mode: FailStatus, Status: 503}, 503, ""},
		{"rate limited", Failure{Mode: FailRateLimit, RetryAfter: 2 * time.Second}, 429, ""},
		{"empty", Failure{Mode: FailEmpty}, 200, `{"value":[]}`},
		{"slow", Failure{Mode: FailSlow, Delay: 150 * time.Millisecond}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts, _ := MustServer(t, Config{ShowsPerDay: 8})
			seat := seatsPath(s.Sessions()[0].ID)
			tt.f.Endpoint, tt.f.Count = EndpointWindow, -1
			s.Fail(tt.f)
			for range 2 {
				// Neither the seat checks nor the lists are touched.
				for _, path := range []string{seat, base + "Sessions", base + "Cinemas"} {
					if f := mustFeed(t, ts, path); len(f.Value) == 0 {
						t.Errorf("GET %s: empty", path)
					}
				}
				t0 := time.Now()
				status, h, body := get(t, ts, window)
				if status != tt.status || (tt.body != "" && string(body) != tt.body) {
					t.Errorf("window: %d %.80s, want %d %s", status, body, tt.status, tt.body)
				}
				switch tt.f.Mode {
				case FailRateLimit:
					if h.Get("Retry-After") != "2" {
						t.Errorf("Retry-After %q, want 2", h.Get("Retry-After"))
					}
				case FailSlow:
					var f feed
					if d := time.Since(t0); d < tt.f.Delay || json.Unmarshal(body, &f) != nil || len(f.Value) == 0 {
						t.Errorf("slow window: %v, %d rows; want %v or more and the rows", d, len(f.Value), tt.f.Delay)
					}
				}
			}
			if got := s.Requests(); got[EndpointWindow] != 2 || got[EndpointSeats] != 2 || got[EndpointSessions] != 2 {
				t.Errorf("Requests() = %v", got)
			}
			s.ClearFailures()
			if status, _, _ := get(t, ts, window); status != 200 {
				t.Errorf("after ClearFailures: window status %d", status)
			}
		})
	}

	t.Run("seat failures leave windows alone", func(t *testing.T) {
		s, ts, _ := MustServer(t, Config{ShowsPerDay: 8})
		s.Fail(Failure{Mode: FailStatus, Status: 503, Endpoint: EndpointSeats, Count: -1})
		s.Fail(Failure{Mode: FailEmpty, Endpoint: EndpointSessions, Count: -1})
		if f := mustFeed(t, ts, window); len(f.Value) == 0 {
			t.Error("window empty while seat checks and lists fail")
		}
		if status, _, _ := get(t, ts, seatsPath(s.Sessions()[0].ID)); status != 503 {
			t.Errorf("seat check: %d, want 503", status)
		}
	})
}

func TestWindowURLLength(t *testing.T) {
	window := windowPath(windowFilter("2026-11-25T18:00:00", "2026-11-25T19:20:00"))
	if len(window) > DefaultMaxURLLength/8 {
		t.Errorf("a window query is %d bytes long: far from the limit it should be", len(window))
	}
	_, ts, _ := MustServer(t, Config{ShowsPerDay: 8})
	mustFeed(t, ts, window)
	// Padded with a custom option to the limit, and one byte past it.
	pad := func(n int) string {
		p := window + "&pad="
		return p + strings.Repeat("x", n-len(p))
	}
	if status, _, body := get(t, ts, pad(DefaultMaxURLLength)); status != 200 {
		t.Errorf("window of %d bytes: %d %.100s, want 200", DefaultMaxURLLength, status, body)
	}
	if status, _, body := get(t, ts, pad(DefaultMaxURLLength+1)); status != http.StatusRequestURITooLong || !json.Valid(body) {
		t.Errorf("window of %d bytes: %d, want 414", DefaultMaxURLLength+1, status)
	}

	s, ts, _ := MustServer(t, Config{ShowsPerDay: 8, MaxURLLength: len(window) - 1})
	if status, _, _ := get(t, ts, window); status != http.StatusRequestURITooLong {
		t.Errorf("MaxURLLength %d: status %d, want 414", len(window)-1, status)
	}
	if got := s.Rows()[EndpointWindow]; got != (RowCount{Requests: 1}) {
		t.Errorf("a 414 cost %+v, want one request and no rows", got)
	}
}

func TestRows(t *testing.T) {
	s, ts, _ := MustServer(t, Config{ShowsPerDay: 8, PageSize: 50})
	all := s.Sessions()
	from, to := "2026-11-26T10:00", "2026-11-26T20:00"
	inWin := len(inWindow(all, func(w string) bool { return w >= from+":00" && w < to+":00" }))
	if inWin <= 50 {
		t.Fatalf("%d sessions in the window, want more than a page", inWin)
	}
	a, b := all[3].ID, all[40].ID

	mustFeed(t, ts, base+"Sessions")                                                         // all scanned, 50 returned
	mustFeed(t, ts, base+"Sessions?$skip="+fmt.Sprint(len(all)-10))                          // all scanned, 10 returned
	mustFeed(t, ts, windowPath(windowFilter(from, to)))                                      // all scanned, 50 returned
	mustFeed(t, ts, windowPath(windowFilter(from, to))+"&$skip=50")                          // all scanned, the rest up to 50
	mustFeed(t, ts, seatsPath(a, b, a, "9999-1"))                                            // 3 lookups, 2 returned
	mustFeed(t, ts, base+"Cinemas")                                                          // 6 and 6
	get(t, ts, base+"Sessions?$select=Nope&$filter="+escapeAsClient(windowFilter(from, to))) // 400: nothing scanned
	s.Fail(Failure{Mode: FailStatus, Endpoint: EndpointWindow})
	get(t, ts, windowPath(windowFilter(from, to))) // 500: nothing scanned

	n := int64(len(all))
	want := map[string]RowCount{
		EndpointCinemas:  {Requests: 1, Scanned: 6, Returned: 6},
		EndpointFilms:    {},
		EndpointSessions: {Requests: 2, Scanned: 2 * n, Returned: 50 + 10},
		EndpointSeats:    {Requests: 1, Scanned: 3, Returned: 2},
		EndpointWindow:   {Requests: 4, Scanned: 2 * n, Returned: 50 + int64(min(inWin-50, 50))},
		EndpointOther:    {},
	}
	if got := s.Rows(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Rows() =\n %v\nwant %v", got, want)
	}
	for ep, rc := range s.Rows() {
		if rc.Requests != s.Requests()[ep] {
			t.Errorf("Rows()[%s].Requests = %d, Requests() says %d", ep, rc.Requests, s.Requests()[ep])
		}
	}
	s.ResetRequests()
	for ep, rc := range s.Rows() {
		if rc != (RowCount{}) {
			t.Errorf("after ResetRequests: Rows()[%s] = %+v", ep, rc)
		}
	}
}

func TestRowCost(t *testing.T) {
	const cost = 2 * time.Millisecond
	cfg := Config{Cinemas: 2, Screens: 2, ShowsPerDay: 4, Days: 2, PageSize: 10, RowCost: cost}
	s, ts, _ := MustServer(t, cfg)
	all := s.Sessions()
	if len(all) < 20 {
		t.Fatalf("%d sessions, want 20 or more", len(all))
	}
	// timed answers a request's time and its cost to the endpoint ep.
	timed := func(ep, path string) (time.Duration, RowCount) {
		before := s.Rows()[ep]
		t0 := time.Now()
		mustFeed(t, ts, path)
		d := time.Since(t0)
		after := s.Rows()[ep]
		return d, RowCount{Requests: after.Requests - before.Requests, Scanned: after.Scanned - before.Scanned, Returned: after.Returned - before.Returned}
	}

	window := windowPath(windowFilter("2026-11-25T00:00", "2027-01-01T00:00"))
	d, rc := timed(EndpointWindow, window)
	if rc.Scanned != int64(len(all)) || rc.Returned != 10 {
		t.Errorf("window cost %+v, want %d scanned and 10 returned", rc, len(all))
	}
	if min := cost * time.Duration(rc.Scanned+rc.Returned); d < min {
		t.Errorf("window answered in %v, want %v or more (RowCost × %d rows)", d, min, rc.Scanned+rc.Returned)
	}

	d2, rc2 := timed(EndpointSeats, seatsPath(all[0].ID))
	if rc2.Scanned != 1 || rc2.Returned != 1 {
		t.Errorf("seat check cost %+v, want 1 scanned and 1 returned", rc2)
	}
	if min := 2 * cost; d2 < min {
		t.Errorf("seat check answered in %v, want %v or more", d2, min)
	}

	t.Run("honours the context", func(t *testing.T) {
		s, ts, _ := MustServer(t, Config{RowCost: time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+window, nil)
		t0 := time.Now()
		_, err := ts.Client().Do(req)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want a deadline", err)
		}
		ts.Close() // waits for the handler: it must not sleep on
		if d := time.Since(t0); d > 5*time.Second {
			t.Errorf("handler went on for %v after the client left", d)
		}
		if rc := s.Rows()[EndpointWindow]; rc.Scanned == 0 || rc.Returned != 0 {
			t.Errorf("an abandoned window cost %+v, want its scan and nothing returned", rc)
		}
	})
}

// span is one window of wall time, [from, to), as the warmer asks for it.
type span struct{ from, to string }

// windowsFilter is the warmer's $filter for several windows at once: one
// parenthesized group per window, joined by "or".
func windowsFilter(spans ...span) string {
	var groups []string
	for _, sp := range spans {
		groups = append(groups, "("+windowFilter(sp.from, sp.to)+")")
	}
	return strings.Join(groups, " or ")
}

// inSpans keeps the wall times in any of the spans, written to the second.
func inSpans(spans ...span) func(w string) bool {
	return func(w string) bool {
		for _, sp := range spans {
			if w >= sp.from && w < sp.to {
				return true
			}
		}
		return false
	}
}

// Several windows in one query: the answer is the union of the windows,
// each row once, in the list's order.
func TestWindowGroups(t *testing.T) {
	s, ts, _ := MustServer(t, Config{Seed: 5, ShowsPerDay: 8, PageSize: NoPaging})
	all := s.Sessions()

	// check asks for filter, escaped each way a client may, and wants
	// exactly the ids of want, with the rows' fields, and one scan of the
	// listed sessions per request whatever the number of groups.
	check := func(t *testing.T, filter string, want []SessionInfo) {
		t.Helper()
		for _, esc := range []func(string) string{escapeAsClient, url.PathEscape, url.QueryEscape} {
			path := base + "Sessions?" + seatSelect + "&$filter=" + esc(filter)
			before := s.Rows()[EndpointWindow]
			f := mustFeed(t, ts, path)
			after := s.Rows()[EndpointWindow]
			if got := ids(f.Value); !slices.Equal(got, infoIDs(want)) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("GET %s:\n ids %q\nwant %q", path, got, infoIDs(want))
			}
			for i, row := range f.Value {
				x := want[i]
				if len(row) != 4 || row["SeatsAvailable"] != float64(x.SeatsAvailable) ||
					row["SoldoutStatus"] != float64(x.SoldoutStatus) || row["Status"] != float64(x.StatusCode) {
					t.Fatalf("row %v, want %+v with exactly the $select's fields", row, x)
				}
			}
			if f.NextLink != "" {
				t.Errorf("unpaged windows have a nextLink %s", f.NextLink)
			}
			cost := RowCount{Requests: after.Requests - before.Requests, Scanned: after.Scanned - before.Scanned, Returned: after.Returned - before.Returned}
			if wantCost := (RowCount{Requests: 1, Scanned: int64(len(all)), Returned: int64(len(want))}); cost != wantCost {
				t.Errorf("GET %s cost %+v, want %+v: every listed session scanned once", path, cost, wantCost)
			}
		}
	}
	// nonEmpty fails the test when a span holds no session: it would
	// prove nothing.
	nonEmpty := func(t *testing.T, spans ...span) {
		t.Helper()
		for _, sp := range spans {
			if len(inWindow(all, inSpans(sp))) == 0 {
				t.Fatalf("no session in [%s, %s): the test needs some", sp.from, sp.to)
			}
		}
	}

	t.Run("two windows", func(t *testing.T) {
		spans := []span{{"2026-11-26T11:40:00", "2026-11-26T13:00:00"}, {"2026-11-26T19:40:00", "2026-11-26T23:00:00"}}
		nonEmpty(t, spans...)
		want := inWindow(all, inSpans(spans...))
		check(t, windowsFilter(spans...), want)
		// The same windows, the other way round: the same rows, in the
		// list's order.
		check(t, windowsFilter(spans[1], spans[0]), want)
	})

	t.Run("three windows", func(t *testing.T) {
		spans := []span{
			{"2026-11-26T19:40:00", "2026-11-26T23:00:00"},
			{"2026-11-27T11:40:00", "2026-11-27T13:00:00"},
			{"2026-11-28T16:00:00", "2026-11-28T18:30:00"},
		}
		nonEmpty(t, spans...)
		want := inWindow(all, inSpans(spans...))
		check(t, windowsFilter(spans...), want)
		// One bound a group, and groups of one bound next to groups of two.
		lone := "Showtime lt datetime'2026-11-25T20:00' or (" + windowFilter(spans[1].from, spans[1].to) +
			") or Showtime ge datetime'2026-12-05T18:00'"
		check(t, lone, inWindow(all, func(w string) bool {
			return w < "2026-11-25T20:00:00" || inSpans(spans[1])(w) || w >= "2026-12-05T18:00:00"
		}))
	})

	t.Run("overlapping windows give each row once", func(t *testing.T) {
		a, b := span{"2026-11-26T10:00:00", "2026-11-26T14:00:00"}, span{"2026-11-26T12:00:00", "2026-11-26T16:00:00"}
		if len(inWindow(all, func(w string) bool { return inSpans(a)(w) && inSpans(b)(w) })) == 0 {
			t.Fatal("the windows share no session: the test proves nothing")
		}
		want := inWindow(all, inSpans(span{a.from, b.to}))
		check(t, windowsFilter(a, b), want)
		check(t, windowsFilter(a, b, a, b), want)
		inner := span{"2026-11-26T12:30:00", "2026-11-26T13:30:00"}
		check(t, windowsFilter(a, inner), inWindow(all, inSpans(a)))
		check(t, windowsFilter(inner, a), inWindow(all, inSpans(a)))
	})

	t.Run("and binds tighter than or", func(t *testing.T) {
		a, b := span{"2026-11-26T11:40:00", "2026-11-26T13:00:00"}, span{"2026-11-26T19:40:00", "2026-11-26T23:00:00"}
		nonEmpty(t, a, b)
		// A and B or C and D is (A and B) or (C and D).
		bare := windowFilter(a.from, a.to) + " or " + windowFilter(b.from, b.to)
		check(t, bare, inWindow(all, inSpans(a, b)))
		check(t, "("+bare+")", inWindow(all, inSpans(a, b)))

		// A or B and C is A or (B and C), not (A or B) and C: read the
		// second way, it would leave out the sessions after late, which
		// are past b.to.
		late := "2026-11-28T00:00:00"
		filter := "Showtime ge datetime'" + late + "' or " + windowFilter(b.from, b.to)
		want := inWindow(all, func(w string) bool { return w >= late || inSpans(b)(w) })
		wrong := inWindow(all, func(w string) bool { return (w >= late || w >= b.from) && w < b.to })
		if slices.Equal(infoIDs(want), infoIDs(wrong)) {
			t.Fatal("both readings give the same rows: the test proves nothing")
		}
		check(t, filter, want)

		// B and C or A is (B and C) or A, not B and (C or A): read the
		// second way, it would leave out the sessions before early, which
		// are before b.from.
		early := "2026-11-26T09:00:00"
		filter = windowFilter(b.from, b.to) + " or Showtime lt datetime'" + early + "'"
		want = inWindow(all, func(w string) bool { return inSpans(b)(w) || w < early })
		wrong = inWindow(all, func(w string) bool { return w >= b.from && (w < b.to || w < early) })
		if slices.Equal(infoIDs(want), infoIDs(wrong)) {
			t.Fatal("both readings give the same rows: the test proves nothing")
		}
		check(t, filter, want)
	})

	t.Run("parentheses", func(t *testing.T) {
		a, b := span{"2026-11-26T11:40:00", "2026-11-26T13:00:00"}, span{"2026-11-26T19:40:00", "2026-11-26T23:00:00"}
		want := inWindow(all, inSpans(a, b))
		for _, filter := range []string{
			"((" + windowFilter(a.from, a.to) + ") or (" + windowFilter(b.from, b.to) + "))",
			"(Showtime ge datetime'" + a.from + "') and (Showtime lt datetime'" + a.to + "') or ((Showtime ge datetime'" + b.from + "') and Showtime lt datetime'" + b.to + "')",
			"(" + windowFilter(a.from, a.to) + ")or(" + windowFilter(b.from, b.to) + ")",
			"  ( ( " + windowFilter(a.from, a.to) + " ) )  or\t" + windowFilter(b.from, b.to) + " ",
		} {
			check(t, filter, want)
		}
	})

	t.Run("windows with nothing in them", func(t *testing.T) {
		a := span{"2026-11-26T11:40:00", "2026-11-26T13:00:00"}
		check(t, windowsFilter(span{"2031-01-01T00:00:00", "2031-01-02T00:00:00"}, span{"2026-11-26T19:00:00", "2026-11-26T18:00:00"}), nil)
		check(t, windowsFilter(span{"2031-01-01T00:00:00", "2031-01-02T00:00:00"}, a), inWindow(all, inSpans(a)))
	})
}

// Paging a union of windows: every row once over the pages, in the list's
// order, each nextLink keeping the $filter.
func TestWindowGroupsPaging(t *testing.T) {
	s, ts, _ := MustServer(t, Config{Seed: 5, ShowsPerDay: 8, PageSize: 7})
	all := s.Sessions()
	spans := []span{
		{"2026-11-26T11:40:00", "2026-11-26T13:00:00"},
		{"2026-11-26T19:40:00", "2026-11-26T23:00:00"},
		{"2026-11-27T12:00:00", "2026-11-27T15:00:00"},
	}
	want := infoIDs(inWindow(all, inSpans(spans...)))
	if len(want) < 30 {
		t.Fatalf("%d sessions in the windows, want 30 or more", len(want))
	}
	for _, filter := range []string{
		windowsFilter(spans...),
		// Without parentheses, and overlapping the first window twice.
		windowFilter(spans[0].from, spans[0].to) + " or " + windowFilter(spans[1].from, spans[1].to) + " or " +
			windowFilter(spans[2].from, spans[2].to) + " or " + windowFilter("2026-11-26T12:00:00", "2026-11-26T12:40:00"),
	} {
		t.Run(filter, func(t *testing.T) {
			s.ResetRequests()
			rows, pages := windowPages(t, ts, windowPath(filter), filter, seatSelect)
			got := ids(rows)
			if !slices.Equal(got, want) {
				t.Errorf("paged windows:\n %q\nwant %q", got, want)
			}
			if wantPages := (len(want) + 6) / 7; pages != wantPages {
				t.Errorf("%d pages, want %d", pages, wantPages)
			}
			wantRows := RowCount{Requests: int64(pages), Scanned: int64(pages * len(all)), Returned: int64(len(want))}
			if got := s.Rows()[EndpointWindow]; got != wantRows {
				t.Errorf("Rows()[window] = %+v, want %+v (each page scans the list once)", got, wantRows)
			}
			if n := s.Requests()[EndpointSeats] + s.Requests()[EndpointSessions]; n != 0 {
				t.Errorf("the windows' pages counted %d times as seat checks or lists", n)
			}
		})
	}

	t.Run("$top and $skip", func(t *testing.T) {
		f := mustFeed(t, ts, windowPath(windowsFilter(spans...))+"&$skip=3&$top=5")
		if got := ids(f.Value); !slices.Equal(got, want[3:8]) || f.NextLink != "" {
			t.Errorf("$skip=3&$top=5: %q (next %q), want %q", got, f.NextLink, want[3:8])
		}
	})
}

// At most maxWindowGroups groups; each of one or two comparisons; no ID
// terms among them.
func TestWindowGroupsRefused(t *testing.T) {
	s, ts, _ := MustServer(t, Config{Seed: 5, ShowsPerDay: 8, PageSize: NoPaging, MaxURLLength: 1 << 20})
	all := s.Sessions()
	// hours is n one-hour windows, one a day at 11:00, 12:00... 22:00
	// wall time from the 26th.
	hours := func(n int) []span {
		var spans []span
		for i := range n {
			day := time.Date(2026, 11, 26+i/12, 11+i%12, 0, 0, 0, time.UTC)
			spans = append(spans, span{day.Format(wallFormat), day.Add(time.Hour).Format(wallFormat)})
		}
		return spans
	}

	t.Run("100 windows", func(t *testing.T) {
		spans := hours(maxWindowGroups)
		want := inWindow(all, inSpans(spans...))
		if len(want) == 0 {
			t.Fatal("no session in the windows")
		}
		f := mustFeed(t, ts, windowPath(windowsFilter(spans...)))
		if got := ids(f.Value); !slices.Equal(got, infoIDs(want)) {
			t.Errorf("%d windows:\n %q\nwant %q", len(spans), got, infoIDs(want))
		}
	})

	refused := func(t *testing.T, filter, msg string) {
		t.Helper()
		before := s.Rows()[EndpointWindow]
		status, _, body := get(t, ts, windowPath(filter))
		if status != http.StatusBadRequest || !json.Valid(body) || !bytes.Contains(body, []byte(`"odata.error"`)) ||
			!bytes.Contains(body, []byte(msg)) {
			t.Errorf("%.200s: status %d, body %s; want 400 with an OData error %q", filter, status, body, msg)
		}
		if got := s.Rows()[EndpointWindow]; got != (RowCount{Requests: before.Requests + 1, Scanned: before.Scanned, Returned: before.Returned}) {
			t.Errorf("%.200s: Rows()[window] went from %+v to %+v, want one request and no rows", filter, before, got)
		}
	}

	t.Run("101 windows", func(t *testing.T) {
		refused(t, windowsFilter(hours(maxWindowGroups+1)...), "The node count limit of '100' has been exceeded: the filter names 101 windows.")
		// Also when the groups are single comparisons.
		var terms []string
		for _, sp := range hours(maxWindowGroups + 1) {
			terms = append(terms, "Showtime ge datetime'"+sp.from+"'")
		}
		refused(t, strings.Join(terms, " or "), "The node count limit of '100' has been exceeded")
	})

	const notSupported = "The query parameter '$filter' is not supported: "
	a, b := span{"2026-11-26T11:40:00", "2026-11-26T13:00:00"}, span{"2026-11-26T19:40:00", "2026-11-26T23:00:00"}
	id := all[0].ID
	tests := []struct{ name, filter string }{
		{"three comparisons in a group", windowFilter(a.from, a.to) + " or " + windowFilter(b.from, b.to) + " and Showtime lt datetime'2026-11-26T22:00'"},
		{"three comparisons in parentheses", "(" + windowFilter(a.from, a.to) + ") or ((" + windowFilter(b.from, b.to) + ") and Showtime lt datetime'2026-11-26T22:00')"},
		{"three comparisons in the first group", "Showtime ge datetime'2026-11-26T11:00' and " + windowFilter(a.from, a.to) + " or " + windowFilter(b.from, b.to)},
		{"or inside and", "(Showtime ge datetime'" + a.from + "' or Showtime ge datetime'" + b.from + "') and Showtime lt datetime'" + b.to + "'"},
		{"or inside and, on the right", "Showtime lt datetime'" + b.to + "' and (" + windowsFilter(a, b) + ")"},
		{"mixed with ID", windowsFilter(a, b) + " or ID eq '" + id + "'"},
		{"mixed with ID, first", "ID eq '" + id + "' or " + windowsFilter(a, b)},
		{"mixed with one comparison", "Showtime ge datetime'" + a.from + "' or ID eq '" + id + "'"},
		{"mixed with IDs in a group", "(ID eq '" + id + "' or ID eq '" + all[1].ID + "') or (" + windowFilter(a.from, a.to) + ")"},
		{"ID in a group", "(" + windowFilter(a.from, a.to) + ") or (Showtime ge datetime'" + b.from + "' and ID eq '" + id + "')"},
		{"another property in a group", "(" + windowFilter(a.from, a.to) + ") or (Showtime ge datetime'" + b.from + "' and SeatsAvailable gt 0)"},
		{"a dangling or", windowsFilter(a, b) + " or"},
		{"an empty group", windowsFilter(a, b) + " or ()"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { refused(t, tt.filter, notSupported) })
	}
	if n := s.Requests()[EndpointSeats]; n != 0 {
		t.Errorf("%d refused filters counted as seat checks, want them all as windows", n)
	}
}

// The URL limit, RefuseWindows and the failures of EndpointWindow apply to
// several windows as to one.
func TestWindowGroupsEndpoint(t *testing.T) {
	spans := []span{{"2026-11-26T11:40:00", "2026-11-26T13:00:00"}, {"2026-11-26T19:40:00", "2026-11-26T23:00:00"}}
	path := windowPath(windowsFilter(spans...))

	t.Run("RefuseWindows", func(t *testing.T) {
		s, ts, _ := MustServer(t, Config{RefuseWindows: true})
		status, _, body := get(t, ts, path)
		if status != http.StatusBadRequest || !bytes.Contains(body, []byte("filtering on Showtime is not allowed")) {
			t.Errorf("status %d, body %s; want 400, Showtime not allowed", status, body)
		}
		if got := s.Rows()[EndpointWindow]; got != (RowCount{Requests: 1}) {
			t.Errorf("Rows()[window] = %+v, want one request and no rows", got)
		}
	})

	t.Run("failures", func(t *testing.T) {
		s, ts, _ := MustServer(t, Config{ShowsPerDay: 8})
		s.Fail(Failure{Mode: FailStatus, Status: 503, Endpoint: EndpointWindow})
		if status, _, _ := get(t, ts, path); status != http.StatusServiceUnavailable {
			t.Errorf("status %d, want the window's 503", status)
		}
		if f := mustFeed(t, ts, path); len(f.Value) == 0 {
			t.Error("no rows once the failure is spent")
		}
		if got := s.Requests(); got[EndpointWindow] != 2 || got[EndpointSeats] != 0 || got[EndpointSessions] != 0 {
			t.Errorf("Requests() = %v, want 2 windows", got)
		}
	})

	t.Run("URL length", func(t *testing.T) {
		s, ts, _ := MustServer(t, Config{ShowsPerDay: 8, MaxURLLength: len(path)})
		mustFeed(t, ts, path)
		long := windowPath(windowsFilter(append(spans, span{"2026-11-27T11:40:00", "2026-11-27T13:00:00"})...))
		if status, _, body := get(t, ts, long); status != http.StatusRequestURITooLong || !json.Valid(body) {
			t.Errorf("windows of %d bytes, limit %d: status %d, want 414", len(long), len(path), status)
		}
		if got := s.Rows()[EndpointWindow]; got.Requests != 2 || got.Scanned != int64(len(s.Sessions())) {
			t.Errorf("Rows()[window] = %+v, want 2 requests and one scan: the 414 costs none", got)
		}
	})
}

// windowPages reads a window query from path to its last page, in pages
// of at most 7 rows (the tests' PageSize), each nextLink keeping the
// $filter and the $select (sel, with its "$select="), and returns the
// rows and the number of pages.
func windowPages(t *testing.T, ts *httptest.Server, path, filter, sel string) (rows []map[string]any, pages int) {
	t.Helper()
	for next := path; next != ""; pages++ {
		f := mustFeed(t, ts, next)
		if len(f.Value) > 7 {
			t.Fatalf("page of %d rows, PageSize 7", len(f.Value))
		}
		rows = append(rows, f.Value...)
		if next = f.NextLink; next != "" {
			u, err := url.Parse(next)
			if err != nil {
				t.Fatal(err)
			}
			if q := u.Query(); q.Get("$filter") != filter || q.Get("$select") != strings.TrimPrefix(sel, "$select=") {
				t.Fatalf("nextLink %s lost the $filter or the $select", next)
			}
		}
		if pages > 100 {
			t.Fatal("nextLink never ends")
		}
	}
	return rows, pages
}
