package warmer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/internal/clocktest"
	"github.com/vista-warmer/vista-warmer/internal/redistest"
	"github.com/vista-warmer/vista-warmer/internal/testkit"
	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// No seat check waits for a session whose row is not yet in, nor for the
// rest of the list: while a cold load's sessions list still streams (its
// second page held back here), the sessions its first page brought are
// checked when they come due.
func TestChecksGoOutWhileTheListStreams(t *testing.T) {
	r, held := newHeldListRig(t)
	w := r.warmer("a")
	w.chunk = 40 // a page a chunk: written as it comes, as 5,000 rows of a big list are
	r.run(w)
	// The build lists its sessions in the index once its list is in
	// (writeIndexes): the first page shows as hashes.
	var written []string
	testkit.Eventually(t, 10*time.Second, "the first page of sessions written while the second is held", func() bool {
		written = sessionKeys(r)
		return held.holding.Load() && len(written) > 0
	})
	if n := r.rdb.ZCard(r.ctx, keys.Index(r.prefix, keys.Sessions)).Val(); n != 0 {
		t.Errorf("the index lists %d sessions of a build whose list is not in", n)
	}
	// The first session the first page brought comes due: the clock moves
	// to within the horizon of its showtime.
	var first time.Time
	for _, key := range written {
		at, err := time.Parse(time.RFC3339, r.rdb.HGet(r.ctx, key, "showtime").Val())
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	due := first.Add(-w.cfg.Policy.Horizon + time.Minute)
	if now := r.clock.Now(); due.After(now) {
		r.clock.Add(due.Sub(now))
	} else {
		r.clock.Add(w.cfg.Policy.Base)
	}
	testkit.Eventually(t, 10*time.Second, "a seat check while the list is held", func() bool { return held.checks.Load() > 0 })
	held.let()
	r.step(w)
	if n := r.rdb.ZCard(r.ctx, keys.Index(r.prefix, keys.Sessions)).Val(); n != int64(len(r.sim.Sessions())) {
		t.Errorf("%d sessions indexed after the list came whole, want %d", n, len(r.sim.Sessions()))
	}
}

// A build from nothing writes the chunks of its list that are in as one
// stream of batches, without a pause between them: here the first page
// is held until the loop is held too, so that three chunks wait for the
// loop when it takes the first, and the stream takes the two behind it.
// What the build wrote is what its list said, counted and indexed.
func TestABuildStreamsTheChunksThatAreIn(t *testing.T) {
	var holding atomic.Bool
	release := make(chan struct{})
	var once sync.Once
	let := func() { once.Do(func() { close(release) }) }
	t.Cleanup(let)
	front := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			q := req.URL.Query()
			first := q.Get("$skip") == "" || q.Get("$skip") == "0"
			check := strings.Contains(q.Get("$filter"), "ID eq") || strings.Contains(q.Get("$filter"), "Showtime")
			if strings.HasSuffix(req.URL.Path, "/Sessions") && first && !check && holding.CompareAndSwap(false, true) {
				<-release
			}
			h.ServeHTTP(w, req)
		})
	}
	r := newRigWith(t, rigOptions{front: front, sim: func(c *vistasim.Config) { c.Days = 14 }})
	logs := &logBuffer{}
	w := r.warmer("a", func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	w.chunk = 40 // a page a chunk, two batches of 25
	listed := len(r.sim.Sessions())
	if pages := (listed + 39) / 40; pages < 6 {
		t.Fatalf("the simulator lists %d sessions, %d pages: too few for a stream", listed, pages)
	}
	r.run(w)
	testkit.Eventually(t, 10*time.Second, "the first page of sessions held, cinemas and films in", func() bool {
		in := false
		r.locked(w, func() { in = w.st != nil && w.st.kinds[keys.Cinemas].loaded && w.st.kinds[keys.Films].loaded })
		return in && holding.Load()
	})
	r.locked(w, func() {
		let()
		testkit.Eventually(t, 10*time.Second, "three chunks waiting for the loop", func() bool { return len(w.fetched) == cap(w.fetched) })
	})
	r.step(w)

	var streamed int
	r.locked(w, func() { streamed = w.streamed })
	if streamed < 2 {
		t.Errorf("the build streamed %d chunks, want at least the 2 that waited behind the first", streamed)
	}
	if n, all := r.rdb.ZCard(r.ctx, keys.Index(r.prefix, keys.Sessions)).Val(), len(sessionKeys(r)); n != int64(listed) || all != listed {
		t.Errorf("%d sessions indexed, %d hashes, %d listed by Vista", n, all, listed)
	}
	indexesAgree(r, w)
	lines := logs.lines("msg=reloaded kind=sessions")
	if want := fmt.Sprintf("added=%d ", listed); len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Errorf("log: %q, want one line with %s", lines, want)
	}
}

