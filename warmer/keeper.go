// The lease keeper: it takes and renews the lease and writes the
// heartbeat on real time, in a goroutine of its own beside the writer's
// loop (keepLease), and reads what the probes answer from (look). It
// tells the loop what it found through atomics: leader, taken, lost.
package warmer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/redis/go-redis/v9"
	"github.com/vista-warmer/vista-warmer/keys"
)

// The lease scripts compare the holder before they touch the key, so one
// instance never extends or drops another's lease.
var (
	renewScript   = redis.NewScript(leaseRenewLua)
	releaseScript = redis.NewScript(leaseReleaseLua)
	// clearScript deletes a lease key of another type than a string,
	// which nobody could ever hold.
	clearScript = redis.NewScript(leaseClearLua)
)

// keeper is the lease keeper's own state. mu serialises leaseAndBeat
// (the keeper's goroutine, the loop's step and Run's stop all call it)
// and guards the rest, but renewedAt, which the lease_held gauge reads.
type keeper struct {
	mu                  sync.Mutex
	lastRenew, lastBeat time.Time    // real time
	lastRole            time.Time    // real time ROLE was last asked
	lastLook            time.Time    // real time P:meta was last read for the probes
	renewedAt           atomic.Int64 // lastRenew, for the lease_held gauge (Unix ns)
	standing            bool         // said that we stand by
	sharedID            bool         // said that another process has our id
}

// leaseAndBeat takes or renews the lease and, as writer, writes the heartbeat when
// they are due, then reads P:meta's heartbeat and reloads (and, now and
// then, Redis's role) for the probes. It runs on real time.
func (w *Warmer) leaseAndBeat(ctx context.Context) {
	w.keep.mu.Lock()
	defer w.keep.mu.Unlock()
	now := time.Now()
	answered := true
	done := w.seen.ask()
	defer func() { done(answered) }()
	if !w.leader.Load() || now.Sub(w.keep.lastRenew) >= w.cfg.LeaseTTL/3 {
		held, taken, holder, err := w.holdLease(ctx)
		if ctx.Err() == nil {
			w.noteLease(err)
			up := 1.0
			if err != nil {
				if code, _, _ := describe(err); code == "unreachable" || code == "tls" {
					up, answered = 0, false
				}
			}
			w.m.redisUp.Set(up)
		}
		switch {
		case err != nil:
			if ctx.Err() == nil {
				w.m.errors.WithLabelValues("lease").Inc()
			}
		case held:
			w.keep.lastRenew, w.keep.standing = now, false
			w.keep.renewedAt.Store(now.UnixNano())
			if taken {
				w.taken.Store(true)
			}
			if !w.leader.Swap(true) {
				w.log.Info("took the lease; writing", "instance", w.cfg.InstanceID)
			}
		default:
			if w.leader.Swap(false) {
				w.log.Warn("lost the lease; standing by", "instance", w.cfg.InstanceID, "writer", holder)
			} else if !w.keep.standing {
				w.log.Info("another instance writes; standing by", "instance", w.cfg.InstanceID, "writer", holder)
			}
			w.keep.standing = true
		}
	}
	epoch := w.epochSeen.Load()
	if w.leader.Load() && epoch != nil && now.Sub(w.keep.lastBeat) >= w.cfg.Heartbeat {
		err := w.heartbeat(ctx, *epoch)
		switch {
		case err == nil:
			w.keep.lastBeat = now
			w.m.heartbeat.Set(float64(now.Unix()))
		case errors.Is(err, errCacheLost):
			w.log.Warn("the cache is gone from Redis; rebuilding", "epoch", *epoch)
			w.lost.Store(epoch)
		case errors.Is(err, errMetaGone):
			w.metaGone.Store(true) // the next step finds out whether the cache went with it
		case errors.Is(err, errLeaseGone):
			w.keep.lastRenew = time.Time{} // take it again at the next leaseAndBeat
		case ctx.Err() == nil:
			w.m.errors.WithLabelValues("heartbeat").Inc() // noteWrite logged it
		}
	}
	// The writer's loop calls this too, at each step: what the probes
	// read is looked at once every lookEvery, however often it steps.
	if answered && ctx.Err() == nil && now.Sub(w.keep.lastLook) >= lookEvery {
		w.keep.lastLook = now
		answered = w.look(ctx, now)
	}
}

// lookEvery is how often the lease keeper reads P:meta for the probes at
// most.
const lookEvery = 500 * time.Millisecond

// roleEvery is how often the lease keeper asks Redis for its role.
const roleEvery = 5 * time.Second

// look reads P:meta's heartbeat and reloads for the probes and, every
// roleEvery, whether Redis is a replica. It reports whether Redis
// answered.
func (w *Warmer) look(ctx context.Context, now time.Time) bool {
	fields := []string{keys.MetaHeartbeat}
	for _, k := range keys.Kinds {
		fields = append(fields, keys.Loaded(k))
	}
	vals, err := w.rdb.HMGet(ctx, keys.Meta(w.cfg.Prefix), fields...).Result()
	if err != nil {
		w.noteDenied("read_meta", err)
		var rerr redis.Error
		return errors.As(err, &rerr)
	}
	var beat time.Time
	if v, ok := vals[0].(string); ok {
		beat, _ = time.Parse(time.RFC3339, v)
	}
	loaded := map[keys.Kind]string{}
	for i, k := range keys.Kinds {
		if v, ok := vals[i+1].(string); ok {
			loaded[k] = v
		}
	}
	w.seen.setMeta(beat, loaded)
	if _, cluster := w.rdb.(*redis.ClusterClient); !cluster && now.Sub(w.keep.lastRole) >= roleEvery {
		// A replica answers reads; a warmer on one can neither write nor
		// take over. (In a cluster, go-redis sends writes to masters.)
		w.keep.lastRole = now
		role, err := w.rdb.Do(ctx, "ROLE").Slice()
		if err == nil && len(role) > 0 {
			w.seen.setReplica(role[0] != "master")
		}
		w.noteDenied("role", err)
		if id, _, err := replID(ctx, w.rdb); err == nil {
			w.replid.Store(&id)
		}
	}
	return true
}

