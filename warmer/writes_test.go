package warmer

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// recorder keeps every command sent, including those inside pipelines
// and transactions; add it with rdb.AddHook(seeCommands(rec.see)).
type recorder struct {
	mu   sync.Mutex
	on   bool
	cmds [][]any
}

func (r *recorder) see(cmds []redis.Cmder) {
	for _, c := range cmds {
		r.keep(c)
	}
}

// keep records a command; a fenced write's script is recorded as the
// commands it carries.
func (r *recorder) keep(cmd redis.Cmder) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.on {
		return
	}
	args := slices.Clone(cmd.Args())
	for i, a := range args { // values the writer passes by pointer, as go-redis writes them
		switch p := a.(type) {
		case *string:
			args[i] = *p
		case *int64:
			args[i] = *p
		}
	}
	if inner, ok := fencedCommands(args); ok {
		r.cmds = append(r.cmds, inner...)
		return
	}
	r.cmds = append(r.cmds, args)
}

// fencedCommands reads the commands out of a call of fenceScript:
// EVALSHA sha 2 lease meta holder epoch seq replid, then each command as
// its number of arguments and the arguments.
func fencedCommands(args []any) ([][]any, bool) {
	name := strings.ToLower(fmt.Sprint(args[0]))
	if (name != "evalsha" && name != "eval") || len(args) < 9 || fmt.Sprint(args[2]) != "2" ||
		!strings.HasSuffix(fmt.Sprint(args[3]), ":lease") {
		return nil, false
	}
	var cmds [][]any
	for i := 9; i < len(args); {
		n, _ := strconv.Atoi(fmt.Sprint(args[i]))
		cmds = append(cmds, args[i+1:i+1+n])
		i += 1 + n
	}
	return cmds, true
}

func (r *recorder) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on, r.cmds = true, nil
}

func TestUnchangedReloadWritesNoData(t *testing.T) {
	r := newRig(t)
	rec := &recorder{}
	r.rdb.AddHook(seeCommands(rec.see))
	w := r.warmer("a")
	r.step(w)

	rec.start()
	for _, k := range keys.Kinds {
		if err := r.reload(w, k); err != nil {
			t.Fatal(err)
		}
	}
	allowed := map[string]bool{fUpdatedAt: true, fNextCheckAt: true}
	publishes, confirmed := 0, 0
	for _, args := range rec.cmds {
		name := strings.ToLower(args[0].(string))
		switch name {
		case "hset":
			key := args[1].(string)
			if key == keys.Meta(r.prefix) {
				continue
			}
			for i := 2; i < len(args); i += 2 {
				if f := args[i].(string); !allowed[f] {
					t.Errorf("an unchanged reload wrote %s %s", key, f)
				}
			}
		case hashWriteCmd:
			// key, expireat, nset, ndel, nwhole, and the arguments.
			key := args[1].(string)
			nset, _ := strconv.Atoi(fmt.Sprint(args[3]))
			ndel, _ := strconv.Atoi(fmt.Sprint(args[4]))
			nwhole, _ := strconv.Atoi(fmt.Sprint(args[5]))
			if ndel != 0 || nwhole != 0 {
				t.Errorf("an unchanged reload deleted fields of %s or sent it whole: %v", key, args)
			}
			for i := 6; i < 6+nset; i += 2 {
				if f := args[i].(string); !allowed[f] {
					t.Errorf("an unchanged reload wrote %s %s", key, f)
				}
			}
			confirmed++
		case "del", "zadd", "sadd", "zrem", "srem", "hdel", hashNewCmd, hashFreshCmd:
			t.Errorf("an unchanged reload sent %v", args[:min(4, len(args))])
		case "publish":
			publishes++
		}
	}
	if want := len(r.sim.CinemaIDs()) + len(r.sim.FilmIDs()); confirmed < want {
		t.Errorf("%d confirmations, want at least one per cinema and film (%d)", confirmed, want)
	}
	if publishes != 3 {
		t.Errorf("%d PUBLISH, want 3 (the full_reload events)", publishes)
	}
	if len(rec.cmds) == 0 {
		t.Fatal("the hook saw no command")
	}
}

// seeCommands is a go-redis hook that shows each round trip's commands
// (a command alone, or all of a pipeline's) before they go.
type seeCommands func(cmds []redis.Cmder)

func (f seeCommands) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f seeCommands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		f([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}
func (f seeCommands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		f(cmds)
		return next(ctx, cmds)
	}
}

