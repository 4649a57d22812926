package main

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis's own part of a sample: how long Redis ran each write that
// published events, from its SLOWLOG with every command logged
// (slowlog-log-slower-than 0, on the run's own redis-server). The
// duration is the command's execution (the fence, the hash writes, the
// PUBLISHes and XADDs), not reading its arguments or writing replies;
// logging every command costs Redis a microsecond or two a command,
// far below what is measured. Unlike -split's MONITOR, it does not slow
// the scripts, and it says nothing of which sample a write carried.

// slowlogLen is room for every command of a run: the lease keeper's
// few a second and the writes, for a run of hours.
const slowlogLen = 1 << 20

// logEveryCommand makes Redis log every command from now on, with room
// for the run, and forgets what it logged before.
func logEveryCommand(ctx context.Context, rdb *redis.Client) error {
	if err := rdb.ConfigSet(ctx, "slowlog-max-len", strconv.Itoa(slowlogLen)).Err(); err != nil {
		return err
	}
	if err := rdb.ConfigSet(ctx, "slowlog-log-slower-than", "0").Err(); err != nil {
		return err
	}
	return rdb.SlowLogReset(ctx).Err()
}

// eventWriteTimes reads what Redis logged and returns, sorted, the
// execution times of the script calls that published events.
func eventWriteTimes(ctx context.Context, rdb *redis.Client) ([]time.Duration, error) {
	logs, err := rdb.SlowLogGet(ctx, -1).Result()
	if err != nil {
		return nil, err
	}
	return publishing(logs), nil
}

// publishing picks the script calls among logs whose arguments (the
// first 32 Redis keeps of each) name PUBLISH or SPUBLISH: a write of the
// warmer's that announces changes. A write of only confirmations, or of
// a whole list's hashes, publishes nothing and is left out.
func publishing(logs []redis.SlowLog) []time.Duration {
	var d []time.Duration
	for _, l := range logs {
		if len(l.Args) == 0 || !strings.EqualFold(l.Args[0], "evalsha") && !strings.EqualFold(l.Args[0], "eval") {
			continue
		}
		if slices.ContainsFunc(l.Args[1:], func(a string) bool {
			return strings.EqualFold(a, "publish") || strings.EqualFold(a, "spublish")
		}) {
			d = append(d, l.Duration)
		}
	}
	slices.Sort(d)
	return d
}
