package vista

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/internal/testkit"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// fakeClock is a clock that moves only when told: a Budget on it never
// waits for real time, so the tests count what starts, not how long it
// took.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at   time.Time
	f    func()
	done bool
}

var clockStart = time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		stopped := !t.done
		t.done = true
		return stopped
	}
}

// Advance moves the clock on by d, running each timer due on the way at
// its own time, earliest first.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.done && !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		next.done = true
		c.now = maxTime(c.now, next.at)
		c.mu.Unlock()
		next.f()
	}
}

// MustFakeBudget returns a Budget on a fake clock, and the clock.
func MustFakeBudget(tb testing.TB, concurrency int, perSecond float64) (*Budget, *fakeClock) {
	tb.Helper()
	clock := &fakeClock{now: clockStart}
	b := NewBudget(concurrency, perSecond)
	b.now, b.afterFunc = clock.Now, clock.AfterFunc
	return b, clock
}

// mustAcquire takes b at once or fails the test.
func mustAcquire(tb testing.TB, b *Budget) func() {
	tb.Helper()
	release, err := b.Acquire(tb.Context(), time.Time{})
	if err != nil {
		tb.Fatalf("Acquire: %v", err)
	}
	return release
}

// TestBudgetPriorityOrder: with one slot, waiters start earliest priority
// first; one without a priority counts as an hour away; equal priorities
// keep their order of arrival.
func TestBudgetPriorityOrder(t *testing.T) {
	b, _ := MustFakeBudget(t, 1, 0)
	hold := mustAcquire(t, b)

	at := func(d time.Duration) time.Time { return clockStart.Add(d) }
	waiters := []struct {
		name string
		prio time.Time
	}{
		{"in 2h", at(2 * time.Hour)},
		{"reload page", time.Time{}},
		{"in 20m", at(20 * time.Minute)},
		{"5m ago", at(-5 * time.Minute)},
		{"in 20m, second", at(20 * time.Minute)},
		{"in 59m", at(59 * time.Minute)},
		{"in 61m", at(61 * time.Minute)},
	}
	want := []string{"5m ago", "in 20m", "in 20m, second", "in 59m", "reload page", "in 61m", "in 2h"}

	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	for i, w := range waiters {
		wg.Go(func() {
			release, err := b.Acquire(t.Context(), w.prio)
			if err != nil {
				t.Errorf("Acquire(%s): %v", w.name, err)
				return
			}
			mu.Lock()
			order = append(order, w.name)
			mu.Unlock()
			release()
		})
		// One at a time, so that the order of arrival is known.
		testkit.Eventually(t, 10*time.Second, fmt.Sprintf("%d wait", i+1), func() bool { return b.Waiting() == i+1 })
	}
	if got := b.InUse(); got != 1 {
		t.Errorf("InUse() = %d while held, want 1", got)
	}
	hold()
	wg.Wait()
	if !slices.Equal(order, want) {
		t.Errorf("served in the order %q, want %q", order, want)
	}
	if b.InUse() != 0 || b.Waiting() != 0 {
		t.Errorf("after all: InUse() = %d, Waiting() = %d; want 0, 0", b.InUse(), b.Waiting())
	}
}

