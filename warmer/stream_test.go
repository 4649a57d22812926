package warmer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/internal/testkit"
	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
)

// A long list is written chunk by chunk while its later pages are still
// being fetched; what the list says last of an id counts; a list that
// fails halfway leaves what it wrote and removes nothing.

// paging hands a Fetcher's sessions over in pages of size, as
// *vista.Client does. edit, when set, changes the whole list first; page,
// when set, runs before page i is handed over and may fail the list.
type paging struct {
	Fetcher
	size int
	edit func([]vista.Session) []vista.Session
	page func(i int, pg []vista.Session) error
}

func (p *paging) SessionPages(ctx context.Context, zones map[string]*time.Location, each func([]vista.Session) error) error {
	list, err := p.Fetcher.Sessions(ctx, zones)
	if err != nil {
		return err
	}
	if p.edit != nil {
		list = p.edit(list)
	}
	for i := 0; len(list) > 0; i++ {
		n := min(p.size, len(list))
		pg := list[:n:n]
		list = list[n:]
		if p.page != nil {
			if err := p.page(i, pg); err != nil {
				return err
			}
		}
		if err := each(pg); err != nil {
			return err
		}
	}
	return nil
}

// chunked is a warmer of the rig that takes lists in chunks of 10 rows,
// fetched in pages of 10 from p.
func (r *rig) chunked(p *paging) *Warmer {
	p.Fetcher, p.size = r.client, 10
	w := r.warmer("a", func(c *Config) { c.Vista = p })
	w.chunk = 10
	return w
}

func TestLongListIsWrittenWhileFetched(t *testing.T) {
	r := newRig(t)
	var first []string
	p := &paging{}
	p.page = func(i int, pg []vista.Session) error {
		if i == 0 {
			for _, s := range pg {
				if !s.Cancelled() && s.Showtime.After(r.clock.Now()) { // cached, not refused or expired
					first = append(first, s.ID)
				}
			}
			if len(first) == 0 {
				return errors.New("the first page has no session to cache; the test wants one")
			}
		}
		if i != 3 {
			return nil
		}
		// The first page's sessions are in Redis before the fourth page
		// is handed over: the writer does not wait for the whole list.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			n, err := r.rdb.Exists(r.ctx, keys.Session(r.prefix, first[0]), keys.Session(r.prefix, first[len(first)-1])).Result()
			if err == nil && n == 2 {
				return nil
			}
		}
		return errors.New("the first page was not written while later pages were fetched")
	}
	w := r.chunked(p)
	r.step(w)
	if got, want := r.rdb.ZCard(r.ctx, keys.Index(r.prefix, keys.Sessions)).Val(), int64(len(r.sim.Sessions())); got == 0 || got > want {
		t.Fatalf("sessions indexed = %d, want the list's (%d, less the expired)", got, want)
	}
	if r.meta()[keys.Loaded(keys.Sessions)] == "" || !w.ready.Load() {
		t.Errorf("the build did not end in a warm cache: meta %v", r.meta())
	}
	if n := len(r.events()); n != 3 {
		t.Errorf("a build from nothing sent %d events, want the three full_reloads", n)
	}
}

func TestListNamingAnIDAgainAcrossChunks(t *testing.T) {
	r := newRig(t)
	p := &paging{}
	w := r.chunked(p)
	r.step(w)
	n := len(r.events())

	// The list ends by naming its first session again with other seats
	// and its second again as cancelled: both were handed to the writer
	// long before.
	var changed, cancelled string
	p.edit = func(list []vista.Session) []vista.Session {
		if len(list) < 40 {
			t.Fatalf("the list has %d sessions; the test wants several chunks", len(list))
		}
		a, b := list[0], list[1]
		changed, cancelled = a.ID, b.ID
		a.SeatsAvailable = 1
		if list[0].SeatsAvailable == 1 {
			a.SeatsAvailable = 2
		}
		b.State = keys.StateCancelled
		return append(list, a, b)
	}
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatal(err)
	}
	evs := r.eventsSince(n)
	if got := forID(evs, changed); len(got) != 1 || got[0].Event != keys.EventItem || got[0].SeatsAvailable == nil {
		t.Errorf("events for %s = %+v, want one item with the last row's seats", changed, got)
	} else if seats := r.hash(keys.Sessions, changed)["seats_available"]; seats != fmt.Sprint(*got[0].SeatsAvailable) {
		t.Errorf("%s seats_available = %q, want the last row's %d", changed, seats, *got[0].SeatsAvailable)
	}
	if got := forID(evs, cancelled); len(got) != 1 || got[0].Event != keys.EventRemoved || got[0].Reason != keys.ReasonCancelled {
		t.Errorf("events for %s = %+v, want one removed_item cancelled", cancelled, got)
	}
	if h := r.hash(keys.Sessions, cancelled); len(h) != 0 {
		t.Errorf("the cancelled session is still cached: %v", h)
	}
	if others := len(evs) - len(forID(evs, changed)) - len(forID(evs, cancelled)); others != 1 {
		t.Errorf("%d other events, want only the full_reload: %+v", others, evs)
	}
}

