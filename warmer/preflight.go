package warmer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// Commands lists every Redis command the warmer sends, itself or inside
// its scripts, as ACL rules name them. docs/operations.md's ACL line for the
// warmer grants each (a test reads it), and Preflight tries each at
// start, so a user that lacks one is told at once, by name; all but the
// transaction's (WATCH, UNWATCH, MULTI, EXEC), without which large writes
// go as the script (bulk.go) and the log says so, and SCAN, without which
// a writer that takes over a build stopped halfway cannot find the hashes
// it wrote and no index lists yet (readUnlisted), and the log says so.
var Commands = []string{
	"ping", "info", "role", "evalsha", "eval", "script|load",
	"get", "set", "del", "type", "exists", "pexpire", "expireat",
	"hgetall", "hmget", "hset", "hdel",
	"zadd", "zrem", "zrange", "zremrangebyscore", "zcard",
	"sadd", "srem", "smembers", "scard",
	"xadd", "publish", "spublish",
	"watch", "unwatch", "multi", "exec", "scan",
}

// preflightScript runs each command the warmer's scripts run, on scratch
// keys, with pcall, and returns the names of those the user may not run.
// KEYS: a hash, a sorted set, a set, a stream, a string, all scratch.
// ARGV: a channel, and "1" to try SPUBLISH too.
var preflightScript = redis.NewScript(preflightLua)

// DeniedError is a command Redis's ACLs deny the warmer's user.
type DeniedError struct {
	Command    string   // as ACL rules name it, e.g. "type"; "" when Redis did not say
	Categories []string // its ACL categories, e.g. "@keyspace", when Redis said
	// Others are the further commands denied, when Preflight found
	// several: one start tells them all.
	Others []*DeniedError
	Err    error
}

func (e *DeniedError) Error() string {
	if e.Command == "" {
		return "redis refuses a command the warmer needs to this user (ACL): " + e.Err.Error() +
			"; grant the commands docs/operations.md's ACL line for the warmer names"
	}
	all := append([]*DeniedError{e}, e.Others...)
	names := make([]string, len(all))
	grants := make([]string, len(all))
	for i, d := range all {
		names[i] = strings.ToUpper(d.Command)
		if len(d.Categories) > 0 {
			names[i] += " (" + strings.Join(d.Categories, " ") + ")"
		}
		grants[i] = "+" + d.Command
	}
	what := "the command " + names[0]
	if len(all) > 1 {
		what = "the commands " + strings.Join(names, ", ")
	}
	return fmt.Sprintf("redis refuses %s to this user (ACL): grant %s (ACL SETUSER <user> %s), as docs/operations.md's ACL line for the warmer does",
		what, map[bool]string{true: "them", false: "it"}[len(all) > 1], strings.Join(grants, " "))
}

// categories asks Redis for a command's ACL categories; nil when it
// cannot say.
func categories(ctx context.Context, rdb redis.UniversalClient, cmd string) []string {
	name, _, _ := strings.Cut(cmd, "|")
	res, err := rdb.Do(ctx, "COMMAND", "INFO", name).Slice()
	if err != nil || len(res) == 0 {
		return nil
	}
	info, ok := res[0].([]any)
	if !ok {
		return nil
	}
	var cats []string
	for _, f := range info {
		if list, ok := f.([]any); ok {
			for _, c := range list {
				if s, ok := c.(string); ok && strings.HasPrefix(s, "@") {
					cats = append(cats, s)
				}
			}
		}
	}
	return cats
}

func (e *DeniedError) Unwrap() error { return e.Err }

