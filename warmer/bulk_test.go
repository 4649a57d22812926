package warmer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/internal/redistest"
	"github.com/vista-warmer/vista-warmer/internal/testkit"
	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
)

// bulkStore is the fenced store of a warmer that is not run, over rdb,
// with the lease held by it and P:meta at epoch e1, seq 5.
func bulkStore(t *testing.T, rdb *redis.Client, prefix string, log *slog.Logger) *store {
	t.Helper()
	client, err := vista.New(vista.Config{BaseURL: "http://127.0.0.1:1/", Zones: vista.Zones{Default: time.UTC}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Redis: rdb, Vista: client, Prefix: prefix, InstanceID: "a", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := rdb.Set(ctx, keys.Lease(prefix), w.store.lease, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, keys.Meta(prefix), keys.MetaEpoch, "e1", keys.MetaSeq, 5)
	return w.store
}

// newHashes queues n new hashes under prefix and an index entry for each.
func newHashes(prefix string, n int) func(redis.Pipeliner) {
	return moreHashes(prefix, 0, n, 6)
}

// moreHashes queues n new hashes under prefix, ids from on, an index
// entry for each, and P:meta's seq set to seq.
func moreHashes(prefix string, from, n int, seq int64) func(redis.Pipeliner) {
	return func(pipe redis.Pipeliner) {
		ctx := context.Background()
		ix := []any{"zadd", keys.Index(prefix, keys.Sessions)}
		for i := from; i < from+n; i++ {
			key := keys.Entity(prefix, keys.Sessions, fmt.Sprint(i))
			pipe.Do(ctx, hashNewCmd, "4102444800", "hset", key, "id", fmt.Sprint(i), "state", "open")
			ix = append(ix, n-i, fmt.Sprint(i))
		}
		pipe.Do(ctx, ix...)
		pipe.HSet(ctx, keys.Meta(prefix), keys.MetaSeq, seq)
	}
}

// chain prepares n bulk writes of bulkHashes new hashes each, the first
// expecting seq 5 and each the seq the one before leaves; skew is added
// to what the last one expects.
func chain(t *testing.T, s *store, prefix string, n int, skew int64) []*write {
	t.Helper()
	wrs := make([]*write, n)
	for i := range wrs {
		seq := int64(5 + i)
		if i == n-1 {
			seq += skew
		}
		wrs[i] = s.prepare(context.Background(), &guard{epoch: "e1", seq: seq}, moreHashes(prefix, i*bulkHashes, bulkHashes, int64(6+i)))
		if wrs[i].tx == nil {
			t.Fatal("not a transaction")
		}
	}
	return wrs
}

// written counts the hashes of a chain's writes there are under prefix,
// write by write.
func written(t *testing.T, rdb *redis.Client, prefix string, n int) []int64 {
	t.Helper()
	out := make([]int64, n)
	for i := range out {
		for j := range bulkHashes {
			out[i] += rdb.Exists(context.Background(), keys.Entity(prefix, keys.Sessions, fmt.Sprint(i*bulkHashes+j))).Val()
		}
	}
	return out
}

// A bulk write (MULTI/EXEC under WATCH) is fenced as the script is: the
// same state of the lease and P:meta lets both through or stops both with
// the same error, and one that is stopped writes nothing.
func TestBulkWritesAreFencedAsTheScriptIs(t *testing.T) {
	rdb, prefix := MustRedis(t)
	s := bulkStore(t, rdb, prefix, nil)
	ctx := context.Background()
	lease, meta := keys.Lease(prefix), keys.Meta(prefix)
	ours := s.lease
	tests := []struct {
		name  string
		setup func()
		g     *guard
		want  error
	}{
		{"the lease ours, P:meta as expected", func() {}, &guard{epoch: "e1", seq: 5}, nil},
		{"no P:meta check", func() {}, nil, nil},
		{"any seq", func() { rdb.HSet(ctx, meta, keys.MetaSeq, 9) }, &guard{epoch: "e1", seq: -1}, nil},
		{"another's lease", func() { rdb.Set(ctx, lease, "b 1", time.Minute) }, &guard{epoch: "e1", seq: 5}, ErrLeaseLost},
		{"no lease", func() { rdb.Del(ctx, lease) }, &guard{epoch: "e1", seq: 5}, errLeaseGone},
		{"no P:meta", func() { rdb.Del(ctx, meta) }, &guard{epoch: "e1", seq: 5}, errMetaGone},
		{"another epoch", func() { rdb.HSet(ctx, meta, keys.MetaEpoch, "e2") }, &guard{epoch: "e1", seq: 5}, errCacheLost},
		{"another seq", func() { rdb.HSet(ctx, meta, keys.MetaSeq, 4) }, &guard{epoch: "e1", seq: 5}, errStale},
	}
	for _, tt := range tests {
		for _, n := range []int{1, bulkHashes} { // the script, a transaction
			t.Run(fmt.Sprintf("%s/%d hashes", tt.name, n), func(t *testing.T) {
				rdb.Set(ctx, lease, ours, time.Minute)
				rdb.Del(ctx, meta, keys.Index(prefix, keys.Sessions), keys.Entity(prefix, keys.Sessions, "0"))
				rdb.HSet(ctx, meta, keys.MetaEpoch, "e1", keys.MetaSeq, 5)
				tt.setup()
				wr := s.prepare(ctx, tt.g, newHashes(prefix, n))
				if bulk := wr.tx != nil; bulk != (n >= bulkHashes) {
					t.Fatalf("%d new hashes went as a transaction: %v", n, bulk)
				}
				_, err := s.run(ctx, wr)
				if !errors.Is(err, tt.want) {
					t.Fatalf("write = %v, want %v", err, tt.want)
				}
				h, _ := rdb.HGetAll(ctx, keys.Entity(prefix, keys.Sessions, "0")).Result()
				z, _ := rdb.ZCard(ctx, keys.Index(prefix, keys.Sessions)).Result()
				if written := tt.want == nil; (len(h) > 0) != written || (z == int64(n)) != written {
					t.Errorf("hash %v and %d index entries after a write that answered %v", h, z, err)
				}
				if tt.want == nil {
					if ttl := rdb.TTL(ctx, keys.Entity(prefix, keys.Sessions, "0")).Val(); ttl <= 0 {
						t.Errorf("TTL %v, want the EXPIREAT given", ttl)
					}
				}
			})
		}
	}
}

// A new hash replaces whatever its key held, in a transaction as in the
// script: no field of an earlier epoch's hash stays, and another type goes.
func TestBulkWriteReplacesWhatItsKeysHeld(t *testing.T) {
	rdb, prefix := MustRedis(t)
	s := bulkStore(t, rdb, prefix, nil)
	ctx := context.Background()
	rdb.HSet(ctx, keys.Entity(prefix, keys.Sessions, "0"), "stale", "x", "id", "old")
	rdb.Set(ctx, keys.Entity(prefix, keys.Sessions, "1"), "a string", 0)
	wr := s.prepare(ctx, &guard{epoch: "e1", seq: 5}, newHashes(prefix, bulkHashes))
	if wr.tx == nil {
		t.Fatal("not a transaction")
	}
	if _, err := s.run(ctx, wr); err != nil {
		t.Fatal(err)
	}
	if h := rdb.HGetAll(ctx, keys.Entity(prefix, keys.Sessions, "0")).Val(); h["stale"] != "" || h["id"] != "0" {
		t.Errorf("hash 0 = %v, want only the new fields", h)
	}
	if typ := rdb.Type(ctx, keys.Entity(prefix, keys.Sessions, "1")).Val(); typ != "hash" {
		t.Errorf("key 1 is a %s", typ)
	}
}

// touchBeforeExec runs touch before each EXEC it sees go out, as another
// client would between the fence's reads and EXEC; add it with
// rdb.AddHook(seeCommands(h.before)).
type touchBeforeExec struct {
	touch func()
	n     atomic.Int32
}

func (h *touchBeforeExec) before(cmds []redis.Cmder) {
	for _, c := range cmds {
		if strings.EqualFold(c.Name(), "exec") {
			h.n.Add(1)
			h.touch()
		}
	}
}

// A bulk write takes two round trips, the fence's and the commands', and
// each write after it in the same run one more: its WATCH, fence reads
// and MULTI go with the commands and EXEC of the write before. The
// connection is left with nothing watched and no transaction open,
// whether the fence lets the writes through, stops the first, or stops
// one further on (the writes before it stay written): an EXEC ends the
// WATCH (of nothing, when the fence said no), and no UNWATCH round trip
// follows. It holds for a user granted exactly the commands the warmer
// sends (Commands, the ACL line of docs/operations.md), which may not
// DISCARD. A Redis Cluster client takes two round trips more (see
// onOneConn).
func TestBulkWriteTakesTwoRoundTrips(t *testing.T) {
	acl := "user w on >pw ~* &* -@all +@connection +" + strings.Join(Commands, " +")
	srv := redistest.Start(t, redistest.Options{Config: []string{acl}})
	ctx := context.Background()
	for _, user := range []string{"default", "w"} {
		for _, c := range []struct {
			name   string
			writes int
			lease  string
			skew   int64 // the last write expects a seq this far off
			want   error
			done   int
			trips  int
			execs  int
		}{
			{"one, the fence lets it through", 1, "", 0, nil, 1, 2, 1},
			{"one, the fence says no", 1, "b 1", 0, ErrLeaseLost, 0, 2, 1},
			{"three, the fence lets them through", 3, "", 0, nil, 3, 4, 3},
			{"three, the fence says no to the first", 3, "b 1", 0, ErrLeaseLost, 0, 2, 1},
			{"three, the fence says no to the third", 3, "", 1, errStale, 2, 4, 3},
		} {
			t.Run(user+"/"+c.name, func(t *testing.T) {
				opt := &redis.Options{Addr: srv.Addr(), PoolSize: 1} // the write's connection is the one asked below
				if user != "default" {
					opt.Username, opt.Password = user, "pw"
				}
				conn := redis.NewClient(opt)
				defer conn.Close()
				prefix := fmt.Sprintf("t%d", time.Now().UnixNano())
				s := bulkStore(t, conn, prefix, nil)
				if c.lease != "" {
					conn.Set(ctx, keys.Lease(prefix), c.lease, time.Minute)
				}
				wrs := chain(t, s, prefix, c.writes, c.skew)
				if !s.canBulk(ctx) {
					t.Fatal("no transactions")
				}
				h := &roundTrips{}
				conn.AddHook(seeCommands(h.see))
				done, err := s.run(ctx, wrs...)
				if !errors.Is(err, c.want) || done != c.done {
					t.Fatalf("write = %d, %v, want %d, %v", done, err, c.done, c.want)
				}
				if h.trips != c.trips || h.names["watch"] != c.execs || h.names["exec"] != c.execs || h.names["discard"] != 0 {
					t.Errorf("%d round trips sending %v, want %d, with %d WATCH and EXEC", h.trips, h.names, c.trips, c.execs)
				}
				// go-redis sends a pipeline again when Redis refuses its
				// first command with LOADING, TRYAGAIN and the like: an
				// UNWATCH, which no such answer refuses, goes first.
				if c.want == nil && (len(h.firsts) != c.trips || slices.ContainsFunc(h.firsts, func(n string) bool { return n != "unwatch" })) {
					t.Errorf("the round trips began with %v, want UNWATCH each", h.firsts)
				}
				for i, n := range written(t, conn, prefix, c.writes) {
					want := int64(bulkHashes)
					if i >= c.done {
						want = 0 // stopped by the fence
					}
					if n != want {
						t.Errorf("write %d: %d of its hashes there, want %d", i, n, want)
					}
				}
				// Nothing stays watched on the connection, nor is a
				// transaction left open: Redis flags a client d whose
				// watched key changed, and x in a MULTI; in one, GET
				// would answer QUEUED.
				other := redis.NewClient(&redis.Options{Addr: srv.Addr()})
				defer other.Close()
				other.HSet(ctx, keys.Meta(prefix), "touched", 1)
				info, err := conn.Do(ctx, "client", "info").Text()
				if err != nil {
					t.Fatal(err)
				}
				if flags := clientField(info, "flags"); flags == "" || strings.ContainsAny(flags, "dx") {
					t.Errorf("CLIENT INFO after the write: %q", info)
				}
				if got, err := conn.Get(ctx, keys.Lease(prefix)).Result(); err != nil || got == "QUEUED" {
					t.Errorf("GET after the write = %q, %v", got, err)
				}
			})
		}
	}
}

// clientField is a field of CLIENT INFO's answer.
func clientField(info, name string) string {
	for _, f := range strings.Fields(info) {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			return v
		}
	}
	return ""
}

// A transaction that Redis aborts because the lease or P:meta changed after
// the fence read them writes nothing; the write is tried again and the
// fence then says what changed. A change that leaves the fence as it was
// (the lease keeper renewing the lease) costs only the try.
func TestBulkWriteAbortedByAChangeBeforeExec(t *testing.T) {
	ctx := context.Background()
	takeLease := func(other *redis.Client, prefix string) { other.Set(ctx, keys.Lease(prefix), "b 1", time.Minute) }
	renew := func(other *redis.Client, prefix string) { other.PExpire(ctx, keys.Lease(prefix), time.Minute) }
	t.Run("another takes the lease", func(t *testing.T) {
		s, other, prefix, _ := touchingBeforeExec(t, 0, takeLease)
		_, err := s.run(ctx, s.prepare(ctx, &guard{epoch: "e1", seq: 5}, newHashes(prefix, bulkHashes)))
		if !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("write = %v, want %v", err, ErrLeaseLost)
		}
		if n := other.Exists(ctx, keys.Entity(prefix, keys.Sessions, "0")).Val(); n != 0 {
			t.Error("the aborted transaction wrote")
		}
	})
	t.Run("our own renewal", func(t *testing.T) {
		s, other, prefix, h := touchingBeforeExec(t, 1, renew)
		if _, err := s.run(ctx, s.prepare(ctx, &guard{epoch: "e1", seq: 5}, newHashes(prefix, bulkHashes))); err != nil {
			t.Fatal(err)
		}
		if got := h.n.Load(); got != 2 {
			t.Errorf("%d transactions sent, want 2: the aborted one and its second try", got)
		}
		if n := other.ZCard(ctx, keys.Index(prefix, keys.Sessions)).Val(); n != bulkHashes {
			t.Errorf("%d index entries, want %d", n, bulkHashes)
		}
	})
	t.Run("in a chain, another takes the lease", func(t *testing.T) {
		s, other, prefix, _ := touchingBeforeExec(t, 2, takeLease)
		done, err := s.run(ctx, chain(t, s, prefix, 3, 0)...)
		if done != 1 || !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("write = %d, %v, want 1, %v", done, err, ErrLeaseLost)
		}
		if got := written(t, other, prefix, 3); !slices.Equal(got, []int64{bulkHashes, 0, 0}) {
			t.Errorf("hashes written, write by write: %v", got)
		}
	})
	t.Run("in a chain, our own renewal", func(t *testing.T) {
		s, other, prefix, h := touchingBeforeExec(t, 2, renew)
		if done, err := s.run(ctx, chain(t, s, prefix, 3, 0)...); done != 3 || err != nil {
			t.Fatalf("write = %d, %v", done, err)
		}
		// The first EXEC, the second (aborted), the one that ends the
		// third's transaction opened behind it, and the second and third
		// tried again.
		if got := h.n.Load(); got != 5 {
			t.Errorf("%d EXECs sent, want 5", got)
		}
		if got := written(t, other, prefix, 3); !slices.Equal(got, []int64{bulkHashes, bulkHashes, bulkHashes}) {
			t.Errorf("hashes written, write by write: %v", got)
		}
		if seq := other.HGet(ctx, keys.Meta(prefix), keys.MetaSeq).Val(); seq != "8" {
			t.Errorf("P:meta seq %s, want 8", seq)
		}
	})
	t.Run("always touched: the script", func(t *testing.T) {
		s, other, prefix, h := touchingBeforeExec(t, 0, renew)
		if _, err := s.run(ctx, s.prepare(ctx, &guard{epoch: "e1", seq: 5}, newHashes(prefix, bulkHashes))); err != nil {
			t.Fatal(err)
		}
		if got := h.n.Load(); got != bulkTries {
			t.Errorf("%d transactions sent, want %d", got, bulkTries)
		}
		if n := other.ZCard(ctx, keys.Index(prefix, keys.Sessions)).Val(); n != bulkHashes {
			t.Errorf("%d index entries, want %d: the script wrote them", n, bulkHashes)
		}
	})
}

