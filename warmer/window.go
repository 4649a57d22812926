// Window sweeps: the seats of every session in a span of showtimes, all
// cinemas, in a request or a few (vista's SeatsBetween), asked again
// every so often. A sweep is the cheap way to keep many sessions fresh:
// the near sweep reads the sessions of the next hour (and those started
// within the grace) every near interval, the later sweep the rest of the
// day every few minutes. The checks by id stay as the floor under them:
// a session a sweep reads is confirmed when its check by id is due, so
// that check need not go out; one that no sweep reads (it moved, it is
// gone, Vista refuses windows) is checked by id on the curve as before.
// A sweep never removes anything: a session missing from a window may
// have moved out of it.
package warmer

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/vista-warmer/vista-warmer/vista"
)

// WindowFetcher is a Fetcher that can also ask for the seats of every
// session whose showtime, as the cinema's wall time, lies in [from, to)
// (a window query; from and to are wall readings). *vista.Client is one.
type WindowFetcher interface {
	SeatsBetween(ctx context.Context, windows ...vista.Window) ([]vista.Seats, error)
}

// sweep is one window swept again and again: showtimes in [now+from,
// now+to), every every.
type sweep struct {
	name     string // "near" or "later": metrics and logs
	from, to time.Duration
	every    time.Duration
	next     time.Time // when it goes out next, on the warmer's clock
	flying   bool      // a sweep is out, its answer not written yet
	sentAt   time.Time // real time it went out
	// The sweep out: the showtimes it covers, and the sessions whose
	// check by id it holds back (sweptBy) until its answer says whether it
	// read them, with when that check fell due if the sweep took it up
	// (zero for one looked at before it was due).
	flyFrom, flyTo time.Time
	held           map[string]time.Time
	off            time.Time // no sweep goes out before: Vista refused or failed
	failures       int       // in a row
	refused        bool      // Vista refuses window queries (400): said once

	// The last answer: the showtimes it covered and the sessions in it. A
	// session it covered but lacked is checked by id when due: it may be
	// gone, and a window never says so.
	lastFrom, lastTo time.Time
	lastSeen         map[string]bool
}

// sweepOff is how long sweeps stop after Vista refuses a window (400):
// an hour, after which one is tried again (the $select may have been at
// fault, and seat checks narrow it meanwhile).
const sweepOff = time.Hour

// sweepBackoff is how long sweeps stop after failures in a row: from a
// minute after the third, doubling to 15 minutes. Meanwhile the checks by
// id keep every session on its curve; what a failing window costs
// upstream is bounded by one request a minute at most.
func sweepBackoff(failures int) time.Duration {
	if failures < 3 {
		return 0
	}
	return min(time.Minute<<(failures-3), 15*time.Minute)
}

// sweeps returns the windows a policy sweeps: the near one over the grace
// and the horizon, every near interval, and, when the policy reaches
// further (Later), the later one from the horizon to there.
func (p Policy) sweeps() []*sweep {
	s := []*sweep{{name: "near", from: -p.Grace, to: p.Horizon, every: p.NearInterval}}
	if p.Later > p.Horizon && p.LaterInterval > 0 {
		s = append(s, &sweep{name: "later", from: p.Horizon, to: p.Later, every: p.LaterInterval})
	}
	return s
}

// dueSweeps returns the window queries due at now. Vista compares
// showtimes as each cinema's wall time, so a sweep asks one window of wall
// time per UTC offset among the showtimes it covers (offsets), with
// windows that overlap merged, all in one request: a zone with no session
// in the sweep's span costs nothing.
func (c *checker) dueSweeps(st *state, now time.Time, offsets map[int]*showtimes) []*ask {
	var asks []*ask
	for _, s := range c.windows {
		if s.flying || now.Before(s.next) || now.Before(s.off) {
			continue
		}
		from, to := now.Add(s.from), now.Add(s.to)
		// On the whole second, as the checks by id are (NextCheck): a
		// session confirmed by this sweep falls due with the next one,
		// not a fraction of a second before it.
		s.next = now.Add(s.every).Truncate(time.Second)
		walls := wallRanges(offsets, from, to)
		if len(walls) == 0 {
			continue
		}
		s.flying, s.sentAt = true, time.Now()
		s.flyFrom, s.flyTo, s.held = from, to, map[string]time.Time{}
		asks = append(asks, &ask{st: st, window: s, walls: walls, asked: now, prio: now.Add(max(s.from, 0))})
	}
	return asks
}

