package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// How often the recorder looks.
const (
	snapshotEvery = time.Second
	probeEvery    = 500 * time.Millisecond
	truthEvery    = time.Second
	probeTimeout  = 3 * time.Second
	// hashPatience is how long the recorder keeps trying to read an
	// event's hash while Redis does not answer; an entry whose hash could
	// not be read at all has a zero HashAt.
	hashPatience = 30 * time.Second
)

// Recorder writes down, from outside, what readers and operators saw: the
// events (from the stream and from pub/sub, each with its hash read at
// once), snapshots of the cache, the warmers' probes and metrics, the
// lease, and the simulator's truth. It talks to Redis straight, not
// through the proxies, and keeps going while Redis is killed or paused.
type Recorder struct {
	w   *World
	h   *History
	rdb redis.UniversalClient

	mu   sync.Mutex // guards h
	lost atomic.Bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ps     *redis.PubSub

	// The last snapshot and truth, whose unchanged parts the next ones
	// share, and the ids and field names each loop has seen, kept once:
	// an hour of snapshots then fits in memory.
	prevSnap   *Snapshot
	prevTruth  *Truth
	snapNames  interner
	truthNames interner
}

// interner keeps one copy of each string it is given: the ids and field
// names that every snapshot and truth repeats.
type interner map[string]string

func (in interner) get(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	in[s] = s
	return s
}

// Record starts recording w into h until Stop.
func Record(w *World, h *History) *Recorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Recorder{w: w, h: h, rdb: w.AdminClient(), ctx: ctx, cancel: cancel,
		snapNames: interner{}, truthNames: interner{}}
	loops := []func(){r.stream, r.pubsub, r.snapshots, r.probes, r.leases, r.truths}
	r.wg.Add(len(loops))
	for _, loop := range loops {
		go func() {
			defer r.wg.Done()
			loop()
		}()
	}
	return r
}

// Stop ends the recording and waits for every loop.
func (r *Recorder) Stop() {
	r.cancel()
	r.mu.Lock()
	if r.ps != nil {
		r.ps.Close() // a blocked receive ends
	}
	r.mu.Unlock()
	r.wg.Wait()
	r.rdb.Close()
}

// MarkLost notes that Redis itself just lost data: the next snapshot says
// so.
func (r *Recorder) MarkLost() { r.lost.Store(true) }

