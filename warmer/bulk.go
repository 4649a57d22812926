// The fenced store's second way in: a write that only creates hashes and
// indexes them (a cold load, a reload that finds many new sessions, a
// build's indexes written whole) goes as MULTI/EXEC under WATCH rather
// than as the script. Redis runs plain commands for less CPU than the
// script's calls of the same commands: every argument of a script
// becomes a Lua string first, and every redis.call converts them again.
// On a cold load of 100k sessions that was 1.4-1.5 times the Redis CPU
// of plain pipelined writes; as a transaction it is 1.1-1.2 times. The
// price is a round trip (WATCH, the fence's reads and MULTI; then the
// commands and EXEC: two where the script takes one; a run of such
// writes one more in all, see transact), which only a large write can
// afford; so a write goes this way only when it creates at least
// bulkHashes hashes (and has no command of the script's own that must
// read before it writes, hashWriteCmd) or adds at least bulkArgs
// arguments' worth of index entries and nothing else, and only on Redis
// 7 or later (see canBulk).
package warmer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// bulkHashes is the fewest new hashes a write goes as a transaction for.
const bulkHashes = 16

// bulkArgs is the fewest arguments a write of index entries alone (ZADD,
// SADD) goes as a transaction for: a build's indexes (writeIndexes), a
// thousand entries and more.
const bulkArgs = 2048

// bulkTries is how often a transaction is tried before its write goes as
// the script: one is aborted when a key it watches changes between the
// fence's reads and EXEC, which the lease keeper's own renewal can do.
const bulkTries = 3

// bulkCommands returns a write's commands as a transaction sends them, or
// nil when the write is not one for a transaction (see the file's
// comment). The hashNewCmds become what hashnew in lua/hashwrite.lua
// runs: one DEL of all their keys, where the first of them was, then an
// HSET and an EXPIREAT for each; the hashFreshCmds, the HSET and
// EXPIREAT only. One DEL of many keys costs Redis a
// fraction of a DEL each; the keys are distinct (a batch changes an
// entity once), and nothing between the first new hash and the others
// touches them.
func bulkCommands(cmds []redis.Cmder) [][]any {
	news, args, adds := 0, 0, 0
	for _, c := range cmds {
		switch c.Args()[0] {
		case hashWriteCmd:
			return nil
		case hashNewCmd, hashFreshCmd:
			news++
		case "zadd", "sadd":
			adds++
		}
		args += len(c.Args())
	}
	if news < bulkHashes && (args < bulkArgs || adds < len(cmds)) {
		return nil
	}
	out := make([][]any, 0, len(cmds)+news+1)
	var del []any
	for _, c := range cmds {
		args := c.Args()
		if args[0] != hashNewCmd && args[0] != hashFreshCmd {
			out = append(out, args)
			continue
		}
		expireAt, key := args[1], args[3]
		if args[0] == hashNewCmd { // a fresh one's key holds nothing to delete
			if del == nil {
				del = make([]any, 1, news+1)
				del[0] = "del"
				out = append(out, nil) // the DEL, filled in below
			}
			del = append(del, key)
		}
		out = append(out, args[2:]) // hset, key, fields: no copy
		if expireAt != "" {
			out = append(out, []any{"expireat", key, expireAt})
		}
	}
	for i := range out {
		if out[i] == nil {
			out[i] = del
			break
		}
	}
	return out
}

// errBulkAborted is a transaction Redis did not run because a key it
// watched changed before EXEC.
var errBulkAborted = errors.New("the transaction was aborted: the lease or P:meta changed before EXEC")

