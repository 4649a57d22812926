package chaos

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
)

// Tolerances of invariants 1 and 2.
const (
	// epochWindow: a warmer notices that Redis lost the cache at its next
	// heartbeat or write (every 10 s at most) and rebuilds; a reload that
	// Redis refused goes again once Redis takes writes, with backoff. Two
	// minutes after the loss's heal covers both with room.
	epochWindow = 2 * time.Minute

	// arrivalWindow: a later change of the same entity may overtake an
	// event between its arrival and the recorder's read of the hash; its
	// own event arrives right after, a few seconds at most when the
	// recorder is busy.
	arrivalWindow = 5 * time.Second

	// expiryWindow: a session's key expires in Redis at showtime + grace;
	// the warmer's removed_item (reason expired) follows on its next pass,
	// within a minute or two.
	expiryWindow = 2 * time.Minute

	// healSlack: the nemesis stamps a fault's End when its heal command
	// returned; Redis may take a moment more to serve again.
	healSlack = 5 * time.Second
)

// checkStream is invariant 1: within an epoch the stream's seqs are
// unique and without gaps, and a new epoch appears only after Redis
// really lost the cache.
func (c *checker) checkStream() []Violation {
	var vs []Violation

	// Epochs, in the order they first appeared (stream or pub/sub).
	var epochs []string
	firstAt := map[string]time.Time{}
	for _, e := range c.entries {
		if e.Epoch == "" {
			continue
		}
		if _, ok := firstAt[e.Epoch]; !ok {
			firstAt[e.Epoch] = e.At
			epochs = append(epochs, e.Epoch)
		}
	}
	for i, ep := range epochs {
		if i == 0 {
			continue // the cache was built from nothing at the warmer's start
		}
		at := firstAt[ep]
		if _, ok := c.lossNear(at, epochWindow); ok {
			continue
		}
		vs = append(vs, Violation{Invariant: invStream, At: at, What: fmt.Sprintf(
			"new epoch %s (after %s) with no data loss in progress or healed in the %v before",
			ep, epochs[i-1], epochWindow)})
	}

	// Seqs, per epoch, in the order the stream delivered them. Seqs that
	// come again one after another (a writer that went on from an older
	// P:meta) make one violation.
	type state struct {
		last int64
		ids  map[string]bool
	}
	type again struct {
		epoch          string
		from, to, last int64
		at             time.Time
		fromID, toID   string
	}
	var dup *again
	flush := func() {
		if dup == nil {
			return
		}
		what := fmt.Sprintf("epoch %s: seq %d arrived again (stream entry %s) after seq %d", dup.epoch, dup.from, dup.fromID, dup.last)
		if dup.to > dup.from {
			what = fmt.Sprintf("epoch %s: seqs %d to %d arrived again (stream entries %s to %s) after seq %d",
				dup.epoch, dup.from, dup.to, dup.fromID, dup.toID, dup.last)
		}
		if name, ok := c.lossNear(dup.at, epochWindow); ok {
			what += fmt.Sprintf("; Redis lost data (%s) and the epoch stayed", name)
		}
		vs = append(vs, Violation{Invariant: invStream, At: dup.at, What: what})
		dup = nil
	}
	seqs := map[string]*state{}
	firstStream := ""
	for _, e := range c.entries {
		if e.Source != "stream" || e.Epoch == "" {
			continue
		}
		if firstStream == "" {
			firstStream = e.Epoch
		}
		st := seqs[e.Epoch]
		if st == nil {
			flush()
			st = &state{ids: map[string]bool{}}
			seqs[e.Epoch] = st
			// The recorder reads the stream from its beginning and then
			// follows it by entry id, so it sees every later epoch from seq
			// 1; only the epoch in progress when it joined may have begun
			// before it (or been trimmed).
			if e.Epoch != firstStream && e.Seq != 1 {
				vs = append(vs, Violation{Invariant: invStream, At: e.At, What: fmt.Sprintf(
					"epoch %s's first stream entry is seq %d: seqs 1 to %d never arrived", e.Epoch, e.Seq, e.Seq-1)})
			}
			st.last = e.Seq
			st.ids[e.StreamID] = true
			continue
		}
		// The same stream entry read twice (the recorder resumed from an
		// older id after a reconnect) is the recorder's echo, not a
		// duplicate the warmer made.
		if e.StreamID != "" && st.ids[e.StreamID] {
			continue
		}
		st.ids[e.StreamID] = true
		if e.Seq <= st.last {
			if dup != nil && dup.epoch == e.Epoch && e.Seq == dup.to+1 {
				dup.to, dup.toID = e.Seq, e.StreamID
				continue
			}
			flush()
			dup = &again{epoch: e.Epoch, from: e.Seq, to: e.Seq, last: st.last, at: e.At, fromID: e.StreamID, toID: e.StreamID}
			continue
		}
		flush()
		if e.Seq > st.last+1 {
			missing := fmt.Sprintf("seq %d never arrived", st.last+1)
			if e.Seq > st.last+2 {
				missing = fmt.Sprintf("seqs %d to %d never arrived", st.last+1, e.Seq-1)
			}
			vs = append(vs, Violation{Invariant: invStream, At: e.At, What: fmt.Sprintf(
				"epoch %s: seq %d followed seq %d, %s", e.Epoch, e.Seq, st.last, missing)})
		}
		st.last = e.Seq
	}
	flush()
	return vs
}

