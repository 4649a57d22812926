// Package warmer keeps a Redis cache of Vista's cinemas, films and sessions
// warm. One engine serves the three kinds, each described by a spec
// (spec.go): it reloads a list (fetch.go), diffs it against what the cache
// holds (diff.go, pure), writes the changes with their events in fenced
// batches through the fenced store (write.go, index.go; store, fence.go),
// and checks each session again on a schedule that tightens as its
// showtime nears (checks.go, schedule.go, policy.go). Run (run.go) owns
// the goroutines, as one group: the lease keeper (keeper, keeper.go), the
// writer's loop, the reloads fetched (reload.go) and the checks sent in
// the background; the loop is woken by the schedule's next due time on
// the warmer's clock, by what arrives, and by Settle. The keeper and the
// store tell the observer (observer.go) what they saw of Redis, and the
// probes (health.go) read it. Tests and benchmarks run it as production
// does.
package warmer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"
	"golang.org/x/sync/errgroup"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
)

// Fetcher reads Vista. *vista.Client is one.
type Fetcher interface {
	Cinemas(ctx context.Context) ([]vista.Cinema, error)
	Films(ctx context.Context) ([]vista.Film, error)
	Sessions(ctx context.Context, zones map[string]*time.Location) ([]vista.Session, error)
	CheckSeats(ctx context.Context, ids []string) ([]vista.Seats, []string, error)
}

// Clock tells the time. The schedule, the showtimes and every timestamp the
// warmer writes come from it, so tests run a simulated day in seconds. The
// lease runs on real time, as Redis's TTLs do.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Schema is the cache layout version written to P:meta.
const Schema = "1"

// GCPercent is the GOGC the binary runs with unless GOGC is set: the
// cache is one large, long-lived heap, and collecting at half again its
// size, not twice it, keeps a reload of 500k sessions within a few
// hundred MB. The benchmarks of loads, reloads and steady checks run
// with it too (gcAsTheBinary).
const GCPercent = 50

// Config configures a Warmer. Redis, Vista and InstanceID are required; the
// rest default to the contract's values.
type Config struct {
	Redis      redis.UniversalClient
	Vista      Fetcher
	Prefix     string // default "vista"
	InstanceID string
	LeaseTTL   time.Duration // default 10s

	Policy Policy // default DefaultPolicy()

	// Cron specs of the full reloads (robfig/cron, @every allowed).
	CinemasCron, FilmsCron, SessionsCron string

	StreamMaxLen int64 // default 100000
	KeepRaw      bool

	// Fields names further Vista fields to keep in each kind's hash, under
	// their snake_case names; the Vista client must be given the same.
	Fields vista.Fields

	// MaxDrop is the share of a kind's entries (0 to 1) a full reload may
	// remove at once; a reload that would remove more is held back until
	// a reload ConfirmDropAfter later says the same. Default 0.5; 1 or
	// more never holds one back; to hold back every removal, use a tiny
	// share such as 1e-9.
	MaxDrop float64

	// ShardedEvents publishes the channels with SPUBLISH (Redis 7 sharded
	// pub/sub), so that in a cluster the events stay on the shard that
	// holds the cache; readers SSUBSCRIBE. Off: PUBLISH.
	ShardedEvents bool

	BatchSize int // changes per fenced write; default 500, at most 1000
	// CheckBatch is the most sessions one seat check request carries (the
	// URL bound may make it fewer); default 50. 1 asks for each session on
	// its own, as VistaStorage did, and then nothing rides along early.
	CheckBatch int
	// Windows (v1.2) reads the seats of every session near its showtime,
	// and of the rest of the day, in window queries, when Vista
	// implements WindowFetcher: see window.go and Policy.Later.
	Windows   bool
	Heartbeat time.Duration // default 5s, or half the lease TTL when shorter; the contract wants at most 10s
	Tick      time.Duration // how often Run steps at least, for what runs on real time; default 1s

	// AfterReload, when set, is called after each full reload that went
	// through, on the writer's loop (the binary gives the
	// memory a reload used back to the OS).
	AfterReload func(keys.Kind)

	Clock   Clock        // default the system clock
	Logger  *slog.Logger // default discards
	Metrics *Metrics     // default unregistered
}

