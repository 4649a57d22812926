// The fenced store: a batch of changes and their events becomes one
// script call (prepare, run) that Redis runs only while the lease is
// this writer's and P:meta is as it expects (fence); what Redis answers
// is told apart here (fenceError, RefusedError). The Lua is in lua/. A
// batch that creates many hashes and only creates them goes as a fenced
// MULTI/EXEC instead (bulk.go).
package warmer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
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
	// errMetaGone: P:meta is missing (evicted, deleted) while the lease is
	// ours; whether the cache went with it is for the writer to find out.
	errMetaGone = errors.New("the key P:meta is missing")
	// errLeaseGone: the lease key is missing (evicted, expired): nobody
	// else holds it, and the lease keeper takes it again.
	errLeaseGone = errors.New("the lease key is missing")
	// errRebuildWait: a rebuild under a new epoch came less than a minute
	// after the last one, and waits.
	errRebuildWait = errors.New("the cache was rebuilt less than a minute ago; the next rebuild waits")
)

// errWrite marks an error of a write that may or may not have reached
// Redis: the writer's view of the cache can no longer be trusted.
var errWrite = errors.New("write")

// store is the fenced store: the one way the writer writes to Redis.
type store struct {
	rdb    redis.UniversalClient
	prefix string
	lease  string // the lease's value while this process holds it (keeper.value)
	log    *slog.Logger
	m      *Metrics
	obs    *observer   // told how each write went
	plain  atomic.Bool // Redis cannot read script flags: see load
	noBulk atomic.Bool // an ACL denies transactions: see bulk.go
	is7    atomic.Bool // Redis read the script's flags: it is 7 or later (see canBulk)

	home  atomic.Pointer[string] // the replication id of the Redis the epoch is written to (home.go)
	moved atomic.Bool            // a write found the writer on another Redis: see movedAway
}

// guard is what a fenced write expects of P:meta besides the lease: the
// epoch it writes in and, unless seq is negative, the last seq written;
// and the replication id Redis must have, where not the store's home
// (a new epoch's first write, on the Redis it makes its home).
type guard struct {
	epoch string
	seq   int64
	home  string
}

// fenced runs the commands queue queues as one script that Redis runs
// only while the lease is still ours and P:meta is as g expects: it checks
// both first, in the same atomic step as the writes, so a writer that was
// paused past its lease, and even one that got the lease back after
// another wrote, changes nothing when it wakes. It is one round trip,
// where a fenced MULTI/EXEC takes two; only a bulk write
// (bulk.go) goes that way, for the Redis CPU it saves.
//
// The pipeline given to queue is never sent: its commands are read back
// and handed to the script. hashWrites adds a command of the script's own
// (hashWriteCmd); a command's reply is set only for those.
//
// An error other than the fence's own is wrapped in errWrite.
func (s *store) fenced(ctx context.Context, g *guard, queue func(redis.Pipeliner)) error {
	_, err := s.run(ctx, s.prepare(ctx, g, queue))
	return err
}

// write is a fenced write made ready to send.
type write struct {
	lease, epoch, seq string        // what the fence expects: see fence.lua
	replid            string        // the replication id the Redis must have; "": any (home.go)
	cmds              []redis.Cmder // the commands
	args              []any         // argv's, once made
	replies           []*redis.Cmd  // the hash writes' commands, whose replies run sets
	tx                [][]any       // the commands as a transaction, for a bulk write (bulk.go); else nil
}

// argv is the write's arguments to the fence script: what the fence
// expects, then each command's length and arguments. prepare makes them
// for a write that goes as the script; a bulk write, which goes as a
// transaction, only if it falls back to the script.
func (wr *write) argv() []any {
	if wr.args != nil {
		return wr.args
	}
	n := 4
	for _, c := range wr.cmds {
		n += 1 + len(c.Args())
	}
	argv := make([]any, 0, n)
	argv = append(argv, wr.lease, wr.epoch, wr.seq, wr.replid)
	for _, c := range wr.cmds {
		args := c.Args()
		argv = append(argv, len(args))
		argv = append(argv, args...)
	}
	wr.args = argv
	return argv
}