// TestBudgetRate: with a rate of 10 a second, a crowd of waiters starts
// one every 100ms, never more, and a quiet spell saves up no burst.
func TestBudgetRate(t *testing.T) {
	b, clock := MustFakeBudget(t, 1000, 10)
	const n = 40
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := b.Acquire(t.Context(), time.Time{}); err != nil {
				t.Errorf("Acquire: %v", err)
			}
		})
	}
	testkit.Eventually(t, 10*time.Second, "all have asked", func() bool { return b.InUse()+b.Waiting() == n })
	if got := b.InUse(); got != 1 {
		t.Errorf("started at once: %d, want 1", got)
	}
	for step := 1; step <= 20; step++ {
		clock.Advance(50 * time.Millisecond)
		// After step*50ms, starts at 0, 100ms, ... up to now.
		if got, want := b.InUse(), step/2+1; got != want {
			t.Fatalf("after %v: %d started, want %d", time.Duration(step)*50*time.Millisecond, got, want)
		}
	}
	clock.Advance(time.Hour)
	wg.Wait()

	// After a quiet spell, a new crowd starts one at a time all the same.
	clock.Advance(time.Hour)
	for range 10 {
		wg.Go(func() { b.Acquire(t.Context(), time.Time{}) })
	}
	testkit.Eventually(t, 10*time.Second, "the new crowd has asked", func() bool { return b.InUse()+b.Waiting() == n+10 })
	if got := b.InUse() - n; got != 1 {
		t.Errorf("after an hour's quiet: %d started at once, want 1 (no burst)", got)
	}
	clock.Advance(time.Hour)
	wg.Wait()
}

// TestBudgetConcurrencyCap: a slot frees only on release.
func TestBudgetConcurrencyCap(t *testing.T) {
	b, _ := MustFakeBudget(t, 2, 0)
	r1, r2 := mustAcquire(t, b), mustAcquire(t, b)
	got := make(chan struct{})
	go func() {
		release, err := b.Acquire(t.Context(), time.Time{})
		if err == nil {
			release()
		}
		close(got)
	}()
	testkit.Eventually(t, 10*time.Second, "a third waits", func() bool { return b.Waiting() == 1 })
	r1()
	r1() // a second release frees nothing more
	<-got
	if b.InUse() != 1 {
		t.Errorf("InUse() = %d, want 1 (r2)", b.InUse())
	}
	r2()
	if b.InUse() != 0 {
		t.Errorf("InUse() = %d, want 0", b.InUse())
	}
}

// TestBudgetPause: a pause holds every new request until it ends, is
// capped at MaxPause, and never shrinks.
func TestBudgetPause(t *testing.T) {
	tests := []struct {
		name   string
		pauses []time.Duration // from the clock's start, in order
		want   time.Duration   // when a waiter starts
	}{
		{"2s", []time.Duration{2 * time.Second}, 2 * time.Second},
		{"capped", []time.Duration{time.Hour}, MaxPause},
		{"a shorter one does not shrink it", []time.Duration{3 * time.Second, time.Second}, 3 * time.Second},
		{"a longer one grows it", []time.Duration{time.Second, 3 * time.Second}, 3 * time.Second},
		{"in the past", []time.Duration{-time.Second}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, clock := MustFakeBudget(t, 4, 10)
			for _, p := range tt.pauses {
				b.Pause(clockStart.Add(p))
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				if _, err := b.Acquire(t.Context(), time.Time{}); err != nil {
					t.Errorf("Acquire: %v", err)
				}
			}()
			testkit.Eventually(t, 10*time.Second, "the request has asked", func() bool { return b.Waiting()+b.InUse() == 1 })
			if tt.want > 0 {
				clock.Advance(tt.want - time.Millisecond)
				if b.InUse() != 0 {
					t.Fatalf("started %v before the pause ends", time.Millisecond)
				}
				clock.Advance(time.Millisecond)
			}
			<-done
			if got := clock.Now().Sub(clockStart); got != tt.want {
				t.Errorf("started after %v, want %v", got, tt.want)
			}
		})
	}
}

// TestBudgetSlowDown: a 429 or 503 without Retry-After halves the rate for
// a minute; more of them halve it again, down to an eighth.
func TestBudgetSlowDown(t *testing.T) {
	b, clock := MustFakeBudget(t, 1000, 10)
	starts := func(window time.Duration) int {
		t.Helper()
		var wg sync.WaitGroup
		before := b.InUse()
		for range 50 {
			wg.Go(func() { b.Acquire(t.Context(), time.Time{}) })
		}
		testkit.Eventually(t, 10*time.Second, "all have asked", func() bool { return b.InUse()+b.Waiting() == before+50 })
		clock.Advance(window)
		n := b.InUse() - before
		clock.Advance(time.Hour) // let the rest through
		wg.Wait()
		return n
	}
	b.slowDown()
	if got := starts(time.Second); got != 6 { // at 0, 200ms, ... 1s
		t.Errorf("halved: %d starts in a second, want 6", got)
	}
	// The hour above has ended the slowing.
	if got := starts(time.Second); got != 11 {
		t.Errorf("a minute after: %d starts in a second, want 11", got)
	}
	for range 5 {
		b.slowDown()
	}
	if got := starts(time.Second); got != 2 { // one every 800ms at most
		t.Errorf("slowed often: %d starts in a second, want 2", got)
	}
}

