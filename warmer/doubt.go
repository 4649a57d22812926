package warmer

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
)

// Seat checks under the drop guard. A full list that would remove more
// than --max-drop is held back (judgeDrop); a seat check's answer that
// finds none of the sessions it asked for is as suspect: a misrouted
// gateway or a broken Vista cache answers every query with an empty
// list. Such an answer removes nothing on its own. The sessions it
// calls gone are doubted: checked again on their schedule, and removed
// when an answer that does find sessions says they are gone, or by the
// next full list (under its own guard). Past a batch of doubted
// sessions, the doubt is a held drop, with its warning, metric and
// /readyz reason.

// doubtFor is how long after a suspect answer every answer that finds
// nothing is suspect too, even of one session: while Vista answers empty
// lists, a check of one session is no better.
const doubtFor = 5 * time.Minute

// doubtful reports whether an answer's "gone" is not to be believed: it
// found none of the sessions asked for, and asked for more than one, or
// came while an earlier answer was doubted.
func (w *Warmer) doubtful(a *ask) bool {
	if len(a.gone) == 0 || len(a.seats) > 0 {
		return false
	}
	if len(a.ids) > 1 {
		w.st.doubtAt = maxTime(w.st.doubtAt, a.asked)
		return true
	}
	// A lone session: doubted only within doubtFor of an answer about
	// several, which alone keeps the doubt open; a session really gone,
	// checked alone again and again, is removed once that has passed.
	return !w.st.doubtAt.IsZero() && a.asked.Sub(w.st.doubtAt) < doubtFor
}

// doubt notes a session a suspect answer called gone, and checks it
// again on its schedule.
func (w *Warmer) doubt(id string, r *record, at time.Time) {
	if _, ok := w.st.doubted[id]; !ok {
		w.st.doubted[id] = at
		w.m.checksDoubted.Inc()
	}
	w.st.checker.reschedule(id, r, w.cfg.Policy.NextCheck(at, r.showtime.time()))
}

// judgeDoubts says once a minute how many sessions are doubted, and turns
// the doubt into a held drop past a batch of them; it clears the held
// drop it made once the doubt is gone. step calls it after the checks.
func (w *Warmer) judgeDoubts(now time.Time) {
	st := w.st
	for id := range st.doubted {
		if st.cache[keys.Sessions][id] == nil {
			delete(st.doubted, id) // expired, or removed since
		}
	}
	n := len(st.doubted)
	if n > 0 && time.Since(st.doubtSaid) >= complainEvery {
		st.doubtSaid = time.Now()
		w.log.Warn("seat checks called sessions gone in answers that found none of those asked for; not believed until another check or the next list agrees (logged once a minute)",
			"doubted", n)
	}
	bound := max(w.cfg.CheckBatch, 1)
	held := st.kinds[keys.Sessions].held
	switch {
	case n > bound && held == nil, held != nil && held.checks && n > 0 && n != len(held.ids):
		ids := make(map[string]bool, n)
		first := now
		for id, at := range st.doubted {
			ids[id] = true
			first = minTime(first, at)
		}
		w.setHeld(keys.Sessions, &heldDrop{ids: ids, at: first, total: len(st.cache[keys.Sessions]), checks: true})
		if held == nil {
			w.m.dropsHeld.WithLabelValues(string(keys.Sessions)).Inc()
			w.log.Warn("holding back a drop: seat checks call more sessions gone than a batch, in answers that found none; removed only if the next list says the same",
				"kind", keys.Sessions, "would_remove", n, "of", len(st.cache[keys.Sessions]))
		}
	case n == 0 && held != nil && held.checks:
		w.log.Info("seat checks find the sessions again; the drop held back is dropped", "kind", keys.Sessions)
		w.setHeld(keys.Sessions, nil)
	}
}

// removals counts what seat checks removed since it was last said, by
// reason, to say it in one line a minute.
type removals struct {
	n    map[string]int
	said time.Time // real time
}

func (r *removals) add(reason string) {
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[reason]++
}

// say logs what seat checks removed, once a minute at most.
func (w *Warmer) sayRemovals() {
	r := &w.st.removals
	if len(r.n) == 0 || time.Since(r.said) < complainEvery {
		return
	}
	attrs := []any{}
	total := 0
	for _, reason := range []string{keys.ReasonGone, keys.ReasonCancelled} {
		if n := r.n[reason]; n > 0 {
			attrs = append(attrs, slog.Int(reason, n))
			total += n
		}
	}
	w.log.Info(fmt.Sprintf("seat checks removed %d sessions (logged once a minute at most)", total), attrs...)
	clear(r.n)
	r.said = time.Now()
}