// roundTrips counts the round trips a client makes and the commands it
// sends by name; add it with rdb.AddHook(seeCommands(h.see)).
type roundTrips struct {
	mu     sync.Mutex
	trips  int
	names  map[string]int
	firsts []string // each round trip's first command
}

func (h *roundTrips) see(cmds []redis.Cmder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.trips++
	h.firsts = append(h.firsts, strings.ToLower(cmds[0].Name()))
	if h.names == nil {
		h.names = map[string]int{}
	}
	for _, c := range cmds {
		h.names[strings.ToLower(c.Name())]++
	}
}

func (h *roundTrips) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.trips
}

// TestSeatChangeIsOneRoundTrip: a seat check's change reaches Redis, with
// its event and the fence, in one round trip.
func TestSeatChangeIsOneRoundTrip(t *testing.T) {
	r := newRig(t)
	w := r.warmer("a")
	s := r.nearSession(w)
	h := &roundTrips{}
	r.rdb.AddHook(seeCommands(h.see))
	n := len(r.events())
	r.sim.SetSeats(s.ID, 4)
	before := h.count()
	// Only s is due, so the step sends one request and writes one batch.
	cache := w.st.cache[keys.Sessions]
	for id, rec := range cache {
		w.st.checker.reschedule(id, rec, r.clock.Now().Add(time.Hour))
	}
	w.st.checker.reschedule(s.ID, cache[s.ID], r.clock.Now())
	w.writeAnswers(r.ctx, nil) // nothing: no round trip
	asks := w.st.checker.due(w.st, r.clock.Now())
	for _, a := range asks {
		w.send(r.ctx, a)
	}
	if err := w.writeAnswers(r.ctx, asks); err != nil {
		t.Fatal(err)
	}
	if got := h.count() - before; got != 1 {
		t.Errorf("writing a seat change took %d round trips to Redis, want 1", got)
	}
	if evs := forID(r.eventsSince(n), s.ID); len(evs) != 1 || *evs[0].SeatsAvailable != 4 {
		t.Errorf("events for %s: %+v, want one item with 4 seats", s.ID, evs)
	}
}

// An update of a hash Redis lost writes it whole from the fields packed
// into one argument (packField), whatever bytes they hold: colons and
// digits where the lengths go, empty values, newlines, bytes that are
// not UTF-8, a value longer than nine bytes. A hash that is there takes
// only the fields set, and a write without the rest (a confirmation)
// creates nothing.
func TestLostHashWrittenWholeFromItsPackedFields(t *testing.T) {
	rdb, prefix := MustRedis(t)
	s := bulkStore(t, rdb, prefix, nil)
	ctx := context.Background()
	rest := []string{
		"id", "1001-7",
		"screen_name", "12:Screen 1:2",
		"attributes", "",
		"status", "3D\r\n:1",
		"raw", "\xff\xfe" + strings.Repeat("x", 300),
		"10:", ":",
	}
	var packed []byte
	for _, f := range rest {
		packed = packField(packed, f)
	}
	lost, there, none := keys.Entity(prefix, keys.Sessions, "7"), keys.Entity(prefix, keys.Sessions, "8"), keys.Entity(prefix, keys.Sessions, "9")
	rdb.HSet(ctx, there, "id", "1001-8", "seats_available", "3")
	var probes []probe
	wr := s.prepare(ctx, nil, func(pipe redis.Pipeliner) {
		set := []any{"seats_available", "41"}
		probes = append(probes,
			hashWrite(ctx, pipe, lost, "4102444800", set, nil, string(packed)),
			hashWrite(ctx, pipe, there, "4102444800", set, nil, string(packed)),
			hashWrite(ctx, pipe, none, "", set, nil, ""))
	})
	if _, err := s.run(ctx, wr); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{hashRewritten, hashWritten, hashVanished} {
		if got := probes[i].outcome(); got != want {
			t.Errorf("write %d answered %d, want %d", i, got, want)
		}
	}
	want := map[string]string{"seats_available": "41"}
	for i := 0; i < len(rest); i += 2 {
		want[rest[i]] = rest[i+1]
	}
	if got := rdb.HGetAll(ctx, lost).Val(); !maps.Equal(got, want) {
		t.Errorf("the lost hash written whole: %q, want %q", got, want)
	}
	if got := rdb.HGetAll(ctx, there).Val(); !maps.Equal(got, map[string]string{"id": "1001-8", "seats_available": "41"}) {
		t.Errorf("the hash that was there: %q", got)
	}
	if rdb.Exists(ctx, none).Val() != 0 {
		t.Error("a write without the rest of the hash created it")
	}
}
