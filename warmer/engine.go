package warmer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
)

// zones maps each cached cinema to the zone its wall times are read in.
func (w *Warmer) zones() map[string]*time.Location {
	z := map[string]*time.Location{}
	for id, r := range w.st.cache[keys.Cinemas] {
		if loc, err := vista.LoadZone(r.vals.get(cTimezone)); err == nil {
			z[id] = loc
		}
	}
	return z
}

// zoneKey names the zones z gives each cinema, so that a sessions list
// read with other zones is known to be out of date.
func zoneKey(z map[string]*time.Location) string {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(z)) {
		b.WriteString(id)
		b.WriteByte('=')
		b.WriteString(z[id].String())
		b.WriteByte(';')
	}
	return b.String()
}

func (w *Warmer) expired(now, showtime time.Time) bool {
	return w.cfg.Policy.Expired(now, showtime)
}

func (w *Warmer) loading(k keys.Kind) {
	if w.st.kinds[k].quiet {
		w.log.Info("loading from vista", "kind", k)
	}
}

// intake is a list being taken into the cache, chunk by chunk as it is
// fetched, up to its commit.
type intake struct {
	total          int // the kind's entries before the list: what a drop is judged against
	added, updated int
}

// intakeOf returns the list of a kind being taken in, begun if need be.
func (w *Warmer) intakeOf(k keys.Kind) *intake {
	in := w.st.kinds[k].intake
	if in == nil {
		in = &intake{total: len(w.st.cache[k])}
		w.st.kinds[k].intake = in
	}
	return in
}

// writeRows writes rows of a list of a kind, listed when Vista sent them, as
// they come: the additions, updates and confirmations. What left the
// cache is for commit to judge, once the whole list is in. more, when not
// nil, gives the changes of the list's next chunks to write after these
// with no pause (see buildStream).
func (w *Warmer) writeRows(ctx context.Context, k keys.Kind, rows []row, keep map[string]bool, listed time.Time, more func() (part, bool)) error {
	// The intake begins with the list's first chunk, even one of no rows.
	w.intakeOf(k)
	now := w.cfg.Clock.Now() // when it goes into Redis
	// A chunk at a time, so that a list of 500k sessions never has a
	// change made for each at once.
	parts := slices.Collect(slices.Chunk(mergeChecks(w.specs[k], w.cfg.Policy, w.st.cache[k], rows, listed, w.st.checkRemoved), w.chunk))
	for i, rows := range parts {
		changes := w.listChanges(k, rows, keep, now)
		then := more // after the last part only
		if i < len(parts)-1 {
			then = nil
		}
		if err := w.applyMore(ctx, k, changes, now, then); err != nil {
			return err
		}
		if len(w.st.kinds[k].unindexed) >= w.indexEvery {
			if err := w.writeIndexes(ctx, k); err != nil {
				return err
			}
		}
	}
	return nil
}

// listChanges diffs rows of a list of a kind against the cache
// (rowChanges), and counts the additions and updates in the list's intake.
func (w *Warmer) listChanges(k keys.Kind, rows []row, keep map[string]bool, now time.Time) []change {
	in := w.intakeOf(k)
	changes := rowChanges(w.specs[k], w.cfg.Policy, w.st.cache[k], rows, keep, now)
	in.added += countOp(changes, opAdd)
	in.updated += countOp(changes, opUpdate)
	return changes
}

// buildStream returns, for a build from nothing (the kind's cache empty
// when its list's intake began), what gives the write of a chunk of the
// list the next chunk's changes while Redis still runs the first's last
// writes, so that Redis does not wait between them for the last writes'
// bookkeeping, the next chunk's diff and its first batch to be made
// ready. It takes the next message of the fetchers if it is in, and diffs
// it, if it is the next chunk of the same list and names no id an
// earlier chunk had (fetched.again): only then do its changes read
// nothing of the cache that the writes still running change. Anything
// else it sets aside for takeFetched, and the stream ends; so it does
// when the build's next index step is due, by what the cache has taken
// in (so a step may list two or three chunks more than indexEvery, not
// one). A stream holds the loop no longer than takeFetched did, which
// took every chunk in before the answers of seat checks and the rest of
// a step while the fetcher kept ahead. nil: not a build.
func (w *Warmer) buildStream(ctx context.Context, k keys.Kind, run *fetchRun) func() (part, bool) {
	if w.intakeOf(k).total > 0 {
		return nil
	}
	st := w.st
	return func() (part, bool) {
		for ctx.Err() == nil && w.st == st && len(st.kinds[k].unindexed) < w.indexEvery {
			var f fetched
			select {
			case f = <-w.fetched:
			default:
				return part{}, false // not in yet
			}
			if f.st != st || f.k != k || f.run != run || st.kinds[k].fetching != run || f.l != nil || f.err != nil || f.again {
				w.aside = &f
				return part{}, false
			}
			now := w.cfg.Clock.Now()
			rows := mergeChecks(w.specs[k], w.cfg.Policy, st.cache[k], f.rows, f.now, st.checkRemoved)
			if changes := w.listChanges(k, rows, nil, now); len(changes) > 0 {
				w.streamed++
				return part{changes: changes, now: now}, true
			}
			// Nothing to write (its rows expired since the list was
			// asked for): the next, if it is in.
		}
		return part{}, false
	}
}

