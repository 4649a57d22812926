package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/warmer"
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

// Config is the validated command line.
type Config struct {
	VistaURL   string
	VistaToken string

	RedisURL      string         // as given; "embedded" for the in-process Redis
	RedisOptions  *redis.Options // parsed RedisURL; nil when embedded
	RedisExplicit bool           // set by flag or variable, not by default
	RedisFromFlag bool           // given as --redis-url on the command line: --demo uses it
	// Sentinel is set for a redis-sentinel:// URL: the sentinels to ask
	// for the master. RedisOptions then holds the master's credentials
	// and db.
	Sentinel *SentinelConfig

	Prefix string
	Listen string

	Zone        *time.Location // nil: the machine's zone
	CinemaZones map[string]*time.Location

	Policy                               warmer.Policy
	StreamMaxLen                         int64
	CinemasCron, FilmsCron, SessionsCron string

	LogFormat string
	LogLevel  slog.Level

	KeepRaw bool
	Fields  vista.Fields
	MaxDrop float64 // a share, 0 to 1; see warmer.Config.MaxDrop
	// ShardedEvents: --events sharded; see warmer.Config.ShardedEvents.
	ShardedEvents bool
	MaxBody       int64
	InstanceID    string
	LeaseTTL      time.Duration
	Demo          bool

	// The upstream budget: requests to Vista in flight and a second.
	UpstreamConcurrency int
	UpstreamRate        float64
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

func (v *value) String() string     { return "" } // --help never shows a value
func (v *value) Set(s string) error { v.raw, v.set = s, true; return nil }
func (v *value) IsBoolFlag() bool   { return v.opt != nil && v.opt.isBool() }

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

// validate checks every setting, in the order of --help, and stops at the
// first bad one.
func validate(set map[string]setting) (*Config, error) {
	c := &Config{}
	var err error
	str := func(name string) string { return strings.TrimSpace(set[name].raw) }

	if c.Demo, err = parseBool(set["demo"]); err != nil {
		return nil, err
	}
	if c.VistaURL = str("vista-url"); c.VistaURL != "" {
		if err := checkVistaURL(set["vista-url"]); err != nil {
			return nil, err
		}
	} else if !c.Demo {
		return nil, usagef("--vista-url is required (or set VISTA_API_URL, or use --demo)")
	}
	c.VistaToken = set["vista-token"].raw
	if strings.ContainsFunc(c.VistaToken, unicode.IsControl) {
		return nil, usagef("%s: contains a control character", set["vista-token"].label())
	}

	rs := set["redis-url"]
	c.RedisURL, c.RedisExplicit, c.RedisFromFlag = str("redis-url"), rs.explicit(), rs.from == "flag"
	switch {
	case c.RedisURL == embedded:
	case strings.HasPrefix(strings.TrimSpace(c.RedisURL), sentinelScheme+"://"):
		if c.RedisOptions, c.Sentinel, err = parseSentinelURL(rs); err != nil {
			return nil, err
		}
	default:
		if c.RedisOptions, err = parseRedisURL(rs); err != nil {
			return nil, err
		}
	}

	if err := redisTLS(c, set["redis-ca"], set["redis-cert"], set["redis-key"]); err != nil {
		return nil, err
	}

	if c.Prefix, err = checkPrefix(set["prefix"]); err != nil {
		return nil, err
	}
	if c.Listen, err = checkListen(set["listen"]); err != nil {
		return nil, err
	}
	if s := set["timezone"]; str("timezone") != "" {
		if c.Zone, err = vista.LoadZone(s.raw); err != nil {
			return nil, usagef("%s: unknown time zone %q (want an IANA name such as Europe/Berlin, or a Windows name)", s.label(), strings.TrimSpace(s.raw))
		}
	}
	if c.Zone == nil && c.Demo {
		c.Zone = time.UTC
	}
	if c.CinemaZones, err = parseCinemaZones(set["cinema-timezone"]); err != nil {
		return nil, err
	}

	p := warmer.DefaultPolicy()
	durations := []struct {
		name string
		dst  *time.Duration
		min  time.Duration
	}{
		{"session-grace", &p.Grace, 0},
		{"horizon", &p.Horizon, time.Second},
		{"near-window", &p.NearWindow, time.Second},
		{"near-interval", &p.NearInterval, time.Second},
		{"lease-ttl", &c.LeaseTTL, time.Second},
	}
	for _, d := range durations {
		if *d.dst, err = parseDuration(set[d.name], d.min); err != nil {
			return nil, err
		}
	}
	if p.NearWindow >= p.Horizon {
		return nil, usagef("--near-window must be shorter than --horizon (%v is not shorter than %v)", p.NearWindow, p.Horizon)
	}
	if p.NearInterval > p.Base {
		return nil, usagef("--near-interval must be at most %v, the interval just outside the near window (got %v)", p.Base, p.NearInterval)
	}
	c.Policy = p

	ms := set["stream-maxlen"]
	n, perr := strconv.ParseInt(strings.TrimSpace(ms.raw), 10, 64)
	switch {
	case perr != nil:
		return nil, usagef("%s: %q is not a whole number", ms.label(), ms.raw)
	case n < 1:
		return nil, usagef("%s: must be at least 1 (got %d)", ms.label(), n)
	}
	c.StreamMaxLen = n

	crons := []struct {
		name string
		dst  *string
	}{{"cinemas-cron", &c.CinemasCron}, {"films-cron", &c.FilmsCron}, {"sessions-cron", &c.SessionsCron}}
	for _, cr := range crons {
		name, dst := cr.name, cr.dst
		s := set[name]
		if c.Demo && !s.explicit() {
			s.raw = demoCron[name]
		}
		if *dst, err = checkCron(s); err != nil {
			return nil, err
		}
	}

	lf := set["log-format"]
	switch c.LogFormat = strings.ToLower(str("log-format")); c.LogFormat {
	case "text", "json":
	default:
		return nil, usagef("%s: unknown format %q (want text or json)", lf.label(), lf.raw)
	}
	ll := set["log-level"]
	level, ok := levels[strings.ToLower(str("log-level"))]
	if !ok {
		return nil, usagef("%s: unknown level %q (want debug, info, warn or error)", ll.label(), ll.raw)
	}
	c.LogLevel = level

	if c.KeepRaw, err = parseBool(set["keep-raw"]); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		dst  *[]string
	}{{"cinema-fields", &c.Fields.Cinemas}, {"film-fields", &c.Fields.Films}, {"session-fields", &c.Fields.Sessions}} {
		if *f.dst, err = parseFieldList(set[f.name]); err != nil {
			return nil, err
		}
	}
	switch ev := set["events"]; strings.TrimSpace(ev.raw) {
	case "pubsub":
	case "sharded":
		c.ShardedEvents = true
	default:
		return nil, usagef("%s: %q: want pubsub or sharded", ev.label(), ev.raw)
	}
	if c.MaxDrop, err = parsePercent(set["max-drop"]); err != nil {
		return nil, err
	}
	if c.MaxBody, err = parseSize(set["max-body"]); err != nil {
		return nil, err
	}
	uc := set["upstream-concurrency"]
	conc, perr := strconv.Atoi(strings.TrimSpace(uc.raw))
	switch {
	case perr != nil:
		return nil, usagef("%s: %q is not a whole number", uc.label(), uc.raw)
	case conc < 1:
		return nil, usagef("%s: must be at least 1 (got %d)", uc.label(), conc)
	}
	c.UpstreamConcurrency = conc
	if c.UpstreamRate, err = parseRate(set["upstream-rate"]); err != nil {
		return nil, err
	}
	is := set["instance-id"]
	if c.InstanceID = str("instance-id"); c.InstanceID == "" {
		c.InstanceID = defaultInstanceID()
	} else if strings.ContainsFunc(c.InstanceID, unicode.IsControl) {
		return nil, usagef("%s: contains a control character", is.label())
	}
	return c, nil
}

