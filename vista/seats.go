// Seat checks: the seats of some sessions, in batches as long as a URL
// may be, with the $select narrowed for older servers.

package vista

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// seatSelects are the $select of a seat check, widest first. Older Vista
// servers have no Status, and some no SoldoutStatus, and refuse a $select
// that names them (400): CheckSeats then narrows it.
var seatSelects = [...]string{
	"$select=ID,SeatsAvailable,SoldoutStatus,Status",
	"$select=ID,SeatsAvailable,SoldoutStatus",
	"$select=ID,SeatsAvailable",
}

// RejectedError names the ids of a seat check that Vista refused (400 Bad
// Request) even when asked about one at a time. The other ids were checked.
type RejectedError struct {
	IDs []string
	Err error // the answer for the first of them, a *StatusError
}

// Error names the first few refused ids.
func (e *RejectedError) Error() string {
	return fmt.Sprintf("vista: seat check rejected for %d session(s) %s: %v", len(e.IDs), quoteIDs(e.IDs), e.Err)
}

// Unwrap returns the answer for the first refused id.
func (e *RejectedError) Unwrap() error { return e.Err }

func quoteIDs(ids []string) string {
	const show = 5
	q := make([]string, 0, show)
	for i, id := range ids {
		if i == show {
			q = append(q, fmt.Sprintf("and %d more", len(ids)-show))
			break
		}
		q = append(q, strconv.Quote(excerpt(id)))
	}
	return strings.Join(q, ", ")
}

