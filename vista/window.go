// Window queries: the seats of every session whose showtime lies in a
// span of wall time, all cinemas at once, paged like the lists.

package vista

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// epWindow is a window query: one attempt, as a seat check, since the
// caller's next sweep is its retry.
var epWindow = endpoint{name: "window", entity: "Sessions", list: "sessions", once: true}

// wallLayout is how a window's bounds are written: Vista compares
// Showtime as the cinema's wall time, which has no offset.
const wallLayout = "2006-01-02T15:04:05"

// Window is a span of wall time, [From, To): clock readings, whose
// location is ignored, as Vista compares Showtime without a zone.
type Window struct{ From, To time.Time }

// SeatsBetween asks Vista for the seats and status of every session whose
// Showtime, the cinema's wall time, lies in one of windows, with the
// $select seat checks use now, in one request (more when the windows make
// a URL longer than MaxURLLength):
//
//	OData.svc/Sessions?$select=ID,SeatsAvailable,SoldoutStatus,Status
//	  &$filter=(Showtime ge datetime'…' and Showtime lt datetime'…')
//	  or (Showtime ge datetime'…' and Showtime lt datetime'…')
//
// A chain across zones asks one window per group of zones (the warmer
// does, by the UTC offset of the showtimes it holds), and the answer then
// holds every cinema's sessions whose wall time lies in one. The answer is
// paged like the lists and read whole; a session in two requests' answers
// is returned once.
//
// A session missing from the answer is not gone: it may have moved out
// of the window, and only a seat check by id or a full list may say it is
// gone.
//
// Each request is made once, without retry, and waits for the Budget at
// ctx's priority (WithPriority). A server that refuses the shape answers
// 400: err is then a *StatusError, and the caller falls back to seat
// checks by id. Rows that cannot be read are left out and reported in a
// RowErrors, with the rest returned.
func (c *Client) SeatsBetween(ctx context.Context, windows ...Window) ([]Seats, error) {
	var (
		seats   []Seats
		rowErrs RowErrors
		seen    = map[string]bool{}
	)
	level := c.sel.level.Load()
	for _, part := range c.windowRequests(level, windows) {
		u, err := url.Parse(c.windowURL(level, part))
		if err != nil {
			return nil, fmt.Errorf("vista %s: %w", epWindow.entity, err)
		}
		err = c.fetchList(ctx, epWindow, u, func(page []json.RawMessage, first int) error {
			got, bad := decodeSeats(page, first)
			for _, s := range got {
				if !seen[s.ID] {
					seen[s.ID] = true
					seats = append(seats, s)
				}
			}
			rowErrs = append(rowErrs, bad...)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(rowErrs) > 0 {
		return seats, rowErrs
	}
	return seats, nil
}

// windowRequests splits windows into the groups one request can carry
// within MaxURLLength.
func (c *Client) windowRequests(level int32, windows []Window) [][]Window {
	return byURL(c.maxURLLen, len(c.filterURL(epWindow, level, nil)), windows, windowTerm)
}

// windowURL is the URL of a window query for windows with the $select of
// level: one window's term alone, several in parentheses joined by or.
func (c *Client) windowURL(level int32, windows []Window) string {
	terms := make([]string, len(windows))
	for i, w := range windows {
		terms[i] = windowTerm(w)
	}
	if len(windows) == 1 {
		terms[0] = queryEscape(windowFilter(windows[0]))
	}
	return c.filterURL(epWindow, level, terms)
}

// windowFilter is the filter of one window, unescaped.
func windowFilter(w Window) string {
	return "Showtime ge datetime'" + w.From.Format(wallLayout) + "' and Showtime lt datetime'" + w.To.Format(wallLayout) + "'"
}

// windowTerm is one window's escaped term among several, in parentheses.
func windowTerm(w Window) string { return queryEscape("(" + windowFilter(w) + ")") }
