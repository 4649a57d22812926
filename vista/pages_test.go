package vista

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"
	"weak"
)

// TestPagesValidAsEncodingJSONSays: a page is read only if it is JSON by
// encoding/json's rules, whoever checks it first; one that is not fails
// whole, with encoding/json's syntax error saying where.
func TestPagesValidAsEncodingJSONSays(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	values := []string{
		deep(9998), deep(9999), `{"a":` + deep(9998) + `}`, `"[[[[` + strings.Repeat("[", 20000) + `"`,
		`"\xff"`, "\"\xff\xfe\"", `"\u00e9\ud800"`, `-0`, `1.5e+3`, `0.0E-0`, `{"a":[]}`, `[]`, `null`, `true`, "\"\u2028\"",
		`01`, `1.`, `.5`, `-`, `1e`, `+1`, `"a\qb"`, "\"a\x01b\"", `"\u12"`, `tru`, `nul`, `[1,]`, `{"a":1,}`, `{"a"}`, `{a:1}`, `"a`, `'a'`, `NaN`,
	}
	for _, v := range values {
		for _, body := range []string{`{"value":[` + v + `]}`, `{"value":[{"ID":` + v + `}]}`, `{"value":[]}` + v} {
			_, err := decodePage("sessions", []byte(body))
			if valid := json.Valid([]byte(body)); valid != (err == nil) {
				t.Errorf("decodePage(%q) = %v; encoding/json.Valid says %v", body, err, valid)
			} else if se := (*json.SyntaxError)(nil); !valid && !errors.As(err, &se) {
				t.Errorf("decodePage(%q) = %v, want a *json.SyntaxError", body, err)
			}
		}
	}
}

// TestNestedBeyondAnyLimit: an answer that only opens arrays, deeper
// than any stack, is refused as encoding/json refuses it, not with a
// stack overflow (which no recover catches). The test's stack is kept
// small, so that it fails that way at once if the check is ever deep.
func TestNestedBeyondAnyLimit(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(16 << 20))
	body := []byte(`{"value":[` + strings.Repeat("[", 1<<20))
	_, err := decodePage("sessions", body)
	if se := (*json.SyntaxError)(nil); !errors.As(err, &se) {
		t.Errorf("decodePage of a page nested a million deep = %v, want a *json.SyntaxError", err)
	}
}

// TestPageRowsOwnTheirBytes: the Raw of what is decoded from a page's
// rows (kept with KeepRaw) does not keep the page's body alive.
func TestPageRowsOwnTheirBytes(t *testing.T) {
	body := []byte(`{"value":[{"ID":"a","CinemaId":"1","Showtime":"2026-07-01T10:00:00"}],` +
		`"odata.nextLink":"Sessions?$skip=1","padding":"` + strings.Repeat("x", 1<<16) + `"}`)
	p, err := decodePage("sessions", body)
	if err != nil {
		t.Fatal(err)
	}
	one := rawOrNot(true, sessionDecoder(func(string) *time.Location { return time.UTC }, nil), func(v *Session) *json.RawMessage { return &v.Raw })
	got, errs := decodeRows(nil, nil, "sessions", p.rows, 0, one)
	if len(got) != 1 || len(errs) != 0 {
		t.Fatalf("decodeSessions = %d sessions, %v; want 1", len(got), errs)
	}
	page := weak.Make(&body[0])
	body = nil
	runtime.GC()
	runtime.GC()
	if page.Value() != nil {
		t.Errorf("the page's body is still alive while its session is")
	}
	if want := `{"ID":"a","CinemaId":"1","Showtime":"2026-07-01T10:00:00"}`; string(got[0].Raw) != want {
		t.Errorf("Raw = %s, want %s", got[0].Raw, want)
	}
}

// TestListPageByPage: fetchList hands each page over as it comes, with the
// index of its first row in the whole list, so a bad row on a later page
// is named by its place in the list.
func TestListPageByPage(t *testing.T) {
	pages := map[string]string{
		"":   `{"value":[` + cinemaRows("1", "2") + `],"odata.nextLink":"{{base}}/OData.svc/Cinemas?$skip=2"}`,
		"2":  `{"value":[],"odata.nextLink":"{{base}}/OData.svc/Cinemas?$skip=2b"}`,
		"2b": `{"value":[` + cinemaRows("3") + `,{"ID":"4:x"}]}`,
	}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.ReplaceAll(pages[r.URL.Query().Get("$skip")], "{{base}}", srv.URL))
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Zones: Zones{Default: time.UTC}})
	if err != nil {
		t.Fatal(err)
	}
	var firsts []int
	err = c.fetchList(context.Background(), epCinemas, c.listURL(epCinemas), func(rows []json.RawMessage, first int) error {
		firsts = append(firsts, first, len(rows))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 2, 2, 0, 2, 2}; !slices.Equal(firsts, want) {
		t.Errorf("pages (first, rows) = %v, want %v", firsts, want)
	}
	cinemas, err := c.Cinemas(context.Background())
	var rowErrs RowErrors
	if cinemaIDs(cinemas) != "1,2,3" || !errors.As(err, &rowErrs) || len(rowErrs) != 1 || rowErrs[0].Index != 3 {
		t.Errorf("Cinemas = %s, %v; want 1,2,3 and an error for row 3", cinemaIDs(cinemas), err)
	}
}

// TestSessionPages: the sessions come page by page, the same as Sessions
// gives in one list, and an error of the callee stops the fetching.
func TestSessionPages(t *testing.T) {
	var requests int
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		skip := r.URL.Query().Get("$skip")
		row := func(id string) string { return `{"ID":"` + id + `","CinemaId":"1","Showtime":"2026-07-01T10:00:00"}` }
		switch skip {
		case "":
			io.WriteString(w, `{"value":[`+row("a")+`,`+row("b")+`],"odata.nextLink":"`+srv.URL+`/OData.svc/Sessions?$skip=2"}`)
		default:
			io.WriteString(w, `{"value":[`+row("c")+`]}`)
		}
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Zones: Zones{Default: time.UTC}})
	if err != nil {
		t.Fatal(err)
	}
	var pages [][]string
	var rooms []*Session
	err = c.SessionPages(context.Background(), nil, func(page []Session) error {
		var ids []string
		for _, s := range page {
			ids = append(ids, s.ID)
		}
		pages = append(pages, ids)
		rooms = append(rooms, unsafe.SliceData(page))
		return nil
	})
	if err != nil || len(pages) != 2 || !slices.Equal(pages[0], []string{"a", "b"}) || !slices.Equal(pages[1], []string{"c"}) {
		t.Fatalf("SessionPages = %v, %v; want [a b] then [c]", pages, err)
	}
	// One page's room for all: a reload of 100k sessions does not
	// allocate 25 MB of pages.
	if rooms[0] != rooms[1] {
		t.Error("the second page came in a slice of its own, not the first's")
	}
	all, err := c.Sessions(context.Background(), nil)
	if err != nil || len(all) != 3 {
		t.Fatalf("Sessions = %d sessions, %v; want 3", len(all), err)
	}
	requests = 0
	stop := errors.New("enough")
	if err := c.SessionPages(context.Background(), nil, func([]Session) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("SessionPages = %v, want the callee's error", err)
	}
	if requests != 1 {
		t.Errorf("%d requests after the callee stopped at the first page, want 1", requests)
	}
}
