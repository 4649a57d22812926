// The indexes a batch writes: each entity's entries in its kind's index
// and its owners' (index, unindex), gathered per key and flushed once a
// batch (indexBatch).
package warmer

import (
	"cmp"
	"context"
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
	for _, key := range ix.order {
		if m := ix.rems[key]; len(m) > 0 {
			cmd := "zrem"
			if ix.set[key] {
				cmd = "srem"
			}
			pipe.Do(ctx, append([]any{cmd, key}, m...)...)
		}
	}
	for _, key := range ix.order {
		if m := ix.adds[key]; len(m) > 0 {
			cmd := "zadd"
			if ix.set[key] {
				cmd = "sadd"
			} else {
				byScore(m)
			}
			pipe.Do(ctx, append([]any{cmd, key}, m...)...)
		}
	}
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
