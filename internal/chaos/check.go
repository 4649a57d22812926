package chaos

import (
	"cmp"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
)

// The invariants, numbered as issue 17 and docs/development.md number them.
const (
	invStream    = 1 // stream seqs unique and without gaps; a new epoch only after a loss
	invArrival   = 2 // an event's data is in Redis when it arrives
	invSeats     = 3 // seats never go back, and never a value Vista did not have
	invFinal     = 4 // nothing lost once calm
	invDrop      = 5 // never emptied by bad input
	invStaleness = 6 // near-window staleness in calm stretches
	invHealth    = 7 // /healthz and /readyz are honest
	invFence     = 8 // one process has writes accepted at a time
	invSurvive   = 9 // processes survive all but SIGKILL; RSS bounded
)

// invariantNames are the invariants as the report's table names them.
var invariantNames = [...]string{
	invStream:    "stream seqs unique, no gaps; new epoch only after a loss",
	invArrival:   "an event's data is in Redis when it arrives",
	invSeats:     "seats never go back, never a value Vista did not have",
	invFinal:     "nothing lost once calm",
	invDrop:      "never emptied by bad input",
	invStaleness: "near-window staleness in calm stretches",
	invHealth:    "/healthz and /readyz are honest",
	invFence:     "one process has writes accepted at a time",
	invSurvive:   "processes survive all but SIGKILL; RSS bounded",
}

// Defaults for the History's settings the recorder left at zero: the
// warmer's own defaults (contract, sections 4 to 6).
const (
	defaultPeriod    = time.Hour // --sessions-cron "10 * * * *"
	defaultNearEvery = 10 * time.Second
	defaultLeaseTTL  = 10 * time.Second
	defaultMaxDrop   = 0.5
	nearWindow       = 10 * time.Minute // --near-window's default; History does not carry it
)

// Check holds the history against every invariant and returns the
// violations, in time order (then by invariant).
func Check(h *History) []Violation {
	c := newChecker(h)
	var vs []Violation
	for _, check := range []func() []Violation{
		c.checkStream, c.checkArrival, c.checkSeats, c.checkFinal, c.checkDrop,
		c.checkStaleness, c.checkHealth, c.checkFence, c.checkSurvive,
	} {
		vs = append(vs, check()...)
	}
	slices.SortStableFunc(vs, func(a, b Violation) int {
		if n := a.At.Compare(b.At); n != 0 {
			return n
		}
		return cmp.Compare(a.Invariant, b.Invariant)
	})
	return vs
}

// checker is the history with the indexes the invariants share, built
// once: the truth per session, the faults in order, the settings with
// their defaults.
type checker struct {
	h   *History
	end time.Time // the last moment the history knows of

	period, nearEvery, leaseTTL time.Duration
	maxDrop                     float64

	faults    []Fault               // by Start; an End left zero is the history's end
	entries   []Entry               // by arrival
	truths    []Truth               // by time
	truth     map[string][]truthRun // per session, in time order
	liveMemo  map[int]map[string]bool
	liveN     map[int]int
	obsMemo   map[bool]map[string][]obsRun
	insts     map[string]bool // every warmer instance named
	lostAt    []time.Time     // snapshots the nemesis marked Lost
	firstLoad time.Time       // the first snapshot that shows a full load of sessions; zero if none
	firstSnap time.Time       // the first snapshot
}

