// The recorder's snapshots of the cache: every second, one atomic read of
// P:meta, the indexes and every entity hash, sharing what did not change
// with the snapshot before.

package chaos

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// snapshotScript reads the cache in one atomic step, as no reader could
// but as every reader's reads must agree with: P:meta, the three indexes,
// and every entity hash (found by KEYS, so a hash no index names shows
// too). It writes nothing, so it runs under CLIENT PAUSE WRITE and when
// Redis is out of memory.
var snapshotScript = redis.NewScript(`#!lua flags=no-writes
local p = ARGV[1]
local function try(...)
	local ok, v = pcall(redis.call, ...)
	if ok then return v end
	return {}
end
local out = {try('HGETALL', p .. ':meta'), try('ZRANGE', p .. ':sessions', 0, -1),
	try('SMEMBERS', p .. ':cinemas'), try('SMEMBERS', p .. ':films')}
local hashes = {}
for _, pat in ipairs({':session:*', ':cinema:*', ':film:*'}) do
	for _, k in ipairs(redis.call('KEYS', p .. pat)) do
		if redis.call('TYPE', k)['ok'] == 'hash' then
			hashes[#hashes + 1] = k
			hashes[#hashes + 1] = redis.call('HGETALL', k)
		end
	end
end
out[5] = hashes
return out`)

func (r *Recorder) snapshots() {
	r.every(snapshotEvery, func() {
		ctx, cancel := context.WithTimeout(r.ctx, 3*time.Second)
		defer cancel()
		res, err := snapshotScript.Run(ctx, r.rdb, nil, r.w.Prefix).Slice()
		if err != nil || len(res) != 5 {
			return
		}
		s := Snapshot{At: time.Now(), Lost: r.lost.Swap(false)}
		if m := pairs(res[0]); len(m) > 0 {
			s.Meta = m
		}
		s.Index = map[string][]string{
			string(keys.Sessions): r.strs(res[1]),
			string(keys.Cinemas):  sorted(r.strs(res[2])),
			string(keys.Films):    sorted(r.strs(res[3])),
		}
		s.Hashes = map[string]map[string]Fields{}
		for _, k := range keys.Kinds {
			s.Hashes[string(k)] = map[string]Fields{}
		}
		list, _ := res[4].([]any)
		for i := 0; i+1 < len(list); i += 2 {
			kind, id, ok := keys.ParseEntity(r.w.Prefix, str(list[i]))
			if !ok {
				continue
			}
			s.Hashes[string(kind)][r.snapNames.get(id)] = Fields(pairs(list[i+1]))
		}
		r.share(&s)
		r.add(func(h *History) { h.Snapshots = append(h.Snapshots, s) })
	})
}

// share makes s point at the previous snapshot's maps and slices where
// they are equal: most hashes do not change from one second to the next.
func (r *Recorder) share(s *Snapshot) {
	prev := r.prevSnap
	r.prevSnap = s
	if prev == nil {
		return
	}
	for kind, ids := range s.Index {
		if old := prev.Index[kind]; slices.Equal(old, ids) {
			s.Index[kind] = old
		}
	}
	for kind, byID := range s.Hashes {
		old := prev.Hashes[kind]
		for id, f := range byID {
			if o, ok := old[id]; ok && maps.Equal(o, f) {
				byID[id] = o
				continue
			}
			// A changed hash: its field names are the same as ever.
			g := make(Fields, len(f))
			for k, v := range f {
				g[r.snapNames.get(k)] = v
			}
			byID[id] = g
		}
	}
}

func pairs(v any) map[string]string {
	list, _ := v.([]any)
	m := make(map[string]string, len(list)/2)
	for i := 0; i+1 < len(list); i += 2 {
		m[str(list[i])] = str(list[i+1])
	}
	return m
}

func (r *Recorder) strs(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		out = append(out, r.snapNames.get(str(x)))
	}
	return out
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
