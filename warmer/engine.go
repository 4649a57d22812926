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

// listing is one whole list as Vista sent it, made into records.
type listing struct {
	recs map[string]*record
	// Sessions Vista lists as cancelled, and those it still lists past
	// their showtime + grace: the reason a cached one leaves by.
	cancelled, expired map[string]bool
	// keep holds the ids of rows Vista sent but that could not be read:
	// they stay as cached. partial is set when such a row had no readable
	// id, so nothing can be called gone in this reload.
	keep    map[string]bool
	partial bool
}

// fetch reads one whole list of a kind from Vista.
func (w *Warmer) fetch(ctx context.Context, k keys.Kind, now time.Time) (*listing, error) {
	l := &listing{recs: map[string]*record{}, cancelled: map[string]bool{}, expired: map[string]bool{}, keep: map[string]bool{}}
	keepRaw := w.cfg.KeepRaw
	var err error
	switch k {
	case keys.Cinemas:
		var list []vista.Cinema
		list, err = w.cfg.Vista.Cinemas(ctx)
		for _, c := range list {
			l.recs[c.ID] = cinemaRecord(c, keepRaw)
		}
	case keys.Films:
		var list []vista.Film
		list, err = w.cfg.Vista.Films(ctx)
		for _, f := range list {
			l.recs[f.ID] = filmRecord(f, keepRaw)
		}
	case keys.Sessions:
		var list []vista.Session
		list, err = w.cfg.Vista.Sessions(ctx, w.zones())
		for _, s := range list {
			switch {
			case s.Cancelled():
				l.cancelled[s.ID] = true
			case w.expired(now, s.Showtime):
				l.expired[s.ID] = true
			default:
				r := sessionRecord(s, keepRaw)
				r.nextCheck = w.cfg.Policy.NextCheck(now, r.showtime, s.ID)
				l.recs[s.ID] = r
			}
		}
	}
	for _, r := range l.recs {
		r.rawSum = checksum(r.raw)
	}
	var rowErrs vista.RowErrors
	if errors.As(err, &rowErrs) {
		for _, e := range rowErrs {
			if e.ID == "" {
				l.partial = true
			} else {
				l.keep[e.ID] = true
			}
		}
		w.log.Warn("vista sent rows that cannot be read; keeping what the cache has for them",
			"kind", k, "rows", len(rowErrs), "first", rowErrs[0].Error())
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", k, err)
	}
	return l, nil
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
	if w.st.quiet[k] {
		w.log.Info("loading from vista", "kind", k)
	}
	l, err := w.fetch(ctx, k, now)
	if err != nil {
		return err
	}
	cache := w.st.cache[k]
	changes := make([]change, 0, len(l.recs))
	for _, id := range sortedKeys(l.recs) {
		if !l.keep[id] { // a film with one bad row of several stays as it was
			changes = append(changes, compare(k, id, cache[id], l.recs[id]))
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
	if err := w.apply(ctx, k, changes, now); err != nil {
		return err
	}
	if err := w.announce(ctx, k); err != nil {
		return err
	}
	w.log.Info("reloaded", "kind", k, "count", w.count(k), "took", time.Since(start).Round(time.Millisecond),
		"added", countOp(changes, opAdd), "updated", countOp(changes, opUpdate), "removed", countOp(changes, opRemove))
	return nil
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
// its TTL at the same moment; the indexes are ours to clean.
func (w *Warmer) expire(ctx context.Context, now time.Time) error {
	if now.Before(w.st.nextExpiry) {
		return nil
	}
	var ids []string
	var next time.Time
	for id, r := range w.st.cache[keys.Sessions] {
		if w.expired(now, r.showtime) {
			ids = append(ids, id)
		} else if end := r.showtime.Add(w.cfg.Policy.Grace); next.IsZero() || end.Before(next) {
			next = end
		}
	}
	w.st.nextExpiry = next
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	changes := make([]change, len(ids))
	for i, id := range ids {
		changes[i] = removal(id, w.st.cache[keys.Sessions][id], ReasonExpired)
	}
	if err := w.apply(ctx, keys.Sessions, changes, now); err != nil {
		return err
	}
	// Sweep what an earlier run may have left past its time in the indexes.
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

// checkTimeout bounds one cinema's seat check, retries included.
const checkTimeout = 30 * time.Second

// check looks at the sessions whose next check has come, one batched
// request per cinema, a bounded number in flight.
func (w *Warmer) check(ctx context.Context, now time.Time) error {
	if now.Before(w.st.nextCheck) {
		return nil
	}
	cache := w.st.cache[keys.Sessions]
	// Sessions due within half a near interval ride along with their
	// cinema's request when it goes anyway: one request, not several a
	// second apart. The per-session phase still spreads the cinemas.
	soon := now.Add(w.cfg.Policy.NearInterval / 2)
	groups, early := map[string][]string{}, map[string][]string{}
	tiers := map[string]int{}
	var next time.Time
	for id, r := range cache {
		if r.missing {
			continue
		}
		tiers[w.cfg.Policy.Tier(now, r.showtime)]++
		_, inHorizon := w.cfg.Policy.Interval(now, r.showtime)
		if !inHorizon || r.nextCheck.After(now) {
			if !r.nextCheck.IsZero() && r.nextCheck.After(now) && (next.IsZero() || r.nextCheck.Before(next)) {
				next = r.nextCheck
			}
			if inHorizon && !r.nextCheck.After(soon) {
				early[r.vals[sCinemaID]] = append(early[r.vals[sCinemaID]], id)
			}
			continue
		}
		cinema := r.vals[sCinemaID]
		groups[cinema] = append(groups[cinema], id)
	}
	for cinema := range groups {
		groups[cinema] = append(groups[cinema], early[cinema]...)
	}
	// Until then nothing is due, unless a write brings a session due
	// sooner (see remember). Walk again within a minute at the latest, for
	// the tier gauges.
	w.st.nextCheck = minTime(now.Add(time.Minute), next)
	if next.IsZero() {
		w.st.nextCheck = now.Add(time.Minute)
	}
	w.m.setTiers(tiers)
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
			// A check that takes longer than this is stale on arrival; the
			// sessions come round again on their own schedule.
			cctx, cancel := context.WithTimeout(ctx, checkTimeout)
			defer cancel()
			seats, gone, err := w.cfg.Vista.CheckSeats(cctx, ids)
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
			// data and are looked at again on their own schedule, so an
			// outage of Vista does not turn into more load on it.
			answered := map[string]bool{}
			for _, s := range a.seats {
				answered[s.ID] = true
			}
			for _, id := range a.gone {
				answered[id] = true
			}
			for _, id := range a.ids {
				if r := cache[id]; !answered[id] {
					r.nextCheck = w.cfg.Policy.NextCheck(now, r.showtime, id)
					w.remember(r)
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

// remember brings the next walk for checks or expiries forward when a
// session written now needs one sooner.
func (w *Warmer) remember(r *record) {
	if !r.nextCheck.IsZero() && r.nextCheck.Before(w.st.nextCheck) {
		w.st.nextCheck = r.nextCheck
	}
	if end := r.showtime.Add(w.cfg.Policy.Grace); !r.showtime.IsZero() && end.Before(w.st.nextExpiry) {
		w.st.nextExpiry = end
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
				delete(cache, c.id)
				continue
			}
			if probes[i].vanished() {
				// The key was gone (evicted, or expired a moment early), so
				// the fields just set made a hash of their own: write the
				// entity whole, as new.
				w.log.Warn("an entity was missing from Redis; writing it again", "kind", k, "id", c.id)
				again := *c.cur
				changes = append(changes, change{op: opAdd, id: c.id, cur: &again, changed: diff(k, nil, c.cur)})
			}
			c.cur.raw = "" // written; its checksum is enough from here on
			cache[c.id] = c.cur
			if k == keys.Sessions {
				w.remember(c.cur)
			}
		}
		if writes >= 10*w.cfg.BatchSize && time.Since(progress) > 2*time.Second && start < len(changes) {
			w.log.Info("writing", "kind", k, "done", start, "of", len(changes))
			progress = time.Now()
		}
	}
	return nil
}

// probe is the HSET of a confirmation or an update, which Redis answers
// with the number of fields it created: all of them means the key was gone.
type probe struct {
	hset   *redis.IntCmd
	fields int
}

func (p probe) vanished() bool {
	return p.hset != nil && p.hset.Err() == nil && p.hset.Val() == int64(p.fields)
}

// queue adds one change's commands, and its event unless quiet, to a
// transaction.
func (w *Warmer) queue(ctx context.Context, pipe redis.Pipeliner, pub *publisher, k keys.Kind, c change, now time.Time, quiet bool) probe {
	key := keys.Entity(w.cfg.Prefix, k, c.id)
	at := stamp(now)
	sessions := k == keys.Sessions

	switch c.op {
	case opRemove:
		pipe.Del(ctx, key)
		w.unindex(ctx, pipe, k, c)
		if !quiet {
			pub.publish(ctx, pipe, Event{Kind: k, Event: EventRemoved, ID: c.id, Reason: c.reason, At: at})
		}
		return probe{}
	case opConfirm:
		args := []any{fUpdatedAt, at}
		if sessions {
			args = append(args, fNextCheckAt, stamp(c.cur.nextCheck))
		}
		args = w.rawArgs(ctx, pipe, key, c, args)
		p := probe{pipe.HSet(ctx, key, args...), len(args) / 2}
		if sessions {
			pipe.ExpireAt(ctx, key, c.cur.showtime.Add(w.cfg.Policy.Grace))
		}
		return p
	}

	names := c.changed
	args := make([]any, 0, 2*len(fields[k])+8)
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
	if c.op == opAdd {
		pipe.Del(ctx, key) // whatever an earlier epoch left there goes
		if c.cur.raw != "" {
			args = append(args, fRaw, c.cur.raw)
		}
	} else {
		args = w.rawArgs(ctx, pipe, key, c, args)
	}
	p := probe{pipe.HSet(ctx, key, args...), len(args) / 2}
	if c.op == opAdd {
		p = probe{} // a new hash is all new fields, by design
	}
	if sessions {
		// Every session write re-arms the TTL, so no hash of a session
		// outlives its showtime, whatever happened to the key meanwhile.
		pipe.ExpireAt(ctx, key, c.cur.showtime.Add(w.cfg.Policy.Grace))
	}
	placed := c.op == opAdd || slices.ContainsFunc(names, func(n string) bool {
		return n == "showtime" || n == "cinema_id" || n == "film_id"
	})
	if placed {
		if c.old != nil {
			w.unindex(ctx, pipe, k, change{id: c.id, old: c.old})
		}
		w.index(ctx, pipe, k, c.id, c.cur)
	}
	if quiet {
		return p
	}
	ev := Event{Kind: k, Event: EventItem, ID: c.id, Changed: names, At: at}
	if sessions {
		n, _ := strconv.Atoi(vals[sSeatsAvailable])
		ev.SeatsAvailable = &n
	}
	pub.publish(ctx, pipe, ev)
	return p
}

// rawArgs keeps an existing hash's raw field in step with what Vista sent
// in its last full list: rewritten when the row changed, even where no data
// field did, and dropped when the warmer runs without --keep-raw. A seat
// check carries no row, so raw waits for the next reload.
func (w *Warmer) rawArgs(ctx context.Context, pipe redis.Pipeliner, key string, c change, args []any) []any {
	if c.old == nil || c.old.rawSum == c.cur.rawSum || (c.cur.raw == "" && c.cur.rawSum != 0) {
		return args
	}
	if c.cur.raw == "" {
		pipe.HDel(ctx, key, fRaw)
		return args
	}
	return append(args, fRaw, c.cur.raw)
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
	if k == keys.Sessions {
		zs, err := w.rdb.ZRangeWithScores(ctx, keys.Index(p, k), 0, -1).Result()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		for _, z := range zs {
			id, _ := z.Member.(string)
			ids = append(ids, id)
			scores[id] = z.Score
		}
	} else {
		var err error
		if ids, err = w.rdb.SMembers(ctx, keys.Index(p, k)).Result(); err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
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
		var rerr redis.Error
		if err != nil && !errors.As(err, &rerr) {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		// A key that answers with an error (not a hash: WRONGTYPE) reads as
		// missing, and is written whole by the next reload.
		for i, id := range part {
			h := cmds[i].Val()
			if cmds[i].Err() != nil || len(h) == 0 || h["id"] != id {
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
