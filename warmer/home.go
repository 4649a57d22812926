// The Redis an epoch is written to. takeOver judges the Redis it finds
// (a replica a failover promoted starts a new epoch); after that, the
// store checks before a write that its connections still reach that
// Redis. A failover hands a writer's new connections to a promoted
// replica without its lease or P:meta telling: they were replicated. Its
// writes there, under the old epoch, would be lost if the old master came
// back without them, and another writer that adopted the cache there would
// hand out their seqs again with other data.
package warmer

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// errMoved: the writer's connections reach a Redis of another
// replication history than the one its epoch is written to, a replica a
// failover promoted. Nothing was written; the writer goes on there under
// a new epoch (newEpochHere), or takes the cache over again.
var errMoved = errors.New("redis is a replica promoted since this writer took the cache over (a failover)")

// settleHome reads the replication id of the Redis the writer's
// connections reach, and the one it had before a failover promoted it
// ("" when none did), and makes it the Redis the epoch is written to.
// With none to read (a cluster, a Redis that does not say), writes are
// not checked.
func (s *store) settleHome(ctx context.Context) (id, before string) {
	dials := s.rdb.PoolStats().Misses
	id, before, err := replID(ctx, s.rdb)
	if err != nil || id == "" {
		s.home.Store(nil)
		return "", ""
	}
	s.dials.Store(dials)
	s.home.Store(&id)
	return id, before
}

// leaveHome: the writer stands by, and nothing it writes is checked.
func (s *store) leaveHome() {
	s.home.Store(nil)
	s.moved.Store(false)
}

// movedAway reports, once, that a write found the writer's connections
// on a Redis other than its epoch's (the heartbeat's too, which the
// lease keeper writes): the writer takes the cache over again.
func (s *store) movedAway() bool { return s.moved.Swap(false) }

// homeID is the replication id of the Redis the epoch is written to, or
// "" where it is not known.
func (s *store) homeID() string {
	if id := s.home.Load(); id != nil {
		return *id
	}
	return ""
}

// checkHome makes sure, before a write, that the writer's connections
// still reach the Redis its epoch is written to. It asks Redis only when
// the client dialed since it last asked: a failover reaches the writer as
// new connections (go-redis's Sentinel client drops those to the old
// master; a plain client redials an address whose server changed). A
// Redis restarted from its own files has a new replication id, but was
// promoted from nothing: it keeps the epoch, as takeOver does.
func (s *store) checkHome(ctx context.Context) error {
	home := s.home.Load()
	if home == nil {
		return nil
	}
	dials := s.rdb.PoolStats().Misses
	if dials == s.dials.Load() {
		return nil
	}
	id, before, err := replID(ctx, s.rdb)
	if err != nil {
		if errors.As(err, new(redis.Error)) {
			s.dials.Store(dials) // Redis answers, but does not say: nothing to check
			return nil
		}
		return fmt.Errorf("%w: read the replication id: %w", errWrite, err)
	}
	s.dials.Store(dials)
	switch {
	case id == "" || id == *home:
		return nil
	case before == "":
		s.log.Info("redis restarted from its own files since the last write (a new replication id, promoted from none); the epoch goes on",
			"replid_was", *home, "replid", id)
		s.home.Store(&id)
		return nil
	}
	if !s.moved.Swap(true) { // said once, whichever write finds it first
		s.log.Warn("redis is a replica promoted since this writer took the cache over (a failover); nothing written there yet, the cache goes on there under a new epoch",
			"replid_written", *home, "replid", id, "promoted_from", before)
	}
	return fmt.Errorf("%w (replication id %s, was %s)", errMoved, id, *home)
}

// moved goes on after a failover moved the writer to a promoted Redis
// (checkHome). Where P:meta still holds the writer's epoch and seq, the
// Redis has every write the writer made: the cache goes on there under a
// new epoch (newEpochHere). Anything else is taken over again, as a
// writer coming to that Redis would.
func (w *Warmer) moved(ctx context.Context) error {
	if same, _ := w.unchanged(ctx); !same {
		w.log.Warn("redis, promoted by a failover, is not as this writer left the cache; taking it over again", "epoch", w.st.epoch, "seq", w.st.seq)
		w.dropState()
		return nil
	}
	return w.newEpochHere(ctx)
}

// newEpochHere starts a new epoch over the cache the writer holds, on a
// Redis a failover promoted that has all of it. Its keys stay, and each
// kind whose load is done sends one full_reload under the new epoch, as
// a build from nothing ends: readers re-read the keys, and none of the
// old epoch's seqs is handed out here, where the old master, if named
// again, may lack the last of them. A kind still being built sends its
// full_reload when its load ends, as before. Nothing is asked of Vista,
// and the cache stays ready.
func (w *Warmer) newEpochHere(ctx context.Context) error {
	id, before, _ := replID(ctx, w.rdb)
	now := w.cfg.Clock.Now()
	pub := w.publisher(newEpoch(), 0)
	err := w.store.fenced(ctx, w.guard(), func(pipe redis.Pipeliner) {
		for _, k := range keys.Kinds {
			if !w.st.kinds[k].quiet {
				count := w.count(k)
				pub.publish(ctx, pipe, keys.Event{Kind: k, Event: keys.EventFullReload, Count: &count, At: stamp(now)})
			}
		}
		fields := []any{keys.MetaEpoch, pub.epoch, keys.MetaSeq, pub.seq, keys.MetaWriter, w.cfg.InstanceID, keys.MetaHeartbeat, stamp(now)}
		if id != "" {
			fields = append(fields, keys.MetaReplID, id)
		}
		pipe.HSet(ctx, keys.Meta(w.cfg.Prefix), fields...)
	})
	if err != nil {
		w.store.moved.Store(true) // the next step tries again; nothing else is written meanwhile
		return fmt.Errorf("start a new epoch: %w", err)
	}
	if id != "" {
		w.store.home.Store(&id)
	}
	was := w.st.epoch
	w.st.epoch = pub.epoch
	w.committed(pub)
	w.keep.writing(&w.st.epoch)
	w.log.Warn("redis was promoted by a failover and has every write of this writer; the cache goes on there under a new epoch",
		"epoch", pub.epoch, "epoch_was", was, "replid", id, "promoted_from", before)
	return nil
}
