package warmer

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// Under memory pressure with an evicting maxmemory-policy, Redis drops
// whole keys of the cache: hashes, indexes, P:meta, the lease. The writer
// knows what the cache should hold, so it mends from memory, without
// asking Vista: it watches Redis's evicted_keys counter, and after keys
// were evicted it looks for the cache's missing keys and writes them
// again (a sweep), once the evictions pause and again while they go on.
// Once Redis has room, the cache is whole again within a sweep.

// memory is what INFO says of Redis's memory and evictions.
type memory struct {
	used, max int64 // used_memory, maxmemory (0: no limit)
	policy    string
	evicted   int64 // evicted_keys since Redis started
}

// room reports whether Redis has room for the cache again: no limit, a
// policy that refuses writes rather than evict (the writes' refusals are
// waited out), or a tenth of the limit free.
func (m memory) room() bool {
	return m.max == 0 || m.policy == "noeviction" || m.used < m.max-m.max/10
}

func (m memory) String() string {
	return fmt.Sprintf("maxmemory-policy %s, %s used of maxmemory %s", m.policy, mib(m.used), mib(m.max))
}

func mib(n int64) string { return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20)) }

// readMemory reads INFO's memory and stats sections, from a plain INFO:
// Redis before 7 takes one section a call, and the default ones hold both.
func readMemory(ctx context.Context, rdb redis.UniversalClient) (memory, error) {
	info, err := rdb.Info(ctx).Result()
	if err != nil {
		return memory{}, err
	}
	var m memory
	for line := range strings.SplitSeq(info, "\n") {
		name, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch name {
		case "used_memory":
			m.used, _ = strconv.ParseInt(v, 10, 64)
		case "maxmemory":
			m.max, _ = strconv.ParseInt(v, 10, 64)
		case "maxmemory_policy":
			m.policy = v
		case "evicted_keys":
			m.evicted, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return m, nil
}

// eviction is the writer's watch on Redis's evictions. The writer's loop owns it.
type eviction struct {
	looked time.Time // real time of the last INFO
	seen   int64     // evicted_keys then; -1 before the first look
	grew   time.Time // when evicted_keys last grew
	dirty  bool      // keys were evicted since the last sweep began
	swept  time.Time // when the last sweep ran
	// sampled is when sampleLost last looked between sweeps.
	sampled time.Time
	// retried is when a reload Redis refused or evicted from under last
	// went again before its retry (step).
	retried time.Time
	mem     memory
	said    bool      // the evictions were logged
	saidAt  time.Time // when, last
	// whole is the most used_memory seen while Redis held the cache
	// without evicting: what a rebuild needs room for.
	whole int64
}

// How often the writer looks at INFO, and sweeps at most while evictions
// go on.
const (
	evictLook      = 2 * time.Second
	evictSweep     = 5 * time.Second
	evictSweepFull = 30 * time.Second
)

// lookAtEvictions reads INFO every evictLook and notes whether Redis
// evicted keys since the last look: whose keys, the counter does not say
// (Redis is shared), so it only calls for a look at the cache's own.
func (w *Warmer) lookAtEvictions(ctx context.Context) {
	ev := &w.evict
	now := time.Now()
	if now.Sub(ev.looked) < evictLook {
		return
	}
	ev.looked = now
	m, err := readMemory(ctx, w.rdb)
	if err != nil {
		w.obs.noteDenied("info", err)
		return // the lease keeper and the writes say what is wrong with Redis
	}
	ev.note(m, now, w.ready.Load() && w.evicting.Load() == nil)
}

// note takes one look's INFO. settled says the cache is loaded and no
// eviction of its keys is known.
func (ev *eviction) note(m memory, now time.Time, settled bool) {
	ev.mem = m
	if ev.seen >= 0 && m.evicted > ev.seen {
		ev.grew, ev.dirty = now, true
	}
	// The most Redis used while it held the cache without evicting: a
	// quiet look after a rebuild that lost keys unseen measures a cache
	// smaller than the whole, and would let the next rebuild through at
	// once into a Redis with no room for it.
	if m.evicted == ev.seen && settled && m.used > ev.whole {
		ev.whole = m.used
	}
	ev.seen = m.evicted
}

// roomForCache reports whether Redis has room for the whole cache again,
// by what it last used holding it: no limit, a policy that refuses rather
// than evicts, or a limit a tenth above what the whole cache took.
func (ev *eviction) roomForCache() bool {
	m, whole := ev.mem, ev.whole
	switch {
	case m.max == 0 || m.policy == "noeviction":
		return true
	case whole > 0:
		return m.max >= whole+whole/10 && m.room()
	}
	return m.room()
}

// headroom reports whether Redis has a tenth of its maxmemory free (or no
// limit), whatever its policy: room for a reload's writes.
func (ev *eviction) headroom() bool {
	m := ev.mem
	return m.max == 0 || m.used < m.max-m.max/10
}

// mendEvicted looks, after Redis evicted keys (anyone's), at whether the
// cache lost any of its own, and writes back what it lost: at most every
// evictSweep, or every evictSweepFull while Redis stays full (writing into
// a full LRU Redis only evicts something else). /healthz says the cache
// is being evicted from the first key found missing to a sweep that finds
// none. It returns an error only for a sweep's write.
func (w *Warmer) mendEvicted(ctx context.Context) error {
	ev := &w.evict
	now := time.Now()
	if w.st == nil {
		return nil
	}
	if !ev.dirty {
		if w.evicting.Load() != nil && w.ready.Load() && now.Sub(ev.grew) >= evictSweep {
			w.stoppedEvicting() // rebuilt whole since, and nothing evicted
		}
		return nil
	}
	if now.Sub(ev.swept) < evictSweep || (!ev.mem.room() && now.Sub(ev.swept) < evictSweepFull) {
		// Too soon to write back what went (into a full LRU Redis that
		// only evicts something else), not too soon to say so: /healthz
		// and /readyz tell of a cache Redis evicts from the look that
		// finds it, not from the next sweep.
		if w.evicting.Load() == nil && now.Sub(ev.sampled) >= evictLook {
			ev.sampled = now
			if lost, err := w.sampleLost(ctx); err == nil && lost {
				w.setEvicting(fmt.Sprintf("redis evicts keys of the cache (%s); they are written again once it has room", ev.mem))
			}
		}
		return nil
	}
	ev.swept, ev.dirty = now, false
	if w.evicting.Load() == nil {
		// Most evictions in a shared Redis are of other keys: a sample
		// of the cache's tells, before a look at every key.
		lost, err := w.sampleLost(ctx)
		if err != nil || !lost {
			return nil
		}
	}
	n, err := w.sweep(ctx)
	if err != nil {
		ev.dirty = true
		return err
	}
	if n == 0 {
		if w.evicting.Load() != nil {
			w.stoppedEvicting()
		}
		return nil
	}
	w.setEvicting(fmt.Sprintf("redis evicted %d keys of the cache (%s); written again from memory", n, ev.mem))
	if now.Sub(ev.saidAt) >= complainEvery {
		ev.saidAt, ev.said = now, true
		w.log.Warn("redis evicted keys of the cache; written again from memory (logged once a minute while it goes on)",
			"keys", n, "used", mib(ev.mem.used), "maxmemory", mib(ev.mem.max), "policy", ev.mem.policy)
	}
	ev.dirty = true // look again: what was written back may go too
	return nil
}

// sampleLost reports whether P:meta, an index, or one of a sample of the
// cache's entities is missing from Redis.
func (w *Warmer) sampleLost(ctx context.Context) (bool, error) {
	p := w.cfg.Prefix
	ks := []string{keys.Meta(p)}
	for _, k := range keys.Kinds {
		if len(w.st.cache[k]) > len(w.st.kinds[k].unindexed) { // a build's index may not be there yet
			ks = append(ks, keys.Index(p, k))
		}
		n := 0
		for id, r := range w.st.cache[k] { // map order: a sample that differs each time
			if n == evictSample {
				break
			}
			if !r.missing && !r.unsafe {
				ks = append(ks, keys.Entity(p, k, id))
				n++
			}
		}
	}
	pipe := w.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(ks))
	for i, key := range ks {
		cmds[i] = pipe.Exists(ctx, key)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return false, err
	}
	for _, c := range cmds {
		if c.Val() == 0 {
			return true, nil
		}
	}
	return false, nil
}

// evictSample is how many entities of each kind sampleLost looks at.
const evictSample = 100

// stoppedEvicting clears /healthz's reason and says so once.
func (w *Warmer) stoppedEvicting() {
	w.setEvicting("")
	if w.evict.said {
		if w.ready.Load() {
			w.log.Info("the cache is whole again; redis no longer evicts its keys")
		} else {
			w.log.Info("redis no longer evicts the cache's keys; the cache is whole once its build is in")
		}
		w.evict.said = false
	}
}

// setEvicting sets (or, with "", clears) what /healthz says of evictions.
func (w *Warmer) setEvicting(why string) {
	if why == "" {
		w.evicting.Store(nil)
		return
	}
	w.evicting.Store(&why)
}

// sweep writes again, whole, every entity of the cache whose key is gone,
// and mends the indexes; it returns how many keys it wrote. P:meta is
// the heartbeat's to find missing (see restoreMeta).
func (w *Warmer) sweep(ctx context.Context) (int, error) {
	n := 0
	for _, k := range keys.Kinds {
		missing, err := w.missingKeys(ctx, k)
		if err != nil {
			return n, fmt.Errorf("find evicted %s: %w", k, err)
		}
		if len(missing) > 0 {
			sp := w.specs[k]
			changes := make([]change, 0, len(missing))
			for _, id := range missing {
				whole := *w.st.cache[k][id]
				whole.rawSum = checksum(whole.raw) // no raw in memory: the next reload writes it
				whole.missing = false
				changes = append(changes, change{op: opAdd, id: id, cur: &whole, changed: diff(sp.fields, nil, &whole)})
			}
			if err := w.apply(ctx, k, changes, w.cfg.Clock.Now()); err != nil {
				return n, err
			}
			w.m.repairs.WithLabelValues(string(k), repairHash).Add(float64(len(missing)))
			n += len(missing)
		}
		if w.st == nil {
			return n, nil // a write found the lease or the cache moved
		}
		if len(w.st.kinds[k].unindexed) > 0 {
			// A build's entities not listed yet are not an index that
			// lost them: listed first, so that the mending below finds
			// only what Redis evicted.
			if err := w.writeIndexes(ctx, k); err != nil {
				return n, err
			}
		}
		if err := w.repairIndexes(ctx, k); err != nil {
			return n, err
		}
	}
	return n, nil
}

// missingKeys lists the entities of a kind the writer holds whose keys
// Redis no longer has, asking in pipelines of a thousand.
func (w *Warmer) missingKeys(ctx context.Context, k keys.Kind) ([]string, error) {
	soon := w.cfg.Clock.Now().Add(time.Second)
	ids := make([]string, 0, len(w.st.cache[k]))
	for id, r := range w.st.cache[k] {
		if r.missing || r.unsafe || (w.specs[k].expires && w.expired(soon, r.showtime.time())) {
			continue // gone already, never a key of its own, or expiring: expire's to remove
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var missing []string
	for part := range slices.Chunk(ids, 1000) {
		pipe := w.rdb.Pipeline()
		cmds := make([]*redis.IntCmd, len(part))
		for i, id := range part {
			cmds[i] = pipe.Exists(ctx, keys.Entity(w.cfg.Prefix, k, id))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
		for i, c := range cmds {
			if c.Val() == 0 {
				missing = append(missing, part[i])
			}
		}
	}
	return missing, nil
}

// replID returns the replication id of the Redis rdb talks to (INFO
// replication's master_replid) and the one it had before, when a failover
// promoted it (master_replid2); "" where there is none to read (a
// cluster, whose nodes each have their own, or a Redis that does not say).
func replID(ctx context.Context, rdb redis.UniversalClient) (id, before string, err error) {
	if _, cluster := rdb.(*redis.ClusterClient); cluster {
		return "", "", nil
	}
	info, err := rdb.Info(ctx, "replication").Result()
	if err != nil {
		return "", "", err
	}
	for line := range strings.SplitSeq(info, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "master_replid:"); ok {
			id = v
		} else if v, ok := strings.CutPrefix(line, "master_replid2:"); ok && strings.Trim(v, "0") != "" {
			before = v
		}
	}
	return id, before, nil
}