// holds is what vista_warmer_lease_held says when scraped: 1 while this
// instance holds the lease, renewed it within a lease TTL, and Redis
// takes its renewals and writes; 0 the moment Redis refuses either, the
// lease goes, or a TTL passes without a renewal (Redis cut off: another
// instance may hold it by now).
func (w *Warmer) holds() float64 {
	renewed := time.Unix(0, w.keep.renewedAt.Load())
	if w.leader.Load() && w.refused() == "" && time.Since(renewed) < w.cfg.LeaseTTL {
		return 1
	}
	return 0
}

// refused says why Redis refuses this instance's lease renewals or, as
// writer, its writes; "" when it does not.
func (w *Warmer) refused() string {
	if why := w.leaseTrouble.refusal(); why != "" {
		return why
	}
	if w.leader.Load() {
		return w.writeTrouble.refusal()
	}
	return ""
}

// heartbeat refreshes P:meta heartbeat, in a write fenced on our epoch: if
// Redis lost its data (a restart without persistence, a FLUSHALL) it
// returns errCacheLost and the cache is rebuilt under a new epoch.
func (w *Warmer) heartbeat(ctx context.Context, epoch string) error {
	fields := []any{keys.MetaHeartbeat, stamp(w.cfg.Clock.Now()), keys.MetaWriter, w.cfg.InstanceID}
	if id := w.replid.Load(); id != nil && *id != "" {
		fields = append(fields, keys.MetaReplID, *id)
	}
	return w.fenced(ctx, &guard{epoch: epoch, seq: -1}, func(pipe redis.Pipeliner) {
		pipe.HSet(ctx, keys.Meta(w.cfg.Prefix), fields...)
	})
}

// keepLease renews the lease and writes the heartbeat on real time, beside
// the writer's loop in a goroutine of its own, so neither waits for a
// long reload.
//
// While Redis refuses or does not answer, the tries back off, doubling up
// to 15 s: a rotated password or a full Redis does not mend in a second.
func (w *Warmer) keepLease(ctx context.Context) {
	every := min(w.cfg.LeaseTTL/4, time.Second)
	retry := &backoff.ExponentialBackOff{InitialInterval: 2 * every, Multiplier: 2, MaxInterval: max(15*time.Second, every)}
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.leaseAndBeat(ctx)
		}
		wait := every
		if w.leaseTrouble.failing() {
			wait = retry.NextBackOff()
		} else {
			retry.Reset()
		}
		t.Reset(wait)
	}
}

// stop releases the lease after Run's last step.
func (w *Warmer) stop() {
	w.keep.mu.Lock()
	defer w.keep.mu.Unlock()
	if !w.leader.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := w.releaseLease(ctx); err != nil {
		w.log.Warn("release lease", "err", err)
		return
	}
	w.leader.Store(false)
	w.log.Info("released the lease")
}

// leaseValue is what P:lease holds while this process writes: its instance
// id, a space and a token made when the process started, so two processes
// given the same --instance-id never both believe they hold the lease.
func (w *Warmer) leaseValue() string { return w.cfg.InstanceID + " " + w.token }

// holdLease renews the lease when it is ours and takes it when it is free.
// taken reports a lease that was not ours a moment ago: whatever we knew of
// the cache before is stale. When another holds it, holder is its instance
// id. A lease left by an earlier process with the same instance id is
// another process's: it runs out by its TTL.
func (w *Warmer) holdLease(ctx context.Context) (held, taken bool, holder string, err error) {
	key := keys.Lease(w.cfg.Prefix)
	if bug("skipfence") {
		err := w.rdb.Set(ctx, key, w.leaseValue(), w.cfg.LeaseTTL).Err()
		return err == nil, false, "", err
	}
	n, err := renewScript.Run(ctx, w.rdb, []string{key}, w.leaseValue(), w.cfg.LeaseTTL.Milliseconds()).Int()
	if isWrongType(err) {
		if cleared, cerr := clearScript.Run(ctx, w.rdb, []string{key}).Int(); cerr == nil && cleared == 1 {
			w.log.Warn("the lease key held another type; deleted it", "key", key)
		}
		n, err = 0, nil
	}
	if err != nil {
		return false, false, "", fmt.Errorf("renew lease: %w", err)
	}
	if n == 1 {
		return true, false, "", nil
	}
	ok, err := w.rdb.SetNX(ctx, key, w.leaseValue(), w.cfg.LeaseTTL).Result()
	if err != nil {
		return false, false, "", fmt.Errorf("take lease: %w", err)
	}
	if !ok {
		value, _ := w.rdb.Get(ctx, key).Result()
		holder, _, _ = strings.Cut(value, " ")
		shared := holder == w.cfg.InstanceID
		if shared && !w.keep.sharedID {
			w.log.Warn("another process runs with this --instance-id and holds the lease; standing by (give each process its own id)",
				"instance", w.cfg.InstanceID)
		}
		w.keep.sharedID = shared
	}
	return ok, ok, holder, nil
}

// releaseLease gives the lease up so a standby takes over at once.
func (w *Warmer) releaseLease(ctx context.Context) error {
	return releaseScript.Run(ctx, w.rdb, []string{keys.Lease(w.cfg.Prefix)}, w.leaseValue()).Err()
}
