// Take-over and epochs: on taking the lease the writer reads the cache
// and adopts it, or builds it anew under a new epoch (takeOver); it
// drops its state when the lease or the cache moves (dropState).
package warmer

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
)

// unchanged reports whether P:meta still holds the writer's epoch and seq:
// nobody wrote since this writer's last write.
// noMeta reports that P:meta holds no epoch at all.
func (w *Warmer) unchanged(ctx context.Context) (same, noMeta bool) {
	epoch, seq, err := w.metaNow(ctx)
	if err != nil {
		return false, false
	}
	if epoch == "" {
		return false, true
	}
	return epoch == w.st.epoch && seq == w.st.seq, false
}

// metaNow reads P:meta's epoch and seq: "" where there is no epoch, -1
// where there is no seq to read.
func (w *Warmer) metaNow(ctx context.Context) (epoch string, seq int64, err error) {
	vals, err := w.rdb.HMGet(ctx, keys.Meta(w.cfg.Prefix), keys.MetaEpoch, keys.MetaSeq).Result()
	if err != nil {
		return "", 0, err
	}
	epoch, _ = vals[0].(string)
	seq = -1
	if v, ok := vals[1].(string); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			seq = n
		}
	}
	return epoch, seq, nil
}

// restoreMeta writes P:meta again when it went missing (evicted under
// memory pressure, deleted by hand) while the cache's indexes are still
// there: the cache is not lost, and its epoch and seq go on. With no index
// left, the cache went with it and is built anew.
func (w *Warmer) restoreMeta(ctx context.Context) error {
	p := w.cfg.Prefix
	n, err := w.rdb.Exists(ctx, keys.Index(p, keys.Cinemas), keys.Index(p, keys.Films), keys.Index(p, keys.Sessions)).Result()
	if err != nil {
		return fmt.Errorf("read indexes: %w", err)
	}
	building := false // a build's first entities, not listed yet: no index to find
	for _, k := range keys.Kinds {
		building = building || len(w.st.kinds[k].unindexed) > 0
	}
	if n == 0 && !building {
		w.log.Warn("P:meta and the cache's indexes are gone from Redis; rebuilding", "epoch", w.st.epoch)
		w.keep.cacheLost(w.st.epoch)
		return nil
	}
	now := w.cfg.Clock.Now()
	fields := []any{keys.MetaSchema, Schema, keys.MetaEpoch, w.st.epoch, keys.MetaSeq, w.st.seq, keys.MetaWriter, w.cfg.InstanceID, keys.MetaHeartbeat, stamp(now)}
	for _, k := range keys.Kinds {
		if at := w.st.kinds[k].loadedAt; at != "" {
			fields = append(fields, keys.Loaded(k), at)
		}
	}
	err = w.store.fenced(ctx, nil, func(pipe redis.Pipeliner) {
		pipe.HSet(ctx, keys.Meta(p), fields...)
	})
	if err != nil {
		return fmt.Errorf("write meta again: %w", err)
	}
	w.log.Warn("P:meta was missing from Redis (evicted?) while the cache's indexes are there; written again, the epoch and seq go on",
		"epoch", w.st.epoch, "seq", w.st.seq)
	return nil
}

func (w *Warmer) dropState() {
	if w.st != nil {
		for _, k := range keys.Kinds {
			if n := len(w.st.cache[k]); n > 0 {
				w.knew[k] = n // what an empty list on a build anew is judged against
			}
		}
		for _, r := range w.st.kinds {
			if r.fetching != nil {
				r.fetching.cancel() // what it would fetch is for this state
			}
		}
	}
	w.st = nil
	w.aside = nil // for the state gone
	w.store.leaveHome()
	w.heldReason.Store(nil)
	for _, k := range keys.Kinds {
		w.m.dropHeld.WithLabelValues(string(k)).Set(0)
	}
	w.keep.writing(nil)
	w.ready.Store(false)
	w.checksFailing.Store(nil) // of a term as writer that is over
	w.m.setTiers(nil)          // a standby holds no sessions
}