// ParseSchedule parses a reload schedule: a five-field cron spec or a
// descriptor such as @hourly or @every 10m.
func ParseSchedule(spec string) (cron.Schedule, error) {
	return cron.ParseStandard(spec)
}

// Warmer keeps the cache. Create it with New, then Run it. Tests and
// benchmarks run it too, on a fake clock, and call Settle after they move
// the clock (see run.go).
type Warmer struct {
	cfg       Config
	rdb       redis.UniversalClient
	log       *slog.Logger
	m         *Metrics
	schedules map[keys.Kind]cron.Schedule
	fields    map[keys.Kind][]string // the data fields of each kind's hash
	specs     map[keys.Kind]*spec

	// stepMu serialises step, and whatever reads or writes the writer's
	// state (st) beside the loop.
	stepMu sync.Mutex
	// The parts the writer's loop works with: the lease keeper
	// (keeper.go), which runs beside it, the fenced store it writes
	// through (fence.go), and what both saw of Redis (observer.go).
	keep  *keeper
	store *store
	obs   *observer

	ready      atomic.Bool
	heldReason atomic.Pointer[string] // set while a drop is held back: why

	// complaints keeps Run's log of failed steps to a line a minute.
	complaints complaints
	// knew is how many entries of each kind this process last held: an
	// empty list on a build anew is judged against it. The loop's own.
	knew map[keys.Kind]int
	// deniedTry is when step last tried while a command was denied.
	deniedTry time.Time
	// evict watches Redis's evictions (evict.go); the loop owns it. evicting
	// says why, for /healthz, while Redis evicts the cache's keys.
	evict    eviction
	evicting atomic.Pointer[string]

	// checksFailing is set while every seat check fails: /readyz says so
	// once it has lasted (see checksFailingFor).
	checksFailing atomic.Pointer[checkFailure]
	lastRebuild   time.Time // when takeOver last started a new epoch; the loop's
	// rebuildWaitSaid: the wait for the next rebuild was logged.
	rebuildWaitSaid bool

	// Run fetches lists in the background of the writer's other work, so a slow or
	// failing list never holds up a seat check: fetchers hand what they
	// got to step through fetched, seat checkers through answers.
	fetched chan fetched
	// aside is a message of fetched that a build's write took early and
	// left for takeFetched (see buildStream): it goes before the others.
	aside *fetched
	// streamed counts the chunks that build streams diffed and handed to
	// a write under way, in all: the tests and the benchmarks read it.
	streamed int
	answers  chan *ask
	arrived  chan struct{}   // wakes the loop when a list or an answer is in
	settles  chan *settle    // Settle's and Reload's requests to the loop
	running  atomic.Bool     // Run is running
	group    *errgroup.Group // Run's goroutines (goAsk)
	asking   atomic.Int64    // goAsk's goroutines not yet done: what may still arrive

	st *state // the writer's state; nil on standby. Owned by the writer's loop (Run), which reads and writes it under stepMu.

	// written is the last epoch and seq this process wrote, kept across
	// states: after a failover, a P:meta behind it is not adopted.
	written struct {
		epoch string
		seq   int64
	}

	chunk int // rows of a list diffed and written at a time: rowChunk, less in tests
	// indexEvery is how many unindexed entities a build lists at a time
	// (writeIndexes): indexEvery, less in tests; indexWrite about how many
	// entries one write of them carries: indexWriteEntries, less in tests;
	// indexHalves the fewest it gathers in two halves at once
	// (listUnindexed): indexHalvesFrom, less in tests.
	indexEvery, indexWrite, indexHalves int
	// noScan: an ACL denies SCAN, said once (readUnlisted).
	noScan atomic.Bool
}

