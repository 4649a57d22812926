// The seat checker: which sessions are due (due), the checks in flight,
// and when each session is checked next (reschedule); checks.go sends
// the requests and writes their answers.
package warmer

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
)

// checker is the seat checker of one writer's state: when each session is
// checked next (its timeline), the sessions asked for whose answers are
// not written yet, and the checks in flight. The writer's loop alone
// calls it; the upstream budget, not the checker, paces the requests.
type checker struct {
	policy   Policy
	batch    int // sessions a request carries at most
	m        *Metrics
	timeline timeline
	inflight map[string]bool // sessions asked for whose answers are not written yet
	asking   map[*ask]bool   // checks sent whose answers have not come
	lone     []*ask          // answers calling their one session gone, waiting for earlier ones (takeAnswers)
	windows  []*sweep        // the window sweeps (window.go); none without window queries
	urgent   map[string]bool // checked by id at once, wherever the showtime: a sweep called it cancelled
}

func newChecker(policy Policy, batch int, m *Metrics, windows []*sweep, valid func(slot) bool) *checker {
	c := &checker{policy: policy, batch: batch, m: m, windows: windows, inflight: map[string]bool{}, asking: map[*ask]bool{},
		urgent: map[string]bool{}}
	c.timeline.valid = valid
	return c
}

// put puts a session's next check on the timeline.
func (c *checker) put(at time.Time, id string) { c.timeline.push(at, id) }

// next is when the next check or window query is due; zero when none is.
func (c *checker) next() time.Time {
	next, sweep := c.timeline.next(), c.nextSweep()
	if next.IsZero() || (!sweep.IsZero() && sweep.Before(next)) {
		return sweep
	}
	return next
}

// idle reports whether no session is asked for and no window is out.
func (c *checker) idle() bool {
	for _, s := range c.windows {
		if s.flying {
			return false
		}
	}
	return len(c.inflight) == 0
}

// asked reports whether id is asked for, its answer not written yet.
func (c *checker) asked(id string) bool { return c.inflight[id] }

// sent notes a check sent; answered, its answer come.
func (c *checker) sent(a *ask)     { c.asking[a] = true }
func (c *checker) answered(a *ask) { delete(c.asking, a) }

// written notes that the answer for id is being written: it may be
// asked for again.
func (c *checker) written(id string) { delete(c.inflight, id) }

// holdLone keeps an answer that calls its one session gone until the
// checks asked with it or before are answered (see takeAnswers); takeLone
// returns those kept.
func (c *checker) holdLone(a *ask) { c.lone = append(c.lone, a) }
func (c *checker) takeLone() []*ask {
	l := c.lone
	c.lone = nil
	return l
}

// compact drops the timeline's stale entries once they outnumber the
// sessions (n).
func (c *checker) compact(n int) { c.timeline.compact(n) }

