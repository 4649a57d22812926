// The lease keeper: it takes and renews the lease and writes the
// heartbeat on real time, in a goroutine of its own beside the writer's
// loop (run), and reads what the probes answer from (look). The loop
// asks it what it found (leading, tookLease, lostEpoch, metaWentMissing)
// and tells it what the writes found (stepDown, cacheLost, metaMissing)
// and which epoch to beat for (writing).
package warmer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// keeper is the lease keeper. mu serialises beat (the keeper's
// goroutine, the loop's step and Run's release all call it) and guards
// the times and flags under it; the atomics are what the others read.
type keeper struct {
	rdb      redis.UniversalClient
	instance string
	prefix   string
	ttl      time.Duration // the lease's
	every    time.Duration // the heartbeat's
	clock    Clock         // the heartbeat's stamp
	log      *slog.Logger
	m        *Metrics
	obs      *observer // told how the lease went, and what Redis is
	store    *store    // writes the heartbeat, fenced on the epoch
	value    string    // the lease's value while this process holds it

	leader   atomic.Bool            // this instance holds the lease
	taken    atomic.Bool            // the lease was just taken: read the cache before writing
	lost     atomic.Pointer[string] // the epoch the heartbeat found gone from Redis
	metaGone atomic.Bool            // P:meta was found missing: see restoreMeta
	epoch    atomic.Pointer[string] // the epoch the writer works in, for the heartbeat

	mu                  sync.Mutex
	lastRenew, lastBeat time.Time    // real time
	lastRole            time.Time    // real time ROLE was last asked
	lastLook            time.Time    // real time P:meta was last read for the probes
	lastRecheck         time.Time    // real time recheckDenied last ran
	renewedAt           atomic.Int64 // lastRenew, for the lease_held gauge (Unix ns)
	standing            bool         // said that we stand by
	sharedID            bool         // said that another process has our id
}

// leaseValue is what P:lease holds while this process writes: the
// instance id, a space and a token made for this process, so two
// processes given the same --instance-id never both believe they hold the
// lease. The keeper takes the lease with it, and the store's writes are
// fenced on it.
func leaseValue(instance string) string { return instance + " " + newEpoch() }

// newKeeper returns the lease keeper of the instance: it holds the lease
// as value, and writes the heartbeat through store.
func newKeeper(cfg Config, obs *observer, store *store, value string) *keeper {
	return &keeper{rdb: cfg.Redis, instance: cfg.InstanceID, prefix: cfg.Prefix, ttl: cfg.LeaseTTL, every: cfg.Heartbeat,
		clock: cfg.Clock, log: cfg.Logger, m: cfg.Metrics, obs: obs, store: store, value: value}
}

// leading reports whether this instance holds the lease.
func (k *keeper) leading() bool { return k.leader.Load() }

// stepDown is the writer's word that a write found the lease gone; it
// reports whether the keeper still thought it held it.
func (k *keeper) stepDown() bool { return k.leader.Swap(false) }

// tookLease reports, once, that the lease was taken since the last ask:
// what the writer knew of the cache is stale.
func (k *keeper) tookLease() bool { return k.taken.Swap(false) }

// lostEpoch returns, once, the epoch the heartbeat found gone from Redis.
func (k *keeper) lostEpoch() *string { return k.lost.Swap(nil) }

// isLost reports whether epoch was found gone, without taking the news.
func (k *keeper) isLost(epoch string) bool {
	lost := k.lost.Load()
	return lost != nil && *lost == epoch
}

// cacheLost is the writer's word that a write found epoch gone.
func (k *keeper) cacheLost(epoch string) { k.lost.Store(&epoch) }

// metaMissing is the writer's word that a write found P:meta missing.
func (k *keeper) metaMissing() { k.metaGone.Store(true) }

// metaWentMissing reports, once, that P:meta was found missing.
func (k *keeper) metaWentMissing() bool { return k.metaGone.Swap(false) }

// writing sets the epoch the heartbeat is written for; nil: none (standby).
func (k *keeper) writing(epoch *string) { k.epoch.Store(epoch) }

