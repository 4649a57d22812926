package warmer

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/internal/redistest"
	"github.com/vista-warmer/vista-warmer/internal/testkit"
	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// failover is a master and its replica, and a warmer "a" that built the
// cache on the master through a client that dials whichever of the two
// target names, as go-redis's Sentinel client dials the master the
// sentinels name: a failover reaches the writer as new connections, to
// another server.
type failover struct {
	r                   *rig
	w                   *Warmer
	master, replica     *redistest.Server
	onMaster, onReplica *redis.Client
	target              atomic.Pointer[string]
}

// promoted starts the failover's servers and warmer, and promotes the
// replica once it has every write; the writer still reaches the old
// master until move.
func promoted(t *testing.T) *failover {
	f := &failover{
		master: redistest.Start(t, redistest.Options{Config: []string{"repl-diskless-sync-delay 0"}}),
	}
	f.replica = redistest.Start(t, redistest.Options{Config: []string{"replicaof 127.0.0.1 " + strconv.Itoa(f.master.Port)}})
	addr := f.master.Addr()
	f.target.Store(&addr)
	c := redis.NewClient(&redis.Options{
		Dialer: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, *f.target.Load())
		},
	})
	t.Cleanup(func() { c.Close() })
	f.r = newRig(t)
	f.r.rdb, f.r.prefix = c, "vista"
	f.w = f.r.warmer("a")
	f.r.step(f.w)
	f.onMaster, f.onReplica = f.master.Client(t, nil), f.replica.Client(t, nil)
	if err := f.onMaster.Do(f.r.ctx, "WAIT", 1, 10000).Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.onReplica.Do(f.r.ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	return f
}

// move cuts the writer's connections to the old master; it dials the
// promoted replica.
func (f *failover) move(t *testing.T) {
	addr := f.replica.Addr()
	f.target.Store(&addr)
	if err := f.onMaster.Do(f.r.ctx, "CLIENT", "KILL", "TYPE", "normal").Err(); err != nil {
		t.Fatal(err)
	}
}

// The failover the robustness suite found (sentinel, seed 1): the writer's
// connections went to a replica the sentinels had promoted, where its
// lease (lapsed or not) and P:meta, replicated, still said it wrote. It
// wrote seqs there that the old master, named again 3 s later, lacked,
// and the writer that adopted the cache there handed them out again with
// other data. The writer now finds out before it writes there. Where the
// promoted replica has all it wrote, the cache goes on under a new epoch,
// with a full_reload of each kind and nothing asked of Vista; where it
// lacks the last writes, it is taken over anew, as a writer coming to it
// would.
func TestWriterMovedToAPromotedReplicaStartsANewEpoch(t *testing.T) {
	for _, c := range []struct {
		name          string
		lapsed, lacks bool
	}{
		{name: "lease still there"},
		{name: "lease lapsed and taken back", lapsed: true},
		{name: "the last write did not reach it", lacks: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The failover: the replica is promoted; then (move) the
			// writer's connections to the old master are cut, and it
			// dials the new.
			f := promoted(t)
			r, w, onReplica := f.r, f.w, f.onReplica
			before := r.meta() // what the promoted replica has
			s := r.upcoming(time.Hour, 3*time.Hour)
			if c.lacks {
				r.sim.SetSeats(s.ID, r.otherSeats(s.ID))
				if err := r.reload(w, keys.Sessions); err != nil {
					t.Fatal(err)
				}
				if r.meta()[keys.MetaSeq] == before[keys.MetaSeq] {
					t.Fatal("the old master took no write after the replica's promotion: the test needs one")
				}
			}
			f.move(t)
			if c.lapsed {
				// It lapsed during the failover; the lease keeper takes
				// it again, and P:meta says nobody wrote meanwhile.
				onReplica.Del(r.ctx, keys.Lease(r.prefix))
				testkit.Eventually(t, 10*time.Second, "the writer takes the lease again", func() bool {
					return onReplica.Get(r.ctx, keys.Lease(r.prefix)).Val() == w.keep.value
				})
			}
			r.sim.ResetRequests()
			seats := r.otherSeats(s.ID)
			r.sim.SetSeats(s.ID, seats)
			r.reload(w, keys.Sessions) // would write the change: in which epoch is the question
			testkit.Eventually(t, 10*time.Second, "a new epoch on the promoted replica", func() bool {
				r.settle(w) // may find the lease gone, until the lease keeper takes it again
				return r.meta()[keys.MetaEpoch] != before[keys.MetaEpoch]
			})
			if err := r.reload(w, keys.Sessions); err != nil {
				t.Fatal(err)
			}

			after := r.meta()
			id, _, err := replID(r.ctx, onReplica)
			if err != nil {
				t.Fatal(err)
			}
			if after[keys.MetaReplID] != id {
				t.Errorf("P:meta replid = %q, want the promoted replica's %q", after[keys.MetaReplID], id)
			}
			last, _ := strconv.ParseInt(before[keys.MetaSeq], 10, 64)
			var fresh []keys.Event
			for _, ev := range r.events() {
				switch ev.Epoch {
				case before[keys.MetaEpoch]:
					if ev.Seq > last {
						t.Errorf("seq %d of the old epoch %s written to the promoted replica, which had up to %d: %+v",
							ev.Seq, ev.Epoch, last, ev)
					}
				case after[keys.MetaEpoch]:
					fresh = append(fresh, ev)
				}
			}
			// The new epoch begins as a build from nothing ends: one
			// full_reload of each kind, from seq 1, before any item.
			kinds := map[keys.Kind]bool{}
			for i, ev := range fresh {
				if i < len(keys.Kinds) && (ev.Event != keys.EventFullReload || ev.Seq != int64(i+1)) {
					t.Errorf("event %d of the new epoch: %s of %s, seq %d; want a full_reload, seq %d", i, ev.Event, ev.Kind, ev.Seq, i+1)
				}
				if i < len(keys.Kinds) {
					kinds[ev.Kind] = true
				}
			}
			if len(kinds) != len(keys.Kinds) {
				t.Errorf("the new epoch begins with full_reloads of %v, want one of each kind", kinds)
			}
			if got := r.hash(keys.Sessions, s.ID)["seats_available"]; got != strconv.Itoa(seats) {
				t.Errorf("seats of %s on the promoted replica = %s, want Vista's %d", s.ID, got, seats)
			}
			// A cache the replica has whole is not asked of Vista again.
			lists := r.sim.Requests()[vistasim.EndpointCinemas] + r.sim.Requests()[vistasim.EndpointFilms]
			if rebuilt := lists > 0; rebuilt != c.lacks {
				t.Errorf("lists of cinemas and films asked after the failover: %d, want some only when the replica lacks a write (%v)", lists, c.lacks)
			}
			if ready, why := w.Readiness(r.ctx); !ready {
				t.Errorf("Readiness = %q after the new epoch", why)
			}
		})
	}
}