// prepare queues a fenced write's commands and makes them the script's
// arguments or a transaction's commands. It reads nothing of Redis, so
// apply prepares a batch while Redis runs the one before.
func (s *store) prepare(ctx context.Context, g *guard, queue func(redis.Pipeliner)) *write {
	pipe := s.rdb.Pipeline()
	queue(pipe)
	cmds := pipe.Cmds()
	pipe.Discard()
	epoch, seq, replid := "", "-1", s.homeID()
	if g != nil {
		epoch = g.epoch
		if g.seq >= 0 {
			seq = strconv.FormatInt(g.seq, 10)
		}
		if g.home != "" {
			replid = g.home
		}
	}
	wr := &write{lease: s.lease, epoch: epoch, seq: seq, replid: replid, cmds: cmds}
	for _, c := range cmds {
		if name, _ := c.Args()[0].(string); name == hashWriteCmd {
			wr.replies = append(wr.replies, c.(*redis.Cmd))
		}
	}
	if wr.tx = bulkCommands(cmds); wr.tx == nil {
		wr.argv() // here, while Redis runs the write before
	}
	return wr
}

// run sends prepared writes in order, and sets their hash writes'
// replies: scripts in one round trip, transactions in one each and one
// more (see runAll). Each is fenced on its own, and expects the seq the
// one before leaves: one that fails its fence writes nothing and fails all
// after it. It returns the first error, with how many writes went in
// before it. A write that failed otherwise (a command's error) ran its
// other commands, as MULTI/EXEC does, and the ones after it may have
// run too: the error is errWrite, on which the writer reads the cache
// again.
func (s *store) run(ctx context.Context, wrs ...*write) (int, error) {
	start := time.Now()
	defer func() { s.m.redisWrite.Observe(time.Since(start).Seconds()) }()
	if len(wrs) == 0 {
		return 0, nil
	}
	done, err := s.runAll(ctx, wrs)
	if errors.Is(err, errMoved) {
		s.movedTo(ctx, wrs[done].replid)
	}
	switch {
	case redisTrouble(err):
		s.obs.noteWrite(err, start)
	case err == nil:
		s.obs.seen.keep(time.Now())
		s.m.writes.Add(float64(done))
		s.obs.noteWrite(nil, start)
	default:
		s.obs.noteWrite(nil, start) // the fence said no: Redis answers, and the lease keeper finds out the rest
	}
	return done, err
}

