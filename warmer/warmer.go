// Package warmer keeps a Redis cache of Vista's cinemas, films and sessions
// warm. One engine serves the three kinds, each described by a spec
// (spec.go): it reloads a list (fetch.go), diffs it against what the cache
// holds (diff.go, pure), writes the changes with their events in fenced
// batches (write.go, lease.go), and checks each session again on a
// schedule that tightens as its showtime nears (checks.go, schedule.go,
// policy.go). Run (run.go) owns the goroutines: the lease keeper, the
// writer's loop, the reloads fetched (reload.go) and the checks sent in
// the background; the loop is woken by the schedule's next due time on
// the warmer's clock, by what arrives, and by Settle. Tests and
// benchmarks run it as production does.
package warmer

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"

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
	Heartbeat  time.Duration // default 5s, or half the lease TTL when shorter; the contract wants at most 10s
	Tick       time.Duration // how often Run steps at least, for what runs on real time; default 1s

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

	// stepMu serialises step; leaseMu serialises leaseAndBeat, which Run also calls
	// from its own goroutine so the lease and heartbeat outlive a long reload.
	stepMu  sync.Mutex
	leaseMu sync.Mutex

	leader     atomic.Bool            // this instance holds the lease
	taken      atomic.Bool            // the lease was just taken: read the cache before writing
	lost       atomic.Pointer[string] // the epoch the heartbeat found gone from Redis
	ready      atomic.Bool
	heldReason atomic.Pointer[string] // set while a drop is held back: why

	// How the lease and the writes have gone lately, for /healthz.
	leaseTrouble, writeTrouble trouble
	// complaints keeps Run's log of failed steps to a line a minute.
	complaints complaints
	// knew is how many entries of each kind this process last held: an
	// empty list on a build anew is judged against it. The loop's own.
	knew map[keys.Kind]int
	// denied is the last command Redis's ACLs denied, for /healthz;
	// deniedTry when Step last tried while one was (the loop's own).
	denied    denial
	deniedTry time.Time
	// evict watches Redis's evictions (evict.go); the loop owns it. evicting
	// says why, for /healthz, while Redis evicts the cache's keys.
	evict    eviction
	evicting atomic.Pointer[string]

	metaGone atomic.Bool // a write found P:meta missing: see restoreMeta
	// checksFailing is set while every seat check fails: /readyz says so
	// once it has lasted (see checksFailingFor).
	checksFailing atomic.Pointer[checkFailure]
	lastRebuild   time.Time // when takeOver last started a new epoch; the loop's
	// rebuildWaitSaid: the wait for the next rebuild was logged.
	rebuildWaitSaid bool
	plainFence      atomic.Bool            // Redis cannot read script flags: see loadFence
	epochSeen       atomic.Pointer[string] // the epoch the writer works in, for the heartbeat

	lastRenew, lastBeat time.Time              // real time, guarded by leaseMu
	lastRole            time.Time              // real time ROLE was last asked, guarded by leaseMu
	renewedAt           atomic.Int64           // lastRenew, for the lease_held gauge (Unix ns)
	replid              atomic.Pointer[string] // the replication id of the Redis written to, as last read
	seen                seen                   // what the lease keeper saw, for the probes
	standing            bool                   // said that we stand by, guarded by leaseMu
	sharedID            bool                   // said that another process has our id, guarded by leaseMu

	// token tells this process from another given the same instance id.
	token string

	// Run fetches lists in the background of the writer's other work, so a slow or
	// failing list never holds up a seat check: fetchers hand what they
	// got to step through fetched, and Run waits for them when it stops.
	fetched  chan fetched
	answers  chan *ask
	arrived  chan struct{} // wakes Run when a list is in
	settles  chan *settle  // Settle's and Reload's requests to Run
	running  atomic.Bool   // Run is running
	fetchers sync.WaitGroup

	st *state // the writer's state; nil on standby. Owned by the writer's loop (Run), which reads and writes it under stepMu.

	// written is the last epoch and seq this process wrote, kept across
	// states: after a failover, a P:meta behind it is not adopted.
	written struct {
		epoch string
		seq   int64
	}

	chunk int // rows of a list diffed and written at a time: rowChunk, less in tests
}