// state is what the writer knows of the cache it writes.
type state struct {
	epoch string
	seq   int64
	cache map[keys.Kind]map[string]*record
	kinds map[keys.Kind]*reloader // each kind's full reloads

	// checkRemoved holds the sessions seat checks removed since the last
	// sessions list was taken, and when: a list fetched before must not
	// bring them back.
	checkRemoved map[string]time.Time
	// doubted holds the sessions seat checks called gone in answers that
	// found none of those asked for, and when (doubt.go); doubtAt is the
	// last such answer, doubtSaid when the doubt was last logged.
	doubted   map[string]time.Time
	doubtAt   time.Time
	doubtSaid time.Time
	removals  removals // what seat checks removed, to say once a minute

	// The schedule (schedule.go): when each session is checked next and
	// when it expires, and the sessions counted by showtime for the tier
	// gauges, so that no step walks every session.
	checker  *checker // the seat checks (checks.go)
	expiries timeline
	shows    showtimes
	offsets  map[int]*showtimes // the same by UTC offset (seconds east), for the window sweeps
	grace    time.Duration      // the policy's, for the expiries
	// since is when this writer began to keep the schedule (the warmer's
	// clock): a check due before was no warmer's to make (see late).
	since time.Time

	// mu guards the cache's maps against a list fetched in the background, which
	// reads them (listing.cached); only the writer's goroutine writes them.
	mu sync.RWMutex
}