// runAll runs the writes in order: bulk writes as transactions, one
// after another on one connection (see transact), the writes between
// bulk ones as scripts in one round trip.
func (s *store) runAll(ctx context.Context, wrs []*write) (int, error) {
	done := 0
	for done < len(wrs) {
		n := 0
		for done+n < len(wrs) && wrs[done+n].tx != nil && s.canBulk(ctx) {
			n++
		}
		if n > 0 {
			ran, err := s.runBulk(ctx, wrs[done:done+n])
			done += ran
			if err != nil {
				return done, err
			}
			continue
		}
		n = 1
		for done+n < len(wrs) && (wrs[done+n].tx == nil || !s.canBulk(ctx)) {
			n++
		}
		ran, err := s.runScripts(ctx, wrs[done:done+n])
		done += ran
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// runBulk runs bulk writes as transactions, and returns how many ran. A
// write that Redis aborted bulkTries times, or whose transaction an ACL
// denies, goes as the script; the writes after it are left to runAll.
func (s *store) runBulk(ctx context.Context, wrs []*write) (int, error) {
	done, tries := 0, 0
	for done < len(wrs) {
		ran, err := s.transact(ctx, wrs[done:])
		if ran > 0 {
			done, tries = done+ran, 0
		}
		if err == nil {
			continue
		}
		if errors.Is(err, errBulkAborted) {
			if tries++; tries < bulkTries {
				continue
			}
		}
		if bulkDenied(err) && s.noBulk.CompareAndSwap(false, true) {
			s.log.Warn("redis denies the warmer transactions (ACL); large writes go as the script, at more Redis CPU: "+
				"grant the warmer's user +watch +unwatch +multi +exec", "err", err)
		}
		if errors.Is(err, errBulkAborted) || bulkDenied(err) {
			ran, err := s.runScripts(ctx, wrs[done:done+1])
			return done + ran, err
		}
		return done, err
	}
	return done, nil
}

func (s *store) runScripts(ctx context.Context, wrs []*write) (int, error) {
	fenceKeys := []string{keys.Lease(s.prefix), keys.Meta(s.prefix)}
	done := 0
	for loaded := false; ; loaded = true {
		script := s.script()
		if b := bugScript(); b != nil {
			script = b
		}
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, 0, len(wrs)-done)
		for _, wr := range wrs[done:] {
			cmds = append(cmds, script.EvalSha(ctx, pipe, fenceKeys, wr.argv()...))
		}
		_, execErr := pipe.Exec(ctx) // each command's error is read below
		for i, cmd := range cmds {
			res, err := cmd.Slice()
			if cmd.Err() == nil && cmd.Val() == nil {
				// No reply came back for this command: the connection
				// failed before it was read (go-redis would call it a
				// reply of the wrong type).
				err = noReply(execErr)
			}
			if err != nil && !loaded && redis.HasErrorPrefix(err, "NOSCRIPT") {
				// Redis forgot the script (a restart, SCRIPT FLUSH): this
				// write and the ones after it did not run.
				load := s.load
				if b := bugScript(); b != nil { // a warmer made wrong on purpose loads its own
					load = func(ctx context.Context) error { return b.Load(ctx, s.rdb).Err() }
				}
				if err := load(ctx); err != nil {
					return done, fmt.Errorf("%w: %w", errWrite, err)
				}
				break
			}
			if err != nil {
				return done, fenceError(err)
			}
			wr := wrs[done]
			if len(res) != len(wr.replies) {
				return done, fmt.Errorf("%w: the write script answered %d replies for %d hash writes", errWrite, len(res), len(wr.replies))
			}
			for j, r := range res {
				wr.replies[j].SetVal(r)
			}
			done++
			if i == len(cmds)-1 {
				return done, nil
			}
		}
	}
}

// errNoReply is a command to which Redis sent no reply at all.
var errNoReply = errors.New("redis sent no reply (the connection failed)")

// noReply is the error of a command that got no reply: Redis's error
// answer when the pipeline got one (the connection's AUTH refused, say),
// else errNoReply with what the connection said.
func noReply(execErr error) error {
	var rerr redis.Error
	switch {
	case errors.As(execErr, &rerr):
		return execErr // Redis answered, with an error (WRONGPASS, say)
	case execErr != nil:
		return fmt.Errorf("%w: %w", errNoReply, execErr)
	}
	return errNoReply
}

// script returns the fence script this Redis runs: with its flags (Redis
// 7), or without them where Redis cannot read them (the demo's embedded
// Redis, Redis 6).
func (s *store) script() *redis.Script {
	if s.plain.Load() {
		return plainFenceScript
	}
	return fenceScript
}

// load loads the fence script, falling back to the one without flags
// when Redis cannot compile them.
func (s *store) load(ctx context.Context) error {
	err := s.script().Load(ctx, s.rdb).Err()
	if err != nil && !s.plain.Load() && strings.Contains(err.Error(), "compiling script") {
		s.log.Debug("redis cannot read script flags (not Redis 7); a write it refuses for want of memory may be half done, and is then read back")
		s.plain.Store(true)
		err = s.script().Load(ctx, s.rdb).Err()
	}
	if err == nil && !s.plain.Load() {
		s.is7.Store(true)
	}
	return err
}

// canBulk reports whether a bulk write may go as a transaction: not where
// an ACL denies one, and only on Redis 7 or later, where a watched key
// that expires, even one not yet deleted, aborts EXEC (before 6.0.9 it
// did not; before 7.0, not one expired but not yet deleted): the lease
// running out between the fence's reads and EXEC must stop the writes,
// as the script's own check does. Whether Redis is 7 it learns by
// loading the script with its flags, once.
func (s *store) canBulk(ctx context.Context) bool {
	if s.noBulk.Load() || s.plain.Load() {
		return false
	}
	if !s.is7.Load() {
		_ = s.load(ctx) // sets is7 or plain; on another error, the script goes and this is asked again
	}
	return s.is7.Load()
}

// fenceError names what the fence script found; an answer by which Redis
// refused the script before it ran is a *RefusedError; another error is
// wrapped in errWrite.
func fenceError(err error) error {
	switch msg := err.Error(); {
	case strings.HasPrefix(msg, "VWFENCE lease"):
		return ErrLeaseLost
	case strings.HasPrefix(msg, "VWFENCE epoch"):
		return errCacheLost
	case strings.HasPrefix(msg, "VWFENCE nometa"):
		return errMetaGone
	case strings.HasPrefix(msg, "VWFENCE nolease"):
		return errLeaseGone
	case strings.HasPrefix(msg, "VWFENCE seq"):
		return errStale
	case strings.HasPrefix(msg, "VWFENCE moved"):
		return errMoved
	}
	code, why := refusal(err)
	switch {
	case code == "acl" && strings.Contains(err.Error(), "script"):
		// A command inside the script was denied: the script ran on past
		// it, as MULTI/EXEC would, so something was written.
		return fmt.Errorf("%w: %w", errWrite, err)
	case code != "":
		return &RefusedError{Why: why, Err: err}
	}
	return fmt.Errorf("%w: %w", errWrite, err)
}

// RefusedError is a write Redis refused as a whole before running any of
// it: nothing was written, so the writer's view of the cache still holds.
type RefusedError struct {
	Why string // what it means for the operator, e.g. "redis is out of memory"
	Err error  // Redis's answer
}

func (e *RefusedError) Error() string { return e.Why + ": " + e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// Refusal says what an error answer of Redis's means when it refused a
// command without running it: a short code (oom, readonly, auth, acl,
// not_serving) and a reason for the operator; "" for any other error.
func Refusal(err error) (code, why string) { return refusal(err) }

// refusal says what an error answer of Redis's means when it refused a
// command without running it: a short code for the metric and a reason
// for the operator; "" for any other error.
func refusal(err error) (code, why string) {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return "", ""
	}
	msg := rerr.Error()
	first, _, _ := strings.Cut(msg, " ")
	switch {
	case first == "NOPERM", strings.Contains(msg, "can't run this command"),
		strings.Contains(msg, "ACL failure in script"), strings.Contains(msg, "no permissions to run"):
		return "acl", (&DeniedError{Command: deniedCommand(rerr), Err: rerr}).Error()
	case first == "ERR" && strings.Contains(msg, "unknown command"):
		return "unknown_command", "redis does not know a command the warmer sends (" + excerpt(msg) + "): " +
			"is --redis-url a Sentinel's port? give redis-sentinel://host:port/MASTER instead"
	}
	switch first {
	case "OOM":
		return "oom", "redis is out of memory (maxmemory)"
	case "READONLY":
		return "readonly", "redis is read-only (a replica)"
	case "NOAUTH", "WRONGPASS":
		return "auth", "redis refuses the credentials"
	case "ERR":
		if strings.Contains(msg, "unauthenticated") {
			// What Redis answers a pipeline whose first command NOAUTH
			// refused.
			return "auth", "redis refuses the credentials"
		}
	case "MASTERDOWN", "LOADING", "BUSY", "CLUSTERDOWN", "TRYAGAIN", "MISCONF":
		return "not_serving", "redis is not serving writes (" + first + ")"
	}
	return "", ""
}

// fenceScript checks the fence, then runs the commands of ARGV.
//
// KEYS: the lease, P:meta. ARGV: the lease's value as ours, the epoch
// P:meta must hold ("": no P:meta check), the seq it must hold ("-1": any),
// the replication id Redis must have ("": any; see home.go);
// then each command as its number of arguments and the arguments, its
// name first. A hashWriteCmd is run here (see hashWriteSource) and its
// reply returned, one per such command, in order; the other commands'
// replies are not returned. As in MULTI/EXEC, a command that fails does
// not stop the others (the seq written to P:meta must stay in step with
// the events sent); the first error is the script's answer.
//
// Every key the commands name is under the lease's prefix; with a hash-tag
// prefix they share its slot, as Redis Cluster wants of one script.
//
// Its first line declares it a script that writes (Redis 7 script flags):
// a replica refuses it with READONLY, and a Redis over maxmemory with OOM,
// before it runs a command. Such an answer means nothing was written.
var (
	fenceScript = redis.NewScript("#!lua\n" + fenceSource)
	// plainFenceScript is fenceScript without its flags, for a Redis
	// older than 7 and the demo's embedded Redis.
	plainFenceScript = redis.NewScript(fenceSource)
)

// fenceSource is the fence script: the check, the hash write, the run.
var fenceSource = fenceLua + hashWriteLua + runLua
