package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/reader"
)

// A reader's command (contract section 6): the same binary reads the cache
// a warmer keeps, on the same --redis-url and --prefix.
type command struct {
	usage, about string
	// flags adds the command's own flags and returns what runs it.
	flags func(fs *flag.FlagSet) func(ctx context.Context, c *cmdEnv, args []string) error
}

var commands = map[string]command{
	"status": {"status [--json]",
		"The writer, the heartbeat's age, what the cache holds and its last reloads.\nExit status 1 when the cache is stale: no P:meta, no writer, or a heartbeat older than 30 s.",
		func(*flag.FlagSet) func(context.Context, *cmdEnv, []string) error { return runStatus }},
	"get": {"get [--json] cinema|film|session ID",
		"One entity as the cache holds it. With --json, its hash as one object: the contract's field names,\nevery value a string, as sessions --json prints each session.",
		func(*flag.FlagSet) func(context.Context, *cmdEnv, []string) error { return runGet }},
	"sessions": {"sessions --cinema ID [--from TIME] [--to TIME] [--json]",
		"A cinema's sessions whose showtime is between two times (RFC 3339, default: from now to 24 hours on),\nin showtime order. With --json, each session's hash as one object a line, as get --json prints it.\nAn id still indexed whose hash has expired (no warmer ran to take it out) is left out.",
		flagsSessions},
	"watch": {"watch [--from SEQ] [--kind KIND] [--json]",
		"The change events in seq order. Without --from, from the next event on. With --from N, first the\nevents after seq N of the current epoch that the stream still holds (--from 0: all of them; a seq\nprinted before: the next one), then on as they come. A line \"resync\" says events were missed or the\ncache was built anew. With --json, each event's JSON as the warmer published it, and a resync as\n{\"resync\":true,\"epoch\":...,\"seq\":...}.",
		flagsWatch},
}

// cmdEnv is what a command runs with.
type cmdEnv struct {
	out    io.Writer
	rdb    redis.UniversalClient
	r      *reader.Reader
	prefix string
	json   bool
}

// errStale makes status exit 1.
var errStale = errors.New("the cache is stale")

// staleAfter is how old the heartbeat may be before status calls the cache
// stale: the warmer writes it at least every 10 s.
const staleAfter = 30 * time.Second

// runCommand runs a reader's command and returns the exit status: 0; 1
// when it failed, or status found the cache stale; 2 for a bad command
// line.
func runCommand(ctx context.Context, name string, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	cmd := commands[name]
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	setting := func(flagName, env, def string) *string {
		v := def
		if e, ok := lookupEnv(env); ok && e != "" {
			v = e
		}
		return fs.String(flagName, v, "")
	}
	redisURL := setting("redis-url", "REDIS_URL", "redis://127.0.0.1:6379/0")
	prefix := setting("prefix", "VISTA_WARMER_PREFIX", "vista")
	ca := setting("redis-ca", "REDIS_CA", "")
	cert := setting("redis-cert", "REDIS_CERT", "")
	key := setting("redis-key", "REDIS_KEY", "")
	asJSON := fs.Bool("json", false, "")
	run := cmd.flags(fs)
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vista-warmer %s: %s\n", name, fmt.Sprintf(format, a...))
		return 2
	}
	// Flags may come before or after the arguments.
	var rest []string
	for left := args; ; {
		if err := fs.Parse(left); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stdout, "Usage: vista-warmer %s\n\n%s\n\nRedis: --redis-url, --prefix, --redis-ca, --redis-cert, --redis-key, as for the warmer and from the\nsame variables (REDIS_URL, VISTA_WARMER_PREFIX, REDIS_CA, ...). --json: JSON, one object a line.\n",
					cmd.usage, cmd.about)
				return 0
			}
			return bad("%v (see vista-warmer %s --help)", err, name)
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		left = fs.Args()[1:]
	}
	opts, sc, err := redisTarget(*redisURL, *ca, *cert, *key)
	if err != nil {
		return bad("%v", err)
	}
	var rdb redis.UniversalClient
	if sc != nil {
		rdb = openSentinel(opts, sc)
	} else if rdb, err = openRedis(ctx, opts, *prefix, slog.New(slog.DiscardHandler)); err != nil {
		return bad("%v", err)
	}
	defer rdb.Close()
	c := &cmdEnv{out: stdout, rdb: rdb, r: reader.New(rdb, *prefix), prefix: *prefix, json: *asJSON}
	switch err := run(ctx, c, rest); {
	case err == nil:
		return 0
	case errors.Is(err, errStale):
		return 1
	case errors.Is(err, context.Canceled):
		return 0
	case errors.As(err, new(*usageError)):
		return bad("%v", err)
	default:
		fmt.Fprintf(stderr, "vista-warmer %s: %v\n", name, err)
		return 1
	}
}