// state is what the writer knows of the cache it writes.
type state struct {
	epoch      string
	seq        int64
	cache      map[keys.Kind]map[string]*record
	quiet      map[keys.Kind]bool // the next reload is part of a build from nothing
	nextReload map[keys.Kind]time.Time
	loaded     map[keys.Kind]bool
	loadedAt   map[keys.Kind]string    // P:meta's loaded:{kind} as this writer wrote or read it
	held       map[keys.Kind]*heldDrop // drops held back, see judgeDrop
	failures   map[keys.Kind]int       // full reloads failed in a row
	emptySince map[keys.Kind]time.Time // an empty list on a build anew was first refused (judgeEmptyBuild)
	// awaitWrites marks the kinds whose reload Redis refused: they reload
	// as soon as Redis takes the writes again.
	awaitWrites map[keys.Kind]bool
	fetching    map[keys.Kind]*fetchRun // the list of a kind being fetched, if one is
	intakes     map[keys.Kind]*intake   // lists being taken in, chunk by chunk

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
	checks, expiries timeline
	shows            showtimes
	inflight         map[string]bool // sessions asked for whose answers are not written yet
	asking           map[*ask]bool   // checks sent whose answers have not come
	lone             []*ask          // answers calling their one session gone, waiting for earlier ones (takeAnswers)
	grace            time.Duration   // the policy's, for the expiries
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
		fields: names, specs: kindSpecs(names), token: newEpoch(), chunk: rowChunk,
		fetched: make(chan fetched, len(keys.Kinds)), answers: make(chan *ask, 64), arrived: make(chan struct{}, 1), settles: make(chan *settle),
		evict: eviction{seen: -1}, knew: map[keys.Kind]int{}}
	w.m.leaseHeld.Set(w.holds)
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

// Role returns "writer" or "standby".
func (w *Warmer) Role() string {
	if w.leader.Load() {
		return "writer"
	}
	return "standby"
}

// Ready reports whether the cache this instance serves is warm: as writer,
// once the first full load of all three lists is in Redis and while no
// drop is held back; on standby, once the writer's cache says so.
func (w *Warmer) Ready(ctx context.Context) bool {
	ready, _ := w.Readiness(ctx)
	return ready
}

// Readiness is Ready with the reason when not ready. It answers from what
// the lease keeper and the writer saw, never asking Redis.
func (w *Warmer) Readiness(context.Context) (ready bool, reason string) {
	now := time.Now()
	if w.leader.Load() {
		if why := w.deniedNow(now); why != "" {
			return false, why
		}
		if why := w.refused(); why != "" {
			return false, "the writer's writes are refused: " + why
		}
		if !w.ready.Load() {
			return false, "the first full load of cinemas, films and sessions is not in Redis yet"
		}
		if ago := w.seen.keptAgo(now); ago > w.keptWithin() {
			return false, fmt.Sprintf("the cache has not been kept for %s: no write or heartbeat went through", ago.Round(time.Second))
		}
		if why := w.evicting.Load(); why != nil {
			return false, *why
		}
		if r := w.heldReason.Load(); r != nil {
			return false, *r
		}
		// Every check has failed for a while, and one failed lately: a
		// failure long ago that no check followed (none was due) is not
		// news of the seats now.
		if f, now := w.checksFailing.Load(), w.cfg.Clock.Now(); f != nil && now.Sub(f.since) > w.checksFailingFor() &&
			now.Sub(f.last) <= w.checksFailingFor() {
			return false, fmt.Sprintf("seat checks have failed for %s: %s", now.Sub(f.since).Round(time.Second), f.err)
		}
		return true, ""
	}
	at, beat, loaded := w.seen.meta()
	switch {
	case at.IsZero() || now.Sub(at) > w.keptWithin():
		return false, "cannot read the cache's meta from redis"
	case len(loaded) < len(keys.Kinds):
		return false, "the writer has not loaded cinemas, films and sessions yet"
	case beat.IsZero():
		return false, "no writer's heartbeat in P:meta"
	}
	// By this process's clock, not the writer's stamp: two hosts' clocks
	// may disagree by more than a lease TTL.
	if still := w.seen.beatStill(now); still > w.keptWithin() {
		return false, fmt.Sprintf("no writer keeps the cache: its heartbeat has not moved for %s", still.Round(time.Second))
	}
	return true, ""
}

