// Command eventlat measures, from outside the warmer, the time from a seat
// check's answer leaving Vista to a subscriber receiving the event that
// announces the change: the warmer's decoding, diff and fenced write, Redis
// running the script and delivering the PUBLISH, and the subscriber's read,
// on one host. The target (p99 at most 2 ms) is the issue's.
//
// It builds the warmer binary (or takes -bin), serves the simulated Vista
// in its own process on a loopback port, starts a throwaway redis-server in
// a temporary directory and runs the warmer against both with default flags
// on the real clock. Before the warmer starts, 2×-sessions sessions are
// moved to showtimes 5 to 50 minutes ahead, so that the warmer checks them
// whatever the hour, and their seats are pinned. Then, round after round,
// -sessions of them get new seats in the simulator; a subscriber of the
// sessions channel waits for their item events. Each answer of the
// simulator is buffered whole and sent with its length, then flushed; the
// instant the flush returns is when it left. A sample is the receipt of an
// event minus the flush of the first answer, after the change, that
// carried the new seats. The target is judged on the answers of checks
// (by id and window sweeps); a change that a page of the hourly full
// reload carried first is shown apart.
//
// Beside the warmer, a relay process of this binary asks the same
// simulator for an answer of a sweep's size every 10 s and PUBLISHes one
// message: the machine's floor for the same three processes after the
// same idle, printed beside the warmer's (floor.go says why it matters on
// a shared VM).
//
// Redis logs the writes of the rounds (SLOWLOG, slowlog.go), and the
// report says how long Redis itself ran those that published events:
// the part of a sample that is Redis running the fence, the hash writes
// and the events the contract asks for.
//
// With -split, a MONITOR connection to Redis times the script that
// published each event, and each latency is divided into the warmer's time
// before the script, the script, and the delivery; MONITOR slows the
// scripts, so the total is then higher than without it.
//
//	go run ./internal/eventlat                  # 2 minutes of rounds
//	go run ./internal/eventlat -bin bin/vista-warmer -duration 5m -sessions 40 -split
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/vista-warmer/vista-warmer/internal/outside"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// target is the issue's: p99 of answer to event at most 2 ms.
const target = 2 * time.Millisecond

// floorEvery is how often the relay asks: as often as the near sweep.
const floorEvery = 10 * time.Second