// wallRanges returns the windows of wall time that hold the showtimes in
// [from, to) of every offset (seconds east of UTC) that has one, merged
// where they overlap, in order, as times in UTC whose clock is the wall
// reading.
func wallRanges(offsets map[int]*showtimes, from, to time.Time) []vista.Window {
	var walls []vista.Window
	for off, shows := range offsets {
		if shows.within(from, to) {
			d := time.Duration(off) * time.Second
			walls = append(walls, vista.Window{From: from.UTC().Add(d), To: to.UTC().Add(d)})
		}
	}
	slices.SortFunc(walls, func(a, b vista.Window) int { return a.From.Compare(b.From) })
	merged := walls[:0]
	for _, r := range walls {
		if n := len(merged); n > 0 && !r.From.After(merged[n-1].To) {
			merged[n-1].To = maxTime(merged[n-1].To, r.To)
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// sweptBy returns, for a session showing at showtime whose check by id
// is due at due, one sweep interval from now when a sweep out now covers
// it, and notes that the sweep holds its check back, and that it takes
// the check up when it is due by now; zero, and the check goes out
// as due, when no sweep is out (none has gone, Vista refuses or fails
// them), the one out is late, or the last answer lacked the session. The
// sweeps due go out before the checks (sendChecks), so a sweep due now is
// out by then. Its answer lets the check go at once if it did not read the
// session (sweepChanges).
func (c *checker) sweptBy(id string, due, now, showtime time.Time) time.Time {
	for _, s := range c.windows {
		if !s.flying || s.failures > 0 || time.Since(s.sentAt) > s.every {
			continue
		}
		if showtime.Before(s.flyFrom) || !showtime.Before(s.flyTo) {
			continue
		}
		if !showtime.Before(s.lastFrom) && showtime.Before(s.lastTo) && !s.lastSeen[id] {
			return time.Time{} // the last sweep lacked it
		}
		if !due.After(now) { // taken up
			s.held[id] = due
		} else if _, ok := s.held[id]; !ok {
			s.held[id] = time.Time{}
		}
		return now.Add(s.every)
	}
	return time.Time{}
}

// nextSweep is when the next window query is due; zero when none is.
func (c *checker) nextSweep() time.Time {
	var next time.Time
	for _, s := range c.windows {
		at := maxTime(s.next, s.off)
		if !s.flying && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	return next
}

// swept notes a window's answer, and says what to log: a refusal once, a
// run of failures when it turns the sweeps off. An answer that took longer
// than the sweep's interval counts as a failure, its rows read all the
// same: a Vista that answers windows slowly is asked by id instead.
func (c *checker) swept(a *ask, now time.Time) (refused, failing bool) {
	s := a.window
	s.flying = false
	var rowErrs vista.RowErrors
	answered := a.err == nil || errors.As(a.err, &rowErrs) // rows that could not be read are the list's to report
	var se *vista.StatusError
	switch {
	case answered && a.took <= s.every:
		s.failures, s.refused = 0, false
		s.lastFrom, s.lastTo = s.flyFrom, s.flyTo
		s.lastSeen = make(map[string]bool, len(a.seats))
		for _, seat := range a.seats {
			s.lastSeen[seat.ID] = true
		}
		c.m.sweeps.WithLabelValues(s.name, "ok").Inc()
		return false, false
	case !answered && errors.As(a.err, &se) && se.StatusCode == http.StatusBadRequest:
		s.off = now.Add(sweepOff)
		c.m.sweeps.WithLabelValues(s.name, "refused").Inc()
		said := s.refused
		s.refused = true
		return !said, false
	case answered:
		c.m.sweeps.WithLabelValues(s.name, "slow").Inc()
	default:
		c.m.sweeps.WithLabelValues(s.name, "failed").Inc()
	}
	s.failures++
	if d := sweepBackoff(s.failures); d > 0 {
		s.off = now.Add(d)
		return false, s.failures == 3
	}
	return false, false
}

// sweepChanges turns a window's answer into changes: a session whose seats
// or status moved is written at once, as a seat check's answer is; one
// that did not is confirmed only when the sweep held its check by id back
// or that check is due within the next sweep (the confirmation that check
// would write), and otherwise costs Redis nothing. A session the answer
// calls cancelled is checked by id at once, wherever its showtime: a
// window never removes. Sessions the cache does not hold are left to the
// full reload; a row that another answer of the same batch takes (newer:
// one asked later, or at the same instant and first) is left to that one.
//
// A check by id that fell due and that the sweep took up is counted as a
// check (lateness) once the answer reads its session, whatever is made of
// the row: the sweep was its check, asked when it went out (a check that
// fell due while the sweep was out is on time). One the answer lacks (or
// every one, when the sweep failed) goes by id at once, due as it fell
// due, so that no session goes longer than its interval without a reading
// and its lateness counts once, from then; unless the session was read
// since the sweep went out (a check by id went when the sweep was late)
// or is being asked for now. A session the sweep only looked at before
// its check was due keeps its place on the schedule.
func (c *checker) sweepChanges(a *ask, held map[string]time.Time, cache map[string]*record, fields []string, newer func(id string, a *ask) bool) []change {
	var changes []change
	soon := a.asked.Add(a.window.every)
	for _, s := range a.seats {
		old := cache[s.ID]
		due, wasHeld := held[s.ID]
		delete(held, s.ID)
		if !due.IsZero() && old != nil {
			c.count(c.policy.Tier(due, old.showtime.time()), due, a.st.since, a.asked, 0)
		}
		if old == nil || old.missing || old.asOf.time().After(a.asked) || newer(s.ID, a) {
			continue
		}
		if s.Cancelled() {
			if !c.asked(s.ID) {
				c.reschedule(s.ID, old, a.asked)
				c.urgent[s.ID] = true
			}
			continue
		}
		same := seatsSame(old, s)
		if !wasHeld && same && (old.nextCheck.time().After(soon) || c.asked(s.ID)) {
			continue // nothing new, and its check by id is not due
		}
		var ch change
		if same { // a confirmation: the record's fields as they are
			cur := *old
			ch = change{op: opConfirm, id: s.ID, old: old, cur: &cur}
		} else {
			ch = compare(fields, s.ID, old, withSeats(old, s))
		}
		cur := ch.cur
		if next := c.policy.NextCheck(a.asked, old.showtime.time()); !next.IsZero() {
			cur.nextCheck = instantOf(next)
		}
		cur.checked, cur.asOf = instantOf(a.asked), instantOf(a.asked)
		changes = append(changes, ch)
	}
	for id, due := range held { // held back, and not read
		r := cache[id]
		if r == nil || r.missing || c.asked(id) || r.asOf.time().After(a.asked) || due.IsZero() {
			continue // gone, being asked for, read since, or not yet due: its own schedule
		}
		c.reschedule(id, r, due) // by id, now
	}
	return changes
}
