package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"
)

// env returns a LookupEnv over vars only, so no test reads the real
// environment (a REDIS_URL on a CI machine, say).
func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

// MustParse parses args and vars as the program does and fails the test on
// an error.
func MustParse(tb testing.TB, args []string, vars map[string]string) *Config {
	tb.Helper()
	var out bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &out, LookupEnv: env(vars)}
	if err := m.ParseFlags(tb.Context(), args); err != nil {
		tb.Fatalf("ParseFlags(%q) = %v", args, err)
	}
	return m.Config
}

const urlArg = "--vista-url=https://connect.example.com/WSVistaWebClient/"

func TestParseFlagsErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // the whole message, or its start when it ends in "…"
	}{
		{"no vista url", nil, nil, "--vista-url is required (or set VISTA_API_URL, or use --demo)"},
		{"vista url not http", []string{"--vista-url", "ftp://connect.example.com/"}, nil, `--vista-url: "ftp://connect.example.com/" is not an http(s) URL`},
		{"vista url relative", []string{"--vista-url", "connect.example.com"}, nil, `--vista-url: "connect.example.com" is not an http(s) URL`},
		{"vista url with query", []string{"--vista-url", "https://connect.example.com/x/?token=s3cret"}, nil, `--vista-url: "https://connect.example.com/x/": must not have a query or a fragment`},
		{"vista url env", nil, map[string]string{"VISTA_API_URL": "mailto:x@example.com"}, `--vista-url (from VISTA_API_URL): "mailto:" is not an http(s) URL`},
		{"redis port out of range", []string{"--vista-url", "https://connect.example.com/x/", "--redis-url", "redis://127.0.0.1:99999/0"}, nil, `--redis-url: "redis://127.0.0.1:99999/0": port "99999" is not a TCP port`},
		{"token with newline", []string{urlArg, "--vista-token", "abc\ndef"}, nil, "--vista-token: contains a control character"},

		{"redis url scheme", []string{urlArg, "--redis-url", "http://127.0.0.1:6379"}, nil, `--redis-url: "http://127.0.0.1:6379": want redis://, rediss://, unix://, redis-sentinel:// or "embedded"`},
		{"sentinel no master", []string{urlArg, "--redis-url", "redis-sentinel://s1:26379,s2:26379"}, nil,
			`--redis-url: "redis-sentinel://s1:26379,s2:26379": the master's name is missing (want redis-sentinel://[user:password@]host:port[,host:port...]/MASTER[/DB])`},
		{"sentinel bad host", []string{urlArg, "--redis-url", "redis-sentinel://u:secret@s1,s2:26379/m"}, nil,
			`--redis-url: "redis-sentinel://u:xxxxx@s1,s2:26379/m": "s1" is not host:port (want redis-sentinel://[user:password@]host:port[,host:port...]/MASTER[/DB])`},
		{"sentinel bad param", []string{urlArg, "--redis-url", "redis-sentinel://s1:26379/m?sentinel_password=pw&x=1"}, nil,
			`--redis-url: "redis-sentinel://s1:26379/m?sentinel_password=xxxxx&x=1": unknown parameter "x" (want redis-sentinel://[user:password@]host:port[,host:port...]/MASTER[/DB])`},
		{"redis url db", []string{urlArg, "--redis-url", "redis://127.0.0.1:6379/abc"}, nil, `--redis-url: "redis://127.0.0.1:6379/abc": invalid database number: "abc"`},
		{"redis url port", []string{urlArg, "--redis-url", "redis://127.0.0.1:abc/0"}, nil, "--redis-url: not a valid URL …"},
		{"redis url option", []string{urlArg, "--redis-url", "redis://127.0.0.1/0?nope=1"}, nil, `--redis-url: "redis://127.0.0.1/0?nope=1": unexpected option: nope`},
		{"redis url env", []string{urlArg}, map[string]string{"REDIS_URL": "localhost"}, `--redis-url (from REDIS_URL): "localhost": want redis://…`},
		{"redis url host:port", []string{urlArg, "--redis-url", "127.0.0.1:6379"}, nil, `--redis-url: not a valid URL (want redis://[user:password@]host:port/db, rediss:// or "embedded")`},

		{"prefix empty", []string{urlArg, "--prefix", ""}, nil, "--prefix must not be empty"},
		{"prefix space", []string{urlArg, "--prefix", "my vista"}, nil, `--prefix: "my vista" must not contain spaces or control characters`},
		{"prefix tab env", []string{urlArg}, map[string]string{"VISTA_WARMER_PREFIX": "a\tb"}, `--prefix (from VISTA_WARMER_PREFIX): "a\tb" must not contain spaces…`},
		{"prefix glob", []string{urlArg, "--prefix", "vista*"}, nil, `--prefix: "vista*" must not contain the pattern characters * ? [ ]`},

		{"listen no port", []string{urlArg, "--listen", "localhost"}, nil, `--listen: "localhost" is not host:port (e.g. 127.0.0.1:9470, :9470)`},
		{"listen bad port", []string{urlArg, "--listen", ":99999"}, nil, `--listen: ":99999": bad port "99999"`},

		{"timezone", []string{urlArg, "--timezone", "Mars/Olympus_Mons"}, nil, `--timezone: unknown time zone "Mars/Olympus_Mons" …`},
		{"timezone env", []string{urlArg}, map[string]string{"VISTA_WARMER_TIMEZONE": "Local"}, `--timezone (from VISTA_WARMER_TIMEZONE): unknown time zone "Local" …`},
		{"cinema timezone form", []string{urlArg, "--cinema-timezone", "1001"}, nil, `--cinema-timezone: "1001" is not CINEMA_ID=ZONE`},
		{"cinema timezone zone", []string{urlArg, "--cinema-timezone", "1001=Europe/Berlin,1002=Nowhere"}, nil, `--cinema-timezone: cinema 1002: unknown time zone "Nowhere"`},
		{"cinema timezone twice", []string{urlArg, "--cinema-timezone", "1001=UTC,1001=Europe/Berlin"}, nil, `--cinema-timezone: cinema 1001 is given twice`},

		{"grace", []string{urlArg, "--session-grace", "soon"}, nil, `--session-grace: "soon" is not a duration (e.g. 90s, 10m, 1h30m)`},
		{"grace negative", []string{urlArg, "--session-grace", "-1m"}, nil, "--session-grace must not be negative (got -1m0s)"},
		{"horizon", []string{urlArg, "--horizon", "abc"}, nil, `--horizon: "abc" is not a duration (e.g. 90s, 10m, 1h30m)`},
		{"horizon bare number", []string{urlArg, "--horizon", "60"}, nil, `--horizon: "60" is not a duration …`},
		{"horizon env", []string{urlArg}, map[string]string{"VISTA_WARMER_HORIZON": "abc"}, `--horizon (from VISTA_WARMER_HORIZON): "abc" is not a duration …`},
		{"near window", []string{urlArg, "--near-window", "0s"}, nil, "--near-window must be at least 1s (got 0s)"},
		{"near window vs horizon", []string{urlArg, "--near-window", "1h"}, nil, "--near-window must be shorter than --horizon (1h0m0s is not shorter than 1h0m0s)"},
		{"near window vs horizon env", []string{urlArg}, map[string]string{"VISTA_WARMER_HORIZON": "5m"}, "--near-window must be shorter than --horizon …"},
		{"near interval", []string{urlArg, "--near-interval", "500ms"}, nil, "--near-interval must be at least 1s (got 500ms)"},
		{"near interval long", []string{urlArg, "--near-interval", "2m"}, nil, "--near-interval must be at most 1m0s, …"},
		{"lease ttl", []string{urlArg, "--lease-ttl", "500ms"}, nil, "--lease-ttl must be at least 1s (got 500ms)"},
		{"lease ttl env", []string{urlArg}, map[string]string{"VISTA_WARMER_LEASE_TTL": "ten"}, `--lease-ttl (from VISTA_WARMER_LEASE_TTL): "ten" is not a duration …`},

		{"stream maxlen", []string{urlArg, "--stream-maxlen", "lots"}, nil, `--stream-maxlen: "lots" is not a whole number`},
		{"stream maxlen zero", []string{urlArg, "--stream-maxlen", "0"}, nil, "--stream-maxlen: must be at least 1 (got 0)"},

		{"cinemas cron", []string{urlArg, "--cinemas-cron", "daily"}, nil, `--cinemas-cron: "daily" is not a schedule: …`},
		{"films cron", []string{urlArg, "--films-cron", "61 * * * *"}, nil, `--films-cron: "61 * * * *" is not a schedule: …`},
		{"sessions cron", []string{urlArg, "--sessions-cron", "@every nope"}, nil, `--sessions-cron: "@every nope" is not a schedule: …`},
		{"sessions cron env", []string{urlArg}, map[string]string{"VISTA_WARMER_SESSIONS_CRON": "* *"}, `--sessions-cron (from VISTA_WARMER_SESSIONS_CRON): "* *" is not a schedule: …`},
		{"sessions cron demo", []string{"--demo", "--sessions-cron", "bad"}, nil, `--sessions-cron: "bad" is not a schedule: …`},

		{"upstream concurrency", []string{urlArg, "--upstream-concurrency", "lots"}, nil, `--upstream-concurrency: "lots" is not a whole number`},
		{"upstream concurrency zero", []string{urlArg, "--upstream-concurrency", "0"}, nil, "--upstream-concurrency: must be at least 1 (got 0)"},
		{"upstream concurrency env", []string{urlArg}, map[string]string{"VISTA_WARMER_UPSTREAM_CONCURRENCY": "-2"}, "--upstream-concurrency (from VISTA_WARMER_UPSTREAM_CONCURRENCY): must be at least 1 (got -2)"},
		{"upstream concurrency fraction", []string{urlArg, "--upstream-concurrency", "2.5"}, nil, `--upstream-concurrency: "2.5" is not a whole number`},
		{"upstream rate", []string{urlArg, "--upstream-rate", "fast"}, nil, `--upstream-rate: "fast" is not a number of requests a second (e.g. 10, 0.5)`},
		{"upstream rate zero", []string{urlArg, "--upstream-rate", "0"}, nil, "--upstream-rate: must be more than 0 (got 0)"},
		{"upstream rate negative", []string{urlArg, "--upstream-rate", "-1"}, nil, "--upstream-rate: must be more than 0 (got -1)"},
		{"upstream rate NaN", []string{urlArg, "--upstream-rate", "NaN"}, nil, `--upstream-rate: "NaN" is not a number of requests a second (e.g. 10, 0.5)`},
		{"upstream rate infinite", []string{urlArg, "--upstream-rate", "1e400"}, nil, `--upstream-rate: "1e400" is not a number …`},
		{"upstream rate env", []string{urlArg}, map[string]string{"VISTA_WARMER_UPSTREAM_RATE": "ten"}, `--upstream-rate (from VISTA_WARMER_UPSTREAM_RATE): "ten" is not a number …`},

		{"log format", []string{urlArg, "--log-format", "xml"}, nil, `--log-format: unknown format "xml" (want text or json)`},
		{"log format env", []string{urlArg}, map[string]string{"VISTA_WARMER_LOG_FORMAT": "logfmt"}, `--log-format (from VISTA_WARMER_LOG_FORMAT): unknown format "logfmt" (want text or json)`},
		{"log level", []string{urlArg, "--log-level", "loud"}, nil, `--log-level: unknown level "loud" (want debug, info, warn or error)`},
		{"log level env", []string{urlArg}, map[string]string{"VISTA_WARMER_LOG_LEVEL": "info+2"}, `--log-level (from VISTA_WARMER_LOG_LEVEL): unknown level "info+2" …`},

		{"keep raw", []string{urlArg, "--keep-raw=maybe"}, nil, `--keep-raw: "maybe" is not a boolean (want 1/true/yes or 0/false/no)`},
		{"keep raw env", []string{urlArg}, map[string]string{"VISTA_WARMER_KEEP_RAW": "sometimes"}, `--keep-raw (from VISTA_WARMER_KEEP_RAW): "sometimes" is not a boolean …`},
		{"demo value", []string{"--demo=perhaps"}, nil, `--demo: "perhaps" is not a boolean …`},
		{"instance id", []string{urlArg, "--instance-id", "a\x00b"}, nil, "--instance-id: contains a control character"},

		{"session fields name", []string{urlArg, "--session-fields", "AllowTicketSales,Sales-Channels"}, nil, `--session-fields: session field "Sales-Channels" is not a Vista field name (letters, digits and _)`},
		{"session fields taken", []string{urlArg, "--session-fields", "ScreenName"}, nil, `--session-fields: session field ScreenName would be written as "screen_name", which the warmer already writes`},
		{"session fields bookkeeping", []string{urlArg}, map[string]string{"VISTA_WARMER_SESSION_FIELDS": "UpdatedAt"}, `--session-fields (from VISTA_WARMER_SESSION_FIELDS): session field UpdatedAt would be written as "updated_at", which the warmer already writes`},
		{"film fields twice", []string{urlArg, "--film-fields", "TrailerUrl,TrailerUrl"}, nil, `--film-fields: TrailerUrl is given twice`},
		{"cinema fields id", []string{urlArg, "--cinema-fields", "ID"}, nil, `--cinema-fields: cinema field ID would be written as "id", which the warmer already writes`},
		{"max drop no sign", []string{urlArg, "--max-drop", "50"}, nil, `--max-drop: "50" is not a percentage (e.g. 50%)`},
		{"max drop share", []string{urlArg, "--max-drop", "0.5"}, nil, `--max-drop: "0.5" is not a percentage (e.g. 50%)`},
		{"max drop range", []string{urlArg, "--max-drop", "150%"}, nil, `--max-drop: "150%" must be from 0% to 100%`},
		{"max drop env", []string{urlArg}, map[string]string{"VISTA_WARMER_MAX_DROP": "half"}, `--max-drop (from VISTA_WARMER_MAX_DROP): "half" is not a percentage (e.g. 50%)`},
		{"max body", []string{urlArg, "--max-body", "lots"}, nil, `--max-body: "lots" is not a size (e.g. 256MiB, 1GiB, 300MB)`},
		{"max body zero", []string{urlArg, "--max-body", "0"}, nil, `--max-body: "0" must be from 1 byte to 1TiB`},

		{"unknown flag", []string{urlArg, "--vista-ur", "x"}, nil, "unknown flag --vista-ur (see --help)"},
		{"unknown flag single dash", []string{"-verbose"}, nil, "unknown flag --verbose (see --help)"},
		{"missing value", []string{urlArg, "--horizon"}, nil, "--horizon needs a value"},
		{"argument", []string{urlArg, "run"}, nil, `unexpected argument "run" (flags start with --; see --help)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			m := &Main{Stdout: &out, Stderr: &out, LookupEnv: env(tt.env)}
			err := m.ParseFlags(t.Context(), tt.args)
			if err == nil {
				t.Fatalf("ParseFlags(%q) = nil, want %q", tt.args, tt.want)
			}
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Errorf("ParseFlags(%q) = %T, want a *usageError (exit status 2)", tt.args, err)
			}
			got := err.Error()
			if prefix, ok := strings.CutSuffix(tt.want, "…"); ok {
				if !strings.HasPrefix(got, prefix) {
					t.Errorf("ParseFlags(%q) = %q, want it to start with %q", tt.args, got, prefix)
				}
			} else if got != tt.want {
				t.Errorf("ParseFlags(%q) = %q, want %q", tt.args, got, tt.want)
			}
			if strings.Contains(got, "\n") {
				t.Errorf("ParseFlags(%q) = %q: more than one line", tt.args, got)
			}
			if out.Len() != 0 {
				t.Errorf("ParseFlags(%q) wrote %q; errors are for main to print", tt.args, out.String())
			}
		})
	}
}

func TestParseFlagsDefaults(t *testing.T) {
	c := MustParse(t, []string{urlArg}, nil)
	checks := []struct {
		name      string
		got, want any
	}{
		{"RedisURL", c.RedisURL, "redis://127.0.0.1:6379/0"},
		{"RedisOptions.Addr", c.RedisOptions.Addr, "127.0.0.1:6379"},
		{"RedisExplicit", c.RedisExplicit, false},
		{"Prefix", c.Prefix, "vista"},
		{"Listen", c.Listen, "127.0.0.1:9470"},
		{"Zone", c.Zone, (*time.Location)(nil)},
		{"Grace", c.Policy.Grace, 20 * time.Minute},
		{"Horizon", c.Policy.Horizon, time.Hour},
		{"NearWindow", c.Policy.NearWindow, 10 * time.Minute},
		{"NearInterval", c.Policy.NearInterval, 10 * time.Second},
		{"Base", c.Policy.Base, 60 * time.Second},
		{"StreamMaxLen", c.StreamMaxLen, int64(100000)},
		{"CinemasCron", c.CinemasCron, "30 5 * * *"},
		{"FilmsCron", c.FilmsCron, "20 5 * * *"},
		{"SessionsCron", c.SessionsCron, "10 * * * *"},
		{"LogFormat", c.LogFormat, "text"},
		{"LogLevel", c.LogLevel.String(), "INFO"},
		{"KeepRaw", c.KeepRaw, false},
		{"LeaseTTL", c.LeaseTTL, 10 * time.Second},
		{"Demo", c.Demo, false},
		{"MaxDrop", c.MaxDrop, 0.5},
		{"MaxBody", c.MaxBody, int64(256 << 20)},
		{"UpstreamConcurrency", c.UpstreamConcurrency, 4},
		{"UpstreamRate", c.UpstreamRate, 10.0},
		{"Fields", len(c.Fields.Cinemas) + len(c.Fields.Films) + len(c.Fields.Sessions), 0},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("default %s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if !strings.Contains(c.InstanceID, "-") {
		t.Errorf("default InstanceID = %q, want host-pid", c.InstanceID)
	}
}

// TestParseFlagsPrecedence: a flag wins over its variable, a variable over
// the default.
func TestParseFlagsPrecedence(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		get  func(*Config) any
		want any
	}{
		{"default", []string{urlArg}, nil, func(c *Config) any { return c.Prefix }, "vista"},
		{"env", []string{urlArg}, map[string]string{"VISTA_WARMER_PREFIX": "{kino}"}, func(c *Config) any { return c.Prefix }, "{kino}"},
		{"flag over env", []string{urlArg, "--prefix", "flag"}, map[string]string{"VISTA_WARMER_PREFIX": "env"}, func(c *Config) any { return c.Prefix }, "flag"},
		{"empty env is unset", []string{urlArg}, map[string]string{"VISTA_WARMER_PREFIX": ""}, func(c *Config) any { return c.Prefix }, "vista"},
		{"vista url env", nil, map[string]string{"VISTA_API_URL": "http://vista.local/"}, func(c *Config) any { return c.VistaURL }, "http://vista.local/"},
		{"vista url flag over env", []string{"--vista-url", "https://a.example/"}, map[string]string{"VISTA_API_URL": "https://b.example/"}, func(c *Config) any { return c.VistaURL }, "https://a.example/"},
		{"token env", []string{urlArg}, map[string]string{"VISTA_API_TOKEN": "t"}, func(c *Config) any { return c.VistaToken }, "t"},
		{"redis env", []string{urlArg}, map[string]string{"REDIS_URL": "rediss://redis.example:6380/2"}, func(c *Config) any { return c.RedisOptions.Addr + " " + c.RedisURL }, "redis.example:6380 rediss://redis.example:6380/2"},
		{"sentinel", []string{urlArg, "--redis-url", "redis-sentinel://app:pw@s1:26379,s2:26380/mymaster/3?sentinel_user=su&sentinel_password=sp"}, nil,
			func(c *Config) any {
				return fmt.Sprintln(c.Sentinel.Addrs, c.Sentinel.Master, c.RedisOptions.DB, c.RedisOptions.Username, c.RedisOptions.Password, c.Sentinel.Username, c.Sentinel.Password)
			}, "[s1:26379 s2:26380] mymaster 3 app pw su sp\n"},
		{"redis env tls", []string{urlArg}, map[string]string{"REDIS_URL": "rediss://redis.example:6380/2"}, func(c *Config) any { return c.RedisOptions.TLSConfig != nil }, true},
		{"redis env explicit", []string{urlArg}, map[string]string{"REDIS_URL": "redis://127.0.0.1:6379/0"}, func(c *Config) any { return c.RedisExplicit }, true},
		{"redis embedded", []string{urlArg, "--redis-url", "embedded"}, nil, func(c *Config) any { return c.RedisOptions == nil && c.RedisURL == embedded }, true},
		{"horizon env", []string{urlArg}, map[string]string{"VISTA_WARMER_HORIZON": "2h"}, func(c *Config) any { return c.Policy.Horizon }, 2 * time.Hour},
		{"horizon flag over env", []string{urlArg, "--horizon", "90m"}, map[string]string{"VISTA_WARMER_HORIZON": "abc"}, func(c *Config) any { return c.Policy.Horizon }, 90 * time.Minute},
		{"grace env", []string{urlArg}, map[string]string{"VISTA_WARMER_SESSION_GRACE": "5m"}, func(c *Config) any { return c.Policy.Grace }, 5 * time.Minute},
		{"near window env", []string{urlArg}, map[string]string{"VISTA_WARMER_NEAR_WINDOW": "5m"}, func(c *Config) any { return c.Policy.NearWindow }, 5 * time.Minute},
		{"near interval env", []string{urlArg}, map[string]string{"VISTA_WARMER_NEAR_INTERVAL": "30s"}, func(c *Config) any { return c.Policy.NearInterval }, 30 * time.Second},
		{"stream maxlen env", []string{urlArg}, map[string]string{"VISTA_WARMER_STREAM_MAXLEN": "500"}, func(c *Config) any { return c.StreamMaxLen }, int64(500)},
		{"cinemas cron env", []string{urlArg}, map[string]string{"VISTA_WARMER_CINEMAS_CRON": "@hourly"}, func(c *Config) any { return c.CinemasCron }, "@hourly"},
		{"films cron env", []string{urlArg}, map[string]string{"VISTA_WARMER_FILMS_CRON": "@every 1h"}, func(c *Config) any { return c.FilmsCron }, "@every 1h"},
		{"sessions cron flag over env", []string{urlArg, "--sessions-cron", "*/5 * * * *"}, map[string]string{"VISTA_WARMER_SESSIONS_CRON": "@hourly"}, func(c *Config) any { return c.SessionsCron }, "*/5 * * * *"},
		{"log format env", []string{urlArg}, map[string]string{"VISTA_WARMER_LOG_FORMAT": "JSON"}, func(c *Config) any { return c.LogFormat }, "json"},
		{"log level env", []string{urlArg}, map[string]string{"VISTA_WARMER_LOG_LEVEL": "debug"}, func(c *Config) any { return c.LogLevel.String() }, "DEBUG"},
		{"log level flag over env", []string{urlArg, "--log-level", "error"}, map[string]string{"VISTA_WARMER_LOG_LEVEL": "debug"}, func(c *Config) any { return c.LogLevel.String() }, "ERROR"},
		{"instance id env", []string{urlArg}, map[string]string{"VISTA_WARMER_INSTANCE_ID": "w1"}, func(c *Config) any { return c.InstanceID }, "w1"},
		{"lease ttl env", []string{urlArg}, map[string]string{"VISTA_WARMER_LEASE_TTL": "30s"}, func(c *Config) any { return c.LeaseTTL }, 30 * time.Second},
		{"upstream concurrency env", []string{urlArg}, map[string]string{"VISTA_WARMER_UPSTREAM_CONCURRENCY": " 8 "}, func(c *Config) any { return c.UpstreamConcurrency }, 8},
		{"upstream concurrency flag over env", []string{urlArg, "--upstream-concurrency", "1"}, map[string]string{"VISTA_WARMER_UPSTREAM_CONCURRENCY": "x"}, func(c *Config) any { return c.UpstreamConcurrency }, 1},
		{"upstream rate env", []string{urlArg}, map[string]string{"VISTA_WARMER_UPSTREAM_RATE": "0.5"}, func(c *Config) any { return c.UpstreamRate }, 0.5},
		{"upstream rate flag over env", []string{urlArg, "--upstream-rate=25"}, map[string]string{"VISTA_WARMER_UPSTREAM_RATE": "0.5"}, func(c *Config) any { return c.UpstreamRate }, 25.0},
		{"listen env", []string{urlArg}, map[string]string{"VISTA_WARMER_LISTEN": ":0"}, func(c *Config) any { return c.Listen }, ":0"},
		{"timezone env windows", []string{urlArg}, map[string]string{"VISTA_WARMER_TIMEZONE": "W. Europe Standard Time"}, func(c *Config) any { return c.Zone.String() }, "Europe/Berlin"},
		{"timezone flag", []string{urlArg, "--timezone", "Asia/Tokyo"}, map[string]string{"VISTA_WARMER_TIMEZONE": "UTC"}, func(c *Config) any { return c.Zone.String() }, "Asia/Tokyo"},
		{"cinema timezone env", []string{urlArg}, map[string]string{"VISTA_WARMER_CINEMA_TIMEZONE": " 1001 = Tokyo Standard Time , 1002=UTC,"}, func(c *Config) any {
			return c.CinemaZones["1001"].String() + " " + c.CinemaZones["1002"].String()
		}, "Asia/Tokyo UTC"},
		{"demo zone", []string{"--demo"}, nil, func(c *Config) any { return c.Zone.String() }, "UTC"},
		{"demo zone flag", []string{"--demo", "--timezone", "Europe/London"}, nil, func(c *Config) any { return c.Zone.String() }, "Europe/London"},
		{"demo crons", []string{"--demo"}, nil, func(c *Config) any { return c.CinemasCron + "|" + c.FilmsCron + "|" + c.SessionsCron }, "@every 15m|@every 10m|@every 2m"},
		{"demo cron env", []string{"--demo"}, map[string]string{"VISTA_WARMER_SESSIONS_CRON": "@every 1m"}, func(c *Config) any { return c.SessionsCron }, "@every 1m"},
		{"demo redis default", []string{"--demo"}, nil, func(c *Config) any { return c.RedisExplicit }, false},
		{"demo redis env", []string{"--demo"}, map[string]string{"REDIS_URL": "redis://127.0.0.1:6379/0"}, func(c *Config) any { return c.RedisExplicit }, true},
		{"demo with vista url", []string{"--demo", urlArg}, nil, func(c *Config) any { return c.Demo }, true},
	}
	for _, v := range []struct {
		raw  string
		want bool
	}{{"1", true}, {"true", true}, {"yes", true}, {"YES", true}, {"0", false}, {"false", false}, {"no", false}} {
		tests = append(tests, struct {
			name string
			args []string
			env  map[string]string
			get  func(*Config) any
			want any
		}{"keep raw env " + v.raw, []string{urlArg}, map[string]string{"VISTA_WARMER_KEEP_RAW": v.raw}, func(c *Config) any { return c.KeepRaw }, v.want})
	}
	tests = append(tests, []struct {
		name string
		args []string
		env  map[string]string
		get  func(*Config) any
		want any
	}{
		{"keep raw flag", []string{urlArg, "--keep-raw"}, nil, func(c *Config) any { return c.KeepRaw }, true},
		{"keep raw flag over env", []string{urlArg, "--keep-raw=false"}, map[string]string{"VISTA_WARMER_KEEP_RAW": "yes"}, func(c *Config) any { return c.KeepRaw }, false},
		{"keep raw flag yes", []string{urlArg, "--keep-raw=yes"}, nil, func(c *Config) any { return c.KeepRaw }, true},
		{"single dash", []string{"-vista-url", "https://a.example/", "-prefix", "p"}, nil, func(c *Config) any { return c.Prefix }, "p"},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := MustParse(t, tt.args, tt.env)
			if got := tt.get(c); got != tt.want {
				t.Errorf("ParseFlags(%q) with %v: got %v, want %v", tt.args, tt.env, got, tt.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		t.Run(arg, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			m := &Main{Stdout: &stdout, Stderr: &stderr, LookupEnv: env(nil)}
			if err := m.ParseFlags(t.Context(), []string{urlArg, arg}); !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("ParseFlags(%s) = %v, want flag.ErrHelp", arg, err)
			}
			help := stdout.String()
			if stderr.Len() != 0 {
				t.Errorf("--help wrote to stderr: %q", stderr.String())
			}
			for _, o := range options {
				if !strings.Contains(help, "--"+o.name) {
					t.Errorf("--help does not mention --%s", o.name)
				}
				if o.env != "" && !strings.Contains(help, o.env) {
					t.Errorf("--help does not mention %s", o.env)
				}
				if o.def != "" && o.shown == "" && !strings.Contains(help, "(default: "+o.def+")") {
					t.Errorf("--help does not show --%s's default %q", o.name, o.def)
				}
			}
			for _, want := range []string{
				"vista-warmer --vista-url https://connect.example.com/WSVistaWebClient/ --redis-url redis://127.0.0.1:6379/0",
				"vista-warmer --demo",
				"/readyz",
			} {
				if !strings.Contains(help, want) {
					t.Errorf("--help does not contain %q", want)
				}
			}
		})
	}
}

// TestSecretsNeverPrinted: the token and the Redis password appear neither
// in errors nor in --help, wherever they come from.
func TestSecretsNeverPrinted(t *testing.T) {
	const token, password = "s3cret-token", "hunter2pw"
	tests := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"help with env", []string{"--help"}, map[string]string{"VISTA_API_TOKEN": token, "REDIS_URL": "redis://:" + password + "@127.0.0.1:6379/0"}},
		{"help with flags", []string{"--vista-token", token, "--redis-url", "redis://u:" + password + "@h/0", "--help"}, nil},
		{"bad value elsewhere", []string{urlArg, "--horizon", "abc"}, map[string]string{"VISTA_API_TOKEN": token, "REDIS_URL": "redis://:" + password + "@127.0.0.1:6379/0"}},
		{"bad redis db", []string{urlArg}, map[string]string{"VISTA_API_TOKEN": token, "REDIS_URL": "redis://:" + password + "@127.0.0.1:6379/abc"}},
		{"bad redis option", []string{urlArg, "--redis-url", "redis://user:" + password + "@127.0.0.1/0?dial_timeout=x"}, nil},
		{"bad redis port", []string{urlArg, "--redis-url", "redis://:" + password + "@127.0.0.1:port/0"}, nil},
		{"bad redis escape", []string{urlArg, "--redis-url", "redis://:" + password + "%zz@127.0.0.1/0"}, nil},
		{"bad redis scheme", []string{urlArg, "--redis-url", "http://:" + password + "@127.0.0.1/0"}, nil},
		{"password in vista url", []string{"--vista-url", "ftp://u:" + password + "@vista.example/"}, nil},
		{"password in vista url with query", []string{"--vista-url", "https://u:" + password + "@vista.example/?x=1"}, nil},
		{"token with control char", []string{urlArg, "--vista-token", token + "\n"}, nil},
		{"unknown flag", []string{"--vista-token", token, "--nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			m := &Main{Stdout: &out, Stderr: &out, LookupEnv: env(tt.env)}
			err := m.ParseFlags(t.Context(), tt.args)
			if err == nil {
				t.Fatalf("ParseFlags(%q) = nil, want an error or flag.ErrHelp", tt.args)
			}
			text := out.String() + err.Error()
			for _, secret := range []string{token, password} {
				if strings.Contains(text, secret) {
					t.Errorf("ParseFlags(%q) printed %q:\n%s", tt.args, secret, text)
				}
			}
		})
	}
}

func TestMachineZone(t *testing.T) {
	tests := []struct {
		tz   string
		want string
	}{
		{"Europe/Berlin", "Europe/Berlin"},
		{":America/New_York", "America/New_York"},
		{"W. Europe Standard Time", "Europe/Berlin"},
		{"", "UTC"},
	}
	for _, tt := range tests {
		t.Setenv("TZ", tt.tz)
		if got := machineZone().String(); got != tt.want {
			t.Errorf("machineZone() with TZ=%q = %q, want %q", tt.tz, got, tt.want)
		}
	}
}

func TestParseFieldsAndLimits(t *testing.T) {
	c := MustParse(t, []string{urlArg, "--session-fields", " AllowTicketSales , SalesChannels,", "--film-fields", "TrailerUrl",
		"--max-drop", "12.5%", "--max-body", "1GiB"}, map[string]string{"VISTA_WARMER_CINEMA_FIELDS": "HOPK"})
	if got := strings.Join(c.Fields.Sessions, "|"); got != "AllowTicketSales|SalesChannels" {
		t.Errorf("session fields = %q", got)
	}
	if got := strings.Join(c.Fields.Films, "|") + "/" + strings.Join(c.Fields.Cinemas, "|"); got != "TrailerUrl/HOPK" {
		t.Errorf("film/cinema fields = %q", got)
	}
	if c.MaxDrop != 0.125 || c.MaxBody != 1<<30 {
		t.Errorf("MaxDrop %v, MaxBody %v; want 0.125, 1GiB", c.MaxDrop, c.MaxBody)
	}
	for _, tt := range []struct {
		arg  string
		want float64
	}{{"0%", 0}, {"100%", 1}, {" 50 % ", 0.5}} {
		c := MustParse(t, []string{urlArg, "--max-drop", tt.arg}, nil)
		if tt.want == 0 && (c.MaxDrop <= 0 || c.MaxDrop > 1e-300) || tt.want != 0 && c.MaxDrop != tt.want {
			t.Errorf("--max-drop %q = %v, want %v", tt.arg, c.MaxDrop, tt.want)
		}
	}
	for _, tt := range []struct {
		arg  string
		want int64
	}{{"1048576", 1 << 20}, {"64KiB", 64 << 10}, {"300MB", 300e6}, {"2 GB", 2e9}} {
		if c := MustParse(t, []string{urlArg, "--max-body", tt.arg}, nil); c.MaxBody != tt.want {
			t.Errorf("--max-body %q = %d, want %d", tt.arg, c.MaxBody, tt.want)
		}
	}
}