// New checks the configuration and returns a Warmer.
func New(cfg Config) (*Warmer, error) {
	if cfg.Redis == nil || cfg.Vista == nil {
		return nil, errors.New("warmer: Redis and Vista are required")
	}
	if cfg.InstanceID == "" {
		return nil, errors.New("warmer: instance id is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "vista"
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	if cfg.Policy == (Policy{}) {
		cfg.Policy = DefaultPolicy()
	}
	if cfg.StreamMaxLen <= 0 {
		cfg.StreamMaxLen = 100000
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	// A batch is one script call; Lua takes at most about 8000 arguments
	// a command, and a batch's index write has two a session.
	cfg.BatchSize = min(cfg.BatchSize, 1000)
	if cfg.CheckBatch <= 0 {
		cfg.CheckBatch = 50
	}
	if cfg.Heartbeat <= 0 || cfg.Heartbeat > 10*time.Second {
		// The contract: at most every 10s; and twice a lease TTL, so
		// that /readyz can tell a cache not kept for a TTL.
		cfg.Heartbeat = min(5*time.Second, max(cfg.LeaseTTL/2, time.Second))
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	specs := map[keys.Kind]string{keys.Cinemas: cfg.CinemasCron, keys.Films: cfg.FilmsCron, keys.Sessions: cfg.SessionsCron}
	defaults := map[keys.Kind]string{keys.Cinemas: "30 5 * * *", keys.Films: "20 5 * * *", keys.Sessions: "10 * * * *"}
	if cfg.MaxDrop <= 0 {
		cfg.MaxDrop = 0.5
	}
	names, err := fieldNames(cfg.Fields)
	if err != nil {
		return nil, fmt.Errorf("warmer: %w", err)
	}
	w := &Warmer{cfg: cfg, rdb: cfg.Redis, log: cfg.Logger, m: cfg.Metrics, schedules: map[keys.Kind]cron.Schedule{},
		fields: names, specs: kindSpecs(names), chunk: rowChunk, indexEvery: indexEvery, indexWrite: indexWriteEntries, indexHalves: indexHalvesFrom,
		fetched: make(chan fetched, len(keys.Kinds)), answers: make(chan *ask, 64), arrived: make(chan struct{}, 1), settles: make(chan *settle),
		evict: eviction{seen: -1}, knew: map[keys.Kind]int{}}
	w.obs = &observer{log: cfg.Logger, m: cfg.Metrics, leaseTTL: cfg.LeaseTTL,
		preflight: func(ctx context.Context) error { return Preflight(ctx, cfg.Redis, cfg.Prefix, cfg.ShardedEvents) }}
	lease := leaseValue(cfg.InstanceID)
	w.store = &store{rdb: cfg.Redis, prefix: cfg.Prefix, lease: lease, log: cfg.Logger, m: cfg.Metrics, obs: w.obs}
	w.keep = newKeeper(cfg, w.obs, w.store, lease)
	w.m.leaseHeld.Set(w.keep.holds)
	w.m.redisUp.Set(func() float64 {
		if w.obs.seen.reachable(time.Now(), w.silenceLimit()) {
			return 1
		}
		return 0
	})
	for _, k := range keys.Kinds {
		spec := specs[k]
		if spec == "" {
			spec = defaults[k]
		}
		s, err := ParseSchedule(spec)
		if err != nil {
			return nil, fmt.Errorf("warmer: %s schedule %q: %w", k, spec, err)
		}
		w.schedules[k] = s
	}
	return w, nil
}

// step does whatever is due at the clock's now: takes the lease or stands
// by, builds or adopts the cache on taking over, takes in the lists and
// seat answers that came, starts the full reloads due, expires sessions
// past their grace and sends the checks of the sessions whose time has
// come. Run's loop calls it, and nothing else does.
func (w *Warmer) step(ctx context.Context) error {
	w.stepMu.Lock()
	defer w.stepMu.Unlock()
	w.keep.beat(ctx)
	if !w.keep.leading() {
		if w.st != nil {
			w.dropState()
		}
		return nil
	}
	if now := time.Now(); w.obs.deniedNow(now) != "" {
		// Redis's ACLs deny a command the writer needs: every step would
		// fail the same way, some after reading the whole cache. Once in
		// deniedRetry, until the operator grants it.
		if now.Sub(w.deniedTry) < deniedRetry && !w.obs.retryNow() {
			return errDeniedWait
		}
		w.deniedTry = now
	}
	w.lookAtEvictions(ctx)
	if w.st != nil && w.store.movedAway() {
		if err := w.moved(ctx); err != nil {
			return w.failed("new_epoch", err)
		}
	}
	lost := w.keep.lostEpoch()
	rebuild := lost != nil && w.st != nil && *lost == w.st.epoch
	taken := w.keep.tookLease()
	if taken && w.st != nil && !rebuild {
		switch same, noMeta := w.unchanged(ctx); {
		case same:
			// The lease went (evicted, or it ran out) and came back, and
			// nobody wrote meanwhile: what the writer knows still holds.
			w.log.Info("took the lease back; nobody wrote meanwhile, so the cache is as this writer knows it", "epoch", w.st.epoch, "seq", w.st.seq)
			taken = false
			w.st.since = w.cfg.Clock.Now() // no warmer kept the schedule meanwhile
		case noMeta:
			// P:meta went too, and nobody has written one since: if the
			// cache's indexes are there, restoreMeta writes it again.
			w.keep.metaMissing()
			taken = false
		}
	}
	if w.keep.metaWentMissing() && w.st != nil && !rebuild && !taken {
		if err := w.restoreMeta(ctx); err != nil {
			return w.failed("restore_meta", err)
		}
	}
	if w.st != nil && w.keep.isLost(w.st.epoch) {
		rebuild = true // restoreMeta found the cache gone
	}
	if taken || w.st == nil || rebuild {
		if err := w.takeOver(ctx, rebuild); err != nil {
			return w.failed("take_over", err)
		}
	}
	now := w.cfg.Clock.Now()
	// Expiry first: a session that ended while no warmer ran says goodbye
	// before the reload that counts what is left.
	if err := w.expire(ctx, now); err != nil {
		return w.failed("expire", err)
	}
	if err := w.mendEvicted(ctx); err != nil {
		return w.failed("mend_evicted", err)
	}
	// What was fetched in the background since the last step is taken in first.
	if err := w.takeFetched(ctx); err != nil {
		return err
	}
	if err := w.takeAnswers(ctx); err != nil {
		return w.failed("check", err)
	}
	if w.st == nil {
		return nil // a write found the lease or the cache moved
	}
	if !w.obs.writes.failing() && w.evict.headroom() && time.Since(w.evict.grew) >= evictSweep && time.Since(w.evict.retried) >= evictSweep {
		// Redis takes writes, has room, and has evicted nothing for a
		// while: a reload it refused, or whose lease or P:meta it
		// evicted, goes again now, once in evictSweep at most. (While
		// it evicts, the retry waits.)
		for _, k := range keys.Kinds {
			if r := w.st.kinds[k]; r.awaitWrites {
				w.log.Info("redis takes the writes again; reloading what it refused", "kind", k)
				r.next, r.awaitWrites = now, false
				w.evict.retried = time.Now()
			}
		}
	}
	for _, k := range keys.Kinds {
		if ctx.Err() != nil {
			return nil
		}
		if now.Before(w.st.kinds[k].next) || w.st.kinds[k].fetching != nil {
			continue
		}
		if need := w.specs[k].needs; need != "" && !w.st.kinds[need].loaded {
			continue // showtimes need the cinemas' zones: wait for their first load
		}
		w.fetchAsync(ctx, k, now)
	}
	w.sendChecks(ctx, now)
	if w.st != nil {
		w.judgeDoubts(now)
		w.sayRemovals()
		w.m.setTiers(w.st.shows.tiers(w.cfg.Policy, now))
		n := len(w.st.cache[keys.Sessions])
		w.st.checker.compact(n)
		w.st.expiries.compact(n)
	}
	return nil
}

// failed decides what an error of a step means for the writer's state and
// returns what is left for the caller to log. A fence that found the lease
// gone means standing by; one that found the cache changed, or a write
// whose outcome is unknown, means reading the cache again before the next
// write; the Redis data gone means a rebuild.
func (w *Warmer) failed(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrLeaseLost):
		w.dropState()
		if w.keep.stepDown() { // unless the lease keeper found it first, and said so
			w.log.Warn("lost the lease while writing; standing by", "op", op)
		}
		return nil
	case errors.Is(err, errCacheLost):
		if w.st != nil {
			w.keep.cacheLost(w.st.epoch)
		}
		w.log.Warn("the cache is gone from Redis; rebuilding", "op", op)
		return nil
	case errors.Is(err, errMetaGone):
		w.keep.metaMissing() // the next step finds out whether the cache went with it
		return nil
	case errors.Is(err, errLeaseGone):
		return nil // nothing was written; the lease keeper takes the lease again
	case errors.Is(err, errRebuildWait):
		return nil
	case errors.Is(err, errMoved):
		return nil // nothing was written; the next step goes on there (moved)
	case errors.As(err, new(*RefusedError)):
		// Redis refused the write before running any of it (out of
		// memory, read-only, credentials): the cache is as the writer
		// knows it. What failed is tried again on its own schedule.
	case errors.Is(err, errStale), errors.Is(err, errWrite):
		w.dropState()
	case errors.Is(err, context.Canceled):
		return nil
	}
	w.m.errors.WithLabelValues(op).Inc()
	w.obs.noteDenied(op, err)
	return &opError{op: op, err: err}
}

// Redis is the client the warmer writes with.
func (w *Warmer) Redis() redis.UniversalClient { return w.rdb }

// redisTrouble reports whether err is one of Redis's that noteWrite or
// noteLease logs already, once a minute.
func redisTrouble(err error) bool {
	return errors.As(err, new(*RefusedError)) || errors.Is(err, errWrite)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
