// The options: every flag with its variable and default, how they are read
// (command line over environment over default), and --help.

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// embedded is the --redis-url value that runs Redis in the process.
const embedded = "embedded"

// option is one command-line flag and the environment variable behind it.
// The table drives parsing, the environment and --help alike, so the three
// cannot drift apart.
type option struct {
	name  string // the flag, without dashes
	env   string // "" when the flag has no variable
	arg   string // the value's placeholder in --help; "" for a switch
	def   string // the default, as parsed
	shown string // the default as --help shows it, when def is not the whole story
	help  string
}

func (o option) isBool() bool { return o.arg == "" }

var options = []option{
	{name: "vista-url", env: "VISTA_API_URL", arg: "URL", shown: "required unless --demo",
		help: "base URL of Vista Connect, e.g. https://connect.example.com/WSVistaWebClient/"},
	{name: "vista-token", env: "VISTA_API_TOKEN", arg: "TOKEN", shown: "empty",
		help: "sent as the header connectapitoken; never printed or logged"},
	{name: "redis-url", env: "REDIS_URL", arg: "URL", def: "redis://127.0.0.1:6379/0",
		help: "redis://, rediss:// (TLS), unix://, or redis-sentinel://[user:password@]host:port[,host:port...]/MASTER[/DB]\n" +
			"(?sentinel_user=U&sentinel_password=P when the sentinels want credentials of their own);\n" +
			"\"embedded\" runs an in-process Redis on a loopback port that is logged"},
	{name: "redis-ca", env: "REDIS_CA", arg: "FILE", shown: "the system's roots",
		help: "PEM file of the CA that signed Redis's certificate (rediss://), for a private CA"},
	{name: "redis-cert", env: "REDIS_CERT", arg: "FILE", shown: "none",
		help: "PEM file of a client certificate, for a Redis that wants one (tls-auth-clients); with --redis-key"},
	{name: "redis-key", env: "REDIS_KEY", arg: "FILE", shown: "none",
		help: "PEM file of the client certificate's private key"},
	{name: "prefix", env: "VISTA_WARMER_PREFIX", arg: "PREFIX", def: "vista",
		help: "prefix of every key and channel; in Redis Cluster it needs a hash tag, e.g. {vista}"},
	{name: "listen", env: "VISTA_WARMER_LISTEN", arg: "ADDR", def: "127.0.0.1:9470",
		help: "HTTP address of /metrics, /healthz and /readyz"},
	{name: "timezone", env: "VISTA_WARMER_TIMEZONE", arg: "ZONE", shown: "the machine's zone",
		help: "zone of a cinema whose TimeZoneId is empty or unknown (IANA or Windows name)"},
	{name: "cinema-timezone", env: "VISTA_WARMER_CINEMA_TIMEZONE", arg: "ID=ZONE,...", shown: "none",
		help: "per-cinema zones, tried before --timezone when a cinema's TimeZoneId is empty or unknown,\ne.g. 1001=Europe/Berlin,1002=\"AUS Eastern Standard Time\" (quotes for the shell only)"},
	{name: "session-grace", env: "VISTA_WARMER_SESSION_GRACE", arg: "DURATION", def: "20m",
		help: "a session is kept (and checked every minute) until its showtime plus this"},
	{name: "horizon", env: "VISTA_WARMER_HORIZON", arg: "DURATION", def: "1h",
		help: "sessions further ahead are not checked on their own, only by full reloads"},
	{name: "near-window", env: "VISTA_WARMER_NEAR_WINDOW", arg: "DURATION", def: "10m",
		help: "within this of its showtime, either side, a session is checked every --near-interval"},
	{name: "near-interval", env: "VISTA_WARMER_NEAR_INTERVAL", arg: "DURATION", def: "10s",
		help: "how often a session inside --near-window is checked"},
	{name: "window-queries", env: "VISTA_WARMER_WINDOW_QUERIES", def: "true", shown: "on",
		help: "read the seats of every session within --horizon (and started within --session-grace) every --near-interval,\nand of those up to --later-horizon every --later-interval, in a few paged window queries\n(Sessions?$filter=Showtime ge ... and Showtime lt ...); checks by id stay as the floor;\n--window-queries=false checks by id alone (the variable takes 1/true/yes or 0/false/no)"},
	{name: "later-horizon", env: "VISTA_WARMER_LATER_HORIZON", arg: "DURATION", def: "6h",
		help: "with --window-queries, sessions up to this far ahead are read every --later-interval; at or below --horizon: none"},
	{name: "later-interval", env: "VISTA_WARMER_LATER_INTERVAL", arg: "DURATION", def: "2m",
		help: "how often the sessions from --horizon to --later-horizon are read"},
	{name: "stream-maxlen", env: "VISTA_WARMER_STREAM_MAXLEN", arg: "N", def: "100000",
		help: "approximate length cap of the event stream P:events (XADD MAXLEN ~)"},
	{name: "cinemas-cron", env: "VISTA_WARMER_CINEMAS_CRON", arg: "SPEC", def: "30 5 * * *",
		help: "full reload of the cinemas: cron (minute hour dom month dow) or @every 1h"},
	{name: "films-cron", env: "VISTA_WARMER_FILMS_CRON", arg: "SPEC", def: "20 5 * * *",
		help: "full reload of the films"},
	{name: "sessions-cron", env: "VISTA_WARMER_SESSIONS_CRON", arg: "SPEC", def: "10 * * * *",
		help: "full reload of the sessions"},
	{name: "log-format", env: "VISTA_WARMER_LOG_FORMAT", arg: "FORMAT", def: "text",
		help: "text (coloured on a terminal) or json"},
	{name: "log-level", env: "VISTA_WARMER_LOG_LEVEL", arg: "LEVEL", def: "info",
		help: "debug, info, warn or error"},
	{name: "keep-raw", env: "VISTA_WARMER_KEEP_RAW", def: "false", shown: "off",
		help: "also store each entity's upstream JSON in the field raw (the variable takes 1/true/yes or 0/false/no);\na row over 64 KiB is then refused"},
	{name: "cinema-fields", env: "VISTA_WARMER_CINEMA_FIELDS", arg: "FIELD,...", shown: "none",
		help: "further Vista fields to keep in each cinema's hash, under their snake_case names,\ne.g. HOPK,ParkingInfo (hopk, parking_info); a change of one sends an item event"},
	{name: "film-fields", env: "VISTA_WARMER_FILM_FIELDS", arg: "FIELD,...", shown: "none",
		help: "further Vista fields to keep in each film's hash, e.g. TrailerUrl,Synopsis (trailer_url, synopsis)"},
	{name: "session-fields", env: "VISTA_WARMER_SESSION_FIELDS", arg: "FIELD,...", shown: "none",
		help: "further Vista fields to keep in each session's hash, e.g. AllowTicketSales,SalesChannels;\na text value as it is, a number or boolean as its JSON, an array or object as compact JSON"},
	{name: "events", env: "VISTA_WARMER_EVENTS", arg: "MODE", def: "pubsub",
		help: "how the channels are published: pubsub (PUBLISH; readers SUBSCRIBE) or sharded (SPUBLISH, Redis 7;\n" +
			"readers SSUBSCRIBE), which in a cluster keeps the events on the shard that holds the cache"},
	{name: "max-drop", env: "VISTA_WARMER_MAX_DROP", arg: "PERCENT", def: "50%",
		help: "a full reload that would remove more than this share of a kind's entries (an empty list,\nsay) is held back, /readyz not ready, until a reload a minute or more later says the same;\n100% never holds one back"},
	{name: "max-body", env: "VISTA_WARMER_MAX_BODY", arg: "SIZE", def: "256MiB",
		help: "the largest answer (one page) taken from Vista, e.g. 512MiB or 1GiB; a larger one fails the\nreload, which then changes nothing"},
	{name: "upstream-concurrency", env: "VISTA_WARMER_UPSTREAM_CONCURRENCY", arg: "N", def: "4",
		help: "at most this many requests to Vista in flight at once, reloads and seat checks together; when\nshort, seat checks go nearest showtime first, and reload pages after those within the hour\n(the gauges vista_warmer_upstream_budget_in_use and vista_warmer_upstream_budget_waiting show it)"},
	{name: "upstream-rate", env: "VISTA_WARMER_UPSTREAM_RATE", arg: "PER_SECOND", def: "10",
		help: "at most this many requests to Vista a second (e.g. 10, 0.5), spaced evenly, in the same budget;\na 429 or 503 with Retry-After holds every request that long (up to 30s), one without it\nhalves the rate for a minute"},
	{name: "instance-id", env: "VISTA_WARMER_INSTANCE_ID", arg: "ID", shown: "host name-pid",
		help: "this instance's name in the lease P:lease and in P:meta writer"},
	{name: "lease-ttl", env: "VISTA_WARMER_LEASE_TTL", arg: "DURATION", def: "10s",
		help: "expiry of the writer's lease: a standby takes over this long after a writer dies"},
	{name: "version", def: "false", shown: "off",
		help: "print the version, commit, build date and Go version, and exit"},
	{name: "demo", def: "false", shown: "off",
		help: "serve a built-in simulated Vista (seats sell as showtime nears) and use embedded Redis unless\n--redis-url is on the command line (REDIS_URL is not used, so the demo never writes to the\nRedis your environment names); unless set, sessions reload @every 2m, films @every 10m,\ncinemas @every 15m, and --timezone is UTC (the zone the simulator uses for its cinema without one)"},
}

