package main

import (
	"bytes"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
)

// change is one seat change made in the simulated Vista, with the answer
// that first carried it and the event that announced it.
type change struct {
	id      string
	seats   int
	at      time.Time // just before SetSeats
	round   int
	expired bool // its round gave up waiting for it

	answered time.Time // the flush of the first answer that carried seats for id
	via      string    // that answer's endpoint: seats, window or sessions
	rows     int       // the rows that answer carried, all sessions
	received time.Time // the subscriber's receipt of its item event
	done     bool
}

// sample is a change whose answer and event both came.
type sample struct {
	id, via  string
	seats    int
	round    int
	rows     int // in the answer
	changed  time.Time
	answered time.Time
	received time.Time
}

func (s sample) latency() time.Duration { return s.received.Sub(s.answered) }

// row is a session's seats as an answer carried them.
type row struct {
	id    string
	seats int
}

// ledger matches the seat changes made in the simulator with the answers
// that carried them and the events that announced them. The answer
// recorder and the subscriber feed it from their own goroutines, in
// whichever order they get there: an event may be taken in before the
// answer it came from is noted.
type ledger struct {
	pool map[string]bool // the sessions the rounds change; never written after newLedger

	mu      sync.Mutex
	latest  map[string]*change // by session id: its last change
	left    int                // changes of the current round not yet done
	roundOK chan struct{}      // closed when left reaches 0
	samples []sample
	tally
}

// tally counts what did not match, for the report.
type tally struct {
	unexpected   int // seat events of a pool session for no change of ours (a value not set, or a second event)
	late         int // events for a change whose round had given up
	noAnswer     int // changes no answer carried before their round gave up
	noEvent      int // changes carried by an answer whose event never came
	eventNoReply int // changes whose event came but no answer was seen carrying them
	eventsSeen   int // item events of sessions received, ours or not
}

func newLedger(ids []string) *ledger {
	l := &ledger{pool: make(map[string]bool, len(ids)), latest: make(map[string]*change, len(ids))}
	for _, id := range ids {
		l.pool[id] = true
	}
	return l
}

// begin notes a round of changes, before they are made in the simulator,
// and returns a channel closed once each has its answer and its event.
func (l *ledger) begin(round int, at time.Time, rows []row) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.left = len(rows)
	l.roundOK = make(chan struct{})
	for _, r := range rows {
		l.latest[r.id] = &change{id: r.id, seats: r.seats, at: at, round: round}
	}
	if l.left == 0 {
		close(l.roundOK)
	}
	return l.roundOK
}

// end gives up on the round's changes that are not done, and counts them
// by what was missing.
func (l *ledger) end(round int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.latest {
		if c.round != round || c.done || c.expired {
			continue
		}
		c.expired = true
		switch {
		case c.answered.IsZero() && c.received.IsZero():
			l.noAnswer++
		case c.received.IsZero():
			l.noEvent++
		default:
			l.eventNoReply++
		}
	}
	l.left = 0
}

// answer notes an answer flushed at at, from endpoint via, with the pool's
// rows it carried and the number of rows in all.
func (l *ledger) answer(at time.Time, via string, rows []row, total int) {
	if len(rows) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range rows {
		c := l.latest[r.id]
		if c == nil || c.expired || !c.answered.IsZero() || c.seats != r.seats || !at.After(c.at) {
			continue
		}
		c.answered, c.via, c.rows = at, via, total
		l.complete(c)
	}
}

// event notes an event received at at.
func (l *ledger) event(at time.Time, ev keys.Event) {
	if ev.Kind != keys.Sessions || ev.Event != keys.EventItem {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.eventsSeen++
	if !l.pool[ev.ID] || ev.SeatsAvailable == nil || !slices.Contains(ev.Changed, keys.FieldSeatsAvailable) {
		return
	}
	c := l.latest[ev.ID]
	switch {
	case c == nil || c.seats != *ev.SeatsAvailable || !c.received.IsZero():
		l.unexpected++
	case c.expired:
		l.late++
	default:
		c.received = at
		l.complete(c)
	}
}

func (l *ledger) complete(c *change) {
	if c.done || c.answered.IsZero() || c.received.IsZero() {
		return
	}
	c.done = true
	l.samples = append(l.samples, sample{id: c.id, via: c.via, seats: c.seats, round: c.round, rows: c.rows,
		changed: c.at, answered: c.answered, received: c.received})
	if l.left--; l.left == 0 {
		close(l.roundOK)
	}
}

// snapshot returns a copy of the samples and the counts.
func (l *ledger) snapshot() ([]sample, tally) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.samples), l.tally
}

// carried returns the rows of an OData Sessions answer whose ID is in pool,
// and how many rows it holds in all.
// It scans for the keys rather than decoding the JSON: it runs in the
// benchmark's process, on the cores the warmer and Redis use while they
// handle this very answer, and a page may hold a thousand rows. The
// simulator writes each row's fields in one order, ID first and no
// object nested, so a row's SeatsAvailable lies between its ID and the
// next row's.
func carried(body []byte, pool map[string]bool) (out []row, total int) {
	const idKey, seatsKey = `"ID":"`, `"SeatsAvailable":`
	for {
		i := bytes.Index(body, []byte(idKey))
		if i < 0 {
			return out, total
		}
		body = body[i+len(idKey):]
		j := bytes.IndexByte(body, '"')
		if j < 0 {
			return out, total
		}
		total++
		id := body[:j]
		body = body[j+1:]
		if !pool[string(id)] {
			continue
		}
		rest := body
		if k := bytes.Index(rest, []byte(idKey)); k >= 0 {
			rest = rest[:k]
		}
		k := bytes.Index(rest, []byte(seatsKey))
		if k < 0 {
			continue
		}
		n, ok := leadingInt(rest[k+len(seatsKey):])
		if ok {
			out = append(out, row{id: string(id), seats: n})
		}
	}
}

func leadingInt(b []byte) (int, bool) {
	n, digits := 0, 0
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
		digits++
	}
	return n, digits > 0
}

// quantile returns the q-quantile of sorted by the nearest rank: the
// smallest value with at least q of the values at or below it.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
