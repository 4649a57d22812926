package warmer

import (
	"sync"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
)

// seen is what the lease keeper last saw of Redis and of the cache's
// P:meta, with when: the probes answer from it and never ask Redis
// themselves, so a Redis that hangs cannot hang /healthz or /readyz.
type seen struct {
	mu sync.Mutex

	answered time.Time // real time Redis last answered the keeper (a reply or an error reply)
	asking   time.Time // real time the keeper's round trip in flight began; zero: none
	unheard  time.Time // real time the first of the keeper's unanswered tries began; zero: the last was answered
	replica  bool      // ROLE said so, on a plain connection
	kept     time.Time // real time of the writer's last write or heartbeat that went through

	metaAt    time.Time // real time P:meta was last read
	heartbeat time.Time // P:meta's heartbeat then (the writer's clock); zero: none
	beatMoved time.Time // real time the heartbeat was last seen to change: a standby judges by its own clock
	loaded    map[keys.Kind]string
}

// ask marks the start of a round trip to Redis; the func it returns marks
// its end, answered or not.
func (s *seen) ask() func(answered bool) {
	s.mu.Lock()
	s.asking = time.Now()
	if s.unheard.IsZero() {
		s.unheard = s.asking
	}
	s.mu.Unlock()
	return func(answered bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.asking = time.Time{}
		if answered {
			s.answered, s.unheard = time.Now(), time.Time{}
		}
	}
}

// silence is how long Redis has kept the keeper waiting: since the first
// of its tries that got no answer, the one in flight included; zero once
// Redis answers.
func (s *seen) silence(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unheard.IsZero() {
		return 0
	}
	return now.Sub(s.unheard)
}

// reachable reports whether Redis answers the keeper: its last round
// trip was answered, and the one in flight (if any) has not waited for
// limit. Before the keeper's first round trip, it is not.
func (s *seen) reachable(now time.Time, limit time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.answered.IsZero():
		return false
	case s.asking.IsZero():
		return s.unheard.IsZero() // the last round trip was answered
	}
	return now.Sub(s.unheard) <= limit
}

// wentAt is when Redis went quiet, for a failure seen now: the start of
// the first of the keeper's round trips it has not answered (a read for
// the probes, say), or now when there is none before it.
func (s *seen) wentAt(now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.unheard.IsZero() && s.unheard.Before(now) {
		return s.unheard
	}
	return now
}

func (s *seen) setReplica(v bool) {
	s.mu.Lock()
	s.replica = v
	s.mu.Unlock()
}

func (s *seen) isReplica() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replica
}

// keep notes a write or heartbeat of the writer's that went through.
func (s *seen) keep(now time.Time) {
	s.mu.Lock()
	s.kept = now
	s.mu.Unlock()
}

// keptAgo is how long ago the writer's last write went through; a day
// when none did.
func (s *seen) keptAgo(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kept.IsZero() {
		return 24 * time.Hour
	}
	return now.Sub(s.kept)
}

// setMeta notes P:meta's heartbeat and loaded fields as just read.
func (s *seen) setMeta(heartbeat time.Time, loaded map[keys.Kind]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if !heartbeat.Equal(s.heartbeat) || s.beatMoved.IsZero() {
		s.beatMoved = now
	}
	s.metaAt, s.heartbeat, s.loaded = now, heartbeat, loaded
}

// beatStill is how long, by this process's clock, P:meta's heartbeat has
// not changed.
func (s *seen) beatStill(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Sub(s.beatMoved)
}

// meta returns P:meta as last read, and when it was read.
func (s *seen) meta() (at, heartbeat time.Time, loaded map[keys.Kind]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.metaAt, s.heartbeat, s.loaded
}
