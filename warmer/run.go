package warmer

import (
	"context"
	"errors"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vista-warmer/vista-warmer/keys"
)

// Run is the warmer's one way to run, in production and in tests alike.
// Its goroutines:
//
//   - the lease keeper (keeper.run) renews the lease and writes the
//     heartbeat on real time;
//   - the writer's loop (loop) owns the writer's state and calls
//     step when something is due on the warmer's clock, when a list or a
//     seat check's answer is in, when Settle or Reload asks, and at least
//     every Tick;
//   - fetchers (fetchAsync) and seat checkers (sendChecks) ask Vista and
//     hand what they got to the loop, which alone writes to Redis.
//
// A test drives time by giving the warmer a clock it moves by hand (the
// Clock may also implement Waiter, so the loop wakes when the clock
// passes what is due) and calling Settle after each move: Settle returns
// once the loop has done everything due by the new time and has nothing
// in flight.

// Waiter is a Clock that can wait on its own time: a fake clock that a
// test moves wakes Run when it passes the next thing due. With a Clock
// that does not implement it, Run waits on real time.
type Waiter interface {
	After(d time.Duration) <-chan time.Time
}

// settle is a request to Run: Settle's, or Reload's when kind is set.
type settle struct {
	kind keys.Kind
	err  error // the first failure of the steps since the request
	done chan error
}

// Run keeps the cache warm until ctx is done, then releases the lease so a
// standby takes over at once. A write that has started when ctx ends is
// finished, never cut in half.
//
// Its goroutines run as one group (errgroup): the lease keeper, the
// writer's loop, and the fetchers and seat checkers the loop starts. Run
// returns when all of them have.
func (w *Warmer) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("warmer: Run is running already")
	}
	defer w.running.Store(false)
	w.group = new(errgroup.Group)
	w.group.Go(func() error {
		w.keep.run(ctx)
		return nil
	})
	w.group.Go(func() error {
		w.obs.watchSilence(ctx, w.silenceLimit())
		return nil
	})
	w.group.Go(func() error {
		w.loop(ctx)
		return nil
	})
	return w.group.Wait()
}

// goAsk runs f in Run's group: a fetch or a seat check, which hands what
// it got to the loop, or gives up when ctx ends.
func (w *Warmer) goAsk(f func()) {
	w.asking.Add(1)
	w.group.Go(func() error {
		defer w.asking.Add(-1)
		f()
		return nil
	})
}

// loop is the writer's loop: it owns the writer's state, and steps until
// ctx is done.
func (w *Warmer) loop(ctx context.Context) {
	// step runs when something is due (a check, an expiry, a reload), when
	// a list or a seat check's answer is in, and at least every Tick, for
	// what runs on real time (evictions, refusals waited out).
	var waiting []*settle
	var failure error // the first of the steps since Settle last returned
	tick := time.NewTimer(0)
	defer tick.Stop()
	for {
		err := w.step(ctx)
		w.stepped(ctx, err)
		if failure == nil {
			failure = err
		}
		tick.Reset(w.cfg.Tick)
		due, more := w.due(err != nil)
		// Answered last, once nothing more is due now: when Settle
		// returns, the loop waits for the clock, an arrival or the tick,
		// and touches nothing meanwhile.
		if n := len(waiting); n > 0 && !more {
			if waiting = w.answerSettles(waiting, failure); len(waiting) < n {
				failure = nil
			}
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				w.keep.release()
				for _, q := range waiting {
					q.done <- ctx.Err()
				}
				return
			case <-tick.C:
			case <-due:
			case <-w.arrived:
				if len(w.fetched) == 0 && len(w.answers) == 0 && w.aside == nil {
					continue // a late wake: a step took in what it announced
				}
			case q := <-w.settles:
				if q.kind != "" {
					w.reloadNow(q.kind)
				}
				waiting = append(waiting, q)
			}
			break wait
		}
	}
}

// due is what the loop waits for on the warmer's clock after a step: the
// next thing due, ready at once when more is due now (more). After a
// step that failed it waits for the tick instead: a Redis or a Vista
// that fails every step is not asked again in a tight loop.
func (w *Warmer) due(failed bool) (due <-chan time.Time, more bool) {
	next := w.nextDue()
	if next.IsZero() || failed {
		return nil, false
	}
	d := next.Sub(w.cfg.Clock.Now())
	if d <= 0 {
		return now, true
	}
	return w.after(d), false
}

// now is a channel that is always ready.
var now = func() <-chan time.Time {
	c := make(chan time.Time)
	close(c)
	return c
}()

// after waits d on the warmer's clock.
func (w *Warmer) after(d time.Duration) <-chan time.Time {
	if c, ok := w.cfg.Clock.(Waiter); ok {
		return c.After(d)
	}
	return time.After(d)
}