// commit takes a whole list Vista sent into the cache: it writes what of
// it take did not write ahead, judges the drop, applies the removals,
// mends the indexes and announces the reload.
func (w *Warmer) commit(ctx context.Context, k keys.Kind, l *listing) error {
	st := w.st
	defer func() { st.kinds[k].intake = nil }()
	if err := w.judgeEmptyBuild(k, l); err != nil {
		return err
	}
	if err := w.writeRows(ctx, k, l.rest(), l.keep, l.now, nil); err != nil {
		return err
	}
	in := w.st.kinds[k].intake
	now := w.cfg.Clock.Now()
	sp, p, cache := w.specs[k], w.cfg.Policy, w.st.cache[k]
	dropCheckRemoved(sp, l, w.st.checkRemoved)
	if sp.checked {
		clear(w.st.checkRemoved) // the next list is fetched after this
		// The list has the last word on what seat checks doubted: what
		// it lacks goes under its own guard, what it has stays.
		clear(w.st.doubted)
		if h := w.st.kinds[k].held; h != nil && h.checks {
			w.setHeld(k, nil)
		}
	}
	// What may have left: every entity of the cache; in a build from
	// nothing (the cache empty when the list's intake began, at its
	// first chunk or here), only what a later row took back after an
	// earlier one of the same id was written (l.repeated, see seen):
	// everything else the cache holds came from a row still in l.recs
	// (only wrote adds to the cache, and only a list's rows are new to
	// it). At 500k sessions, looking each one up in the list took 70 ms,
	// with Redis idle.
	mayHaveLeft := maps.Keys(cache)
	if in.total == 0 {
		mayHaveLeft = maps.Keys(l.repeated)
	}
	gone, held := w.judgeDrop(k, goneChanges(sp, p, cache, l, mayHaveLeft, now), l.repeated, in.total, now)
	if err := w.apply(ctx, k, gone, now); err != nil {
		return err
	}
	removed := countOp(gone, opRemove)
	if len(w.st.kinds[k].unindexed) > 0 {
		if err := w.writeIndexes(ctx, k); err != nil {
			return err
		}
	}
	if sp.expires {
		if err := w.sweepIndexes(ctx, now); err != nil {
			return err
		}
	}
	// The indexes are checked against the cache after each reload, but
	// for a build from nothing: takeOver has just checked them all, and
	// writeIndexes has just listed the build's entities. The next reload
	// checks them.
	if !w.st.kinds[k].quiet {
		if err := w.repairIndexes(ctx, k); err != nil {
			return err
		}
	}
	if held {
		// The list is not taken as a whole until the drop is confirmed:
		// no full_reload, and loaded:{kind} stays where it was.
		w.log.Info("reloaded, holding back a drop", "kind", k, "count", w.count(k), "took", time.Since(l.began).Round(time.Millisecond),
			"added", in.added, "updated", in.updated, "removed", removed, "held_back", len(w.st.kinds[k].held.ids))
		return nil
	}
	if err := w.announce(ctx, k); err != nil {
		return err
	}
	w.m.reloadTook.WithLabelValues(string(k)).Observe(time.Since(l.began).Seconds())
	w.log.Info("reloaded", "kind", k, "count", w.count(k), "took", time.Since(l.began).Round(time.Millisecond),
		"added", in.added, "updated", in.updated, "removed", removed)
	return nil
}

// rowChunk is how many rows of a list are diffed and written at a time.
const rowChunk = 5000

// heldDrop is a drop a full reload would have made and the warmer held back.
type heldDrop struct {
	ids    map[string]bool // what would have been removed
	at     time.Time       // when it was first held
	total  int             // the kind's entries then
	checks bool            // held for seat checks' answers, not a list (see doubt.go)
}

// ConfirmDropAfter is how long after a drop was held back a reload must
// come to confirm it: a glitch of Vista's (an empty answer, a half list)
// rarely lasts that long, a real drop (a cinema closing screens) does.
const ConfirmDropAfter = time.Minute

