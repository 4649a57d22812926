package warmer

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// recorder is a go-redis hook that keeps every command sent, including
// those inside pipelines and transactions.
type recorder struct {
	mu   sync.Mutex
	on   bool
	cmds [][]any
}

func (r *recorder) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *recorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.keep(cmd)
		return next(ctx, cmd)
	}
}

func (r *recorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			r.keep(c)
		}
		return next(ctx, cmds)
	}
}

func (r *recorder) keep(cmd redis.Cmder) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.on {
		r.cmds = append(r.cmds, slices.Clone(cmd.Args()))
	}
}

func (r *recorder) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on, r.cmds = true, nil
}

func TestUnchangedReloadWritesNoData(t *testing.T) {
	r := newRig(t)
	rec := &recorder{}
	r.rdb.AddHook(rec)
	w := r.warmer("a")
	r.step(w)

	rec.start()
	for _, k := range keys.Kinds {
		if err := w.Reload(r.ctx, k); err != nil {
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
		case "evalsha", "eval":
			// the hash script: script, numkeys, keys..., then per key: expireat,
			// nset, ndel, nwhole, and the arguments.
			nkeys, _ := strconv.Atoi(fmt.Sprint(args[2]))
			a := 3 + nkeys
			for _, key := range args[3 : 3+nkeys] {
				nset, _ := strconv.Atoi(fmt.Sprint(args[a+1]))
				ndel, _ := strconv.Atoi(fmt.Sprint(args[a+2]))
				nwhole, _ := strconv.Atoi(fmt.Sprint(args[a+3]))
				if ndel != 0 || nwhole != 0 {
					t.Errorf("an unchanged reload deleted fields of %s or sent it whole: %v", key, args[a:a+4+nset+ndel+nwhole])
				}
				for i := a + 4; i < a+4+nset; i += 2 {
					if f := args[i].(string); !allowed[f] {
						t.Errorf("an unchanged reload wrote %s %s", key, f)
					}
				}
				a += 4 + nset + ndel + nwhole
				confirmed++
			}
		case "del", "zadd", "sadd", "zrem", "srem", "hdel":
			t.Errorf("an unchanged reload sent %v", args[:2])
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