func newChecker(h *History) *checker {
	c := &checker{h: h, period: h.Period, nearEvery: h.NearEvery, leaseTTL: h.LeaseTTL, maxDrop: h.MaxDrop}
	if c.period <= 0 {
		c.period = defaultPeriod
	}
	if c.nearEvery <= 0 {
		c.nearEvery = defaultNearEvery
	}
	if c.leaseTTL <= 0 {
		c.leaseTTL = defaultLeaseTTL
	}
	if c.maxDrop <= 0 || c.maxDrop > 1 {
		c.maxDrop = defaultMaxDrop
	}
	c.end = historyEnd(h)

	c.faults = slices.Clone(h.Faults)
	for i := range c.faults {
		if c.faults[i].End.IsZero() || c.faults[i].End.Before(c.faults[i].Start) {
			c.faults[i].End = c.end
		}
	}
	slices.SortStableFunc(c.faults, func(a, b Fault) int { return a.Start.Compare(b.Start) })

	c.entries = slices.Clone(h.Entries)
	slices.SortStableFunc(c.entries, func(a, b Entry) int { return a.At.Compare(b.At) })

	c.truths = slices.Clone(h.Truths)
	slices.SortStableFunc(c.truths, func(a, b Truth) int { return a.At.Compare(b.At) })
	c.truth = truthRuns(c.truths)
	c.liveMemo, c.liveN = map[int]map[string]bool{}, map[int]int{}

	c.obsMemo = map[bool]map[string][]obsRun{}
	for _, s := range h.Snapshots {
		if s.Meta[keys.Loaded(keys.Sessions)] != "" && (c.firstLoad.IsZero() || s.At.Before(c.firstLoad)) {
			c.firstLoad = s.At
		}
		if s.Lost {
			c.lostAt = append(c.lostAt, s.At)
		}
		if c.firstSnap.IsZero() || s.At.Before(c.firstSnap) {
			c.firstSnap = s.At
		}
	}
	c.insts = map[string]bool{}
	for _, p := range h.Probes {
		c.insts[p.Instance] = true
	}
	for _, w := range h.Writes {
		c.insts[w.Instance] = true
	}
	for _, p := range h.Processes {
		c.insts[p.Instance] = true
	}
	return c
}

// historyEnd is the latest moment anything in h was recorded at; the
// nemesis's planned end when nothing was.
func historyEnd(h *History) time.Time {
	var end time.Time
	later := func(t time.Time) {
		if t.After(end) {
			end = t
		}
	}
	later(h.Calm)
	for _, e := range h.Entries {
		later(e.At)
		later(e.HashAt)
	}
	for _, s := range h.Snapshots {
		later(s.At)
	}
	for _, p := range h.Probes {
		later(p.At)
	}
	for _, t := range h.Truths {
		later(t.At)
	}
	for _, f := range h.Faults {
		later(f.End)
	}
	for _, l := range h.Leases {
		later(l.At)
	}
	for _, w := range h.Writes {
		later(w.At)
	}
	if end.IsZero() {
		end = h.Start.Add(h.Duration)
	}
	return end
}

// activeFaults returns the faults in progress at t, widened by before and
// after.
func (c *checker) activeFaults(t time.Time, before, after time.Duration) []Fault {
	var out []Fault
	for _, f := range c.faults {
		if !t.Before(f.Start.Add(-before)) && !t.After(f.End.Add(after)) {
			out = append(out, f)
		}
	}
	return out
}

// lossNear reports whether Redis may have lost data near t: a fault that
// loses data in progress from its Start to its End plus after, or a
// snapshot the nemesis marked Lost at most after from t. It names the
// fault (the latest to start).
func (c *checker) lossNear(t time.Time, after time.Duration) (string, bool) {
	name := ""
	for _, f := range c.faults { // by Start: the latest one wins
		if f.LosesData && !t.Before(f.Start) && !t.After(f.End.Add(after)) {
			name = f.Name
		}
	}
	if name != "" {
		return name, true
	}
	for _, at := range c.lostAt {
		if !t.Before(at.Add(-after)) && !t.After(at.Add(after)) {
			return "a loss seen at " + at.Format("15:04:05"), true
		}
	}
	return "", false
}

// truthRun is a stretch of Truth samples, consecutive ones, in which a
// session kept the same seats, status and showtime. Between two runs
// whose samples are consecutive (the session listed in both), the seats
// are taken to have moved monotonically from one value to the other: the
// simulator's seats only ever fall on their own, and a change by hand
// is one jump.
type truthRun struct {
	first, last       time.Time
	firstIdx, lastIdx int // of the Truth samples, in h.Truths order sorted by time
	seats             int
	cancelled         bool
	showtime          time.Time
}

// truthRuns turns the samples, in time order, into runs per session. A
// session absent from a sample breaks its runs.
func truthRuns(ts []Truth) map[string][]truthRun {
	out := map[string][]truthRun{}
	for n, t := range ts {
		for id, seats := range t.Seats {
			cancelled := isCancelled(t.Status[id])
			show := t.Showtime[id]
			rs := out[id]
			if k := len(rs) - 1; k >= 0 && rs[k].lastIdx == n-1 && rs[k].seats == seats &&
				rs[k].cancelled == cancelled && rs[k].showtime.Equal(show) {
				rs[k].last, rs[k].lastIdx = t.At, n
				continue
			}
			out[id] = append(rs, truthRun{first: t.At, last: t.At, firstIdx: n, lastIdx: n,
				seats: seats, cancelled: cancelled, showtime: show})
		}
	}
	return out
}

