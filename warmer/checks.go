// Seat checks as the writer's loop runs them: sessions past their grace
// expire (expire), the due ones are asked for in the background
// (sendChecks, send), and their answers are written (takeAnswers,
// writeAnswers). What is due is the checker's (checker.go).
package warmer

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
)

// expire removes the sessions whose showtime + grace has passed, from their
// key and every index, with an expired event each. Redis drops the key by
// its TTL at the same moment; the indexes are ours to clean. It takes them
// from the schedule, so it looks at no session that has not expired.
func (w *Warmer) expire(ctx context.Context, now time.Time) error {
	cache := w.st.cache[keys.Sessions]
	var changes []change
	seen := map[string]bool{}
	for {
		s, ok := w.st.expiries.pop(now)
		if !ok {
			break
		}
		if r := cache[s.id]; r != nil && !seen[s.id] {
			seen[s.id] = true
			changes = append(changes, removal(s.id, r, keys.ReasonExpired))
		}
	}
	if len(changes) == 0 {
		return nil
	}
	slices.SortFunc(changes, func(a, b change) int { return strings.Compare(a.id, b.id) })
	return w.apply(ctx, keys.Sessions, changes, now)
}

// sweepIndexes removes from the sessions' indexes what an earlier run may
// have left there past its time. The full sessions reload runs it.
func (w *Warmer) sweepIndexes(ctx context.Context, now time.Time) error {
	wctx := context.WithoutCancel(ctx)
	limit := strconv.FormatInt(now.Add(-w.cfg.Policy.Grace).Unix(), 10)
	sp := w.specs[keys.Sessions]
	err := w.store.fenced(wctx, w.guard(), func(pipe redis.Pipeliner) {
		pipe.ZRemRangeByScore(wctx, keys.Index(w.cfg.Prefix, sp.kind), "-inf", limit)
		for _, o := range sp.owners {
			for id := range w.st.cache[o.kind] {
				pipe.ZRemRangeByScore(wctx, o.key(w.cfg.Prefix, id), "-inf", limit)
			}
		}
	})
	if err != nil {
		return fmt.Errorf("sweep indexes: %w", err)
	}
	return nil
}

// checkTimeout bounds one seat request; a check that takes longer is
// stale on arrival, and the sessions come round again on their schedule.
const checkTimeout = 30 * time.Second

// ask is one seat request: the sessions it carries, when they were due
// (riders that go early have no due time), and what Vista answered.
type ask struct {
	st    *state // the writer's state it was asked for
	ids   []string
	due   map[string]time.Time
	asked time.Time // on the warmer's clock
	prio  time.Time // for the upstream budget: the most urgent session's

	// A window query (window.go) instead: the sweep and the windows of
	// wall time asked for.
	window *sweep
	walls  []vista.Window
	took   time.Duration // real time the window query took

	seats  []vista.Seats
	gone   []string
	err    error
	waited time.Duration // for the upstream budget
}

// send makes one seat request.
func (w *Warmer) send(ctx context.Context, a *ask) {
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	ticket := &vista.Ticket{}
	cctx = vista.WithTicket(vista.WithPriority(cctx, a.prio), ticket)
	if a.window != nil {
		start := time.Now()
		a.seats, a.err = w.cfg.Vista.(WindowFetcher).SeatsBetween(cctx, a.walls...)
		a.took = time.Since(start)
	} else {
		a.seats, a.gone, a.err = w.cfg.Vista.CheckSeats(cctx, a.ids)
	}
	a.waited = ticket.Waited()
}

// sendChecks sends the requests for the sessions due at now, each in a
// goroutine of its own; the writer's loop writes the answers when they come. The
// upstream budget, not the warmer, decides how many are in flight.
func (w *Warmer) sendChecks(ctx context.Context, now time.Time) {
	var asks []*ask
	if w.st.kinds[keys.Sessions].loaded {
		asks = w.st.checker.dueSweeps(w.st, now, w.st.offsets)
	}
	asks = append(asks, w.st.checker.due(w.st, now)...)
	for _, a := range asks {
		w.st.checker.sent(a)
		w.goAsk(func() {
			w.send(ctx, a)
			select {
			case w.answers <- a:
			case <-ctx.Done():
				return // Run has stopped taking answers in
			}
			select {
			case w.arrived <- struct{}{}:
			default:
			}
		})
	}
}

