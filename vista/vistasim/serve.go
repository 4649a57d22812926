// Serving HTTP: ServeHTTP sorts a request to its entity set and endpoint,
// checks it, applies a queued failure, lists the rows, charges their cost
// and writes the page; OData errors.

package vistasim

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// contentType is what Vista's OData (Web API, OData v3) sends.
const contentType = "application/json; odata=minimalmetadata; streaming=true; charset=utf-8"

var _ http.Handler = (*Server)(nil)

// ServeHTTP answers GET .../OData.svc/Cinemas, .../OData.svc/ScheduledFilms
// and .../OData.svc/Sessions under any base path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	set, ep := classify(r)
	s.counts[ep].Add(1)
	if ep == epOther {
		writeError(w, http.StatusNotFound, "No HTTP resource was found that matches the request URI '"+r.URL.Path+"'.")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "The requested resource does not support http method '"+r.Method+"'.")
		return
	}
	if n := len(r.URL.EscapedPath()) + 1 + len(r.URL.RawQuery); n > s.cfg.MaxURLLength {
		writeError(w, http.StatusRequestURITooLong, fmt.Sprintf("The request URI is %d bytes long; the limit is %d.", n, s.cfg.MaxURLLength))
		return
	}
	if s.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("connectapitoken")), []byte(s.cfg.Token)) != 1 {
		writeError(w, http.StatusUnauthorized, "Authorization has been denied for this request.")
		return
	}

	malformed := false
	if f, ok := s.takeFailure(endpoints[ep]); ok {
		if f.Delay > 0 && !sleep(r.Context(), f.Delay) {
			return
		}
		switch f.Mode {
		case FailStatus:
			status := cmp(f.Status, http.StatusInternalServerError)
			if f.RetryAfter > 0 {
				w.Header().Set("Retry-After", retryAfter(f.RetryAfter))
			}
			writeError(w, status, "An error has occurred (simulated "+strconv.Itoa(status)+").")
			return
		case FailRateLimit:
			w.Header().Set("Retry-After", retryAfter(f.RetryAfter))
			writeError(w, cmp(f.Status, http.StatusTooManyRequests), "Too many requests (simulated).")
			return
		case FailMalformed:
			malformed = true
		case FailEmpty:
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"value":[]}`))
			return
		}
	}

	if ep == epWindow && s.cfg.RefuseWindows {
		writeError(w, http.StatusBadRequest, "The query parameter '$filter' is not supported: filtering on Showtime is not allowed.")
		return
	}
	q, err := parseQuery(r.URL.RawQuery, s.cfg.MaxFilterIDs)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if q.window != nil && ep != epWindow { // Cinemas or ScheduledFilms
		writeError(w, http.StatusBadRequest, "The query parameter '$filter' is not supported: Could not find a property named 'Showtime' on the type.")
		return
	}
	var body bytes.Buffer
	var out io.Writer = &body
	if !malformed {
		out = newStreamWriter(w)
	}
	w.Header().Set("Content-Type", contentType)
	switch ep {
	case epCinemas:
		err = serveList(s, ep, out, r, set, q, lister[cinemaRow]{
			fields: s.fieldsCinema,
			list:   func(sn *snapshot) ([]cinemaRow, int) { return sn.listCinemas(q.ids) },
		})
	case epFilms:
		err = serveList(s, ep, out, r, set, q, lister[filmRow]{
			fields: s.fieldsFilm,
			list:   func(sn *snapshot) ([]filmRow, int) { return sn.listFilms(q.ids) },
		})
	default:
		l := lister[sessionRow]{
			fields:  s.fieldsSession,
			list:    func(sn *snapshot) ([]sessionRow, int) { return sn.listSessions(q.ids) },
			fill:    (*snapshot).fill,
			release: putSessionRows,
		}
		if ep == epWindow {
			l.list = func(sn *snapshot) ([]sessionRow, int) { return sn.windowSessions(q.window) }
		}
		err = serveList(s, ep, out, r, set, q, l)
	}
	switch {
	case errors.Is(err, errGone):
		return // the client left while the rows' cost was paid: nothing is answered
	case err != nil:
		// Only a bad $select gets here, before anything was written.
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if malformed {
		b := body.Bytes()
		b = b[:len(b)/2]
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
		return
	}
	out.(*streamWriter).Flush()
}

// errGone is serveList's word that the request's context ended before the
// answer was written.
var errGone = errors.New("the client has gone")

// lister is how serveList reads one request's rows.
type lister[R any] struct {
	fields  fieldSet[R]
	list    func(*snapshot) ([]R, int) // the rows asked for, and the rows scanned to find them
	fill    func(*snapshot, []R)       // completes a page's rows; nil when listed rows are complete
	release func([]R)                  // takes the rows back once written; may be nil
}

// serveList lists the rows of a request from a fresh snapshot, counts the
// rows scanned and the page's rows, waits Config.RowCost for each, and
// writes the page. It fails, before writing anything, for a bad $select
// (before any row is scanned) or with errGone when the request's context
// ends during the wait.
func serveList[R any](s *Server, ep int, w io.Writer, r *http.Request, set string, q query, l lister[R]) error {
	fields, err := l.fields.pick(q.sel)
	if err != nil {
		return err
	}
	sn := s.snapshot()
	rows, scanned := l.list(sn)
	if l.release != nil {
		defer l.release(rows)
	}
	pg := pageOf(len(rows), q, s.cfg.PageSize)
	n := pg.end - pg.start
	s.scanned[ep].Add(int64(scanned))
	if cost := s.cfg.RowCost * time.Duration(scanned+n); cost > 0 && !sleep(r.Context(), cost) {
		return errGone
	}
	s.returned[ep].Add(int64(n))
	var fill func([]R)
	if l.fill != nil {
		fill = func(page []R) { l.fill(sn, page) }
	}
	writeList(w, r, set, q, fields, pg, rows, fill)
	return nil
}

// classify names the entity set and the endpoint counter of a request. A
// Sessions request with a $filter is a window query when the filter names
// Showtime, whether or not it is valid, and a seat check otherwise.
func classify(r *http.Request) (set string, ep int) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	i := strings.LastIndex(p, "/OData.svc/")
	if i < 0 {
		return "", epOther
	}
	switch set = p[i+len("/OData.svc/"):]; set {
	case "Cinemas":
		return set, epCinemas
	case "ScheduledFilms":
		return set, epFilms
	case "Sessions":
		ep = epSessions
		if strings.Contains(r.URL.RawQuery, "filter=") {
			for k, v := range splitQuery(r.URL.RawQuery) {
				if k != "$filter" {
					continue
				}
				if dv, err := url.QueryUnescape(v); err == nil {
					v = dv
				}
				if mentionsShowtime(v) {
					return set, epWindow
				}
				ep = epSeats
			}
		}
		return set, ep
	}
	return "", epOther
}

func writeError(w http.ResponseWriter, status int, msg string) {
	b := make([]byte, 0, 128+len(msg))
	b = append(b, `{"odata.error":{"code":"","message":{"lang":"en-US","value":`...)
	b = appendString(b, msg)
	b = append(b, "}}}"...)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
