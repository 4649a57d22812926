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
	"github.com/vista-warmer/vista-warmer/keys"
)

func (w *Warmer) index(ix *indexBatch, sp *spec, id string, r *record) {
	p := w.cfg.Prefix
	if !sp.sorted {
		ix.add(keys.Index(p, sp.kind), true, 0, id)
		return
	}
	score := float64(r.showtime.time().Unix())
	ix.add(keys.Index(p, sp.kind), false, score, id)
	for _, o := range sp.owners {
		if owner := r.vals.get(o.field); owner != "" {
			ix.add(o.key(p, owner), false, score, id)
		}
	}
}

// unindex takes a removed or moved entity out of its indexes. An entry
// read back from an index whose hash was gone has no owners to go by: it
// is taken out of the index of every owner we know, unless it expired,
// which the sweep covers for all at once.
func (w *Warmer) unindex(ix *indexBatch, sp *spec, c change) {
	p := w.cfg.Prefix
	if !sp.sorted {
		ix.rem(keys.Index(p, sp.kind), true, c.id)
		return
	}
	ix.rem(keys.Index(p, sp.kind), false, c.id)
	r := c.old
	if r == nil || (r.missing && c.reason == keys.ReasonExpired) {
		return
	}
	for _, o := range sp.owners {
		if r.missing {
			for owner := range w.st.cache[o.kind] {
				ix.rem(o.key(p, owner), false, c.id)
			}
		} else if owner := r.vals.get(o.field); owner != "" {
			ix.rem(o.key(p, owner), false, c.id)
		}
	}
}

// indexBatch gathers the index writes of one batch, so that each index key
// takes one ZADD (or SADD) of all its new members, not one per entry:
// that cost Redis more than the hashes themselves.
type indexBatch struct {
	order      []string // keys, in the order they came
	adds, rems map[string][]any
	set        map[string]bool // a set (SADD, SREM), not a sorted set
}

func (ix *indexBatch) note(key string, set bool) {
	if ix.set == nil {
		ix.adds, ix.rems, ix.set = map[string][]any{}, map[string][]any{}, map[string]bool{}
	}
	if _, ok := ix.set[key]; !ok {
		ix.order = append(ix.order, key)
		ix.set[key] = set
	}
}

func (ix *indexBatch) add(key string, set bool, score float64, id string) {
	ix.note(key, set)
	if set {
		ix.adds[key] = append(ix.adds[key], id)
	} else {
		ix.adds[key] = append(ix.adds[key], score, id)
	}
}

func (ix *indexBatch) rem(key string, set bool, id string) {
	ix.note(key, set)
	ix.rems[key] = append(ix.rems[key], id)
}

// flush queues the removals, then the additions: an entry that moves
// within a batch leaves its old place before it takes the new one.
func (ix *indexBatch) flush(ctx context.Context, pipe redis.Pipeliner) {
	for _, c := range ix.commands(0) {
		pipe.Do(ctx, c...)
	}
}

// commands returns what flush queues: the removals, then the additions,
// a sorted set's sorted by score; with per > 0, each key's additions go
// as commands of at most per members.
func (ix *indexBatch) commands(per int) [][]any {
	var out [][]any
	for _, key := range ix.order {
		if m := ix.rems[key]; len(m) > 0 {
			cmd := "zrem"
			if ix.set[key] {
				cmd = "srem"
			}
			out = append(out, append([]any{cmd, key}, m...))
		}
	}
	for _, key := range ix.order {
		m := ix.adds[key]
		if len(m) == 0 {
			continue
		}
		cmd, step := "zadd", 2
		if ix.set[key] {
			cmd, step = "sadd", 1
		} else {
			byScore(m)
		}
		size := len(m)
		if per > 0 {
			size = per * step
		}
		for part := range slices.Chunk(m, size) {
			out = append(out, append([]any{cmd, key}, part...))
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
)

// writeIndexes lists a kind's unindexed entities in its indexes, those
// still in the cache, as they are now.
func (w *Warmer) writeIndexes(ctx context.Context, k keys.Kind) error {
	sp, cache, r := w.specs[k], w.st.cache[k], w.st.kinds[k]
	ix := &indexBatch{}
	for _, id := range r.unindexed {
		if rec := cache[id]; rec != nil && !rec.missing {
			w.index(ix, sp, id, rec)
		}
	}
	cmds := ix.commands(indexCmdEntries)
	wctx := context.WithoutCancel(ctx)
	for len(cmds) > 0 {
		n, args := 0, 0
		for n < len(cmds) && (n == 0 || args+len(cmds[n]) <= 2*indexWriteEntries) {
			args += len(cmds[n])
			n++
		}
		group := cmds[:n]
		cmds = cmds[n:]
		err := w.store.fenced(wctx, w.guard(), func(pipe redis.Pipeliner) {
			for _, c := range group {
				pipe.Do(wctx, c...)
			}
		})
		if err != nil {
			return fmt.Errorf("write %s indexes: %w", k, err)
		}
	}
	r.unindexed = nil
	return nil
}

// byScore sorts ZADD's score and member pairs by score. Redis inserts
// them into the sorted set one after the other: in order, each starts
// its search where the one before left the set's skip list in the CPU's
// cache. A cold load's index entries, in the order Vista lists sessions,
// cost Redis four times the CPU of the same entries in order.
func byScore(pairs []any) {
	type pair struct {
		score float64
		id    any
	}
	ps := make([]pair, len(pairs)/2)
	for i := range ps {
		ps[i] = pair{pairs[2*i].(float64), pairs[2*i+1]}
	}
	slices.SortFunc(ps, func(a, b pair) int { return cmp.Compare(a.score, b.score) })
	for i, p := range ps {
		pairs[2*i], pairs[2*i+1] = p.score, p.id
	}
}
