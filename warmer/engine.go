package warmer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
)

// op is what a change does to the cache.
type op int

const (
	opConfirm op = iota // unchanged: only updated_at (and next_check_at) move
	opAdd
	opUpdate
	opRemove
)

// change is one entity's change. The same value drives the Redis writes, the
// event and the metrics, whatever the kind.
type change struct {
	op      op
	id      string
	old     *record // nil for an addition
	cur     *record // nil for a removal
	changed []string
	reason  string // removals only
}

func (c change) outcome() string {
	switch c.op {
	case opAdd:
		return outAdded
	case opUpdate:
		return outUpdated
	case opRemove:
		return outRemoved
	}
	return outUnchanged
}

// compare turns a cached record and an upstream one into a change; names
// are the kind's data fields.
func compare(names []string, id string, old, cur *record) change {
	if old == nil || old.missing {
		return change{op: opAdd, id: id, old: old, cur: cur, changed: diff(names, nil, cur)}
	}
	if changed := diff(names, old, cur); len(changed) > 0 {
		return change{op: opUpdate, id: id, old: old, cur: cur, changed: changed}
	}
	return change{op: opConfirm, id: id, old: old, cur: cur}
}

func removal(id string, old *record, reason string) change {
	return change{op: opRemove, id: id, old: old, reason: reason}
}

// listing is one whole list as Vista sent it, made into records.
type listing struct {
	recs map[string]*record
	// Sessions Vista lists as cancelled, and those it still lists past
	// their showtime + grace: the reason a cached one leaves by.
	cancelled, expired map[string]bool
	// keep holds the ids of rows Vista sent but that could not be taken:
	// they stay as cached. partial is set when such a row had no readable
	// id, so nothing can be called gone in this reload.
	keep    map[string]bool
	partial bool

	bad        map[string]int // rows refused, by reason
	firstBad   string         // the first refused row, for the log
	duplicates int            // rows whose id an earlier row had
	firstDup   string

	began time.Time // when the fetch began, in real time, for the log
	now   time.Time // when it began, on the warmer's clock
}

// The reasons a row is refused, as the metric labels them.
const (
	badUnreadable = "unreadable"   // a value cannot be read
	badUnsafeID   = "unsafe_id"    // an id cannot be part of a key
	badTooLarge   = "too_large"    // a text value over 4 KiB, raw over 64 KiB
	badOutOfRange = "out_of_range" // a showtime a day past or 400 days ahead
)

var badReasons = []string{badUnreadable, badUnsafeID, badTooLarge, badOutOfRange}

// Bounds on what the warmer takes from Vista, beyond the client's own.
const (
	// MaxRawBytes bounds the raw field (--keep-raw): a longer row is refused.
	MaxRawBytes = 64 << 10
	// A showtime further in the past than this, or further ahead than
	// maxAhead, is refused: no cinema lists such sessions, and a garbled
	// date must not become a key that never expires.
	maxBehind = 24 * time.Hour
	maxAhead  = 400 * 24 * time.Hour
)

func (l *listing) refuse(reason, id, msg string) {
	if l.bad == nil {
		l.bad = map[string]int{}
	}
	l.bad[reason]++
	if l.firstBad == "" {
		l.firstBad = msg
	}
	if id != "" {
		l.keep[id] = true
	}
}

// seen counts a row whose id an earlier row of the list had: the last row
// wins, and whatever an earlier one said of the id is forgotten.
func (l *listing) seen(id string, ids map[string]bool) {
	if !ids[id] {
		ids[id] = true
		return
	}
	l.duplicates++
	if l.firstDup == "" {
		l.firstDup = id
	}
	delete(l.recs, id)
	delete(l.cancelled, id)
	delete(l.expired, id)
	delete(l.keep, id)
}

// fetch reads one whole list of a kind from Vista, at the clock's now;
// zones gives the sessions' cinemas their zones. It reads nothing of the
// writer's state, so Run has it run beside the writer's other work.
func (w *Warmer) fetch(ctx context.Context, k keys.Kind, now time.Time, zones map[string]*time.Location) (*listing, error) {
	l := &listing{recs: map[string]*record{}, cancelled: map[string]bool{}, expired: map[string]bool{}, keep: map[string]bool{},
		began: time.Now(), now: now}
	ids := map[string]bool{}
	take := func(id string, r *record) {
		if len(r.raw) > MaxRawBytes {
			l.refuse(badTooLarge, id, fmt.Sprintf("%s %s: raw is %d bytes, more than %d", k.Singular(), id, len(r.raw), MaxRawBytes))
			return
		}
		l.recs[id] = r
	}
	var err error
	switch k {
	case keys.Cinemas:
		var list []vista.Cinema
		list, err = w.cfg.Vista.Cinemas(ctx)
		for _, c := range list {
			l.seen(c.ID, ids)
			take(c.ID, w.cinemaRecord(c))
		}
	case keys.Films:
		var list []vista.Film
		list, err = w.cfg.Vista.Films(ctx)
		for _, f := range list {
			l.seen(f.ID, ids)
			take(f.ID, w.filmRecord(f))
		}
	case keys.Sessions:
		var list []vista.Session
		list, err = w.cfg.Vista.Sessions(ctx, zones)
		for _, s := range list {
			l.seen(s.ID, ids)
			switch {
			case s.Cancelled():
				l.cancelled[s.ID] = true
			case s.Showtime.Before(now.Add(-maxBehind)) || s.Showtime.After(now.Add(maxAhead)):
				l.refuse(badOutOfRange, s.ID, fmt.Sprintf("session %s: showtime %s is more than a day past or 400 days ahead",
					s.ID, s.Showtime.Format(time.RFC3339)))
			case w.expired(now, s.Showtime):
				l.expired[s.ID] = true
			default:
				r := w.sessionRecord(s)
				r.nextCheck = w.cfg.Policy.FirstCheck(now, r.showtime, s.ID)
				r.asOf = now
				take(s.ID, r)
			}
		}
	}
	for _, r := range l.recs {
		r.rawSum = checksum(r.raw)
	}
	var rowErrs vista.RowErrors
	if errors.As(err, &rowErrs) {
		for _, e := range rowErrs {
			reason := badUnreadable
			switch {
			case errors.Is(e, vista.ErrUnsafeID):
				reason = badUnsafeID
			case errors.Is(e, vista.ErrTooLarge):
				reason = badTooLarge
			}
			// A row without a readable id may be any cached entity, so
			// nothing is called gone; one whose own id is unsafe names
			// nothing the cache can hold.
			if e.ID == "" && reason != badUnsafeID {
				l.partial = true
			}
			l.refuse(reason, e.ID, e.Error())
		}
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", k, err)
	}
	w.reportRows(k, l)
	return l, nil
}