// A chunk that names an id an earlier chunk handed over says so
// (fetched.again), and a build's stream sets such a chunk aside for the
// loop's next turn, where it is diffed once the earlier chunk is in the
// cache, rather than diff it while that chunk's writes may still run. So
// too a message of another list, or the list's end. A chunk of nothing
// to write is passed over; a due index step ends the stream, an answer
// waiting does not.
func TestAStreamTakesOnlyItsListsNextChunks(t *testing.T) {
	now := clocktest.Start
	l := newListing(keys.Sessions, now)
	var flags []bool
	l.emit = func(rows []row, again bool) error {
		flags = append(flags, again)
		return nil
	}
	l.chunk, l.waiting, l.repeated = 2, map[string]int{}, map[string]bool{}
	page := func(ids ...string) {
		for _, id := range ids {
			l.seen(id)
			l.take(id, session(id, now.Add(3*time.Hour), "10"))
		}
		if err := l.flush(); err != nil {
			t.Fatal(err)
		}
	}
	page("a", "b")
	page("c", "a")
	page("d", "e")
	if want := []bool{false, true, false}; !slices.Equal(flags, want) {
		t.Errorf("the chunks said again = %v, want %v", flags, want)
	}

	r := newRig(t)
	w := r.warmer("a")
	r.step(w)
	r.stop(w) // the test is the loop now
	func() {
		st, k := w.st, keys.Sessions
		run := &fetchRun{cancel: func() {}}
		st.kinds[k].intake, st.kinds[k].fetching = &intake{}, run // a build from nothing, under way
		defer func() { st.kinds[k].intake, st.kinds[k].fetching, w.aside = nil, nil, nil }()
		more := w.buildStream(r.ctx, k, run)
		rows := func(id string) []row { return []row{{id, session(id, now.Add(3*time.Hour), "10")}} }
		for _, f := range []fetched{
			{st: st, k: k, run: run, now: now, rows: rows("x1"), again: true},
			{st: st, k: keys.Films, run: run, now: now, rows: rows("x2")},
			{st: st, k: k, run: run, now: now, l: l},
		} {
			w.fetched <- f
			if _, ok := more(); ok || w.aside == nil || w.aside.rows == nil && w.aside.l == nil || w.aside.k != f.k || w.aside.again != f.again {
				t.Errorf("the stream took %+v, or did not set it aside (aside %+v)", f, w.aside)
			}
			w.aside = nil
		}
		w.fetched <- fetched{st: st, k: k, run: run, now: now, rows: rows("x3")}
		if pt, ok := more(); !ok || len(pt.changes) != 1 || pt.changes[0].id != "x3" || pt.changes[0].op != opAdd || w.aside != nil {
			t.Errorf("the stream gave %v, %v for the next chunk of the list (aside %+v), want the addition of x3", pt.changes, ok, w.aside)
		}

		expired := []row{{"x4", session("x4", now.Add(-time.Hour-w.cfg.Policy.Grace), "10")}}
		w.fetched <- fetched{st: st, k: k, run: run, now: now, rows: expired}
		w.fetched <- fetched{st: st, k: k, run: run, now: now, rows: rows("x5")}
		if pt, ok := more(); !ok || len(pt.changes) != 1 || pt.changes[0].id != "x5" {
			t.Errorf("the stream gave %v, %v past a chunk of nothing to write, want x5", pt.changes, ok)
		}

		// An answer waiting does not end the stream: the step would only
		// take the next chunk before it, in a new one.
		w.answers <- &ask{}
		w.fetched <- fetched{st: st, k: k, run: run, now: now, rows: rows("x7")}
		if pt, ok := more(); !ok || len(pt.changes) != 1 || pt.changes[0].id != "x7" {
			t.Errorf("the stream gave %v, %v with an answer waiting, want x7", pt.changes, ok)
		}
		<-w.answers

		w.fetched <- fetched{st: st, k: k, run: run, now: now, rows: rows("x6")}
		every := w.indexEvery
		w.indexEvery = len(st.kinds[k].unindexed) // the index step is due
		if _, ok := more(); ok || w.aside != nil || len(w.fetched) != 1 {
			t.Error("the stream went on, or took the chunk, with the index step due")
		}
		w.indexEvery = every
		<-w.fetched
	}()
}