// TestBudgetCancel: a context that ends stops the wait at once, and the
// waiter takes no slot.
func TestBudgetCancel(t *testing.T) {
	b, _ := MustFakeBudget(t, 1, 0)
	hold := mustAcquire(t, b)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		release, err := b.Acquire(ctx, time.Time{})
		if release != nil {
			t.Error("Acquire returned a release with an error")
		}
		errc <- err
	}()
	testkit.Eventually(t, 10*time.Second, "it waits", func() bool { return b.Waiting() == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire = %v, want context.Canceled", err)
	}
	if b.Waiting() != 0 {
		t.Errorf("Waiting() = %d after the cancel, want 0", b.Waiting())
	}
	hold()
	if b.InUse() != 0 {
		t.Errorf("InUse() = %d, want 0: the cancelled waiter took a slot", b.InUse())
	}
	if _, err := b.Acquire(ctx, time.Time{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire on an ended context = %v, want context.Canceled", err)
	}
	var nilBudget *Budget
	release, err := nilBudget.Acquire(t.Context(), time.Time{})
	if err != nil || nilBudget.InUse() != 0 || nilBudget.Waiting() != 0 {
		t.Fatalf("a nil Budget: Acquire = %v, InUse %d, Waiting %d", err, nilBudget.InUse(), nilBudget.Waiting())
	}
	release()
	nilBudget.Pause(time.Now().Add(time.Hour))
}

// TestTicketWaited: a ticket adds up the waits by the budget's clock, and
// gives its priority unless WithPriority does.
func TestTicketWaited(t *testing.T) {
	b, clock := MustFakeBudget(t, 1, 0)
	hold := mustAcquire(t, b)
	var ticket Ticket
	done := make(chan error)
	go func() {
		release, err := b.acquireFor(WithTicket(t.Context(), &ticket))
		if err == nil {
			release()
		}
		done <- err
	}()
	testkit.Eventually(t, 10*time.Second, "it waits", func() bool { return b.Waiting() == 1 })
	clock.Advance(3 * time.Second)
	hold()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ticket.Waited() != 3*time.Second || ticket.Requests() != 1 {
		t.Errorf("ticket: waited %v, %d requests; want 3s, 1", ticket.Waited(), ticket.Requests())
	}

	// Priorities: a Ticket's, and WithPriority's over it.
	hold = mustAcquire(t, b)
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	calls := []struct {
		name string
		ctx  context.Context
	}{
		{"ticket in 30m", WithTicket(t.Context(), &Ticket{Priority: clockStart.Add(30 * time.Minute)})},
		{"none", t.Context()},
		{"WithPriority in 10m over a ticket in 1m", WithPriority(WithTicket(t.Context(), &Ticket{Priority: clockStart.Add(time.Minute)}), clockStart.Add(10*time.Minute))},
	}
	for i, c := range calls {
		wg.Go(func() {
			release, err := b.acquireFor(c.ctx)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, c.name)
			mu.Unlock()
			release()
		})
		testkit.Eventually(t, 10*time.Second, c.name+" waits", func() bool { return b.Waiting() == i+1 })
	}
	hold()
	wg.Wait()
	if want := []string{calls[2].name, calls[0].name, calls[1].name}; !slices.Equal(order, want) {
		t.Errorf("order %q, want %q", order, want)
	}
}

