package warmer

import (
	"context"
	"testing"
	"time"
)

// A run of failures counts from when its first failed try began: a Redis
// that kept the try waiting for its timeout was gone from then, and the
// log's "for" and "after" say so, not the moment the timeout ran out.
func TestTroubleCountsFromTheFirstTry(t *testing.T) {
	t0 := time.Date(2031, time.November, 12, 10, 0, 0, 0, time.UTC)
	var tr trouble
	_, log, lasted := tr.failed(context.DeadlineExceeded, t0, t0.Add(10*time.Second))
	if !log || lasted != 10*time.Second {
		t.Errorf("first failure: log %v, lasted %v; want logged, 10s (its try began 10s before it failed)", log, lasted)
	}
	if _, log, lasted = tr.failed(context.DeadlineExceeded, t0.Add(11*time.Second), t0.Add(15*time.Second)); log || lasted != 15*time.Second {
		t.Errorf("second failure: log %v, lasted %v; want not logged again within a minute, 15s", log, lasted)
	}
	if d := tr.ok(t0.Add(20 * time.Second)); d != 20*time.Second {
		t.Errorf("the run ended after %v, want 20s", d)
	}
}
