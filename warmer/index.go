// The indexes a batch writes: each entity's entries in its kind's index
// and its owners' (index, unindex), gathered per key and flushed once a
// batch (indexBatch).
package warmer

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/vista-warmer/vista-warmer/keys"
)

func (w *Warmer) index(ix *indexBatch, sp *spec, id string, r *record) {
	p := w.cfg.Prefix
	own := ix.own(p, sp)
	if !sp.sorted {
		own.add(0, id)
		return
	}
	score := r.showtime.time().Unix()
	own.add(score, id)
	for _, o := range sp.owners {
		if owner := r.vals.get(o.field); owner != "" {
			ix.owner(p, sp, o, owner).add(score, id)
		}
	}
}

// unindex takes a removed or moved entity out of its indexes. An entry
// read back from an index whose hash was gone has no owners to go by: it
// is taken out of the index of every owner we know, unless it expired,
// which the sweep covers for all at once.
func (w *Warmer) unindex(ix *indexBatch, sp *spec, c change) {
	p := w.cfg.Prefix
	ix.own(p, sp).rem(c.id)
	if !sp.sorted {
		return
	}
	r := c.old
	if r == nil || (r.missing && c.reason == keys.ReasonExpired) {
		return
	}
	for _, o := range sp.owners {
		if r.missing {
			for owner := range w.st.cache[o.kind] {
				ix.owner(p, sp, o, owner).rem(c.id)
			}
		} else if owner := r.vals.get(o.field); owner != "" {
			ix.owner(p, sp, o, owner).rem(c.id)
		}
	}
}

// indexBatch gathers the index writes of one batch, so that each index key
// takes one ZADD (or SADD) of all its new members, not one per entry:
// that cost Redis more than the hashes themselves.
type indexBatch struct {
	keys  []*indexKey // in the order they came
	known map[indexRef]*indexKey
}

// indexRef names an index key without making its name: a kind's own
// index (field -1), or the index of the owner whose id a record's field
// holds. A cold load of 100k sessions asks for 300k of them.
type indexRef struct {
	kind  keys.Kind
	field int
	owner string
}

// indexKey is what a batch writes to one index key.
type indexKey struct {
	ref  indexRef
	name string
	set  bool        // a set (SADD, SREM), not a sorted set
	adds []indexItem // by score once commands sorts them
	rems []any
}

// indexItem is an entry of a sorted set (score and id) or of a set (id).
type indexItem struct {
	score int64
	id    string
}

func (k *indexKey) add(score int64, id string) { k.adds = append(k.adds, indexItem{score, id}) }
func (k *indexKey) rem(id string)              { k.rems = append(k.rems, id) }

// own returns the batch's writes to sp's kind's own index.
func (ix *indexBatch) own(prefix string, sp *spec) *indexKey {
	return ix.key(indexRef{sp.kind, -1, ""}, !sp.sorted, func() string { return keys.Index(prefix, sp.kind) })
}

// owner returns the batch's writes to the index of sp's kind that the
// owner o of that id keeps.
func (ix *indexBatch) owner(prefix string, sp *spec, o owner, id string) *indexKey {
	return ix.key(indexRef{sp.kind, o.field, id}, false, func() string { return o.key(prefix, id) })
}

// key returns the batch's writes to the index ref names; name makes its
// key the first time.
func (ix *indexBatch) key(ref indexRef, set bool, name func() string) *indexKey {
	if k := ix.known[ref]; k != nil {
		return k
	}
	return ix.adopt(&indexKey{ref: ref, name: name(), set: set})
}

// adopt takes k in as the batch's writes to the index k.ref names, after
// the keys it has.
func (ix *indexBatch) adopt(k *indexKey) *indexKey {
	if ix.known == nil {
		ix.known = map[indexRef]*indexKey{}
	}
	ix.known[k.ref] = k
	ix.keys = append(ix.keys, k)
	return k
}

// flush queues the removals, then the additions: an entry that moves
// within a batch leaves its old place before it takes the new one.
func (ix *indexBatch) flush(ctx context.Context, pipe redis.Pipeliner) {
	for _, c := range ix.commands(0) {
		pipe.Do(ctx, c...)
	}
}

// commands returns what flush queues: the removals, then the additions,
// a sorted set's in score order (byScore); with per > 0, each key's
// additions go as commands of at most per members.
func (ix *indexBatch) commands(per int) [][]any {
	var out [][]any
	for _, k := range ix.keys {
		if len(k.rems) > 0 {
			cmd := "zrem"
			if k.set {
				cmd = "srem"
			}
			out = append(out, append([]any{cmd, k.name}, k.rems...))
		}
	}
	for _, k := range ix.keys {
		if len(k.adds) == 0 {
			continue
		}
		cmd, step := "zadd", 2
		if k.set {
			cmd, step = "sadd", 1
		} else {
			byScore(k.adds)
		}
		size := len(k.adds)
		if per > 0 {
			size = per
		}
		for part := range slices.Chunk(k.adds, size) {
			// Pointers to the entries, which nothing changes until the
			// command is sent: an id or a score in an interface is an
			// allocation of its own, and a cold load of 100k sessions
			// has 300k entries.
			args := make([]any, 0, 2+step*len(part))
			args = append(args, cmd, k.name)
			for i := range part {
				e := &part[i]
				if !k.set {
					args = append(args, &e.score)
				}
				args = append(args, &e.id)
			}
			out = append(out, args)
		}
	}
	return out
}

