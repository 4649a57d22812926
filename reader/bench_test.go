package reader

import (
	"context"
	"runtime"
	"testing"

	"github.com/vista-warmer/vista-warmer/schema"
)

// BenchmarkSessionRead reads one session from a Mirror (no round trip)
// and with Reader.Session (an HGETALL), in the same run: compare the two.
func BenchmarkSessionRead(b *testing.B) {
	f := newFixture(b, 20)
	r := New(f.rdb, f.prefix)
	ids := f.rdb.ZRange(context.Background(), schema.Index(f.prefix, schema.Sessions), 0, 999).Val()
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
	n := int(f.rdb.ZCard(context.Background(), schema.Index(f.prefix, schema.Sessions)).Val())
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