// beat takes or renews the lease and, as writer, writes the heartbeat when
// they are due, then reads P:meta's heartbeat and reloads (and, now and
// then, Redis's role) for the probes. It runs on real time.
func (k *keeper) beat(ctx context.Context) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	answered := true
	done := k.obs.seen.ask()
	defer func() { done(answered) }()
	if !k.leader.Load() || now.Sub(k.lastRenew) >= k.ttl/3 {
		held, taken, holder, err := k.hold(ctx)
		if ctx.Err() == nil {
			// A failure counts from when Redis went quiet, not only
			// from this renewal.
			began := now
			if err != nil {
				began = k.obs.seen.wentAt(now)
			}
			k.obs.noteLease(err, began)
			if err != nil {
				if code, _, _ := describe(err); code == "unreachable" || code == "tls" {
					answered = false
				}
			}
		}
		switch {
		case err != nil:
			if ctx.Err() == nil {
				k.m.errors.WithLabelValues("lease").Inc()
			}
		case held:
			k.lastRenew, k.standing = now, false
			k.renewedAt.Store(now.UnixNano())
			if taken {
				k.taken.Store(true)
			}
			if !k.leader.Swap(true) {
				k.log.Info("took the lease; writing", "instance", k.instance)
			}
		default:
			if k.leader.Swap(false) {
				k.log.Warn("lost the lease; standing by", "instance", k.instance, "writer", holder)
			} else if !k.standing {
				k.log.Info("another instance writes; standing by", "instance", k.instance, "writer", holder)
			}
			k.standing = true
		}
	}
	epoch := k.epoch.Load()
	if k.leader.Load() && epoch != nil && now.Sub(k.lastBeat) >= k.every {
		err := k.heartbeat(ctx, *epoch)
		switch {
		case err == nil:
			k.lastBeat = now
			k.m.heartbeat.Set(float64(now.Unix()))
		case errors.Is(err, errCacheLost):
			k.log.Warn("the cache is gone from Redis; rebuilding", "epoch", *epoch)
			k.lost.Store(epoch)
		case errors.Is(err, errMetaGone):
			k.metaGone.Store(true) // the next step finds out whether the cache went with it
		case errors.Is(err, errLeaseGone):
			k.lastRenew = time.Time{} // take it again at the next beat
		case ctx.Err() == nil:
			k.m.errors.WithLabelValues("heartbeat").Inc() // noteWrite logged it
		}
	}
	if answered && ctx.Err() == nil && now.Sub(k.lastRecheck) >= recheckEvery {
		k.lastRecheck = now
		k.obs.recheckDenied(ctx) // nothing while no denial is said
	}
	// The writer's loop calls this too, at each step: what the probes
	// read is looked at once every lookEvery, however often it steps.
	if answered && ctx.Err() == nil && now.Sub(k.lastLook) >= lookEvery {
		k.lastLook = now
		answered = k.look(ctx, now)
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
func (k *keeper) look(ctx context.Context, now time.Time) bool {
	fields := []string{keys.MetaHeartbeat}
	for _, kind := range keys.Kinds {
		fields = append(fields, keys.Loaded(kind))
	}
	vals, err := k.rdb.HMGet(ctx, keys.Meta(k.prefix), fields...).Result()
	if err != nil {
		k.obs.noteDenied("read_meta", err)
		var rerr redis.Error
		if errors.As(err, &rerr) {
			return true
		}
		if ctx.Err() == nil {
			// No answer: the lease keeper's run of failures begins here
			// (and is logged), not at the next renewal, which may come
			// only once go-redis's timeouts have run out.
			k.obs.noteLease(fmt.Errorf("read meta: %w", err), k.obs.seen.wentAt(now))
		}
		return false
	}
	var beat time.Time
	if v, ok := vals[0].(string); ok {
		beat, _ = time.Parse(time.RFC3339, v)
	}
	loaded := map[keys.Kind]string{}
	for i, kind := range keys.Kinds {
		if v, ok := vals[i+1].(string); ok {
			loaded[kind] = v
		}
	}
	k.obs.seen.setMeta(beat, loaded)
	if _, cluster := k.rdb.(*redis.ClusterClient); !cluster && now.Sub(k.lastRole) >= roleEvery {
		// A replica answers reads; a warmer on one can neither write nor
		// take over. (In a cluster, go-redis sends writes to masters.)
		k.lastRole = now
		role, err := k.rdb.Do(ctx, "ROLE").Slice()
		if err == nil && len(role) > 0 {
			k.obs.seen.setReplica(role[0] != "master")
		}
		k.obs.noteDenied("role", err)
	}
	return true
}

// holds is what vista_warmer_lease_held says when scraped: 1 while this
// instance holds the lease, renewed it within a lease TTL, and Redis
// takes its renewals and writes; 0 the moment Redis refuses either, the
// lease goes, or a TTL passes without a renewal (Redis cut off: another
// instance may hold it by now).
func (k *keeper) holds() float64 {
	renewed := time.Unix(0, k.renewedAt.Load())
	if k.leader.Load() && k.refused() == "" && time.Since(renewed) < k.ttl {
		return 1
	}
	return 0
}

// refused says why Redis refuses this instance's lease renewals or, as
// writer, its writes; "" when it does not.
func (k *keeper) refused() string {
	if why := k.obs.lease.refusal(); why != "" {
		return why
	}
	if k.leader.Load() {
		return k.obs.writes.refusal()
	}
	return ""
}

// heartbeat refreshes P:meta heartbeat, in a write fenced on our epoch: if
// Redis lost its data (a restart without persistence, a FLUSHALL) it
// returns errCacheLost and the cache is rebuilt under a new epoch. It
// writes the replication id the epoch is written to (home.go) too, which
// a restart from Redis's own files changes.
func (k *keeper) heartbeat(ctx context.Context, epoch string) error {
	fields := []any{keys.MetaHeartbeat, stamp(k.clock.Now()), keys.MetaWriter, k.instance}
	if id := k.store.homeID(); id != "" {
		fields = append(fields, keys.MetaReplID, id)
	}
	return k.store.fenced(ctx, &guard{epoch: epoch, seq: -1}, func(pipe redis.Pipeliner) {
		pipe.HSet(ctx, keys.Meta(k.prefix), fields...)
	})
}

// run renews the lease and writes the heartbeat on real time, beside
// the writer's loop in a goroutine of its own, so neither waits for a
// long reload.
//
// While Redis refuses or does not answer, the tries back off, doubling up
// to 15 s: a rotated password or a full Redis does not mend in a second.
func (k *keeper) run(ctx context.Context) {
	every := min(k.ttl/4, time.Second)
	retry := &backoff.ExponentialBackOff{InitialInterval: 2 * every, Multiplier: 2, MaxInterval: max(15*time.Second, every)}
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			k.beat(ctx)
		}
		wait := every
		if k.obs.lease.failing() {
			wait = retry.NextBackOff()
		} else {
			retry.Reset()
		}
		t.Reset(wait)
	}
}

