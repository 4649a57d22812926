package chaos

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Tolerances of invariants 7 to 9.
const (
	// healWithin: /healthz is 200 again this long after a fault's heal
	// (issue 17).
	healWithin = 30 * time.Second

	// heartbeatMax and readyStretch: /readyz 200 with a heartbeat older
	// than heartbeatMax may last readyStretch (issue 17). The heartbeat
	// is written in whole seconds, so a second more.
	heartbeatMax = 30*time.Second + time.Second
	readyStretch = 30 * time.Second

	// probeSlack: a probe is sent, answered and stamped with its start;
	// a second covers the answer.
	probeSlack = time.Second

	// fenceSkew: the recorder scrapes every process's /metrics in the
	// same tick, so one tick's samples of two processes are this close;
	// a sample of another process farther out than this belongs to
	// another interval.
	fenceSkew = 250 * time.Millisecond

	// rssGrowth: RSS at the end may be this much of RSS after the
	// warm-up (issue 17).
	rssGrowth = 1.2
)

// probesOf returns one instance's answers on one path, in time order.
func (c *checker) probesOf(inst, path string) []Probe {
	var out []Probe
	for _, p := range c.h.Probes {
		if p.Instance == inst && p.Path == path {
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b Probe) int { return a.At.Compare(b.At) })
	return out
}

// medianGap is the median time between consecutive probes: how long an
// answer may wait to be asked for.
func medianGap(ps []Probe) time.Duration {
	if len(ps) < 2 {
		return 0
	}
	gaps := make([]time.Duration, 0, len(ps)-1)
	for i := 1; i < len(ps); i++ {
		gaps = append(gaps, ps[i].At.Sub(ps[i-1].At))
	}
	slices.Sort(gaps)
	return gaps[len(gaps)/2]
}

// instances names every warmer instance the history mentions.
func (c *checker) instances() map[string]bool { return c.insts }

// holderAt names the instance holding P:lease at t, as last read before
// it ("" when none or unknown). The lease's value is an instance id and a
// token; an instance is named by the id itself or by its last word
// ("chaos-writer" is the writer).
func (c *checker) holderAt(t time.Time) string {
	var last *Lease
	for i := range c.h.Leases {
		l := &c.h.Leases[i]
		if !l.At.After(t) && (last == nil || l.At.After(last.At)) {
			last = l
		}
	}
	if last == nil {
		return ""
	}
	id, _, _ := strings.Cut(last.Holder, " ")
	insts := c.instances()
	if insts[id] {
		return id
	}
	for _, name := range sortedKeys(insts) {
		if strings.HasSuffix(id, "-"+name) {
			return name
		}
	}
	return ""
}

// topology tells from the faults which Redis the run had: "sentinel"
// when a failover was injected or a stall was marked as losing data (it
// made the sentinels fail over), "single" when a fault only a single
// server has was, else "" (unknown).
func (c *checker) topology() string {
	for _, f := range c.faults {
		stall := f.Name == "redis-debug-sleep" || f.Name == "redis-pause-all" || f.Name == "redis-pause-write"
		switch {
		case f.Name == "redis-failover", stall && f.LosesData:
			return "sentinel"
		case strings.HasPrefix(f.Name, "partition-"), f.Name == "slow-link", f.Name == "redis-password", stall:
			return "single"
		}
	}
	return ""
}

// writesStop reports whether a fault leaves a warmer unable to write to
// Redis for as long as it lasts, so /healthz owes a 503, and names the
// instance whose /healthz owes it. Faults after which writes go on are
// left out: an eviction (allkeys-lru evicts and accepts the write), a
// FLUSHALL and a SCRIPT FLUSH (instants; the warmer loads its scripts
// again), a slow link, a failover (the writer follows it). In the
// sentinel topology (or when unsure) neither is a stall that lost data:
// the sentinels failed over and the writer may have followed within the
// TTL.
func (c *checker) writesStop(f Fault, topology string) (string, bool) {
	switch {
	case strings.HasPrefix(f.Name, "partition-") || f.Target == "partition":
		if c.instances()[f.Target] {
			return f.Target, true
		}
	case f.Target == "redis":
		for _, goesOn := range []string{"allkeys-lru", "flushall", "script-flush", "failover", "slow"} {
			if strings.Contains(f.Name, goesOn) {
				return "", false
			}
		}
		if f.LosesData && topology != "single" {
			return "", false
		}
	default:
		return "", false
	}
	if inst := c.holderAt(f.Start); inst != "" {
		return inst, true
	}
	return "writer", true
}

