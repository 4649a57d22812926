package vista

import (
	"container/heap"
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Budget bounds the requests to Vista: at most a number in flight at once
// and at most a rate of starts, shared by every request of the Clients that
// hold it (Config.Budget), list pages and seat checks alike.
//
// When requests must wait, the most urgent starts first. A request's
// priority is a time, earlier meaning more urgent: a seat check passes its
// session's showtime (WithPriority). A request without one, a page of a
// full reload, counts as due an hour (NoPriorityDelay) after it began to
// wait: a seat check for a session less than an hour away goes first, yet a
// reload page is never held back for long.
//
// The rate is kept by spacing starts at least 1/rate apart (a token bucket
// holding one token): requests do not start in bursts after a quiet spell,
// nor all at once after a Pause. A Budget is safe for concurrent use; a nil
// *Budget bounds nothing.
type Budget struct {
	mu        sync.Mutex
	limit     int           // requests in flight at most
	interval  time.Duration // 1/rate; 0: no bound on the rate
	next      time.Time     // no request starts before this, by the rate
	paused    time.Time     // no request starts before this, by Pause
	slow      int           // interval multiplier after a 429 or 503 without Retry-After; 0 or 1 normally
	slowUntil time.Time
	inUse     int
	waiters   waitQueue
	seq       uint64 // orders waiters of equal priority by arrival

	// The one timer that wakes the queue when the rate or a pause lets the
	// first waiter start.
	timerAt   time.Time // zero: none set
	timerGen  uint64
	stopTimer func() bool

	// now and afterFunc are the clock; tests replace them.
	now       func() time.Time
	afterFunc func(d time.Duration, f func()) (stop func() bool)
}

const (
	// NoPriorityDelay is how far after it began to wait a request without
	// a priority counts as due.
	NoPriorityDelay = time.Hour
	// MaxPause caps one Pause: a Retry-After of days is a server's
	// mistake, not a reason to stop for days.
	MaxPause = 5 * time.Minute
	// slowFor is how long a 429 or 503 without Retry-After halves the rate,
	// counted from the last one; maxSlow bounds the slowing to 1/8 of the
	// rate.
	slowFor = time.Minute
	maxSlow = 8
)

// NewBudget returns a Budget of concurrency requests in flight (at least 1)
// and perSecond request starts a second; perSecond <= 0 (or +Inf) bounds
// only the concurrency, and a rate below one an hour counts as one an hour.
func NewBudget(concurrency int, perSecond float64) *Budget {
	b := &Budget{
		limit: max(concurrency, 1),
		now:   time.Now,
		afterFunc: func(d time.Duration, f func()) func() bool {
			return time.AfterFunc(d, f).Stop
		},
	}
	if perSecond > 0 {
		b.interval = time.Duration(min(float64(time.Second)/perSecond, float64(time.Hour)))
	}
	return b
}

// Acquire waits until a request of the given priority may start: a slot is
// free, the rate allows it, no Pause holds the budget, and no more urgent
// request waits. The request ends when release is called (more than one
// call is harmless). A context that ends stops the wait at once, with its
// error and a nil release. A zero priority means none (see Budget).
func (b *Budget) Acquire(ctx context.Context, priority time.Time) (release func(), err error) {
	release, _, err = b.acquire(ctx, priority, false)
	return release, err
}

// acquire is Acquire that also returns how long it waited, by b's clock.
// A request that is a list's next page (unrated) is not held by the rate,
// nor counts against it: only the slots and the pauses hold it, and a more
// urgent waiter the rate holds does not start any later for it.
func (b *Budget) acquire(ctx context.Context, priority time.Time, unrated bool) (release func(), waited time.Duration, err error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if b == nil {
		return func() {}, 0, nil
	}
	b.mu.Lock()
	start := b.now()
	if priority.IsZero() {
		priority = start.Add(NoPriorityDelay)
	}
	b.seq++
	w := &waiter{priority: priority, seq: b.seq, unrated: unrated, ready: make(chan struct{})}
	heap.Push(&b.waiters, w)
	b.dispatch()
	if w.granted {
		b.mu.Unlock()
		return b.releaser(), 0, nil
	}
	b.mu.Unlock()

	select {
	case <-w.ready:
		return b.releaser(), b.since(start), nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	granted := w.granted
	if !granted {
		heap.Remove(&b.waiters, w.index)
	}
	b.mu.Unlock()
	if granted { // granted as the context ended: hand the slot back
		b.releaser()()
	}
	return nil, b.since(start), ctx.Err()
}

func (b *Budget) since(t time.Time) time.Duration {
	return max(b.now().Sub(t), 0)
}

func (b *Budget) releaser() func() {
	var done atomic.Bool
	return func() {
		if done.Swap(true) {
			return
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		b.inUse--
		b.dispatch()
	}
}

// Pause holds every request that has not started yet until until, or
// MaxPause from now if that is sooner. Requests in flight go on. A pause
// only ever grows: an earlier until than the one in force changes nothing.
func (b *Budget) Pause(until time.Time) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	until = minTime(until, b.now().Add(MaxPause))
	if until.After(b.paused) {
		b.paused = until
	}
	b.dispatch()
}

// pauseFor is Pause for d from now by b's clock.
func (b *Budget) pauseFor(d time.Duration) {
	if b == nil {
		return
	}
	b.Pause(b.now().Add(d))
}

// slowDown halves the rate, down to 1/maxSlow of it, until slowFor passes
// without another call: a server that answers 429 or 503 without saying
// how long to wait is asked less often for a while.
func (b *Budget) slowDown() {
	if b == nil || b.interval == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.slow = min(max(b.slowFactor(now), 1)*2, maxSlow)
	b.slowUntil = now.Add(slowFor)
}

// slowFactor is the multiplier of the interval in force at now.
func (b *Budget) slowFactor(now time.Time) int {
	if b.slow > 1 && now.Before(b.slowUntil) {
		return b.slow
	}
	return 1
}

// InUse reports the requests in flight.
func (b *Budget) InUse() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inUse
}

// Waiting reports the requests waiting to start.
func (b *Budget) Waiting() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.waiters)
}