// A Redis restarted from its own files has a new replication id, but no
// failover promoted it: its files hold what it acknowledged, and the
// writer's epoch goes on, as it does for a writer taking over there.
func TestWriterOnARestartedRedisKeepsItsEpoch(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Config: []string{"appendonly yes", "appendfsync always"}})
	r := newRig(t)
	r.rdb, r.prefix = srv.Client(t, nil), "vista"
	w := r.warmer("a")
	r.step(w)
	before := r.meta()
	idBefore, _, err := replID(r.ctx, r.rdb)
	if err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	r.sim.ResetRequests()
	s := r.upcoming(time.Hour, 3*time.Hour)
	seats := r.otherSeats(s.ID)
	r.sim.SetSeats(s.ID, seats)
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatalf("reload after the restart: %v", err)
	}
	r.step(w)
	after := r.meta()
	if after[keys.MetaEpoch] != before[keys.MetaEpoch] {
		t.Errorf("epoch after a restart = %s, want %s kept", after[keys.MetaEpoch], before[keys.MetaEpoch])
	}
	if got := r.hash(keys.Sessions, s.ID)["seats_available"]; got != strconv.Itoa(seats) {
		t.Errorf("seats of %s after the restart = %s, want Vista's %d", s.ID, got, seats)
	}
	// Nor did it take the cache over again: that reloads every kind.
	if got := r.sim.Requests(); got[vistasim.EndpointCinemas]+got[vistasim.EndpointFilms] > 0 {
		t.Errorf("requests after the restart = %v: the cache was taken over again", got)
	}
	idAfter, _, _ := replID(r.ctx, r.rdb)
	t.Logf("replication id %s before the restart, %s after", idBefore, idAfter)
}

// Once Redis's replication id is not the epoch's home, every write is
// refused, as a script and as a transaction, the second as the first,
// until the writer's loop has gone on there: none reaches the promoted
// replica under the old epoch.
func TestWritesOnAPromotedReplicaAreRefusedUntilTheWriterGoesOn(t *testing.T) {
	f := promoted(t)
	f.move(t)
	r, w, onReplica := f.r, f.w, f.onReplica
	r.locked(w, func() {
		for i := range 2 {
			err := w.store.fenced(r.ctx, w.guard(), func(pipe redis.Pipeliner) {
				pipe.HSet(r.ctx, keys.Meta(r.prefix), "probe", i)
			})
			if !errors.Is(err, errMoved) {
				t.Errorf("script write %d on the promoted replica: %v, want errMoved", i, err)
			}
			wr := w.store.prepare(r.ctx, w.guard(), moreHashes(r.prefix, 1000, bulkHashes, w.st.seq))
			if wr.tx == nil {
				t.Fatal("not a transaction")
			}
			if _, err := w.store.run(r.ctx, wr); !errors.Is(err, errMoved) {
				t.Errorf("transaction %d on the promoted replica: %v, want errMoved", i, err)
			}
		}
	})
	if got := onReplica.HGet(r.ctx, keys.Meta(r.prefix), "probe").Val(); got != "" {
		t.Errorf("a write under the old epoch reached the promoted replica: P:meta probe = %q", got)
	}
	if n := onReplica.Exists(r.ctx, keys.Entity(r.prefix, keys.Sessions, "1000")).Val(); n != 0 {
		t.Error("a transaction under the old epoch reached the promoted replica")
	}
	r.step(w)
	r.locked(w, func() {
		if err := w.store.fenced(r.ctx, w.guard(), func(pipe redis.Pipeliner) {
			pipe.HSet(r.ctx, keys.Meta(r.prefix), "probe", "after")
		}); err != nil {
			t.Errorf("a write once the writer went on there: %v", err)
		}
	})
}
