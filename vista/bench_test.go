package vista_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
)

// BenchmarkSessions reads ~100k sessions from the simulated Vista in pages of
// 1000: HTTP, paging, decoding and zones, the client's share of a cold load.
func BenchmarkSessions(b *testing.B) {
	now := time.Now()
	sim := vistasim.New(vistasim.Config{Seed: 1, Clock: func() time.Time { return now },
		Cinemas: 113, Films: 40, Screens: 14, ShowsPerDay: 5, Days: 14})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c, err := vista.New(vista.Config{BaseURL: srv.URL, Timeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	cinemas, err := c.Cinemas(ctx)
	if err != nil {
		b.Fatal(err)
	}
	zones := map[string]*time.Location{}
	for _, cin := range cinemas {
		zones[cin.ID] = cin.Location
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		s, err := c.Sessions(ctx, zones)
		if err != nil {
			b.Fatal(err)
		}
		n = len(s)
	}
	b.ReportMetric(float64(n), "sessions")
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "sessions/s")
}