// isCancelled reads a Status as Vista sent it, in any of its forms; the
// simulator's letters first, as they are nearly all.
func isCancelled(status string) bool {
	switch status {
	case "", "O", "0":
		return false
	case "X", "7":
		return true
	}
	return vista.ParseStatus(status) == keys.StateCancelled
}

// heldSeats reports whether the truth may have had the session at v seats
// at some moment within [from, to]: a run with v that overlaps it, or a
// monotonic move between two consecutive runs that passes v strictly
// between them while overlapping it.
func heldSeats(rs []truthRun, v int, from, to time.Time) bool {
	for i, r := range rs {
		if r.seats == v && overlaps(r.first, r.last, from, to) {
			return true
		}
		if i+1 < len(rs) && rs[i+1].firstIdx == r.lastIdx+1 && between(v, r.seats, rs[i+1].seats) &&
			overlaps(r.last, rs[i+1].first, from, to) {
			return true
		}
	}
	return false
}

// movedToward reports whether the truth's seats moved in direction dir
// (+1 up, -1 down) between two runs, the move overlapping [from, to].
func movedToward(rs []truthRun, dir int, from, to time.Time) bool {
	for i := 0; i+1 < len(rs); i++ {
		if cmp.Compare(rs[i+1].seats, rs[i].seats) == dir && overlaps(rs[i].last, rs[i+1].first, from, to) {
			return true
		}
	}
	return false
}

// listedAt reports whether some run of the session, open (not cancelled),
// overlaps [from, to].
func listedOpen(rs []truthRun, from, to time.Time) bool {
	for _, r := range rs {
		if !r.cancelled && overlaps(r.first, r.last, from, to) {
			return true
		}
	}
	return false
}

func overlaps(a0, a1, b0, b1 time.Time) bool { return !a1.Before(b0) && !b1.Before(a0) }

// between reports whether v lies strictly between a and b.
func between(v, a, b int) bool { return (a < v && v < b) || (b < v && v < a) }

// nearestTruth returns the index in c.truths of the sample nearest t, or
// -1 when there is none.
func (c *checker) nearestTruth(t time.Time) int {
	ts := c.truths
	i := sort.Search(len(ts), func(i int) bool { return !ts[i].At.Before(t) })
	switch {
	case len(ts) == 0:
		return -1
	case i == len(ts):
		return i - 1
	case i > 0 && t.Sub(ts[i-1].At) < ts[i].At.Sub(t):
		return i - 1
	}
	return i
}

// live returns liveSessions of c.truths[i], once.
func (c *checker) live(i int) map[string]bool {
	if m, ok := c.liveMemo[i]; ok {
		return m
	}
	m := liveSessions(c.truths[i])
	c.liveMemo[i] = m
	return m
}

// liveCount is len(liveSessions(c.truths[i])), once, without building
// the set.
func (c *checker) liveCount(i int) int {
	if n, ok := c.liveN[i]; ok {
		return n
	}
	t, n := c.truths[i], 0
	for id := range t.Seats {
		if isLive(t, id) {
			n++
		}
	}
	c.liveN[i] = n
	return n
}

// liveSessions counts the sessions a Truth sample says a cache must hold
// whatever the grace: listed, not cancelled, showtime still ahead. (A
// session past its showtime may be cached or not, depending on
// --session-grace, which the history does not carry.)
func liveSessions(t Truth) map[string]bool {
	out := map[string]bool{}
	for id := range t.Seats {
		if isLive(t, id) {
			out[id] = true
		}
	}
	return out
}

// isLive reports whether a Truth sample says the cache must hold id.
func isLive(t Truth, id string) bool {
	if isCancelled(t.Status[id]) {
		return false
	}
	st, ok := t.Showtime[id]
	return !ok || st.IsZero() || st.After(t.At)
}

// seatsOf reads a hash's seats_available.
func seatsOf(f map[string]string) (int, bool) {
	v, ok := f["seats_available"]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}

// cachedSessions returns the session ids a reader of the snapshot finds:
// indexed, with a hash.
func cachedSessions(s Snapshot) []string {
	var out []string
	hs := s.Hashes[string(keys.Sessions)]
	for _, id := range s.Index[string(keys.Sessions)] {
		if hs[id] != nil {
			out = append(out, id)
		}
	}
	return out
}
