package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/internal/redistest"
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

	rdb := srv.Client(t, nil)
	ctx := context.Background()
	id := rdb.ZRange(ctx, "vista:sessions", 0, 0).Val()[0]
	h := rdb.HGetAll(ctx, "vista:session:"+id).Val()
	code, out, _ = runCmd(t, url, "get", "session", id)
	if code != 0 || !strings.Contains(out, "seats_available  "+h["seats_available"]) {
		t.Errorf("get session %s: exit %d\n%s", id, code, out)
	}
	if code, _, errOut := runCmd(t, url, "get", "session", "no-such"); code != 1 || !strings.Contains(errOut, "not in the cache") {
		t.Errorf("get of an unknown id: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, url, "get", "seat", "1"); code != 2 || !strings.Contains(errOut, "no kind") {
		t.Errorf("get of a bad kind: exit %d, %q", code, errOut)
	}

	from := h["showtime"]
	code, out, _ = runCmd(t, url, "sessions", "--cinema", h["cinema_id"], "--from", from, "--json")
	if code != 0 || !strings.Contains(out, `"ID":"`+id+`"`) {
		t.Errorf("sessions --cinema %s --from %s: exit %d\n%s", h["cinema_id"], from, code, out)
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
	if code, out, _ := runCmd(t, url, "watch", "--help"); code != 0 || !strings.Contains(out, "Usage: vista-warmer watch") {
		t.Errorf("watch --help: exit %d\n%s", code, out)
	}
}
