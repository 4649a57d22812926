// Value parsers: each reads one setting and says, naming the flag or the
// variable it came from, what is wrong with it.

package main

import (
	"errors"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/warmer"
)

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
