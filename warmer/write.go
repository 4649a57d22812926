package warmer

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// guard is what the writer's next write expects of P:meta.
func (w *Warmer) guard() *guard {
	return &guard{epoch: w.st.epoch, seq: w.st.seq}
}

func (w *Warmer) publisher(epoch string, seq int64) *publisher {
	return &publisher{prefix: w.cfg.Prefix, epoch: epoch, maxLen: w.cfg.StreamMaxLen, seq: seq, sharded: w.cfg.ShardedEvents}
}

// committed takes the numbers a transaction used once Redis has it.
func (w *Warmer) committed(pub *publisher) {
	w.st.seq = pub.seq
	w.written.epoch, w.written.seq = pub.epoch, pub.seq
	for kind, byEvent := range pub.published {
		for ev, n := range byEvent {
			w.m.events.WithLabelValues(string(kind), ev).Add(float64(n))
		}
	}
}

// apply writes changes in bounded batches, each one fenced write. Each
// batch carries the data, TTLs, index entries, P:meta seq and the PUBLISH
// and XADD of its events, so a reader that fetches a key on an event sees
// that state or a newer one. The cache in memory follows each batch once
// Redis took it. The next batch is made ready while Redis runs one, so the
// warmer's work and Redis's overlap; they go to Redis one after the other.
// A batch that has started is finished even when ctx ends; the next is not.
//
// The changes that are news (additions, updates, removals) go first, in
// writes of their own, and the confirmations after them: a sweep's answer
// confirms many sessions for the few it changes, and the changes' events
// would otherwise wait for the warmer to make all of it ready and for
// Redis to run it.
func (w *Warmer) apply(ctx context.Context, k keys.Kind, changes []change, now time.Time) error {
	return w.applyMore(ctx, k, changes, now, nil)
}

// part is changes to write, made at now.
type part struct {
	changes []change
	now     time.Time
}

// applyMore is apply, and then, when more is not nil and changes are all
// news, the parts more gives, as long as it gives them, in the same run
// of batches: the first of them is made ready, and may go to Redis,
// before the last of changes is taken into the cache. more is called on
// the loop (it may read the cache) while Redis runs a group of batches,
// or when no batch is ready; its parts must hold news only, and touch
// none of the entities of changes or of the parts before.
func (w *Warmer) applyMore(ctx context.Context, k keys.Kind, changes []change, now time.Time, more func() (part, bool)) error {
	news, confirms := newsFirst(changes)
	if len(news) == 0 || len(confirms) > 0 {
		more = nil
	}
	for _, changes := range [][]change{news, confirms} {
		for len(changes) > 0 {
			rewrite, err := w.applyOnce(ctx, k, part{changes, now}, more)
			if err != nil {
				return err
			}
			changes, more = rewrite, nil
		}
	}
	return nil
}

// newsFirst splits changes into those that change something and the
// confirmations, each in the order given; it copies nothing when changes
// hold only one of them. A confirmation of an entity that the news also
// change is dropped: two answers asked at the same instant (a sweep and
// a check by id that went out together) may both give a session, and
// the confirmation, written after, would undo the news in the cache, or
// write back whole a session the news removed.
func newsFirst(changes []change) (news, confirms []change) {
	n := countOp(changes, opConfirm)
	switch n {
	case 0:
		return changes, nil
	case len(changes):
		return nil, changes
	}
	news = make([]change, 0, len(changes)-n)
	confirms = make([]change, 0, n)
	changed := make(map[string]bool, len(changes)-n)
	for _, c := range changes {
		if c.op != opConfirm {
			news = append(news, c)
			changed[c.id] = true
		}
	}
	for _, c := range changes {
		if c.op == opConfirm && !changed[c.id] {
			confirms = append(confirms, c)
		}
	}
	return news, confirms
}

// batchesAhead is how many batches a long write makes ready while Redis
// runs the ones before; they go to Redis together, each a fenced write.
// A write of 100k sessions is 200 batches of 500, each a few milliseconds
// of Redis's time.
const batchesAhead = 4