// A write under way takes the parts more gives into the same run of
// batches, each expecting the seq the one before left, past a part of
// nothing (which would leave the goroutine that makes batches ready
// waiting for changes, and the loop for a batch); each part's additions
// are announced and written, and the cache has them all.
func TestApplyMoreWritesEveryPart(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a") // batches of 25
	r.step(w)
	now := r.clock.Now()
	adds := func(from, n int) []change {
		rows := make([]row, n)
		for i := range rows {
			id := fmt.Sprintf("more-%d", from+i)
			rows[i] = row{id, session(id, now.Add(3*time.Hour), "10")}
		}
		return rowChanges(w.specs[keys.Sessions], w.cfg.Policy, map[string]*record{}, rows, nil, now)
	}
	// Two parts of nothing in a row: whenever the first is fed, the
	// second leaves the goroutine waiting.
	parts := []part{{nil, now}, {nil, now}, {adds(2, 30), now}, {adds(32, 1), now}}
	var seq0, seq1 int64
	done := make(chan error, 1)
	r.locked(w, func() {
		seq0 = w.st.seq
		go func() {
			done <- w.applyMore(r.ctx, keys.Sessions, adds(0, 2), now, func() (part, bool) {
				if len(parts) == 0 {
					return part{}, false
				}
				p := parts[0]
				parts = parts[1:]
				return p, true
			})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the write did not end: waiting for a batch of a part of nothing")
		}
		seq1 = w.st.seq
		for i := range 33 {
			if w.st.cache[keys.Sessions][fmt.Sprintf("more-%d", i)] == nil {
				t.Errorf("more-%d is not in the cache", i)
			}
		}
	})
	for i := range 33 {
		if h := r.hash(keys.Sessions, fmt.Sprintf("more-%d", i)); h["seats_available"] != "10" {
			t.Errorf("more-%d in Redis: %v", i, h)
		}
	}
	if seq1 != seq0+33 {
		t.Errorf("seq went from %d to %d: want one for each of the 33 additions announced", seq0, seq1)
	}
	if got := r.rdb.HGet(r.ctx, keys.Meta(r.prefix), keys.MetaSeq).Val(); got != strconv.FormatInt(seq1, 10) {
		t.Errorf("P:meta's seq is %s, the writer's %d", got, seq1)
	}
}

// heldList holds back the second page of the sessions list until let,
// and counts the seat requests (by id or by window) made meanwhile.
type heldList struct {
	holding atomic.Bool
	checks  atomic.Int32
	release chan struct{}
	once    sync.Once
}

func (h *heldList) let() { h.once.Do(func() { close(h.release) }) }