func TestListFailingHalfwayRemovesNothing(t *testing.T) {
	r := newRig(t)
	p := &paging{}
	w := r.chunked(p)

	// A build from nothing that fails on its fourth page: what came
	// before is cached, but the cache is not warm and no reload is
	// announced; the next try is a minute after the failure.
	failing := func(i int, _ []vista.Session) error {
		if i == 3 {
			return errors.New("vista went away")
		}
		return nil
	}
	p.page = failing
	if err := r.settle(w); err == nil {
		t.Fatal("a list that failed halfway reported no error")
	}
	if got := r.rdb.ZCard(r.ctx, keys.Index(r.prefix, keys.Sessions)).Val(); got == 0 || got > 30 {
		t.Errorf("sessions cached after three pages = %d, want up to 30", got)
	}
	if w.ready.Load() || r.meta()[keys.Loaded(keys.Sessions)] != "" {
		t.Errorf("a half list made the cache warm: meta %v", r.meta())
	}
	// A minute after the failure, or at the schedule if that comes first.
	failedAt := r.clock.Now()
	want := minTime(failedAt.Add(time.Minute), w.schedules[keys.Sessions].Next(failedAt))
	if got := w.st.kinds[keys.Sessions].next; !got.Equal(want) {
		t.Errorf("the next try is %v after the failure, want %v", got.Sub(failedAt), want.Sub(failedAt))
	}
	p.page = nil
	r.clock.Set(want)
	r.step(w)
	if !w.ready.Load() {
		t.Fatal("the next try did not warm the cache")
	}
	n := len(r.events())

	// A reload that fails halfway: a change in its first pages is
	// written, and nothing is removed.
	var changed string
	p.edit = func(list []vista.Session) []vista.Session {
		changed = list[0].ID
		list[0].SeatsAvailable++
		return list
	}
	p.page = failing
	before := r.rdb.ZCard(r.ctx, keys.Index(r.prefix, keys.Sessions)).Val()
	if err := r.reload(w, keys.Sessions); err == nil {
		t.Fatal("a list that failed halfway reported no error")
	}
	evs := r.eventsSince(n)
	if len(evs) != 1 || evs[0].ID != changed || evs[0].Event != keys.EventItem {
		t.Errorf("events = %+v, want one item for %s; hash %v", evs, changed, r.hash(keys.Sessions, changed))
	}
	if after := r.rdb.ZCard(r.ctx, keys.Index(r.prefix, keys.Sessions)).Val(); after != before {
		t.Errorf("sessions indexed went from %d to %d", before, after)
	}
}

func TestColdBuildNamingAnIDAgainAsCancelled(t *testing.T) {
	r := newRig(t)
	var cancelled string
	p := &paging{edit: func(list []vista.Session) []vista.Session {
		b := list[1]
		cancelled, b.State = b.ID, keys.StateCancelled
		return append(list, b)
	}}
	w := r.chunked(p)
	r.step(w)
	// The session was written with the first chunk, and the list's last
	// row cancels it: it leaves again, and that is no drop to hold back
	// in a cache that was empty.
	if !w.ready.Load() || r.meta()[keys.Loaded(keys.Sessions)] == "" {
		t.Fatalf("the build is not warm after one step: held %v, meta %v", w.st.kinds[keys.Sessions].held != nil, r.meta())
	}
	if h := r.hash(keys.Sessions, cancelled); len(h) != 0 {
		t.Errorf("the session the list cancelled is cached: %v", h)
	}
	if _, err := r.rdb.ZScore(r.ctx, keys.Index(r.prefix, keys.Sessions), cancelled).Result(); err == nil {
		t.Errorf("the index lists the session the list cancelled")
	}
}

func TestReloadEndsWithItsContext(t *testing.T) {
	r := newRig(t)
	p := &paging{}
	w := r.chunked(p)
	r.step(w)
	// The writer has taken every chunk in and waits for the next when
	// the context ends: Reload returns, and the next one runs.
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithCancel(r.ctx)
		p.page = func(i int, _ []vista.Session) error {
			if i == 2 {
				time.Sleep(20 * time.Millisecond)
				cancel()
				return ctx.Err()
			}
			return nil
		}
		done := make(chan error, 1)
		go func() { done <- w.Reload(ctx, keys.Sessions) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("try %d: Reload did not return after its context ended", i)
		}
		cancel()
	}
	p.page = nil
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatalf("the reload after: %v", err)
	}
}

// A fetch that a newer one replaces leaves nothing of its own behind: the
// newer judges its drop against the cache as it found it.
func TestNewerFetchStartsAfresh(t *testing.T) {
	r := newRig(t)
	p := &paging{}
	w := r.chunked(p)
	release := make(chan struct{})
	defer close(release)
	var fetches atomic.Int32
	var dropped string
	p.edit = func(list []vista.Session) []vista.Session {
		if fetches.Add(1) == 3 {
			dropped = list[0].ID
			return list[1:] // the third list lacks one session
		}
		return list
	}
	p.page = func(i int, _ []vista.Session) error {
		switch n := fetches.Load(); {
		case n == 1 && i == 0:
			return errors.New("vista is down") // the first build of the sessions fails at once
		case n == 2 && i == 6:
			<-release // the second hangs halfway
			return errors.New("released")
		}
		return nil
	}
	if err := r.settle(w); err == nil {
		t.Fatal("the first build of the sessions reported no error")
	}
	// The second list is fetched in the background; its first chunk is written.
	second := make(chan error, 1)
	go func() { second <- w.Reload(r.ctx, keys.Sessions) }()
	testkit.Eventually(t, 10*time.Second, "the second list's first chunk written", func() bool {
		n := 0
		r.locked(w, func() { n = len(w.st.cache[keys.Sessions]) })
		return n > 0
	})
	// A reload now calls the second off and replaces it, and finds one
	// session gone of all the cache holds: no drop to hold back.
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatal(err)
	}
	<-second // answered with the reload that replaced it
	r.locked(w, func() {
		if h := w.st.kinds[keys.Sessions].held; h != nil {
			t.Errorf("the reload held back a drop of %d of %d", len(h.ids), h.total)
		}
	})
	if hash := r.hash(keys.Sessions, dropped); len(hash) != 0 {
		t.Errorf("%s, gone from the list, is still cached", dropped)
	}
}