// batch is one batch of changes, ready to send.
type batch struct {
	changes []change
	pub     *publisher
	probes  []probe
	wr      *write
	end     int // changes written once this batch is
}

// applyOnce writes the changes of first, then those of the parts more
// gives (see applyMore), and returns the entities it found gone from
// Redis, to be written again whole.
func (w *Warmer) applyOnce(ctx context.Context, k keys.Kind, first part, more func() (part, bool)) ([]change, error) {
	how := writing{quiet: w.st.kinds[k].quiet}
	how.fresh = how.quiet && w.st.kinds[k].fresh
	sp := w.specs[k]
	wctx := context.WithoutCancel(ctx)
	total, writes := len(first.changes), len(first.changes)-countOp(first.changes, opConfirm)
	progress := time.Now()

	// The batches are prepared ahead (up to batchesAhead), by a goroutine
	// that reads the changes and nothing the loop below writes; each
	// expects the seq the one before it leaves. A single batch (a seat
	// answer's, a sweep's) is prepared here: there is nothing to overlap
	// it with, and the hop to a goroutine and back would delay its events.
	// It takes the changes part by part from feed, which the loop below
	// closes when more has no more to give.
	ready := make(chan *batch, batchesAhead)
	feed := make(chan part, 1)
	feed <- first
	stop, done := make(chan struct{}), make(chan struct{})
	defer func() {
		close(stop)
		<-done // it reads the writer's state, which an error may drop
	}()
	epoch, seq := w.st.epoch, w.st.seq
	prepare := func() {
		defer close(done)
		defer close(ready)
		end := 0
		for {
			var pt part
			select {
			case p, ok := <-feed:
				if !ok {
					return
				}
				pt = p
			case <-stop:
				return
			}
			at := stamp(pt.now)
			for start := 0; start < len(pt.changes); {
				b := &batch{changes: pt.changes[start:min(start+w.cfg.BatchSize, len(pt.changes))]}
				start += len(b.changes)
				end += len(b.changes)
				b.end = end
				b.pub = w.publisher(epoch, seq)
				b.probes = make([]probe, len(b.changes))
				g := &guard{epoch: epoch, seq: seq}
				b.wr = w.store.prepare(wctx, g, func(pipe redis.Pipeliner) {
					ix := &indexBatch{}
					for i, c := range b.changes {
						b.probes[i] = w.queue(wctx, pipe, b.pub, ix, sp, c, at, how)
					}
					ix.flush(wctx, pipe)
					if b.pub.seq != seq {
						pipe.HSet(wctx, keys.Meta(w.cfg.Prefix), keys.MetaSeq, b.pub.seq)
					}
				})
				seq = b.pub.seq
				select {
				case ready <- b:
				case <-stop:
					return
				}
			}
		}
	}
	// feedMore gives the goroutine the next part, or says there is none.
	// A part of no changes would leave it waiting for one, and the loop
	// for a batch: it is skipped.
	feedMore := func() {
		for more != nil {
			pt, ok := more()
			switch {
			case !ok:
				close(feed)
				more = nil
			case len(pt.changes) > 0:
				feed <- pt // the one sender, and feed was empty
				total += len(pt.changes)
				writes += len(pt.changes) - countOp(pt.changes, opConfirm)
				return
			}
		}
	}
	if more == nil {
		close(feed)
	}
	if more == nil && len(first.changes) <= w.cfg.BatchSize {
		prepare() // one batch: ready holds it
	} else {
		go prepare()
	}

	var rewrite []change
	// ran is the last group Redis ran, not yet taken into the cache: it
	// is taken in while Redis runs the next, so that Redis does not wait
	// for the warmer's bookkeeping between the groups of a long write.
	var ran []*batch
	takeRan := func() {
		for _, g := range ran {
			rewrite = append(rewrite, w.wrote(k, g)...)
			if bug("hashafter") {
				w.hashAfter(wctx, sp, g)
			}
		}
		ran = nil
	}
	for {
		var b *batch
		select {
		case b = <-ready:
		default:
			// Nothing ready: the goroutine may be waiting for a part.
			if len(feed) == 0 {
				feedMore()
			}
			b = <-ready
		}
		if b == nil {
			break // ready closed: all of it written
		}
		if err := ctx.Err(); err != nil {
			takeRan()
			return nil, err
		}
		// The batches ready go together: as scripts, in one round trip,
		// Redis running the first while the others are on their way; as
		// transactions, one round trip each, each carrying the opening
		// of the next (see transact).
		group := []*batch{b}
		for n := len(ready); n > 0; n-- {
			if next, ok := <-ready; ok {
				group = append(group, next)
			}
		}
		wrs := make([]*write, len(group))
		for i, g := range group {
			wrs[i] = g.wr
		}
		var done int
		var err error
		if ran == nil {
			// Nothing to take in meanwhile (the first group; a seat
			// answer's one batch): no hop to another goroutine.
			done, err = w.store.run(wctx, wrs...)
		} else {
			// The store is the goroutine's alone until it is done; the
			// cache and the rest of the state, this one's.
			finished := make(chan struct{})
			go func() {
				defer close(finished)
				done, err = w.store.run(wctx, wrs...)
			}()
			takeRan()
			// A long write (a reload of 100k sessions takes seconds)
			// does not hold up the seat checks that come due meanwhile:
			// they go out now, judged on the cache as it stands, and
			// their answers are written after it.
			w.sendChecks(ctx, w.cfg.Clock.Now())
			// The next part, if any, is diffed while Redis runs this
			// group, and the goroutine makes its first batches ready.
			if len(feed) == 0 {
				feedMore()
			}
			<-finished
		}
		ran = group[:done]
		if err != nil {
			takeRan()
			// Writes after the one that failed may have run (scripts in
			// one round trip, a build's all expecting one seq): a key of
			// the kind may be there now without the writer knowing.
			if w.st != nil {
				w.st.kinds[k].fresh = false
			}
			return nil, fmt.Errorf("write %s: %w", k, err)
		}
		if end := group[len(group)-1].end; writes >= 10*w.cfg.BatchSize && time.Since(progress) > 2*time.Second && end < total {
			w.log.Info("writing", "kind", k, "done", end, "of", total)
			progress = time.Now()
		}
	}
	takeRan()
	w.sendChecks(ctx, w.cfg.Clock.Now())
	return rewrite, nil
}