// newHeldListRig is a rig whose Vista holds back the second page of the
// sessions list (heldList). The held page does not time out meanwhile,
// nor is it asked again.
func newHeldListRig(t *testing.T) (*rig, *heldList) {
	held := &heldList{release: make(chan struct{})}
	front := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			q := req.URL.Query()
			if strings.HasSuffix(req.URL.Path, "/Sessions") {
				switch {
				case strings.Contains(q.Get("$filter"), "ID eq"), strings.Contains(q.Get("$filter"), "Showtime"):
					if held.holding.Load() {
						held.checks.Add(1)
					}
				case q.Get("$skip") != "" && q.Get("$skip") != "0":
					if held.holding.CompareAndSwap(false, true) {
						<-held.release
					}
				}
			}
			h.ServeHTTP(w, req)
		})
	}
	r := newRigWith(t, rigOptions{front: front, client: func(c *vista.Config) { c.Timeout = time.Minute }})
	t.Cleanup(held.let)
	return r, held
}

// A build lists its sessions in its indexes a batch at a time (here 30),
// not as each page's rows are written: while the second page is held,
// the index lists the first page's 40 sessions, written as one batch.
// Once the list is in, every index (the sessions', each cinema's and
// film's) agrees with the cache.
func TestBuildListsItsSessionsInBatches(t *testing.T) {
	r, held, w := firstPageListed(t)
	index := keys.Index(r.prefix, keys.Sessions)
	if n := r.rdb.ZCard(r.ctx, index).Val(); n != 40 {
		t.Errorf("the index lists %d sessions while the second page is held, want the first page's 40", n)
	}
	held.let()
	r.step(w)
	if n := r.rdb.ZCard(r.ctx, index).Val(); n != int64(len(r.sim.Sessions())) {
		t.Errorf("%d sessions indexed after the list came whole, want %d", n, len(r.sim.Sessions()))
	}
	r.locked(w, func() {
		if n := len(w.st.kinds[keys.Sessions].unindexed); n != 0 {
			t.Errorf("%d sessions left unindexed after the list", n)
		}
	})
	indexesAgree(r, w)
}

// A build's index writes go two at a time (here one key's entries a
// write, some forty writes): every index agrees with the cache once the
// list is in.
func TestIndexWritesInFlightListEverything(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a")
	w.indexWrite = 1 // every command a write of its own
	r.step(w)
	if n, all := r.rdb.ZCard(r.ctx, keys.Index(r.prefix, keys.Sessions)).Val(), len(r.sim.Sessions()); n != int64(all) {
		t.Errorf("%d sessions indexed, want %d", n, all)
	}
	r.locked(w, func() {
		if n := len(w.st.kinds[keys.Sessions].unindexed); n != 0 {
			t.Errorf("%d sessions left unindexed", n)
		}
	})
	indexesAgree(r, w)
}

// A build gathers a large step of its index entries in two halves at
// once (listUnindexed; here every step of more than one entity, which in
// this small Vista is the one step at the list's end): once the list is
// in, every index agrees with the cache, and each sorted set's additions
// go in score order.
func TestIndexStepsGatheredInHalvesListEverything(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a")
	w.chunk, w.indexEvery, w.indexHalves = 40, 50, 2
	r.step(w)
	if n, all := r.rdb.ZCard(r.ctx, keys.Index(r.prefix, keys.Sessions)).Val(), len(r.sim.Sessions()); n != int64(all) {
		t.Errorf("%d sessions indexed, want %d", n, all)
	}
	indexesAgree(r, w)

	r.locked(w, func() {
		sp, cache := w.specs[keys.Sessions], w.st.cache[keys.Sessions]
		// In id order (cinema first), the first cinema's sessions are
		// all in the first half and the last's in the second: the merge
		// takes keys that only one half has, and both halves' of the
		// rest. TestMergeIndexBatches covers its cases one by one.
		ids := slices.Sorted(maps.Keys(cache))
		halves := w.listUnindexed(sp, cache, ids)
		entries := 0
		for _, k := range halves.keys {
			entries += len(k.adds)
			if !k.set && !slices.IsSortedFunc(k.adds, func(a, b indexItem) int { return cmp.Compare(a.score, b.score) }) {
				t.Errorf("%s: the halves' additions are not in score order", k.name)
			}
		}
		// Each session is in the sessions' index and in its cinema's and
		// its film's.
		if want := len(ids) * (1 + len(sp.owners)); entries != want {
			t.Errorf("%d index entries gathered for %d sessions, want %d", entries, len(ids), want)
		}
	})
}