// checkArrival is invariant 2: when an item event arrives, the hash the
// recorder reads at once holds the event's data or a newer state.
func (c *checker) checkArrival() []Violation {
	var vs []Violation

	// The moments the epoch changed, as the entries show it; and per
	// entity the item and removed_item events.
	var switches []time.Time
	prev := ""
	items := map[string][]arrival{}   // by kind/id
	removed := map[string][]arrival{} // by kind/id
	for _, e := range c.entries {
		if e.Epoch != "" {
			if prev != "" && e.Epoch != prev {
				switches = append(switches, e.At)
			}
			prev = e.Epoch
		}
		k := e.Kind + "/" + e.ID
		switch e.Event {
		case keys.EventItem:
			items[k] = append(items[k], arrival{at: e.At, seats: e.Seats})
		case keys.EventRemoved:
			removed[k] = append(removed[k], arrival{at: e.At, reason: reasonOf(e.Data)})
		}
	}
	epochChanged := func(from, to time.Time) bool {
		for _, t := range switches {
			if !t.Before(from) && !t.After(to) {
				return true
			}
		}
		return false
	}

	for _, e := range c.entries {
		if e.Event != keys.EventItem || e.HashAt.IsZero() {
			continue // not an item event, or the recorder did not read the key
		}
		k := e.Kind + "/" + e.ID
		horizon := e.HashAt.Add(arrivalWindow)
		if e.Hash == nil {
			if removedIn(removed[k], e.At, horizon, expiryWindow) {
				continue // removed right after: the removal overtook the event
			}
			if epochChanged(e.At.Add(-arrivalWindow), horizon) {
				continue // the cache was rebuilt meanwhile
			}
			if _, ok := c.lossNear(e.HashAt, healSlack); ok {
				continue // Redis is losing data: a restart, a flush, an eviction
			}
			vs = append(vs, Violation{Invariant: invArrival, At: e.At, What: fmt.Sprintf(
				"%s item event seq %d (%s) for %s arrived; the key was missing when read %v later",
				e.Kind, e.Seq, e.Source, e.ID, e.HashAt.Sub(e.At).Round(time.Millisecond))})
			continue
		}
		if e.Kind != string(keys.Sessions) || e.Seats == nil {
			continue
		}
		got, ok := seatsOf(e.Hash)
		if !ok {
			vs = append(vs, Violation{Invariant: invArrival, At: e.At, What: fmt.Sprintf(
				"session %s: event seq %d (%s) arrived; its hash has no seats_available (%q)",
				e.ID, e.Seq, e.Source, e.Hash["seats_available"])})
			continue
		}
		if got == *e.Seats {
			continue
		}
		// A newer value: one a later event of the same session announces,
		// arriving soon after; or one the truth had after the event arrived
		// (its event may have been lost to the recorder, as pub/sub can).
		newer := false
		for _, o := range items[k] {
			if o.seats != nil && *o.seats == got && !o.at.Before(e.At) && !o.at.After(horizon) {
				newer = true
				break
			}
		}
		if newer || heldSeatsAfter(c.truth[e.ID], got, e.At, horizon) {
			continue
		}
		if epochChanged(e.At.Add(-arrivalWindow), horizon) {
			continue
		}
		if _, ok := c.lossNear(e.HashAt, healSlack); ok {
			continue // a failover: the new master may lag the event the old one sent
		}
		vs = append(vs, Violation{Invariant: invArrival, At: e.At, What: fmt.Sprintf(
			"session %s: event seq %d (%s) says %d seats; the hash read %v later holds %d, a value no later event or truth has",
			e.ID, e.Seq, e.Source, *e.Seats, e.HashAt.Sub(e.At).Round(time.Millisecond), got)})
	}
	return vs
}

// heldSeatsAfter reports whether a Truth sample taken within [from, to]
// saw the session at v seats. Exact samples only: a value interpolated
// across the event's own moment could be the older one the event
// replaced.
func heldSeatsAfter(rs []truthRun, v int, from, to time.Time) bool {
	for _, r := range rs {
		if r.seats == v && overlaps(r.first, r.last, from, to) {
			return true
		}
	}
	return false
}

// removedIn reports whether a removed_item arrived within [from, to], or
// one for an expiry within [from, to+expiry].
func removedIn(rs []arrival, from, to time.Time, expiry time.Duration) bool {
	for _, r := range rs {
		if r.at.Before(from) {
			continue
		}
		if !r.at.After(to) || (r.reason == keys.ReasonExpired && !r.at.After(to.Add(expiry))) {
			return true
		}
	}
	return false
}

// arrival is an event of one entity as it arrived: an item's seats, a
// removal's reason.
type arrival struct {
	at     time.Time
	seats  *int
	reason string
}

// reasonOf reads a removed_item's reason from its JSON.
func reasonOf(data string) string {
	var ev struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal([]byte(data), &ev) != nil {
		return ""
	}
	return ev.Reason
}
