// The observer: what the lease keeper and the fenced store saw of Redis
// (its answers and silences, seen.go; runs of failures, trouble; ACL
// denials, denial), kept for the probes and logged once a minute while
// it lasts. Health reads it; the others only report to it.
package warmer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// observer is what the parts saw of Redis. Its methods are safe to call
// from any goroutine.
type observer struct {
	log      *slog.Logger
	m        *Metrics
	leaseTTL time.Duration
	// preflight tries every command the warmer sends, to name one the
	// ACLs deny (Preflight on the warmer's Redis).
	preflight func(context.Context) error

	seen          seen        // Redis's answers, role and P:meta, as last seen
	denied        denial      // the last command the ACLs denied
	lease, writes trouble     // runs of failed lease renewals and fenced writes
	rechecking    atomic.Bool // recheckDenied's tries are under way
}

// trouble is a run of failures of one kind of Redis operation: the lease
// (every instance) or the fenced writes (the writer). It tells /healthz
// whether the instance can do its job, and keeps the log to a line a
// minute while the failures go on.
type trouble struct {
	mu      sync.Mutex
	since   time.Time // the first failure of the run; zero: none
	why     string    // what the last one means
	refused bool      // Redis refused it (out of memory, read-only, credentials): unhealthy at once
	logged  time.Time // when the run was last logged
}

// complainEvery is how often a run of the same failures is logged.
const complainEvery = time.Minute

// failed notes a failure of a try that began at began, and reports
// whether to log it now: the first of a run at once, then once a minute
// while the run lasts, whatever its reason says meanwhile. lasted is how
// long the run has gone on: a run starts when its first failed try began,
// so a Redis that kept the try waiting for its timeout counts from then.
func (t *trouble) failed(err error, began, now time.Time) (why string, log bool, lasted time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, why, refused := describe(err)
	if t.since.IsZero() {
		// A new run; logged at once unless the last was logged less
		// than a minute ago (Redis at its limit takes a write, refuses
		// the next: one line a minute, not one a flip).
		t.since = began
	}
	t.why, t.refused = why, refused
	if !t.logged.IsZero() && now.Sub(t.logged) < complainEvery {
		return why, false, now.Sub(t.since)
	}
	t.logged = now
	return why, true, now.Sub(t.since)
}

// ok ends a run of failures, and returns how long it lasted (0: none).
//
// It reports 0 too for a run none of whose failures was logged: its end
// is not news either.
func (t *trouble) ok(now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.since.IsZero() {
		return 0
	}
	d := now.Sub(t.since)
	told := !t.logged.Before(t.since)
	t.since, t.why, t.refused = time.Time{}, "", false
	if !told {
		return 0
	}
	return max(d, time.Nanosecond)
}

// failing reports whether a run of failures goes on.
func (t *trouble) failing() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.since.IsZero()
}

// refusal says why Redis refuses, while a run of refusals goes on; ""
// otherwise (no failure, or one where Redis did not answer).
func (t *trouble) refusal() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.since.IsZero() || !t.refused {
		return ""
	}
	return t.why
}

// unhealthy says why the run of failures makes the instance unhealthy:
// at once when Redis refused, after grace otherwise; "" when it does not.
func (t *trouble) unhealthy(now time.Time, grace time.Duration) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.since.IsZero():
		return ""
	case t.refused:
		return t.why
	case now.Sub(t.since) > grace:
		return fmt.Sprintf("%s, for %s", t.why, now.Sub(t.since).Round(time.Second))
	}
	return ""
}

// noteLease and noteWrite record how a try of the lease or the writes
// that began at began went, and log a run of failures once a minute and
// its end once.
func (o *observer) noteLease(err error, began time.Time) { o.note(&o.lease, "lease", err, began) }
func (o *observer) noteWrite(err error, began time.Time) { o.note(&o.writes, "writes", err, began) }

func (o *observer) note(t *trouble, what string, err error, began time.Time) {
	now := time.Now()
	if err == nil {
		if d := t.ok(now); d > 0 {
			o.log.Info("redis takes the "+what+" again", "after", d.Round(time.Millisecond))
		}
		return
	}
	code, _, refused := describe(err)
	if code == "acl" && o.noteDenied(what, err) {
		t.failed(err, began, now) // noteDenied logs it, naming the command
		o.m.redisFailures.WithLabelValues(what, code).Inc()
		return
	}
	why, log, lasted := t.failed(err, began, now)
	o.m.redisFailures.WithLabelValues(what, code).Inc()
	if log {
		msg := "redis: the writes fail; trying again (logged once a minute while it lasts)"
		if what == "lease" {
			msg = "redis: the lease keeper's requests fail (the lease, the reads for the probes); trying again (logged once a minute while it lasts)"
		}
		// A blip is a warning; a refusal, or a failure that outlasts the
		// lease TTL, is an error.
		level := slog.LevelWarn
		if refused || lasted > o.leaseTTL {
			level = slog.LevelError
		}
		o.log.LogAttrs(context.Background(), level, msg,
			slog.String("why", why), slog.Duration("for", lasted.Round(time.Millisecond)), slog.Any("err", err))
	}
}