// TestMergeIndexBatches: two halves of an index step merge into what one
// batch of both would write: a key only one half has, from either half;
// a sorted set's additions in score order, ties included; a set's in the
// order they came; removals kept.
func TestMergeIndexBatches(t *testing.T) {
	ref := func(owner string) indexRef { return indexRef{keys.Sessions, 1, owner} }
	batch := func(ks ...*indexKey) *indexBatch {
		ix := &indexBatch{}
		for _, k := range ks {
			ix.key(k.ref, k.set, func() string { return k.name })
			got := ix.known[k.ref]
			got.adds, got.rems = k.adds, k.rems
		}
		return ix
	}
	items := func(pairs ...any) []indexItem {
		var out []indexItem
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, indexItem{int64(pairs[i].(int)), pairs[i+1].(string)})
		}
		return out
	}
	both := func() (*indexBatch, *indexBatch) {
		first := batch(
			&indexKey{ref: ref("a"), name: "A", adds: items(1, "a1", 5, "a5", 9, "a9"), rems: []any{"x"}},
			&indexKey{ref: ref("s"), name: "S", set: true, adds: items(0, "s2", 0, "s1")},
		)
		second := batch(
			&indexKey{ref: ref("a"), name: "A", adds: items(0, "b0", 5, "b5", 10, "b10"), rems: []any{"y"}},
			&indexKey{ref: ref("b"), name: "B", adds: items(3, "c3")},
			&indexKey{ref: ref("t"), name: "T", set: true, adds: items(0, "t1")},
			&indexKey{ref: ref("s"), name: "S", set: true, adds: items(0, "s3")},
		)
		return first, second
	}
	first, second := both()
	first.merge(second)
	want := map[string]struct {
		adds []indexItem
		rems []any
	}{
		"A": {items(0, "b0", 1, "a1", 5, "a5", 5, "b5", 9, "a9", 10, "b10"), []any{"x", "y"}},
		"S": {items(0, "s2", 0, "s1", 0, "s3"), nil},
		"B": {items(3, "c3"), nil},
		"T": {items(0, "t1"), nil},
	}
	var names []string
	for _, k := range first.keys {
		names = append(names, k.name)
		w, ok := want[k.name]
		if !ok {
			t.Errorf("merged key %s, not asked for", k.name)
			continue
		}
		if !slices.Equal(k.adds, w.adds) || !slices.Equal(k.rems, w.rems) {
			t.Errorf("%s: adds %v rems %v, want %v and %v", k.name, k.adds, k.rems, w.adds, w.rems)
		}
		if first.known[k.ref] != k {
			t.Errorf("%s: not known by its ref after the merge", k.name)
		}
	}
	if !slices.Equal(names, []string{"A", "S", "B", "T"}) {
		t.Errorf("keys in the order %v, want the first half's, then those only the second has", names)
	}

	// A first half with nothing (every entity of it gone from the cache).
	_, second = both()
	empty := &indexBatch{}
	empty.merge(second)
	if len(empty.keys) != len(second.keys) || empty.known[ref("b")] == nil {
		t.Errorf("an empty first half took %d keys of %d", len(empty.keys), len(second.keys))
	}
}