// takeOver reads the cache before writing a thing. A cache of our schema is
// adopted: its epoch and seq go on, and later reloads send events only for
// real changes. Anything else (an empty Redis, a lost P:meta, another
// schema) starts a new epoch: the first reload of each kind is quiet and
// ends in one full_reload event.
func (w *Warmer) takeOver(ctx context.Context, rebuild bool) error {
	w.dropState()
	meta, err := w.rdb.HGetAll(ctx, keys.Meta(w.cfg.Prefix)).Result()
	switch {
	case isWrongType(err):
		// Not our meta: nothing in it can be adopted.
		w.log.Warn("P:meta holds another type; building the cache anew", "key", keys.Meta(w.cfg.Prefix))
		meta = map[string]string{}
	case err != nil:
		return fmt.Errorf("read meta: %w", err)
	}
	// Every write appends to the stream: a key of another type there
	// would fail them all.
	stream := keys.Stream(w.cfg.Prefix)
	streamType, err := w.rdb.Type(ctx, stream).Result()
	if err != nil {
		return fmt.Errorf("read stream type: %w", err)
	}
	badStream := streamType != "stream" && streamType != "none"
	if badStream {
		w.log.Warn("the event stream's key holds another type; it is deleted", "key", stream, "type", streamType)
	}
	st := &state{
		cache: map[keys.Kind]map[string]*record{},
		kinds: map[keys.Kind]*reloader{},

		checkRemoved: map[string]time.Time{},
		doubted:      map[string]time.Time{},
	}
	for _, k := range keys.Kinds {
		st.kinds[k] = &reloader{}
	}
	w.schedule(st)

	seq, seqErr := strconv.ParseInt(meta[keys.MetaSeq], 10, 64)
	adopt := meta[keys.MetaSchema] == Schema && meta[keys.MetaEpoch] != "" && seqErr == nil && !rebuild
	rid, promotedFrom := w.store.settleHome(ctx)
	if adopt && promotedFrom != "" && meta[keys.MetaReplID] != "" && meta[keys.MetaReplID] != rid {
		// This Redis is a replica a failover promoted, and the cache was
		// last taken over under another replication id: written to the
		// master it followed, or to this one before it followed another
		// (which may have taken writes that never came here). It may lack
		// the last writes, and readers have seen their seqs; a seq must
		// never mean two things in one epoch. (A Redis restarted from its
		// own files has another replication id too, but was promoted from
		// nothing: its files hold what it acknowledged, as its fsync
		// policy promises.)
		w.log.Warn("redis is a replica promoted since the cache was written (a failover); building the cache anew under a new epoch",
			"epoch", meta[keys.MetaEpoch], "replid_written", meta[keys.MetaReplID], "replid_now", rid, "promoted_from", promotedFrom)
		adopt = false
	}
	if adopt && meta[keys.MetaEpoch] == w.written.epoch && seq < w.written.seq {
		// Redis lost writes this process made (a failover to a replica
		// that had not received them): the seqs after its own were sent
		// already, and a seq never means two things in one epoch.
		w.log.Warn("redis lost the last writes (a failover?); building the cache anew under a new epoch",
			"epoch", meta[keys.MetaEpoch], "seq_in_redis", seq, "seq_written", w.written.seq)
		adopt = false
	}
	if adopt {
		st.epoch, st.seq = meta[keys.MetaEpoch], seq
		for _, k := range keys.Kinds {
			// A kind whose first load never finished in this epoch is
			// still being built: its reload stays quiet.
			st.kinds[k].loaded = meta[keys.Loaded(k)] != ""
			st.kinds[k].loadedAt = meta[keys.Loaded(k)]
			st.kinds[k].quiet = !st.kinds[k].loaded
		}
	} else {
		if since := time.Since(w.lastRebuild); !w.lastRebuild.IsZero() && since < time.Minute && !w.evict.roomForCache() {
			// Under memory pressure with an evicting policy, Redis may
			// lose the cache again and again: while it has no room for
			// the whole cache, a rebuild a minute at most, so that Vista
			// is not asked for everything every few seconds. Once Redis
			// has room again, the cache is built at once.
			w.setEvicting(fmt.Sprintf("redis evicted the cache (%s); it is built anew once redis has room", w.evict.mem))
			if !w.rebuildWaitSaid {
				w.log.Warn("the cache must be built anew, but it was a moment ago and redis is still full or evicting; waiting for room",
					"last_rebuild", w.lastRebuild.Format(time.RFC3339), "at_most", (time.Minute - since).Round(time.Second),
					"used", mib(w.evict.mem.used), "maxmemory", mib(w.evict.mem.max), "policy", w.evict.mem.policy)
				w.rebuildWaitSaid = true
			}
			return errRebuildWait
		}
		if w.written.epoch != "" {
			w.lastRebuild = time.Now() // a cache of this process's was lost: a rebuild
		}
		w.rebuildWaitSaid = false
		st.epoch = newEpoch()
		for _, k := range keys.Kinds {
			st.kinds[k].quiet = true
		}
	}
	for _, k := range keys.Kinds {
		c, err := w.readCache(ctx, k)
		if err != nil {
			return fmt.Errorf("read %s: %w", k, err)
		}
		st.cache[k] = c
	}
	// A build lists what it wrote in steps (writeIndexes): one that
	// stopped halfway left hashes no index lists. They are the cache's
	// too, to be listed, or removed by the list.
	var building []keys.Kind
	for _, k := range keys.Kinds {
		if st.kinds[k].quiet {
			building = append(building, k)
		}
	}
	if len(building) > 0 {
		unlisted, none, err := w.readUnlisted(ctx, st.cache, building)
		if err != nil {
			return fmt.Errorf("read what a build left unlisted: %w", err)
		}
		for k, ids := range unlisted {
			st.kinds[k].unindexed = ids
		}
		for _, k := range building {
			st.kinds[k].fresh = none[k] && len(st.cache[k]) == 0
		}
	}
	for id, r := range st.cache[keys.Sessions] {
		st.place(id, nil, r)
	}
	now := w.cfg.Clock.Now()
	var g *guard
	if adopt {
		g = &guard{epoch: st.epoch, seq: st.seq} // nobody wrote since we read
	}
	err = w.store.fenced(ctx, g, func(pipe redis.Pipeliner) {
		m := keys.Meta(w.cfg.Prefix)
		if badStream {
			pipe.Del(ctx, stream)
		}
		if !adopt {
			pipe.Del(ctx, m)
			pipe.HSet(ctx, m, keys.MetaSchema, Schema, keys.MetaEpoch, st.epoch, keys.MetaSeq, 0)
		}
		pipe.HSet(ctx, m, keys.MetaWriter, w.cfg.InstanceID, keys.MetaHeartbeat, stamp(now))
		if rid != "" {
			pipe.HSet(ctx, m, keys.MetaReplID, rid)
		}
	})
	if err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	for _, k := range keys.Kinds {
		st.kinds[k].next = now // a full reload at start and on taking over
	}
	st.since = now
	w.st = st
	// A key of the layout that holds another type would fail every write
	// that touches it: mend the indexes before the first.
	for _, k := range keys.Kinds {
		if err := w.repairIndexes(ctx, k); err != nil {
			w.st = nil
			return err
		}
	}
	epoch := st.epoch
	w.keep.writing(&epoch) // a copy: the lease keeper reads it on its own goroutine, and newEpochHere changes st's
	w.ready.Store(st.kinds[keys.Cinemas].loaded && st.kinds[keys.Films].loaded && st.kinds[keys.Sessions].loaded)
	n := len(st.cache[keys.Cinemas]) + len(st.cache[keys.Films]) + len(st.cache[keys.Sessions])
	if adopt {
		// With the replication ids the adoption was judged on: a failover
		// that lost writes and went unseen shows in them afterwards.
		w.log.Info("adopted the cache", "epoch", st.epoch, "seq", st.seq, "entities", n,
			"replid", rid, "replid_written", meta[keys.MetaReplID], "promoted_from", promotedFrom)
	} else {
		w.log.Info("building the cache from nothing", "epoch", st.epoch, "entities_found", n)
	}
	return nil
}