func main() {
	var o opts
	flag.DurationVar(&o.duration, "duration", 2*time.Minute, "how long the rounds go on, after the warmer is ready")
	flag.StringVar(&o.bin, "bin", "", "the warmer binary (default: build ./cmd/vista-warmer into a temporary directory)")
	flag.IntVar(&o.sessions, "sessions", 20, "sessions changed each round (twice as many are moved near and take turns)")
	flag.IntVar(&o.cinemas, "cinemas", 27, "simulated cinemas (6 screens, 5 shows a day, 14 days: 420 sessions each)")
	flag.DurationVar(&o.roundLimit, "round-limit", 30*time.Second, "how long a round waits for its events before it counts the missing ones")
	flag.StringVar(&o.out, "out", "bin/eventlat", "where the warmer's log and the samples (CSV) go")
	flag.BoolVar(&o.split, "split", false, "split each latency at the script that published the event, from Redis's MONITOR feed (which slows the scripts)")
	flag.Parse()
	if spec := os.Getenv(relayEnv); spec != "" {
		if err := relay(spec); err != nil {
			fmt.Fprintln(os.Stderr, "eventlat relay:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "eventlat:", err)
		os.Exit(1)
	}
}

type opts struct {
	duration, roundLimit time.Duration
	bin, out             string
	sessions, cinemas    int
	split                bool
}

const prefix = "vista" // the warmer's default --prefix

func run(ctx context.Context, o opts) error {
	if o.sessions < 1 {
		return errors.New("-sessions must be at least 1")
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "eventlat-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := o.bin
	if bin == "" {
		bin = filepath.Join(tmp, "vista-warmer")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/vista-warmer")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build the warmer: %w", err)
		}
	}
	load0 := loadAvg()

	sim := vistasim.New(vistasim.Config{Seed: 1, Cinemas: o.cinemas, Screens: 6, ShowsPerDay: 5, Days: 14})
	pool, err := movePool(sim, time.Now(), 2*o.sessions)
	if err != nil {
		return err
	}
	ids := make([]string, len(pool))
	for i, p := range pool {
		ids[i] = p.id
	}
	led := newLedger(ids)

	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fl := newFloor()
	mux := http.NewServeMux()
	mux.Handle("/eventlat/floor", fl)
	mux.Handle("/", &recorder{sim: sim, led: led})
	simSrv := &http.Server{Handler: mux}
	go simSrv.Serve(simLn)
	defer simSrv.Close()

	redisPort, err := outside.FreePort()
	if err != nil {
		return err
	}
	rs, err := outside.Start(exec.Command("redis-server", "--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", tmp))
	if err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	defer rs.Stop()
	if err := outside.WaitListening(ctx, redisPort); err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", redisPort)})
	defer rdb.Close()

	// The subscriber reads on its own connection and takes the time as
	// soon as a message is read, before decoding it.
	sub := rdb.Subscribe(ctx, keys.Channel(prefix, keys.Sessions), floorChannel)
	defer sub.Close()
	for range 2 {
		if _, err := sub.Receive(ctx); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
	}
	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	var mon *monitor
	if o.split {
		mon = newMonitor(keys.Channel(prefix, keys.Sessions))
		go func() {
			if err := mon.run(subCtx, fmt.Sprintf("127.0.0.1:%d", redisPort)); err != nil {
				fmt.Fprintln(os.Stderr, "eventlat: monitor:", err)
			}
		}()
	}
	go func() {
		for {
			msg, err := sub.ReceiveMessage(subCtx)
			at := time.Now()
			if err != nil {
				if subCtx.Err() != nil {
					return
				}
				continue
			}
			if msg.Channel == floorChannel {
				fl.receive(msg.Payload, at)
				continue
			}
			var ev keys.Event
			if json.Unmarshal([]byte(msg.Payload), &ev) == nil {
				led.event(at, ev)
			}
		}
	}()

	httpPort, err := outside.FreePort()
	if err != nil {
		return err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	logf, err := os.Create(filepath.Join(o.out, "warmer.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	warmer := exec.Command(bin,
		"--vista-url", "http://"+simLn.Addr().String()+"/WSVistaWebClient/",
		"--redis-url", fmt.Sprintf("redis://127.0.0.1:%d/0", redisPort),
		"--listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--instance-id", "eventlat")
	warmer.Stdout, warmer.Stderr = logf, logf
	began := time.Now()
	w, err := outside.Start(warmer)
	if err != nil {
		return err
	}
	defer w.Stop()
	if err := waitFor(ctx, w, logf.Name(), "/readyz 200", 2*time.Minute, func() bool { return outside.Get(base+"/readyz") == nil }); err != nil {
		return err
	}
	fmt.Printf("eventlat: %d sessions listed by the simulator (%d cinemas), %d moved to 5–50 min ahead, %d changed a round; warmer ready after %.1fs\n",
		len(sim.Sessions()), o.cinemas, len(pool), o.sessions, time.Since(began).Seconds())

	self, err := os.Executable()
	if err != nil {
		return err
	}
	rel := exec.Command(self)
	rel.Env = append(os.Environ(), fmt.Sprintf("%s=http://%s/eventlat/floor 127.0.0.1:%d %s",
		relayEnv, simLn.Addr(), redisPort, floorEvery))
	rel.Stdout, rel.Stderr = os.Stderr, os.Stderr
	rp, err := outside.Start(rel)
	if err != nil {
		return fmt.Errorf("the floor's relay: %w", err)
	}
	defer rp.Stop()

	metrics0 := scrape(base)
	stats0 := commandStats(ctx, rdb)
	if err := logWrites(ctx, rdb); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	end := time.Now().Add(o.duration)
	round := 0
	for time.Now().Before(end) {
		round++
		picked := slices.Clone(pool)
		rng.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
		picked = picked[:o.sessions]
		rows := make([]row, len(picked))
		for i, p := range picked {
			// One seat sold; back to full when none is left.
			if p.seats--; p.seats < 0 {
				p.seats = p.capacity
			}
			rows[i] = row{id: p.id, seats: p.seats}
		}
		ok := led.begin(round, time.Now(), rows)
		for _, r := range rows {
			sim.SetSeats(r.id, r.seats)
		}
		select {
		case <-ok:
		case <-time.After(o.roundLimit):
		case <-w.Done:
			return fmt.Errorf("the warmer exited: %v (see %s)", w.Err, logf.Name())
		case <-ctx.Done():
			return ctx.Err()
		}
		led.end(round)
	}
	// The late events of the last round, if any, still count.
	time.Sleep(200 * time.Millisecond)
	stopSub()

	samples, counts := led.snapshot()
	metrics1 := scrape(base)
	stats1 := commandStats(ctx, rdb)
	writes, err := readWrites(ctx, rdb)
	if err != nil {
		return err
	}
	spans := make([]*span, len(samples))
	if mon != nil {
		for i, s := range samples {
			if sp, ok := mon.lookup(s.id, s.seats); ok {
				spans[i] = &sp
			}
		}
	}
	if err := writeCSV(filepath.Join(o.out, "samples.csv"), samples, spans); err != nil {
		return err
	}
	report(os.Stdout, reportIn{
		rounds: round, samples: samples, floor: fl.samples(), spans: spans, split: o.split, counts: counts, load0: load0, load1: loadAvg(),
		redisVersion: redisVersion(ctx, rdb), metrics0: metrics0, metrics1: metrics1,
		stats0: stats0, stats1: stats1, writes: writes, out: o.out,
	})
	return nil
}

// pooled is a session the rounds change, and the seats it has now.
type pooled struct {
	id              string
	seats, capacity int
}

// movePool picks n sessions whose showtime as generated lies 1 to 24
// hours ahead (so that a move by a day at most keeps them listed), in
// cinemas with a zone of their own (the one without gets the warmer's
// --timezone, the machine's), moves them to showtimes spread from 5 to 50
// minutes ahead of now, whole minutes, and pins their seats at capacity.
func movePool(sim *vistasim.Server, now time.Time, n int) ([]*pooled, error) {
	var cands []vistasim.SessionInfo
	for _, s := range sim.Sessions() {
		ahead := s.Showtime.Sub(now)
		if s.Showtime.Location() != time.UTC && s.Status == "O" && s.Capacity > 0 &&
			ahead > time.Hour && ahead < 24*time.Hour {
			cands = append(cands, s)
		}
	}
	if len(cands) < n {
		return nil, fmt.Errorf("only %d sessions to move, %d wanted: raise -cinemas or lower -sessions", len(cands), n)
	}
	// Every k-th, so that they spread over cinemas and films.
	step := len(cands) / n
	pool := make([]*pooled, n)
	for i := range pool {
		s := cands[i*step]
		at := now.Add(5*time.Minute + time.Duration(i)*45*time.Minute/time.Duration(max(n-1, 1))).Truncate(time.Minute)
		if at.Sub(now) < 5*time.Minute {
			at = at.Add(time.Minute)
		}
		sim.MoveSession(s.ID, at)
		sim.SetSeats(s.ID, s.Capacity)
		pool[i] = &pooled{id: s.ID, seats: s.Capacity, capacity: s.Capacity}
	}
	return pool, nil
}

// recorder serves the simulator's answers whole, with their length, and
// notes for each Sessions answer when its flush returned and which of the
// pool's sessions it carried with what seats.
type recorder struct {
	sim  *vistasim.Server
	led  *ledger
	bufs sync.Pool
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	buf, _ := rec.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	defer rec.bufs.Put(buf)
	bw := &buffered{header: w.Header(), body: buf}
	rec.sim.ServeHTTP(bw, r)
	if bw.status == 0 {
		bw.status = http.StatusOK
	}
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(bw.status)
	w.Write(buf.Bytes())
	w.(http.Flusher).Flush()
	at := time.Now()
	if via := endpoint(r); via != "" && bw.status == http.StatusOK {
		rows, total := carried(buf.Bytes(), rec.led.pool)
		rec.led.answer(at, via, rows, total)
	}
}

// buffered is a ResponseWriter that keeps the body and the status.
type buffered struct {
	header http.Header
	status int
	body   *bytes.Buffer
}

func (b *buffered) Header() http.Header { return b.header }

func (b *buffered) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *buffered) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

// endpoint names a Sessions request as vistasim counts it: "seats" for a
// check by id, "window" for a $filter on Showtime, "sessions" for the full
// list; "" for anything else.
func endpoint(r *http.Request) string {
	if !strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/OData.svc/Sessions") {
		return ""
	}
	f := r.URL.Query().Get("$filter")
	switch {
	case f == "":
		return "sessions"
	case strings.Contains(f, "Showtime"):
		return "window"
	}
	return "seats"
}

// reportIn is what the report prints.
type reportIn struct {
	rounds             int
	samples            []sample
	floor              []time.Duration // the relay's, from the answer's flush to its message's receipt
	spans              []*span         // the script of each sample's event, with -split
	split              bool
	counts             tally
	load0, load1       string
	redisVersion       string
	metrics0, metrics1 map[string]float64
	stats0, stats1     map[string]cmdStat
	writes             writeTimes // Redis's own time for the writes that published events (slowlog.go)
	out                string
}

func report(out io.Writer, in reportIn) {
	// The target is the checks': seat checks by id and window sweeps. A
	// change that a page of the hourly full reload carried first is
	// written once the reload's chunk is in, a path of its own, shown
	// apart.
	var checks []time.Duration
	byVia := map[string][]time.Duration{}
	var parts [3][]time.Duration // with -split: before the script, the script, after it
	for i, s := range in.samples {
		byVia[s.via] = append(byVia[s.via], s.latency())
		if s.via == "sessions" {
			continue
		}
		checks = append(checks, s.latency())
		if sp := in.spans[i]; sp != nil {
			a, b, c := splitOf(s, *sp)
			parts[0], parts[1], parts[2] = append(parts[0], a), append(parts[1], b), append(parts[2], c)
		}
	}
	slices.Sort(checks)
	fmt.Fprintf(out, "\nmachine: %s, %d cores; load average %s at start, %s at end; redis-server %s\n",
		cpuModel(), runtime.NumCPU(), in.load0, in.load1, in.redisVersion)
	fmt.Fprintf(out, "answer flushed by the simulated Vista → item event received by a subscriber, %d rounds:\n\n", in.rounds)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "answers\tsamples\tp50\tp90\tp99\tmax\t")
	line := func(name string, d []time.Duration) {
		slices.Sort(d)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", name, len(d), ms(quantile(d, .5)), ms(quantile(d, .9)),
			ms(quantile(d, .99)), ms(quantile(d, 1)))
	}
	line("checks", checks)
	for _, via := range []string{"seats", "window"} {
		if d := byVia[via]; len(d) > 0 {
			line("  "+via, d)
		}
	}
	if d := byVia["sessions"]; len(d) > 0 {
		line("full reload (apart)", d)
	}
	if len(in.floor) > 0 {
		line("machine floor (relay)", in.floor)
	}
	if in.split {
		fmt.Fprintln(tw, "\t\t\t\t\t\t")
		fmt.Fprintln(tw, "checks, split (-split)\tsamples\tp50\tp90\tp99\tmax\t")
		line("answer → script began", parts[0])
		line("script", parts[1])
		line("script ended → receipt", parts[2])
	}
	tw.Flush()
	verdict := "PASS"
	if len(checks) == 0 || quantile(checks, .99) > target {
		verdict = "FAIL"
	}
	fmt.Fprintf(out, "\n%s: p99 %s over %d samples, target ≤ %s\n", verdict, ms(quantile(checks, .99)), len(checks), ms(target))
	if f := in.floor; len(f) > 0 {
		slices.Sort(f)
		fmt.Fprintf(out, "machine floor: a relay process that reads an answer of %d rows every %v, checks it is JSON and PUBLISHes, "+
			"the same three processes after the same idle: p50 %s, p99 %s over %d answers",
			floorRows, floorEvery, ms(quantile(f, .5)), ms(quantile(f, .99)), len(f))
		if quantile(f, .99) > target {
			fmt.Fprintf(out, "; above the target: no program can meet it on this machine")
		}
		fmt.Fprintf(out, "\nthe warmer's own share at p50: %s\n", ms(max(0, quantile(checks, .5)-quantile(f, .5))))
	}
	fmt.Fprintf(out, "the samples came in %d answers: the changes one answer carries are written by one script, so its samples rise and fall together\n",
		answers(in.samples))
	if in.split {
		fmt.Fprintln(out, "(with -split, Redis feeds every command to MONITOR: the scripts are slower than without it)")
	}

	c := in.counts
	fmt.Fprintf(out, "\nunmatched: %d changes no answer carried within the round's limit, %d carried but no event came, "+
		"%d with an event but no answer seen carrying them, %d late events, %d seat events of the changed sessions matching no change; "+
		"%d item events of sessions received in all\n",
		c.noAnswer, c.noEvent, c.eventNoReply, c.late, c.unexpected, c.eventsSeen)

	// The warmer's own view, over the rounds only.
	d := func(name string) float64 { return in.metrics1[name] - in.metrics0[name] }
	const wd = "vista_warmer_redis_write_duration_seconds"
	if n := d(wd + "_count"); n > 0 {
		fmt.Fprintf(out, "warmer: %.0f fenced writes, mean %s;", n, ms(time.Duration(d(wd+"_sum")/n*float64(time.Second))))
		for _, le := range []string{"0.0005", "0.00125", "0.003125", "0.0078125"} {
			fmt.Fprintf(out, " ≤%sms %.0f%%", trimMs(le), 100*d(wd+`_bucket{le="`+le+`"}`)/n)
		}
		fmt.Fprintln(out)
	}
	const ud = "vista_warmer_upstream_request_duration_seconds"
	for _, ep := range []string{"seats", "window"} {
		if n := d(ud + `_count{endpoint="` + ep + `"}`); n > 0 {
			fmt.Fprintf(out, "warmer: %.0f %s requests, mean %s from asking to the answer read\n", n, ep,
				ms(time.Duration(d(ud+`_sum{endpoint="`+ep+`"}`)/n*float64(time.Second))))
		}
	}
	for _, cmd := range []string{"evalsha", "eval"} {
		a, b := in.stats0[cmd], in.stats1[cmd]
		if n := b.calls - a.calls; n > 0 {
			fmt.Fprintf(out, "redis: %d %s calls, %.0f µs each in Redis\n", n, strings.ToUpper(cmd), float64(b.usec-a.usec)/float64(n))
		}
	}
	if r := in.writes.publishing; len(r) > 0 {
		fmt.Fprintf(out, "redis: ran the %d writes that published events in p50 %s, p90 %s, max %s (SLOWLOG, the writes of %v or more: "+
			"the script, not reading the call or the socket writes)", len(r), ms(quantile(r, .5)), ms(quantile(r, .9)), ms(quantile(r, 1)), slowerThan)
		if in.split {
			fmt.Fprint(out, "; MONITOR's cost is in them")
		}
		fmt.Fprintln(out)
	}
	if n := in.writes.unclear; n > 0 {
		fmt.Fprintf(out, "redis: %d more writes logged with their arguments cut before a PUBLISH could show: left out\n", n)
	}
	if in.writes.full {
		fmt.Fprintf(out, "redis: the SLOWLOG filled (%d entries): the first writes of the run are not counted\n", slowlogLen)
	}
	fmt.Fprintf(out, "files: %s/samples.csv, %s/warmer.log\n", in.out, in.out)
}

