// Package chaos is vista-warmer's robustness suite: the built binary runs
// as a writer and a standby against real redis-server processes and the
// simulated Vista (cmd/vistasim), a nemesis driven by a seed injects
// faults at random, a recorder writes down from outside what readers and
// operators saw, and a checker holds that history against the warmer's
// promises. A failing seed replays: the faults are drawn from it.
//
// The parts:
//
//	world.go      the processes: redis-servers (alone, or a master with
//	              a replica and sentinels), a TCP proxy per warmer
//	sim.go        vistasim, the simulated Vista, and its truth
//	warmer.go     the warmers: start, signals, the twin, RSS
//	plan.go       the faults a seed draws, and when
//	nemesis.go    injecting and healing them; faults_redis.go,
//	              faults_warmers.go and faults_vista.go, each kind's
//	record.go     the recorder: stream entries and pub/sub messages with
//	              the hash read on arrival, the probes, the lease, the
//	              simulator's truth; record_snapshots.go, Redis's
//	check*.go     the invariants, each a function of the History
//
// make chaos runs it (DURATION, SEED); see docs/development.md.
package chaos

import "time"

// History is everything the recorder saw, in the order it saw it.
type History struct {
	Seed     uint64
	Duration time.Duration // of the nemesis; the calm after it is extra
	Start    time.Time     // real time the recording began
	Calm     time.Time     // when the last fault was healed

	Entries   []Entry    // stream entries and pub/sub messages, as they arrived
	Snapshots []Snapshot // Redis as a reader would read it, now and then
	Probes    []Probe    // /healthz and /readyz of each warmer
	Truths    []Truth    // what the simulated Vista said, now and then
	Faults    []Fault    // what the nemesis did, and when
	Leases    []Lease    // P:lease's holder, now and then
	Writes    []Write    // which process had a fenced write accepted, when (from the warmers' metrics)
	Processes []Process  // each warmer's end: how it exited, its RSS
	MaxDrop   float64    // the warmers' --max-drop
	NearEvery time.Duration
	LeaseTTL  time.Duration
	Period    time.Duration // the sessions reload period (--sessions-cron @every)
}

// Entry is one event as a reader received it: from the stream (XREAD) or
// from pub/sub, with the entity's hash as read right after it arrived.
type Entry struct {
	At       time.Time // arrival
	Source   string    // "stream" or "pubsub"
	StreamID string    // stream entries only

	Seq   int64
	Epoch string
	Kind  string // cinemas, films, sessions
	Event string // item, removed_item, full_reload
	ID    string
	Seats *int   // seats_available of a session item event
	Data  string // the event's JSON as published

	// Hash is the entity's hash read at once on arrival (item events; nil
	// when the key was missing), and HashAt when it was read.
	Hash   map[string]string
	HashAt time.Time
}

// Snapshot is the cache as a reader would read it at one moment: P:meta,
// each kind's index, and each indexed entity's hash (nil when missing).
type Snapshot struct {
	At     time.Time
	Meta   map[string]string            // nil when P:meta is missing
	Index  map[string][]string          // by kind: the ids the index holds
	Hashes map[string]map[string]Fields // by kind, by id: fields; an id of a key that exists but no index names is there too
	Lost   bool                         // Redis itself lost data just before (a restart without AOF, FLUSHALL, a failover): set by the nemesis
}

// Fields is a hash's fields.
type Fields map[string]string

// Probe is one answer of a warmer's /healthz or /readyz.
type Probe struct {
	At       time.Time
	Instance string // "writer", "standby", or the id of a second process
	Path     string // /healthz or /readyz
	Code     int    // 0 when it did not answer
	Took     time.Duration
	Body     string
}

// Truth is what the simulated Vista said of every listed session at one
// moment: its seats and status.
type Truth struct {
	At       time.Time
	Seats    map[string]int
	Status   map[string]string
	Showtime map[string]time.Time
}

// Fault is one injection of the nemesis, from inject to heal.
type Fault struct {
	Name   string // e.g. "redis-kill", "partition-both", "vista-empty"
	Target string // what it hit: "redis", "writer", "vista", ...
	Start  time.Time
	End    time.Time // when it was healed
	// LosesData marks a fault after which Redis may really have lost the
	// cache (kill without AOF, FLUSHALL, a failover, eviction): a new
	// epoch may follow, and the cache may hold less for a while.
	LosesData bool
}

// Lease is P:lease's holder at one moment ("" when none).
type Lease struct {
	At     time.Time
	Holder string // the lease's value: instance id and token
}

// Write is what one warmer process's metrics said of its fenced writes
// at one moment: whether it held the lease, and how many writes had gone
// through by then.
type Write struct {
	At       time.Time
	Instance string
	Pid      int
	Held     bool  // vista_warmer_lease_held
	Written  int64 // fenced writes that went through, a counter
}

// Process is a warmer process's life: how it ended, and its memory.
type Process struct {
	Instance string
	Pid      int
	Killed   bool  // by SIGKILL, on purpose
	ExitCode int   // -1 while running at the end
	Crashed  bool  // ended without being asked to
	RSSWarm  int64 // bytes after the warm-up
	RSSEnd   int64 // bytes at the end
	Output   string
}

// Violation is an invariant the history breaks, at one moment.
type Violation struct {
	Invariant int // 1 to 9, as docs/development.md numbers them
	At        time.Time
	What      string // what was seen, plainly
}

// The checker's API (check.go):
//
//	func Check(h *History) []Violation
//	    every invariant's violations, in time order
//	func Report(h *History, vs []Violation) string
//	    the table: each fault's injections, each invariant's violations,
//	    the seed and the duration; on a violation, the moments around it
//	    and the command that replays the seed