// The client with a budget.

// TestClientBudgetConcurrency: the server never sees more requests at once
// than the budget allows, lists and seat checks together.
func TestClientBudgetConcurrency(t *testing.T) {
	const limit, callers = 3, 16
	var (
		inFlight, maxInFlight, total atomic.Int32
		gate                         = make(chan struct{})
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		total.Add(1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		<-gate
		io.WriteString(w, `{"value":[]}`)
	}))
	t.Cleanup(srv.Close)
	open := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(open) // before srv.Close, should the test stop early
	b := NewBudget(limit, 0)
	c := mustClient(t, Config{BaseURL: srv.URL, Budget: b})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				_, err = c.Cinemas(t.Context())
			} else {
				_, _, err = c.CheckSeats(t.Context(), []string{fmt.Sprint(i)})
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	testkit.Eventually(t, 10*time.Second, "the budget is full and the rest wait", func() bool {
		return inFlight.Load() == limit && b.Waiting() > 0
	})
	if got := b.InUse(); got != limit {
		t.Errorf("InUse() = %d, want %d", got, limit)
	}
	open()
	wg.Wait()
	if got := maxInFlight.Load(); got != limit {
		t.Errorf("the server saw %d requests at once, want %d", got, limit)
	}
	if total.Load() < callers || b.InUse() != 0 || b.Waiting() != 0 {
		t.Errorf("%d requests, InUse %d, Waiting %d; want at least %d, 0, 0", total.Load(), b.InUse(), b.Waiting(), callers)
	}
}

// TestClientBudgetPriority: seat checks queued behind a full budget go out
// earliest showtime first, and a reload page after those within the hour.
func TestClientBudgetPriority(t *testing.T) {
	var (
		mu    sync.Mutex
		order []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		what := "cinemas"
		if m := seatTermRE.FindStringSubmatch(r.URL.Query().Get("$filter")); m != nil {
			what = m[1]
		}
		mu.Lock()
		order = append(order, what)
		mu.Unlock()
		io.WriteString(w, `{"value":[]}`)
	}))
	t.Cleanup(srv.Close)
	b, _ := MustFakeBudget(t, 1, 0)
	c := mustClient(t, Config{BaseURL: srv.URL, Budget: b})
	// A first check proves the $select, so that later ones go out side by
	// side (see seatRequest).
	if _, _, err := c.CheckSeats(t.Context(), []string{"warm-up"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	order = nil
	mu.Unlock()

	hold := mustAcquire(t, b)
	calls := []struct {
		id string // "" for a reload of the cinemas
		in time.Duration
	}{
		{"in-90m", 90 * time.Minute},
		{"", 0},
		{"in-5m", 5 * time.Minute},
		{"in-40m", 40 * time.Minute},
		{"started-2m-ago", -2 * time.Minute},
	}
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(func() {
			var err error
			if call.id == "" {
				_, err = c.Cinemas(t.Context())
			} else {
				ctx := WithPriority(t.Context(), clockStart.Add(call.in))
				_, _, err = c.CheckSeats(ctx, []string{call.id})
			}
			if err != nil {
				t.Error(err)
			}
		})
		testkit.Eventually(t, 10*time.Second, fmt.Sprintf("%d wait", i+1), func() bool { return b.Waiting() == i+1 })
	}
	hold()
	wg.Wait()
	want := []string{"started-2m-ago", "in-5m", "in-40m", "cinemas", "in-90m"}
	if !slices.Equal(order, want) {
		t.Errorf("the server was asked in the order %q, want %q", order, want)
	}
}

