// Redis URLs: redis://, rediss://, unix://, redis-sentinel:// and TLS files.

package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

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