// answers counts the answers of checks that carried the samples.
func answers(samples []sample) int {
	seen := map[time.Time]bool{}
	for _, s := range samples {
		if s.via != "sessions" {
			seen[s.answered] = true
		}
	}
	return len(seen)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// trimMs writes a bucket bound in seconds as milliseconds.
func trimMs(le string) string {
	f, _ := strconv.ParseFloat(le, 64)
	return strconv.FormatFloat(f*1000, 'f', -1, 64)
}

func writeCSV(path string, samples []sample, spans []*span) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	fmt.Fprintln(bw, "round,id,seats,via,answer_rows,changed_unix_ns,answer_flushed_unix_ns,event_received_unix_ns,latency_us,script_start_unix_us,script_end_unix_us")
	for i, s := range samples {
		fmt.Fprintf(bw, "%d,%s,%d,%s,%d,%d,%d,%d,%.1f,", s.round, s.id, s.seats, s.via, s.rows, s.changed.UnixNano(),
			s.answered.UnixNano(), s.received.UnixNano(), float64(s.latency())/float64(time.Microsecond))
		if sp := spans[i]; sp != nil {
			fmt.Fprintf(bw, "%d,%d\n", sp.start, sp.end)
		} else {
			fmt.Fprintln(bw, ",")
		}
	}
	return errors.Join(bw.Flush(), f.Close())
}