// dispatch starts waiters, most urgent first, while they may start, and
// otherwise sets the timer for when the first one may. Every waiter needs
// the same (a slot and the rate), so when the first cannot start, none can.
// b.mu is held.
func (b *Budget) dispatch() {
	for len(b.waiters) > 0 && b.inUse < b.limit {
		now := b.now()
		if now.Before(b.paused) {
			b.wakeAt(b.paused, now)
			return
		}
		w := b.waiters[0]
		if now.Before(b.next) {
			// The rate holds the first; a list's next page it does not.
			if w = b.waiters.firstUnrated(); w == nil {
				b.wakeAt(b.next, now)
				return
			}
		}
		heap.Remove(&b.waiters, w.index)
		b.inUse++
		if b.interval > 0 && !w.unrated {
			b.next = maxTime(b.next, now).Add(b.interval * time.Duration(b.slowFactor(now)))
		}
		w.granted = true
		close(w.ready)
	}
}

// wakeAt makes sure dispatch runs again at at. b.mu is held.
func (b *Budget) wakeAt(at, now time.Time) {
	if !b.timerAt.IsZero() && !b.timerAt.After(at) {
		return // a timer as early is set; it runs dispatch, which sets the next
	}
	if b.stopTimer != nil {
		b.stopTimer()
	}
	b.timerGen++
	gen := b.timerGen
	b.timerAt = at
	b.stopTimer = b.afterFunc(at.Sub(now), func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if gen == b.timerGen {
			b.timerAt, b.stopTimer = time.Time{}, nil
		}
		b.dispatch()
	})
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// waiter is one request waiting for the budget.
type waiter struct {
	priority time.Time
	seq      uint64
	index    int           // in waitQueue
	ready    chan struct{} // closed when granted
	granted  bool          // under Budget.mu
	unrated  bool          // a list's next page: not held by the rate
}

// waitQueue is a heap of waiters, the most urgent first.
type waitQueue []*waiter

func (q waitQueue) Len() int { return len(q) }
func (q waitQueue) Less(i, j int) bool {
	if !q[i].priority.Equal(q[j].priority) {
		return q[i].priority.Before(q[j].priority)
	}
	return q[i].seq < q[j].seq
}
func (q waitQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *waitQueue) Push(x any) {
	w := x.(*waiter)
	w.index = len(*q)
	*q = append(*q, w)
}
func (q *waitQueue) Pop() any {
	old := *q
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return w
}

// firstUnrated returns the most urgent waiter that the rate does not
// hold, nil when none. The queue is short: a scan.
func (q waitQueue) firstUnrated() *waiter {
	var best *waiter
	for i, w := range q {
		if w.unrated && (best == nil || q.Less(i, best.index)) {
			best = w
		}
	}
	return best
}

type (
	priorityKey struct{}
	ticketKey   struct{}
	nextPageKey struct{}
)

// WithPriority returns a context whose requests wait for the budget with
// priority t: earlier is more urgent. A seat check passes the showtime of
// the earliest session it asks about. It wins over a Ticket's Priority.
func WithPriority(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, priorityKey{}, t)
}

// Ticket goes with the requests made with a context that carries it
// (WithTicket). It may give them their priority, and it adds up what the
// budget cost them: how long they waited to start, and how many started. A
// caller reads it after the call, to tell how far a seat check slipped
// behind its due time. The zero Ticket is ready; it is safe for concurrent
// use once the requests begin.
type Ticket struct {
	// Priority is the requests' priority unless the context carries one
	// from WithPriority; zero means none (see Budget). Set it before the
	// call.
	Priority time.Time

	waited   atomic.Int64
	requests atomic.Int64
}

// Waited returns the time the requests spent waiting for the budget, added
// up (requests made one after another, as a call makes them, add up to the
// call's wait).
func (t *Ticket) Waited() time.Duration { return time.Duration(t.waited.Load()) }

// Requests returns the number of HTTP requests that started, retries
// included.
func (t *Ticket) Requests() int { return int(t.requests.Load()) }

// WithTicket returns a context whose requests add their wait to t.
func WithTicket(ctx context.Context, t *Ticket) context.Context {
	return context.WithValue(ctx, ticketKey{}, t)
}

// acquireFor acquires b for one request made with ctx, at its priority
// (WithPriority's, else its Ticket's), and adds the wait to its Ticket.
func (b *Budget) acquireFor(ctx context.Context) (release func(), err error) {
	t, _ := ctx.Value(ticketKey{}).(*Ticket)
	priority, ok := ctx.Value(priorityKey{}).(time.Time)
	if !ok && t != nil {
		priority = t.Priority
	}
	_, unrated := ctx.Value(nextPageKey{}).(bool)
	release, waited, err := b.acquire(ctx, priority, unrated)
	if t != nil {
		t.waited.Add(int64(waited))
		if err == nil {
			t.requests.Add(1)
		}
	}
	return release, err
}

// nextPage marks a request as a list's next page: one request in flight
// per list is already the gentlest load there is, so the rate, which
// bounds how many requests may burst, does not space its pages out.
func nextPage(ctx context.Context) context.Context {
	return context.WithValue(ctx, nextPageKey{}, true)
}