// demoCron are the demo's reload schedules, used unless the flag or its
// variable is set: often enough that a short look shows reloads too.
var demoCron = map[string]string{
	"cinemas-cron":  "@every 15m",
	"films-cron":    "@every 10m",
	"sessions-cron": "@every 2m",
}

var levels = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "warning": slog.LevelWarn, "error": slog.LevelError,
}

// usageError is a bad command line or a setting the environment refuses at
// start: the process exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// value is a flag.Value that only records what was given; parse validates it
// afterwards, when it knows whether the value came from a flag or a variable.
type value struct {
	opt *option
	raw string
	set bool
}

func (v *value) String() string { return "" } // --help never shows a value

func (v *value) Set(s string) error { v.raw, v.set = s, true; return nil }

func (v *value) IsBoolFlag() bool { return v.opt != nil && v.opt.isBool() }

// setting is the value an option ends up with and where it came from.
type setting struct {
	raw  string
	from string // "flag", "env" or "default"
	opt  *option
}

// label names a setting in an error: the flag, and the variable when the
// value came from it.
func (s setting) label() string {
	if s.from == "env" {
		return "--" + s.opt.name + " (from " + s.opt.env + ")"
	}
	return "--" + s.opt.name
}

func (s setting) explicit() bool { return s.from != "default" }