// interferes reports whether fault g, besides f, may change what inst's
// /healthz answers: Redis faults, and faults on inst itself or on a twin
// (which shares an instance id). Vista's faults and faults on another
// instance do not.
func interferes(g Fault, inst string) bool {
	return g.Target == "redis" || g.Target == "partition" || g.Target == inst || g.Target == "twin"
}

// checkHealth is invariant 7: (a) /healthz is 503 within the lease TTL of
// a fault that stops writes, and 200 again within 30 s of its heal; (b)
// no stretch over 30 s of /readyz 200 while P:meta's heartbeat is older
// than 30 s.
func (c *checker) checkHealth() []Violation {
	var vs []Violation
	topology := c.topology()
	for fi, f := range c.faults {
		inst, ok := c.writesStop(f, topology)
		if !ok {
			continue
		}
		hz := c.probesOf(inst, "/healthz")
		gap := medianGap(hz)

		// 503 owed: writes fail from the start (or the next write, a
		// renewal at most a third of the TTL later); the warmer says so
		// once they have failed for a TTL, at its next look. Two TTLs,
		// the gap between probes and a second cover it. A fault that
		// ended sooner owed nothing.
		owed := f.Start.Add(2*c.leaseTTL + gap + probeSlack)
		if !f.End.Before(owed) {
			var n int
			said := false
			for _, p := range hz {
				if p.At.Before(f.Start) || p.At.After(owed) {
					continue
				}
				n++
				if p.Code != 200 {
					said = true
					break
				}
			}
			if n > 0 && !said {
				vs = append(vs, Violation{Invariant: invHealth, At: owed, What: fmt.Sprintf(
					"%s (%v) left %s unable to write; its /healthz answered 200 for the first %v (%d probes), 503 owed within the lease TTL (%v)",
					f.Name, f.End.Sub(f.Start).Round(100*time.Millisecond), inst, owed.Sub(f.Start).Round(100*time.Millisecond), n, c.leaseTTL)})
			}
		}

		// 200 again after the heal, unless another fault that may keep
		// it unhealthy is active meanwhile.
		by := f.End.Add(healWithin + gap + probeSlack)
		busy := false
		for gi, g := range c.faults {
			if gi != fi && interferes(g, inst) && overlaps(g.Start, g.End, f.End, by) {
				busy = true
				break
			}
		}
		if busy || by.After(c.end) {
			continue
		}
		var n int
		healthy, after := false, false
		var last Probe
		for _, p := range hz {
			if p.At.Before(f.End) {
				continue
			}
			if p.At.After(by) {
				after = true
				break
			}
			n++
			last = p
			if p.Code == 200 {
				healthy = true
				break
			}
		}
		if n > 0 && after && !healthy {
			vs = append(vs, Violation{Invariant: invHealth, At: by, What: fmt.Sprintf(
				"%s healed at %s; %s's /healthz was not 200 within %v (%d probes, the last %d %q)",
				f.Name, c.clock(f.End), inst, healWithin, n, last.Code, firstLine(last.Body))})
		}
	}

	// (b) /readyz 200 while the heartbeat was old. Old is known for sure
	// at a probe when the next snapshot's heartbeat was already over 30 s
	// older than the probe: the heartbeat only moves forward.
	snaps := slices.Clone(c.h.Snapshots)
	slices.SortStableFunc(snaps, func(a, b Snapshot) int { return a.At.Compare(b.At) })
	beatAfter := func(t time.Time) (time.Time, bool) {
		i, _ := slices.BinarySearchFunc(snaps, t, func(s Snapshot, t time.Time) int { return s.At.Compare(t) })
		if i >= len(snaps) || snaps[i].Meta == nil {
			return time.Time{}, false
		}
		hb, err := time.Parse(time.RFC3339Nano, snaps[i].Meta["heartbeat"])
		return hb, err == nil
	}
	for _, inst := range sortedKeys(c.instances()) {
		var first, last Probe
		var beat time.Time
		open := false
		flush := func() {
			if open && last.At.Sub(first.At) > readyStretch {
				vs = append(vs, Violation{Invariant: invHealth, At: first.At, What: fmt.Sprintf(
					"%s's /readyz answered 200 from %s to %s (%v) while P:meta's heartbeat was over 30s old (last beat %s)",
					inst, c.clock(first.At), c.clock(last.At), last.At.Sub(first.At).Round(100*time.Millisecond), c.clock(beat))})
			}
			open = false
		}
		for _, p := range c.probesOf(inst, "/readyz") {
			hb, known := beatAfter(p.At)
			switch {
			case !known:
				continue // no snapshot to tell: neither way
			case p.Code != 200 || p.At.Sub(hb) <= heartbeatMax:
				flush()
			default:
				if !open {
					first, open = p, true
				}
				last, beat = p, hb
			}
		}
		flush()
	}
	return vs
}