// due takes from the schedule the sessions whose check is due at
// now, and fills the last request with sessions due within half their
// interval: they ride along with a request that goes anyway, one request
// and not several a second apart, never more than half an interval early.
// The requests come back nearest showtime first.
func (c *checker) due(st *state, now time.Time) []*ask {
	cache := st.cache[keys.Sessions]
	taken := map[string]bool{}
	due := map[string]time.Time{}
	var ids []string
	take := func(s slot) bool {
		r := cache[s.id]
		if r == nil {
			delete(c.urgent, s.id)
		}
		if taken[s.id] || c.inflight[s.id] || r == nil {
			return true // a second entry for it, or one on its way: done
		}
		if c.urgent[s.id] && !s.time().After(now) {
			delete(c.urgent, s.id)
			taken[s.id] = true
			ids = append(ids, s.id)
			due[s.id] = s.time()
			return true
		}
		if until := c.sweptBy(s.id, s.time(), now, r.showtime.time()); !until.IsZero() {
			// A window sweep that is out or going out now reads it: its
			// check by id waits for that answer, which confirms it, and
			// counts it as a check by id's is (late), so that the
			// lateness alert has data with window queries on.
			if !s.time().After(now) {
				c.reschedule(s.id, r, until)
				return true
			}
			return false
		}
		iv, inHorizon := c.policy.Interval(now, r.showtime.time())
		if !inHorizon {
			// Not checked now. One looked at to fill a request keeps its
			// place; one due whose showtime moved past the horizon is
			// checked when it enters; one expired is the expiry's.
			if s.time().After(now) {
				return false
			}
			if next := c.policy.NextCheck(now, r.showtime.time()); !next.IsZero() {
				c.reschedule(s.id, r, next)
			}
			return true
		}
		if s.time().After(now.Add(iv / 2)) {
			return false
		}
		taken[s.id] = true
		ids = append(ids, s.id)
		if !s.time().After(now) {
			due[s.id] = s.time()
		}
		return true
	}
	for {
		s, ok := c.timeline.pop(now)
		if !ok {
			break
		}
		take(s)
	}
	if len(ids) == 0 {
		return nil
	}
	if b := c.batch; b > 1 && len(ids)%b != 0 {
		room := b - len(ids)%b
		var back []slot
		until := now.Add(c.policy.longestInterval() / 2)
		for look := 0; len(ids)%b != 0 && look < 2*room; look++ {
			s, ok := c.timeline.pop(until)
			if !ok {
				break
			}
			if !take(s) {
				back = append(back, s)
			}
		}
		for _, s := range back {
			c.timeline.push(s.time(), s.id)
		}
	}
	// The nearest showtimes first: should the budget be short, they go
	// out first and the far ones slip.
	dist := func(id string) time.Duration { return absDur(cache[id].showtime.time().Sub(now)) }
	slices.SortFunc(ids, func(a, b string) int {
		if c := cmp.Compare(dist(a), dist(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	// Taken off the schedule: until its answer is written, a session is
	// not asked for again, and the write puts it back (see place).
	for _, id := range ids {
		c.inflight[id] = true
	}
	var asks []*ask
	for chunk := range slices.Chunk(ids, c.batch) {
		a := &ask{st: st, ids: chunk, due: map[string]time.Time{}, asked: now, prio: now.Add(dist(chunk[0]))}
		for _, id := range chunk {
			if at, ok := due[id]; ok {
				a.due[id] = at
			}
		}
		asks = append(asks, a)
	}
	c.m.checksSent.WithLabelValues("due").Add(float64(len(due)))
	c.m.checksSent.WithLabelValues("early").Add(float64(len(ids) - len(due)))
	return asks
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// askedBefore reports whether a check asked no later than a is still
// unanswered.
func (c *checker) askedBefore(a *ask) bool {
	for b := range c.asking {
		if !b.asked.After(a.asked) {
			return true
		}
	}
	return false
}

// late records how late each due session of a request went out, by tier,
// the wait for the upstream budget included.
//
// Lateness counts from the due time or from when this writer began to
// keep the schedule (state.since), whichever is later: a check that fell
// due while no warmer kept the cache (the warmer was stopped, a standby
// had not yet taken over, the process was paused past its lease) is not
// late by this writer's doing, and counting the downtime there would
// raise the lateness alert after every restart. How long such a check had
// been overdue when this writer began goes to vista_warmer_check_unkept_seconds,
// so the metrics still say how long the cache went unchecked.
func (c *checker) late(a *ask, cache map[string]*record) {
	for id, at := range a.due {
		r := cache[id]
		if r == nil {
			continue
		}
		tier := c.policy.Tier(at, r.showtime.time())
		if late := c.count(tier, at, a.st.since, a.asked, a.waited); a.waited > 0 && late > time.Second {
			c.m.slipped.WithLabelValues(tier).Inc()
		}
	}
}

// count observes a check of tier that fell due at due and went out at
// sent after waited for the upstream budget, for a writer that began at
// since: the time it went unchecked before since as unkept, the rest as
// lateness, which it returns.
func (c *checker) count(tier string, due, since, sent time.Time, waited time.Duration) time.Duration {
	from := due
	if since.After(due) {
		c.m.unkept.WithLabelValues(tier).Observe(since.Sub(due).Seconds())
		from = since
	}
	late := max(sent.Sub(from), 0) + waited
	c.m.lateness.WithLabelValues(tier).Observe(late.Seconds())
	return late
}

// reschedule moves a cached session's next check, in place: only the
// schedule reads it until the next write.
func (c *checker) reschedule(id string, r *record, at time.Time) {
	r.nextCheck = instantOf(at)
	c.timeline.push(at, id)
}
