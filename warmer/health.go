package warmer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// describe says what a Redis error means: a short code for the metric, a
// reason for the operator, and whether Redis refused outright (as opposed
// to not answering).
func describe(err error) (code, why string, refused bool) {
	if code, why := refusal(err); code != "" {
		return code, why, true
	}
	var nerr net.Error
	var oerr *net.OpError
	switch msg := err.Error(); {
	case strings.Contains(msg, "tls:"), strings.Contains(msg, "x509:"):
		return "tls", "TLS with redis fails: " + excerpt(msg), true
	case errors.As(err, &oerr), errors.As(err, &nerr), errors.Is(err, context.DeadlineExceeded),
		strings.Contains(err.Error(), "connection refused"), strings.Contains(err.Error(), "EOF"):
		return "unreachable", "redis is unreachable", false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return "error", "redis answers an error: " + excerpt(rerr.Error()), false
	}
	return "error", "redis fails: " + excerpt(err.Error()), false
}

// excerpt shortens a message for /healthz.
func excerpt(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// Health reports whether this instance can do its job, and if not, why
// (contract section 5): Redis answers, is not a replica, takes the lease
// and, as writer, the writes, and does not evict the cache. It answers
// from what the lease keeper and the writes saw, never asking Redis: a
// Redis that hangs does not hang the probe.
func (w *Warmer) Health(context.Context) (ok bool, reason string) {
	now := time.Now()
	if why := w.obs.deniedNow(now); why != "" {
		return false, why
	}
	if d := w.obs.seen.silence(now); d > w.silenceLimit() {
		return false, fmt.Sprintf("redis is unreachable: no answer for %s", d.Round(100*time.Millisecond))
	}
	if why := w.evicting.Load(); why != nil && w.keep.leading() {
		return false, *why // the most telling of what a full Redis does
	}
	if why := w.obs.lease.unhealthy(now, w.cfg.LeaseTTL); why != "" {
		return false, why
	}
	if w.obs.seen.isReplica() {
		return false, "redis is a replica (read-only): no writes, no takeover"
	}
	if w.keep.leading() {
		if why := w.obs.writes.unhealthy(now, w.cfg.LeaseTTL); why != "" {
			return false, why
		}
	}
	return true, ""
}

// silenceLimit is how long Redis may keep the lease keeper waiting before
// the instance is unhealthy: half the lease TTL, so that /healthz says so
// within the TTL.
func (w *Warmer) silenceLimit() time.Duration { return w.cfg.LeaseTTL / 2 }

// keptWithin is how recent the cache's last write or heartbeat must be
// for it to count as kept: the lease TTL, or two heartbeats when they are
// further apart.
func (w *Warmer) keptWithin() time.Duration { return max(w.cfg.LeaseTTL, 2*w.cfg.Heartbeat) }

// Status is what /readyz answers (contract section 5).
//
// Every field is always in the JSON, so that a reader parsing the body
// finds each one: reason is "" when ready, the heartbeat's age null when
// P:meta has none, and last_reloads names only the kinds reloaded so far.
type Status struct {
	Role   string `json:"role"`
	Ready  bool   `json:"ready"`
	Reason string `json:"reason"`
	// HeartbeatAge is how long ago the writer last wrote its heartbeat,
	// in seconds; null when there is none.
	HeartbeatAge *float64 `json:"heartbeat_age_seconds"`
	// LastReloads is when each kind was last reloaded whole.
	LastReloads map[keys.Kind]string `json:"last_reloads"`
}

// Status reports the instance's role and readiness with the cache's
// heartbeat and reloads as the lease keeper last read them from P:meta.
func (w *Warmer) Status(ctx context.Context) Status {
	s := Status{Role: w.Role(), LastReloads: map[keys.Kind]string{}}
	s.Ready, s.Reason = w.Readiness(ctx)
	_, beat, loaded := w.obs.seen.meta()
	if !beat.IsZero() {
		age := max(w.cfg.Clock.Now().Sub(beat), 0).Seconds()
		s.HeartbeatAge = &age
	}
	maps.Copy(s.LastReloads, loaded)
	return s
}

// Role returns "writer" or "standby".
func (w *Warmer) Role() string {
	if w.keep.leading() {
		return "writer"
	}
	return "standby"
}

// Ready reports whether the cache this instance serves is warm: as writer,
// once the first full load of all three lists is in Redis and while no
// drop is held back; on standby, once the writer's cache says so.
func (w *Warmer) Ready(ctx context.Context) bool {
	ready, _ := w.Readiness(ctx)
	return ready
}

// Readiness is Ready with the reason when not ready. It answers from what
// the lease keeper and the writer saw, never asking Redis.
func (w *Warmer) Readiness(context.Context) (ready bool, reason string) {
	now := time.Now()
	if w.keep.leading() {
		if why := w.obs.deniedNow(now); why != "" {
			return false, why
		}
		if why := w.keep.refused(); why != "" {
			return false, "the writer's writes are refused: " + why
		}
		if !w.ready.Load() {
			return false, "the first full load of cinemas, films and sessions is not in Redis yet"
		}
		if ago := w.obs.seen.keptAgo(now); ago > w.keptWithin() {
			return false, fmt.Sprintf("the cache has not been kept for %s: no write or heartbeat went through", ago.Round(time.Second))
		}
		if why := w.evicting.Load(); why != nil {
			return false, *why
		}
		if r := w.heldReason.Load(); r != nil {
			return false, *r
		}
		// Every check has failed for a while, and one failed lately: a
		// failure long ago that no check followed (none was due) is not
		// news of the seats now.
		if f, now := w.checksFailing.Load(), w.cfg.Clock.Now(); f != nil && now.Sub(f.since) > w.checksFailingFor() &&
			now.Sub(f.last) <= w.checksFailingFor() {
			return false, fmt.Sprintf("seat checks have failed for %s: %s", now.Sub(f.since).Round(time.Second), f.err)
		}
		return true, ""
	}
	at, beat, loaded := w.obs.seen.meta()
	switch {
	case at.IsZero() || now.Sub(at) > w.keptWithin():
		return false, "cannot read the cache's meta from redis"
	case len(loaded) < len(keys.Kinds):
		return false, "the writer has not loaded cinemas, films and sessions yet"
	case beat.IsZero():
		return false, "no writer's heartbeat in P:meta"
	}
	// By this process's clock, not the writer's stamp: two hosts' clocks
	// may disagree by more than a lease TTL.
	if still := w.obs.seen.beatStill(now); still > w.keptWithin() {
		return false, fmt.Sprintf("no writer keeps the cache: its heartbeat has not moved for %s", still.Round(time.Second))
	}
	return true, ""
}

// checkFailure is a run of failed seat checks: the first, the last, and
// what the last said.
type checkFailure struct {
	since, last time.Time
	err         string
}

// checksFailingFor is how long seat checks may all fail before /readyz
// says the cache is not fresh: six near intervals, a minute at least.
func (w *Warmer) checksFailingFor() time.Duration {
	return max(time.Minute, 6*w.cfg.Policy.NearInterval)
}
