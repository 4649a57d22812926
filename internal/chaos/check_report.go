package chaos

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Report lays out a checked history for a terminal: each fault's
// injections, each invariant's violations, the seed and the duration;
// then, for the first few violations of each invariant, the moments
// around them; and the command that replays the seed.
func Report(h *History, vs []Violation) string {
	c := newChecker(h)
	var b strings.Builder
	fmt.Fprintf(&b, "chaos: seed %d, %s of faults", h.Seed, fmtDuration(h.Duration))
	if !h.Calm.IsZero() {
		fmt.Fprintf(&b, ", calm from %s", c.clock(h.Calm))
	}
	fmt.Fprintf(&b, ", recorded until %s\n\n", c.clock(c.end))

	// The faults.
	counts := map[string]int{}
	for _, f := range h.Faults {
		counts[f.Name]++
	}
	width := len("fault")
	for name := range counts {
		width = max(width, len(name))
	}
	fmt.Fprintf(&b, "  %-*s  injections\n", width, "fault")
	for _, name := range sortedKeys(counts) {
		fmt.Fprintf(&b, "  %-*s  %10d\n", width, name, counts[name])
	}
	if len(counts) == 0 {
		fmt.Fprintf(&b, "  %-*s  %10d\n", width, "(none)", 0)
	}
	b.WriteString("\n")

	// The invariants.
	per := map[int][]Violation{}
	for _, v := range vs {
		per[v.Invariant] = append(per[v.Invariant], v)
	}
	fmt.Fprintf(&b, "  #  %-56s  violations\n", "invariant")
	for i := 1; i < len(invariantNames); i++ {
		fmt.Fprintf(&b, "  %d  %-56s  %10d\n", i, invariantNames[i], len(per[i]))
	}
	ss := c.staleness()
	if len(ss) < minStaleSamples {
		fmt.Fprintf(&b, "\n  6: too few calm near-window changes to judge staleness (%d, at least %d needed)\n", len(ss), minStaleSamples)
	} else {
		p, _ := p99(ss)
		fmt.Fprintf(&b, "\n  6: near-window staleness p99 %v over %d calm changes (bound %v)\n",
			p.Round(100*time.Millisecond), len(ss), c.nearEvery+time.Second)
	}

	if len(vs) == 0 {
		b.WriteString("\nno violations\n")
	} else {
		fmt.Fprintf(&b, "\n%d violations", len(vs))
		if len(vs) > 3 {
			b.WriteString(" (at most 3 of each invariant below)")
		}
		b.WriteString(":\n")
		for i := 1; i < len(invariantNames); i++ {
			for _, v := range per[i][:min(len(per[i]), 3)] {
				c.moment(&b, v)
			}
		}
	}
	fmt.Fprintf(&b, "\nreplay: make chaos SEED=%d DURATION=%s\n", h.Seed, fmtDuration(h.Duration))
	return b.String()
}

// around is how far either side of a violation the report looks.
const around = 5 * time.Second

// moment writes one violation with what happened around it: the faults
// active then, the events, probes and snapshots within ±5 s.
func (c *checker) moment(b *strings.Builder, v Violation) {
	fmt.Fprintf(b, "\n[%d] %s  %s\n", v.Invariant, c.clock(v.At), v.What)
	var faults []string
	for _, f := range c.activeFaults(v.At, 0, 0) {
		faults = append(faults, fmt.Sprintf("%s on %s (%s to %s)", f.Name, f.Target, c.clock(f.Start), c.clock(f.End)))
	}
	if len(faults) == 0 {
		faults = append(faults, "none")
	}
	fmt.Fprintf(b, "    faults then: %s\n", strings.Join(faults, "; "))

	// The closest few of each: entries, probes, a snapshot.
	type line struct {
		at   time.Time
		text string
	}
	near := func(t time.Time) bool { return t.Sub(v.At).Abs() <= around }
	closest := func(ls []line, n int) []line {
		slices.SortStableFunc(ls, func(a, b line) int { return cmp.Compare(a.at.Sub(v.At).Abs(), b.at.Sub(v.At).Abs()) })
		return ls[:min(len(ls), n)]
	}
	var entries, probes, snaps []line
	for _, e := range c.entries {
		if !near(e.At) {
			continue
		}
		text := fmt.Sprintf("%-6s seq %d %s %s %s %s", e.Source, e.Seq, e.Epoch, e.Kind, e.Event, e.ID)
		if e.Seats != nil {
			text += fmt.Sprintf(" seats %d", *e.Seats)
		}
		if !e.HashAt.IsZero() {
			if e.Hash == nil {
				text += " (key missing)"
			} else if s, ok := e.Hash["seats_available"]; ok {
				text += " (hash " + s + ")"
			}
		}
		entries = append(entries, line{e.At, text})
	}
	for _, p := range c.h.Probes {
		if near(p.At) {
			probes = append(probes, line{p.At, strings.TrimSpace(fmt.Sprintf("probe  %s %s %d %s", p.Instance, p.Path, p.Code, firstLine(p.Body)))})
		}
	}
	for _, s := range c.h.Snapshots {
		if near(s.At) {
			snaps = append(snaps, line{s.At, fmt.Sprintf("snap   %d sessions cached, heartbeat %s", len(cachedSessions(s)), s.Meta["heartbeat"])})
		}
	}
	ne, np := len(entries), len(probes)
	shown := slices.Concat(closest(entries, 5), closest(probes, 4), closest(snaps, 1))
	if len(shown) == 0 {
		return
	}
	slices.SortStableFunc(shown, func(a, b line) int { return a.at.Compare(b.at) })
	fmt.Fprintf(b, "    within ±%v: %d entries, %d probes; the closest:\n", around, ne, np)
	for _, l := range shown {
		fmt.Fprintf(b, "      %s  %s\n", c.clock(l.at), l.text)
	}
}

// clock writes a moment as its offset from the start of the recording,
// with the wall clock: "+1m02.5s (17:01:02.5)".
func (c *checker) clock(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	d := t.Sub(c.h.Start).Round(100 * time.Millisecond)
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	return fmt.Sprintf("%s%s (%s)", sign, d, t.Format("15:04:05.0"))
}

// fmtDuration writes a duration as make chaos takes it, without the
// zero units Go adds: 2m, 1h, 90s, 1h30m.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
