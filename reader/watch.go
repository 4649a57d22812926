package reader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// Position is where a Watch stands in the events: the epoch and seq of
// the last event it handed on, and that event's stream entry. The zero
// Position starts with the next event published.
type Position struct {
	Epoch    string
	Seq      int64
	StreamID string
}

// Event is what Watch hands on: a change event of the contract, marked
// Resync when events were missed before it.
type Event struct {
	keys.Event
	// Resync is set on the first event after events were missed: a gap in
	// seq (the stream was trimmed past the position) or a new epoch (the
	// cache was built anew). What the reader holds may be stale: read it
	// again from the keys.
	Resync bool
	// Position is where the Watch stands once this event is handed on:
	// a Watch started from it goes on with the next event.
	Position Position
}

// watchBlock is how long one XREAD waits for events; a context that ends
// is noticed within it.
const watchBlock = 2 * time.Second

// Watch follows the event stream P:events from a Position and hands each
// event to handle, in seq order, until ctx ends or handle returns an
// error (which Watch returns). Within an epoch no event is handed on twice
// and none is skipped without an event marked Resync: a dropped
// connection or a restarted Redis is waited out and the stream read on
// from where the Watch stood.
func (r *Reader) Watch(ctx context.Context, from Position, handle func(Event) error) error {
	pos := from
	last := from.StreamID
	if last == "" {
		if from.Seq > 0 {
			last = "0" // catch up from the oldest entry, skipping what was seen
		} else {
			id, err := r.newest(ctx)
			if err != nil {
				return err
			}
			last = id
		}
	}
	backoff := 100 * time.Millisecond
	stream := keys.Stream(r.prefix)
	for {
		res, err := r.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{stream, last}, Count: 500, Block: watchBlock}).Result()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, redis.Nil):
			continue // nothing within the block time
		case err != nil:
			// The connection dropped, or Redis restarts: wait, then read
			// on from the same entry.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		for _, s := range res {
			for _, msg := range s.Messages {
				last = msg.ID
				data, _ := msg.Values["data"].(string)
				var ev keys.Event
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					return fmt.Errorf("reader: stream entry %s: %w", msg.ID, err)
				}
				out := Event{Event: ev}
				switch {
				case pos.Epoch == "":
					// The first event of a Watch from nothing.
				case ev.Epoch != pos.Epoch:
					out.Resync = true
				case ev.Seq <= pos.Seq:
					continue // handed on already (a catch-up from an older entry)
				case ev.Seq != pos.Seq+1:
					out.Resync = true
				}
				pos = Position{Epoch: ev.Epoch, Seq: ev.Seq, StreamID: msg.ID}
				out.Position = pos
				if err := handle(out); err != nil {
					return err
				}
			}
		}
	}
}

// newest returns the id of the stream's newest entry, "0" when it is
// empty: a Watch from nothing starts after it.
func (r *Reader) newest(ctx context.Context) (string, error) {
	msgs, err := r.rdb.XRevRangeN(ctx, keys.Stream(r.prefix), "+", "-", 1).Result()
	if err != nil {
		return "", err
	}
	if len(msgs) == 0 {
		return "0", nil
	}
	return msgs[0].ID, nil
}