// TestClientRetryAfterPausesBudget: a 429 with Retry-After: 2 on a seat
// check holds every request after it, of any endpoint, for two seconds;
// the seat check itself is not retried.
func TestClientRetryAfterPausesBudget(t *testing.T) {
	sim := vistasim.New(vistasim.Config{Seed: 3, Clock: func() time.Time { return clockStart }})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	b, clock := MustFakeBudget(t, 4, 0)
	c := mustClient(t, Config{BaseURL: srv.URL + "/WSVistaWebClient/", Zones: Zones{Default: time.UTC}, Budget: b, MaxDelay: time.Minute})
	sleeps := recordSleeps(c)

	sim.Fail(vistasim.Failure{Mode: vistasim.FailRateLimit, RetryAfter: 2 * time.Second, Endpoint: vistasim.EndpointSeats})
	var ticket Ticket
	_, _, err := c.CheckSeats(WithTicket(t.Context(), &ticket), []string{"1001-1"})
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("CheckSeats error = %v, want the 429", err)
	}
	if got := sim.Requests()[vistasim.EndpointSeats]; got != 1 || ticket.Requests() != 1 {
		t.Errorf("the seat check made %d requests (ticket: %d), want 1", got, ticket.Requests())
	}

	done := make(chan error, 1)
	go func() {
		_, err := c.Cinemas(t.Context())
		done <- err
	}()
	testkit.Eventually(t, 10*time.Second, "the cinemas wait", func() bool { return b.Waiting() == 1 })
	clock.Advance(2*time.Second - time.Millisecond)
	if got := sim.Requests()[vistasim.EndpointCinemas]; got != 0 || b.Waiting() != 1 {
		t.Fatalf("before the 2s passed: %d cinema requests, %d waiting; want 0, 1", got, b.Waiting())
	}
	clock.Advance(time.Millisecond)
	if err := <-done; err != nil {
		t.Fatalf("Cinemas after the pause: %v", err)
	}

	// A list page gets one too: it retries after the wait, and meanwhile
	// a seat check waits as well.
	sim.Fail(vistasim.Failure{Mode: vistasim.FailRateLimit, RetryAfter: 2 * time.Second, Endpoint: vistasim.EndpointFilms})
	films := make(chan error, 1)
	go func() {
		_, err := c.Films(t.Context())
		films <- err
	}()
	testkit.Eventually(t, 10*time.Second, "the films' retry waits", func() bool { return b.Waiting() == 1 })
	seats := make(chan error, 1)
	go func() {
		_, _, err := c.CheckSeats(t.Context(), []string{"1001-1"})
		seats <- err
	}()
	testkit.Eventually(t, 10*time.Second, "the seat check waits too", func() bool { return b.Waiting() == 2 })
	clock.Advance(2 * time.Second)
	if err := <-films; err != nil {
		t.Errorf("Films: %v", err)
	}
	if err := <-seats; err != nil {
		t.Errorf("CheckSeats: %v", err)
	}
	if s := sleeps(); !slices.Equal(s, []time.Duration{2 * time.Second}) {
		t.Errorf("the films' backoff = %v, want [2s]", s)
	}
	if got := sim.Requests()[vistasim.EndpointFilms]; got != 2 {
		t.Errorf("%d film requests, want 2", got)
	}
}

// TestSeatCheckNotRetried: a seat check that fails is tried exactly once,
// whatever the failure; a list is retried.
func TestSeatCheckNotRetried(t *testing.T) {
	tests := []struct {
		name string
		page func(http.ResponseWriter, *http.Request, string)
	}{
		{"503", status(503, "busy")},
		{"503 with Retry-After", status(503, "busy", "Retry-After", "1")},
		{"429", status(429, "slow down")},
		{"500", status(500, "boom")},
		{"408", status(408, "")},
	}
	for _, tt := range tests {
		for _, withBudget := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s budget %v", tt.name, withBudget), func(t *testing.T) {
				srv, n := pagedServer(t, tt.page)
				cfg := Config{BaseURL: srv.URL, MaxRetries: 3}
				if withBudget {
					// On the real clock: a Retry-After pauses it for
					// MaxDelay, 8ms in tests.
					cfg.Budget = NewBudget(4, 0)
				}
				c := mustClient(t, cfg)
				sleeps := recordSleeps(c)
				_, _, err := c.CheckSeats(t.Context(), []string{"A", "B"})
				var se *StatusError
				if !errors.As(err, &se) {
					t.Fatalf("CheckSeats error = %v, want a *StatusError", err)
				}
				if n.Load() != 1 || len(sleeps()) != 0 {
					t.Errorf("%d requests, sleeps %v; want 1 and none", n.Load(), sleeps())
				}
				if withBudget && (cfg.Budget.InUse() != 0 || cfg.Budget.Waiting() != 0) {
					t.Errorf("budget InUse %d, Waiting %d; want it all given back", cfg.Budget.InUse(), cfg.Budget.Waiting())
				}
				if _, err := c.Cinemas(t.Context()); err == nil || n.Load() != 5 {
					t.Errorf("Cinemas: %d requests in all, %v; want 4 more, an error", n.Load(), err)
				}
			})
		}
	}
}

