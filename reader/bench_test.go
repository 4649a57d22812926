package reader

import (
	"context"
	"encoding/json"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// BenchmarkSessionRead reads one session from a Mirror (no round trip)
// and with Reader.Session (an HGETALL), in the same run: compare the two.
func BenchmarkSessionRead(b *testing.B) {
	f := newFixture(b, 20)
	r := New(f.rdb, f.prefix)
	ids := f.rdb.ZRange(context.Background(), keys.Index(f.prefix, keys.Sessions), 0, 999).Val()
	m := NewMirror(r)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	<-m.Ready()
	b.Run("mirror", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, ok := m.Session(ids[i%len(ids)]); !ok {
				b.Fatal("not in the mirror")
			}
		}
	})
	b.Run("hgetall", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := r.Session(ctx, ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMirrorMemory is the heap a Mirror holds per session.
func BenchmarkMirrorMemory(b *testing.B) {
	f := newFixture(b, 100)
	r := New(f.rdb, f.prefix)
	n := int(f.rdb.ZCard(context.Background(), keys.Index(f.prefix, keys.Sessions)).Val())
	var perSession float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m := NewMirror(r)
		if err := m.load(context.Background()); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perSession = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
		runtime.KeepAlive(m)
	}
	b.ReportMetric(float64(n), "sessions")
	b.ReportMetric(perSession, "heap-bytes/session")
}

// BenchmarkFanout publishes events as the warmer does (PUBLISH and XADD in
// one transaction) to 1,000 subscribers and 1,000 stream readers, each on
// a connection of its own, and reports the time from the write to each
// receipt, on one host: p50 and p99 over all receipts.
func BenchmarkFanout(b *testing.B) {
	const n = 1000
	opt, err := redis.ParseURL(redisURL())
	if err != nil {
		b.Fatal(err)
	}
	opt.Protocol = 2
	opt.PoolSize = 2*n + 4
	opt.ReadTimeout = -1 // XREAD BLOCK and SUBSCRIBE wait as long as they like
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prefix := "vwbench:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	channel, stream := keys.Channel(prefix, keys.Sessions), keys.Stream(prefix)
	defer rdb.Del(context.Background(), stream)
	// The stream exists before the readers start, and they read after its
	// first entry: none misses an event for starting late.
	start, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"data", "{}"}}).Result()
	if err != nil {
		b.Fatal(err)
	}

	var mu sync.Mutex
	var subLat, streamLat []time.Duration
	got := make(chan struct{}, 4*n)
	record := func(lat *[]time.Duration, data string) {
		var ev struct {
			Sent int64 `json:"sent_ns"`
		}
		json.Unmarshal([]byte(data), &ev)
		d := time.Duration(time.Now().UnixNano() - ev.Sent)
		mu.Lock()
		*lat = append(*lat, d)
		mu.Unlock()
		got <- struct{}{}
	}
	for i := 0; i < n; i++ {
		sub := rdb.Subscribe(ctx, channel)
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil {
			b.Fatal(err)
		}
		go func() {
			for msg := range sub.Channel() {
				record(&subLat, msg.Payload)
			}
		}()
		go func() {
			last := start
			for ctx.Err() == nil {
				res, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{stream, last}, Block: 0}).Result()
				if err != nil {
					continue
				}
				for _, m := range res[0].Messages {
					last = m.ID
					record(&streamLat, m.Values["data"].(string))
				}
			}
		}()
	}
	time.Sleep(time.Second) // the readers are blocked in XREAD
	for b.Loop() {
		data := `{"seq":1,"kind":"sessions","event":"item","sent_ns":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `}`
		pipe := rdb.TxPipeline()
		pipe.Publish(ctx, channel, data)
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, MaxLen: 1000, Approx: true, Values: []any{"data", data}})
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < 2*n; i++ {
			select {
			case <-got:
			case <-time.After(10 * time.Second):
				b.Fatalf("%d of %d receipts within 10 s", i, 2*n)
			}
		}
	}
	b.StopTimer()
	p := func(l []time.Duration, q float64) float64 {
		s := slices.Clone(l)
		slices.Sort(s)
		return float64(s[int(q*float64(len(s)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(p(subLat, 0.5), "subscribe-p50-ms")
	b.ReportMetric(p(subLat, 0.99), "subscribe-p99-ms")
	b.ReportMetric(p(streamLat, 0.5), "stream-p50-ms")
	b.ReportMetric(p(streamLat, 0.99), "stream-p99-ms")
}
