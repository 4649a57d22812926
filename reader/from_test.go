package reader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/internal/redistest"
	"github.com/vista-warmer/vista-warmer/keys"
)

// fixedAt is the fixed instant the hand-written events and hashes of these
// tests carry; nothing here reads the clock for them.
var fixedAt = time.Date(2031, 3, 14, 18, 30, 0, 0, time.UTC)

// es is an event by its epoch and seq, as a test wants it.
type es struct {
	epoch  string
	seq    int64
	resync bool
}

func (e es) String() string {
	if e.resync {
		return fmt.Sprintf("%s/%d resync", e.epoch, e.seq)
	}
	return fmt.Sprintf("%s/%d", e.epoch, e.seq)
}

// appendEvents appends events to the stream under prefix as the warmer
// does: fields seq, kind, event and data, the JSON.
func appendEvents(t *testing.T, rdb *redis.Client, prefix string, evs ...es) {
	t.Helper()
	for _, e := range evs {
		seats := int(e.seq)
		data, err := json.Marshal(keys.Event{Seq: e.seq, Epoch: e.epoch, Kind: keys.Sessions, Event: keys.EventItem,
			ID: "1001-" + strconv.FormatInt(e.seq, 10), SeatsAvailable: &seats, Changed: []string{"seats_available"},
			At: fixedAt.Add(time.Duration(e.seq) * time.Second).Format(time.RFC3339)})
		if err != nil {
			t.Fatal(err)
		}
		err = rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: keys.Stream(prefix),
			Values: []any{"seq", strconv.FormatInt(e.seq, 10), "kind", "sessions", "event", keys.EventItem, "data", data}}).Err()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// waitBlocked waits until the client named name is blocked in an XREAD:
// a Watch that has caught up and waits for the next entry.
func waitBlocked(t *testing.T, rdb *redis.Client, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		list, err := rdb.ClientList(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(list, "\n") {
			f := strings.Fields(line)
			if slices.Contains(f, "name="+name) && slices.Contains(f, "cmd=xread") && slices.ContainsFunc(f, func(s string) bool {
				v, ok := strings.CutPrefix(s, "flags=")
				return ok && strings.Contains(v, "b")
			}) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the Watch did not come to wait for the next entry within 10 s")
}

// A Watch from an epoch and a seq hands on the events of that epoch after
// the seq that the stream holds, skipping those of the epochs before it;
// the zero Position starts with the next event.
func TestWatchFromASeq(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t, nil)
	ctx := context.Background()
	// An earlier epoch, then the current one; the current one's seq 1 and
	// 2 trimmed away where a case says so.
	held := []es{{"old", 1, false}, {"old", 2, false}, {"old", 3, false}, {"cur", 1, false}, {"cur", 2, false}, {"cur", 3, false}, {"cur", 4, false}}
	trimmed := []es{{"cur", 3, false}, {"cur", 4, false}}
	tests := []struct {
		name   string
		stream []es
		meta   string                                    // P:meta epoch; "" for none
		from   func(r *Reader) (Position, error)         // where the Watch starts
		next   es                                        // appended once the Watch waits
		want   []es                                      // what it hands on, next included
		check  func(t *testing.T, r *Reader, p Position) // more about the Position
	}{
		{name: "After 0 replays the epoch", stream: held, meta: "cur",
			from: func(r *Reader) (Position, error) { return r.After(ctx, 0) },
			next: es{"cur", 5, false},
			want: []es{{"cur", 1, false}, {"cur", 2, false}, {"cur", 3, false}, {"cur", 4, false}, {"cur", 5, false}}},
		{name: "After 2", stream: held, meta: "cur",
			from: func(r *Reader) (Position, error) { return r.After(ctx, 2) },
			next: es{"cur", 5, false},
			want: []es{{"cur", 3, false}, {"cur", 4, false}, {"cur", 5, false}}},
		{name: "After the last seq", stream: held, meta: "cur",
			from: func(r *Reader) (Position, error) { return r.After(ctx, 4) },
			next: es{"cur", 5, false},
			want: []es{{"cur", 5, false}}},
		{name: "an epoch and seq 0 by hand", stream: held, meta: "cur",
			from: func(*Reader) (Position, error) { return Position{Epoch: "cur"}, nil },
			next: es{"cur", 5, false},
			want: []es{{"cur", 1, false}, {"cur", 2, false}, {"cur", 3, false}, {"cur", 4, false}, {"cur", 5, false}}},
		{name: "the zero Position is from now", stream: held, meta: "cur",
			from: func(*Reader) (Position, error) { return Position{}, nil },
			next: es{"cur", 5, false},
			want: []es{{"cur", 5, false}}},
		{name: "a trimmed stream: the gap is a resync", stream: trimmed, meta: "cur",
			from: func(r *Reader) (Position, error) { return r.After(ctx, 0) },
			next: es{"cur", 5, false},
			want: []es{{"cur", 3, true}, {"cur", 4, false}, {"cur", 5, false}}},
		{name: "a new epoch after the catch-up", stream: held, meta: "cur",
			from: func(r *Reader) (Position, error) { return r.After(ctx, 3) },
			next: es{"new", 1, false},
			want: []es{{"cur", 4, false}, {"new", 1, true}}},
		{name: "an epoch no longer current skips nothing", stream: held, meta: "new",
			from: func(*Reader) (Position, error) { return Position{Epoch: "old", Seq: 1}, nil },
			next: es{"new", 1, false},
			want: []es{{"old", 2, false}, {"old", 3, false}, {"cur", 1, true}, {"cur", 2, false}, {"cur", 3, false}, {"cur", 4, false}, {"new", 1, true}}},
		{name: "no P:meta: from now", stream: held, meta: "",
			from: func(r *Reader) (Position, error) { return r.After(ctx, 0) },
			next: es{"new", 1, false},
			want: []es{{"new", 1, false}},
			check: func(t *testing.T, r *Reader, p Position) {
				if p != (Position{}) {
					t.Errorf("After(0) with no P:meta = %+v, want the zero Position", p)
				}
			}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each its own prefix and client; a stopped Watch takes up to a block time
			prefix := "t" + strconv.Itoa(i)
			appendEvents(t, rdb, prefix, tt.stream...)
			if tt.meta != "" {
				rdb.HSet(ctx, keys.Meta(prefix), keys.MetaEpoch, tt.meta)
			}
			name := "watcher-" + prefix
			r := New(srv.Client(t, &redis.Options{ClientName: name}), prefix)
			from, err := tt.from(r)
			if err != nil {
				t.Fatalf("the Position: %v", err)
			}
			if tt.check != nil {
				tt.check(t, r, from)
			}
			w := watch(r, from)
			waitBlocked(t, rdb, name)
			appendEvents(t, rdb, prefix, tt.next)
			w.waitFor(t, "the event appended last, "+tt.next.String(), func(ev Event) bool {
				return ev.Epoch == tt.next.epoch && ev.Seq == tt.next.seq
			})
			w.stop(t)
			var got []es
			for _, ev := range w.got() {
				got = append(got, es{ev.Epoch, ev.Seq, ev.Resync})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Watch from %+v handed on %v, want %v", from, got, tt.want)
			}
		})
	}
}