// TestClientBudgetCancel: a request waiting for the budget stops when its
// context ends, and sends nothing.
func TestClientBudgetCancel(t *testing.T) {
	srv, n := pagedServer(t, body(`{"value":[]}`))
	b, _ := MustFakeBudget(t, 1, 0)
	c := mustClient(t, Config{BaseURL: srv.URL, Budget: b})
	hold := mustAcquire(t, b)
	defer hold()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.CheckSeats(ctx, []string{"A"})
		errc <- err
	}()
	testkit.Eventually(t, 10*time.Second, "the check waits", func() bool { return b.Waiting() == 1 })
	cancel()
	err := within(t, 5*time.Second, func() error { return <-errc })
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "vista Sessions: ") {
		t.Fatalf("CheckSeats error = %v, want context.Canceled from vista Sessions", err)
	}
	if n.Load() != 0 || b.Waiting() != 0 {
		t.Errorf("%d requests, %d waiting; want 0, 0", n.Load(), b.Waiting())
	}
}

// TestBudgetOrderMatchesSort: the queue agrees with a sort by (priority,
// arrival), for many waiters in a shuffled order.
func TestBudgetOrderMatchesSort(t *testing.T) {
	b, _ := MustFakeBudget(t, 1, 0)
	hold := mustAcquire(t, b)
	type w struct {
		prio time.Time
		seq  int
	}
	var ws []w
	for i := range 30 {
		ws = append(ws, w{clockStart.Add(time.Duration((i*7)%11) * time.Minute), i})
	}
	var (
		mu  sync.Mutex
		got []int
		wg  sync.WaitGroup
	)
	for i, x := range ws {
		wg.Go(func() {
			release, err := b.Acquire(t.Context(), x.prio)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got = append(got, x.seq)
			mu.Unlock()
			release()
		})
		testkit.Eventually(t, 10*time.Second, "it waits", func() bool { return b.Waiting() == i+1 })
	}
	hold()
	wg.Wait()
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].prio.Before(ws[j].prio) })
	var want []int
	for _, x := range ws {
		want = append(want, x.seq)
	}
	if !slices.Equal(got, want) {
		t.Errorf("served %v, want %v", got, want)
	}
}

func TestNewBudget(t *testing.T) {
	tests := []struct {
		concurrency  int
		perSecond    float64
		wantLimit    int
		wantInterval time.Duration
	}{
		{4, 10, 4, 100 * time.Millisecond},
		{0, 0.5, 1, 2 * time.Second},
		{-3, 0, 1, 0},
		{2, math.Inf(1), 2, 0},
		{2, math.NaN(), 2, 0},
		{2, 1e12, 2, 0},
		{2, 1e-300, 2, time.Hour},
	}
	for _, tt := range tests {
		b := NewBudget(tt.concurrency, tt.perSecond)
		if b.limit != tt.wantLimit || b.interval != tt.wantInterval {
			t.Errorf("NewBudget(%d, %v) = limit %d, interval %v; want %d, %v", tt.concurrency, tt.perSecond, b.limit, b.interval, tt.wantLimit, tt.wantInterval)
		}
	}
}