// parseFieldList reads "AllowTicketSales, SalesChannels" into Vista field
// names, refusing one the warmer could not keep.
func parseFieldList(s setting) ([]string, error) {
	var names []string
	for item := range strings.SplitSeq(s.raw, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		if slices.Contains(names, item) {
			return nil, usagef("%s: %s is given twice", s.label(), item)
		}
		names = append(names, item)
	}
	var f vista.Fields
	switch s.opt.name {
	case "cinema-fields":
		f.Cinemas = names
	case "film-fields":
		f.Films = names
	default:
		f.Sessions = names
	}
	if err := warmer.CheckFields(f); err != nil {
		return nil, usagef("%s: %v", s.label(), err)
	}
	return names, nil
}

// parseRate reads a number of requests a second: more than 0, and finite,
// for "no bound" is not a rate a Vista server lives with.
func parseRate(s setting) (float64, error) {
	r, err := strconv.ParseFloat(strings.TrimSpace(s.raw), 64)
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange), math.IsNaN(r), math.IsInf(r, 0):
		return 0, usagef("%s: %q is not a number of requests a second (e.g. 10, 0.5)", s.label(), s.raw)
	case r <= 0:
		return 0, usagef("%s: must be more than 0 (got %s)", s.label(), strings.TrimSpace(s.raw))
	}
	return r, nil
}

