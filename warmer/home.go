// The Redis an epoch is written to. takeOver judges the Redis it finds
// (a replica a failover promoted starts a new epoch) and makes its
// replication id the epoch's home; every fenced write after that carries
// the id, and Redis runs it only while its own master_replid is that one
// (fence.lua, homeCheck). A failover hands a writer's connections to a
// promoted replica without its lease or P:meta telling: they were
// replicated. Its writes there, under the old epoch, would be lost if the
// old master came back without them, and another writer that adopted the
// cache there would hand out their seqs again with other data.
package warmer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// errMoved: Redis's replication id is not the one the writer's epoch is
// written to: a replica a failover promoted (or a Redis restarted from its
// own files). Nothing was written; the next step goes on there (moved).
var errMoved = errors.New("redis has another replication id than the one this epoch is written to (a failover?)")

// settleHome reads the replication id of the Redis the writer writes to,
// and the one it had before a failover promoted it ("" when none did),
// and makes it the epoch's home. With none to read (a cluster, whose
// nodes each have their own; a Redis that does not say), writes are not
// checked.
func (s *store) settleHome(ctx context.Context) (id, before string) {
	id, before, err := replID(ctx, s.rdb)
	if err != nil || id == "" {
		s.home.Store(nil)
		return "", ""
	}
	s.setHome(id)
	return id, before
}

// setHome makes id the epoch's home: the writes after carry it.
func (s *store) setHome(id string) {
	s.home.Store(&id)
	s.moved.Store(false)
}

// leaveHome: the writer stands by, and nothing it writes is checked.
func (s *store) leaveHome() {
	s.home.Store(nil)
	s.moved.Store(false)
}

// homeID is the replication id of the Redis the epoch is written to, or
// "" where it is not known.
func (s *store) homeID() string {
	if id := s.home.Load(); id != nil {
		return *id
	}
	return ""
}

// movedTo notes that Redis refused a write carrying replid, the home it
// was made for, as not its own, and says so once a move.
func (s *store) movedTo(ctx context.Context, replid string) {
	if replid != s.homeID() || s.moved.Swap(true) {
		return // made before the writer settled elsewhere, or said already
	}
	id, before, _ := replID(ctx, s.rdb)
	s.log.Warn("redis has another replication id than the one this writer's epoch is written to (a failover?); nothing written there, the next step goes on there",
		"replid_written", replid, "replid", id, "promoted_from", before)
}

// movedAway reports, once, that a write found Redis's replication id
// changed (a write of the writer's, or the lease keeper's heartbeat).
func (s *store) movedAway() bool { return s.moved.Swap(false) }

// homeCheck is fence.lua's replication id check in Go, on a
// transaction's INFO replication: Redis's master_replid must be want.
func homeCheck(info *redis.StringCmd, want string) error {
	if info == nil {
		return &fenceErr{errMoved} // opened before the epoch had a home: not for this write
	}
	text, err := info.Result()
	if err != nil {
		return err
	}
	if !strings.Contains(text, "master_replid:"+want+"\r") {
		return &fenceErr{errMoved}
	}
	return nil
}

// moved goes on after a write found Redis's replication id changed. A
// Redis restarted from its own files (promoted from none) keeps the epoch,
// as takeOver does. On a replica a failover promoted, where P:meta still
// holds the writer's epoch and seq, the Redis has every write the writer
// made: the cache goes on there under a new epoch (newEpochHere).
// Anything else is taken over again, as a writer coming to that Redis
// would. Until one of these is done, every write is refused (the writes
// carry the old id), and a failure leaves it for the next step.
func (w *Warmer) moved(ctx context.Context) error {
	id, before, err := replID(ctx, w.rdb)
	if err != nil {
		w.store.moved.Store(true)
		return fmt.Errorf("read the replication id: %w", err)
	}
	home := w.store.homeID()
	switch {
	case id == "" || id == home:
		return nil // the writer settled here since that write
	case before == "":
		w.log.Info("redis restarted from its own files (a new replication id, promoted from none); the epoch goes on",
			"epoch", w.st.epoch, "replid_was", home, "replid", id)
		w.store.setHome(id)
		return nil
	}
	epoch, seq, err := w.metaNow(ctx)
	if err != nil {
		w.store.moved.Store(true)
		return fmt.Errorf("read meta: %w", err)
	}
	if epoch != w.st.epoch || seq != w.st.seq {
		w.log.Warn("redis, promoted by a failover, lacks writes of this writer; taking the cache over again",
			"epoch", w.st.epoch, "seq", w.st.seq, "seq_there", seq, "replid", id, "promoted_from", before)
		w.dropState()
		return nil
	}
	return w.newEpochHere(ctx, id, before)
}

// newEpochHere starts a new epoch over the cache the writer holds, on a
// Redis a failover promoted (replication id id) that has all of it. Its
// keys stay, and each kind whose load is done sends one full_reload under
// the new epoch, as a build from nothing ends: readers re-read the keys,
// and none of the old epoch's seqs is handed out here, where the old
// master, if named again, may lack the last of them. A kind still being
// built sends its full_reload when its load ends, as before. Nothing is
// asked of Vista, and the cache stays ready.
func (w *Warmer) newEpochHere(ctx context.Context, id, before string) error {
	now := w.cfg.Clock.Now()
	pub := w.publisher(newEpoch(), 0)
	g := w.guard()
	g.home = id // refused anywhere else; the store's home is still the old one
	err := w.store.fenced(ctx, g, func(pipe redis.Pipeliner) {
		for _, k := range keys.Kinds {
			if !w.st.kinds[k].quiet {
				count := w.count(k)
				pub.publish(ctx, pipe, keys.Event{Kind: k, Event: keys.EventFullReload, Count: &count, At: stamp(now)})
			}
		}
		pipe.HSet(ctx, keys.Meta(w.cfg.Prefix), keys.MetaEpoch, pub.epoch, keys.MetaSeq, pub.seq,
			keys.MetaWriter, w.cfg.InstanceID, keys.MetaHeartbeat, stamp(now), keys.MetaReplID, id)
	})
	if err != nil {
		w.store.moved.Store(true) // the next step tries again; the writes meanwhile carry the old id, and are refused
		return fmt.Errorf("start a new epoch: %w", err)
	}
	w.store.setHome(id)
	was := w.st.epoch
	epoch := pub.epoch
	w.st.epoch = epoch
	w.committed(pub)
	w.keep.writing(&epoch) // a copy: the lease keeper reads it on its own goroutine
	w.log.Warn("redis was promoted by a failover and has every write of this writer; the cache goes on there under a new epoch",
		"epoch", epoch, "epoch_was", was, "replid", id, "promoted_from", before)
	return nil
}
