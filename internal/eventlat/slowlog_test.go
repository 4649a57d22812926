package main

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/vista-warmer/vista-warmer/internal/redistest"
)

// busy publishes one event and runs long enough (a Lua loop of a few
// hundred microseconds) to be logged at slowerThan.
const busy = `redis.call('PUBLISH', 'vista:events:sessions', '{}')
local x = 0
for i = 1, 300000 do x = x + i end
return 1`

// fenced is a call in the layout of the warmer's fenced write: the
// lease and P:meta as keys, the fence's four arguments, then cmds, each
// as its length and its arguments.
func fenced(cmds ...[]any) []any {
	argv := []any{"eventlat", "ep0ch", "7", ""}
	for _, c := range cmds {
		argv = append(argv, len(c))
		argv = append(argv, c...)
	}
	return argv
}

// TestTheLogTellsTheWritesThatPublish runs calls in the warmer's layout
// against a real redis-server that logs every command: a write whose
// PUBLISH is within the 31 arguments Redis keeps counts; one whose first
// command is too long to show it is unclear; one of confirmations (cut
// too), the script's own PUBLISH and a command that only names PUBLISH
// do not count.
func TestTheLogTellsTheWritesThatPublish(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t, redistest.Options{}).Client(t, nil)
	if err := logWrites(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "slowlog-log-slower-than", "0").Err(); err != nil {
		t.Fatal(err)
	}
	keys := []string{"vista:lease", "vista:meta"}
	update := []any{"vw.hashwrite", "vista:session:1", "1796592480", 1, 0, "2:id1:1", "seats_available", "41"}
	event := []any{"publish", "vista:events:sessions", `{"seq":8}`}
	long := []any{"vw.hashnew", "", "hset", "vista:session:2"}
	for i := range 12 {
		long = append(long, fmt.Sprint("f", i), "v")
	}
	confirm := []any{"vw.hashwrite", "vista:session:3", "1796592480", 2, 0, "", "updated_at", "2031-01-01T00:00:00Z", "next_check_at", "2031-01-01T00:01:00Z"}
	for _, argv := range [][]any{
		fenced(update, event),
		fenced(long, event),
		fenced(confirm, confirm, confirm, confirm),
	} {
		if err := rdb.Eval(ctx, busy, keys, argv...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.Do(ctx, "command", "info", "publish").Err(); err != nil {
		t.Fatal(err)
	}
	wt, err := readWrites(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	if len(wt.publishing) != 1 || wt.unclear != 1 || wt.full {
		t.Fatalf("readWrites = %d publishing, %d unclear, full %v; want 1, 1, false", len(wt.publishing), wt.unclear, wt.full)
	}
}

// TestTheLogLeavesOutAScriptsOwnCommands: at slowerThan, Redis logs the
// script call that ran long and none of the commands the script ran
// (which Redis 7 logs too, each as its own entry, at 0).
func TestTheLogLeavesOutAScriptsOwnCommands(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t, redistest.Options{}).Client(t, nil)
	if err := logWrites(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Eval(ctx, busy, nil).Err(); err != nil {
		t.Fatal(err)
	}
	logs, err := rdb.SlowLogGet(ctx, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range logs {
		names = append(names, l.Args[0])
	}
	if !slices.Equal(names, []string{"eval"}) {
		t.Fatalf("logged %q, want only the script call", names)
	}
}

// TestPublishes reads the layouts a log entry can have.
func TestPublishes(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want answer
	}{
		{"an update then its event", []string{"evalsha", "abc", "2", "k1", "k2", "l", "e", "3", "", "3", "hset", "k", "v", "3", "publish", "c", "{}"}, yes},
		{"sharded", []string{"EVALSHA", "abc", "2", "k1", "k2", "l", "e", "3", "", "3", "SPUBLISH", "c", "{}"}, yes},
		{"cut before its event", []string{"evalsha", "abc", "2", "k1", "k2", "l", "e", "3", "", "30", "hset", "k", "... (40 more arguments)"}, unclear},
		{"cut at a command's length", []string{"evalsha", "abc", "2", "k1", "k2", "l", "e", "3", "", "2", "del", "k", "... (40 more arguments)"}, unclear},
		{"short commands", []string{"evalsha", "abc", "2", "k1", "k2", "l", "e", "3", "", "2", "expire", "k", "2", "expire", "j"}, no},
		{"confirmations, cut", []string{"evalsha", "abc", "2", "k1", "k2", "l", "e", "3", "", "10", "vw.hashwrite", "k", "17", "2", "0", "", "updated_at", "t", "next_check_at", "t", "10", "vw.hashwrite", "... (40 more arguments)"}, no},
		{"an update, cut", []string{"evalsha", "abc", "2", "k1", "k2", "l", "e", "3", "", "30", "vw.hashwrite", "k", "17", "2", "0", "2:id1:1", "... (40 more arguments)"}, unclear},
		{"publish on its own", []string{"publish", "eventlat:floor", "1"}, no},
		{"a lease renewal", []string{"evalsha", "def", "1", "vista:lease", "me", "10000"}, no},
		{"not a script", []string{"rpush", "k", "0", "a", "b", "c", "d", "3", "publish", "c", "{}"}, no},
		{"not the layout", []string{"eval", "return 1", "0", "a", "b", "c", "d", "publish"}, no},
		{"nothing", nil, no},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := publishes(tc.args); got != tc.want {
				t.Fatalf("publishes(%q) = %d, want %d", tc.args, got, tc.want)
			}
		})
	}
}