// touchingBeforeExec returns a store on a Redis client of the test's own
// that runs touch, with another client, before the nth EXEC it sends
// (before each when n is 0), that other client, and the store's prefix.
func touchingBeforeExec(t *testing.T, n int32, touch func(other *redis.Client, prefix string)) (*store, *redis.Client, string, *touchBeforeExec) {
	rdb, prefix := MustRedis(t)
	other := redis.NewClient(rdb.Options())
	t.Cleanup(func() { other.Close() })
	s := bulkStore(t, rdb, prefix, nil)
	h := &touchBeforeExec{}
	h.touch = func() {
		if n == 0 || h.n.Load() == n {
			touch(other, prefix)
		}
	}
	rdb.AddHook(seeCommands(h.before))
	return s, other, prefix, h
}

// A user whose ACL grants the warmer's commands of old but not WATCH,
// MULTI or EXEC still gets its large writes, through the script, written
// once, and the log says once what to grant. Were MULTI refused with the
// commands sent behind it, Redis would run them outside the transaction
// and its fence: they must not go.
func TestBulkWriteWithoutTransactionsGoesAsTheScript(t *testing.T) {
	denials := []string{"-watch -multi -exec", "-multi", "-exec"}
	var users []string
	for i, d := range denials {
		users = append(users, fmt.Sprintf("user u%d on >pw ~* &* +@all %s", i, d))
	}
	srv := redistest.Start(t, redistest.Options{Config: users})
	for i, denied := range denials {
		for _, together := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/in one run: %v", denied, together), func(t *testing.T) {
				rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: fmt.Sprintf("u%d", i), Password: "pw"})
				defer rdb.Close()
				logs := &logBuffer{}
				prefix := fmt.Sprintf("t%d%v", i, together)
				s := bulkStore(t, rdb, prefix, slog.New(slog.NewTextHandler(logs, nil)))
				ctx := context.Background()
				wrs := chain(t, s, prefix, 3, 0)
				if together {
					if done, err := s.run(ctx, wrs...); done != 3 || err != nil {
						t.Fatalf("write = %d, %v", done, err)
					}
				} else {
					for i, wr := range wrs {
						if _, err := s.run(ctx, wr); err != nil {
							t.Fatalf("write %d: %v", i, err)
						}
					}
				}
				if got := written(t, rdb, prefix, 3); !slices.Equal(got, []int64{bulkHashes, bulkHashes, bulkHashes}) {
					t.Errorf("hashes written, write by write: %v", got)
				}
				if n := rdb.ZCard(ctx, keys.Index(prefix, keys.Sessions)).Val(); n != 3*bulkHashes {
					t.Errorf("%d index entries, want %d", n, 3*bulkHashes)
				}
				if n := len(logs.lines("+watch +unwatch +multi +exec")); n != 1 {
					t.Errorf("%d log lines name the commands to grant, want 1", n)
				}
				// Commands that ran outside the transaction would have moved
				// seq before the script's fence read it: the write would have
				// failed as stale.
				if seq := rdb.HGet(ctx, keys.Meta(prefix), keys.MetaSeq).Val(); seq != "8" {
					t.Errorf("P:meta seq %s, want 8", seq)
				}
			})
		}
	}
}