// redisTarget parses a Redis URL and the TLS files as the warmer does.
func redisTarget(raw, ca, cert, key string) (*redis.Options, *SentinelConfig, error) {
	opt := func(name, env string) *option { return &option{name: name, env: env} }
	c := &Config{}
	rs := setting{raw: raw, from: "flag", opt: opt("redis-url", "REDIS_URL")}
	var err error
	if strings.HasPrefix(strings.TrimSpace(raw), sentinelScheme+"://") {
		c.RedisOptions, c.Sentinel, err = parseSentinelURL(rs)
	} else {
		c.RedisOptions, err = parseRedisURL(rs)
	}
	if err != nil {
		return nil, nil, err
	}
	err = redisTLS(c, setting{raw: ca, from: "flag", opt: opt("redis-ca", "REDIS_CA")},
		setting{raw: cert, from: "flag", opt: opt("redis-cert", "REDIS_CERT")},
		setting{raw: key, from: "flag", opt: opt("redis-key", "REDIS_KEY")})
	return c.RedisOptions, c.Sentinel, err
}

// emit writes v as one JSON line.
func (c *cmdEnv) emit(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.out, "%s\n", b)
	return err
}

// statusReport is what status says.
type statusReport struct {
	Writer       string               `json:"writer"`
	Epoch        string               `json:"epoch"`
	Seq          int64                `json:"seq"`
	HeartbeatAge *float64             `json:"heartbeat_age_seconds"`
	Counts       map[keys.Kind]int64  `json:"counts"`
	Sessions     map[string]int64     `json:"sessions_by_showtime"`
	LastReloads  map[keys.Kind]string `json:"last_reloads"`
	Stale        bool                 `json:"stale"`
	Reason       string               `json:"reason"` // "" when fresh
}

// statusOf reads what status and the board say of the cache under p.
func statusOf(ctx context.Context, rdb redis.UniversalClient, p string) (statusReport, error) {
	now := time.Now()
	ts := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	pipe := rdb.Pipeline()
	meta := pipe.HGetAll(ctx, keys.Meta(p))
	cinemas := pipe.SCard(ctx, keys.Index(p, keys.Cinemas))
	films := pipe.SCard(ctx, keys.Index(p, keys.Films))
	sessions := pipe.ZCard(ctx, keys.Index(p, keys.Sessions))
	// By showtime, with the warmer's default windows.
	started := pipe.ZCount(ctx, keys.Index(p, keys.Sessions), "-inf", "("+ts(-10*time.Minute))
	near := pipe.ZCount(ctx, keys.Index(p, keys.Sessions), ts(-10*time.Minute), ts(10*time.Minute))
	approaching := pipe.ZCount(ctx, keys.Index(p, keys.Sessions), "("+ts(10*time.Minute), ts(time.Hour))
	beyond := pipe.ZCount(ctx, keys.Index(p, keys.Sessions), "("+ts(time.Hour), "+inf")
	if _, err := pipe.Exec(ctx); err != nil {
		return statusReport{}, err
	}
	m := meta.Val()
	rep := statusReport{
		Writer: m[keys.MetaWriter], Epoch: m[keys.MetaEpoch],
		Counts: map[keys.Kind]int64{keys.Cinemas: cinemas.Val(), keys.Films: films.Val(), keys.Sessions: sessions.Val()},
		Sessions: map[string]int64{"started": started.Val(), "near": near.Val(), "approaching": approaching.Val(),
			"beyond_horizon": beyond.Val()},
		LastReloads: map[keys.Kind]string{},
	}
	rep.Seq, _ = strconv.ParseInt(m[keys.MetaSeq], 10, 64)
	for _, k := range keys.Kinds {
		if v := m[keys.Loaded(k)]; v != "" {
			rep.LastReloads[k] = v
		}
	}
	if hb, err := time.Parse(time.RFC3339, m[keys.MetaHeartbeat]); err == nil {
		age := now.Sub(hb).Seconds()
		rep.HeartbeatAge = &age
	}
	switch {
	case len(m) == 0:
		rep.Reason = "no " + keys.Meta(p) + ": no warmer has written this prefix"
	case rep.Writer == "":
		rep.Reason = "no writer"
	case rep.HeartbeatAge == nil || *rep.HeartbeatAge > staleAfter.Seconds():
		rep.Reason = "the heartbeat is older than " + staleAfter.String()
	case len(rep.LastReloads) < len(keys.Kinds):
		rep.Reason = "not every kind is loaded yet"
	}
	rep.Stale = rep.Reason != ""
	return rep, nil
}