// firstPageUnlisted runs a build whose sessions list's second page is
// held, writing 40 rows at a time and listing none of them before the
// list is in, one index command a write, until the first page's hashes
// are written.
func firstPageUnlisted(t *testing.T) (*rig, *Warmer) {
	r, held := newHeldListRig(t)
	w := r.warmer("a")
	w.chunk, w.indexEvery, w.indexWrite = 40, 1000, 1
	r.run(w)
	testkit.Eventually(t, 10*time.Second, "the first page of sessions written while the second is held", func() bool {
		return held.holding.Load() && len(sessionKeys(r)) > 0
	})
	return r, w
}

// A build's index writes go whole when the warmer is asked to stop
// meanwhile, as every write does: an index listed halfway is work for
// the next writer's SCAN.
func TestIndexWritesGoWholeWhenAskedToStop(t *testing.T) {
	r, w := firstPageUnlisted(t)
	ended, cancel := context.WithCancel(r.ctx)
	cancel()
	r.locked(w, func() {
		unindexed := len(w.st.kinds[keys.Sessions].unindexed)
		if unindexed == 0 {
			t.Fatal("nothing unindexed while the list is held")
		}
		if err := w.writeIndexes(ended, keys.Sessions); err != nil {
			t.Errorf("writeIndexes with its context ended: %v", err)
		}
		if n := r.rdb.ZCard(r.ctx, keys.Index(r.prefix, keys.Sessions)).Val(); n != int64(unindexed) {
			t.Errorf("the index lists %d sessions, want the %d written", n, unindexed)
		}
	})
}

// A build's index writes that the fence stops (another writer took the
// lease) return the fence's error, list nothing, and leave the build's
// entities to be listed, whichever of the writes in flight failed first.
func TestIndexWritesStoppedByTheFence(t *testing.T) {
	r, w := firstPageUnlisted(t)
	r.locked(w, func() {
		unindexed := len(w.st.kinds[keys.Sessions].unindexed)
		r.rdb.Set(r.ctx, keys.Lease(r.prefix), "b 1", time.Minute)
		if err := w.writeIndexes(r.ctx, keys.Sessions); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("writeIndexes with another's lease = %v, want ErrLeaseLost", err)
		}
		if n := r.rdb.Exists(r.ctx, keys.Index(r.prefix, keys.Sessions)).Val(); n != 0 {
			t.Errorf("the sessions index was written under another's lease")
		}
		if n := len(w.st.kinds[keys.Sessions].unindexed); n != unindexed || n == 0 {
			t.Errorf("%d sessions left to list, want the %d written", n, unindexed)
		}
	})
}

// One of a build's index writes in flight that Redis refuses (here a
// cinema's index key holds a string) fails writeIndexes while the others
// go through: the build's entities all stay to be listed, and the next
// writeIndexes, once Redis takes the write, lists every one of them.
func TestIndexWritesOneRefusedOthersThrough(t *testing.T) {
	r, w := firstPageUnlisted(t)
	r.locked(w, func() {
		unindexed := len(w.st.kinds[keys.Sessions].unindexed)
		if unindexed == 0 {
			t.Fatal("nothing unindexed while the list is held")
		}
		cinema := w.st.cache[keys.Sessions][w.st.kinds[keys.Sessions].unindexed[0]].vals.get(sCinemaID)
		bad := keys.CinemaSessions(r.prefix, cinema)
		r.rdb.Set(r.ctx, bad, "not an index", 0)
		err := w.writeIndexes(r.ctx, keys.Sessions)
		if err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
			t.Errorf("writeIndexes with %s a string = %v, want Redis's WRONGTYPE", bad, err)
		}
		if n := len(w.st.kinds[keys.Sessions].unindexed); n != unindexed {
			t.Errorf("%d sessions left to list after the failure, want all %d", n, unindexed)
		}
		if n := r.rdb.ZCard(r.ctx, keys.Index(r.prefix, keys.Sessions)).Val(); n == 0 {
			t.Errorf("no write went through beside the refused one")
		}
		r.rdb.Del(r.ctx, bad)
		if err := w.writeIndexes(r.ctx, keys.Sessions); err != nil {
			t.Fatalf("writeIndexes again: %v", err)
		}
		if n := r.rdb.ZCard(r.ctx, keys.Index(r.prefix, keys.Sessions)).Val(); n != int64(unindexed) {
			t.Errorf("the index lists %d sessions, want the %d written", n, unindexed)
		}
		if n := r.rdb.ZCard(r.ctx, bad).Val(); n == 0 {
			t.Errorf("%s lists nothing after the second writeIndexes", bad)
		}
	})
}

