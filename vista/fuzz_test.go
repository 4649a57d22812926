package vista

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
)

// The fuzz targets feed one page body through the decoders, as the client
// does. Beyond not panicking, they check what a caller relies on: every row
// is either decoded or reported, a reported row names its list and index,
// and a decoded one carries its required fields.

func addFixtures(f *testing.F, names ...string) {
	for _, n := range names {
		f.Add(mustRead(f, n))
	}
}

// checkPage decodes body as a page of list and returns its rows, or nil
// when the envelope is refused (which must then be a *DecodeError at -1).
func checkPage(t *testing.T, list string, body []byte) []json.RawMessage {
	p, err := decodePage(list, body)
	if err == nil && !json.Valid(body) {
		t.Fatalf("decodePage read a page that is not JSON by encoding/json's rules")
	}
	if err != nil {
		de, ok := err.(*DecodeError)
		if !ok || de.Index != -1 || de.List != list || de.Error() == "" {
			t.Fatalf("decodePage error = %#v, want a *DecodeError for %s at -1", err, list)
		}
		if p.rows != nil || p.next != "" {
			t.Fatalf("decodePage returned rows or a link with an error")
		}
		return nil
	}
	return p.rows
}

func checkRowErrors(t *testing.T, list string, errs RowErrors, first, n int) {
	for _, e := range errs {
		if e.List != list || e.Index < first || e.Index >= first+n || e.Err == nil || e.Error() == "" {
			t.Fatalf("row error %#v out of place (list %s, rows %d..%d)", e, list, first, first+n-1)
		}
	}
}

func FuzzDecodeSessions(f *testing.F) {
	addFixtures(f, "sessions_page1.json", "sessions_page2.json")
	f.Add([]byte(`{"d":{"results":[{"ID":1,"CinemaId":2,"Showtime":"2026-03-29T02:30:00","SeatsAvailable":"1e2"}],"__next":"x"}}`))
	f.Add([]byte(`{"value":[{"ID":"1001-1","CinemaId":"1001","Showtime":"\/Date(1795636800000)\/","Status":7,"SalesChannels":";WWW;","AreaCategoryCodes":["1"]},` +
		`{"ID":"1001:sessions","CinemaId":"1001","Showtime":"/Date(1795633200000+0100)/","Status":"Closed"}]}`))
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	zone := func(cinemaID string) *time.Location {
		if cinemaID == "1002" {
			return nil // ParseLocal must cope with a nil zone too
		}
		return berlin
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rows := checkPage(t, "sessions", body)
		const first = 7
		got, errs := decodeSessions(rows, first, zone, []string{"SalesChannels", "AreaCategoryCodes"})
		if len(got)+len(errs) != len(rows) {
			t.Fatalf("%d rows gave %d sessions and %d errors", len(rows), len(got), len(errs))
		}
		checkRowErrors(t, "sessions", errs, first, len(rows))
		for _, s := range got {
			if s.ID == "" || s.CinemaID == "" || !json.Valid(s.Raw) {
				t.Fatalf("session without a required field: %+v", s)
			}
			// Whatever Vista sends, what is handed on is fit for a key and
			// bounded in size.
			if CheckID(s.ID) != nil || CheckID(s.CinemaID) != nil || (s.FilmID != "" && CheckID(s.FilmID) != nil) {
				t.Fatalf("session with an unsafe id: %q %q %q", s.ID, s.CinemaID, s.FilmID)
			}
			texts := append([]string{s.ScreenName, s.Status, strings.Join(s.Attributes, ",")}, s.Extra...)
			for _, v := range texts {
				if len(v) > MaxTextBytes {
					t.Fatalf("session %s with a value of %d bytes", s.ID, len(v))
				}
			}
			if !slices.Contains(keys.States[:], s.State) || len(s.Extra) != 2 {
				t.Fatalf("session %s: state %q, extra %q", s.ID, s.State, s.Extra)
			}
		}
	})
}