// CheckSeats asks Vista for the seats of the sessions ids, in as few
// requests as MaxURLLength allows, one after another. seats follows the order
// of ids (each id once); gone lists the ids Vista no longer knows.
//
// Each request is made once: a failed one (a 5xx, a 429, a timeout) is not
// retried here, as the caller's next check is its retry. Its requests wait
// for the Budget at ctx's priority: pass the earliest showtime of ids with
// WithPriority, and a Ticket (WithTicket) to learn how long they waited.
//
// An id Vista refuses on its own (400) costs only itself: the others are
// still checked, and err is then a *RejectedError naming it. A row of the
// answer that cannot be read makes err hold a RowErrors; such ids are neither
// in seats nor in gone. Any other error stops the check: seats and gone then
// hold what the requests before it found.
//
// Older Vista servers have no Status or SoldoutStatus and refuse a $select
// that names them. Until a seat check has passed, a refused request is
// asked again once without Status, then once without SoldoutStatus too,
// before its ids are taken to be at fault; the narrowest $select that works
// is kept for the life of the Client. Seats then reports the fields it did
// not get as absent (HasStatus, HasSoldoutStatus).
func (c *Client) CheckSeats(ctx context.Context, ids []string) (seats []Seats, gone []string, err error) {
	sc := &seatCheck{c: c, ids: dedup(ids)}
	sc.found = make(map[string]Seats, len(sc.ids))
	sc.gone = make(map[string]bool)
	for _, batch := range c.seatBatches(sc.ids) {
		if err = sc.check(ctx, batch); err != nil {
			break
		}
	}
	for _, id := range sc.ids {
		if s, ok := sc.found[id]; ok {
			seats = append(seats, s)
		} else if sc.gone[id] {
			gone = append(gone, id)
		}
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if sc.rejected != nil {
		errs = append(errs, sc.rejected)
	}
	if len(sc.rowErrs) > 0 {
		errs = append(errs, sc.rowErrs)
	}
	if len(errs) == 1 {
		return seats, gone, errs[0]
	}
	return seats, gone, errors.Join(errs...)
}

// seatCheck is one CheckSeats: what its requests found so far.
type seatCheck struct {
	c        *Client
	ids      []string // every id asked for, once each
	found    map[string]Seats
	gone     map[string]bool
	rejected *RejectedError
	rowErrs  RowErrors
	answered bool // some request of this check got an answer
	probed   bool // the last id was asked alone to tell a bad id from a refused form
}

// check asks for one batch. A batch Vista refuses (400, or 414: the
// server's bound on a URL may be below MaxURLLength) is halved until the
// ids at fault stand alone.
func (sc *seatCheck) check(ctx context.Context, batch []string) error {
	rows, err := sc.c.seatRequest(ctx, batch)
	var se *StatusError
	if errors.As(err, &se) && (se.StatusCode == http.StatusBadRequest || se.StatusCode == http.StatusRequestURITooLong) {
		if len(batch) == 1 {
			return sc.reject(ctx, batch[0], se)
		}
		half := len(batch) / 2
		if err := sc.check(ctx, batch[:half]); err != nil {
			return err
		}
		return sc.check(ctx, batch[half:])
	}
	if err != nil {
		return err
	}
	sc.answered = true
	sc.take(batch, rows)
	return nil
}

// reject notes an id Vista refused on its own. Refused down to one id
// before any answer: is it this id, or does Vista refuse every query of
// this form? One more id, from the other end, tells, rather than 2n-1
// requests.
func (sc *seatCheck) reject(ctx context.Context, id string, se *StatusError) error {
	if sc.rejected == nil {
		sc.rejected = &RejectedError{Err: se}
	}
	sc.rejected.IDs = append(sc.rejected.IDs, id)
	last := sc.ids[len(sc.ids)-1]
	if sc.answered || sc.probed || last == id {
		return nil
	}
	sc.probed = true
	if err := sc.check(ctx, []string{last}); err != nil {
		return err
	}
	if !sc.answered {
		// Should the $select be at fault after all (the first batch
		// that tried narrowing it held a bad id), the next check tries
		// narrowing again.
		sc.c.sel.exhausted.Store(false)
		return fmt.Errorf("vista %s: every seat check refused: %w", epSeats.entity, se)
	}
	return nil
}

// take reads one answer: the seats of the ids it has, and as gone the ids
// of the batch it lacks, unless a row without a readable id may be any of
// them.
func (sc *seatCheck) take(batch []string, rows []json.RawMessage) {
	got, bad := decodeSeats(rows, 0)
	sc.rowErrs = append(sc.rowErrs, bad...)
	asked := make(map[string]bool, len(batch))
	for _, id := range batch {
		asked[id] = true
	}
	inAnswer := make(map[string]bool, len(got))
	for _, s := range got {
		if asked[s.ID] {
			sc.found[s.ID] = s
			inAnswer[s.ID] = true
		}
	}
	blind := false
	for _, e := range bad {
		inAnswer[e.ID] = true
		blind = blind || e.ID == ""
	}
	if blind {
		return
	}
	for _, id := range batch {
		if !inAnswer[id] {
			sc.gone[id] = true
		}
	}
}

// SeatSelect returns the $select seat checks use now.
func (c *Client) SeatSelect() string {
	return seatSelects[c.sel.level.Load()]
}

// seatRequest asks for the seats of one batch, narrowing the $select while
// no seat check has passed yet (see CheckSeats).
func (c *Client) seatRequest(ctx context.Context, batch []string) ([]json.RawMessage, error) {
	if !c.sel.proven.Load() {
		c.sel.mu.Lock()
		defer c.sel.mu.Unlock()
	}
	level := c.sel.level.Load()
	rows, err := c.fetchSeats(ctx, level, batch)
	if err == nil {
		c.sel.proven.Store(true)
		return rows, nil
	}
	if !isBadRequest(err) || c.sel.proven.Load() || c.sel.exhausted.Load() {
		return nil, err
	}
	for l := level + 1; l < int32(len(seatSelects)); l++ {
		narrow, nerr := c.fetchSeats(ctx, l, batch)
		switch {
		case nerr == nil:
			c.sel.level.Store(l)
			c.sel.proven.Store(true)
			c.log.Warn("vista refuses the seat check's fields; asking for fewer from now on",
				"was", seatSelects[level], "now", seatSelects[l])
			return narrow, nil
		case !isBadRequest(nerr):
			return nil, nerr // no verdict on the $select: ask again next time
		}
	}
	c.sel.exhausted.Store(true)
	return nil, err
}

func isBadRequest(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.StatusCode == http.StatusBadRequest
}

func (c *Client) fetchSeats(ctx context.Context, level int32, batch []string) ([]json.RawMessage, error) {
	u, err := url.Parse(c.seatURL(level, batch))
	if err != nil {
		return nil, fmt.Errorf("vista %s: %w", epSeats.entity, err)
	}
	var rows []json.RawMessage
	err = c.fetchList(ctx, epSeats, u, func(page []json.RawMessage, _ int) error {
		for _, r := range page {
			rows = append(rows, bytes.Clone(r)) // kept past the page (see fetchList)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func dedup(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// seatURL is the URL of a seat check for ids with the $select of level,
// as sent.
func (c *Client) seatURL(level int32, ids []string) string {
	terms := make([]string, len(ids))
	for i, id := range ids {
		terms[i] = seatTerm(id)
	}
	return c.filterURL(epSeats, level, terms)
}

// filterURL is the URL of a query of ep's entity set with the $select of
// level and a $filter of terms, each escaped already, joined by or.
func (c *Client) filterURL(ep endpoint, level int32, terms []string) string {
	return c.listURL(ep).String() + "?" + seatSelects[level] + "&$filter=" + strings.Join(terms, seatOr)
}

var seatOr = queryEscape(" or ")

// seatTerm is the escaped filter term for one id. OData quotes a string
// literal in single quotes and doubles a quote inside it.
func seatTerm(id string) string {
	return queryEscape("ID eq '" + strings.ReplaceAll(id, "'", "''") + "'")
}

// queryEscape escapes s for a query, with spaces as %20: not every OData
// server reads + as a space.
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// seatBatches splits ids so that each seat-check URL stays within
// MaxURLLength. An id too long to fit on its own goes alone: the server will
// refuse it or answer it, and either way it costs only itself.
func (c *Client) seatBatches(ids []string) [][]string {
	// The widest $select: the bound holds for all.
	return byURL(c.maxURLLen, len(c.seatURL(0, nil)), ids, seatTerm)
}

// byURL splits items into runs whose URL (prefix long, then each item's
// escaped term, joined by or) stays within maxLen. An item too long to fit
// on its own goes alone.
func byURL[T any](maxLen, prefix int, items []T, term func(T) string) [][]T {
	var (
		runs [][]T
		cur  []T
		n    int
	)
	for _, it := range items {
		l := len(term(it))
		if len(cur) > 0 && n+len(seatOr)+l > maxLen {
			runs = append(runs, cur)
			cur = nil
		}
		if len(cur) == 0 {
			n = prefix + l
		} else {
			n += len(seatOr) + l
		}
		cur = append(cur, it)
	}
	if len(cur) > 0 {
		runs = append(runs, cur)
	}
	return runs
}
