package warmer

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// publisher numbers events and queues them, with the writes they describe,
// into one transaction. Numbers are committed only when the transaction is.
type publisher struct {
	prefix    string
	epoch     string
	maxLen    int64
	seq       int64 // last number handed out in this transaction
	published map[keys.Kind]map[string]int
	sharded   bool // SPUBLISH, not PUBLISH
}

func (p *publisher) publish(ctx context.Context, pipe redis.Pipeliner, ev keys.Event) {
	p.seq++
	ev.Seq = p.seq
	ev.Epoch = p.epoch
	if bug("dropevent") && p.seq%100 == 0 {
		return // numbered, never sent
	}
	data, _ := json.Marshal(ev) // a struct of strings and ints: cannot fail
	if p.sharded {
		pipe.SPublish(ctx, keys.Channel(p.prefix, ev.Kind), data)
	} else {
		pipe.Publish(ctx, keys.Channel(p.prefix, ev.Kind), data)
	}
	pipe.XAdd(ctx, &redis.XAddArgs{
		Stream: keys.Stream(p.prefix),
		MaxLen: p.maxLen,
		Approx: true,
		Values: []any{"seq", strconv.FormatInt(ev.Seq, 10), "kind", string(ev.Kind), "event", ev.Event, "data", data},
	})
	if p.published == nil {
		p.published = map[keys.Kind]map[string]int{}
	}
	if p.published[ev.Kind] == nil {
		p.published[ev.Kind] = map[string]int{}
	}
	p.published[ev.Kind][ev.Event]++
}

// stamp formats an instant the way every time field of the cache is written.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