func runStatus(ctx context.Context, c *cmdEnv, args []string) error {
	if len(args) > 0 {
		return usagef("status takes no arguments")
	}
	p := c.prefix
	rep, err := statusOf(ctx, c.rdb, p)
	if err != nil {
		return err
	}
	if c.json {
		if err := c.emit(rep); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
		age := "none"
		if rep.HeartbeatAge != nil {
			age = (time.Duration(*rep.HeartbeatAge * float64(time.Second))).Round(100*time.Millisecond).String() + " ago"
		}
		state := "fresh"
		if rep.Stale {
			state = "STALE: " + rep.Reason
		}
		fmt.Fprintf(tw, "cache\t%s (prefix %s)\n", state, p)
		fmt.Fprintf(tw, "writer\t%s\n", orNone(rep.Writer))
		fmt.Fprintf(tw, "heartbeat\t%s\n", age)
		fmt.Fprintf(tw, "epoch, seq\t%s, %d\n", orNone(rep.Epoch), rep.Seq)
		fmt.Fprintf(tw, "held\t%d cinemas, %d films, %d sessions\n", rep.Counts[keys.Cinemas], rep.Counts[keys.Films], rep.Counts[keys.Sessions])
		fmt.Fprintf(tw, "sessions by showtime\t%d started, %d near (±10m), %d approaching (to 1h), %d beyond the horizon\n",
			rep.Sessions["started"], rep.Sessions["near"], rep.Sessions["approaching"], rep.Sessions["beyond_horizon"])
		for _, k := range keys.Kinds {
			fmt.Fprintf(tw, "last %s reload\t%s\n", k.Singular(), orNone(rep.LastReloads[k]))
		}
		tw.Flush()
	}
	if rep.Stale {
		return errStale
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func runGet(ctx context.Context, c *cmdEnv, args []string) error {
	if len(args) != 2 {
		return usagef("want a kind (cinema, film or session) and an id")
	}
	k := keys.Kind(args[0] + "s")
	if !k.Valid() {
		return usagef("%q is no kind: cinema, film or session", args[0])
	}
	h, err := c.r.Hash(ctx, k, args[1])
	if err != nil {
		return err
	}
	if c.json {
		return c.emit(h)
	}
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	names := append(append([]string{}, keys.Fields[k]...), sortedExtra(k, h)...)
	for _, f := range append(names, keys.FieldUpdatedAt, keys.FieldChangedAt, keys.FieldNextCheckAt) {
		if v, ok := h[f]; ok {
			fmt.Fprintf(tw, "%s\t%s\n", f, v)
		}
	}
	return tw.Flush()
}

// sortedExtra lists a hash's fields beyond the contract's, raw last.
func sortedExtra(k keys.Kind, h map[string]string) []string {
	var out []string
	for f := range h {
		known := f == keys.FieldUpdatedAt || f == keys.FieldChangedAt || f == keys.FieldNextCheckAt || f == keys.FieldRaw
		for _, c := range keys.Fields[k] {
			known = known || c == f
		}
		if !known {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	if _, ok := h[keys.FieldRaw]; ok {
		out = append(out, keys.FieldRaw)
	}
	return out
}

func flagsSessions(fs *flag.FlagSet) func(context.Context, *cmdEnv, []string) error {
	cinema := fs.String("cinema", "", "")
	from := fs.String("from", "", "")
	to := fs.String("to", "", "")
	return func(ctx context.Context, c *cmdEnv, args []string) error {
		if *cinema == "" || len(args) > 0 {
			return usagef("want --cinema ID, and no arguments")
		}
		start, end := time.Now(), time.Now().Add(24*time.Hour)
		var err error
		if *from != "" {
			if start, err = time.Parse(time.RFC3339, *from); err != nil {
				return usagef("--from: %q is not an RFC 3339 time", *from)
			}
			if *to == "" {
				end = start.Add(24 * time.Hour)
			}
		}
		if *to != "" {
			if end, err = time.Parse(time.RFC3339, *to); err != nil {
				return usagef("--to: %q is not an RFC 3339 time", *to)
			}
		}
		if c.json {
			// The hashes as they are, so that a session reads the same
			// here as from get --json.
			list, err := c.r.CinemaSessionHashes(ctx, *cinema, start, end)
			if err != nil {
				return err
			}
			for _, h := range list {
				if err := c.emit(h); err != nil {
					return err
				}
			}
			return nil
		}
		list, err := c.r.CinemaSessions(ctx, *cinema, start, end)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "showtime\tsession\tfilm\tscreen\tseats\tstate")
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", s.Showtime.Format("Mon 15:04 MST"), s.ID, s.FilmID, s.ScreenName, s.SeatsAvailable, s.State)
		}
		return tw.Flush()
	}
}

func flagsWatch(fs *flag.FlagSet) func(context.Context, *cmdEnv, []string) error {
	var from *int64 // nil: from now
	fs.Func("from", "", func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errors.New("want a seq, 0 or more")
		}
		from = &n
		return nil
	})
	kind := fs.String("kind", "", "")
	return func(ctx context.Context, c *cmdEnv, args []string) error {
		if len(args) > 0 {
			return usagef("watch takes no arguments")
		}
		if *kind != "" && !keys.Kind(*kind).Valid() {
			return usagef("--kind: %q: want cinemas, films or sessions", *kind)
		}
		var pos reader.Position // from the next event
		if from != nil {
			// After seq N of the current epoch; with no P:meta, no epoch
			// has begun, and the next event is its first.
			var err error
			if pos, err = c.r.After(ctx, *from); err != nil {
				return err
			}
		}
		return c.r.Watch(ctx, pos, func(ev reader.Event) error {
			if ev.Resync {
				if c.json {
					c.emit(map[string]any{"resync": true, "epoch": ev.Epoch, "seq": ev.Seq})
				} else {
					fmt.Fprintf(c.out, "resync: events were missed or the cache was built anew (epoch %s, seq %d)\n", ev.Epoch, ev.Seq)
				}
			}
			if *kind != "" && string(ev.Kind) != *kind {
				return nil
			}
			if c.json {
				// As published (contract section 3), not as this
				// binary's Go type would spell it.
				_, err := fmt.Fprintf(c.out, "%s\n", ev.Data)
				return err
			}
			line := fmt.Sprintf("%d %s %s %s", ev.Seq, ev.At, ev.Kind, ev.Event.Event)
			switch ev.Event.Event {
			case keys.EventItem:
				line += " " + ev.ID
				if ev.SeatsAvailable != nil {
					line += fmt.Sprintf(" seats=%d", *ev.SeatsAvailable)
				}
				if len(ev.Changed) > 0 {
					line += " changed=" + strings.Join(ev.Changed, ",")
				}
			case keys.EventRemoved:
				line += " " + ev.ID + " " + ev.Reason
			case keys.EventFullReload:
				if ev.Count != nil {
					line += fmt.Sprintf(" count=%d", *ev.Count)
				}
			}
			_, err := fmt.Fprintln(c.out, line)
			return err
		})
	}
}