// answerSettles answers the requests waiting, with the first failure of
// the steps since Settle last returned, once the writer has nothing in
// flight: no list being fetched or taken in, no seat check unanswered.
// After a failed step it answers as soon as nothing more can arrive:
// what did arrive waits for the next step, which after a failure the
// loop takes only at the tick or when the clock moves, and a Settle
// that waited for it would wait that long.
func (w *Warmer) answerSettles(waiting []*settle, failure error) []*settle {
	for _, q := range waiting {
		q.err = failure
	}
	if !w.quiet() && (failure == nil || w.asking.Load() > 0) {
		return waiting
	}
	standby := !w.keep.leading()
	for _, q := range waiting {
		if q.kind != "" && q.err == nil && standby {
			q.err = ErrStandby // the write found the lease or the cache moved
		}
		q.done <- q.err
	}
	return waiting[:0]
}

// reloadNow makes a full reload of k due now. A fetch of the kind under
// way is called off, and what it wrote so far is replaced: the new one
// says what Vista says now.
func (w *Warmer) reloadNow(k keys.Kind) {
	w.stepMu.Lock()
	defer w.stepMu.Unlock()
	if w.st == nil {
		return
	}
	if f := w.st.kinds[k].fetching; f != nil {
		f.cancel()
		w.st.kinds[k].fetching = nil
		w.st.kinds[k].intake = nil
	}
	w.st.kinds[k].next = w.cfg.Clock.Now()
}

// quiet reports whether the writer has nothing in flight.
func (w *Warmer) quiet() bool {
	w.stepMu.Lock()
	defer w.stepMu.Unlock()
	st := w.st
	if st == nil {
		return true
	}
	for _, r := range st.kinds {
		if r.fetching != nil || r.intake != nil {
			return false
		}
	}
	return st.checker.idle()
}

// Settle wakes Run and waits until it has done everything due by the
// warmer's clock and has nothing in flight: every list due fetched and
// taken in, every seat check due answered and written. It returns the
// first failure of the loop's steps since Settle last returned. Tests and benchmarks call it
// after they move a fake clock. It waits for Run to start, or for ctx.
func (w *Warmer) Settle(ctx context.Context) error {
	return w.ask(ctx, &settle{})
}

// ErrStandby is returned by Reload on an instance that does not write.
var ErrStandby = errors.New("standing by: another instance writes")

// Reload asks Run for a full reload of one kind now, as its schedule
// does, and waits for it to be written. It waits for Run to start, or
// for ctx.
func (w *Warmer) Reload(ctx context.Context, k keys.Kind) error {
	if !w.keep.leading() {
		return ErrStandby
	}
	return w.ask(ctx, &settle{kind: k})
}

// ask hands q to Run, which may be about to start, and waits for its
// answer or for ctx.
func (w *Warmer) ask(ctx context.Context, q *settle) error {
	q.done = make(chan error, 1)
	select {
	case w.settles <- q:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-q.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stepped logs how a step of Run's went: a failure at once and then once
// a minute for each operation while it goes on, and the end of a run of
// failures once. Redis's refusals of the writes are noteWrite's to log.
func (w *Warmer) stepped(ctx context.Context, err error) {
	now := time.Now()
	switch {
	case ctx.Err() != nil, errors.Is(err, errDeniedWait):
	case err == nil:
		// A step that went through ends the runs of what every step does;
		// a reload's and the checks' end when one of them goes through.
		for _, r := range w.complaints.ok(now, func(op string) bool { return !strings.HasPrefix(op, "reload_") && op != "check" }) {
			w.log.Info("works again", "op", r.op, "after", r.lasted.Round(time.Millisecond), "failures", r.failures)
		}
	case redisTrouble(err):
	default:
		op := opOf(err)
		if log, n := w.complaints.failed(op, now); log {
			w.log.Warn("a step failed; trying again (logged once a minute while it lasts)", "op", op, "failures", n, "err", err)
		}
	}
}

// nextDue is when step has something to do next on the warmer's clock: a
// check or an expiry, a full reload; zero when nothing is scheduled.
func (w *Warmer) nextDue() time.Time {
	w.stepMu.Lock()
	defer w.stepMu.Unlock()
	if w.st == nil {
		return time.Time{}
	}
	var next time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	earliest(w.st.checker.next())
	earliest(w.st.expiries.next())
	for _, k := range keys.Kinds {
		if need := w.specs[k].needs; w.st.kinds[k].fetching == nil && (need == "" || w.st.kinds[need].loaded) {
			earliest(w.st.kinds[k].next)
		}
	}
	return next
}