// reportRows logs, once per reload, the rows of a list that were refused
// or repeated, and counts them.
func (w *Warmer) reportRows(k keys.Kind, l *listing) {
	if n := sumCounts(l.bad); n > 0 {
		attrs := []any{"kind", k, "rows", n}
		for _, reason := range badReasons {
			if c := l.bad[reason]; c > 0 {
				attrs = append(attrs, reason, c)
				w.m.badRows.WithLabelValues(string(k), reason).Add(float64(c))
			}
		}
		attrs = append(attrs, "first", l.firstBad)
		w.log.Warn("vista sent rows that cannot be cached; they are not written, and what the cache holds for their ids stays", attrs...)
	}
	if l.duplicates > 0 {
		w.m.duplicates.WithLabelValues(string(k)).Add(float64(l.duplicates))
		w.log.Warn("vista listed some ids more than once; the last row of each counts",
			"kind", k, "duplicates", l.duplicates, "first", l.firstDup)
	}
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// zones maps each cached cinema to the zone its wall times are read in.
func (w *Warmer) zones() map[string]*time.Location {
	z := map[string]*time.Location{}
	for id, r := range w.st.cache[keys.Cinemas] {
		if loc, err := vista.LoadZone(r.vals[cTimezone]); err == nil {
			z[id] = loc
		}
	}
	return z
}

func (w *Warmer) expired(now, showtime time.Time) bool {
	return !showtime.IsZero() && !now.Before(showtime.Add(w.cfg.Policy.Grace))
}

// reload runs one full reload of a kind: fetch, then commit.
func (w *Warmer) reload(ctx context.Context, k keys.Kind) error {
	w.loading(k)
	l, err := w.fetch(ctx, k, w.cfg.Clock.Now(), w.zones())
	if err != nil {
		return err
	}
	return w.commit(ctx, k, l)
}

func (w *Warmer) loading(k keys.Kind) {
	if w.st.quiet[k] {
		w.log.Info("loading from vista", "kind", k)
	}
}

// commit takes a list Vista sent into the cache: diff, apply, announce.
//
// The list may have been fetched while seat checks went on (Run fetches
// beside them): what a check saw after the fetch began is newer than the
// list, so a session's seats and status checked since stay, and a session
// a check removed since is not brought back.
func (w *Warmer) commit(ctx context.Context, k keys.Kind, l *listing) error {
	listed := l.now          // when Vista said so
	now := w.cfg.Clock.Now() // when it goes into Redis
	start := l.began
	cache := w.st.cache[k]
	if k == keys.Sessions {
		for id, at := range w.st.checkRemoved {
			if at.After(listed) {
				delete(l.recs, id)
				l.keep[id] = true
			}
		}
		clear(w.st.checkRemoved) // the next list is fetched after this
		for id, cur := range l.recs {
			old := cache[id]
			if old == nil || old.missing {
				continue
			}
			// A session checked on its own keeps its place in the schedule
			// (and the company it is checked in) when it comes no later
			// than the list would have it.
			if old.nextCheck.After(listed) && !old.nextCheck.After(w.cfg.Policy.NextCheck(listed, cur.showtime)) {
				cur.nextCheck = old.nextCheck
			}
			if old.checked.After(listed) {
				cur.vals[sSeatsAvailable] = old.vals[sSeatsAvailable]
				cur.vals[sSoldoutStatus] = old.vals[sSoldoutStatus]
				cur.vals[sStatus] = old.vals[sStatus]
				cur.vals[sState] = old.vals[sState]
				cur.checked = old.checked
			}
		}
	}
	changes := make([]change, 0, len(l.recs))
	for _, id := range sortedKeys(l.recs) {
		if !l.keep[id] { // a film with one bad row of several stays as it was
			changes = append(changes, compare(w.fields[k], id, cache[id], l.recs[id]))
		}
	}
	for _, id := range sortedKeys(cache) {
		if _, ok := l.recs[id]; ok || l.keep[id] {
			continue
		}
		switch {
		case l.cancelled[id]:
			changes = append(changes, removal(id, cache[id], ReasonCancelled))
		case l.expired[id]:
			changes = append(changes, removal(id, cache[id], ReasonExpired))
		case k == keys.Sessions && w.expired(now, cache[id].showtime):
			// left to expire(), which runs next with the same clock
		case !l.partial:
			changes = append(changes, removal(id, cache[id], ReasonGone))
		}
	}
	changes, held := w.judgeDrop(k, changes, now)
	if err := w.apply(ctx, k, changes, now); err != nil {
		return err
	}
	if k == keys.Sessions {
		if err := w.sweepIndexes(ctx, now); err != nil {
			return err
		}
	}
	if err := w.repairIndexes(ctx, k); err != nil {
		return err
	}
	if held {
		// The list is not taken as a whole until the drop is confirmed:
		// no full_reload, and loaded:{kind} stays where it was.
		w.log.Info("reloaded, holding back a drop", "kind", k, "count", w.count(k), "took", time.Since(start).Round(time.Millisecond),
			"added", countOp(changes, opAdd), "updated", countOp(changes, opUpdate), "removed", countOp(changes, opRemove),
			"held_back", len(w.st.held[k].ids))
		return nil
	}
	if err := w.announce(ctx, k); err != nil {
		return err
	}
	w.log.Info("reloaded", "kind", k, "count", w.count(k), "took", time.Since(start).Round(time.Millisecond),
		"added", countOp(changes, opAdd), "updated", countOp(changes, opUpdate), "removed", countOp(changes, opRemove))
	return nil
}

// heldDrop is a drop a full reload would have made and the warmer held back.
type heldDrop struct {
	ids   map[string]bool // what would have been removed
	at    time.Time       // when it was first held
	total int             // the kind's entries then
}

// ConfirmDropAfter is how long after a drop was held back a reload must
// come to confirm it: a glitch of Vista's (an empty answer, a half list)
// rarely lasts that long, a real drop (a cinema closing screens) does.
const ConfirmDropAfter = time.Minute

// judgeDrop holds back the removals of a full reload that would remove
// more than MaxDrop of a kind's entries (expired sessions do not count).
// It returns the changes to apply and whether a drop is held back. A held
// drop is applied when a reload at least ConfirmDropAfter later would
// remove the same entities; what that reload would remove beyond them is
// judged anew.
func (w *Warmer) judgeDrop(k keys.Kind, changes []change, now time.Time) ([]change, bool) {
	total := len(w.st.cache[k])
	var drop []string
	for _, c := range changes {
		if c.op == opRemove && c.reason != ReasonExpired {
			drop = append(drop, c.id)
		}
	}
	// over reports whether removing n of the kind's of entries is more
	// than MaxDrop allows.
	over := func(n, of int) bool { return n > 0 && float64(n) > w.cfg.MaxDrop*float64(of) }
	prev := w.st.held[k]
	if !over(len(drop), total) {
		if prev != nil {
			w.log.Info("vista's list agrees with the cache again; the drop held back is dropped", "kind", k)
			w.setHeld(k, nil)
		}
		return changes, false
	}
	agreed := map[string]bool{}
	confirming := prev != nil && now.Sub(prev.at) >= ConfirmDropAfter
	if confirming {
		for _, id := range drop {
			if prev.ids[id] {
				agreed[id] = true
			}
		}
		// The rest is judged against what is left once the agreed
		// removals are made: a half list held back, then an empty one,
		// must not empty the cache.
		if !over(len(drop)-len(agreed), total-len(agreed)) {
			w.log.Warn("applying the drop held back: vista's list still says so", "kind", k,
				"removed", len(drop), "of", total, "held_since", stamp(prev.at))
			w.setHeld(k, nil)
			return changes, false
		}
	}
	kept := changes[:0:0]
	rest := map[string]bool{}
	for _, c := range changes {
		if c.op == opRemove && c.reason != ReasonExpired && !agreed[c.id] {
			rest[c.id] = true
			continue
		}
		kept = append(kept, c)
	}
	if prev == nil || confirming {
		w.setHeld(k, &heldDrop{ids: rest, at: now, total: total})
		w.m.dropsHeld.WithLabelValues(string(k)).Inc()
		w.log.Warn("holding back a drop: vista's list would remove more than --max-drop of the cache; it is applied only if a reload a minute or more from now says the same",
			"kind", k, "would_remove", len(rest), "of", total, "max_drop", fmt.Sprintf("%g%%", 100*w.cfg.MaxDrop))
	}
	return kept, true
}

// setHeld records a kind's held drop (nil: none) where Ready can see it.
func (w *Warmer) setHeld(k keys.Kind, h *heldDrop) {
	if h == nil {
		delete(w.st.held, k)
		w.m.dropHeld.WithLabelValues(string(k)).Set(0)
	} else {
		w.st.held[k] = h
		w.m.dropHeld.WithLabelValues(string(k)).Set(1)
	}
	var reasons []string
	for _, kind := range keys.Kinds {
		if h := w.st.held[kind]; h != nil {
			reasons = append(reasons, fmt.Sprintf("holding back a drop of %s: %d of %d would go (more than --max-drop %g%%) since %s",
				kind, len(h.ids), h.total, 100*w.cfg.MaxDrop, stamp(h.at)))
		}
	}
	if len(reasons) == 0 {
		w.heldReason.Store(nil)
		return
	}
	reason := strings.Join(reasons, "; ")
	w.heldReason.Store(&reason)
}

// announce sends a kind's full_reload event after the last batch of its
// reload, with P:meta's loaded:{kind}. A build from nothing is quiet only
// up to here.
func (w *Warmer) announce(ctx context.Context, k keys.Kind) error {
	now := w.cfg.Clock.Now() // when the reload is in Redis, not when it began
	count := w.count(k)
	pub := w.publisher()
	wctx := context.WithoutCancel(ctx)
	err := w.fenced(wctx, w.guard(), func(pipe redis.Pipeliner) {
		pub.reset(w.st.seq)
		pub.publish(wctx, pipe, Event{Kind: k, Event: EventFullReload, Count: &count, At: stamp(now)})
		pipe.HSet(wctx, keys.Meta(w.cfg.Prefix), "seq", pub.seq, keys.Loaded(k), stamp(now))
	})
	if err != nil {
		return fmt.Errorf("announce %s: %w", k, err)
	}
	w.committed(pub)
	w.st.quiet[k] = false
	w.st.loaded[k] = true
	w.m.changes.WithLabelValues(string(k), outFullReload).Inc()
	w.m.lastReload.WithLabelValues(string(k)).Set(float64(now.Unix()))
	if !w.ready.Load() && w.st.loaded[keys.Cinemas] && w.st.loaded[keys.Films] && w.st.loaded[keys.Sessions] {
		w.ready.Store(true)
		w.log.Info("cache is warm", "epoch", w.st.epoch)
	}
	return nil
}

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
			changes = append(changes, removal(s.id, r, ReasonExpired))
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
	err := w.fenced(wctx, w.guard(), func(pipe redis.Pipeliner) {
		pipe.ZRemRangeByScore(wctx, keys.Index(w.cfg.Prefix, keys.Sessions), "-inf", limit)
		for id := range w.st.cache[keys.Cinemas] {
			pipe.ZRemRangeByScore(wctx, keys.CinemaSessions(w.cfg.Prefix, id), "-inf", limit)
		}
		for id := range w.st.cache[keys.Films] {
			pipe.ZRemRangeByScore(wctx, keys.FilmSessions(w.cfg.Prefix, id), "-inf", limit)
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

	seats  []vista.Seats
	gone   []string
	err    error
	waited time.Duration // for the upstream budget
}

// dueChecks takes from the schedule the sessions whose check is due at
// now, and fills the last request with sessions due within half their
// interval: they ride along with a request that goes anyway, one request
// and not several a second apart, never more than half an interval early.
// The requests come back nearest showtime first.
func (w *Warmer) dueChecks(now time.Time) []*ask {
	st := w.st
	cache := st.cache[keys.Sessions]
	taken := map[string]bool{}
	due := map[string]time.Time{}
	var ids []string
	take := func(s slot) bool {
		r := cache[s.id]
		if taken[s.id] || st.inflight[s.id] || r == nil {
			return true // a second entry for it, or one on its way: done
		}
		iv, inHorizon := w.cfg.Policy.Interval(now, r.showtime)
		if !inHorizon {
			return true // expired, or moved past the horizon: not checked now
		}
		if s.at.After(now.Add(iv / 2)) {
			return false
		}
		taken[s.id] = true
		ids = append(ids, s.id)
		if !s.at.After(now) {
			due[s.id] = s.at
		}
		return true
	}
	for {
		s, ok := st.checks.pop(now)
		if !ok {
			break
		}
		take(s)
	}
	if len(ids) == 0 {
		return nil
	}
	if b := w.cfg.CheckBatch; b > 1 && len(ids)%b != 0 {
		room := b - len(ids)%b
		var back []slot
		until := now.Add(w.cfg.Policy.longestInterval() / 2)
		for look := 0; len(ids)%b != 0 && look < 2*room; look++ {
			s, ok := st.checks.pop(until)
			if !ok {
				break
			}
			if !take(s) {
				back = append(back, s)
			}
		}
		for _, s := range back {
			st.checks.push(s.at, s.id)
		}
	}
	// The nearest showtimes first: should the budget be short, they go
	// out first and the far ones slip.
	dist := func(id string) time.Duration { return absDur(cache[id].showtime.Sub(now)) }
	slices.SortFunc(ids, func(a, b string) int {
		if c := cmp.Compare(dist(a), dist(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	var asks []*ask
	for chunk := range slices.Chunk(ids, w.cfg.CheckBatch) {
		a := &ask{st: st, ids: chunk, due: map[string]time.Time{}, asked: now, prio: now.Add(dist(chunk[0]))}
		for _, id := range chunk {
			if at, ok := due[id]; ok {
				a.due[id] = at
			}
		}
		asks = append(asks, a)
	}
	w.m.checksSent.WithLabelValues("due").Add(float64(len(due)))
	w.m.checksSent.WithLabelValues("early").Add(float64(len(ids) - len(due)))
	return asks
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// send makes one seat request.
func (w *Warmer) send(ctx context.Context, a *ask) {
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	ticket := &vista.Ticket{}
	cctx = vista.WithTicket(vista.WithPriority(cctx, a.prio), ticket)
	a.seats, a.gone, a.err = w.cfg.Vista.CheckSeats(cctx, a.ids)
	a.waited = ticket.Waited()
}

// check asks Vista for the seats of the sessions due at now and writes
// what changed, before it returns. Run sends the requests beside instead
// (checkBeside), so that a slow answer holds up nothing.
func (w *Warmer) check(ctx context.Context, now time.Time) error {
	asks := w.dueChecks(now)
	sem := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, a := range asks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			w.send(ctx, a)
		}()
	}
	wg.Wait()
	return w.settle(ctx, asks)
}

// checkBeside sends the requests for the sessions due at now, each in a
// goroutine of its own; Step writes the answers when they come. The
// upstream budget, not the warmer, decides how many are in flight.
func (w *Warmer) checkBeside(ctx context.Context, now time.Time) {
	for _, a := range w.dueChecks(now) {
		for _, id := range a.ids {
			w.st.inflight[id] = true
		}
		w.fetchers.Add(1)
		go func() {
			defer w.fetchers.Done()
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
		}()
	}
}

// takeAnswers writes the seat checks answered since the last step.
func (w *Warmer) takeAnswers(ctx context.Context) error {
	var asks []*ask
	for {
		select {
		case a := <-w.answers:
			asks = append(asks, a)
			continue
		default:
		}
		break
	}
	return w.settle(ctx, asks)
}

// settle writes what seat checks found: seats and status that changed, a
// session Vista no longer has or has cancelled, and when each is checked
// next. An answer older than what the cache holds since (a list fetched
// after it was asked) is not taken.
func (w *Warmer) settle(ctx context.Context, asks []*ask) error {
	if w.st == nil {
		return nil
	}
	cache := w.st.cache[keys.Sessions]
	var changes []change
	gone := map[string]time.Time{}
	for _, a := range asks {
		if a.st != w.st {
			continue // asked for a writer's state that has gone since
		}
		for _, id := range a.ids {
			delete(w.st.inflight, id)
		}
		w.late(a)
		if a.err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			w.m.errors.WithLabelValues("check").Inc()
			w.log.Warn("seat check failed; trying again at the sessions' next check", "sessions", len(a.ids), "err", a.err)
		}
		// Nothing is dropped on a failed check: the sessions keep their
		// data and are looked at again on their own schedule, which is
		// their retry, so an outage of Vista does not turn into more load.
		answered := map[string]bool{}
		for _, s := range a.seats {
			answered[s.ID] = true
			old := cache[s.ID]
			switch {
			case old == nil, old.asOf.After(a.asked):
			case s.Cancelled():
				changes = append(changes, removal(s.ID, old, ReasonCancelled))
				gone[s.ID] = a.asked
			default:
				cur := withSeats(old, s)
				cur.nextCheck = w.cfg.Policy.NextCheck(a.asked, cur.showtime)
				cur.checked, cur.asOf = a.asked, a.asked
				changes = append(changes, compare(w.fields[keys.Sessions], s.ID, old, cur))
			}
		}
		for _, id := range a.gone {
			answered[id] = true
			old := cache[id]
			switch {
			case old == nil, old.asOf.After(a.asked):
			case w.st.held[keys.Sessions] != nil:
				// Vista's lists are in doubt (a drop is held back): a seat
				// check that no longer finds a session is not believed
				// either, until the drop is confirmed or dropped.
				w.reschedule(id, old, w.cfg.Policy.NextCheck(a.asked, old.showtime))
			default:
				changes = append(changes, removal(id, old, ReasonGone))
				gone[id] = a.asked
			}
		}
		for _, id := range a.ids {
			if old := cache[id]; old != nil && !answered[id] && !old.asOf.After(a.asked) {
				w.reschedule(id, old, w.cfg.Policy.NextCheck(a.asked, old.showtime))
			}
		}
	}
	if len(changes) == 0 {
		return nil
	}
	if err := w.apply(ctx, keys.Sessions, changes, w.cfg.Clock.Now()); err != nil {
		return err
	}
	// A list fetched before these answers must not bring them back.
	for id, at := range gone {
		w.st.checkRemoved[id] = at
	}
	return nil
}

// late records how late each due session of a request went out, by tier,
// the wait for the upstream budget included.
func (w *Warmer) late(a *ask) {
	cache := w.st.cache[keys.Sessions]
	for id, at := range a.due {
		r := cache[id]
		if r == nil {
			continue
		}
		tier := w.cfg.Policy.Tier(at, r.showtime)
		late := a.asked.Sub(at) + a.waited
		w.m.lateness.WithLabelValues(tier).Observe(late.Seconds())
		if a.waited > 0 && late > time.Second {
			w.m.slipped.WithLabelValues(tier).Inc()
		}
	}
}

// reschedule moves a cached session's next check, in place: only the
// schedule reads it until the next write.
func (w *Warmer) reschedule(id string, r *record, at time.Time) {
	r.nextCheck = at
	w.st.checks.push(at, id)
}

// place puts a session written to the cache on the schedule and counts
// it by showtime; unplace takes the one it replaces off the counts (its
// heap entries go stale by themselves).
func (st *state) place(id string, r *record) {
	st.expiries.push(r.showtime.Add(st.grace), id)
	if !r.missing {
		st.shows.add(r.showtime, 1)
		st.checks.push(r.nextCheck, id)
	}
}

func (st *state) unplace(r *record) {
	if r != nil && !r.missing {
		st.shows.add(r.showtime, -1)
	}
}

// schedule sets up the schedule of a state whose cache was just read.
func (w *Warmer) schedule(st *state) {
	grace := w.cfg.Policy.Grace
	st.grace = grace
	st.checks.valid = func(s slot) bool {
		r := st.cache[keys.Sessions][s.id]
		return r != nil && !r.missing && r.nextCheck.Equal(s.at)
	}
	st.expiries.valid = func(s slot) bool {
		r := st.cache[keys.Sessions][s.id]
		return r != nil && !r.showtime.IsZero() && r.showtime.Add(grace).Equal(s.at)
	}
}

// guard is what the writer's next write expects of P:meta.
func (w *Warmer) guard() *guard {
	return &guard{epoch: w.st.epoch, seq: w.st.seq}
}

func (w *Warmer) publisher() *publisher {
	return &publisher{prefix: w.cfg.Prefix, epoch: w.st.epoch, maxLen: w.cfg.StreamMaxLen}
}

// committed takes the numbers a transaction used once Redis has it.
func (w *Warmer) committed(pub *publisher) {
	w.st.seq = pub.seq
	for kind, byEvent := range pub.published {
		for ev, n := range byEvent {
			w.m.events.WithLabelValues(string(kind), ev).Add(float64(n))
		}
	}
}

// apply writes changes in bounded MULTI/EXEC batches. Each batch carries the
// data, TTLs, index entries, P:meta seq and the PUBLISH and XADD of its
// events, so a reader that fetches a key on an event sees that state or a
// newer one. The cache in memory follows each batch once Redis took it. A
// batch that has started is finished even when ctx ends; the next is not.
func (w *Warmer) apply(ctx context.Context, k keys.Kind, changes []change, now time.Time) error {
	quiet := w.st.quiet[k]
	wctx := context.WithoutCancel(ctx)
	cache := w.st.cache[k]
	writes := len(changes) - countOp(changes, opConfirm)
	progress := time.Now()
	// len(changes) is read on every turn: a batch may append the entities
	// it found gone from Redis, to be written whole.
	for start := 0; start < len(changes); {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := changes[start:min(start+w.cfg.BatchSize, len(changes))]
		start += len(batch)
		pub := w.publisher()
		probes := make([]probe, len(batch))
		err := w.fenced(wctx, w.guard(), func(pipe redis.Pipeliner) {
			pub.reset(w.st.seq)
			for i, c := range batch {
				probes[i] = w.queue(wctx, pipe, pub, k, c, now, quiet)
			}
			if pub.seq != w.st.seq {
				pipe.HSet(wctx, keys.Meta(w.cfg.Prefix), "seq", pub.seq)
			}
		})
		if err != nil {
			return fmt.Errorf("write %s: %w", k, err)
		}
		w.committed(pub)
		for i, c := range batch {
			w.m.changes.WithLabelValues(string(k), c.outcome()).Inc()
			if c.op == opRemove {
				if k == keys.Sessions {
					w.st.unplace(cache[c.id])
				}
				delete(cache, c.id)
				continue
			}
			switch probes[i].outcome() {
			case hashVanished:
				// The key was gone (evicted, or expired a moment early) and
				// a confirmation carries too little to write it whole:
				// write the entity again, as new.
				w.log.Warn("an entity was missing from Redis; writing it again", "kind", k, "id", c.id)
				w.m.repairs.WithLabelValues(string(k), repairHash).Inc()
				again := *c.cur
				again.rawSum = checksum(again.raw) // a seat check has no raw: the next reload writes it
				changes = append(changes, change{op: opAdd, id: c.id, cur: &again, changed: diff(w.fields[k], nil, c.cur)})
			case hashRewritten:
				w.log.Warn("an entity was missing from Redis; written whole with its change", "kind", k, "id", c.id)
				w.m.repairs.WithLabelValues(string(k), repairHash).Inc()
				c.cur.rawSum = checksum(c.cur.raw) // written whole: with raw only if the change had it
			}
			c.cur.raw = "" // written; its checksum is enough from here on
			if k == keys.Sessions {
				w.st.unplace(cache[c.id])
				w.st.place(c.id, c.cur)
			}
			cache[c.id] = c.cur
		}
		if writes >= 10*w.cfg.BatchSize && time.Since(progress) > 2*time.Second && start < len(changes) {
			w.log.Info("writing", "kind", k, "done", start, "of", len(changes))
			progress = time.Now()
		}
	}
	return nil
}

// probe finds, after the write, what the hash write did to one hash.
type probe struct {
	cmd *redis.Cmd // nil: no hash write (an addition or a removal)
}

// What a hash write found.
const (
	hashWritten   = 1 // the hash was there and took the fields
	hashRewritten = 2 // it was gone, and was written whole
	hashVanished  = 0 // it was gone, and a confirmation cannot write it whole
)

func (p probe) outcome() int64 {
	if p.cmd == nil {
		return hashWritten
	}
	n, err := p.cmd.Int64()
	if err != nil {
		return hashWritten
	}
	return n
}

// hashWriteCmd is the write script's own command (see fenced): it writes
// to an entity's hash only if it exists, so a hash is only ever written
// whole or confirmed: a confirmation or an update never creates a hash of
// two fields where Redis lost or evicted the key (or where it holds
// another type: that is deleted). An update carries the entity's other
// fields too, and then writes the hash whole.
//
// Its arguments: the key; EXPIREAT in Unix seconds or ""; nset, ndel,
// nwhole; then nset field/value arguments to set, ndel field names to
// delete, and nwhole field/value arguments that make the rest of the hash
// when it has to be written whole. It answers 1 when the hash was there, 2
// when it was written whole, 0 when it was not there and not written.
const hashWriteCmd = "vw.hashwrite"

// hashWrite queues one hash's write and returns its probe.
func hashWrite(ctx context.Context, pipe redis.Pipeliner, key string, expireAt string, set, del, whole []any) probe {
	args := make([]any, 0, 6+len(set)+len(del)+len(whole))
	args = append(args, hashWriteCmd, key, expireAt, len(set), len(del), len(whole))
	args = append(args, set...)
	args = append(args, del...)
	args = append(args, whole...)
	return probe{cmd: pipe.Do(ctx, args...)}
}

// hashWriteSource defines the Lua function of hashWriteCmd, for the
// arguments ARGV[a..b].
const hashWriteSource = `
local function hashwrite(a, b)
	local key, expireat = ARGV[a], ARGV[a + 1]
	local nset, ndel, nwhole = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
	local s = a + 5
	local d = s + nset
	local w = d + ndel
	local e = w + nwhole
	local kind = redis.call('TYPE', key)['ok']
	local r = 1
	if kind == 'hash' then
		if nset > 0 then redis.call('HSET', key, unpack(ARGV, s, d - 1)) end
		if ndel > 0 then redis.call('HDEL', key, unpack(ARGV, d, w - 1)) end
	elseif nwhole == 0 then
		r = 0
	else
		if kind ~= 'none' then redis.call('DEL', key) end
		redis.call('HSET', key, unpack(ARGV, w, e - 1))
		if nset > 0 then redis.call('HSET', key, unpack(ARGV, s, d - 1)) end
		r = 2
	end
	if r ~= 0 and expireat ~= '' then redis.call('EXPIREAT', key, expireat) end
	return r
end
`

// queue adds one change's commands, and its event unless quiet, to a
// transaction.
func (w *Warmer) queue(ctx context.Context, pipe redis.Pipeliner, pub *publisher, k keys.Kind, c change, now time.Time, quiet bool) probe {
	key := keys.Entity(w.cfg.Prefix, k, c.id)
	at := stamp(now)
	sessions := k == keys.Sessions
	names := w.fields[k]

	if c.op == opRemove {
		if c.old == nil || !c.old.unsafe {
			pipe.Del(ctx, key)
		}
		w.unindex(ctx, pipe, k, c)
		if !quiet {
			pub.publish(ctx, pipe, Event{Kind: k, Event: EventRemoved, ID: c.id, Reason: c.reason, At: at})
		}
		return probe{}
	}

	vals := c.cur.vals
	expireAt := ""
	if sessions {
		// Every session write re-arms the TTL, so no hash of a session
		// outlives its showtime, whatever happened to the key meanwhile.
		expireAt = strconv.FormatInt(c.cur.showtime.Add(w.cfg.Policy.Grace).Unix(), 10)
	}
	if c.op == opAdd {
		args := make([]any, 0, 2*len(names)+8)
		for i, name := range names {
			args = append(args, name, vals[i])
		}
		args = append(args, fUpdatedAt, at)
		if sessions {
			args = append(args, fChangedAt, at, fNextCheckAt, stamp(c.cur.nextCheck))
		}
		if c.cur.raw != "" {
			args = append(args, fRaw, c.cur.raw)
		}
		pipe.Del(ctx, key) // whatever an earlier epoch left there goes
		pipe.HSet(ctx, key, args...)
		if sessions {
			pipe.ExpireAt(ctx, key, c.cur.showtime.Add(w.cfg.Policy.Grace))
		}
		if c.old != nil { // listed by an index, its hash gone: out of wherever it was
			w.unindex(ctx, pipe, k, change{id: c.id, old: c.old})
		}
		w.index(ctx, pipe, k, c.id, c.cur)
		if !quiet {
			pub.publish(ctx, pipe, w.itemEvent(k, c, at))
		}
		return probe{}
	}

	// A confirmation or an update: set what changed (or only the
	// bookkeeping), fill in the fields the hash lacked, drop stray ones.
	set := make([]any, 0, 16)
	var whole []any
	for i, name := range names {
		switch {
		case c.op == opUpdate && slices.Contains(c.changed, name),
			c.old != nil && c.old.absent != nil && c.old.absent[i]:
			set = append(set, name, vals[i])
		case c.op == opUpdate:
			whole = append(whole, name, vals[i])
		}
	}
	set = append(set, fUpdatedAt, at)
	if sessions {
		if c.op == opUpdate {
			set = append(set, fChangedAt, at)
		}
		set = append(set, fNextCheckAt, stamp(c.cur.nextCheck))
	}
	var del []any
	if c.old != nil {
		for _, f := range c.old.stray {
			del = append(del, f)
		}
	}
	switch raw := w.rawChange(c); {
	case raw == rawDrop:
		del = append(del, fRaw)
	case raw == rawWrite:
		set = append(set, fRaw, c.cur.raw)
	case c.cur.raw != "" && c.op == opUpdate:
		whole = append(whole, fRaw, c.cur.raw)
	}
	p := hashWrite(ctx, pipe, key, expireAt, set, del, whole)

	placed := c.op == opUpdate && slices.ContainsFunc(c.changed, func(n string) bool {
		return n == "showtime" || n == "cinema_id" || n == "film_id"
	})
	if placed {
		w.unindex(ctx, pipe, k, change{id: c.id, old: c.old})
		w.index(ctx, pipe, k, c.id, c.cur)
	}
	if c.op == opUpdate && !quiet {
		pub.publish(ctx, pipe, w.itemEvent(k, c, at))
	}
	return p
}

func (w *Warmer) itemEvent(k keys.Kind, c change, at string) Event {
	ev := Event{Kind: k, Event: EventItem, ID: c.id, Changed: c.changed, At: at}
	if k == keys.Sessions {
		n, _ := strconv.Atoi(c.cur.vals[sSeatsAvailable])
		ev.SeatsAvailable = &n
	}
	return ev
}

// What a write does to an existing hash's raw field.
const (
	rawKeep  = iota // as it is
	rawWrite        // Vista's row changed: write the new one
	rawDrop         // the warmer runs without --keep-raw now
)

// rawChange keeps an existing hash's raw field in step with what Vista sent
// in its last full list: rewritten when the row changed, even where no data
// field did, and dropped when the warmer runs without --keep-raw. A seat
// check carries no row, so raw waits for the next reload.
func (w *Warmer) rawChange(c change) int {
	if c.old == nil || c.old.rawSum == c.cur.rawSum || (c.cur.raw == "" && c.cur.rawSum != 0) {
		return rawKeep
	}
	if c.cur.raw == "" {
		return rawDrop
	}
	return rawWrite
}

func (w *Warmer) index(ctx context.Context, pipe redis.Pipeliner, k keys.Kind, id string, r *record) {
	p := w.cfg.Prefix
	if k != keys.Sessions {
		pipe.SAdd(ctx, keys.Index(p, k), id)
		return
	}
	z := redis.Z{Score: float64(r.showtime.Unix()), Member: id}
	pipe.ZAdd(ctx, keys.Index(p, k), z)
	if c := r.vals[sCinemaID]; c != "" {
		pipe.ZAdd(ctx, keys.CinemaSessions(p, c), z)
	}
	if f := r.vals[sFilmID]; f != "" {
		pipe.ZAdd(ctx, keys.FilmSessions(p, f), z)
	}
}

// unindex takes a removed or moved entity out of its indexes. A session
// read back from an index whose hash was gone has no cinema or film to go
// by: it is taken out of every cinema's and film's index we know, unless
// it expired, which the sweep after expiry covers for all at once.
func (w *Warmer) unindex(ctx context.Context, pipe redis.Pipeliner, k keys.Kind, c change) {
	p := w.cfg.Prefix
	if k != keys.Sessions {
		pipe.SRem(ctx, keys.Index(p, k), c.id)
		return
	}
	pipe.ZRem(ctx, keys.Index(p, k), c.id)
	r := c.old
	if r == nil || (r.missing && c.reason == ReasonExpired) {
		return
	}
	if r.missing {
		for id := range w.st.cache[keys.Cinemas] {
			pipe.ZRem(ctx, keys.CinemaSessions(p, id), c.id)
		}
		for id := range w.st.cache[keys.Films] {
			pipe.ZRem(ctx, keys.FilmSessions(p, id), c.id)
		}
		return
	}
	if id := r.vals[sCinemaID]; id != "" {
		pipe.ZRem(ctx, keys.CinemaSessions(p, id), c.id)
	}
	if id := r.vals[sFilmID]; id != "" {
		pipe.ZRem(ctx, keys.FilmSessions(p, id), c.id)
	}
}

// readCache reads what Redis holds of a kind, through its index, in
// pipelined chunks. An id the index lists whose hash is gone comes back as a
// missing record, so the next reload writes it again or says it is gone.
func (w *Warmer) readCache(ctx context.Context, k keys.Kind) (map[string]*record, error) {
	p := w.cfg.Prefix
	var ids []string
	scores := map[string]float64{}
	var err error
	if k == keys.Sessions {
		var zs []redis.Z
		zs, err = w.rdb.ZRangeWithScores(ctx, keys.Index(p, k), 0, -1).Result()
		for _, z := range zs {
			id, _ := z.Member.(string)
			ids = append(ids, id)
			scores[id] = z.Score
		}
	} else {
		ids, err = w.rdb.SMembers(ctx, keys.Index(p, k)).Result()
	}
	switch {
	case isWrongType(err):
		// Something else holds the index's key: the cache is read as
		// empty, and the reload that follows writes the index anew.
		w.log.Warn("an index key holds another type; it is rewritten at the next reload", "key", keys.Index(p, k))
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", k, err)
	}
	cache := make(map[string]*record, len(ids))
	const chunk = 1000
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		cmds := make([]*redis.MapStringStringCmd, len(part))
		_, err := w.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, id := range part {
				cmds[i] = pipe.HGetAll(ctx, keys.Entity(p, k, id))
			}
			return nil
		})
		var rerr redis.Error
		if err != nil && !errors.As(err, &rerr) {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		// A key that answers with an error (not a hash: WRONGTYPE) reads as
		// missing, and is written whole by the next reload.
		for i, id := range part {
			// An id that cannot be a key of its own (an earlier version
			// wrote it) is held as missing: the next reload removes it
			// from the index without touching the key it would name.
			unsafe := vista.CheckID(id) != nil
			h := cmds[i].Val()
			if unsafe || cmds[i].Err() != nil || len(h) == 0 || h["id"] != id {
				r := &record{vals: make([]string, len(w.fields[k])), missing: true, unsafe: unsafe}
				r.vals[0] = id
				if k == keys.Sessions {
					r.showtime = time.Unix(int64(scores[id]), 0)
				}
				cache[id] = r
				continue
			}
			cache[id] = w.recordFromHash(k, h)
		}
	}
	return cache, nil
}

// count returns how many entities of a kind the cache holds.
func (w *Warmer) count(k keys.Kind) int {
	n := 0
	for _, r := range w.st.cache[k] {
		if !r.missing {
			n++
		}
	}
	return n
}

func countOp(changes []change, o op) int {
	n := 0
	for _, c := range changes {
		if c.op == o {
			n++
		}
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