// A write of index entries alone goes as a transaction once it carries
// bulkArgs arguments (a build's indexes, writeIndexes), fenced as any:
// another's lease stops it whole.
func TestLargeIndexWritesGoAsTransactions(t *testing.T) {
	rdb, prefix := MustRedis(t)
	s := bulkStore(t, rdb, prefix, nil)
	ctx := context.Background()
	index := keys.Index(prefix, keys.Sessions)
	entries := func(n int) func(redis.Pipeliner) {
		return func(pipe redis.Pipeliner) {
			args := []any{"zadd", index}
			for i := range n {
				args = append(args, float64(i), fmt.Sprint(i))
			}
			pipe.Do(ctx, args...)
		}
	}
	if wr := s.prepare(ctx, &guard{epoch: "e1", seq: 5}, entries(100)); wr.tx != nil {
		t.Errorf("100 index entries went as a transaction")
	}
	big := bulkArgs / 2
	for _, c := range []struct {
		lease string
		want  error
		card  int64
	}{{s.lease, nil, int64(big)}, {"b 1", ErrLeaseLost, 0}} {
		rdb.Del(ctx, index)
		rdb.Set(ctx, keys.Lease(prefix), c.lease, time.Minute)
		rdb.HSet(ctx, keys.Meta(prefix), keys.MetaEpoch, "e1", keys.MetaSeq, 5)
		wr := s.prepare(ctx, &guard{epoch: "e1", seq: 5}, entries(big))
		if wr.tx == nil {
			t.Fatalf("%d index entries went as the script", big)
		}
		if _, err := s.run(ctx, wr); !errors.Is(err, c.want) {
			t.Errorf("lease %q: write = %v, want %v", c.lease, err, c.want)
		}
		if n := rdb.ZCard(ctx, index).Val(); n != c.card {
			t.Errorf("lease %q: %d entries, want %d", c.lease, n, c.card)
		}
	}
	// Where transactions cannot go (Redis 6, an ACL), the script takes
	// the commands of a build's indexes, each as large as writeIndexes
	// makes them.
	rdb.Del(ctx, index)
	rdb.Set(ctx, keys.Lease(prefix), s.lease, time.Minute)
	s.noBulk.Store(true)
	if _, err := s.run(ctx, s.prepare(ctx, &guard{epoch: "e1", seq: 5}, entries(indexCmdEntries))); err != nil {
		t.Fatalf("the script: %v", err)
	}
	if n := rdb.ZCard(ctx, index).Val(); n != indexCmdEntries {
		t.Errorf("the script wrote %d entries, want %d", n, indexCmdEntries)
	}
}

