package warmer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// Errors of a fenced write. None of them changed anything in Redis.
var (
	// ErrLeaseLost: the lease is held by another instance, or by nobody.
	ErrLeaseLost = errors.New("lease lost")
	// errCacheLost: P:meta is gone or holds another epoch; Redis lost our
	// data and the cache must be built again under a new epoch.
	errCacheLost = errors.New("the cache is gone from Redis (P:meta missing or another epoch)")
	// errStale: P:meta's seq is not the one we last wrote: someone else
	// wrote while we thought we were the writer. Read the cache again.
	errStale = errors.New("the cache changed under us (P:meta seq moved)")
	// errContention: the watched keys kept changing; try again later.
	errContention = errors.New("the lease or P:meta kept changing during the write")
)

// errWrite marks an error of a write that may or may not have reached
// Redis: the writer's view of the cache can no longer be trusted.
var errWrite = errors.New("write")

// The lease scripts compare the holder before they touch the key, so one
// instance never extends or drops another's lease.
var (
	renewScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)
	releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)
	// clearScript deletes a lease key of another type than a string,
	// which nobody could ever hold.
	clearScript = redis.NewScript(`
local kind = redis.call("TYPE", KEYS[1])["ok"]
if kind ~= "string" and kind ~= "none" then
	redis.call("DEL", KEYS[1])
	return 1
end
return 0`)
)

// leaseValue is what P:lease holds while this process writes: its instance
// id, a space and a token made when the process started, so two processes
// given the same --instance-id never both believe they hold the lease.
func (w *Warmer) leaseValue() string { return w.cfg.InstanceID + " " + w.token }

// holdLease renews the lease when it is ours and takes it when it is free.
// taken reports a lease that was not ours a moment ago: whatever we knew of
// the cache before is stale. A lease left by an earlier process with the
// same instance id is another process's: it runs out by its TTL.
func (w *Warmer) holdLease(ctx context.Context) (held, taken bool, err error) {
	key := keys.Lease(w.cfg.Prefix)
	n, err := renewScript.Run(ctx, w.rdb, []string{key}, w.leaseValue(), w.cfg.LeaseTTL.Milliseconds()).Int()
	if isWrongType(err) {
		if cleared, cerr := clearScript.Run(ctx, w.rdb, []string{key}).Int(); cerr == nil && cleared == 1 {
			w.log.Warn("the lease key held another type; deleted it", "key", key)
		}
		n, err = 0, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("renew lease: %w", err)
	}
	if n == 1 {
		return true, false, nil
	}
	ok, err := w.rdb.SetNX(ctx, key, w.leaseValue(), w.cfg.LeaseTTL).Result()
	if err != nil {
		return false, false, fmt.Errorf("take lease: %w", err)
	}
	if !ok {
		holder, _ := w.rdb.Get(ctx, key).Result()
		shared := strings.HasPrefix(holder, w.cfg.InstanceID+" ") || holder == w.cfg.InstanceID
		if shared && !w.sharedID {
			w.log.Warn("another process runs with this --instance-id and holds the lease; standing by (give each process its own id)",
				"instance", w.cfg.InstanceID)
		}
		w.sharedID = shared
	}
	return ok, ok, nil
}

// releaseLease gives the lease up so a standby takes over at once.
func (w *Warmer) releaseLease(ctx context.Context) error {
	return releaseScript.Run(ctx, w.rdb, []string{keys.Lease(w.cfg.Prefix)}, w.leaseValue()).Err()
}

// guard is what a fenced write expects of P:meta besides the lease: the
// epoch it writes in and, unless seq is negative, the last seq written.
type guard struct {
	epoch string
	seq   int64
}

// fenced runs one MULTI/EXEC that Redis executes only while the lease is
// still ours and P:meta is as g expects: it WATCHes both and checks them
// first, so a writer that was paused past its lease, and even one that got
// the lease back after another wrote, changes nothing when it wakes. The
// queue function may run more than once (when our own heartbeat or lease
// renewal touched a watched key) and must queue the same commands each time.
//
// An error other than the fence's own is wrapped in errWrite.
func (w *Warmer) fenced(ctx context.Context, g *guard, queue func(redis.Pipeliner)) error {
	lease, meta := keys.Lease(w.cfg.Prefix), keys.Meta(w.cfg.Prefix)
	watched := []string{lease}
	if g != nil {
		watched = append(watched, meta)
	}
	start := time.Now()
	defer func() { w.m.redisWrite.Observe(time.Since(start).Seconds()) }()
	for range 5 {
		err := w.rdb.Watch(ctx, func(tx *redis.Tx) error {
			var holder *redis.StringCmd
			var state *redis.SliceCmd
			_, err := tx.Pipelined(ctx, func(pipe redis.Pipeliner) error {
				holder = pipe.Get(ctx, lease)
				if g != nil {
					state = pipe.HMGet(ctx, meta, "epoch", "seq")
				}
				return nil
			})
			if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			if holder.Val() != w.leaseValue() {
				return ErrLeaseLost
			}
			if g != nil {
				epoch, _ := state.Val()[0].(string)
				seq, _ := state.Val()[1].(string)
				if epoch != g.epoch {
					return errCacheLost
				}
				if g.seq >= 0 && seq != strconv.FormatInt(g.seq, 10) {
					return errStale
				}
			}
			_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				queue(pipe)
				return nil
			})
			return err
		}, watched...)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, redis.TxFailedErr):
			continue // a watched key moved between WATCH and EXEC: nothing ran
		case errors.Is(err, ErrLeaseLost), errors.Is(err, errCacheLost), errors.Is(err, errStale):
			return err
		}
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	return errContention
}
