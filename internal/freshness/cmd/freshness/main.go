// Command freshness plays a simulated day of a cinema chain against the
// warmer and a redis-server of its own, and prints how stale the seats in
// Redis get and what that costs upstream, for the project's refresh policy
// and two baselines, in three scenarios. See internal/freshness/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vista-warmer/vista-warmer/internal/freshness"
	"github.com/vista-warmer/vista-warmer/warmer"
)

func main() {
	// A signal ends the runs, which stop their redis-servers on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "freshness:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("freshness", flag.ContinueOnError)
	day := fs.String("day", "2031-11-26", "the day played (UTC); it must lie ahead of the real clock, as Redis expires session keys by it")
	from := fs.Duration("from", 19*time.Hour, "start of the part of the day measured, after midnight UTC (default: the chain's busiest four hours)")
	to := fs.Duration("to", 23*time.Hour, "end of the part of the day measured, after midnight UTC")
	warmup := fs.Duration("warmup", 30*time.Minute, "played before -from, from a cold cache, not measured")
	tail := fs.Duration("tail", 25*time.Minute, "played after -to so that late changes get their check, not measured")
	whole := fs.Bool("full-day", false, "measure the whole day (same as -from 0 -to 24h); about five times as long")
	svg := fs.String("svg", "docs/freshness.svg", "where to write the plot; empty for none")
	parallel := fs.Int("parallel", 3, "runs at once")
	policies := fs.String("policies", "", "comma-separated policies to run (warmer, warmer-v1.1, per-session, fixed); default all")
	scenarios := fs.String("scenarios", "", "comma-separated scenarios to run (normal, slow, list-fails); default all")
	cinemas := fs.Int("cinemas", 0, "cinemas in the chain (default 300)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, err := time.Parse(time.DateOnly, *day)
	if err != nil {
		return fmt.Errorf("-day: %w", err)
	}
	if d.Before(time.Now().Add(48 * time.Hour)) {
		return fmt.Errorf("-day %s: pick a day ahead of the real clock: the warmer sets session keys to expire at showtime + grace, which Redis counts on its own clock", *day)
	}
	if *whole {
		*from, *to = 0, 24*time.Hour
	}
	if *to <= *from {
		return errors.New("-to must come after -from")
	}
	o := freshness.Options{
		Chain: freshness.Chain(),
		From:  d.Add(*from), To: d.Add(*to),
		Warmup: *warmup, Tail: *tail,
		Parallel: *parallel,
		Progress: os.Stderr,
	}
	if *cinemas > 0 {
		o.Chain.Cinemas = *cinemas
	}
	o.Policies, err = pick(freshness.Policies(), *policies, func(p freshness.Policy) string { return p.Name })
	if err != nil {
		return fmt.Errorf("-policies: %w", err)
	}
	o.Scenarios, err = pick(freshness.Scenarios(), *scenarios, func(s freshness.Scenario) string { return s.Name })
	if err != nil {
		return fmt.Errorf("-scenarios: %w", err)
	}

	began := time.Now()
	results, err := freshness.Run(ctx, o)
	if err != nil {
		return err
	}
	near := warmer.DefaultPolicy().NearInterval + time.Second
	c := o.Chain
	fmt.Printf("Seat freshness: %d cinemas × %d screens × %d shows a day, %d days listed; %s %s–%s UTC measured (after %v warm-up, before %v tail); virtual clock stepped every 1 s; %v real time.\n\n",
		c.Cinemas, c.Screens, c.ShowsPerDay, c.Days, *day, clock(*from), clock(*to), *warmup, *tail, time.Since(began).Round(time.Second))
	freshness.WriteTable(os.Stdout, results, near)
	fmt.Println()
	freshness.WriteNotes(os.Stdout, results)
	if *svg != "" {
		if err := writeSVG(*svg, freshness.Plot(results, near)); err != nil {
			return err
		}
		fmt.Printf("\nplot: %s\n", *svg)
	}
	return nil
}

func clock(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60)
}

func pick[T any](all []T, names string, name func(T) string) ([]T, error) {
	if names == "" {
		return all, nil
	}
	var out []T
	for _, n := range strings.Split(names, ",") {
		i := slices.IndexFunc(all, func(x T) bool { return name(x) == strings.TrimSpace(n) })
		if i < 0 {
			return nil, fmt.Errorf("unknown %q", n)
		}
		out = append(out, all[i])
	}
	return out, nil
}

func writeSVG(path string, c freshness.Chart) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := c.WriteSVG(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
