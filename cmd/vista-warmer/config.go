package main

import (
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/warmer"
)

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
	// Windows: --window-queries; see warmer.Config.Windows.
	Windows bool
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

// validate checks every setting, in the order of --help, and stops at the
// first bad one.
func validate(set map[string]setting) (*Config, error) {
	c := &Config{}
	for _, read := range []func(*Config, map[string]setting) error{
		vistaSettings, redisSettings, scheduleSettings, outputSettings, upstreamSettings,
	} {
		if err := read(c, set); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// trimmed is a setting's value without the spaces around it.
func trimmed(set map[string]setting, name string) string { return strings.TrimSpace(set[name].raw) }

// vistaSettings reads --demo, --vista-url and --vista-token.
func vistaSettings(c *Config, set map[string]setting) error {
	var err error
	if c.Demo, err = parseBool(set["demo"]); err != nil {
		return err
	}
	if c.VistaURL = trimmed(set, "vista-url"); c.VistaURL != "" {
		if err := checkVistaURL(set["vista-url"]); err != nil {
			return err
		}
	} else if !c.Demo {
		return usagef("--vista-url is required (or set VISTA_API_URL, or use --demo)")
	}
	c.VistaToken = set["vista-token"].raw
	if strings.ContainsFunc(c.VistaToken, unicode.IsControl) {
		return usagef("%s: contains a control character", set["vista-token"].label())
	}
	return nil
}

// redisSettings reads --redis-url and the TLS files.
func redisSettings(c *Config, set map[string]setting) error {
	var err error
	rs := set["redis-url"]
	c.RedisURL, c.RedisExplicit, c.RedisFromFlag = trimmed(set, "redis-url"), rs.explicit(), rs.from == "flag"
	switch {
	case c.RedisURL == embedded:
	case strings.HasPrefix(strings.TrimSpace(c.RedisURL), sentinelScheme+"://"):
		if c.RedisOptions, c.Sentinel, err = parseSentinelURL(rs); err != nil {
			return err
		}
	default:
		if c.RedisOptions, err = parseRedisURL(rs); err != nil {
			return err
		}
	}

	if err := redisTLS(c, set["redis-ca"], set["redis-cert"], set["redis-key"]); err != nil {
		return err
	}
	return nil
}

// scheduleSettings reads the prefix, the listen address, the zones, the
// policy's durations, the stream's length and the cron schedules.
func scheduleSettings(c *Config, set map[string]setting) error {
	var err error
	if c.Prefix, err = checkPrefix(set["prefix"]); err != nil {
		return err
	}
	if c.Listen, err = checkListen(set["listen"]); err != nil {
		return err
	}
	if s := set["timezone"]; trimmed(set, "timezone") != "" {
		if c.Zone, err = vista.LoadZone(s.raw); err != nil {
			return usagef("%s: unknown time zone %q (want an IANA name such as Europe/Berlin, or a Windows name)", s.label(), strings.TrimSpace(s.raw))
		}
	}
	if c.Zone == nil && c.Demo {
		c.Zone = time.UTC
	}
	if c.CinemaZones, err = parseCinemaZones(set["cinema-timezone"]); err != nil {
		return err
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
		{"later-horizon", &p.Later, 0},
		{"later-interval", &p.LaterInterval, time.Second},
		{"lease-ttl", &c.LeaseTTL, time.Second},
	}
	for _, d := range durations {
		if *d.dst, err = parseDuration(set[d.name], d.min); err != nil {
			return err
		}
	}
	if p.NearWindow >= p.Horizon {
		return usagef("--near-window must be shorter than --horizon (%v is not shorter than %v)", p.NearWindow, p.Horizon)
	}
	if p.NearInterval > p.Base {
		return usagef("--near-interval must be at most %v, the interval just outside the near window (got %v)", p.Base, p.NearInterval)
	}
	c.Policy = p
	if c.Windows, err = parseBool(set["window-queries"]); err != nil {
		return err
	}

	ms := set["stream-maxlen"]
	n, perr := strconv.ParseInt(strings.TrimSpace(ms.raw), 10, 64)
	switch {
	case perr != nil:
		return usagef("%s: %q is not a whole number", ms.label(), ms.raw)
	case n < 1:
		return usagef("%s: must be at least 1 (got %d)", ms.label(), n)
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
			return err
		}
	}
	return nil
}

// outputSettings reads the logging, --keep-raw, the extra fields and
// --events.
func outputSettings(c *Config, set map[string]setting) error {
	var err error
	lf := set["log-format"]
	switch c.LogFormat = strings.ToLower(trimmed(set, "log-format")); c.LogFormat {
	case "text", "json":
	default:
		return usagef("%s: unknown format %q (want text or json)", lf.label(), lf.raw)
	}
	ll := set["log-level"]
	level, ok := levels[strings.ToLower(trimmed(set, "log-level"))]
	if !ok {
		return usagef("%s: unknown level %q (want debug, info, warn or error)", ll.label(), ll.raw)
	}
	c.LogLevel = level

	if c.KeepRaw, err = parseBool(set["keep-raw"]); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		dst  *[]string
	}{{"cinema-fields", &c.Fields.Cinemas}, {"film-fields", &c.Fields.Films}, {"session-fields", &c.Fields.Sessions}} {
		if *f.dst, err = parseFieldList(set[f.name]); err != nil {
			return err
		}
	}
	switch ev := set["events"]; strings.TrimSpace(ev.raw) {
	case "pubsub":
	case "sharded":
		c.ShardedEvents = true
	default:
		return usagef("%s: %q: want pubsub or sharded", ev.label(), ev.raw)
	}
	return nil
}

// upstreamSettings reads the drop guard, the body bound, the upstream
// budget and the instance id.
func upstreamSettings(c *Config, set map[string]setting) error {
	var err error
	if c.MaxDrop, err = parsePercent(set["max-drop"]); err != nil {
		return err
	}
	if c.MaxBody, err = parseSize(set["max-body"]); err != nil {
		return err
	}
	uc := set["upstream-concurrency"]
	conc, perr := strconv.Atoi(strings.TrimSpace(uc.raw))
	switch {
	case perr != nil:
		return usagef("%s: %q is not a whole number", uc.label(), uc.raw)
	case conc < 1:
		return usagef("%s: must be at least 1 (got %d)", uc.label(), conc)
	}
	c.UpstreamConcurrency = conc
	if c.UpstreamRate, err = parseRate(set["upstream-rate"]); err != nil {
		return err
	}
	is := set["instance-id"]
	if c.InstanceID = trimmed(set, "instance-id"); c.InstanceID == "" {
		c.InstanceID = defaultInstanceID()
	} else if strings.ContainsFunc(c.InstanceID, unicode.IsControl) {
		return usagef("%s: contains a control character", is.label())
	}
	return nil
}