// A build from nothing writes no index entry while its list comes in
// (queue leaves them out while the kind is quiet, and wrote notes the
// entities as unindexed), and lists them in its indexes a hundred
// thousand at a time, when its list is in, and when Vista fails its list
// (writeIndexes): each key's entries in score order, many to one key, so
// that Redis inserts each next to the one before it instead of searching
// the whole sorted set for its place. At 500k sessions the index entries
// of each batch of 500 as the pages came cost Redis 3.4 s of CPU, against
// 1.6 s for plain whole-key ZADDs of the same entries. Readers see a
// build's hashes before its indexes list them, while the cache is not
// ready (/readyz, P:meta's loaded:sessions), before its full_reload
// event; an entity that moves or goes meanwhile leaves or takes its
// index entries at once, as always. What only memory knows is lost with
// the writer's state: a writer that takes over a build finds its hashes
// by SCAN (readUnlisted), and an eviction sweep lists them before it
// mends the indexes.
const (
	// indexEvery is how many unindexed entities a build lists at a time.
	indexEvery = 100_000
	// indexCmdEntries is the most members one ZADD or SADD of them
	// carries: a script's unpack of a command's arguments fails past
	// about 8,000 (Redis's Lua) or fewer (the demo's embedded Redis).
	indexCmdEntries = 1000
	// indexWriteEntries is about the most entries one fenced write of
	// them carries: Redis runs a write whole, and serves no reader
	// meanwhile.
	indexWriteEntries = 50_000
	// indexHalvesFrom is the fewest unindexed entities listUnindexed
	// gathers in two halves at once.
	indexHalvesFrom = 20_000
)

// writeIndexes lists a kind's unindexed entities in its indexes, those
// still in the cache, as they are now.
func (w *Warmer) writeIndexes(ctx context.Context, k keys.Kind) error {
	sp, cache, r := w.specs[k], w.st.cache[k], w.st.kinds[k]
	cmds := w.listUnindexed(sp, cache, r.unindexed).commands(indexCmdEntries)
	wctx, guard := context.WithoutCancel(ctx), w.guard()
	// Two writes in flight: Redis runs one while the next is made ready
	// and sent. They only add entries, so their order does not matter.
	// Like every write, they go whole whatever ctx says; after a failure
	// no more are sent, and the first to fail says why. Whether to send
	// is decided when a write has its turn, not when its goroutine gets
	// to run: a write sent beside one that fails goes.
	var g errgroup.Group
	failed, fail := context.WithCancelCause(wctx)
	defer fail(nil)
	turns := make(chan struct{}, 2)
	for len(cmds) > 0 {
		turns <- struct{}{}
		if failed.Err() != nil {
			break // one failed while this waited for its turn
		}
		n, args := 0, 0
		for n < len(cmds) && (n == 0 || args+len(cmds[n]) <= 2*w.indexWrite) {
			args += len(cmds[n])
			n++
		}
		group := cmds[:n]
		cmds = cmds[n:]
		g.Go(func() error {
			err := w.store.fenced(wctx, guard, func(pipe redis.Pipeliner) {
				for _, c := range group {
					pipe.Do(wctx, c...)
				}
			})
			if err != nil {
				fail(err) // before the turn is given back: no write is sent after it
			}
			<-turns
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("write %s indexes: %w", k, err)
	}
	r.unindexed = nil
	return nil
}

// listUnindexed gathers the index entries of the unindexed entities ids
// that are still in the cache, as they are now, each sorted set's in
// score order. Redis waits for it: a step of 100k sessions took 35–44 ms
// to read from the cache and 18 ms to sort, on one core. So a large step
// is gathered in two halves at once, each sorted, then merged. Both only
// read the cache, which nothing writes meanwhile: the loop, its one
// writer, is here.
func (w *Warmer) listUnindexed(sp *spec, cache map[string]*record, ids []string) *indexBatch {
	gather := func(ids []string) *indexBatch {
		ix := &indexBatch{}
		for _, id := range ids {
			if rec := cache[id]; rec != nil && !rec.missing {
				w.index(ix, sp, id, rec)
			}
		}
		for _, k := range ix.keys {
			if !k.set {
				byScore(k.adds)
			}
		}
		return ix
	}
	if len(ids) < w.indexHalves {
		return gather(ids)
	}
	half := len(ids) / 2
	var second *indexBatch
	done := make(chan struct{})
	go func() {
		defer close(done)
		second = gather(ids[half:])
	}()
	first := gather(ids[:half])
	<-done
	first.merge(second)
	return first
}

// merge adds o's writes to ix's, keeping each sorted set's additions in
// score order where both kept them so.
func (ix *indexBatch) merge(o *indexBatch) {
	for _, ok := range o.keys {
		k := ix.known[ok.ref]
		if k == nil {
			ix.adopt(ok)
			continue
		}
		k.rems = append(k.rems, ok.rems...)
		switch {
		case len(ok.adds) == 0:
		case k.set:
			k.adds = append(k.adds, ok.adds...)
		default:
			k.adds = mergeByScore(k.adds, ok.adds)
		}
	}
}

// mergeByScore merges two sorted sets' entries, each in score order, into
// one in score order.
func mergeByScore(a, b []indexItem) []indexItem {
	out := make([]indexItem, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if b[0].score < a[0].score {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}

// byScore sorts a sorted set's entries by score. Redis inserts them
// into the sorted set one after the other: in order, each starts its
// search where the one before left the set's skip list in the CPU's
// cache. A cold load's index entries, in the order Vista lists sessions,
// cost Redis four times the CPU of the same entries in order.
func byScore(items []indexItem) {
	slices.SortFunc(items, func(a, b indexItem) int { return cmp.Compare(a.score, b.score) })
}