func newEpoch() string {
	b := make([]byte, 5)
	rand.Read(b)
	return strings.ToLower(base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// readUnlisted adds to cache the hashes of kinds that their indexes do not
// list, found by one SCAN of the prefix, and returns their ids by kind.
// On a cluster, every key of the prefix is in the slot of its hash tag,
// so the SCAN goes to that slot's master.
//
// none reports the kinds Redis holds no key of at all, under the kind's
// part of the prefix (P:session:, …); nil when it could not look.
func (w *Warmer) readUnlisted(ctx context.Context, cache map[keys.Kind]map[string]*record, kinds []keys.Kind) (found map[keys.Kind][]string, none map[keys.Kind]bool, err error) {
	p := w.cfg.Prefix
	var scanner redis.Cmdable = w.rdb
	if cc, ok := w.rdb.(*redis.ClusterClient); ok {
		node, err := cc.MasterForKey(ctx, keys.Meta(p))
		if err != nil {
			return nil, nil, err
		}
		scanner = node
	}
	ids := map[keys.Kind][]string{}
	none = map[keys.Kind]bool{}
	for _, k := range kinds {
		none[k] = true
	}
	iter := scanner.Scan(ctx, 0, globEscape(p+":")+"*", 1000).Iterator()
	for iter.Next(ctx) {
		for _, k := range kinds {
			id, ok := strings.CutPrefix(iter.Val(), keys.Entity(p, k, ""))
			if ok {
				none[k] = false
			}
			if ok && cache[k][id] == nil && vista.CheckID(id) == nil {
				ids[k] = append(ids[k], id)
			}
		}
	}
	if err := iter.Err(); err != nil {
		if code, _ := refusal(err); code == "acl" {
			// An ACL from before SCAN was on the warmer's line: the
			// takeover goes on without, as it did before.
			if w.noScan.CompareAndSwap(false, true) {
				w.log.Warn("redis denies the warmer SCAN (ACL); a build that stopped halfway may leave hashes no index lists: grant the warmer's user +scan",
					"err", err)
			}
			return nil, nil, nil
		}
		return nil, nil, err
	}
	found = map[keys.Kind][]string{}
	for k, kids := range ids {
		for part := range slices.Chunk(kids, 1000) {
			cmds, err := w.readHashes(ctx, k, part)
			if err != nil {
				return nil, nil, err
			}
			for i, id := range part {
				if h := cmds[i].Val(); cmds[i].Err() == nil && h[keys.FieldID] == id {
					cache[k][id] = w.recordFromHash(k, h)
					found[k] = append(found[k], id)
				}
			}
		}
		if n := len(found[k]); n > 0 {
			w.log.Info("found hashes a build wrote and no index lists yet; they are listed with the build", "kind", k, "count", n)
		}
	}
	return found, none, nil
}

// readHashes reads the hashes of a kind's ids in one pipeline. A key that
// answers with an error (WRONGTYPE) is the caller's to judge, by its
// command's Err.
func (w *Warmer) readHashes(ctx context.Context, k keys.Kind, ids []string) ([]*redis.MapStringStringCmd, error) {
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err := w.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = pipe.HGetAll(ctx, keys.Entity(w.cfg.Prefix, k, id))
		}
		return nil
	})
	var rerr redis.Error
	if err != nil && !errors.As(err, &rerr) {
		return nil, err
	}
	return cmds, nil
}

