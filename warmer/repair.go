package warmer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
)

// isWrongType reports a Redis WRONGTYPE error: a key holds another type
// than the command works on.
func isWrongType(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.Contains(rerr.Error(), "WRONGTYPE") // also as a script's error
}

// indexWant is what one index key should hold. Checking an index that
// agrees, the common case, costs one pass over what Redis holds and no
// copy of the cache: has tells whether a member belongs with its score,
// count how many there should be. members lists them all, for a fix.
type indexWant struct {
	key     string
	set     bool // a set (P:cinemas, P:films); else a sorted set
	count   int
	has     func(id string, score float64) bool
	members func() map[string]float64
}

// indexFix is what an index key needs to agree with the cache.
type indexFix struct {
	want   indexWant
	whole  bool     // another type holds the key: delete it, write all
	add    []string // members missing, or with another score
	remove []string // members the cache does not hold
	scores map[string]float64
}

// repairChunk bounds the members one repair command carries.
const repairChunk = 1000

// repairIndexes makes the indexes of a kind agree with what the warmer
// holds, after a reload: a key of the layout holding another type is
// written anew, missing members are added, extra ones removed, wrong
// scores set. Readers and other tools may break an index; the warmer mends
// it by the next reload at the latest. It writes nothing when all agree.
func (w *Warmer) repairIndexes(ctx context.Context, k keys.Kind) error {
	wants := w.indexWants(k)
	fixes, err := w.indexFixes(ctx, wants)
	if err != nil {
		return fmt.Errorf("check %s indexes: %w", k, err)
	}
	if len(fixes) == 0 {
		return nil
	}
	wctx := context.WithoutCancel(ctx)
	err = w.store.fenced(wctx, w.guard(), func(pipe redis.Pipeliner) {
		for _, f := range fixes {
			if f.whole {
				pipe.Del(wctx, f.want.key)
			}
			for part := range slices.Chunk(f.add, repairChunk) {
				if f.want.set {
					members := make([]any, len(part))
					for i, id := range part {
						members[i] = id
					}
					pipe.SAdd(wctx, f.want.key, members...)
					continue
				}
				zs := make([]redis.Z, len(part))
				for i, id := range part {
					zs[i] = redis.Z{Score: f.scores[id], Member: id}
				}
				pipe.ZAdd(wctx, f.want.key, zs...)
			}
			for part := range slices.Chunk(f.remove, repairChunk) {
				members := make([]any, len(part))
				for i, id := range part {
					members[i] = id
				}
				if f.want.set {
					pipe.SRem(wctx, f.want.key, members...)
				} else {
					pipe.ZRem(wctx, f.want.key, members...)
				}
			}
		}
	})
	if err != nil {
		return fmt.Errorf("mend %s indexes: %w", k, err)
	}
	added, removed, whole := 0, 0, 0
	for _, f := range fixes {
		added += len(f.add)
		removed += len(f.remove)
		if f.whole {
			whole++
		}
	}
	w.m.repairs.WithLabelValues(string(k), repairIndex).Add(float64(len(fixes)))
	w.log.Warn("an index disagreed with the cache; mended", "kind", k, "keys", len(fixes),
		"rewritten", whole, "added", added, "removed", removed, "first", fixes[0].want.key)
	return nil
}

// indexWants lists the index keys of a kind and what each should hold.
func (w *Warmer) indexWants(k keys.Kind) []indexWant {
	p := w.cfg.Prefix
	cache := w.st.cache[k]
	sp := w.specs[k]
	if !sp.sorted {
		return []indexWant{{
			key: keys.Index(p, k), set: true, count: len(cache),
			has: func(id string, _ float64) bool { return cache[id] != nil },
			members: func() map[string]float64 {
				m := make(map[string]float64, len(cache))
				for id := range cache {
					m[id] = 0
				}
				return m
			},
		}}
	}
	score := func(r *record) float64 { return float64(r.showtime.time().Unix()) }
	wants := []indexWant{{
		key: keys.Index(p, k), count: len(cache),
		has: func(id string, s float64) bool { r := cache[id]; return r != nil && score(r) == s },
		members: func() map[string]float64 {
			m := make(map[string]float64, len(cache))
			for id, r := range cache {
				m[id] = score(r)
			}
			return m
		},
	}}
	for _, owner := range sp.owners {
		counts := map[string]int{}
		for id := range w.st.cache[owner.kind] {
			counts[id] += 0
		}
		for _, r := range cache {
			if !r.missing && r.vals.get(owner.field) != "" {
				counts[r.vals.get(owner.field)]++
			}
		}
		for _, oid := range sortedKeys(counts) {
			if vista.CheckID(oid) != nil {
				continue // no key of its own: nothing to mend there
			}
			belongs := func(r *record) bool { return r != nil && !r.missing && r.vals.get(owner.field) == oid }
			wants = append(wants, indexWant{
				key: owner.key(p, oid), count: counts[oid],
				has: func(id string, s float64) bool { r := cache[id]; return belongs(r) && score(r) == s },
				members: func() map[string]float64 {
					m := map[string]float64{}
					for id, r := range cache {
						if belongs(r) {
							m[id] = score(r)
						}
					}
					return m
				},
			})
		}
	}
	return wants
}

