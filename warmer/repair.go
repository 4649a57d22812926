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
	return errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "WRONGTYPE")
}

// indexWant is what one index key should hold: its members and, for a
// sorted set, their scores.
type indexWant struct {
	key     string
	set     bool // a set (P:cinemas, P:films); else a sorted set
	members map[string]float64
}

// indexFix is what an index key needs to agree with the cache.
type indexFix struct {
	want   indexWant
	whole  bool     // another type holds the key: delete it, write all
	add    []string // members missing, or with another score
	remove []string // members the cache does not hold
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
	err = w.fenced(wctx, w.guard(), func(pipe redis.Pipeliner) {
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
					zs[i] = redis.Z{Score: f.want.members[id], Member: id}
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
	if k != keys.Sessions {
		m := make(map[string]float64, len(cache))
		for id := range cache {
			m[id] = 0
		}
		return []indexWant{{key: keys.Index(p, k), set: true, members: m}}
	}
	all := make(map[string]float64, len(cache))
	byCinema := map[string]map[string]float64{}
	byFilm := map[string]map[string]float64{}
	put := func(m map[string]map[string]float64, owner, id string, score float64) {
		if owner == "" {
			return
		}
		if m[owner] == nil {
			m[owner] = map[string]float64{}
		}
		m[owner][id] = score
	}
	for id, r := range cache {
		score := float64(r.showtime.Unix())
		all[id] = score
		if !r.missing {
			put(byCinema, r.vals[sCinemaID], id, score)
			put(byFilm, r.vals[sFilmID], id, score)
		}
	}
	wants := []indexWant{{key: keys.Index(p, k), members: all}}
	for _, owners := range []struct {
		kind  keys.Kind
		index map[string]map[string]float64
		key   func(prefix, id string) string
	}{
		{keys.Cinemas, byCinema, keys.CinemaSessions},
		{keys.Films, byFilm, keys.FilmSessions},
	} {
		ids := map[string]bool{}
		for id := range w.st.cache[owners.kind] {
			ids[id] = true
		}
		for id := range owners.index {
			ids[id] = true
		}
		for _, id := range sortedKeys(ids) {
			if vista.CheckID(id) != nil {
				continue // no key of its own: nothing to mend there
			}
			wants = append(wants, indexWant{key: owners.key(p, id), members: owners.index[id]})
		}
	}
	return wants
}

// indexFixes reads the index keys, in pipelined chunks, and returns what
// each needs.
func (w *Warmer) indexFixes(ctx context.Context, wants []indexWant) ([]indexFix, error) {
	var fixes []indexFix
	const chunk = 100
	for part := range slices.Chunk(wants, chunk) {
		types := make([]*redis.StatusCmd, len(part))
		sets := make([]*redis.StringSliceCmd, len(part))
		zsets := make([]*redis.ZSliceCmd, len(part))
		_, err := w.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, want := range part {
				types[i] = pipe.Type(ctx, want.key)
				if want.set {
					sets[i] = pipe.SMembers(ctx, want.key)
				} else {
					zsets[i] = pipe.ZRangeWithScores(ctx, want.key, 0, -1)
				}
			}
			return nil
		})
		var rerr redis.Error
		if err != nil && !errors.As(err, &rerr) {
			return nil, err
		}
		for i, want := range part {
			if err := types[i].Err(); err != nil {
				return nil, err
			}
			typ := types[i].Val()
			wantType := "zset"
			if want.set {
				wantType = "set"
			}
			fix := indexFix{want: want}
			if typ != wantType && typ != "none" {
				fix.whole, fix.add = true, sortedKeys(want.members)
				fixes = append(fixes, fix)
				continue
			}
			have := map[string]float64{}
			if want.set {
				for _, id := range sets[i].Val() {
					have[id] = 0
				}
			} else {
				for _, z := range zsets[i].Val() {
					id, _ := z.Member.(string)
					have[id] = z.Score
				}
			}
			for id, score := range want.members {
				if s, ok := have[id]; !ok || s != score {
					fix.add = append(fix.add, id)
				}
			}
			for id := range have {
				if _, ok := want.members[id]; !ok {
					fix.remove = append(fix.remove, id)
				}
			}
			if len(fix.add)+len(fix.remove) > 0 {
				slices.Sort(fix.add)
				slices.Sort(fix.remove)
				fixes = append(fixes, fix)
			}
		}
	}
	return fixes, nil
}