// Event.Data is the stream entry's data, byte for byte, and a Position a
// Watch hands on goes on with the next event.
func TestWatchData(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t, nil)
	ctx := context.Background()
	appendEvents(t, rdb, "d", es{"cur", 1, false}, es{"cur", 2, false})
	rdb.HSet(ctx, keys.Meta("d"), keys.MetaEpoch, "cur")
	r := New(rdb, "d")
	from, err := r.After(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := watch(r, from)
	w.waitFor(t, "seq 2", func(ev Event) bool { return ev.Seq == 2 })
	w.stop(t)
	entries := rdb.XRange(ctx, keys.Stream("d"), "-", "+").Val()
	evs := w.got()
	if len(evs) != 2 {
		t.Fatalf("handed on %d events, want 2", len(evs))
	}
	for i, ev := range evs {
		if want := entries[i].Values["data"]; string(ev.Data) != want {
			t.Errorf("event %d: Data = %s, want %s", i, ev.Data, want)
		}
		if ev.Position.StreamID != entries[i].ID {
			t.Errorf("event %d: Position.StreamID = %s, want %s", i, ev.Position.StreamID, entries[i].ID)
		}
	}
	appendEvents(t, rdb, "d", es{"cur", 3, false})
	w2 := watch(r, evs[0].Position)
	w2.waitFor(t, "seq 3", func(ev Event) bool { return ev.Seq == 3 })
	w2.stop(t)
	if got := w2.got(); len(got) != 2 || got[0].Seq != 2 || got[0].Resync {
		t.Errorf("a Watch from seq 1's Position handed on %+v, want seq 2 then 3", got)
	}
}

// writeSession writes a session's hash and indexes it, as a warmer does.
func writeSession(t *testing.T, rdb *redis.Client, prefix, cinemaID, id string, showtime time.Time) {
	t.Helper()
	ctx := context.Background()
	h := map[string]any{"id": id, "cinema_id": cinemaID, "film_id": "f1", "session_id": id, "showtime": showtime.Format(time.RFC3339),
		"business_date": showtime.Format(time.DateOnly), "screen_name": "Screen 1", "screen_number": "1", "seats_available": "42",
		"soldout_status": "0", "status": "0", "state": "open", "attributes": "2D,Dolby",
		"allow_ticket_sales": "true", // an extra field, as --session-fields keeps it
		keys.FieldUpdatedAt:  stampOf(fixedAt), keys.FieldChangedAt: stampOf(fixedAt), keys.FieldNextCheckAt: stampOf(fixedAt.Add(time.Minute))}
	score := redis.Z{Score: float64(showtime.Unix()), Member: id}
	if err := rdb.HSet(ctx, keys.Session(prefix, id), h).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.ZAdd(ctx, keys.Index(prefix, keys.Sessions), score)
	rdb.ZAdd(ctx, keys.CinemaSessions(prefix, cinemaID), score)
	rdb.ZAdd(ctx, keys.FilmSessions(prefix, "f1"), score)
}