// Preflight tries every command the warmer sends, on scratch keys under
// the prefix, and returns a *DeniedError naming the first one Redis's
// ACLs deny the user. It writes nothing that stays: the scratch keys are
// deleted, and a message goes to P:preflight, a channel outside P:events:*.
//
// It takes 10 s at most, and gives up at once when Redis does not answer
// (the warmer's own paths wait that out): it is no reason not to start.
func Preflight(ctx context.Context, rdb redis.UniversalClient, prefix string, sharded bool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	scratch := prefix + ":preflight:" + newEpoch()
	var silent bool // Redis did not answer: try nothing more
	denied := func(cmd string, err error) error {
		if err == nil {
			return nil
		}
		var rerr redis.Error
		if !errors.As(err, &rerr) {
			silent = true
			return nil
		}
		if code, _ := refusal(err); code == "acl" {
			if name := deniedCommand(err); name != "" {
				cmd = name
			}
			return &DeniedError{Command: cmd, Err: err}
		}
		return nil // not a denial: the warmer's own paths deal with it
	}
	checks := []struct {
		cmd string
		run func() error
	}{
		{"ping", func() error { return rdb.Ping(ctx).Err() }},
		{"info", func() error { return rdb.Info(ctx, "memory").Err() }},
		{"role", func() error { return rdb.Do(ctx, "ROLE").Err() }},
		{"get", func() error { return ignoreNil(rdb.Get(ctx, keys.Lease(prefix)).Err()) }},
		{"type", func() error { return rdb.Type(ctx, keys.Meta(prefix)).Err() }},
		{"exists", func() error { return rdb.Exists(ctx, keys.Meta(prefix)).Err() }},
		{"hgetall", func() error { return rdb.HGetAll(ctx, keys.Meta(prefix)).Err() }},
		{"hmget", func() error { return rdb.HMGet(ctx, keys.Meta(prefix), "epoch").Err() }},
		{"smembers", func() error { return rdb.SMembers(ctx, scratch+":s").Err() }},
		{"scard", func() error { return rdb.SCard(ctx, scratch+":s").Err() }},
		{"zrange", func() error { return rdb.ZRangeWithScores(ctx, scratch+":z", 0, 0).Err() }},
		{"zcard", func() error { return rdb.ZCard(ctx, scratch+":z").Err() }},
		{"set", func() error { return rdb.SetNX(ctx, scratch+":v", "v", time.Second).Err() }},
		{"del", func() error { return rdb.Del(ctx, scratch+":v").Err() }},
		{"script|load", func() error { return fenceScript.Load(ctx, rdb).Err() }},
	}
	var found []*DeniedError
	seen := map[string]bool{}
	note := func(err error) {
		var de *DeniedError
		if errors.As(err, &de) && !seen[de.Command] {
			seen[de.Command] = true
			withCategories(ctx, rdb, de)
			found = append(found, de)
		}
	}
	for _, c := range checks {
		note(denied(c.cmd, c.run()))
		if silent {
			return nil
		}
	}
	sp := "0"
	if sharded {
		sp = "1"
	}
	ks := []string{scratch + ":h", scratch + ":z", scratch + ":s", scratch + ":x", scratch + ":v"}
	args := []any{prefix + ":preflight", sp} // no reader listens there: not an events channel
	// EVAL first, then EVALSHA: go-redis's Run tries EVALSHA and falls
	// back to EVAL, and either may be the one denied.
	note(denied("eval", preflightScript.Eval(ctx, rdb, ks, args...).Err()))
	names, err := preflightScript.EvalSha(ctx, rdb, ks, args...).StringSlice()
	note(denied("evalsha", err))
	for _, name := range names {
		note(&DeniedError{Command: name, Err: fmt.Errorf("%s in a script: denied", strings.ToUpper(name))})
	}
	if len(found) == 0 {
		return nil
	}
	first := found[0]
	first.Others = found[1:]
	return first
}

// withCategories adds the denied command's ACL categories to err.
func withCategories(ctx context.Context, rdb redis.UniversalClient, err error) error {
	var de *DeniedError
	if errors.As(err, &de) && de.Command != "" {
		de.Categories = categories(ctx, rdb, de.Command)
	}
	return err
}

func ignoreNil(err error) error {
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}

var deniedRE = regexp.MustCompile(`no permissions to run the '([^']+)' command`)

// deniedCommand returns the command a NOPERM answer names, lowercased;
// "" when it names none (a key or channel, or a script's command).
func deniedCommand(err error) string {
	if m := deniedRE.FindStringSubmatch(err.Error()); m != nil {
		return strings.ToLower(m[1])
	}
	return ""
}