// transact runs bulk writes, in order, each as MULTI/EXEC fenced as the
// script fences: it WATCHes the lease and P:meta, reads them, checks them
// as fence.lua does, and only then sends the commands. Redis runs none of
// them if either key changed after WATCH (another writer took the lease,
// the lease expired, P:meta moved): so a writer that is no longer the
// writer changes nothing, as with the script.
//
// A write takes one round trip, and the first one more: WATCH, the
// fence's reads and MULTI of the first write in one; then, for each, its
// commands and EXEC together with the WATCH, the fence's reads and MULTI
// of the next. The next write's reads run after EXEC, so they see the
// seq it left. A cold load of 100k sessions is some 200 writes, and each
// round trip saved is one in which Redis would wait on the warmer.
// When the fence says no, an EXEC of nothing ends the transaction (EXEC
// ends the WATCH, and it is a command the warmer is granted; DISCARD is
// not). No UNWATCH round trip follows. The commands go only once Redis
// took MULTI: were it refused (an ACL, a busy Redis) with the commands
// behind it in the same write, Redis would run them one by one, outside
// any transaction and any fence.
//
// Each round trip starts with an UNWATCH, which changes nothing there
// (before the WATCH; queued inside the transaction, which has unwatched
// its keys by the time it runs the queue) but is an answer go-redis
// never takes for a reason to send the round trip again: it retries a
// pipeline whose first command Redis refused with LOADING, TRYAGAIN or
// the like, and a second WATCH inside the MULTI of the first try, or
// the commands sent again after Redis aborted the transaction, would
// run outside it. UNWATCH names no key, so no Cluster node redirects it,
// and Redis takes it while loading, stale or busy.
//
// It returns how many of wrs Redis ran, and why the next did not run:
// the fence's own errors; a *RefusedError when Redis refused a command
// as it was queued, so that EXEC ran nothing; errWrite when EXEC ran the
// commands and one failed; and errBulkAborted.
func (s *store) transact(ctx context.Context, wrs []*write) (int, error) {
	lease, meta := keys.Lease(s.prefix), keys.Meta(s.prefix)
	done := 0
	err := s.onOneConn(ctx, func(tx *redis.Tx) error {
		var open *opening
		_, _ = tx.Pipelined(ctx, func(p redis.Pipeliner) error {
			_ = p.Process(ctx, redis.NewStatusCmd(ctx, "unwatch"))
			open = s.open(ctx, p)
			return nil
		})
		for i, wr := range wrs {
			if err := open.check(ctx, tx, wr); err != nil {
				return err
			}
			queued := make([]*redis.Cmd, len(wr.tx))
			var exec *redis.Cmd
			var next *opening
			_, _ = tx.Pipelined(ctx, func(p redis.Pipeliner) error {
				_ = p.Process(ctx, redis.NewStatusCmd(ctx, "unwatch"))
				for i, args := range wr.tx {
					queued[i] = p.Do(ctx, args...)
				}
				exec = p.Do(ctx, "exec")
				if i+1 < len(wrs) {
					next = s.open(ctx, p)
				}
				return nil
			})
			if err := execOutcome(ctx, tx, queued, exec); err != nil {
				if next != nil {
					next.end(ctx, tx)
				}
				return err
			}
			done++
			open = next
		}
		return nil
	}, lease, meta)
	switch {
	case err == nil:
		return done, nil
	case errors.Is(err, redis.TxFailedErr):
		return done, errBulkAborted
	}
	if fe := (*fenceErr)(nil); errors.As(err, &fe) {
		return done, fe.err
	}
	if errors.Is(err, errWrite) {
		return done, err
	}
	return done, fenceError(err)
}

// opening is a transaction asked for: its WATCH, the fence's reads and
// its MULTI, as Redis answered them.
type opening struct {
	watch, multi *redis.StatusCmd
	holder       *redis.StringCmd // nil: the fence skipped (a chaos build's bug)
	m            *redis.SliceCmd
	info         *redis.StringCmd // INFO replication, where the store knows its home; else nil
}

// open queues what opens a transaction: WATCH of the lease and P:meta,
// the fence's reads of them, and MULTI.
func (s *store) open(ctx context.Context, p redis.Pipeliner) *opening {
	lease, meta := keys.Lease(s.prefix), keys.Meta(s.prefix)
	o := &opening{watch: redis.NewStatusCmd(ctx, "watch", lease, meta)}
	_ = p.Process(ctx, o.watch)
	if !bug("skipfence") {
		o.holder = p.Get(ctx, lease)
		o.m = p.HMGet(ctx, meta, keys.MetaEpoch, keys.MetaSeq)
		if s.homeID() != "" {
			o.info = p.Info(ctx, "replication")
		}
	}
	o.multi = redis.NewStatusCmd(ctx, "multi")
	_ = p.Process(ctx, o.multi)
	return o
}

// check says whether wr's commands may go into the transaction opened:
// Redis took MULTI, and the fence's reads are as wr expects. When they
// may not, it ends what was opened.
func (o *opening) check(ctx context.Context, tx *redis.Tx, wr *write) error {
	err := firstErr(o.watch.Err(), o.multi.Err())
	if err == nil && o.holder != nil {
		err = fenceCheck(o.holder, o.m, wr.lease, wr.epoch, wr.seq)
	}
	if err == nil && o.holder != nil && wr.replid != "" {
		err = homeCheck(o.info, wr.replid)
	}
	if err != nil {
		o.end(ctx, tx)
	}
	return err
}