// firstLine is a body's first line, cut short.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// checkFence is invariant 8: between two consecutive samples of one
// process, its fenced writes went through while another process held
// the lease at both ends of the same interval and had writes go through
// too.
func (c *checker) checkFence() []Violation {
	type proc struct {
		inst string
		pid  int
	}
	byProc := map[proc][]Write{}
	for _, w := range c.h.Writes {
		k := proc{w.Instance, w.Pid}
		byProc[k] = append(byProc[k], w)
	}
	var procs []proc
	for k, ws := range byProc {
		slices.SortStableFunc(ws, func(a, b Write) int { return a.At.Compare(b.At) })
		procs = append(procs, k)
	}
	slices.SortFunc(procs, func(a, b proc) int {
		if n := strings.Compare(a.inst, b.inst); n != 0 {
			return n
		}
		return a.pid - b.pid
	})

	var vs []Violation
	reported := map[[2]proc]time.Time{} // the end of the last interval reported, per pair
	for _, x := range procs {
		xs := byProc[x]
		for i := 1; i < len(xs); i++ {
			a, b := xs[i-1], xs[i]
			if b.Written <= a.Written {
				continue
			}
			for _, y := range procs {
				if y == x {
					continue
				}
				ys := byProc[y]
				lo, _ := slices.BinarySearchFunc(ys, a.At.Add(-fenceSkew), func(w Write, t time.Time) int { return w.At.Compare(t) })
				hi, _ := slices.BinarySearchFunc(ys, b.At.Add(fenceSkew+1), func(w Write, t time.Time) int { return w.At.Compare(t) })
				if hi-lo < 2 {
					continue // not sampled at both ends: cannot tell
				}
				ya, yb := ys[lo], ys[hi-1]
				if !ya.Held || !yb.Held || yb.Written <= ya.Written {
					continue
				}
				pair := [2]proc{x, y}
				if end, ok := reported[pair]; ok && !a.At.After(end.Add(5*time.Second)) {
					reported[pair] = b.At
					continue // the same stretch, reported already
				}
				reported[pair] = b.At
				vs = append(vs, Violation{Invariant: invFence, At: a.At, What: fmt.Sprintf(
					"%s (pid %d) had %d writes accepted between %s and %s while %s (pid %d) held the lease throughout and had %d accepted",
					x.inst, x.pid, b.Written-a.Written, c.clock(a.At), c.clock(b.At), y.inst, y.pid, yb.Written-ya.Written)})
			}
		}
	}
	return vs
}

// checkSurvive is invariant 9: no process ends unasked or unclean (but by
// SIGKILL), and a process that ran throughout ends within 1.2× its RSS
// after the warm-up.
func (c *checker) checkSurvive() []Violation {
	var vs []Violation
	for _, p := range c.h.Processes {
		var why []string
		if p.Crashed {
			why = append(why, "crashed")
		}
		// A warmer (re)started while the nemesis had rotated Redis's
		// password stops at once with exit status 1 and one line: that is
		// the documented answer to refused credentials at start, not a
		// crash (docs/operations.md, "ACL users").
		refusedAtStart := p.ExitCode == 1 && strings.Contains(p.Output, "refuses the credentials")
		if !p.Killed && p.ExitCode != 0 && p.ExitCode != -1 && !refusedAtStart {
			why = append(why, fmt.Sprintf("exit status %d", p.ExitCode))
		}
		if len(why) > 0 {
			what := fmt.Sprintf("%s (pid %d) %s", p.Instance, p.Pid, strings.Join(why, ", "))
			if line := lastLine(p.Output); line != "" {
				what += ": " + line
			}
			vs = append(vs, Violation{Invariant: invSurvive, At: c.end, What: what})
			continue
		}
		// Ran the whole time: warmed up, still running at the end, never
		// killed (a restarted warmer is a new process with no warm RSS).
		if p.Killed || p.ExitCode != -1 || p.RSSWarm <= 0 || p.RSSEnd <= 0 {
			continue
		}
		if float64(p.RSSEnd) > rssGrowth*float64(p.RSSWarm) {
			vs = append(vs, Violation{Invariant: invSurvive, At: c.end, What: fmt.Sprintf(
				"%s (pid %d) RSS %s at the end, %.2f× its %s after the warm-up (at most %.1f×)",
				p.Instance, p.Pid, mib(p.RSSEnd), float64(p.RSSEnd)/float64(p.RSSWarm), mib(p.RSSWarm), rssGrowth)})
		}
	}
	return vs
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// lastLine is the last non-empty line of a process's output, cut short.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if len(l) > 160 {
		l = l[:157] + "..."
	}
	return l
}
