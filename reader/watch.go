package reader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// Position is where a Watch stands in the events: the epoch and seq of
// the last event it handed on, and that event's stream entry. A Watch
// from a Position goes on with the event after it:
//
//   - the zero Position: the next event published, from now on;
//   - a Position a Watch handed on (StreamID set): the stream entry after
//     StreamID;
//   - an Epoch and a Seq without a StreamID (After returns one): the
//     events of that epoch after Seq, caught up from the oldest entry the
//     stream holds, so Seq 0 replays all of the epoch the stream still
//     holds. Entries of the epochs before it are skipped.
type Position struct {
	Epoch    string
	Seq      int64
	StreamID string
}

// After returns the Position after seq in the current epoch (P:meta's):
// a Watch from it hands on the events after seq, first those the stream
// still holds, so After(ctx, 0) replays the whole epoch as far as the
// stream goes back. With no P:meta (no warmer has written the prefix yet,
// or Redis lost it), there is no epoch to replay: it returns the zero
// Position, and the epoch to come starts with the next event.
func (r *Reader) After(ctx context.Context, seq int64) (Position, error) {
	epoch, err := r.rdb.HGet(ctx, keys.Meta(r.prefix), keys.MetaEpoch).Result()
	if errors.Is(err, redis.Nil) || (err == nil && epoch == "") {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("reader: read the epoch: %w", err)
	}
	return Position{Epoch: epoch, Seq: max(seq, 0)}, nil
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
	// Data is the event's JSON as the warmer published it (the stream
	// entry's data), for a program that hands events on unchanged.
	Data []byte `json:"-"`
}

// watchBlock is how long one XREAD waits for events; a context that ends
// is noticed within it.
const watchBlock = 2 * time.Second

// Watch follows the event stream P:events from a Position (which says
// where it starts: from now, after a handed-on event, or after a seq of an
// epoch) and hands each event to handle, in seq order, until ctx ends or handle returns an
// error (which Watch returns). Within an epoch no event is handed on twice
// and none is skipped without an event marked Resync: a dropped
// connection or a restarted Redis is waited out and the stream read on
// from where the Watch stood.
func (r *Reader) Watch(ctx context.Context, from Position, handle func(Event) error) error {
	pos := from
	last := from.StreamID
	// Entries up to older, of another epoch than from's, were written
	// before from's epoch began: a catch-up skips them.
	var older string
	switch {
	case last != "":
	case from.Epoch != "":
		last = "0" // catch up from the oldest entry, skipping what was seen
		var err error
		if older, err = r.before(ctx, from.Epoch); err != nil {
			return err
		}
	case from.Seq > 0:
		last = "0"
	default:
		id, err := r.newest(ctx)
		if err != nil {
			return err
		}
		last = id
	}
	retry := &backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: 5 * time.Second}
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
			case <-time.After(retry.NextBackOff()):
			}
			continue
		}
		retry.Reset()
		for _, s := range res {
			for _, msg := range s.Messages {
				last = msg.ID
				data, _ := msg.Values["data"].(string)
				var ev keys.Event
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					return fmt.Errorf("reader: stream entry %s: %w", msg.ID, err)
				}
				out := Event{Event: ev, Data: []byte(data)}
				switch {
				case pos.Epoch == "":
					// The first event of a Watch from nothing.
				case ev.Epoch != pos.Epoch && older != "" && !streamAfter(msg.ID, older):
					continue // an epoch before the one caught up on
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

// before returns the newest stream entry written before epoch began,
// as far as it can tell: when epoch is still P:meta's after the stream's
// newest entry is read, every entry up to that one of another epoch came
// before it. When epoch is not (or no longer) the current one, it returns
// "" and a catch-up skips nothing: an entry of another epoch may then be
// newer, and is handed on marked Resync.
func (r *Reader) before(ctx context.Context, epoch string) (string, error) {
	id, err := r.newest(ctx)
	if err != nil {
		return "", err
	}
	cur, err := r.rdb.HGet(ctx, keys.Meta(r.prefix), keys.MetaEpoch).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("reader: read the epoch: %w", err)
	}
	if cur != epoch || id == "0" {
		return "", nil
	}
	return id, nil
}

// streamAfter reports whether stream entry id a comes after b.
func streamAfter(a, b string) bool {
	ams, aseq := streamID(a)
	bms, bseq := streamID(b)
	return ams > bms || (ams == bms && aseq > bseq)
}

// streamID splits a stream entry id, "ms-seq".
func streamID(id string) (ms, seq uint64) {
	l, r, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(l, 10, 64)
	seq, _ = strconv.ParseUint(r, 10, 64)
	return ms, seq
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