// A transaction whose EXEC was answered ran, though the connection failed
// on a later reply of the same round trip (the next write's opening): go-
// redis then gives EXEC that error too. One whose EXEC got no answer may
// have run or not.
func TestExecAnsweredRanThoughTheConnectionFailedAfter(t *testing.T) {
	ctx := context.Background()
	answered := redis.NewCmd(ctx, "exec")
	answered.SetVal([]any{int64(1), int64(1)})
	answered.SetErr(io.EOF)
	if err := execOutcome(ctx, nil, nil, answered); err != nil {
		t.Errorf("EXEC answered, then EOF: %v, want nil", err)
	}
	unanswered := redis.NewCmd(ctx, "exec")
	unanswered.SetErr(io.EOF)
	if err := execOutcome(ctx, nil, nil, unanswered); !errors.Is(err, errWrite) {
		t.Errorf("EXEC unanswered: %v, want errWrite", err)
	}
	failed := redis.NewCmd(ctx, "exec")
	failed.SetVal([]any{int64(1), errors.New("WRONGTYPE Operation against a key holding the wrong kind of value")})
	if err := execOutcome(ctx, nil, nil, failed); !errors.Is(err, errWrite) {
		t.Errorf("EXEC answered with a command's error: %v, want errWrite", err)
	}
}

