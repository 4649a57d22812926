package warmer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
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

// compare turns a cached record and an upstream one into a change.
func compare(k keys.Kind, id string, old, cur *record) change {
	if old == nil || old.missing {
		return change{op: opAdd, id: id, old: old, cur: cur, changed: diff(k, nil, cur)}
	}
	if changed := diff(k, old, cur); len(changed) > 0 {
		return change{op: opUpdate, id: id, old: old, cur: cur, changed: changed}
	}
	return change{op: opConfirm, id: id, old: old, cur: cur}
}

func removal(id string, old *record, reason string) change {
	return change{op: opRemove, id: id, old: old, reason: reason}
}

// fetch reads one whole list from Vista as records. keep lists ids whose
// rows Vista sent but could not be read: they stay as cached. partial is
// true when a bad row had no readable id, so nothing can be called gone.
func (w *Warmer) fetch(ctx context.Context, k keys.Kind, now time.Time) (recs map[string]*record, cancelled, keep map[string]bool, partial bool, err error) {
	recs = map[string]*record{}
	cancelled = map[string]bool{}
	keepRaw := w.cfg.KeepRaw
	switch k {
	case keys.Cinemas:
		var list []vista.Cinema
		list, err = w.cfg.Vista.Cinemas(ctx)
		for _, c := range list {
			recs[c.ID] = cinemaRecord(c, keepRaw)
		}
	case keys.Films:
		var list []vista.Film
		list, err = w.cfg.Vista.Films(ctx)
		for _, f := range list {
			recs[f.ID] = filmRecord(f, keepRaw)
		}
	case keys.Sessions:
		var list []vista.Session
		list, err = w.cfg.Vista.Sessions(ctx, w.zones())
		for _, s := range list {
			if s.Cancelled() {
				cancelled[s.ID] = true
				continue
			}
			if w.expired(now, s.Showtime) {
				continue // the expiry step says goodbye to it, if we had it
			}
			r := sessionRecord(s, keepRaw)
			r.nextCheck = w.cfg.Policy.NextCheck(now, r.showtime, s.ID)
			recs[s.ID] = r
		}
	}
	var rowErrs vista.RowErrors
	if errors.As(err, &rowErrs) {
		keep = map[string]bool{}
		for _, e := range rowErrs {
			if e.ID == "" {
				partial = true
			} else {
				keep[e.ID] = true
			}
		}
		w.log.Warn("vista sent rows that cannot be read; keeping what the cache has for them",
			"kind", k, "rows", len(rowErrs), "first", rowErrs[0].Error())
		err = nil
	}
	return recs, cancelled, keep, partial, err
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

// reload runs one full reload of a kind: fetch, diff, apply, announce.
func (w *Warmer) reload(ctx context.Context, k keys.Kind) error {
	now := w.cfg.Clock.Now()
	start := time.Now()
	recs, cancelled, keep, partial, err := w.fetch(ctx, k, now)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", k, err)
	}
	cache := w.st.cache[k]
	changes := make([]change, 0, len(recs))
	for _, id := range sortedKeys(recs) {
		changes = append(changes, compare(k, id, cache[id], recs[id]))
	}
	for _, id := range sortedKeys(cache) {
		if _, ok := recs[id]; ok || keep[id] {
			continue
		}
		switch {
		case cancelled[id]:
			changes = append(changes, removal(id, cache[id], ReasonCancelled))
		case k == keys.Sessions && w.expired(now, cache[id].showtime):
			// left to expire(), which runs next with the same clock
		case !partial:
			changes = append(changes, removal(id, cache[id], ReasonGone))
		}
	}
	if err := w.apply(ctx, k, changes, now); err != nil {
		return err
	}
	if err := w.announce(ctx, k, now); err != nil {
		return err
	}
	w.log.Info("reloaded", "kind", k, "count", w.count(k), "took", time.Since(start).Round(time.Millisecond),
		"added", countOp(changes, opAdd), "updated", countOp(changes, opUpdate), "removed", countOp(changes, opRemove))
	return nil
}