// takeAnswers writes the seat checks answered since the last step. An
// answer that calls its one session gone waits for the answers to every
// check asked with it or before: whether Vista answers empty lists is
// told by those (see doubtful), and answers come in any order.
func (w *Warmer) takeAnswers(ctx context.Context) error {
	var asks []*ask
	if w.st != nil {
		asks = w.st.checker.takeLone()
	}
	for {
		select {
		case a := <-w.answers:
			if a.st == w.st {
				w.st.checker.answered(a)
			}
			asks = append(asks, a)
			continue
		default:
		}
		break
	}
	if w.st != nil {
		ready := asks[:0]
		for _, a := range asks {
			if a.st == w.st && a.loneGone() && w.st.checker.askedBefore(a) {
				w.st.checker.holdLone(a)
				continue
			}
			ready = append(ready, a)
		}
		asks = ready
	}
	return w.writeAnswers(ctx, asks)
}

// loneGone reports whether an answer calls the one session asked for gone.
func (a *ask) loneGone() bool {
	return a.err == nil && len(a.ids) == 1 && len(a.seats) == 0 && len(a.gone) > 0
}

// writeAnswers writes what seat checks found: seats and status that changed, a
// session Vista no longer has or has cancelled, and when each is checked
// next. An answer older than what the cache holds since (a list fetched
// after it was asked) is not taken.
func (w *Warmer) writeAnswers(ctx context.Context, asks []*ask) error {
	if w.st == nil {
		return nil
	}
	cache := w.st.cache[keys.Sessions]
	// The sessions asked for are off the schedule until their answers are
	// written, which puts them back on it (see place); one whose next
	// check the answer leaves where it was is put back here.
	before := map[string]instant{}
	for _, a := range asks {
		if a.st == w.st {
			for _, id := range a.ids {
				w.st.checker.written(id)
				if r := cache[id]; r != nil {
					before[id] = r.nextCheck
				}
			}
		}
	}
	defer func() {
		if w.st == nil {
			return
		}
		for id, t := range before {
			if r := w.st.cache[keys.Sessions][id]; r != nil && !r.missing && r.nextCheck == t {
				w.st.checker.put(t.time(), id)
			}
		}
	}()
	// Answers of several sessions that found none open the doubt first,
	// whatever order the answers came in.
	for _, a := range asks {
		if a.st == w.st && a.err == nil && len(a.ids) > 1 && len(a.seats) == 0 && len(a.gone) > 0 {
			w.st.doubtAt = maxTime(w.st.doubtAt, a.asked)
		}
	}
	// A session two answers of the batch give (a window query and a check
	// by id may be out together) takes the one asked last; of two asked at
	// the same instant (a sweep and a check by id sent together, for a
	// session the last sweep lacked), the one that found it, the first of
	// those: it is written once, with one event.
	type taken struct {
		a     *ask
		found bool // it gave the session's seats, not that it is gone
	}
	var taker map[string]taken // nil for a lone answer: nothing to order
	if len(asks) > 1 {
		taker = map[string]taken{}
		take := func(id string, a *ask, found bool) {
			t, ok := taker[id]
			if !ok || a.asked.After(t.a.asked) || a.asked.Equal(t.a.asked) && found && !t.found {
				taker[id] = taken{a, found}
			}
		}
		for _, a := range asks {
			if a.st != w.st {
				continue
			}
			for _, s := range a.seats {
				take(s.ID, a, true)
			}
			for _, id := range a.gone {
				take(id, a, false)
			}
		}
	}
	newer := func(id string, a *ask) bool { t, ok := taker[id]; return ok && t.a != a }
	var changes []change
	gone := map[string]time.Time{}
	for _, a := range asks {
		if a.st != w.st {
			continue // asked for a writer's state that has gone since
		}
		if a.window != nil {
			changes = append(changes, w.takeSweep(a, cache, newer)...)
			continue
		}
		w.st.checker.late(a, cache)
		if a.err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			w.m.errors.WithLabelValues("check").Inc()
			if log, n := w.complaints.failed("check", time.Now()); log {
				w.log.Warn("seat checks fail; the sessions are tried again at their next check (logged once a minute while it lasts)",
					"requests", n, "sessions", len(a.ids), "err", a.err)
			}
			now := w.cfg.Clock.Now()
			f := &checkFailure{since: now, last: now, err: excerpt(a.err.Error())}
			if prev := w.checksFailing.Load(); prev != nil {
				f.since = prev.since
			}
			w.checksFailing.Store(f)
		} else {
			w.checksFailing.Store(nil)
			w.worksAgain("check")
		}
		// Nothing is dropped on a failed check: the sessions keep their
		// data and are looked at again on their own schedule, which is
		// their retry, so an outage of Vista does not turn into more load.
		answered := map[string]bool{}
		for _, s := range a.seats {
			answered[s.ID] = true
			old := cache[s.ID]
			switch {
			case old == nil, old.asOf.time().After(a.asked), newer(s.ID, a):
			case s.Cancelled():
				changes = append(changes, removal(s.ID, old, keys.ReasonCancelled))
				gone[s.ID] = a.asked
			default:
				cur := withSeats(old, s)
				cur.nextCheck = instantOf(w.cfg.Policy.NextCheck(a.asked, cur.showtime.time()))
				cur.checked, cur.asOf = instantOf(a.asked), instantOf(a.asked)
				changes = append(changes, compare(w.fields[keys.Sessions], s.ID, old, cur))
			}
		}
		doubt := w.doubtful(a)
		for _, id := range a.gone {
			answered[id] = true
			old := cache[id]
			switch {
			case old == nil, old.asOf.time().After(a.asked), newer(id, a):
			case w.st.kinds[keys.Sessions].held != nil && !w.st.kinds[keys.Sessions].held.checks:
				// Vista's lists are in doubt (a drop is held back): a seat
				// check that no longer finds a session is not believed
				// either, until the drop is confirmed or dropped. (A drop
				// held for seat checks' answers is judged answer by answer,
				// below: one that finds sessions is believed.)
				w.st.checker.reschedule(id, old, w.cfg.Policy.NextCheck(a.asked, old.showtime.time()))
			case doubt:
				// An answer that finds none of the sessions asked for is
				// as suspect as an empty list: not believed on its own.
				w.doubt(id, old, a.asked)
			default:
				changes = append(changes, removal(id, old, keys.ReasonGone))
				gone[id] = a.asked
				delete(w.st.doubted, id)
			}
		}
		for _, s := range a.seats {
			delete(w.st.doubted, s.ID) // found: whatever was said of it before
		}
		for _, id := range a.ids {
			if old := cache[id]; old != nil && !answered[id] && !old.asOf.time().After(a.asked) {
				w.st.checker.reschedule(id, old, w.cfg.Policy.NextCheck(a.asked, old.showtime.time()))
			}
		}
	}
	if len(changes) == 0 {
		return nil
	}
	if err := w.apply(ctx, keys.Sessions, changes, w.cfg.Clock.Now()); err != nil {
		if w.st != nil {
			// The answers are lost; the sessions are asked again at their
			// usual pace, not at once (Vista is not asked more because
			// Redis refuses writes).
			for _, c := range changes {
				if r := w.st.cache[keys.Sessions][c.id]; r != nil && before[c.id] == r.nextCheck {
					w.st.checker.reschedule(c.id, r, w.cfg.Policy.NextCheck(w.cfg.Clock.Now(), r.showtime.time()))
				}
			}
		}
		return err
	}
	// A list fetched before these answers must not bring them back.
	for id, at := range gone {
		w.st.checkRemoved[id] = at
	}
	for _, c := range changes {
		if c.op == opRemove {
			w.st.removals.add(c.reason)
			w.m.checkRemovals.WithLabelValues(c.reason).Inc()
		}
	}
	return nil
}

// takeSweep notes a window query's answer and returns its changes.
func (w *Warmer) takeSweep(a *ask, cache map[string]*record, newer func(string, *ask) bool) []change {
	held := a.window.held
	a.window.held = nil
	refused, failing := w.st.checker.swept(a, w.cfg.Clock.Now())
	switch {
	case refused:
		w.log.Warn("vista refuses window queries; seats are checked by id alone, and a window is tried again in an hour",
			"window", a.window.name, "err", a.err)
	case failing:
		w.log.Warn("window queries fail or answer slowly; seats are checked by id alone while they back off",
			"window", a.window.name, "took", a.took.Round(time.Millisecond), "err", a.err)
	}
	for _, s := range a.seats {
		delete(w.st.doubted, s.ID) // found: whatever a check by id said of it before
	}
	return w.st.checker.sweepChanges(a, held, cache, w.fields[keys.Sessions], newer)
}