// end ends what was opened with nothing queued: the transaction with an
// EXEC of nothing (where an ACL refuses EXEC, DISCARD); when Redis did
// not take MULTI, the WATCH with an UNWATCH (a WATCH left standing would
// abort a later transaction on this connection).
func (o *opening) end(ctx context.Context, tx *redis.Tx) {
	if o.multi.Err() != nil {
		_ = tx.Process(ctx, redis.NewStatusCmd(ctx, "unwatch"))
		return
	}
	if err := tx.Process(ctx, redis.NewCmd(ctx, "exec")); err != nil && !errors.Is(err, redis.Nil) {
		_ = tx.Process(ctx, redis.NewStatusCmd(ctx, "discard"))
	}
}

// firstErr returns the first of errs that is not nil.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// onOneConn runs fn on one connection to the server that holds keys (the
// fence's: one slot), as a go-redis transaction whose WATCH fn sends
// itself, in its first round trip. A Redis Cluster client only hands out
// such a connection with the keys WATCHed first, in a round trip of its
// own, and sends an UNWATCH when fn is done, in another: fn's WATCH of
// them again changes nothing.
func (s *store) onOneConn(ctx context.Context, fn func(*redis.Tx) error, keys ...string) error {
	if c, ok := s.rdb.(*redis.Client); ok { // a single Redis, or Sentinel's master
		return c.Watch(ctx, fn)
	}
	return s.rdb.Watch(ctx, fn, keys...)
}

// execOutcome reads what Redis answered to a transaction's commands and
// its EXEC: nil when EXEC ran them all; redis.TxFailedErr when a watched
// key changed and nothing ran; a command's refusal as it was queued
// (nothing ran); errWrite when EXEC ran them and one failed, or when it
// cannot be told whether EXEC ran.
func execOutcome(ctx context.Context, tx *redis.Tx, queued []*redis.Cmd, exec *redis.Cmd) error {
	res, err := exec.Slice()
	var rerr redis.Error
	if v, ok := exec.Val().([]any); ok && err != nil && !errors.As(err, &rerr) {
		// EXEC's answer was read, and the connection failed on a later
		// reply of its round trip (the next write's opening, see
		// transact): go-redis gives every command not yet answered that
		// error, EXEC included. It ran.
		res, err = v, nil
	}
	switch {
	case errors.Is(err, redis.Nil):
		return redis.TxFailedErr
	case err != nil && redis.HasErrorPrefix(err, "EXECABORT"):
		// Redis refused a command as it was queued (OOM, READONLY, an
		// ACL): that command's error says why; none ran.
		for _, c := range queued {
			if c.Err() != nil {
				return fmt.Errorf("%w (%w)", c.Err(), err)
			}
		}
		return err
	case err != nil:
		if errors.As(err, &rerr) {
			// Redis refused EXEC with an error of its own; nothing ran.
			// (Redis 7 answers an EXEC it refuses for an ACL or BUSY with
			// EXECABORT, and ends the transaction itself; DISCARD ends it
			// wherever it is still open.)
			_ = tx.Process(ctx, redis.NewStatusCmd(ctx, "discard"))
			return err
		}
		return fmt.Errorf("%w: %w", errWrite, err) // the connection failed: EXEC may have run
	}
	for _, r := range res {
		if e, ok := r.(error); ok {
			return fmt.Errorf("%w: %w", errWrite, e) // it ran, and this command failed
		}
	}
	return nil
}

// fenceErr carries the fence's finding out of Watch's function.
type fenceErr struct{ err error }

func (e *fenceErr) Error() string { return e.err.Error() }

// fenceCheck is fence.lua in Go, on what a transaction read under WATCH:
// the lease's holder must be ours; unless epoch is "", P:meta must hold
// it, and unless seq is "-1", that seq.
func fenceCheck(holder *redis.StringCmd, m *redis.SliceCmd, ours, epoch, seq string) error {
	h, err := holder.Result()
	switch {
	case errors.Is(err, redis.Nil):
		return &fenceErr{errLeaseGone}
	case err != nil:
		return err
	case h != ours:
		return &fenceErr{ErrLeaseLost}
	}
	if epoch == "" {
		return nil
	}
	vals, err := m.Result()
	if err != nil {
		return err
	}
	have, _ := vals[0].(string)
	switch {
	case vals[0] == nil:
		return &fenceErr{errMetaGone}
	case have != epoch:
		return &fenceErr{errCacheLost}
	}
	if n, _ := vals[1].(string); seq != "-1" && n != seq {
		return &fenceErr{errStale}
	}
	return nil
}

// bulkDenied reports whether err is an ACL's refusal of the transaction's
// own commands (WATCH, MULTI, EXEC), which the script does not need.
func bulkDenied(err error) bool {
	code, _ := refusal(err)
	if code != "acl" {
		return false
	}
	switch strings.ToLower(deniedCommand(err)) {
	case "watch", "multi", "exec", "unwatch", "discard":
		return true
	}
	return false
}
