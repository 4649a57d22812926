package warmer

import (
	"errors"
	"sync"
	"time"
)

// opError is a step's failure with the operation that failed (take_over,
// expire, check...): repeated failures are logged per operation.
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// opOf names the operation an error of a step's comes from, "step" when it
// names none.
func opOf(err error) string {
	if oe, ok := errors.AsType[*opError](err); ok {
		return oe.op
	}
	return "step"
}

// complaints keeps repeated failures to one log line a minute for each
// operation that fails: the first failure is told at once, the run of
// them once a minute while it lasts (with how many there were), and its
// end once. A rotated password or a full Redis fails every step, once a
// second; the log says so, and goes on saying so, without a flood.
type complaints struct {
	mu   sync.Mutex
	runs map[string]*complaint
}

// complaint is a run of failures of one operation.
type complaint struct {
	since, logged time.Time
	n             int // failures since the run was last logged
	total         int
}

// failed notes a failure of op, and reports whether to log it now and
// how many failures the line stands for.
func (c *complaints) failed(op string, now time.Time) (log bool, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runs == nil {
		c.runs = map[string]*complaint{}
	}
	r := c.runs[op]
	if r == nil {
		r = &complaint{since: now}
		c.runs[op] = r
	}
	r.n++
	r.total++
	if !r.logged.IsZero() && now.Sub(r.logged) < complainEvery {
		return false, 0
	}
	r.logged, n, r.n = now, r.n, 0
	return true, n
}

// recovered is a run of failures that ended.
type recovered struct {
	op       string
	lasted   time.Duration
	failures int
}

// ok ends the runs of failures of the operations which says went
// through, and returns those that were going on.
func (c *complaints) ok(now time.Time, which func(op string) bool) []recovered {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []recovered
	for op, r := range c.runs {
		if which(op) {
			out = append(out, recovered{op: op, lasted: now.Sub(r.since), failures: r.total})
			delete(c.runs, op)
		}
	}
	return out
}

// worksAgain ends op's run of failures, if one was going on, and says so.
func (w *Warmer) worksAgain(op string) {
	for _, r := range w.complaints.ok(time.Now(), func(o string) bool { return o == op }) {
		w.log.Info("works again", "op", r.op, "after", r.lasted.Round(time.Millisecond), "failures", r.failures)
	}
}