// announce sends a kind's full_reload event after the last batch of its
// reload, with P:meta's loaded:{kind}. A build from nothing is quiet only
// up to here.
func (w *Warmer) announce(ctx context.Context, k keys.Kind, now time.Time) error {
	count := w.count(k)
	pub := w.publisher()
	err := w.fenced(context.WithoutCancel(ctx), func(pipe redis.Pipeliner) error {
		pub.reset(w.st.seq)
		pub.publish(ctx, pipe, Event{Kind: k, Event: EventFullReload, Count: &count, At: stamp(now)})
		pipe.HSet(ctx, keys.Meta(w.cfg.Prefix), "seq", pub.seq, keys.Loaded(k), stamp(now))
		return nil
	})
	if err != nil {
		return err
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
// its TTL at the same moment; the indexes are ours to clean.
func (w *Warmer) expire(ctx context.Context, now time.Time) error {
	var changes []change
	for _, id := range sortedKeys(w.st.cache[keys.Sessions]) {
		if r := w.st.cache[keys.Sessions][id]; w.expired(now, r.showtime) {
			changes = append(changes, removal(id, r, ReasonExpired))
		}
	}
	if len(changes) == 0 {
		return nil
	}
	if err := w.apply(ctx, keys.Sessions, changes, now); err != nil {
		return err
	}
	// Sweep index members whose hash vanished while no warmer ran: their
	// cinema and film were unknown when they were removed above.
	limit := strconv.FormatInt(now.Add(-w.cfg.Policy.Grace).Unix(), 10)
	return w.fenced(context.WithoutCancel(ctx), func(pipe redis.Pipeliner) error {
		pipe.ZRemRangeByScore(ctx, keys.Index(w.cfg.Prefix, keys.Sessions), "-inf", limit)
		for id := range w.st.cache[keys.Cinemas] {
			pipe.ZRemRangeByScore(ctx, keys.CinemaSessions(w.cfg.Prefix, id), "-inf", limit)
		}
		for id := range w.st.cache[keys.Films] {
			pipe.ZRemRangeByScore(ctx, keys.FilmSessions(w.cfg.Prefix, id), "-inf", limit)
		}
		return nil
	})
}

// check looks at the sessions whose next check has come, one batched
// request per cinema, a bounded number in flight.
func (w *Warmer) check(ctx context.Context, now time.Time) error {
	cache := w.st.cache[keys.Sessions]
	groups := map[string][]string{}
	tiers := map[string]int{}
	for id, r := range cache {
		if r.missing {
			continue
		}
		tiers[w.cfg.Policy.Tier(now, r.showtime)]++
		if _, ok := w.cfg.Policy.Interval(now, r.showtime); !ok || r.nextCheck.After(now) {
			continue
		}
		cinema := r.vals[sCinemaID]
		groups[cinema] = append(groups[cinema], id)
	}
	for _, t := range Tiers {
		if t != "expired" {
			w.m.tiers.WithLabelValues(t).Set(float64(tiers[t]))
		}
	}
	if len(groups) == 0 {
		return nil
	}

	type answer struct {
		ids   []string
		seats []vista.Seats
		gone  []string
		err   error
	}
	cinemas := sortedKeys(groups)
	answers := make([]answer, len(cinemas))
	sem := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, cinema := range cinemas {
		ids := groups[cinema]
		slices.Sort(ids)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			seats, gone, err := w.cfg.Vista.CheckSeats(ctx, ids)
			answers[i] = answer{ids: ids, seats: seats, gone: gone, err: err}
		}()
	}
	wg.Wait()

	var changes []change
	for i, a := range answers {
		if a.err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			w.m.errors.WithLabelValues("check").Inc()
			w.log.Warn("seat check failed; trying again later", "cinema", cinemas[i], "sessions", len(a.ids), "err", a.err)
			// Nothing is dropped on a failed check: the sessions keep their
			// data and are looked at again after one near interval.
			retry := now.Add(w.cfg.Policy.NearInterval)
			answered := map[string]bool{}
			for _, s := range a.seats {
				answered[s.ID] = true
			}
			for _, id := range a.gone {
				answered[id] = true
			}
			for _, id := range a.ids {
				if !answered[id] {
					cache[id].nextCheck = retry
				}
			}
		}
		for _, s := range a.seats {
			old := cache[s.ID]
			if old == nil {
				continue
			}
			if s.Cancelled() {
				changes = append(changes, removal(s.ID, old, ReasonCancelled))
				continue
			}
			cur := withSeats(old, s)
			cur.nextCheck = w.cfg.Policy.NextCheck(now, cur.showtime, s.ID)
			changes = append(changes, compare(keys.Sessions, s.ID, old, cur))
		}
		for _, id := range a.gone {
			if old := cache[id]; old != nil {
				changes = append(changes, removal(id, old, ReasonGone))
			}
		}
	}
	return w.apply(ctx, keys.Sessions, changes, now)
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
	var writes int
	for _, c := range changes {
		if c.op != opConfirm {
			writes++
		}
	}
	progress := time.Now()
	for start := 0; start < len(changes); start += w.cfg.BatchSize {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := changes[start:min(start+w.cfg.BatchSize, len(changes))]
		pub := w.publisher()
		err := w.fenced(wctx, func(pipe redis.Pipeliner) error {
			pub.reset(w.st.seq)
			for _, c := range batch {
				w.queue(wctx, pipe, pub, k, c, now, quiet)
			}
			if pub.seq != w.st.seq {
				pipe.HSet(wctx, keys.Meta(w.cfg.Prefix), "seq", pub.seq)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("write %s: %w", k, err)
		}
		w.committed(pub)
		for _, c := range batch {
			if c.op == opRemove {
				delete(cache, c.id)
			} else {
				cache[c.id] = c.cur
			}
			w.m.changes.WithLabelValues(string(k), c.outcome()).Inc()
		}
		if done := start + len(batch); writes >= 10*w.cfg.BatchSize && time.Since(progress) > 2*time.Second && done < len(changes) {
			w.log.Info("writing", "kind", k, "done", done, "of", len(changes))
			progress = time.Now()
		}
	}
	return nil
}

// queue adds one change's commands, and its event unless quiet, to a
// transaction.
func (w *Warmer) queue(ctx context.Context, pipe redis.Pipeliner, pub *publisher, k keys.Kind, c change, now time.Time, quiet bool) {
	p := w.cfg.Prefix
	key := keys.Entity(p, k, c.id)
	at := stamp(now)
	sessions := k == keys.Sessions

	switch c.op {
	case opRemove:
		pipe.Del(ctx, key)
		w.unindex(ctx, pipe, k, c.id, c.old)
		if !quiet {
			pub.publish(ctx, pipe, Event{Kind: k, Event: EventRemoved, ID: c.id, Reason: c.reason, At: at})
		}
		return
	case opConfirm:
		if sessions {
			pipe.HSet(ctx, key, fUpdatedAt, at, fNextCheckAt, stamp(c.cur.nextCheck))
			// Re-arm the TTL: should the key have expired between two
			// looks, the hash just written must not outlive its showtime.
			pipe.ExpireAt(ctx, key, c.cur.showtime.Add(w.cfg.Policy.Grace))
		} else {
			pipe.HSet(ctx, key, fUpdatedAt, at)
		}
		return
	}

	names := c.changed
	args := make([]any, 0, 2*len(names)+8)
	vals := c.cur.vals
	for i, name := range fields[k] {
		if c.op == opAdd || slices.Contains(names, name) {
			args = append(args, name, vals[i])
		}
	}
	args = append(args, fUpdatedAt, at)
	if sessions {
		args = append(args, fChangedAt, at, fNextCheckAt, stamp(c.cur.nextCheck))
	}
	if w.cfg.KeepRaw && c.cur.raw != "" {
		args = append(args, fRaw, c.cur.raw)
	}
	if c.op == opAdd {
		pipe.Del(ctx, key) // whatever an earlier epoch left there goes
	}
	pipe.HSet(ctx, key, args...)

	placed := c.op == opAdd || slices.ContainsFunc(names, func(n string) bool {
		return n == "showtime" || n == "cinema_id" || n == "film_id"
	})
	if placed {
		if c.old != nil && !c.old.missing {
			w.unindex(ctx, pipe, k, c.id, c.old)
		}
		w.index(ctx, pipe, k, c.id, c.cur)
		if sessions {
			pipe.ExpireAt(ctx, key, c.cur.showtime.Add(w.cfg.Policy.Grace))
		}
	}
	if quiet {
		return
	}
	ev := Event{Kind: k, Event: EventItem, ID: c.id, Changed: names, At: at}
	if sessions {
		n, _ := strconv.Atoi(vals[sSeatsAvailable])
		ev.SeatsAvailable = &n
	}
	pub.publish(ctx, pipe, ev)
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

func (w *Warmer) unindex(ctx context.Context, pipe redis.Pipeliner, k keys.Kind, id string, r *record) {
	p := w.cfg.Prefix
	if k != keys.Sessions {
		pipe.SRem(ctx, keys.Index(p, k), id)
		return
	}
	pipe.ZRem(ctx, keys.Index(p, k), id)
	if r == nil {
		return
	}
	if c := r.vals[sCinemaID]; c != "" {
		pipe.ZRem(ctx, keys.CinemaSessions(p, c), id)
	}
	if f := r.vals[sFilmID]; f != "" {
		pipe.ZRem(ctx, keys.FilmSessions(p, f), id)
	}
}

// readCache reads what Redis holds of a kind, through its index, in
// pipelined chunks. An id the index lists whose hash is gone comes back as a
// missing record, so the next reload writes it again or says it is gone.
func (w *Warmer) readCache(ctx context.Context, k keys.Kind) (map[string]*record, error) {
	p := w.cfg.Prefix
	var ids []string
	scores := map[string]float64{}
	if k == keys.Sessions {
		zs, err := w.rdb.ZRangeWithScores(ctx, keys.Index(p, k), 0, -1).Result()
		if err != nil {
			return nil, err
		}
		for _, z := range zs {
			id, _ := z.Member.(string)
			ids = append(ids, id)
			scores[id] = z.Score
		}
	} else {
		var err error
		if ids, err = w.rdb.SMembers(ctx, keys.Index(p, k)).Result(); err != nil {
			return nil, err
		}
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
		if err != nil {
			return nil, err
		}
		for i, id := range part {
			h := cmds[i].Val()
			if len(h) == 0 || h["id"] != id {
				r := &record{vals: make([]string, len(fields[k])), missing: true}
				r.vals[0] = id
				if k == keys.Sessions {
					r.showtime = time.Unix(int64(scores[id]), 0)
				}
				cache[id] = r
				continue
			}
			cache[id] = recordFromHash(k, h)
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