// parseConfig reads args and the environment into a Config. It returns
// flag.ErrHelp after writing the usage to stdout for -h and --help.
func parseConfig(args []string, lookupEnv func(string) (string, bool), stdout io.Writer) (*Config, error) {
	fs := flag.NewFlagSet("vista-warmer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	vals := make(map[string]*value, len(options))
	for i := range options {
		v := &value{opt: &options[i]}
		vals[options[i].name] = v
		fs.Var(v, options[i].name, options[i].help)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeUsage(stdout)
			return nil, flag.ErrHelp
		}
		return nil, flagError(err)
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q (flags start with --; see --help)", fs.Arg(0))
	}
	if v := vals["version"]; v.set && v.raw != "false" {
		fmt.Fprintln(stdout, buildOf())
		return nil, flag.ErrHelp // nothing to run
	}

	set := make(map[string]setting, len(options))
	for i := range options {
		o := &options[i]
		s := setting{raw: o.def, from: "default", opt: o}
		if v := vals[o.name]; v.set {
			s.raw, s.from = v.raw, "flag"
		} else if o.env != "" {
			if env, ok := lookupEnv(o.env); ok && env != "" {
				s.raw, s.from = env, "env"
			}
		}
		set[o.name] = s
	}
	return validate(set)
}

// flagError rewrites the flag package's messages in the program's words.
func flagError(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return usagef("unknown flag --%s (see --help)", strings.TrimLeft(name, "-"))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return usagef("--%s needs a value", strings.TrimLeft(name, "-"))
	}
	return usagef("%s", msg)
}

// writeUsage writes --help. Defaults come from the table, never from the
// environment, so a token in VISTA_API_TOKEN cannot show up here.
func writeUsage(w io.Writer) {
	var b strings.Builder
	b.WriteString(`vista-warmer keeps a Redis cache of Vista Connect's cinemas, films and sessions warm,
checking seats more often as showtime nears, and publishes every change on Redis channels.

Usage:
  vista-warmer [flags]

Readers' commands, on the same --redis-url and --prefix (each has --help):
  vista-warmer status      the writer, the heartbeat, what the cache holds; exit 1 when stale
  vista-warmer get         KIND ID: one cinema, film or session
  vista-warmer sessions    --cinema ID [--from T] [--to T]: a cinema's sessions
  vista-warmer watch       [--from SEQ] [--kind K]: the change events as they come

Every flag can also be set by the environment variable shown beside it; a flag
wins over its variable, a variable over the default.

Flags:
`)
	for _, o := range options {
		head := "  --" + o.name
		if !o.isBool() {
			head += " " + o.arg
		}
		if o.env != "" {
			head += "  [" + o.env + "]"
		}
		def := o.shown
		if def == "" {
			def = o.def
		}
		b.WriteString(head + "\n")
		for line := range strings.SplitSeq(o.help, "\n") {
			b.WriteString("        " + line + "\n")
		}
		fmt.Fprintf(&b, "        (default: %s)\n", def)
	}
	b.WriteString(`  -h, --help
        show this help

HTTP (on --listen): /metrics (Prometheus); /healthz (200 while this instance can
do its job: Redis answers, is no replica, takes the lease and the writes, grants
every command and does not evict the cache; else 503 and why); /readyz (200 once
the first full load of all three lists is in Redis and while the cache is kept,
on a standby too; 503 and why while a drop is held back, see --max-drop, or the
cache is not kept; the body is {"role", "ready", "reason", "heartbeat_age_seconds",
"last_reloads"}). Both answer from what the warmer saw, never waiting on Redis.

Examples:
  vista-warmer --vista-url https://connect.example.com/WSVistaWebClient/ --redis-url redis://127.0.0.1:6379/0
  VISTA_API_TOKEN=... vista-warmer --vista-url https://connect.example.com/WSVistaWebClient/ --log-format json
  vista-warmer --demo        # a simulated Vista and an embedded Redis: nothing else to run
`)
	io.WriteString(w, b.String())
}
