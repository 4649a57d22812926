package main

// The machine's floor. On a shared VM a process woken after seconds of
// idle runs slowly for its first milliseconds, whatever it does: a
// PING to a Redis idle for a second took 1–3 ms on the 2-core Xeon
// where 8 µs is usual, and 20 µs of JSON encoding 2–7 ms after 3 s of
// sleep. A sweep's answer comes every 10 s, after such an idle, and
// crosses three processes (the simulated Vista, the warmer, Redis) to
// reach the subscriber. The floor is the same path with the warmer
// replaced by the least a relay can do: a process of its own that asks
// for an answer the size of a sweep's every 10 s, checks it is JSON and
// PUBLISHes one message. Its latency, measured the same way in the same
// run, is what no warmer on this machine could go under; the warmer's
// own share is what it adds to that.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// relayEnv, when set, makes this binary the relay: "url redis-addr every".
const relayEnv = "EVENTLAT_RELAY"

// floorChannel is where the relay publishes the seq of each answer.
const floorChannel = "eventlat:floor"

// floorRows is the size of the relay's answers: a near sweep's, about.
const floorRows = 300

// floor serves the relay's answers and pairs their flushes with the
// receipts of the relay's messages.
type floor struct {
	body []byte

	mu       sync.Mutex
	seq      int
	flushed  map[int]time.Time
	received map[int]time.Time
}

func newFloor() *floor {
	rows := make([]string, floorRows)
	for i := range rows {
		rows[i] = fmt.Sprintf(`{"ID":"1001-%d","SeatsAvailable":%d,"SoldoutStatus":0,"Status":"O"}`, 100000+i, i%200)
	}
	return &floor{
		body:     []byte(`{"odata.metadata":"","value":[` + strings.Join(rows, ",") + `]}`),
		flushed:  map[int]time.Time{},
		received: map[int]time.Time{},
	}
}

// ServeHTTP answers as the recorder does: whole, with its length, then
// flushed; the instant the flush returns is when it left.
func (f *floor) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	f.seq++
	n := f.seq
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(f.body)))
	w.Header().Set("X-Floor-Seq", strconv.Itoa(n))
	w.Write(f.body)
	w.(http.Flusher).Flush()
	at := time.Now()
	f.mu.Lock()
	f.flushed[n] = at
	f.mu.Unlock()
}

// receive notes the receipt of the relay's message payload at at.
func (f *floor) receive(payload string, at time.Time) {
	n, err := strconv.Atoi(payload)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.received[n] = at
	f.mu.Unlock()
}

// samples returns each answer's flush to the receipt of its message.
func (f *floor) samples() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var d []time.Duration
	for n, at := range f.received {
		if fl, ok := f.flushed[n]; ok {
			d = append(d, at.Sub(fl))
		}
	}
	return d
}

// relay is the relay's process: every every, it reads url whole, checks
// the body is JSON and publishes the answer's seq; it ends with its
// parent (outside.Start) or a failed PUBLISH.
func relay(spec string) error {
	f := strings.Fields(spec)
	if len(f) != 3 {
		return fmt.Errorf("%s: want \"url redis-addr every\", have %q", relayEnv, spec)
	}
	every, err := time.ParseDuration(f[2])
	if err != nil {
		return err
	}
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: f[1]})
	defer rdb.Close()
	client := &http.Client{Timeout: 5 * time.Second}
	t := time.NewTicker(every)
	for {
		<-t.C
		resp, err := client.Get(f[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, "relay:", err)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !json.Valid(body) {
			fmt.Fprintln(os.Stderr, "relay: the answer is not whole JSON:", err)
			continue
		}
		if err := rdb.Publish(ctx, floorChannel, resp.Header.Get("X-Floor-Seq")).Err(); err != nil {
			return err
		}
	}
}