// A build that stops halfway (here its process, while the list's second
// page is held) leaves hashes no index lists yet. The next writer finds
// them: a session Vista dropped meanwhile goes, the others are listed;
// no hash is left that no index lists.
func TestATakeoverFindsWhatAHalfBuildLeftUnlisted(t *testing.T) {
	r, held := newHeldListRig(t)
	a := r.warmer("a")
	a.chunk = 40
	r.run(a)
	var written []string
	testkit.Eventually(t, 10*time.Second, "the first page of sessions written while the second is held", func() bool {
		written = sessionKeys(r)
		return held.holding.Load() && len(written) > 0
	})
	r.stop(a) // as a process that ends: nothing more of its build is written
	gone := strings.TrimPrefix(written[0], keys.Entity(r.prefix, keys.Sessions, ""))
	r.sim.Remove(gone)
	held.let()

	b := r.warmer("b")
	r.step(b)
	if h := r.hash(keys.Sessions, gone); len(h) != 0 {
		t.Errorf("the session Vista dropped while no build ran is still cached: %v", h)
	}
	index := keys.Index(r.prefix, keys.Sessions)
	if n, all := r.rdb.ZCard(r.ctx, index).Val(), len(sessionKeys(r)); n != int64(all) || all != len(r.sim.Sessions()) {
		t.Errorf("%d sessions indexed, %d hashes, %d sessions listed by Vista", n, all, len(r.sim.Sessions()))
	}
	indexesAgree(r, b)
}

// firstPageListed runs a build whose sessions list's second page is held,
// listing its sessions 30 at a time and writing 40 rows at a time, until
// its index lists the first page's.
func firstPageListed(t *testing.T) (*rig, *heldList, *Warmer) {
	r, held := newHeldListRig(t)
	w := r.warmer("a")
	w.chunk, w.indexEvery = 40, 30
	r.run(w)
	testkit.Eventually(t, 10*time.Second, "the first page listed while the second is held", func() bool {
		return held.holding.Load() && r.rdb.ZCard(r.ctx, keys.Index(r.prefix, keys.Sessions)).Val() > 0
	})
	return r, held, w
}

// indexesAgree fails the test for every index of w's cache that lacks
// an entry the cache holds, or has one it does not.
func indexesAgree(r *rig, w *Warmer) {
	r.t.Helper()
	r.locked(w, func() {
		for _, k := range keys.Kinds {
			fixes, err := w.indexFixes(r.ctx, w.indexWants(k))
			if err != nil {
				r.t.Fatal(err)
			}
			for _, f := range fixes {
				r.t.Errorf("%s: %s lacks %d and has %d too many", k, f.want.key, len(f.add), len(f.remove))
			}
		}
	})
}

// sessionKeys lists the session hashes under r's prefix.
func sessionKeys(r *rig) []string {
	var ks []string
	iter := r.rdb.Scan(r.ctx, 0, keys.Entity(r.prefix, keys.Sessions, "*"), 1000).Iterator()
	for iter.Next(r.ctx) {
		ks = append(ks, iter.Val())
	}
	return ks
}

