// Window queries: the seats of every session whose showtime lies in a
// span of wall time, all cinemas at once, paged like the lists.

package vista

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// epWindow is a window query: one attempt, as a seat check, since the
// caller's next sweep is its retry.
var epWindow = endpoint{name: "window", entity: "Sessions", list: "sessions", once: true}

// wallLayout is how a window's bounds are written: Vista compares
// Showtime as the cinema's wall time, which has no offset.
const wallLayout = "2006-01-02T15:04:05"

// SeatsBetween asks Vista for the seats and status of every session whose
// Showtime, the cinema's wall time, lies in [from, to), with the $select
// seat checks use now:
//
//	OData.svc/Sessions?$select=ID,SeatsAvailable,SoldoutStatus,Status
//	  &$filter=Showtime ge datetime'…' and Showtime lt datetime'…'
//
// from and to are wall readings: their clock is sent, their location is
// ignored, as Vista compares Showtime without a zone. A chain across zones
// asks one window per group of zones (the warmer does, by the UTC offset
// of the showtimes it holds), and the answer then holds every cinema's
// sessions whose wall time lies in it. The answer is paged like the lists
// and read whole.
//
// A session missing from the answer is not gone: it may have moved out
// of the window, and only a seat check by id or a full list may say it is
// gone.
//
// The request is made once, without retry, and waits for the Budget at
// ctx's priority (WithPriority). A server that refuses the shape answers
// 400: err is then a *StatusError, and the caller falls back to seat
// checks by id. Rows that cannot be read are left out and reported in a
// RowErrors, with the rest returned.
func (c *Client) SeatsBetween(ctx context.Context, from, to time.Time) ([]Seats, error) {
	u, err := url.Parse(c.windowURL(c.sel.level.Load(), from, to))
	if err != nil {
		return nil, fmt.Errorf("vista %s: %w", epWindow.entity, err)
	}
	var seats []Seats
	var rowErrs RowErrors
	err = c.fetchList(ctx, epWindow, u, func(page []json.RawMessage, first int) error {
		got, bad := decodeSeats(page, first)
		seats = append(seats, got...)
		rowErrs = append(rowErrs, bad...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(rowErrs) > 0 {
		return seats, rowErrs
	}
	return seats, nil
}

// windowURL is the URL of a window query with the $select of level.
func (c *Client) windowURL(level int32, from, to time.Time) string {
	var b strings.Builder
	b.WriteString(c.listURL(epWindow).String())
	b.WriteString("?" + seatSelects[level] + "&$filter=")
	b.WriteString(queryEscape("Showtime ge datetime'" + from.Format(wallLayout) +
		"' and Showtime lt datetime'" + to.Format(wallLayout) + "'"))
	return b.String()
}