// readPage bounds the members one round trip of a check reads: Redis
// serves one client's pipeline in one go, and 100k members at once would
// stall every reader for tens of milliseconds. A variable for tests.
var readPage int64 = 10000

// indexFixes reads the index keys and returns what each needs. It reads
// the types and sizes first, then the members in round trips of at most
// readPage members each.
func (w *Warmer) indexFixes(ctx context.Context, wants []indexWant) ([]indexFix, error) {
	types := make([]*redis.StatusCmd, len(wants))
	sizes := make([]*redis.IntCmd, len(wants))
	for part := range chunkRange(len(wants), 200) {
		_, err := w.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i := part.lo; i < part.hi; i++ {
				types[i] = pipe.Type(ctx, wants[i].key)
				if wants[i].set {
					sizes[i] = pipe.SCard(ctx, wants[i].key)
				} else {
					sizes[i] = pipe.ZCard(ctx, wants[i].key)
				}
			}
			return nil
		})
		var rerr redis.Error
		if err != nil && !errors.As(err, &rerr) {
			return nil, err
		}
	}
	var fixes []indexFix
	type page struct {
		i        int // index into wants
		from, to int64
	}
	var pages []page
	toRead := make([]bool, len(wants)) // the keys whose members are compared
	for i, want := range wants {
		if err := types[i].Err(); err != nil {
			return nil, err
		}
		typ := types[i].Val()
		wantType := "zset"
		if want.set {
			wantType = "set"
		}
		switch {
		case typ != wantType && typ != "none":
			members := want.members()
			fixes = append(fixes, indexFix{want: want, whole: true, add: sortedKeys(members), scores: members})
		case typ == "none" && want.count == 0:
			// nothing there, nothing wanted
		case typ == "none" || want.set:
			toRead[i] = true
			pages = append(pages, page{i: i, from: 0, to: -1})
		default:
			toRead[i] = true
			n := sizes[i].Val()
			for from := int64(0); from < max(n, 1); from += readPage {
				pages = append(pages, page{i: i, from: from, to: from + readPage - 1})
			}
		}
	}
	setsOf := map[int][]string{}
	zsetsOf := map[int][]redis.Z{}
	for len(pages) > 0 {
		// One round trip: pages until about readPage members.
		var trip []page
		var members int64
		for len(pages) > 0 && (len(trip) == 0 || members < readPage) {
			p := pages[0]
			pages = pages[1:]
			trip = append(trip, p)
			if p.to < 0 {
				members += sizes[p.i].Val()
			} else {
				members += p.to - p.from + 1
			}
		}
		sets := make([]*redis.StringSliceCmd, len(trip))
		zsets := make([]*redis.ZSliceCmd, len(trip))
		_, err := w.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for j, p := range trip {
				if wants[p.i].set {
					sets[j] = pipe.SMembers(ctx, wants[p.i].key)
				} else {
					zsets[j] = pipe.ZRangeWithScores(ctx, wants[p.i].key, p.from, p.to)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for j, p := range trip {
			if wants[p.i].set {
				setsOf[p.i] = append(setsOf[p.i], sets[j].Val()...)
			} else {
				zsetsOf[p.i] = append(zsetsOf[p.i], zsets[j].Val()...)
			}
		}
	}
	for i, want := range wants {
		if !toRead[i] {
			continue // another type (fixed above), or nothing there and nothing wanted
		}
		ids, zs := setsOf[i], zsetsOf[i]
		// The common case first: every member belongs, and there are as
		// many as there should be (members are unique, so they are the
		// same), read straight from the reply.
		agree := len(ids)+len(zs) == want.count
		for j := 0; agree && j < len(ids); j++ {
			agree = want.has(ids[j], 0)
		}
		for j := 0; agree && j < len(zs); j++ {
			id, _ := zs[j].Member.(string)
			agree = want.has(id, zs[j].Score)
		}
		if agree {
			continue
		}
		have := make(map[string]float64, len(ids)+len(zs))
		for _, id := range ids {
			have[id] = 0
		}
		for _, z := range zs {
			id, _ := z.Member.(string)
			have[id] = z.Score
		}
		fix := indexFix{want: want, scores: want.members()}
		for id, score := range fix.scores {
			if s, ok := have[id]; !ok || s != score {
				fix.add = append(fix.add, id)
			}
		}
		for id := range have {
			if _, ok := fix.scores[id]; !ok {
				fix.remove = append(fix.remove, id)
			}
		}
		slices.Sort(fix.add)
		slices.Sort(fix.remove)
		fixes = append(fixes, fix)
	}
	return fixes, nil
}

// span is a half-open range of indexes.
type span struct{ lo, hi int }

// chunkRange yields [0, n) in spans of at most size.
func chunkRange(n, size int) func(func(span) bool) {
	return func(yield func(span) bool) {
		for lo := 0; lo < n; lo += size {
			if !yield(span{lo, min(lo+size, n)}) {
				return
			}
		}
	}
}
