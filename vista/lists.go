// The lists: Cinemas, Films and Sessions, fetched page by page.

package vista

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// endpoint is one of the lists the client reads.
type endpoint struct {
	name   string // for Observe and logs: "cinemas", ...
	entity string // Vista's entity set, for StatusError: "Cinemas", ...
	list   string // for DecodeError: "cinemas", ...
	// once: one attempt per request, no retry. A seat check's retry is
	// its next due time, which the caller keeps; a retry here would only
	// spend the budget that nearer checks need.
	once bool
}

var (
	epCinemas  = endpoint{name: "cinemas", entity: "Cinemas", list: "cinemas"}
	epFilms    = endpoint{name: "films", entity: "ScheduledFilms", list: "films"}
	epSessions = endpoint{name: "sessions", entity: "Sessions", list: "sessions"}
	epSeats    = endpoint{name: "seats", entity: "Sessions", list: "sessions", once: true}
)

func (c *Client) listURL(ep endpoint) *url.URL {
	return c.base.ResolveReference(&url.URL{Path: "OData.svc/" + ep.entity})
}

// Cinemas reads every cinema, each with its zone resolved through
// Config.Zones. When some rows cannot be read it returns the others with a
// RowErrors.
func (c *Client) Cinemas(ctx context.Context) ([]Cinema, error) {
	var (
		cinemas []Cinema
		rowErrs RowErrors
	)
	one := rawOrNot(c.keepRaw, cinemaDecoder(c.resolve, c.fields.Cinemas), func(v *Cinema) *json.RawMessage { return &v.Raw })
	err := c.fetchList(ctx, epCinemas, c.listURL(epCinemas), func(rows []json.RawMessage, first int) error {
		cinemas, rowErrs = decodeRows(cinemas, rowErrs, epCinemas.list, rows, first, one)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cinemas, rowErrors(rowErrs)
}

func (c *Client) resolve(id, tz string) *time.Location {
	loc, _ := c.zones.Resolve(id, tz)
	return loc
}

// Films reads the scheduled films, merging Vista's one row per cinema and
// film into one Film per ScheduledFilmId. When some rows cannot be read it
// returns the others with a RowErrors; a bad row's cinema is then missing
// from its film's CinemaIDs.
func (c *Client) Films(ctx context.Context) ([]Film, error) {
	var (
		filmRows []filmRow
		rowErrs  RowErrors
	)
	one := rawOrNot(c.keepRaw, filmDecoder(c.fields.Films), func(v *filmRow) *json.RawMessage { return &v.film.Raw })
	err := c.fetchList(ctx, epFilms, c.listURL(epFilms), func(rows []json.RawMessage, first int) error {
		filmRows, rowErrs = decodeRows(filmRows, rowErrs, epFilms.list, rows, first, one)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return mergeFilms(filmRows), rowErrors(rowErrs)
}

// Sessions reads every session. zones gives each cinema's location by
// cinema ID, as Cinemas resolved it; a cinema missing from it gets
// Config.Zones' choice for a cinema without TimeZoneId. When some rows cannot
// be read it returns the others with a RowErrors.
func (c *Client) Sessions(ctx context.Context, zones map[string]*time.Location) ([]Session, error) {
	var sessions []Session
	err := c.SessionPages(ctx, zones, func(page []Session) error {
		sessions = append(sessions, page...)
		return nil
	})
	var rowErrs RowErrors
	if err != nil && !errors.As(err, &rowErrs) {
		return nil, err
	}
	return sessions, err
}

// SessionPages reads OData.svc/Sessions as Sessions does, but hands each
// page's sessions to each as soon as the page is decoded, so the whole
// list is never held at once. The slice each is given is the next page's
// too: each may keep its sessions (copies of them), not the slice. An error of
// each stops the read (no further page is fetched) and is returned; the
// rows that could not be read come back at the end as RowErrors, as from
// Sessions.
func (c *Client) SessionPages(ctx context.Context, zones map[string]*time.Location, each func([]Session) error) error {
	resolved := make(map[string]*time.Location)
	zone := func(cinemaID string) *time.Location {
		if loc := zones[cinemaID]; loc != nil {
			return loc
		}
		loc, ok := resolved[cinemaID]
		if !ok {
			loc = c.resolve(cinemaID, "")
			resolved[cinemaID] = loc
		}
		return loc
	}
	var rowErrs RowErrors
	one := rawOrNot(c.keepRaw, sessionDecoder(zone, c.fields.Sessions), func(v *Session) *json.RawMessage { return &v.Raw })
	var page []Session // one page's room, 250 kB at 1,000 rows, for every page
	err := c.fetchList(ctx, epSessions, c.listURL(epSessions), func(rows []json.RawMessage, first int) error {
		page, rowErrs = decodeRows(page[:0], rowErrs, epSessions.list, rows, first, one)
		return each(page)
	})
	if err != nil {
		return err
	}
	return rowErrors(rowErrs)
}

// rowErrors keeps a nil RowErrors from becoming a non-nil error.
func rowErrors(r RowErrors) error {
	if len(r) == 0 {
		return nil
	}
	return r
}

// rawOrNot returns a row decoder that keeps the row's Raw only with keep,
// as a copy: the row is a slice of the page's answer, whose buffer the
// next page is read into (see fetchList).
func rawOrNot[T any](keep bool, one func(*row, json.RawMessage) (T, *DecodeError), raw func(*T) *json.RawMessage) func(*row, json.RawMessage) (T, *DecodeError) {
	return func(r *row, b json.RawMessage) (T, *DecodeError) {
		v, err := one(r, b)
		if keep {
			*raw(&v) = bytes.Clone(*raw(&v))
		} else {
			*raw(&v) = nil
		}
		return v, err
	}
}

// fetchList reads every page of a list, starting at u, and hands each
// page's rows to each as soon as the page is read, with the index of the
// first of them in the whole list. The rows are slices of the page's
// answer, and the next page is read into the same buffer: they are good
// only until each returns, so that a list of any length holds one page
// at a time (and, at 100k sessions, the warmer does not copy 100 MB of
// rows a load). each must copy what it keeps. After an error the caller
// must drop what each was given: a partial list reads as entities that
// disappeared.
func (c *Client) fetchList(ctx context.Context, ep endpoint, u *url.URL, each func(rows []json.RawMessage, first int) error) error {
	seen := make(map[string]bool)
	first := 0
	// The page's body is read into the one before's: nothing keeps it
	// (each copies what it keeps), and a list of 500 pages then makes one
	// buffer, not 500.
	var body []byte
	for pages := 0; ; pages++ {
		if pages == maxPages {
			return fmt.Errorf("vista %s: more than %d pages", ep.entity, maxPages)
		}
		seen[u.String()] = true
		pctx := ctx
		if pages > 0 {
			pctx = nextPage(ctx)
		}
		var err error
		if body, err = c.get(pctx, ep, u, body); err != nil {
			return err
		}
		p, err := decodePage(ep.list, body)
		if err != nil {
			return err
		}
		if err := each(p.rows, first); err != nil {
			return err
		}
		first += len(p.rows)
		if p.next == "" {
			return nil
		}
		next, err := u.Parse(p.next)
		if err != nil {
			return fmt.Errorf("vista %s: next link: %w", ep.entity, err)
		}
		switch {
		case !sameOrigin(next, c.base):
			// Following it would hand the token to another host, or send it
			// in clear text.
			return fmt.Errorf("vista %s: next link leaves %s://%s", ep.entity, c.base.Scheme, c.base.Host)
		case seen[next.String()]:
			return fmt.Errorf("vista %s: next link loops back to a page already read", ep.entity)
		}
		u = next
	}
}
