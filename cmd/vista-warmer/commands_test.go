package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/internal/redistest"
	"github.com/vista-warmer/vista-warmer/keys"
)

// run runs a reader's command against srv and returns its exit status and
// output.
func runCmd(t *testing.T, url string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code := runCommand(ctx, args[0], args[1:], env(map[string]string{"REDIS_URL": url}), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestReaderCommands(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	url := "redis://" + srv.Addr()

	// Nothing written yet: status says stale, exit 1.
	if code, out, _ := runCmd(t, url, "status"); code != 1 || !strings.Contains(out, "STALE") {
		t.Errorf("status of an empty Redis: exit %d\n%s", code, out)
	}

	m, logs := MustStart(t, []string{"--demo", "--redis-url", url, "--listen", "127.0.0.1:0"}, nil)
	waitReady(t, m, logs)
	code, out, _ := runCmd(t, url, "status", "--json")
	var st statusReport
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 || st.Stale || st.Counts["sessions"] == 0 {
		t.Fatalf("status --json: exit %d, %v\n%s", code, err, out)
	}
	if !strings.Contains(out, `"reason":""`) {
		t.Errorf("status --json of a fresh cache has no reason \"\": %s", out)
	}

	rdb := srv.Client(t, nil)
	ctx := context.Background()
	id := rdb.ZRange(ctx, "vista:sessions", 0, 0).Val()[0]
	if code, _, errOut := runCmd(t, url, "get", "session", "no-such"); code != 1 || !strings.Contains(errOut, "not in the cache") {
		t.Errorf("get of an unknown id: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, url, "get", "seat", "1"); code != 2 || !strings.Contains(errOut, "no kind") {
		t.Errorf("get of a bad kind: exit %d, %q", code, errOut)
	}

	// One session reads the same from get, get --json and sessions
	// --json: its hash, under the contract's field names, every value a
	// string. The demo's warmer checks it meanwhile on the wall's clock
	// (the first session may be one that has started), so an attempt
	// during which its hash changed is made again.
	for attempt := 1; ; attempt++ {
		h := rdb.HGetAll(ctx, "vista:session:"+id).Val()
		code, plainOut, _ := runCmd(t, url, "get", "session", id)
		jsonCode, getOut, _ := runCmd(t, url, "get", "session", id, "--json")
		from := h["showtime"]
		listCode, out, _ := runCmd(t, url, "sessions", "--cinema", h["cinema_id"], "--from", from, "--json")
		if !maps.Equal(h, rdb.HGetAll(ctx, "vista:session:"+id).Val()) {
			if attempt == 5 {
				t.Fatalf("session %s changed in Redis during each of %d attempts", id, attempt)
			}
			continue
		}
		if code != 0 || !strings.Contains(plainOut, "seats_available  "+h["seats_available"]) {
			t.Errorf("get session %s: exit %d\n%s", id, code, plainOut)
		}
		var got map[string]string
		if err := json.Unmarshal([]byte(getOut), &got); jsonCode != 0 || err != nil || got["id"] != id || got["seats_available"] == "" {
			t.Errorf("get session %s --json: exit %d, %v\n%s", id, jsonCode, err, getOut)
		}
		var line string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var s map[string]string
			if err := json.Unmarshal([]byte(l), &s); err != nil {
				t.Errorf("sessions --json: a line that is not an object of strings (%v): %s", err, l)
				break
			}
			if s["id"] == id {
				line = l + "\n"
			}
		}
		if listCode != 0 || line != getOut {
			t.Errorf("sessions --cinema %s --from %s --json: exit %d; its line for %s\n%s\nis not get --json's\n%s",
				h["cinema_id"], from, listCode, id, line, getOut)
		}
		for _, f := range []string{"id", "cinema_id", "film_id", "showtime", "seats_available", "state"} {
			if got[f] != h[f] {
				t.Errorf("get --json %s = %q, the hash holds %q", f, got[f], h[f])
			}
		}
		break
	}

	// watch --from 1 catches up from the stream: the full_reloads after
	// the first event, in order.
	var wout, werr bytes.Buffer
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	runCommand(wctx, "watch", []string{"--from", "1", "--json"}, env(map[string]string{"REDIS_URL": url}), &wout, &werr)
	lines := strings.Split(strings.TrimSpace(wout.String()), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], `{"seq":2,`) || !strings.HasPrefix(lines[1], `{"seq":3,`) {
		t.Errorf("watch --from 1: %q %q", wout.String(), werr.String())
	}
	if code, out, _ := runCmd(t, url, "watch", "--help"); code != 0 || !strings.Contains(out, "Usage: vista-warmer watch") ||
		!strings.Contains(out, "--from 0: all of them") {
		t.Errorf("watch --help: exit %d\n%s", code, out)
	}

	// watch --from 0 replays the epoch from seq 1, each event as the
	// stream holds it.
	wout.Reset()
	wctx, cancel = context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	runCommand(wctx, "watch", []string{"--from", "0", "--json"}, env(map[string]string{"REDIS_URL": url}), &wout, &werr)
	lines = strings.Split(strings.TrimSpace(wout.String()), "\n")
	entries := rdb.XRange(ctx, "vista:events", "-", "+").Val()
	if len(lines) < 3 || len(entries) < 3 || !strings.HasPrefix(lines[0], `{"seq":1,`) {
		t.Fatalf("watch --from 0 --json: %q %q", wout.String(), werr.String())
	}
	for i := range min(len(lines), len(entries)) {
		if lines[i] != entries[i].Values["data"] {
			t.Errorf("watch --from 0 --json line %d = %s, the stream holds %s", i, lines[i], entries[i].Values["data"])
		}
	}
}

// watchCmd runs watch with args against url, then meanwhile (when not
// nil), until done accepts what it printed, and returns that.
func watchCmd(t *testing.T, url string, meanwhile func(), done func(out string) bool, args ...string) string {
	t.Helper()
	var out, errOut syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	go func() {
		exited <- runCommand(ctx, "watch", args, env(map[string]string{"REDIS_URL": url}), &out, &errOut)
	}()
	defer func() {
		cancel()
		if code := <-exited; code != 0 {
			t.Errorf("watch %q: exit %d, %s", args, code, errOut.String())
		}
	}()
	if meanwhile != nil {
		meanwhile()
	}
	deadline := time.Now().Add(10 * time.Second)
	for !done(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("watch %q printed within 10 s:\n%s%s", args, out.String(), errOut.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return out.String()
}

// xadd appends an item event to the stream under vista, as the warmer
// does, and returns its JSON.
func xadd(t *testing.T, rdb *redis.Client, epoch string, seq int64) string {
	t.Helper()
	seats := 40 - int(seq)
	data, _ := json.Marshal(keys.Event{Seq: seq, Epoch: epoch, Kind: keys.Sessions, Event: keys.EventItem, ID: "1001-7",
		SeatsAvailable: &seats, Changed: []string{"seats_available"},
		At: time.Date(2031, 3, 14, 18, 0, int(seq), 0, time.UTC).Format(time.RFC3339)})
	err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: "vista:events",
		Values: []any{"seq", seq, "kind", "sessions", "event", "item", "data", data}}).Err()
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// waitXREAD waits until a client of rdb's server is blocked in XREAD: a
// watch that has found where the stream ends.
func waitXREAD(t *testing.T, rdb *redis.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(rdb.ClientList(context.Background()).Val(), "\n") {
			f := strings.Fields(line)
			if slices.Contains(f, "cmd=xread") && slices.ContainsFunc(f, func(s string) bool {
				v, ok := strings.CutPrefix(s, "flags=")
				return ok && strings.Contains(v, "b")
			}) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no watch came to wait on XREAD within 10 s")
}

// watch without --from starts with the next event; --from N hands on the
// events after seq N of the current epoch, so --from 0 replays all the
// stream holds of it and none of an earlier epoch's.
func TestWatchFrom(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	url := "redis://" + srv.Addr()
	rdb := srv.Client(t, nil)
	xadd(t, rdb, "old", 1)
	var cur []string
	for seq := int64(1); seq <= 3; seq++ {
		cur = append(cur, xadd(t, rdb, "cur", seq))
	}
	rdb.HSet(context.Background(), "vista:meta", "epoch", "cur", "seq", "3")
	lines := func(n int) func(string) bool {
		return func(out string) bool { return strings.Count(out, "\n") >= n }
	}

	// From now: the event appended once the watch waits, and nothing before.
	var fourth string
	out := watchCmd(t, url, func() {
		waitXREAD(t, rdb)
		fourth = xadd(t, rdb, "cur", 4)
	}, lines(1), "--json")
	if want := fourth + "\n"; out != want {
		t.Errorf("watch --json (no --from) printed\n%swant\n%s", out, want)
	}
	cur = append(cur, strings.TrimSuffix(out, "\n"))

	for _, tt := range []struct {
		from string
		want []string
	}{
		{"0", cur},
		{"2", cur[2:]},
	} {
		out := watchCmd(t, url, nil, lines(len(tt.want)), "--from", tt.from, "--json")
		if want := strings.Join(tt.want, "\n") + "\n"; out != want {
			t.Errorf("watch --from %s --json printed\n%swant\n%s", tt.from, out, want)
		}
	}
	out = watchCmd(t, url, nil, lines(4), "--from", "0")
	if !strings.HasPrefix(out, "1 2031-03-14T18:00:01Z sessions item 1001-7 seats=39 changed=seats_available\n") {
		t.Errorf("watch --from 0 printed\n%s", out)
	}
	for _, bad := range []string{"-1", "x"} {
		if code, _, errOut := runCmd(t, url, "watch", "--from", bad); code != 2 || !strings.Contains(errOut, "want a seq") {
			t.Errorf("watch --from %s: exit %d, %q", bad, code, errOut)
		}
	}
}