func FuzzDecodeFilms(f *testing.F) {
	addFixtures(f, "scheduled_films.json")
	f.Add([]byte(`{"value":[{"ScheduledFilmId":1,"CinemaId":1,"RunTime":120.0},{"ScheduledFilmId":"1","CinemaId":"0"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		rows := checkPage(t, "films", body)
		frs, errs := decodeFilmRows(rows, 0, nil)
		if len(frs)+len(errs) != len(rows) {
			t.Fatalf("%d rows gave %d films and %d errors", len(rows), len(frs), len(errs))
		}
		checkRowErrors(t, "films", errs, 0, len(rows))
		films := mergeFilms(frs)
		seen := make(map[string]bool)
		for _, fm := range films {
			if fm.ID == "" || seen[fm.ID] || fm.RunTimeMinutes < 0 {
				t.Fatalf("bad merged film %+v", fm)
			}
			seen[fm.ID] = true
			if !slices.IsSorted(fm.CinemaIDs) || len(slices.Compact(slices.Clone(fm.CinemaIDs))) != len(fm.CinemaIDs) {
				t.Fatalf("CinemaIDs %q not sorted and unique", fm.CinemaIDs)
			}
		}
		if len(seen) > len(frs) {
			t.Fatalf("%d films from %d rows", len(seen), len(frs))
		}
	})
}

func FuzzDecodeCinemas(f *testing.F) {
	addFixtures(f, "cinemas.json")
	f.Add([]byte(`{"value":[{"ID":1,"TimeZoneId":"Local"},{"ID":"2","TimeZoneId":"../../etc/passwd"},{"ID":"3","Latitude":-0.0}]}`))
	zones := Zones{Default: time.UTC, Overrides: map[string]*time.Location{"3": time.UTC}}
	resolve := func(id, tz string) *time.Location {
		loc, _ := zones.Resolve(id, tz)
		return loc
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rows := checkPage(t, "cinemas", body)
		got, errs := decodeCinemas(rows, 0, resolve, nil)
		if len(got)+len(errs) != len(rows) {
			t.Fatalf("%d rows gave %d cinemas and %d errors", len(rows), len(got), len(errs))
		}
		checkRowErrors(t, "cinemas", errs, 0, len(rows))
		for _, c := range got {
			if c.ID == "" || c.Location == nil {
				t.Fatalf("cinema without an ID or a zone: %+v", c)
			}
		}
	})
}

// FuzzScanners feeds the JSON scanners bytes that were never validated: the
// decoders only hand them valid JSON, but no input may make them panic or
// hand out a slice outside their input.
func FuzzScanners(f *testing.F) {
	for _, seed := range []string{`{"a":1,"b":[1,{"c":"}"}]}`, `[1,"x\"",{}]`, `{"a`, `[`, `{"a":}`, `"\`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, ok := objectMembers(nil, b, false)
		for _, m := range ms {
			if len(m.name) > len(b) || len(m.value) > len(b) {
				t.Fatalf("member %q=%q longer than its input", m.name, m.value)
			}
		}
		// Asked for arrays' elements too: no panic on any input, and on
		// valid JSON, which is all they are given, the same members and
		// the elements arrayElements finds in each array (the two skip
		// what is not JSON differently).
		withElems, okElems := objectMembers(nil, b, true)
		if json.Valid(b) {
			if ok != okElems || len(withElems) != len(ms) {
				t.Fatalf("%q: %d members, %d (%v) with their arrays' elements", b, len(ms), len(withElems), okElems)
			}
			for i, m := range withElems {
				if !bytes.Equal(m.name, ms[i].name) || !bytes.Equal(m.value, ms[i].value) {
					t.Fatalf("%q: member %d %q=%q, %q=%q with its elements", b, i, ms[i].name, ms[i].value, m.name, m.value)
				}
				if len(m.value) > 0 && m.value[0] == '[' {
					want, _ := arrayElements(nil, m.value)
					if !slices.EqualFunc(m.elems, want, bytes.Equal) {
						t.Fatalf("%q: elements %q of member %q, want %q", b, m.elems, m.name, want)
					}
				}
			}
		}
		es, _ := arrayElements(nil, b)
		for _, e := range es {
			if len(e) == 0 || len(e) > len(b) {
				t.Fatalf("element %q of %q", e, b)
			}
		}
		(&row{list: "sessions"}).load(0, b)
	})
}

// FuzzSkipString: on valid JSON, skipString ends a string where
// encoding/json does.
func FuzzSkipString(f *testing.F) {
	for _, seed := range []string{`"a"`, `"a\"b"`, `"a\\"`, `"a\\\"b"`, `"\\\\"`, `""`, `"\u0022"`, `"x\/y\n"`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v string
		if json.Unmarshal([]byte(s), &v) != nil || len(s) == 0 || s[0] != '"' || strings.TrimSpace(s) != s {
			return // not one JSON string, alone
		}
		b := []byte(s + `,"z"]`)
		if got := skipString(b, 0); got != len(s) {
			t.Fatalf("skipString(%q) = %d, want %d", b, got, len(s))
		}
	})
}

// TestSkipStringEightAtATime holds skipString, which looks at eight
// bytes a step, to a byte-at-a-time scan for the closing quote, from
// every start in random bytes that are mostly quotes, backslashes and
// their neighbours (in value and with the high bit set), of every
// length around the eight-byte steps.
func TestSkipStringEightAtATime(t *testing.T) {
	byteWise := func(b []byte, i int) int {
		escaped := false
		for j := i + 1; j < len(b); j++ {
			switch {
			case escaped:
				escaped = false
			case b[j] == '\\':
				escaped = true
			case b[j] == '"':
				return j + 1
			}
		}
		return len(b)
	}
	alphabet := []byte{'"', '\\', 'a', '!', '#', '[', ']', 0, 0xa2, 0xdc, 0xff}
	rng := rand.New(rand.NewPCG(19, 8))
	for range 20_000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			if rng.IntN(3) == 0 {
				b[i] = byte(rng.IntN(256))
			} else {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		for i := range b {
			if got, want := skipString(b, i), byteWise(b, i); got != want {
				t.Fatalf("skipString(%q, %d) = %d, want %d", b, i, got, want)
			}
		}
	}
}