// every runs f every d until the recording stops.
func (r *Recorder) every(d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// pause waits d, or less when the recording stops; it reports whether to
// go on.
func (r *Recorder) pause(d time.Duration) bool {
	select {
	case <-r.ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func (r *Recorder) add(f func(h *History)) {
	r.mu.Lock()
	f(r.h)
	r.mu.Unlock()
}

// ---- events ----

// stream follows P:events with XREAD BLOCK from its first entry.
func (r *Recorder) stream() {
	key := keys.Stream(r.w.Prefix)
	last := "0"
	for r.ctx.Err() == nil {
		res, err := r.rdb.XRead(r.ctx, &redis.XReadArgs{Streams: []string{key, last}, Count: 500, Block: time.Second}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if !r.pause(200 * time.Millisecond) {
				return
			}
			continue
		}
		at := time.Now()
		var batch []Entry
		for _, s := range res {
			for _, m := range s.Messages {
				e := Entry{At: at, Source: "stream", StreamID: m.ID}
				data, _ := m.Values["data"].(string)
				fill(&e, data)
				if e.Seq == 0 {
					e.Seq, _ = strconv.ParseInt(str(m.Values["seq"]), 10, 64)
					e.Kind, e.Event = str(m.Values["kind"]), str(m.Values["event"])
				}
				batch = append(batch, e)
				last = m.ID
			}
		}
		r.readHashes(batch)
		r.add(func(h *History) { h.Entries = append(h.Entries, batch...) })
	}
}

// pubsub subscribes to the three channels.
func (r *Recorder) pubsub() {
	var channels []string
	for _, k := range keys.Kinds {
		channels = append(channels, keys.Channel(r.w.Prefix, k))
	}
	r.mu.Lock()
	r.ps = r.rdb.Subscribe(r.ctx, channels...)
	ps := r.ps
	r.mu.Unlock()
	for r.ctx.Err() == nil {
		msg, err := ps.ReceiveMessage(r.ctx)
		if err != nil {
			if !r.pause(100 * time.Millisecond) {
				return
			}
			continue
		}
		e := Entry{At: time.Now(), Source: "pubsub"}
		fill(&e, msg.Payload)
		batch := []Entry{e}
		r.readHashes(batch)
		r.add(func(h *History) { h.Entries = append(h.Entries, batch...) })
	}
}

// fill sets e's fields from the event's JSON.
func fill(e *Entry, data string) {
	e.Data = data
	var ev keys.Event
	if json.Unmarshal([]byte(data), &ev) != nil {
		return
	}
	e.Seq, e.Epoch, e.Kind, e.Event, e.ID = ev.Seq, ev.Epoch, string(ev.Kind), ev.Event, ev.ID
	if ev.SeatsAvailable != nil {
		n := *ev.SeatsAvailable
		e.Seats = &n
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// readHashes reads the hash of each item event in batch, in one round
// trip, trying again while Redis does not answer (for hashPatience).
func (r *Recorder) readHashes(batch []Entry) {
	var todo []int
	for i, e := range batch {
		if e.Event == keys.EventItem && keys.Kind(e.Kind).Valid() && e.ID != "" {
			todo = append(todo, i)
		}
	}
	deadline := time.Now().Add(hashPatience)
	for len(todo) > 0 && r.ctx.Err() == nil && time.Now().Before(deadline) {
		pipe := r.rdb.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, len(todo))
		for j, i := range todo {
			cmds[j] = pipe.HGetAll(r.ctx, keys.Entity(r.w.Prefix, keys.Kind(batch[i].Kind), batch[i].ID))
		}
		pipe.Exec(r.ctx)
		at := time.Now()
		var again []int
		for j, i := range todo {
			m, err := cmds[j].Result()
			if err != nil {
				again = append(again, i)
				continue
			}
			batch[i].HashAt = at
			if len(m) > 0 {
				batch[i].Hash = m
			}
		}
		todo = again
		if len(todo) > 0 && !r.pause(100*time.Millisecond) {
			return
		}
	}
}

// ---- the warmers from outside ----

// probes asks each warmer's /healthz, /readyz and /metrics every half
// second. Each question runs on its own, so a paused warmer that never
// answers holds up no other; one still waiting is not asked again.
func (r *Recorder) probes() {
	client := &http.Client{Timeout: probeTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	var (
		mu       sync.Mutex
		inflight = map[string]bool{}
		wg       sync.WaitGroup
	)
	defer wg.Wait()
	r.every(probeEvery, func() {
		for _, x := range r.w.Warmers() {
			if !x.Started() || x.Name == "twin" && !x.Running() {
				continue
			}
			pid := x.Pid()
			for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
				job := x.Name + path
				mu.Lock()
				busy := inflight[job]
				inflight[job] = true
				mu.Unlock()
				if busy {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { mu.Lock(); delete(inflight, job); mu.Unlock() }()
					start := time.Now()
					code, body, err := x.get(r.ctx, client, path)
					took := time.Since(start)
					if r.ctx.Err() != nil {
						return
					}
					if path == "/metrics" {
						if err == nil && code == http.StatusOK {
							wr := parseMetrics(body)
							wr.At, wr.Instance, wr.Pid = start, x.Name, pid
							r.add(func(h *History) { h.Writes = append(h.Writes, wr) })
						}
						return
					}
					if err != nil {
						code = 0
					}
					p := Probe{At: start, Instance: x.Name, Path: path, Code: code, Took: took, Body: strings.TrimSpace(body)}
					r.add(func(h *History) { h.Probes = append(h.Probes, p) })
				}()
			}
		}
	})
}

// parseMetrics reads vista_warmer_lease_held and
// vista_warmer_fenced_writes_total from a Prometheus text page.
func parseMetrics(page string) Write {
	var w Write
	sc := bufio.NewScanner(strings.NewReader(page))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(strings.TrimSpace(value), 64)
		switch name {
		case "vista_warmer_lease_held":
			w.Held = v == 1
		case "vista_warmer_fenced_writes_total":
			w.Written = int64(v)
		}
	}
	return w
}

// leases reads P:lease every half second.
func (r *Recorder) leases() {
	key := keys.Lease(r.w.Prefix)
	r.every(probeEvery, func() {
		ctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
		defer cancel()
		v, err := r.rdb.Get(ctx, key).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return
		}
		l := Lease{At: time.Now(), Holder: v}
		r.add(func(h *History) { h.Leases = append(h.Leases, l) })
	})
}

// truths asks the simulator what it lists, every second.
func (r *Recorder) truths() {
	r.every(truthEvery, func() {
		ctx, cancel := context.WithTimeout(r.ctx, 3*time.Second)
		defer cancel()
		t, err := r.w.Sim.Truth(ctx)
		if err != nil {
			return
		}
		t = r.internTruth(t)
		if p := r.prevTruth; p != nil {
			if maps.Equal(p.Seats, t.Seats) {
				t.Seats = p.Seats
			}
			if maps.Equal(p.Status, t.Status) {
				t.Status = p.Status
			}
			if maps.EqualFunc(p.Showtime, t.Showtime, time.Time.Equal) {
				t.Showtime = p.Showtime
			}
		}
		r.prevTruth = &t
		r.add(func(h *History) { h.Truths = append(h.Truths, t) })
	})
}

// internTruth rebuilds t's maps with the ids kept once.
func (r *Recorder) internTruth(t Truth) Truth {
	out := Truth{At: t.At, Seats: make(map[string]int, len(t.Seats)), Status: make(map[string]string, len(t.Status)),
		Showtime: make(map[string]time.Time, len(t.Showtime))}
	for id, v := range t.Seats {
		out.Seats[r.truthNames.get(id)] = v
	}
	for id, v := range t.Status {
		out.Status[r.truthNames.get(id)] = r.truthNames.get(v)
	}
	for id, v := range t.Showtime {
		out.Showtime[r.truthNames.get(id)] = v
	}
	return out
}
