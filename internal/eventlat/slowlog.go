package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis's own part of a sample: how long Redis ran each write that
// published events, from its SLOWLOG on the run's own redis-server. The
// duration is the script's execution (the fence, the hash writes, the
// PUBLISHes and XADDs, the replies built, the subscriber's message
// queued), not reading the call or the socket writes. Unlike -split's
// MONITOR it does not slow the scripts: Redis logs only the commands
// that ran longer than slowerThan. Redis 7 also logs each command a
// script runs, as an entry of its own, and logging every one (the
// threshold at 0) cost about 0.8 µs an entry inside the script, some
// 110 µs on a write of 27 changes; a script's own commands take a few
// microseconds each and stay under the threshold.

// slowerThan is what Redis logs: a write with events runs for tens of
// microseconds at least (a near sweep's, for hundreds); HSET, XADD or
// PUBLISH inside a script for 1 to 5. A write under it is not counted.
const slowerThan = 25 * time.Microsecond

// slowlogLen is room for every write of a run of hours: a few a second.
const slowlogLen = 100_000

// logWrites makes Redis log the commands slower than slowerThan, with
// room for the run, and forgets what it logged before.
func logWrites(ctx context.Context, rdb *redis.Client) error {
	for _, kv := range [][2]string{
		{"slowlog-max-len", strconv.Itoa(slowlogLen)},
		{"slowlog-log-slower-than", strconv.FormatInt(slowerThan.Microseconds(), 10)},
	} {
		if err := rdb.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			return fmt.Errorf("config set %s: %w", kv[0], err)
		}
	}
	if err := rdb.SlowLogReset(ctx).Err(); err != nil {
		return fmt.Errorf("slowlog reset: %w", err)
	}
	return nil
}

// writeTimes is what the log says of the warmer's writes.
type writeTimes struct {
	publishing []time.Duration // the writes that published events, sorted
	unclear    int             // writes whose logged arguments were cut too short to tell (see publishes)
	full       bool            // the log filled up: the oldest entries went
}

// readWrites reads what Redis logged.
func readWrites(ctx context.Context, rdb *redis.Client) (writeTimes, error) {
	logs, err := rdb.SlowLogGet(ctx, -1).Result()
	if err != nil {
		return writeTimes{}, fmt.Errorf("slowlog get: %w", err)
	}
	wt := classify(logs)
	wt.full = len(logs) >= slowlogLen
	return wt, nil
}

// classify sorts the logged script calls into those that published
// events and those it cannot tell.
func classify(logs []redis.SlowLog) writeTimes {
	var wt writeTimes
	for _, l := range logs {
		switch publishes(l.Args) {
		case yes:
			wt.publishing = append(wt.publishing, l.Duration)
		case unclear:
			wt.unclear++
		}
	}
	slices.Sort(wt.publishing)
	return wt
}

type answer int

const (
	no answer = iota
	yes
	unclear
)

// publishes says whether a logged call is a write of the warmer's that
// PUBLISHes (or SPUBLISHes). The warmer's fenced write is EVALSHA (EVAL)
// of the fence script with its keys, then four arguments of the fence,
// then each command as its length and its arguments (warmer/fence.go,
// write.argv). Redis keeps 31 arguments of an entry and puts "... (N more
// arguments)" in the 32nd: a write whose first commands are long (an
// addition carries its whole hash) is cut before its PUBLISH, and is
// unclear. A write of confirmations, and anything else, is no.
func publishes(args []string) answer {
	if len(args) < 3 || !strings.EqualFold(args[0], "evalsha") && !strings.EqualFold(args[0], "eval") {
		return no
	}
	nkeys, err := strconv.Atoi(args[2])
	if err != nil || nkeys < 0 {
		return no
	}
	first := 3 + nkeys + 4
	for i := first; i < len(args); {
		n, err := strconv.Atoi(args[i])
		if err != nil || n < 1 {
			break // the cut, or not the warmer's layout
		}
		if i == first && i+6 < len(args) && args[i+1] == "vw.hashwrite" && args[i+6] == "" {
			// A confirmation (a hash write with no whole hash to fall
			// back on): the warmer writes news and confirmations in
			// writes of their own, the news first (write.go, newsFirst),
			// so a write that begins with one publishes nothing.
			return no
		}
		if i+1 < len(args) && (strings.EqualFold(args[i+1], "publish") || strings.EqualFold(args[i+1], "spublish")) {
			return yes
		}
		i += 1 + n
	}
	if strings.HasPrefix(args[len(args)-1], "... (") {
		return unclear // a command ran past what Redis kept
	}
	return no
}