// watchSilence logs a Redis that leaves the lease keeper waiting for
// longer than limit, as /healthz says it: at once, then once a minute
// while it lasts, and its end once, with how long it lasted. A request
// that hangs fails only when go-redis's timeouts and retries run out, if
// at all (a retry may go through once Redis answers), so the silence is
// watched on its own, from what the keeper saw.
func (o *observer) watchSilence(ctx context.Context, limit time.Duration) {
	t := time.NewTicker(min(limit/4, 250*time.Millisecond))
	defer t.Stop()
	var began, said time.Time // the silence being told of; when it was last logged
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		d := o.seen.silence(now)
		switch {
		case d > limit && (began.IsZero() || now.Sub(said) >= complainEvery):
			if began.IsZero() {
				began = now.Add(-d)
			}
			said = now
			o.log.Warn("redis does not answer; waiting (logged once a minute while it lasts)", "for", now.Sub(began).Round(100*time.Millisecond))
		case d == 0 && !began.IsZero():
			o.log.Info("redis answers again", "after", now.Sub(began).Round(100*time.Millisecond))
			began = time.Time{}
		}
	}
}

// denial is the last command Redis's ACLs denied the warmer while it
// ran, for /healthz and a log line a minute.
type denial struct {
	mu     sync.Mutex
	why    string
	retry  bool      // it was found over: step tries its work again now
	at     time.Time // real time it was last seen
	logged time.Time
	named  time.Time // when Preflight last ran to name a denied command
}

// deniedFor is how long /healthz goes on naming a denial after it was
// last seen: a denied command fails each time it is tried, and some are
// tried only now and then.
const deniedFor = time.Minute

// deniedRetry is how often step tries its work while a command is denied.
const deniedRetry = 10 * time.Second

// errDeniedWait: step waits for the next try while a command is denied.
var errDeniedWait = errors.New("a command is denied; waiting to try again")

// recheckDenied tries, with Preflight, every command the warmer sends,
// while a denial is said: none denied means the operator granted what
// was missing, and the denial is over at once (not when the operation
// that met it happens to go again, which for a reload may be a minute);
// one still denied is named. The lease keeper calls it, every
// recheckEvery at most, on writer and standby alike; the tries go beside
// it, as noteDenied's do, so that the lease never waits on them.
func (o *observer) recheckDenied(ctx context.Context) {
	if o.deniedNow(time.Now()) == "" || !o.rechecking.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer o.rechecking.Store(false)
		o.recheck(ctx)
	}()
}

func (o *observer) recheck(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := o.preflight(ctx)
	var named *DeniedError
	d := &o.denied
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case err == nil && d.why != "":
		d.why, d.retry = "", true
		d.logged = time.Time{} // the next denial is news: logged at once
		o.log.Info("no command is denied any more; the ACL grants what the warmer needs again")
	case errors.As(err, &named) && d.why != "":
		d.why, d.at = named.Error(), time.Now()
	}
}

// recheckEvery is how often recheckDenied tries the commands while a
// denial is said.
const recheckEvery = 2 * time.Second

// retryNow reports, once, that a denial was found over: step tries its
// work again at once, not deniedRetry after its last try.
func (o *observer) retryNow() bool {
	d := &o.denied
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.retry
	d.retry = false
	return r
}

// noteDenied records err when it is an ACL denial, logs it once a
// minute, and reports whether it was one. A denial inside a script does
// not say which command it was: Preflight finds out, once a minute.
func (o *observer) noteDenied(op string, err error) bool {
	if err == nil {
		return false
	}
	if code, _ := refusal(err); code != "acl" {
		return false
	}
	de := &DeniedError{Command: deniedCommand(err), Err: err}
	d := &o.denied
	now := time.Now()
	d.mu.Lock()
	name := de.Command == "" && now.Sub(d.named) >= complainEvery
	if name {
		d.named = now
		// Beside the caller, which may be the lease keeper: a preflight
		// is a few round trips, and the lease must not wait on them.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var named *DeniedError
			if errors.As(o.preflight(ctx), &named) {
				d.mu.Lock()
				if d.why != "" { // not found over meanwhile
					d.why, d.at = named.Error(), time.Now()
				}
				d.mu.Unlock()
			}
		}()
	}
	if de.Command != "" || d.why == "" || now.Sub(d.at) > deniedFor {
		d.why = de.Error()
	}
	d.at = now
	why := d.why
	log := d.logged.IsZero() || now.Sub(d.logged) >= complainEvery
	if log {
		d.logged = now
	}
	d.mu.Unlock()
	if log {
		o.log.Error("a command is denied (logged once a minute while it lasts)", "op", op, "why", why)
	}
	return true
}

// deniedNow says which denial /healthz reports, "" when none lately.
func (o *observer) deniedNow(now time.Time) string {
	d := &o.denied
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.why == "" || now.Sub(d.at) > deniedFor {
		return ""
	}
	return d.why
}
