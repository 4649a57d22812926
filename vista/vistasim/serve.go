// Serving HTTP: ServeHTTP sorts a request to its entity set, checks it,
// applies a queued failure and writes the list; OData errors.

package vistasim

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
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

	q, err := parseQuery(r.URL.RawQuery, s.cfg.MaxFilterIDs)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var body bytes.Buffer
	var out io.Writer = &body
	if !malformed {
		out = newStreamWriter(w)
	}
	w.Header().Set("Content-Type", contentType)
	sn := s.snapshot()
	switch ep {
	case epCinemas:
		err = writeList(out, r, set, q, s.fieldsCinema, s.cfg.PageSize, sn.listCinemas(q.ids), nil)
	case epFilms:
		err = writeList(out, r, set, q, s.fieldsFilm, s.cfg.PageSize, sn.listFilms(q.ids), nil)
	default:
		rows := sn.listSessions(q.ids)
		err = writeList(out, r, set, q, s.fieldsSession, s.cfg.PageSize, rows, sn.fill)
		putSessionRows(rows)
	}
	if err != nil {
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

// classify names the entity set and the endpoint counter of a request.
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
		if strings.Contains(r.URL.RawQuery, "filter=") {
			for k := range splitQuery(r.URL.RawQuery) {
				if k == "$filter" {
					return set, epSeats
				}
			}
		}
		return set, epSessions
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