// parsePercent reads "50%" as 0.5. The sign is required: "50" could mean
// a share or a percentage.
func parsePercent(s setting) (float64, error) {
	raw := strings.TrimSpace(s.raw)
	num, ok := strings.CutSuffix(raw, "%")
	p, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	switch {
	case !ok || err != nil:
		return 0, usagef("%s: %q is not a percentage (e.g. 50%%)", s.label(), s.raw)
	case p < 0 || p > 100 || math.IsNaN(p):
		return 0, usagef("%s: %q must be from 0%% to 100%%", s.label(), s.raw)
	case p == 0:
		// Every removal is held back: the warmer takes 0 as "the default".
		return math.SmallestNonzeroFloat64, nil
	}
	return p / 100, nil
}

// parseSize reads a byte count: 1048576, 64KiB, 256MiB, 1GiB, 300MB, 2GB.
func parseSize(s setting) (int64, error) {
	raw := strings.TrimSpace(s.raw)
	units := []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if num, ok := strings.CutSuffix(raw, u.suffix); ok {
			raw, mult = strings.TrimSpace(num), u.n
			break
		}
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	switch {
	case err != nil:
		return 0, usagef("%s: %q is not a size (e.g. 256MiB, 1GiB, 300MB)", s.label(), s.raw)
	case n < 1 || n > (1<<40)/mult:
		return 0, usagef("%s: %q must be from 1 byte to 1TiB", s.label(), s.raw)
	}
	return n * mult, nil
}

// checkCron validates a schedule in the order the fields of validate run.
func checkCron(s setting) (string, error) {
	spec := strings.TrimSpace(s.raw)
	if _, err := warmer.ParseSchedule(spec); err != nil {
		return "", usagef("%s: %q is not a schedule: %v", s.label(), spec, err)
	}
	return spec, nil
}

func parseBool(s setting) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s.raw)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, usagef("%s: %q is not a boolean (want 1/true/yes or 0/false/no)", s.label(), s.raw)
}

func parseDuration(s setting, min time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s.raw))
	if err != nil {
		return 0, usagef("%s: %q is not a duration (e.g. 90s, 10m, 1h30m)", s.label(), s.raw)
	}
	if d < min {
		if min == 0 {
			return 0, usagef("%s must not be negative (got %v)", s.label(), d)
		}
		return 0, usagef("%s must be at least %v (got %v)", s.label(), min, d)
	}
	return d, nil
}

// checkVistaURL prints the URL only with any password redacted, and never
// the parser's own message, which quotes the whole input.
func checkVistaURL(s setting) error {
	u, err := url.Parse(strings.TrimSpace(s.raw))
	if err != nil {
		return usagef("%s: not a valid URL", s.label())
	}
	// Shown without user info or query: either may carry a secret.
	shown := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return usagef("%s: %q is not an http(s) URL", s.label(), shown)
	}
	if _, err := vista.New(vista.Config{BaseURL: s.raw}); err != nil {
		return usagef("%s: %q: %s", s.label(), shown, strings.TrimPrefix(err.Error(), "vista: base URL: "))
	}
	return nil
}

