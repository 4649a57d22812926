package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lmittmann/tint"
	"github.com/redis/go-redis/v9"
)

// newLogger builds the program's one logger: tint for people, JSON for
// machines.
func newLogger(w io.Writer, format string, level slog.Level, color bool) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
			Level: level,
			// Durations as "1.5s" rather than nanoseconds: read by people too.
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Value.Kind() == slog.KindDuration {
					return slog.String(a.Key, a.Value.Duration().String())
				}
				return a
			},
		}))
	}
	return slog.New(tint.NewTextHandler(w, &tint.Options{
		Level:      level,
		TimeFormat: time.TimeOnly + ".000",
		NoColor:    !color,
	}))
}

// colorful reports whether f is a terminal that wants colour.
func colorful(f *os.File, lookupEnv func(string) (string, bool)) bool {
	if v, ok := lookupEnv("NO_COLOR"); ok && v != "" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// redactor is the last line of defence for secrets: it blanks the token and
// the Redis password from whatever is written through it, should any code
// path ever try to print them. Nothing is meant to reach it.
type redactor struct {
	mu      sync.Mutex
	w       io.Writer
	secrets [][]byte
}

// minSecret is the shortest secret the redactor looks for: a one-letter
// password would blank that letter everywhere.
const minSecret = 4

func newRedactor(w io.Writer, secrets ...string) *redactor {
	r := &redactor{w: w}
	for _, s := range secrets {
		if len(s) >= minSecret {
			r.secrets = append(r.secrets, []byte(s))
		}
	}
	return r
}

func (r *redactor) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := p
	for _, s := range r.secrets {
		if bytes.Contains(out, s) {
			out = bytes.ReplaceAll(out, s, []byte("[redacted]"))
		}
	}
	if _, err := r.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// redisLog sends go-redis's own log lines through slog. go-redis keeps one
// logger per process, so it is installed once and points at the logger of
// the latest Main.
var (
	redisLog     atomic.Pointer[slog.Logger]
	redisLogOnce sync.Once
)

func setRedisLogger(l *slog.Logger) {
	redisLog.Store(l.With("component", "go-redis"))
	redisLogOnce.Do(func() { redis.SetLogger(redisLogger{}) })
}

// redisLogger implements go-redis's internal.Logging.
type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l := redisLog.Load()
	if l == nil {
		return
	}
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	if strings.Contains(msg, context.Canceled.Error()) {
		return // a stop in progress, not news
	}
	if ctx == nil {
		ctx = context.Background()
	}
	msg = strings.TrimPrefix(msg, "redis: ")
	level := slog.LevelWarn
	switch {
	case strings.HasPrefix(msg, "connection pool: failed to dial"):
		// The command that needed the connection fails with the same
		// error, and its caller logs it: one line per outage is enough.
		level = slog.LevelDebug
	case strings.HasPrefix(msg, "sentinel: new master="):
		// A failover followed, as it should be: news, not a warning.
		level = slog.LevelInfo
	case strings.HasPrefix(msg, "sentinel: discovered new sentinel"),
		strings.HasPrefix(msg, "sentinel: selected addr"),
		strings.HasPrefix(msg, "sentinel: ignore addr"):
		// The sentinels' normal chatter.
		level = slog.LevelDebug
	}
	l.Log(ctx, level, msg)
}
