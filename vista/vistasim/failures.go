// Failures on purpose: the modes, the queue Fail fills and each request
// takes from, and the helpers ServeHTTP answers a failure with (its status,
// its Retry-After, its delay).

package vistasim

import (
	"context"
	"math"
	"slices"
	"strconv"
	"time"
)

// FailMode is how a request fails on purpose.
type FailMode int

// Failure modes.
const (
	// FailStatus answers Failure.Status (default 500) with an OData error.
	FailStatus FailMode = iota + 1
	// FailSlow waits Failure.Delay, or until the client gives up, then
	// answers normally.
	FailSlow
	// FailMalformed answers 200 with the first half of the real body: JSON
	// that ends too soon.
	FailMalformed
	// FailRateLimit answers 429 (or Failure.Status) with Retry-After.
	FailRateLimit
	// FailEmpty answers 200 with an empty list, {"value":[]}, as a
	// misrouted gateway or a broken Vista cache does: every list and
	// every seat check then says there is nothing.
	FailEmpty
)

func (m FailMode) String() string {
	switch m {
	case FailStatus:
		return "status"
	case FailSlow:
		return "slow"
	case FailMalformed:
		return "malformed"
	case FailRateLimit:
		return "rate-limited"
	case FailEmpty:
		return "empty"
	}
	return "FailMode(" + strconv.Itoa(int(m)) + ")"
}

// Failure makes the next matching requests fail. Failures queue: a request
// takes the first one, in the order given to Fail, that matches it.
type Failure struct {
	Mode FailMode
	// Count is how many matching requests fail before it heals; 0 is taken
	// as 1; negative fails until ClearFailures.
	Count int
	// Endpoint is one of the Endpoint constants; "" matches every request.
	Endpoint string
	// Status is the status for FailStatus (default 500) and FailRateLimit
	// (default 429).
	Status int
	// RetryAfter is sent as Retry-After, rounded up to whole seconds, by
	// FailRateLimit always (0 sends "0") and by FailStatus when positive.
	RetryAfter time.Duration
	// Delay is waited before answering, in every mode; the wait ends early
	// when the request's context is done, and then nothing is answered.
	Delay time.Duration
}

// Fail queues a failure for the next matching requests.
func (s *Server) Fail(f Failure) {
	if f.Count == 0 {
		f.Count = 1
	}
	s.failMu.Lock()
	s.failures = append(s.failures, &f)
	s.failMu.Unlock()
}

// ClearFailures drops every queued failure.
func (s *Server) ClearFailures() {
	s.failMu.Lock()
	s.failures = nil
	s.failMu.Unlock()
}

func (s *Server) takeFailure(ep string) (Failure, bool) {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	for i, f := range s.failures {
		if f.Endpoint != "" && f.Endpoint != ep {
			continue
		}
		taken := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				s.failures = slices.Delete(s.failures, i, i+1)
			}
		}
		return taken, true
	}
	return Failure{}, false
}

func cmp(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func retryAfter(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(max(d, 0).Seconds())), 10)
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