// parseRedisURL parses a Redis URL without ever printing its password:
// go-redis's errors may quote the URL, so they are scrubbed before use.
func parseRedisURL(s setting) (*redis.Options, error) {
	raw := strings.TrimSpace(s.raw)
	u, err := url.Parse(raw)
	if err != nil {
		return nil, usagef("%s: not a valid URL (want redis://[user:password@]host:port/db, rediss:// or %q)", s.label(), embedded)
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
	default:
		return nil, usagef("%s: %q: want redis://, rediss://, unix://, %s:// or %q", s.label(), u.Redacted(), sentinelScheme, embedded)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return nil, usagef("%s: %q: port %q is not a TCP port", s.label(), u.Redacted(), port)
		}
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), raw, u.Redacted())
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		return nil, usagef("%s: %q: %s", s.label(), u.Redacted(), strings.TrimPrefix(msg, "redis: "))
	}
	return opts, nil
}

// redisTLS reads --redis-ca, --redis-cert and --redis-key into the TLS
// configuration of a rediss:// URL.
func redisTLS(c *Config, ca, cert, key setting) error {
	caFile, certFile, keyFile := strings.TrimSpace(ca.raw), strings.TrimSpace(cert.raw), strings.TrimSpace(key.raw)
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil
	}
	given := ca
	if caFile == "" {
		given = cert
		if certFile == "" {
			given = key
		}
	}
	if c.RedisOptions == nil || c.RedisOptions.TLSConfig == nil {
		if c.Sentinel == nil {
			return usagef("%s: needs a rediss:// --redis-url", given.label())
		}
		c.RedisOptions.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	conf := c.RedisOptions.TLSConfig
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return usagef("%s: %v", ca.label(), err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return usagef("%s: %q holds no PEM certificate", ca.label(), caFile)
		}
		conf.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return usagef("--redis-cert and --redis-key go together")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return usagef("%s, %s: %v", cert.label(), key.label(), err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return nil
}

// sentinelScheme names a Redis found through its sentinels.
const sentinelScheme = "redis-sentinel"

// SentinelConfig is where a redis-sentinel:// URL finds the master.
type SentinelConfig struct {
	Addrs              []string // the sentinels
	Master             string   // the master's name in them
	Username, Password string   // for the sentinels, when they want their own
}

// parseSentinelURL parses
// redis-sentinel://[user:password@]host:port[,host:port...]/MASTER[/DB],
// where the credentials are the master's and, when the sentinels want
// credentials of their own, sentinel_user and sentinel_password give them.
// Like parseRedisURL, it never prints a password.
func parseSentinelURL(s setting) (*redis.Options, *SentinelConfig, error) {
	raw := strings.TrimSpace(s.raw)
	shown := redactURL(raw)
	bad := func(format string, args ...any) (*redis.Options, *SentinelConfig, error) {
		return nil, nil, usagef("%s: %q: %s (want %s://[user:password@]host:port[,host:port...]/MASTER[/DB])",
			s.label(), shown, fmt.Sprintf(format, args...), sentinelScheme)
	}
	rest := strings.TrimPrefix(raw, sentinelScheme+"://")
	rest, query, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	opts := &redis.Options{}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		u, err := url.Parse("redis://" + authority[:at+1] + "host")
		if err != nil || u.User == nil {
			return bad("the user and password cannot be read")
		}
		opts.Username = u.User.Username()
		opts.Password, _ = u.User.Password()
		authority = authority[at+1:]
	}
	sc := &SentinelConfig{}
	for _, hp := range strings.Split(authority, ",") {
		host, port, err := net.SplitHostPort(hp)
		if err != nil || host == "" {
			return bad("%q is not host:port", hp)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return bad("port %q is not a TCP port", port)
		}
		sc.Addrs = append(sc.Addrs, hp)
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if parts[0] == "" || len(parts) > 2 {
		return bad("the master's name is missing")
	}
	sc.Master = parts[0]
	if len(parts) == 2 {
		db, err := strconv.Atoi(parts[1])
		if err != nil || db < 0 {
			return bad("database %q is not a number", parts[1])
		}
		opts.DB = db
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return bad("the query cannot be read")
	}
	for name, vals := range q {
		switch name {
		case "sentinel_user":
			sc.Username = vals[len(vals)-1]
		case "sentinel_password":
			sc.Password = vals[len(vals)-1]
		default:
			return bad("unknown parameter %q", name)
		}
	}
	return opts, sc, nil
}

func checkPrefix(s setting) (string, error) {
	p := s.raw
	switch {
	case p == "":
		return "", usagef("%s must not be empty", s.label())
	case strings.ContainsFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return "", usagef("%s: %q must not contain spaces or control characters", s.label(), p)
	case strings.ContainsAny(p, "*?[]"):
		return "", usagef("%s: %q must not contain the pattern characters * ? [ ]", s.label(), p)
	}
	return p, nil
}

func checkListen(s setting) (string, error) {
	addr := strings.TrimSpace(s.raw)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", usagef("%s: %q is not host:port (e.g. 127.0.0.1:9470, :9470)", s.label(), s.raw)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", usagef("%s: %q: bad port %q", s.label(), s.raw, port)
	}
	return addr, nil
}