// Redis evicts an index and a hash while a build's list still streams:
// the eviction sweep writes the hash again and mends the index, the
// build's unlisted entities aside, and once the list is in every index
// agrees with the cache.
func TestAnIndexEvictedDuringABuildIsMended(t *testing.T) {
	r, held, w := firstPageListed(t)
	index := keys.Index(r.prefix, keys.Sessions)
	first := r.rdb.ZRange(r.ctx, index, 0, 0).Val()[0]
	r.rdb.Del(r.ctx, index, keys.Entity(r.prefix, keys.Sessions, first))
	r.locked(w, func() {
		w.evict.dirty = true
		if err := w.mendEvicted(r.ctx); err != nil {
			t.Fatal(err)
		}
	})
	if h := r.hash(keys.Sessions, first); h["id"] != first {
		t.Errorf("the evicted session was not written again: %v", h)
	}
	if n := r.rdb.ZCard(r.ctx, index).Val(); n != 40 {
		t.Errorf("the evicted index lists %d sessions after the sweep, want the first page's 40", n)
	}
	held.let()
	r.step(w)
	indexesAgree(r, w)
}

// A writer whose ACL lacks SCAN (a line from before it was on the
// warmer's) takes over a build all the same, without finding what the
// build left unlisted, and the log says once what to grant; with SCAN it
// finds the hash no index lists, and only that one.
func TestReadUnlistedWithoutScan(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Config: []string{
		"user with on >pw ~* &* +@all",
		"user without on >pw ~* &* +@all -scan",
	}})
	ctx := context.Background()
	for _, user := range []string{"with", "without"} {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: user, Password: "pw"})
		defer rdb.Close()
		logs := &logBuffer{}
		client, err := vista.New(vista.Config{BaseURL: "http://127.0.0.1:1/", Zones: vista.Zones{Default: time.UTC}})
		if err != nil {
			t.Fatal(err)
		}
		w, err := New(Config{Redis: rdb, Vista: client, Prefix: user, InstanceID: "a", Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		rdb.HSet(ctx, keys.Entity(user, keys.Cinemas, "1001"), "id", "1001", "name", "Odeon")
		rdb.HSet(ctx, keys.Entity(user, keys.Cinemas, "1002"), "id", "1002", "name", "Rex")
		cache := map[keys.Kind]map[string]*record{keys.Cinemas: {"1002": {}}} // listed by the index
		for range 2 {
			unlisted, _, err := w.readUnlisted(ctx, cache, []keys.Kind{keys.Cinemas})
			found := unlisted[keys.Cinemas]
			if err != nil {
				t.Fatalf("%s SCAN: %v", user, err)
			}
			want := []string{"1001"}
			if user == "without" {
				want = nil
			}
			if !slices.Equal(found, want) {
				t.Errorf("%s SCAN: found %v, want %v", user, found, want)
			}
			delete(cache[keys.Cinemas], "1001")
		}
		if n, want := len(logs.lines("+scan")), map[string]int{"with": 0, "without": 1}[user]; n != want {
			t.Errorf("%s SCAN: %d log lines name +scan, want %d", user, n, want)
		}
	}
}

// vista_warmer_changes_total counts every change a write takes in, by
// kind and outcome, however many a batch carries: each session of a cold
// load once as added (several batches here), then the one Vista dropped
// as removed.
func TestChangesCountedByOutcome(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a", func(c *Config) { c.BatchSize = 7 })
	count := func(out string) int {
		return int(testutil.ToFloat64(w.m.changes.WithLabelValues(string(keys.Sessions), out)))
	}
	r.step(w)
	sessions := r.sim.Sessions()
	if n := count(outAdded); n != len(sessions) {
		t.Errorf("%d sessions counted added by a cold load of %d", n, len(sessions))
	}
	r.sim.Remove(sessions[0].ID)
	if err := r.reload(w, keys.Sessions); err != nil {
		t.Fatal(err)
	}
	if n, m := count(outRemoved), count(outAdded); n != 1 || m != len(sessions) {
		t.Errorf("after a reload that drops one session: %d counted removed, %d added; want 1 and %d", n, m, len(sessions))
	}
}