// A build from nothing deletes a key before it writes the entity's hash
// only where Redis may hold something there: where the build's SCAN found
// keys of the kind (another epoch's, left unlisted or not ours), a new
// hash replaces what its key held; into a Redis that held no key of the
// kind, the DELs of keys that are not there (a tenth of a cold load's
// Redis time) are not sent. So in a transaction and in the script.
func TestBuildDeletesOnlyWhereRedisHeldKeys(t *testing.T) {
	for _, script := range []bool{false, true} {
		name := "transactions"
		if script {
			name = "script"
		}
		t.Run(name, func(t *testing.T) {
			for _, leftover := range []bool{false, true} {
				r := newRig(t)
				var stale string
				if leftover {
					// Not the session's (its id field says another), so
					// the build does not take it for one it wrote.
					stale = keys.Entity(r.prefix, keys.Sessions, r.sim.Sessions()[0].ID)
					r.rdb.HSet(r.ctx, stale, "id", "another", "stale", "x")
				}
				w := r.warmer("a")
				if script {
					w.store.noBulk.Store(true)
				}
				var dels, news, fresh, multis atomic.Int32
				r.rdb.AddHook(seeCommands(func(cmds []redis.Cmder) {
					for _, c := range cmds {
						args := c.Args()
						switch {
						case args[0] == "del" || args[0] == "DEL":
							dels.Add(1)
						case args[0] == "multi":
							multis.Add(1)
						case args[0] == "evalsha" || args[0] == "eval":
							for _, a := range args {
								switch a {
								case hashNewCmd:
									news.Add(1)
								case hashFreshCmd:
									fresh.Add(1)
								}
							}
						}
					}
				}))
				r.step(w)
				n := int32(len(r.sim.Sessions()) + len(r.sim.FilmIDs()) + len(r.sim.CinemaIDs()))
				switch {
				case leftover:
					h := r.hash(keys.Sessions, r.sim.Sessions()[0].ID)
					if h["stale"] != "" || h["id"] != r.sim.Sessions()[0].ID {
						t.Errorf("with a key of the kind there: the session's hash = %v, want only its own fields", h)
					}
					if dels.Load() == 0 && news.Load() == 0 {
						t.Error("with a key of the kind there: no DEL sent, and no new hash that deletes first")
					}
				case script:
					if news.Load() != 0 || fresh.Load() == 0 {
						t.Errorf("into an empty Redis: %d new hashes that delete first, %d that do not; want none and all", news.Load(), fresh.Load())
					}
				case multis.Load() == 0:
					t.Error("into an empty Redis: no transaction went (Redis before 7?), so no DEL could be seen in one")
				default:
					if dels.Load() != 0 {
						t.Errorf("into an empty Redis: %d DELs sent for %d entities, want none", dels.Load(), n)
					}
				}
				if whole, why := testkit.CacheWhole(t, r.rdb, r.prefix); !whole {
					t.Errorf("leftover %v: the cache is not whole: %s", leftover, why)
				}
			}
		})
	}
}