// judgeDrop holds back the removals of a full reload that would remove
// more than MaxDrop of a kind's total entries before the reload (expired
// sessions do not count, nor those in own: ids the list handed over and
// then named again as cancelled, which it removes itself). It returns the changes to apply and whether a drop is held back. A held
// drop is applied when a reload at least ConfirmDropAfter later would
// remove the same entities; what that reload would remove beyond them is
// judged anew.
func (w *Warmer) judgeDrop(k keys.Kind, changes []change, own map[string]bool, total int, now time.Time) ([]change, bool) {
	if bug("emptylist") {
		return changes, false
	}
	dropped := func(c change) bool { return c.op == opRemove && c.reason != keys.ReasonExpired && !own[c.id] }
	var drop []string
	for _, c := range changes {
		if dropped(c) {
			drop = append(drop, c.id)
		}
	}
	// over reports whether removing n of the kind's of entries is more
	// than MaxDrop allows.
	over := func(n, of int) bool { return n > 0 && float64(n) > w.cfg.MaxDrop*float64(of) }
	prev := w.st.kinds[k].held
	if prev != nil && prev.checks {
		prev = nil // held for seat checks: the list is judged on its own (and clears it, see commit)
	}
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
		if dropped(c) && !agreed[c.id] {
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
		w.st.kinds[k].held = nil
		w.m.dropHeld.WithLabelValues(string(k)).Set(0)
	} else {
		w.st.kinds[k].held = h
		w.m.dropHeld.WithLabelValues(string(k)).Set(1)
	}
	var reasons []string
	for _, kind := range keys.Kinds {
		switch h := w.st.kinds[kind].held; {
		case h == nil:
		case h.checks:
			reasons = append(reasons, fmt.Sprintf("holding back a drop of %s: seat checks call %d of %d gone in answers that found none of those asked for, since %s",
				kind, len(h.ids), h.total, stamp(h.at)))
		default:
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
	pub := w.publisher(w.st.epoch, w.st.seq)
	wctx := context.WithoutCancel(ctx)
	err := w.store.fenced(wctx, w.guard(), func(pipe redis.Pipeliner) {
		pub.publish(wctx, pipe, keys.Event{Kind: k, Event: keys.EventFullReload, Count: &count, At: stamp(now)})
		pipe.HSet(wctx, keys.Meta(w.cfg.Prefix), keys.MetaSeq, pub.seq, keys.Loaded(k), stamp(now))
	})
	if err != nil {
		return fmt.Errorf("announce %s: %w", k, err)
	}
	w.committed(pub)
	w.st.kinds[k].quiet = false
	w.st.kinds[k].loaded = true
	w.m.fullReloads.WithLabelValues(string(k)).Inc()
	w.m.lastReload.WithLabelValues(string(k)).Set(float64(now.Unix()))
	w.st.kinds[k].loadedAt = stamp(now)
	if !w.ready.Load() && w.st.kinds[keys.Cinemas].loaded && w.st.kinds[keys.Films].loaded && w.st.kinds[keys.Sessions].loaded {
		w.ready.Store(true)
		w.log.Info("cache is warm", "epoch", w.st.epoch)
	}
	return nil
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

// errEmptyBuild: a build from nothing got an empty list of a kind this
// process held entries of before Redis lost the cache.
var errEmptyBuild = errors.New("an empty list for a cache built anew")

// emptyBuildRetry is how soon such a list is asked for again.
const emptyBuildRetry = 10 * time.Second

// judgeEmptyBuild refuses an empty list when the cache is built anew (a
// new epoch after Redis lost it) and this process held entries of the
// kind before: the drop guard has nothing to compare with then, and an
// empty cinemas list would give every session the default zone. It is
// asked for again in emptyBuildRetry, and taken once it has said so for
// ConfirmDropAfter, as a held drop is.
func (w *Warmer) judgeEmptyBuild(k keys.Kind, l *listing) error {
	st := w.st
	empty := !l.handed && len(l.recs) == 0 && len(l.keep) == 0 && len(l.cancelled) == 0 && !l.partial
	if !st.kinds[k].quiet || !empty || w.knew[k] == 0 {
		st.kinds[k].emptySince = time.Time{}
		return nil
	}
	since := st.kinds[k].emptySince
	if since.IsZero() {
		since = l.now
		st.kinds[k].emptySince = since
	}
	if l.now.Sub(since) >= ConfirmDropAfter {
		w.log.Warn("vista's list is still empty a minute on; taken", "kind", k, "held_before", w.knew[k])
		return nil
	}
	return fmt.Errorf("%w: %s (this process held %d before Redis lost the cache); asked again in %v",
		errEmptyBuild, k, w.knew[k], emptyBuildRetry)
}
