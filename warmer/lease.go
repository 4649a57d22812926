package warmer

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// ErrLeaseLost is returned by a write that found the lease held by another
// instance (or by nobody): the write changed nothing.
var ErrLeaseLost = errors.New("lease lost")

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
)

// holdLease takes the lease when it is free and renews it when it is ours
// (also when an earlier run with the same instance id left it). It reports
// whether this instance holds it now.
func (w *Warmer) holdLease(ctx context.Context) (bool, error) {
	key := keys.Lease(w.cfg.Prefix)
	ttl := w.cfg.LeaseTTL.Milliseconds()
	n, err := renewScript.Run(ctx, w.rdb, []string{key}, w.cfg.InstanceID, ttl).Int()
	if err != nil {
		return false, err
	}
	if n == 1 {
		return true, nil
	}
	return w.rdb.SetNX(ctx, key, w.cfg.InstanceID, w.cfg.LeaseTTL).Result()
}

// releaseLease gives the lease up so a standby takes over at once.
func (w *Warmer) releaseLease(ctx context.Context) error {
	return releaseScript.Run(ctx, w.rdb, []string{keys.Lease(w.cfg.Prefix)}, w.cfg.InstanceID).Err()
}

// fenced runs one MULTI/EXEC that Redis executes only while the lease is
// still ours: it WATCHes the lease key and checks its holder first, so a
// writer that was paused past its lease and woke up changes nothing. The
// queue function may run more than once (when our own renewal touched the
// lease between WATCH and EXEC) and must queue the same commands each time.
func (w *Warmer) fenced(ctx context.Context, queue func(redis.Pipeliner) error) error {
	key := keys.Lease(w.cfg.Prefix)
	start := time.Now()
	defer func() { w.m.redisWrite.Observe(time.Since(start).Seconds()) }()
	for attempt := 0; attempt < 5; attempt++ {
		err := w.rdb.Watch(ctx, func(tx *redis.Tx) error {
			holder, err := tx.Get(ctx, key).Result()
			if errors.Is(err, redis.Nil) || (err == nil && holder != w.cfg.InstanceID) {
				return ErrLeaseLost
			}
			if err != nil {
				return err
			}
			var qerr error
			_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				qerr = queue(pipe)
				return qerr
			})
			if qerr != nil {
				return qerr
			}
			return err
		}, key)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return ErrLeaseLost
}