// globEscape escapes what SCAN's MATCH reads as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// readCache reads what Redis holds of a kind, through its index, in
// pipelined chunks. An id the index lists whose hash is gone comes back as a
// missing record, so the next reload writes it again or says it is gone.
func (w *Warmer) readCache(ctx context.Context, k keys.Kind) (map[string]*record, error) {
	p := w.cfg.Prefix
	var ids []string
	scores := map[string]float64{}
	var err error
	sorted := w.specs[k].sorted
	if sorted {
		var zs []redis.Z
		zs, err = w.rdb.ZRangeWithScores(ctx, keys.Index(p, k), 0, -1).Result()
		for _, z := range zs {
			id, _ := z.Member.(string)
			ids = append(ids, id)
			scores[id] = z.Score
		}
	} else {
		ids, err = w.rdb.SMembers(ctx, keys.Index(p, k)).Result()
	}
	switch {
	case isWrongType(err):
		// Something else holds the index's key: the cache is read as
		// empty, and the reload that follows writes the index anew.
		w.log.Warn("an index key holds another type; it is rewritten at the next reload", "key", keys.Index(p, k))
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", k, err)
	}
	cache := make(map[string]*record, len(ids))
	for part := range slices.Chunk(ids, 1000) {
		cmds, err := w.readHashes(ctx, k, part)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		// A key that answers with an error (not a hash: WRONGTYPE) reads as
		// missing, and is written whole by the next reload.
		for i, id := range part {
			// An id that cannot be a key of its own (an earlier version
			// wrote it) is held as missing: the next reload removes it
			// from the index without touching the key it would name.
			unsafe := vista.CheckID(id) != nil
			h := cmds[i].Val()
			if unsafe || cmds[i].Err() != nil || len(h) == 0 || h[keys.FieldID] != id {
				vals := make([]string, len(w.fields[k]))
				vals[0] = id
				r := &record{vals: pack(vals), missing: true, unsafe: unsafe}
				if sorted {
					r.showtime = instantOf(time.Unix(int64(scores[id]), 0))
				}
				cache[id] = r
				continue
			}
			cache[id] = w.recordFromHash(k, h)
		}
	}
	return cache, nil
}
