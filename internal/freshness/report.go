package freshness

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// The policies the targets compare.
const (
	ours       = "warmer"
	v11        = "warmer-v1.1" // before window queries: checks by id alone
	perSession = "per-session"
	fixed      = "fixed"
)

// Targets of the table's PASS/FAIL lines besides the near window's.
const (
	approachingP99 = 15 * time.Second
	approachingP50 = 6 * time.Second
	laterP99       = 5 * time.Minute
)

// WriteTable writes the results as a markdown table, then the targets as
// PASS/FAIL lines and the notes a reader needs to trust them.
func WriteTable(w io.Writer, results []Result, nearTarget time.Duration) {
	fmt.Fprintln(w, "| scenario | policy | near window p50 / p90 / p99 / max (s) | approaching p50 / p90 / p99 / max (s) | started p50 / p90 / p99 / max (s) | later today p50 / p90 / p99 / max (s) | upstream req/h | window queries/h | seat checks/h | ids/check | ids/h | Redis cmd/h sent | Redis cmd/h run |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|")
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Scenario, r.Policy, cell(r.Tiers[0]), cell(r.Tiers[1]), cell(r.Tiers[2]), cell(r.Tiers[3]),
			num(r.perHour(r.Requests)), num(r.perHour(r.WindowRequests)), num(r.perHour(r.SeatRequests)),
			ratio(r.CheckIDs, r.SeatRequests), num(r.perHour(r.CheckIDs)),
			num(r.perHour(r.RedisCommands)), num(r.perHour(r.ServerCommands)))
	}
	fmt.Fprintln(w)
	for _, sc := range scenarioNames(results) {
		us, a, b := find(results, sc, ours), find(results, sc, perSession), find(results, sc, fixed)
		if us == nil {
			continue
		}
		p99 := us.Tiers[0].P99
		verdict(w, p99 <= nearTarget, "%s: near-window staleness p99 %s s ≤ %s s (near interval + 1 s)", sc, secs(p99), secs(nearTarget))
		ap := us.Tiers[1]
		verdict(w, ap.N > 0 && ap.P99 <= approachingP99 && ap.P50 <= approachingP50,
			"%s: approaching staleness p50 %s s ≤ %s s, p99 %s s ≤ %s s", sc, secs(ap.P50), secs(approachingP50), secs(ap.P99), secs(approachingP99))
		lt := us.Tiers[3]
		verdict(w, lt.N > 0 && lt.P99 <= laterP99, "%s: later-today staleness p99 %s s ≤ %s s", sc, secs(lt.P99), secs(laterP99))
		if old := find(results, sc, v11); old != nil {
			verdict(w, us.perHour(us.Requests) <= old.perHour(old.Requests),
				"%s: upstream requests/h %s ≤ %s's %s", sc, num(us.perHour(us.Requests)), v11, num(old.perHour(old.Requests)))
			verdict(w, us.ServerCommands <= 2*old.ServerCommands,
				"%s: Redis commands run/h %s ≤ 2 × %s's %s (it is %.2f×)", sc, num(us.perHour(us.ServerCommands)), v11,
				num(old.perHour(old.ServerCommands)), div(us.ServerCommands, old.ServerCommands))
		}
		if a != nil {
			verdict(w, us.perHour(us.Requests)*20 <= a.perHour(a.Requests),
				"%s: upstream requests/h %s ≤ 1/20 of per-session's %s (it is 1/%.1f)",
				sc, num(us.perHour(us.Requests)), num(a.perHour(a.Requests)), div(a.Requests, us.Requests))
		}
		if b != nil {
			verdict(w, us.perHour(us.CheckIDs)*3 <= b.perHour(b.CheckIDs),
				"%s: ids checked/h %s ≤ 1/3 of fixed's %s (it is 1/%.1f)",
				sc, num(us.perHour(us.CheckIDs)), num(b.perHour(b.CheckIDs)), div(b.CheckIDs, us.CheckIDs))
		}
	}
}

// WriteNotes writes what each run saw besides the table: changes counted,
// the comparison of Redis with the log, the outage, the steps.
func WriteNotes(w io.Writer, results []Result) {
	for _, r := range results {
		fmt.Fprintf(w, "- %s/%s: %d near, %d approaching, %d started, %d later-today changes, %d unresolved; Redis sampled %d times, %d disagreed with the log; %d steps, %d step errors",
			r.Scenario, r.Policy, r.Tiers[0].N, r.Tiers[1].N, r.Tiers[2].N, r.Tiers[3].N, r.Unresolved, r.Sampled, r.Mismatched,
			r.Steps, r.StepErrors)
		if !r.Outage[0].IsZero() {
			fmt.Fprintf(w, "; Sessions list failing %s–%s UTC", r.Outage[0].UTC().Format("15:04"), r.Outage[1].UTC().Format("15:04"))
		}
		fmt.Fprintf(w, "; took %v\n", r.Took.Round(time.Second))
	}
}

// Plot returns the chart of p99 staleness by minute relative to showtime:
// one panel per scenario, one line per policy.
func Plot(results []Result, nearTarget time.Duration) Chart {
	c := Chart{
		Title:  "Seat staleness in Redis, p99 per minute relative to showtime",
		XLabel: "minutes from showtime when the seats changed upstream (negative: before)",
		YLabel: "p99 staleness (log scale)",
		XFrom:  curveFrom, XTo: curveTo,
		HLine: nearTarget,
		Marks: []Mark{{From: -10, To: 10, Label: "near window"}, {From: -60, To: -60, Label: "horizon"}},
	}
	for _, sc := range scenarioNames(results) {
		p := Panel{Title: sc}
		for _, r := range results {
			if r.Scenario != sc {
				continue
			}
			s := Series{Name: r.Policy}
			for i, d := range r.Curve {
				s.X = append(s.X, float64(curveFrom+i)+0.5)
				s.Y = append(s.Y, d)
			}
			p.Series = append(p.Series, s)
		}
		c.Panels = append(c.Panels, p)
	}
	return c
}

func (r *Result) perHour(n int64) float64 {
	if r.Hours <= 0 {
		return 0
	}
	return float64(n) / r.Hours
}

func scenarioNames(results []Result) []string {
	var names []string
	for _, r := range results {
		if len(names) == 0 || names[len(names)-1] != r.Scenario {
			names = append(names, r.Scenario)
		}
	}
	return names
}

func find(results []Result, scenario, policy string) *Result {
	for i := range results {
		if results[i].Scenario == scenario && results[i].Policy == policy {
			return &results[i]
		}
	}
	return nil
}

func verdict(w io.Writer, ok bool, format string, args ...any) {
	v := "FAIL"
	if ok {
		v = "PASS"
	}
	fmt.Fprintf(w, "%s %s\n", v, fmt.Sprintf(format, args...))
}

func cell(s Summary) string {
	if s.N == 0 {
		return "no seat changes"
	}
	return strings.Join([]string{secs(s.P50), secs(s.P90), secs(s.P99), secs(s.Max)}, " / ")
}

func secs(d time.Duration) string {
	if d >= 100*time.Second {
		return fmt.Sprintf("%.0f", d.Seconds())
	}
	return fmt.Sprintf("%.1f", d.Seconds())
}

func num(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func ratio(a, b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(a)/float64(b))
}

func div(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