// ---- the machine, Redis and the warmer's metrics ----

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func redisVersion(ctx context.Context, rdb *redis.Client) string {
	s, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return "?"
	}
	for line := range strings.Lines(s) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	return "?"
}

type cmdStat struct{ calls, usec int64 }

// commandStats reads INFO commandstats: calls and microseconds by command.
func commandStats(ctx context.Context, rdb *redis.Client) map[string]cmdStat {
	m := map[string]cmdStat{}
	s, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return m
	}
	for line := range strings.Lines(s) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, found := strings.CutPrefix(name, "cmdstat_")
		if !ok || !found {
			continue
		}
		var st cmdStat
		for kv := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				st.calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec":
				st.usec, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		m[name] = st
	}
	return m
}

// scrape reads every series of /metrics whose value parses.
func scrape(base string) map[string]float64 {
	m := map[string]float64{}
	resp, err := outside.Client.Get(base + "/metrics")
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// waitFor polls cond every 100 ms until it holds, the warmer exits, ctx
// ends or limit passes.
func waitFor(ctx context.Context, w *outside.Proc, log, what string, limit time.Duration, cond func() bool) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	deadline := time.After(limit)
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.Done:
			return fmt.Errorf("the warmer exited while waiting for %s: %v (see %s)", what, w.Err, log)
		case <-deadline:
			return fmt.Errorf("no %s within %v (see %s)", what, limit, log)
		case <-t.C:
		}
	}
	return nil
}