// parseCinemaZones reads "1001=Europe/Berlin,1002=Tokyo Standard Time".
func parseCinemaZones(s setting) (map[string]*time.Location, error) {
	zones := map[string]*time.Location{}
	if strings.TrimSpace(s.raw) == "" {
		return zones, nil
	}
	for item := range strings.SplitSeq(s.raw, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, zone, ok := strings.Cut(item, "=")
		id, zone = strings.TrimSpace(id), strings.TrimSpace(zone)
		if !ok || id == "" || zone == "" {
			return nil, usagef("%s: %q is not CINEMA_ID=ZONE", s.label(), item)
		}
		if _, dup := zones[id]; dup {
			return nil, usagef("%s: cinema %s is given twice", s.label(), id)
		}
		loc, err := vista.LoadZone(zone)
		if err != nil {
			return nil, usagef("%s: cinema %s: unknown time zone %q", s.label(), id, zone)
		}
		zones[id] = loc
	}
	return zones, nil
}

func defaultInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "vista-warmer"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
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

HTTP (on --listen): /metrics (Prometheus), /healthz (200 while Redis answers),
/readyz (200 once the first full load of all three lists is in Redis, on a
standby too; 503 while a drop is held back, see --max-drop; the body says
{"role": "writer"|"standby", "ready": true|false, "reason": "..." when not}).

Examples:
  vista-warmer --vista-url https://connect.example.com/WSVistaWebClient/ --redis-url redis://127.0.0.1:6379/0
  VISTA_API_TOKEN=... vista-warmer --vista-url https://connect.example.com/WSVistaWebClient/ --log-format json
  vista-warmer --demo        # a simulated Vista and an embedded Redis: nothing else to run
`)
	io.WriteString(w, b.String())
}

// machineZone returns the machine's zone under its IANA name, so that a
// cinema read in it gets a real name in its timezone field rather than
// "Local": $TZ, else the zone /etc/localtime links to, else Debian's
// /etc/timezone. A machine that names none keeps time.Local.
func machineZone() *time.Location {
	var names []string
	if tz, ok := os.LookupEnv("TZ"); ok {
		names = append(names, strings.TrimPrefix(tz, ":"))
	}
	if target, err := os.Readlink("/etc/localtime"); err == nil {
		if _, name, ok := strings.Cut(target, "zoneinfo/"); ok {
			names = append(names, name)
		}
	}
	if b, err := os.ReadFile("/etc/timezone"); err == nil {
		names = append(names, strings.TrimSpace(string(b)))
	}
	for _, name := range names {
		if name == "" {
			return time.UTC // TZ="" means UTC, as for package time
		}
		if loc, err := vista.LoadZone(name); err == nil {
			return loc
		}
	}
	return time.Local
}