func stampOf(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// While no warmer runs, sessions expire and stay in the indexes: every
// read of a list leaves out the ids whose hashes are gone, and a read of
// one of them says it is not in the cache.
func TestReadsSkipMissingHashes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client(t, nil)
	ctx := context.Background()
	const p = "m"
	rdb.HSet(ctx, keys.Cinema(p, "1001"), "id", "1001", "name", "One", "timezone", "Europe/London", keys.FieldUpdatedAt, stampOf(fixedAt))
	rdb.HSet(ctx, keys.Film(p, "f1"), "id", "f1", "title", "A Film", "cinema_ids", "1001", keys.FieldUpdatedAt, stampOf(fixedAt))
	rdb.SAdd(ctx, keys.Index(p, keys.Cinemas), "1001", "1002") // 1002's hash is gone
	rdb.SAdd(ctx, keys.Index(p, keys.Films), "f1", "f2")       // f2's too
	for i, id := range []string{"1001-1", "1001-2", "1001-3", "1001-4"} {
		writeSession(t, rdb, p, "1001", id, fixedAt.Add(time.Duration(i)*time.Hour))
	}
	// Two expire with no warmer to take them out of the indexes.
	rdb.Del(ctx, keys.Session(p, "1001-1"), keys.Session(p, "1001-3"))
	want := []string{"1001-2", "1001-4"}

	r := New(rdb, p)
	ids := func(ss []Session) (out []string) {
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out
	}
	from, to := fixedAt.Add(-time.Hour), fixedAt.Add(24*time.Hour)
	if got, err := r.CinemaSessions(ctx, "1001", from, to); err != nil || !slices.Equal(ids(got), want) {
		t.Errorf("CinemaSessions = %v, %v, want %v", ids(got), err, want)
	}
	if got, err := r.FilmSessions(ctx, "f1", from, to); err != nil || !slices.Equal(ids(got), want) {
		t.Errorf("FilmSessions = %v, %v, want %v", ids(got), err, want)
	}
	if got, err := r.Sessions(ctx, from, to); err != nil || !slices.Equal(ids(got), want) {
		t.Errorf("Sessions = %v, %v, want %v", ids(got), err, want)
	}
	hashes, err := r.CinemaSessionHashes(ctx, "1001", from, to)
	var hashIDs []string
	for _, h := range hashes {
		hashIDs = append(hashIDs, h["id"])
	}
	if err != nil || !slices.Equal(hashIDs, want) {
		t.Errorf("CinemaSessionHashes = %v, %v, want %v", hashIDs, err, want)
	}
	if cs, err := r.Cinemas(ctx); err != nil || len(cs) != 1 || cs[0].ID != "1001" {
		t.Errorf("Cinemas = %+v, %v, want 1001 alone", cs, err)
	}
	if fs, err := r.Films(ctx); err != nil || len(fs) != 1 || fs[0].ID != "f1" {
		t.Errorf("Films = %+v, %v, want f1 alone", fs, err)
	}
	if _, err := r.Session(ctx, "1001-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Session of an expired id = %v, want ErrNotFound", err)
	}
	if _, err := r.Hash(ctx, keys.Sessions, "1001-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Hash of an expired id = %v, want ErrNotFound", err)
	}

	// Hash is the hash, every field under its own name, the extra one
	// included; CinemaSessionHashes hands on the same.
	h, err := r.Hash(ctx, keys.Sessions, "1001-2")
	if err != nil {
		t.Fatal(err)
	}
	if raw := rdb.HGetAll(ctx, keys.Session(p, "1001-2")).Val(); !maps.Equal(h, raw) || h["allow_ticket_sales"] != "true" {
		t.Errorf("Hash = %v, want the hash %v", h, raw)
	}
	if len(hashes) > 0 && !maps.Equal(hashes[0], h) {
		t.Errorf("CinemaSessionHashes[0] = %v, want %v", hashes[0], h)
	}

	// A Mirror loads what is there.
	m := NewMirror(r)
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(mctx) }()
	select {
	case <-m.Ready():
	case err := <-done:
		t.Fatalf("the mirror ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the mirror did not load")
	}
	if got := ids(m.Sessions("1001", from, to)); !slices.Equal(got, want) {
		t.Errorf("the Mirror's sessions = %v, want %v", got, want)
	}
	cancel()
	<-done
}