// release gives the lease up after Run's last step, so a standby takes
// over at once.
func (k *keeper) release() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.leader.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := k.releaseLease(ctx); err != nil {
		k.log.Warn("release lease", "err", err)
		return
	}
	k.leader.Store(false)
	k.log.Info("released the lease")
}

// hold renews the lease when it is ours and takes it when it is free.
// taken reports a lease that was not ours a moment ago: whatever we knew of
// the cache before is stale. When another holds it, holder is its instance
// id. A lease left by an earlier process with the same instance id is
// another process's: it runs out by its TTL.
func (k *keeper) hold(ctx context.Context) (held, taken bool, holder string, err error) {
	key := keys.Lease(k.prefix)
	if bug("skipfence") {
		err := k.rdb.Set(ctx, key, k.value, k.ttl).Err()
		return err == nil, false, "", err
	}
	n, err := renewScript.Run(ctx, k.rdb, []string{key}, k.value, k.ttl.Milliseconds()).Int()
	if isWrongType(err) {
		if cleared, cerr := clearScript.Run(ctx, k.rdb, []string{key}).Int(); cerr == nil && cleared == 1 {
			k.log.Warn("the lease key held another type; deleted it", "key", key)
		}
		n, err = 0, nil
	}
	if err != nil {
		if k.leader.Load() {
			return false, false, "", fmt.Errorf("renew lease: %w", err)
		}
		return false, false, "", fmt.Errorf("take lease: %w", err)
	}
	if n == 1 {
		return true, false, "", nil
	}
	ok, err := k.rdb.SetNX(ctx, key, k.value, k.ttl).Result()
	if err != nil {
		return false, false, "", fmt.Errorf("take lease: %w", err)
	}
	if !ok {
		value, _ := k.rdb.Get(ctx, key).Result()
		holder, _, _ = strings.Cut(value, " ")
		shared := holder == k.instance
		if shared && !k.sharedID {
			k.log.Warn("another process runs with this --instance-id and holds the lease; standing by (give each process its own id)",
				"instance", k.instance)
		}
		k.sharedID = shared
	}
	return ok, ok, holder, nil
}

// releaseLease gives the lease up so a standby takes over at once.
func (k *keeper) releaseLease(ctx context.Context) error {
	return releaseScript.Run(ctx, k.rdb, []string{keys.Lease(k.prefix)}, k.value).Err()
}