// leaseAndBeat takes or renews the lease and, as writer, writes the heartbeat when
// they are due, then reads P:meta's heartbeat and reloads (and, now and
// then, Redis's role) for the probes. It runs on real time.
func (w *Warmer) leaseAndBeat(ctx context.Context) {
	w.leaseMu.Lock()
	defer w.leaseMu.Unlock()
	now := time.Now()
	answered := true
	done := w.seen.ask()
	defer func() { done(answered) }()
	if !w.leader.Load() || now.Sub(w.lastRenew) >= w.cfg.LeaseTTL/3 {
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
			w.lastRenew, w.standing = now, false
			w.renewedAt.Store(now.UnixNano())
			if taken {
				w.taken.Store(true)
			}
			if !w.leader.Swap(true) {
				w.log.Info("took the lease; writing", "instance", w.cfg.InstanceID)
			}
		default:
			if w.leader.Swap(false) {
				w.log.Warn("lost the lease; standing by", "instance", w.cfg.InstanceID, "writer", holder)
			} else if !w.standing {
				w.log.Info("another instance writes; standing by", "instance", w.cfg.InstanceID, "writer", holder)
			}
			w.standing = true
		}
	}
	epoch := w.epochSeen.Load()
	if w.leader.Load() && epoch != nil && now.Sub(w.lastBeat) >= w.cfg.Heartbeat {
		err := w.heartbeat(ctx, *epoch)
		switch {
		case err == nil:
			w.lastBeat = now
			w.m.heartbeat.Set(float64(now.Unix()))
		case errors.Is(err, errCacheLost):
			w.log.Warn("the cache is gone from Redis; rebuilding", "epoch", *epoch)
			w.lost.Store(epoch)
		case errors.Is(err, errMetaGone):
			w.metaGone.Store(true) // the next step finds out whether the cache went with it
		case errors.Is(err, errLeaseGone):
			w.lastRenew = time.Time{} // take it again at the next leaseAndBeat
		case ctx.Err() == nil:
			w.m.errors.WithLabelValues("heartbeat").Inc() // noteWrite logged it
		}
	}
	if answered && ctx.Err() == nil {
		answered = w.look(ctx, now)
	}
}

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
	if _, cluster := w.rdb.(*redis.ClusterClient); !cluster && now.Sub(w.lastRole) >= roleEvery {
		// A replica answers reads; a warmer on one can neither write nor
		// take over. (In a cluster, go-redis sends writes to masters.)
		w.lastRole = now
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
	renewed := time.Unix(0, w.renewedAt.Load())
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

// step does whatever is due at the clock's now: takes the lease or stands
// by, builds or adopts the cache on taking over, takes in the lists and
// seat answers that came, starts the full reloads due, expires sessions
// past their grace and sends the checks of the sessions whose time has
// come. Run's loop calls it, and nothing else does.
func (w *Warmer) step(ctx context.Context) error {
	w.stepMu.Lock()
	defer w.stepMu.Unlock()
	w.leaseAndBeat(ctx)
	if !w.leader.Load() {
		if w.st != nil {
			w.dropState()
		}
		return nil
	}
	if now := time.Now(); w.deniedNow(now) != "" {
		// Redis's ACLs deny a command the writer needs: every step would
		// fail the same way, some after reading the whole cache. Once in
		// deniedRetry, until the operator grants it.
		if now.Sub(w.deniedTry) < deniedRetry {
			return errDeniedWait
		}
		w.deniedTry = now
	}
	w.lookAtEvictions(ctx)
	lost := w.lost.Swap(nil)
	rebuild := lost != nil && w.st != nil && *lost == w.st.epoch
	taken := w.taken.Swap(false)
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
			w.metaGone.Store(true)
			taken = false
		}
	}
	if w.metaGone.Swap(false) && w.st != nil && !rebuild && !taken {
		if err := w.restoreMeta(ctx); err != nil {
			return w.failed("restore_meta", err)
		}
	}
	if lost := w.lost.Load(); lost != nil && w.st != nil && *lost == w.st.epoch {
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
	if len(w.st.awaitWrites) > 0 && !w.writeTrouble.failing() && w.evict.headroom() {
		for k := range w.st.awaitWrites {
			w.log.Info("redis takes the writes again; reloading what it refused", "kind", k)
			w.st.nextReload[k] = now
		}
		clear(w.st.awaitWrites)
	}
	for _, k := range keys.Kinds {
		if ctx.Err() != nil {
			return nil
		}
		if now.Before(w.st.nextReload[k]) || w.st.fetching[k] != nil {
			continue
		}
		if need := w.specs[k].needs; need != "" && !w.st.loaded[need] {
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
		w.st.checks.compact(n)
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
		if w.leader.Swap(false) { // unless the lease keeper found it first, and said so
			w.log.Warn("lost the lease while writing; standing by", "op", op)
		}
		return nil
	case errors.Is(err, errCacheLost):
		if w.st != nil {
			w.lost.Store(&w.st.epoch)
		}
		w.log.Warn("the cache is gone from Redis; rebuilding", "op", op)
		return nil
	case errors.Is(err, errMetaGone):
		w.metaGone.Store(true) // the next step finds out whether the cache went with it
		return nil
	case errors.Is(err, errLeaseGone):
		return nil // nothing was written; the lease keeper takes the lease again
	case errors.Is(err, errRebuildWait):
		return nil
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
	w.noteDenied(op, err)
	return &opError{op: op, err: err}
}

// checkFailure is a run of failed seat checks: the first, the last, and
// what the last said.
type checkFailure struct {
	since, last time.Time
	err         string
}

// checksFailingFor is how long seat checks may all fail before /readyz
// says the cache is not fresh: six near intervals, a minute at least.
func (w *Warmer) checksFailingFor() time.Duration {
	return max(time.Minute, 6*w.cfg.Policy.NearInterval)
}

// unchanged reports whether P:meta still holds the writer's epoch and seq:
// nobody wrote since this writer's last write.
// noMeta reports that P:meta holds no epoch at all.
func (w *Warmer) unchanged(ctx context.Context) (same, noMeta bool) {
	vals, err := w.rdb.HMGet(ctx, keys.Meta(w.cfg.Prefix), "epoch", "seq").Result()
	if err != nil || len(vals) != 2 {
		return false, false
	}
	epoch, ok := vals[0].(string)
	if !ok {
		return false, true
	}
	seq, _ := vals[1].(string)
	return epoch == w.st.epoch && seq == strconv.FormatInt(w.st.seq, 10), false
}

// restoreMeta writes P:meta again when it went missing (evicted under
// memory pressure, deleted by hand) while the cache's indexes are still
// there: the cache is not lost, and its epoch and seq go on. With no index
// left, the cache went with it and is built anew.
func (w *Warmer) restoreMeta(ctx context.Context) error {
	p := w.cfg.Prefix
	n, err := w.rdb.Exists(ctx, keys.Index(p, keys.Cinemas), keys.Index(p, keys.Films), keys.Index(p, keys.Sessions)).Result()
	if err != nil {
		return fmt.Errorf("read indexes: %w", err)
	}
	if n == 0 {
		w.log.Warn("P:meta and the cache's indexes are gone from Redis; rebuilding", "epoch", w.st.epoch)
		w.lost.Store(&w.st.epoch)
		return nil
	}
	now := w.cfg.Clock.Now()
	fields := []any{"schema", Schema, "epoch", w.st.epoch, "seq", w.st.seq, "writer", w.cfg.InstanceID, "heartbeat", stamp(now)}
	for _, k := range keys.Kinds {
		if at := w.st.loadedAt[k]; at != "" {
			fields = append(fields, keys.Loaded(k), at)
		}
	}
	err = w.fenced(ctx, nil, func(pipe redis.Pipeliner) {
		pipe.HSet(ctx, keys.Meta(p), fields...)
	})
	if err != nil {
		return fmt.Errorf("write meta again: %w", err)
	}
	w.log.Warn("P:meta was missing from Redis (evicted?) while the cache's indexes are there; written again, the epoch and seq go on",
		"epoch", w.st.epoch, "seq", w.st.seq)
	return nil
}

// Redis is the client the warmer writes with.
func (w *Warmer) Redis() redis.UniversalClient { return w.rdb }

// redisTrouble reports whether err is one of Redis's that noteWrite or
// noteLease logs already, once a minute.
func redisTrouble(err error) bool {
	return errors.As(err, new(*RefusedError)) || errors.Is(err, errWrite)
}

func (w *Warmer) dropState() {
	if w.st != nil {
		for _, k := range keys.Kinds {
			if n := len(w.st.cache[k]); n > 0 {
				w.knew[k] = n // what an empty list on a build anew is judged against
			}
		}
		for _, run := range w.st.fetching {
			if run != nil {
				run.cancel() // what they would fetch is for this state
			}
		}
	}
	w.st = nil
	w.heldReason.Store(nil)
	for _, k := range keys.Kinds {
		w.m.dropHeld.WithLabelValues(string(k)).Set(0)
	}
	w.epochSeen.Store(nil)
	w.ready.Store(false)
	w.checksFailing.Store(nil) // of a term as writer that is over
	w.m.setTiers(nil)          // a standby holds no sessions
}

// takeOver reads the cache before writing a thing. A cache of our schema is
// adopted: its epoch and seq go on, and later reloads send events only for
// real changes. Anything else (an empty Redis, a lost P:meta, another
// schema) starts a new epoch: the first reload of each kind is quiet and
// ends in one full_reload event.
func (w *Warmer) takeOver(ctx context.Context, rebuild bool) error {
	w.dropState()
	meta, err := w.rdb.HGetAll(ctx, keys.Meta(w.cfg.Prefix)).Result()
	switch {
	case isWrongType(err):
		// Not our meta: nothing in it can be adopted.
		w.log.Warn("P:meta holds another type; building the cache anew", "key", keys.Meta(w.cfg.Prefix))
		meta = map[string]string{}
	case err != nil:
		return fmt.Errorf("read meta: %w", err)
	}
	// Every write appends to the stream: a key of another type there
	// would fail them all.
	stream := keys.Stream(w.cfg.Prefix)
	streamType, err := w.rdb.Type(ctx, stream).Result()
	if err != nil {
		return fmt.Errorf("read stream type: %w", err)
	}
	badStream := streamType != "stream" && streamType != "none"
	if badStream {
		w.log.Warn("the event stream's key holds another type; it is deleted", "key", stream, "type", streamType)
	}
	st := &state{
		cache:      map[keys.Kind]map[string]*record{},
		quiet:      map[keys.Kind]bool{},
		nextReload: map[keys.Kind]time.Time{},
		loaded:     map[keys.Kind]bool{},
		loadedAt:   map[keys.Kind]string{},
		held:       map[keys.Kind]*heldDrop{},
		failures:   map[keys.Kind]int{},

		awaitWrites: map[keys.Kind]bool{},
		emptySince:  map[keys.Kind]time.Time{},
		fetching:    map[keys.Kind]*fetchRun{},
		intakes:     map[keys.Kind]*intake{},

		checkRemoved: map[string]time.Time{},
		doubted:      map[string]time.Time{},
		inflight:     map[string]bool{},
		asking:       map[*ask]bool{},
	}
	w.schedule(st)

	seq, seqErr := strconv.ParseInt(meta["seq"], 10, 64)
	adopt := meta["schema"] == Schema && meta["epoch"] != "" && seqErr == nil && !rebuild
	rid, promotedFrom, _ := replID(ctx, w.rdb)
	if adopt && meta[keys.MetaReplID] != "" && meta[keys.MetaReplID] != rid && meta[keys.MetaReplID] == promotedFrom {
		// The cache was written to the master this Redis replicated
		// until a failover promoted it: it may lack the last writes, and
		// readers have seen their seqs. A seq must never mean two things
		// in one epoch. (A Redis restarted from its own files has another
		// replication id too, but no earlier master's: its files hold
		// what it acknowledged, as its fsync policy promises.)
		w.log.Warn("redis is a replica promoted since the cache was written to its master (a failover); building the cache anew under a new epoch",
			"epoch", meta["epoch"], "replid_written", meta[keys.MetaReplID], "replid_now", rid)
		adopt = false
	}
	if adopt && meta["epoch"] == w.written.epoch && seq < w.written.seq {
		// Redis lost writes this process made (a failover to a replica
		// that had not received them): the seqs after its own were sent
		// already, and a seq never means two things in one epoch.
		w.log.Warn("redis lost the last writes (a failover?); building the cache anew under a new epoch",
			"epoch", meta["epoch"], "seq_in_redis", seq, "seq_written", w.written.seq)
		adopt = false
	}
	if adopt {
		st.epoch, st.seq = meta["epoch"], seq
		for _, k := range keys.Kinds {
			// A kind whose first load never finished in this epoch is
			// still being built: its reload stays quiet.
			st.loaded[k] = meta[keys.Loaded(k)] != ""
			st.loadedAt[k] = meta[keys.Loaded(k)]
			st.quiet[k] = !st.loaded[k]
		}
	} else {
		if since := time.Since(w.lastRebuild); !w.lastRebuild.IsZero() && since < time.Minute && !w.evict.roomForCache() {
			// Under memory pressure with an evicting policy, Redis may
			// lose the cache again and again: while it has no room for
			// the whole cache, a rebuild a minute at most, so that Vista
			// is not asked for everything every few seconds. Once Redis
			// has room again, the cache is built at once.
			w.setEvicting(fmt.Sprintf("redis evicted the cache (%s); it is built anew once redis has room", w.evict.mem))
			if !w.rebuildWaitSaid {
				w.log.Warn("the cache must be built anew, but it was a moment ago and redis is still full or evicting; waiting for room",
					"last_rebuild", w.lastRebuild.Format(time.RFC3339), "at_most", (time.Minute - since).Round(time.Second),
					"used", mib(w.evict.mem.used), "maxmemory", mib(w.evict.mem.max), "policy", w.evict.mem.policy)
				w.rebuildWaitSaid = true
			}
			return errRebuildWait
		}
		if w.written.epoch != "" {
			w.lastRebuild = time.Now() // a cache of this process's was lost: a rebuild
		}
		w.rebuildWaitSaid = false
		st.epoch = newEpoch()
		for _, k := range keys.Kinds {
			st.quiet[k] = true
		}
	}
	for _, k := range keys.Kinds {
		c, err := w.readCache(ctx, k)
		if err != nil {
			return fmt.Errorf("read %s: %w", k, err)
		}
		st.cache[k] = c
	}
	for id, r := range st.cache[keys.Sessions] {
		st.place(id, nil, r)
	}
	now := w.cfg.Clock.Now()
	var g *guard
	if adopt {
		g = &guard{epoch: st.epoch, seq: st.seq} // nobody wrote since we read
	}
	err = w.fenced(ctx, g, func(pipe redis.Pipeliner) {
		m := keys.Meta(w.cfg.Prefix)
		if badStream {
			pipe.Del(ctx, stream)
		}
		if !adopt {
			pipe.Del(ctx, m)
			pipe.HSet(ctx, m, "schema", Schema, "epoch", st.epoch, "seq", 0)
		}
		pipe.HSet(ctx, m, "writer", w.cfg.InstanceID, "heartbeat", stamp(now))
		if rid != "" {
			pipe.HSet(ctx, m, keys.MetaReplID, rid)
		}
	})
	if err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	for _, k := range keys.Kinds {
		st.nextReload[k] = now // a full reload at start and on taking over
	}
	st.since = now
	w.st = st
	// A key of the layout that holds another type would fail every write
	// that touches it: mend the indexes before the first.
	for _, k := range keys.Kinds {
		if err := w.repairIndexes(ctx, k); err != nil {
			w.st = nil
			return err
		}
	}
	w.epochSeen.Store(&st.epoch)
	w.ready.Store(st.loaded[keys.Cinemas] && st.loaded[keys.Films] && st.loaded[keys.Sessions])
	n := len(st.cache[keys.Cinemas]) + len(st.cache[keys.Films]) + len(st.cache[keys.Sessions])
	if adopt {
		w.log.Info("adopted the cache", "epoch", st.epoch, "seq", st.seq, "entities", n)
	} else {
		w.log.Info("building the cache from nothing", "epoch", st.epoch, "entities_found", n)
	}
	return nil
}

func newEpoch() string {
	b := make([]byte, 5)
	rand.Read(b)
	return strings.ToLower(base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
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
