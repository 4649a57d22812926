package chaos

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// t0 is when the synthetic histories begin.
var t0 = time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)

// sec is a moment of a synthetic history, in seconds after t0.
func sec(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// The synthetic world: four sessions, two near their showtime whose seats
// sell every 10 and 15 seconds, two far and quiet; one cinema, one film.
// A Vista fault at 60-75 s and CLIENT PAUSE WRITE at 100-125 s, during
// which nothing is written and the writer's /healthz says 503.
var synthSessions = []struct {
	id       string
	showtime time.Time
	seats    func(t float64) int
}{
	{"s1", sec(7 * 60), func(t float64) int { return 100 - int(t/10) }},
	{"s2", sec(8 * 60), func(t float64) int { return 80 - int(t/15) }},
	{"s3", sec(3 * 3600), func(float64) int { return 200 }},
	{"s4", sec(26 * 3600), func(float64) int { return 300 }},
}

const (
	synthEnd        = 360.0 // seconds recorded
	synthPauseFrom  = 100.0 // redis-pause-write
	synthPauseTo    = 125.0
	synthUnhealthy  = 112.0 // the writer's /healthz says 503 from here ...
	synthHealthyAt  = 127.0 // ... until here
	synthFirstWrite = 2.0   // the first full load
)

// synthWrite is one write of the synthetic warmer: a session's seats at a
// moment.
type synthWrite struct {
	at    float64
	id    string
	seats int
}

// synthHistory is a history of a correct warmer in the synthetic world
// that writes each change lag after Vista made it. With a small lag it
// breaks no invariant.
func synthHistory(lag float64) *History {
	h := &History{
		Seed: 42, Duration: 2 * time.Minute, Start: t0, Calm: sec(synthPauseTo),
		MaxDrop: 0.5, NearEvery: 10 * time.Second, LeaseTTL: 10 * time.Second, Period: time.Minute,
		Faults: []Fault{
			{Name: "vista-5xx", Target: "vista", Start: sec(60), End: sec(75)},
			{Name: "redis-pause-write", Target: "redis", Start: sec(synthPauseFrom), End: sec(synthPauseTo)},
		},
	}

	// The truth, every 5 s.
	for t := 0.0; t <= synthEnd; t += 5 {
		tr := Truth{At: sec(t), Seats: map[string]int{}, Status: map[string]string{}, Showtime: map[string]time.Time{}}
		for _, s := range synthSessions {
			tr.Seats[s.id], tr.Status[s.id], tr.Showtime[s.id] = s.seats(t), "O", s.showtime
		}
		h.Truths = append(h.Truths, tr)
	}

	// The warmer's writes: the first load, then each change lag after it,
	// none while Redis refuses writes (those go at once after, the latest
	// value only).
	var writes []synthWrite
	for _, s := range synthSessions {
		writes = append(writes, synthWrite{synthFirstWrite, s.id, s.seats(synthFirstWrite)})
		last := map[float64]int{}
		for t := 1.0; t <= synthEnd; t++ {
			if s.seats(t) == s.seats(t-1) {
				continue
			}
			w := t + lag
			if w >= synthPauseFrom && w < synthPauseTo+1 {
				w = synthPauseTo + 1
			}
			if w <= synthEnd {
				last[w] = s.seats(t)
			}
		}
		for _, w := range slices.Sorted(maps.Keys(last)) {
			writes = append(writes, synthWrite{w, s.id, last[w]})
		}
	}
	slices.SortStableFunc(writes, func(a, b synthWrite) int {
		if a.at != b.at {
			return int((a.at - b.at) * 1000)
		}
		return strings.Compare(a.id, b.id)
	})
	state := func(t float64) map[string]int {
		m := map[string]int{}
		for _, w := range writes {
			if w.at <= t {
				m[w.id] = w.seats
			}
		}
		return m
	}
	hash := func(id string, seats int) Fields {
		return Fields{"id": id, "seats_available": strconv.Itoa(seats), "showtime": synthShowtime(id).Format(time.RFC3339)}
	}

	// The events: three full reloads at the first load, then an item
	// event per write, from the stream and from pub/sub, each with its
	// hash read at once.
	seq := int64(0)
	seqAt := map[float64]int64{}
	event := func(at float64, kind, ev, id string, seats *int) {
		seq++
		data := fmt.Sprintf(`{"seq":%d,"epoch":"e1","kind":%q,"event":%q,"id":%q}`, seq, kind, ev, id)
		for i, src := range []string{"pubsub", "stream"} {
			e := Entry{At: sec(at + 0.005*float64(i+1)), Source: src, Seq: seq, Epoch: "e1", Kind: kind, Event: ev, ID: id, Seats: seats, Data: data}
			if src == "stream" {
				e.StreamID = fmt.Sprintf("%d-0", seq)
			}
			if ev == "item" {
				read := at + 0.005*float64(i+1) + 0.002
				e.HashAt = sec(read)
				e.Hash = hash(id, state(read)[id])
			}
			h.Entries = append(h.Entries, e)
		}
		seqAt[at] = seq
	}
	for _, k := range []string{"cinemas", "films", "sessions"} {
		event(synthFirstWrite, k, "full_reload", "", nil)
	}
	for _, w := range writes {
		if w.at == synthFirstWrite {
			continue
		}
		n := w.seats
		event(w.at, "sessions", "item", w.id, &n)
	}

	// Snapshots every 5 s from the first load on; the heartbeat is
	// written every 5 s but while Redis refuses writes.
	beat := func(t float64) float64 {
		b := synthFirstWrite
		for x := synthFirstWrite; x <= t; x += 5 {
			if x < synthPauseFrom || x > synthPauseTo {
				b = x
			}
		}
		return b
	}
	for t := 5.0; t <= synthEnd; t += 5 {
		cur := state(t)
		s := Snapshot{At: sec(t),
			Meta: map[string]string{"schema": "1", "epoch": "e1", "seq": strconv.FormatInt(seqBefore(seqAt, t), 10),
				"heartbeat": sec(beat(t)).Format(time.RFC3339), "loaded:sessions": sec(synthFirstWrite).Format(time.RFC3339),
				"writer": "chaos-writer"},
			Index: map[string][]string{"sessions": {"s1", "s2", "s3", "s4"}, "cinemas": {"c1"}, "films": {"f1"}},
			Hashes: map[string]map[string]Fields{
				"sessions": {},
				"cinemas":  {"c1": {"id": "c1", "name": "Odeon"}},
				"films":    {"f1": {"id": "f1", "title": "Heat"}},
			},
		}
		for id, v := range cur {
			s.Hashes["sessions"][id] = hash(id, v)
		}
		h.Snapshots = append(h.Snapshots, s)
	}

	// Probes every 2 s, leases and metrics every second.
	for t := 1.0; t <= synthEnd; t += 2 {
		code := 200
		if t >= synthUnhealthy && t < synthHealthyAt {
			code = 503
		}
		h.Probes = append(h.Probes,
			Probe{At: sec(t), Instance: "writer", Path: "/healthz", Code: code},
			Probe{At: sec(t), Instance: "writer", Path: "/readyz", Code: 200, Body: `{"role":"writer","ready":true}`},
			Probe{At: sec(t), Instance: "standby", Path: "/healthz", Code: 200},
			Probe{At: sec(t), Instance: "standby", Path: "/readyz", Code: 200, Body: `{"role":"standby","ready":true}`})
	}
	written := int64(0)
	for t := 1.0; t <= synthEnd; t++ {
		if t < synthPauseFrom || t > synthPauseTo {
			written += 3
		}
		h.Leases = append(h.Leases, Lease{At: sec(t), Holder: "chaos-writer 9f2c"})
		h.Writes = append(h.Writes,
			Write{At: sec(t), Instance: "writer", Pid: 100, Held: true, Written: written},
			Write{At: sec(t), Instance: "standby", Pid: 200})
	}
	h.Processes = []Process{
		{Instance: "writer", Pid: 100, ExitCode: -1, RSSWarm: 50 << 20, RSSEnd: 55 << 20},
		{Instance: "standby", Pid: 200, ExitCode: -1, RSSWarm: 40 << 20, RSSEnd: 41 << 20},
	}
	return h
}

func synthShowtime(id string) time.Time {
	for _, s := range synthSessions {
		if s.id == id {
			return s.showtime
		}
	}
	return time.Time{}
}

func seqBefore(seqAt map[float64]int64, t float64) int64 {
	var n int64
	for at, s := range seqAt {
		if at <= t && s > n {
			n = s
		}
	}
	return n
}

// entryOf returns the first entry from src with seq.
func entryOf(tb testing.TB, h *History, src string, seq int64) *Entry {
	tb.Helper()
	for i := range h.Entries {
		if e := &h.Entries[i]; e.Source == src && e.Seq == seq {
			return e
		}
	}
	tb.Fatalf("no %s entry with seq %d", src, seq)
	return nil
}

// itemAt returns the seq of the item event of session id written at t.
func itemAt(tb testing.TB, h *History, id string, t float64) int64 {
	tb.Helper()
	for _, e := range h.Entries {
		if e.ID == id && e.Event == "item" && e.At.Sub(sec(t)).Abs() < 100*time.Millisecond {
			return e.Seq
		}
	}
	tb.Fatalf("no item event of %s at %vs", id, t)
	return 0
}

// snapshotAt returns the snapshot taken at t.
func snapshotAt(tb testing.TB, h *History, t float64) *Snapshot {
	tb.Helper()
	for i := range h.Snapshots {
		if h.Snapshots[i].At.Equal(sec(t)) {
			return &h.Snapshots[i]
		}
	}
	tb.Fatalf("no snapshot at %vs", t)
	return nil
}

// setSeats gives one session other seats in one snapshot, its hash a copy
// (the snapshots may share maps).
func setSeats(s *Snapshot, id string, seats int) {
	f := maps.Clone(s.Hashes["sessions"][id])
	f["seats_available"] = strconv.Itoa(seats)
	s.Hashes["sessions"] = maps.Clone(s.Hashes["sessions"])
	s.Hashes["sessions"][id] = f
}

// TestCheck shows, for each invariant, a history that keeps it and one
// that breaks it, caught by that invariant alone.
func TestCheck(t *testing.T) {
	for _, c := range []struct {
		name   string
		lag    float64                    // the warmer's lag behind Vista, seconds
		break_ func(testing.TB, *History) // nil: the history is clean
		want   int                        // the invariant that must catch it; 0: none may
		n      int                        // how many violations exactly; 0: any
	}{
		{name: "clean", lag: 3},
		{name: "clean/a stream entry read twice", lag: 3, break_: func(tb testing.TB, h *History) {
			e := *entryOf(tb, h, "stream", 10)
			e.At = e.At.Add(time.Second)
			h.Entries = append(h.Entries, e)
		}},
		{name: "clean/a new epoch after a flush", lag: 3, break_: func(tb testing.TB, h *History) {
			newEpoch(h, 200)
			h.Faults = append(h.Faults, Fault{Name: "redis-flushall", Target: "redis", Start: sec(199), End: sec(199.1), LosesData: true})
		}},
		{name: "clean/a key missing on arrival, removed right after", lag: 3, break_: func(tb testing.TB, h *History) {
			seq := itemAt(tb, h, "s2", 183)
			entryOf(tb, h, "stream", seq).Hash = nil
			h.Entries = append(h.Entries, Entry{At: sec(184), Source: "pubsub", Epoch: "e1", Kind: "sessions",
				Event: "removed_item", ID: "s2", Data: `{"event":"removed_item","id":"s2","reason":"gone"}`})
		}},
		{name: "clean/the cache short after Redis lost data", lag: 3, break_: func(tb testing.TB, h *History) {
			shrink(h, 200, 220)
			h.Faults = append(h.Faults, Fault{Name: "redis-oom-allkeys-lru", Target: "redis", Start: sec(195), End: sec(205), LosesData: true})
		}},
		{name: "clean/a value older than the recording", lag: 3, break_: func(tb testing.TB, h *History) {
			setSeats(snapshotAt(tb, h, 5), "s1", 101) // loaded before Vista's first sample
		}},
		{name: "clean/the truth itself went back", lag: 3, break_: func(tb testing.TB, h *History) {
			// s3 shows 199 from 250 s to 260 s because Vista said so.
			for _, tr := range h.Truths {
				if tr.At.After(sec(244)) && tr.At.Before(sec(256)) {
					tr.Seats["s3"] = 199
				}
			}
			for t := 250.0; t <= 260; t += 5 {
				setSeats(snapshotAt(tb, h, t), "s3", 199)
			}
		}},

		{name: "clean/a Redis stall too short to owe a 503", lag: 3, break_: func(tb testing.TB, h *History) {
			h.Faults = append(h.Faults, Fault{Name: "redis-debug-sleep", Target: "redis", Start: sec(200), End: sec(206)})
		}},
		{name: "clean/a partitioned standby says 503", lag: 3, break_: func(tb testing.TB, h *History) {
			h.Faults = append(h.Faults, Fault{Name: "partition-standby", Target: "standby", Start: sec(200), End: sec(225)})
			probeCodes(h, "standby", "/healthz", 209, 226, 503)
		}},
		{name: "clean/a clean hand-over", lag: 3, break_: func(tb testing.TB, h *History) {
			n := int64(0)
			for i := range h.Writes {
				w := &h.Writes[i]
				switch {
				case w.At.Before(sec(200)):
				case w.Instance == "writer":
					w.Held, w.Written = false, h.Writes[i-2].Written
				default:
					n += 3
					w.Held, w.Written = true, n
				}
			}
			for i := range h.Leases {
				if !h.Leases[i].At.Before(sec(200)) {
					h.Leases[i].Holder = "chaos-standby 77aa"
				}
			}
		}},

		{name: "1/a seq never arrived", lag: 3, want: invStream, break_: func(tb testing.TB, h *History) {
			e := entryOf(tb, h, "stream", 10)
			h.Entries = slices.DeleteFunc(h.Entries, func(x Entry) bool { return x.StreamID == e.StreamID })
		}},
		{name: "1/a seq twice", lag: 3, want: invStream, break_: func(tb testing.TB, h *History) {
			e := entryOf(tb, h, "stream", 12)
			e.Seq, e.StreamID = 11, "11-1"
		}},
		{name: "1/seqs again, one violation", lag: 3, want: invStream, n: 1, break_: func(tb testing.TB, h *History) {
			// A writer went on from an older P:meta: seqs 20 to 25 again.
			after := entryOf(tb, h, "stream", 25).At
			for seq := int64(20); seq <= 25; seq++ {
				e := *entryOf(tb, h, "stream", seq)
				e.StreamID, e.At = fmt.Sprintf("again-%d", seq), after.Add(time.Duration(seq)*time.Millisecond)
				h.Entries = append(h.Entries, e)
			}
			h.Faults = append(h.Faults, Fault{Name: "redis-failover", Target: "redis", Start: after.Add(-time.Second), End: after, LosesData: true})
		}},
		{name: "1/a new epoch without a loss", lag: 3, want: invStream, break_: func(tb testing.TB, h *History) {
			newEpoch(h, 200)
		}},

		{name: "2/the hash written after its event", lag: 3, want: invArrival, break_: func(tb testing.TB, h *History) {
			seq := itemAt(tb, h, "s1", 203)
			for _, src := range []string{"stream", "pubsub"} {
				e := entryOf(tb, h, src, seq)
				e.Hash = maps.Clone(e.Hash)
				e.Hash["seats_available"] = strconv.Itoa(*e.Seats + 1) // the value before
			}
		}},
		{name: "2/the key missing on arrival", lag: 3, want: invArrival, break_: func(tb testing.TB, h *History) {
			entryOf(tb, h, "stream", itemAt(tb, h, "s2", 183)).Hash = nil
		}},

		{name: "3/seats went back", lag: 3, want: invSeats, break_: func(tb testing.TB, h *History) {
			setSeats(snapshotAt(tb, h, 250), "s1", 100-20) // shown at 203 s
		}},
		{name: "3/a value Vista never had", lag: 3, want: invSeats, break_: func(tb testing.TB, h *History) {
			setSeats(snapshotAt(tb, h, 250), "s4", 1234)
		}},

		{name: "3/seats went back between two snapshots", lag: 3, want: invSeats, break_: func(tb testing.TB, h *History) {
			// Vista sold ten seats of s3 at 245 s; an event said so at
			// 250.5 s, yet the snapshots showed the old value until 270 s.
			for _, tr := range h.Truths {
				if !tr.At.Before(sec(245)) {
					tr.Seats["s3"] = 190
				}
			}
			n := 190
			h.Entries = append(h.Entries, Entry{At: sec(250.5), Source: "pubsub", Epoch: "e1", Kind: "sessions", Event: "item",
				ID: "s3", Seats: &n, HashAt: sec(250.5), Hash: map[string]string{"id": "s3", "seats_available": "190"}})
			for t := 275.0; t <= synthEnd; t += 5 {
				setSeats(snapshotAt(tb, h, t), "s3", 190)
			}
		}},

		{name: "4/a session lost", lag: 3, want: invFinal, break_: func(tb testing.TB, h *History) {
			s := &h.Snapshots[len(h.Snapshots)-1]
			s.Index = maps.Clone(s.Index)
			s.Index["sessions"] = []string{"s1", "s2", "s4"}
			s.Hashes["sessions"] = maps.Clone(s.Hashes["sessions"])
			delete(s.Hashes["sessions"], "s3")
		}},
		{name: "4/an index names a missing hash", lag: 3, want: invFinal, break_: func(tb testing.TB, h *History) {
			s := &h.Snapshots[len(h.Snapshots)-1]
			s.Hashes = maps.Clone(s.Hashes)
			s.Hashes["films"] = map[string]Fields{}
		}},
		{name: "4/stale seats at the end", lag: 3, want: invFinal, break_: func(tb testing.TB, h *History) {
			// Vista sold ten seats of s3 at 200 s; Redis never learnt.
			for _, tr := range h.Truths {
				if !tr.At.Before(sec(200)) {
					tr.Seats["s3"] = 190
				}
			}
		}},
		{name: "4/the run ended too soon", lag: 3, want: invFinal, break_: func(tb testing.TB, h *History) {
			h.Snapshots = slices.DeleteFunc(h.Snapshots, func(s Snapshot) bool { return s.At.After(sec(240)) })
		}},

		{name: "5/the cache emptied", lag: 3, want: invDrop, break_: func(tb testing.TB, h *History) {
			shrink(h, 200, 220)
		}},

		{name: "6/near sessions stale", lag: 17, want: invStaleness},

		{name: "7/healthz 200 while writes stop", lag: 3, want: invHealth, break_: func(tb testing.TB, h *History) {
			for i := range h.Probes {
				h.Probes[i].Code = 200
			}
		}},
		{name: "7/healthz not 200 after the heal", lag: 3, want: invHealth, break_: func(tb testing.TB, h *History) {
			probeCodes(h, "writer", "/healthz", synthPauseTo, 200, 503)
		}},
		{name: "7/readyz 200 with an old heartbeat", lag: 3, want: invHealth, break_: func(tb testing.TB, h *History) {
			for i := range h.Snapshots {
				if s := &h.Snapshots[i]; s.At.After(sec(200)) && s.At.Before(sec(290)) {
					s.Meta = maps.Clone(s.Meta)
					s.Meta["heartbeat"] = sec(197).Format(time.RFC3339)
				}
			}
		}},

		{name: "7/a partitioned standby says 200", lag: 3, want: invHealth, break_: func(tb testing.TB, h *History) {
			h.Faults = append(h.Faults, Fault{Name: "partition-standby", Target: "standby", Start: sec(200), End: sec(225)})
		}},

		{name: "8/two processes write at once", lag: 3, want: invFence, break_: func(tb testing.TB, h *History) {
			n := int64(0)
			for i := range h.Writes {
				if w := &h.Writes[i]; w.Instance == "standby" && w.At.After(sec(199)) && w.At.Before(sec(211)) {
					n++
					w.Held, w.Written = true, n
				}
			}
		}},

		{name: "9/a crash", lag: 3, want: invSurvive, break_: func(tb testing.TB, h *History) {
			h.Processes[1].Crashed, h.Processes[1].ExitCode, h.Processes[1].Output = true, 2, "panic: boom\n"
		}},
		{name: "9/RSS grew", lag: 3, want: invSurvive, break_: func(tb testing.TB, h *History) {
			h.Processes[0].RSSEnd = 2 * h.Processes[0].RSSWarm
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := synthHistory(c.lag)
			if c.break_ != nil {
				c.break_(t, h)
			}
			vs := Check(h)
			if c.n > 0 && len(vs) != c.n {
				t.Errorf("Check = %d violations, want %d:\n%s", len(vs), c.n, Report(h, vs))
			}
			if c.want == 0 {
				if len(vs) > 0 {
					t.Errorf("Check = %d violations, want none:\n%s", len(vs), Report(h, vs))
				}
				return
			}
			if len(vs) == 0 {
				t.Fatalf("Check = no violations, want invariant %d's", c.want)
			}
			for _, v := range vs {
				if v.Invariant != c.want {
					t.Errorf("Check: invariant %d at %s: %s; want invariant %d alone", v.Invariant, v.At.Format("15:04:05.0"), v.What, c.want)
				}
			}
			if !slices.IsSortedFunc(vs, func(a, b Violation) int { return a.At.Compare(b.At) }) {
				t.Errorf("Check: violations not in time order")
			}
			t.Logf("%d: %s", vs[0].Invariant, vs[0].What)
		})
	}
}

// newEpoch rebuilds the synthetic cache at t: from then on the events
// belong to epoch e2, which begins with three full reloads.
func newEpoch(h *History, t float64) {
	var out []Entry
	base := int64(-1)
	for _, e := range h.Entries {
		if e.At.Before(sec(t)) {
			out = append(out, e)
			continue
		}
		if base < 0 {
			base = e.Seq
			for i, k := range []string{"cinemas", "films", "sessions"} {
				for _, src := range []string{"pubsub", "stream"} {
					out = append(out, Entry{At: sec(t - 0.5), Source: src, Seq: int64(i + 1), Epoch: "e2", Kind: k,
						Event: "full_reload", StreamID: fmt.Sprintf("e2-%d", i+1)})
				}
			}
		}
		e.Epoch, e.Seq = "e2", e.Seq-base+4
		if e.Source == "stream" {
			e.StreamID = fmt.Sprintf("e2-%d", e.Seq)
		}
		out = append(out, e)
	}
	h.Entries = out
}

// probeCodes sets the code of inst's answers on path within [from, to) s.
func probeCodes(h *History, inst, path string, from, to float64, code int) {
	for i, p := range h.Probes {
		if p.Instance == inst && p.Path == path && !p.At.Before(sec(from)) && p.At.Before(sec(to)) {
			h.Probes[i].Code = code
		}
	}
}

// shrink leaves the snapshots within [from, to] s holding session s1
// alone.
func shrink(h *History, from, to float64) {
	for i := range h.Snapshots {
		s := &h.Snapshots[i]
		if s.At.Before(sec(from)) || s.At.After(sec(to)) {
			continue
		}
		s.Index = maps.Clone(s.Index)
		s.Index["sessions"] = []string{"s1"}
		s.Hashes = maps.Clone(s.Hashes)
		s.Hashes["sessions"] = map[string]Fields{"s1": s.Hashes["sessions"]["s1"]}
	}
}

// TestReport checks what the report says: the seed, the table of faults
// and of invariants, the violations with their moments, the command that
// replays the seed.
func TestReport(t *testing.T) {
	h := synthHistory(3)
	h.Processes[1].Crashed, h.Processes[1].ExitCode = true, 2
	entryOf(t, h, "stream", itemAt(t, h, "s2", 183)).Hash = nil
	vs := Check(h)
	r := Report(h, vs)
	t.Logf("Report:\n%s", r)
	rows := map[string]string{ // a table row's start, and its last column
		"vista-5xx":            "1",
		"redis-pause-write":    "1",
		"1  stream seqs":       "0",
		"2  an event's data":   "1",
		"3  seats never":       "0",
		"7  /healthz":          "0",
		"9  processes survive": "1",
	}
	for start, count := range rows {
		found := false
		for _, line := range strings.Split(r, "\n") {
			if f := strings.Fields(line); strings.HasPrefix(strings.TrimSpace(line), start) && len(f) > 0 {
				found = true
				if f[len(f)-1] != count {
					t.Errorf("Report's row %q ends in %s, want %s", line, f[len(f)-1], count)
				}
			}
		}
		if !found {
			t.Errorf("Report has no row %q", start)
		}
	}
	for _, want := range []string{
		"seed 42",
		"2m of faults",
		"[2] +3m3s",
		"key was missing",
		"faults then: none",
		"stream seq",
		"[9]",
		"standby (pid 200) crashed, exit status 2",
		"6: near-window staleness p99",
		"make chaos SEED=42 DURATION=2m\n",
	} {
		if !strings.Contains(r, want) {
			t.Errorf("Report lacks %q", want)
		}
	}

	// A short, clean history: no violations, and too little to judge
	// staleness by.
	h = &History{Seed: 7, Duration: 90 * time.Second, Start: t0}
	r = Report(h, nil)
	for _, want := range []string{"seed 7", "(none)", "no violations", "too few calm near-window changes", "make chaos SEED=7 DURATION=1m30s"} {
		if !strings.Contains(r, want) {
			t.Errorf("Report of an empty history lacks %q:\n%s", want, r)
		}
	}
}

func TestFmtDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{2 * time.Minute, "2m"},
		{time.Hour, "1h"},
		{90 * time.Second, "1m30s"},
		{90 * time.Minute, "1h30m"},
		{45 * time.Second, "45s"},
	} {
		if got := fmtDuration(c.d); got != c.want {
			t.Errorf("fmtDuration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

// TestCheckSavedHistory checks a history make chaos kept
// (bin/chaos/*/history.json.gz) again, without running the world: after
// a change to the checker, or to look at a failing seed's violations.
//
//	CHAOS_HISTORY=bin/chaos/single-seed-1/history.json.gz go test -run TestCheckSavedHistory -v ./internal/chaos
func TestCheckSavedHistory(t *testing.T) {
	p := os.Getenv("CHAOS_HISTORY")
	if p == "" {
		t.Skip("CHAOS_HISTORY names a history.json.gz that make chaos kept")
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join("..", "..", p) // go test runs in the package's folder
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var h History
	if err := json.NewDecoder(z).Decode(&h); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	vs := Check(&h)
	t.Logf("%s:\n%s", p, Report(&h, vs))
	if len(vs) > 0 {
		t.Errorf("%d violations", len(vs))
	}
}