// wrote takes a batch Redis took into the cache in memory, and returns the
// entities it found gone from Redis, to be written again whole.
func (w *Warmer) wrote(k keys.Kind, b *batch) []change {
	sp, cache := w.specs[k], w.st.cache[k]
	var rewrite []change
	var missing []string
	defer func() {
		if len(missing) > 0 {
			w.log.Warn("entities were missing from Redis (evicted, or expired early); written whole again",
				"kind", k, "count", len(missing), "first", missing[0])
		}
	}()
	w.committed(b.pub)
	w.st.mu.Lock() // a list fetched in the background may be reading the maps
	defer w.st.mu.Unlock()
	// Counted once a batch for each outcome: a labelled counter hashes
	// its labels at every lookup, and a cold load counts 100k changes.
	var byOp [opRemove + 1]int
	defer func() {
		for o, n := range byOp {
			if n > 0 {
				w.m.changes.WithLabelValues(string(k), op(o).outcome()).Add(float64(n))
			}
		}
	}()
	for i, c := range b.changes {
		byOp[c.op]++
		if c.op == opRemove {
			if sp.checked {
				w.st.unplace(cache[c.id])
			}
			delete(cache, c.id)
			continue
		}
		switch b.probes[i].outcome() {
		case hashVanished:
			// The key was gone (evicted, or expired a moment early) and
			// a confirmation carries too little to write it whole:
			// write the entity again, as new.
			missing = append(missing, c.id)
			w.m.repairs.WithLabelValues(string(k), repairHash).Inc()
			whole := *c.cur
			whole.rawSum = checksum(whole.raw) // a seat check has no raw: the next reload writes it
			rewrite = append(rewrite, change{op: opAdd, id: c.id, cur: &whole, changed: diff(sp.fields, nil, c.cur)})
		case hashRewritten:
			missing = append(missing, c.id) // written whole with its change
			w.m.repairs.WithLabelValues(string(k), repairHash).Inc()
			c.cur.rawSum = checksum(c.cur.raw) // written whole: with raw only if the change had it
		}
		c.cur.raw = ""                            // written; its checksum is enough from here on
		if w.st.kinds[k].quiet && c.op == opAdd { // queue left out its index entries
			w.st.kinds[k].unindexed = append(w.st.kinds[k].unindexed, c.id)
		}
		if sp.checked {
			prev := cache[c.id] // once: at 500k sessions each lookup misses the CPU's cache
			w.st.unplace(prev)
			w.st.place(c.id, prev, c.cur)
		}
		cache[c.id] = c.cur
	}
	return rewrite
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
// Its arguments: the key; EXPIREAT in Unix seconds or ""; nset, ndel;
// the fields and values that make the rest of the hash when it has to be
// written whole, packed into one argument (packField; "" for none); then
// nset field/value arguments to set and ndel field names to delete. It
// answers 1 when the hash was there, 2 when it was written whole, 0 when
// it was not there and not written.
//
// The rest of the hash is one argument, not a pair of arguments a field:
// it is needed only where Redis lost the hash, and every argument of a
// script costs Redis an object and a Lua string whether the script reads
// it or not. A sweep's write of 20 updates carried some 700 arguments of
// them; as one each, it takes Redis about 160 µs less from idle.
const hashWriteCmd = "vw.hashwrite"

// packField appends s to b as hashwrite.lua's unpack reads it: its length
// in bytes, a colon, its bytes.
func packField(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

// hashNewCmd is the write script's command for a new entity's hash: it
// deletes whatever the key held, writes the fields and sets the expiry
// (EXPIREAT in Unix seconds, or "" for none), in one call of the script's
// rather than three: a cold load writes one for every entity. Its
// arguments: the expiry, the word hset, the key, then field and value
// pairs; from hset on, they are the HSET a transaction sends as they are
// (bulkCommands). It answers nothing of its own.
const hashNewCmd = "vw.hashnew"

// hashFreshCmd is hashNewCmd for a key that holds nothing: a build's,
// into a Redis that held no key of the kind when it began (writing.fresh).
// It writes the fields and sets the expiry, with no DEL: a cold load's
// DELs, of keys that are not there, were a tenth of Redis's time.
const hashFreshCmd = "vw.hashfresh"

// hashWrite queues one hash's write and returns its probe.
func hashWrite(ctx context.Context, pipe redis.Pipeliner, key string, expireAt string, set, del []any, whole string) probe {
	args := make([]any, 0, 6+len(set)+len(del))
	args = append(args, hashWriteCmd, key, expireAt, len(set), len(del), whole)
	args = append(args, set...)
	args = append(args, del...)
	return probe{cmd: pipe.Do(ctx, args...)}
}

// writing is how a kind's changes are written: quiet, as part of a build
// from nothing, which sends no item events; fresh, into a Redis that held
// no key of the kind when the build began, so that a new entity's hash
// needs no DEL first.
type writing struct{ quiet, fresh bool }

// queue adds one change's commands, and its event unless quiet, to a
// transaction.
func (w *Warmer) queue(ctx context.Context, pipe redis.Pipeliner, pub *publisher, ix *indexBatch, sp *spec, c change, at string, how writing) probe {
	quiet := how.quiet
	key := keys.Entity(w.cfg.Prefix, sp.kind, c.id)
	k := sp.kind
	names := sp.fields

	if c.op == opRemove {
		if c.old == nil || !c.old.unsafe {
			pipe.Del(ctx, key)
		}
		w.unindex(ix, sp, c)
		if !quiet {
			pub.publish(ctx, pipe, keys.Event{Kind: k, Event: keys.EventRemoved, ID: c.id, Reason: c.reason, At: at})
		}
		return probe{}
	}

	vals := c.cur.vals.all()
	expireAt := ""
	if sp.expires {
		// Every session write re-arms the TTL, so no hash of a session
		// outlives its showtime, whatever happened to the key meanwhile.
		expireAt = strconv.FormatInt(c.cur.showtime.time().Add(w.cfg.Policy.Grace).Unix(), 10)
	}
	if c.op == opAdd {
		// The values go as pointers into vals: a string in an interface
		// is an allocation of its own, and a cold load writes about
		// twenty of them for each of 100k sessions.
		args := make([]any, 0, 2*len(names)+10)
		cmd := hashNewCmd
		if how.fresh {
			cmd = hashFreshCmd
		}
		args = append(args, cmd, expireAt, "hset", key)
		for i, name := range sp.args {
			args = append(args, name, &vals[i])
		}
		atArg := any(at)
		args = append(args, fUpdatedAt, atArg)
		if sp.checked {
			args = append(args, fChangedAt, atArg, fNextCheckAt, stamp(c.cur.nextCheck.time()))
		}
		if c.cur.raw != "" {
			args = append(args, fRaw, c.cur.raw)
		}
		pipe.Do(ctx, args...) // DEL (whatever an earlier epoch left there goes; not when fresh), HSET, EXPIREAT

		if c.old != nil { // listed by an index, its hash gone: out of wherever it was
			w.unindex(ix, sp, change{id: c.id, old: c.old})
		}
		if !quiet { // a build lists its entities later (writeIndexes)
			w.index(ix, sp, c.id, c.cur)
			pub.publish(ctx, pipe, itemEvent(sp, c, at))
		}
		return probe{}
	}

	// A confirmation or an update: set what changed (or only the
	// bookkeeping), fill in the fields the hash lacked, drop stray ones.
	// Names and values go as an addition's do: the names boxed once for
	// all writes (sp.args), the values as pointers into vals.
	set := make([]any, 0, 16)
	var whole []byte // an update's other fields, packed (see hashWriteCmd)
	if c.op == opUpdate {
		whole = make([]byte, 0, 256)
	}
	for i, name := range names {
		switch {
		case c.op == opUpdate && slices.Contains(c.changed, name),
			c.old != nil && c.old.absent != nil && c.old.absent[i]:
			v := any(&vals[i])
			if bug("hashafter") && c.op == opUpdate && c.old != nil {
				v = c.old.vals.all()[i] // the new value comes later (hashAfter)
			}
			set = append(set, sp.args[i], v)
		case c.op == opUpdate:
			whole = packField(packField(whole, name), vals[i])
		}
	}
	set = append(set, fUpdatedAt, at)
	if sp.checked {
		if c.op == opUpdate {
			set = append(set, fChangedAt, at)
		}
		set = append(set, fNextCheckAt, stamp(c.cur.nextCheck.time()))
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
		whole = packField(packField(whole, fRaw), c.cur.raw)
	}
	p := hashWrite(ctx, pipe, key, expireAt, set, del, string(whole))

	moved := c.op == opUpdate && slices.ContainsFunc(c.changed, func(n string) bool {
		return slices.Contains(sp.placing(), n)
	})
	if moved {
		w.unindex(ix, sp, change{id: c.id, old: c.old})
		w.index(ix, sp, c.id, c.cur)
	}
	if c.op == opUpdate && !quiet {
		pub.publish(ctx, pipe, itemEvent(sp, c, at))
	}
	return p
}

func itemEvent(sp *spec, c change, at string) keys.Event {
	ev := keys.Event{Kind: sp.kind, Event: keys.EventItem, ID: c.id, Changed: c.changed, At: at}
	if sp.extras != nil {
		sp.extras(&ev, c.cur)
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

// hashAfter writes, a moment late, the changed fields a wrong warmer
// (bug "hashafter") left out of the write that sent their events.
func (w *Warmer) hashAfter(ctx context.Context, sp *spec, b *batch) {
	time.Sleep(300 * time.Millisecond)
	for _, c := range b.changes {
		if c.op != opUpdate || c.cur == nil {
			continue
		}
		vals := c.cur.vals.all()
		var set []any
		for i, name := range sp.fields {
			if slices.Contains(c.changed, name) {
				set = append(set, name, vals[i])
			}
		}
		if len(set) > 0 {
			w.rdb.HSet(ctx, keys.Entity(w.cfg.Prefix, sp.kind, c.id), set...)
		}
	}
}
