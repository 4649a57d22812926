package warmer

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/internal/testkit"
	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
)

// No seat check waits for a session whose row is not yet in, nor for the
// rest of the list: while a cold load's sessions list still streams (its
// second page held back here), the sessions its first page brought are
// checked when they come due.
func TestChecksGoOutWhileTheListStreams(t *testing.T) {
	var holding atomic.Bool
	release := make(chan struct{})
	var checks atomic.Int32 // seat requests (by id or by window) while the list is held
	front := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			q := req.URL.Query()
			if strings.HasSuffix(req.URL.Path, "/Sessions") {
				switch {
				case strings.Contains(q.Get("$filter"), "ID eq"), strings.Contains(q.Get("$filter"), "Showtime"):
					if holding.Load() {
						checks.Add(1)
					}
				case q.Get("$skip") != "" && q.Get("$skip") != "0":
					if holding.CompareAndSwap(false, true) {
						<-release // the second page: held until the test has seen what it wants
					}
				}
			}
			h.ServeHTTP(w, req)
		})
	}
	// The held page must not time out meanwhile, nor be asked again.
	r := newRigWith(t, rigOptions{front: front, client: func(c *vista.Config) { c.Timeout = time.Minute }})
	defer func() {
		if holding.Load() {
			select {
			case <-release:
			default:
				close(release)
			}
		}
	}()
	w := r.warmer("a")
	w.chunk = 40 // a page a chunk: written as it comes, as 5,000 rows of a big list are
	r.run(w)
	index := keys.Index(r.prefix, keys.Sessions)
	testkit.Eventually(t, 10*time.Second, "the first page of sessions written while the second is held", func() bool {
		return holding.Load() && r.rdb.ZCard(r.ctx, index).Val() > 0
	})
	// The first session the first page brought comes due: the clock moves
	// to within the horizon of its showtime.
	first := r.rdb.ZRangeWithScores(r.ctx, index, 0, 0).Val()[0]
	due := time.Unix(int64(first.Score), 0).Add(-w.cfg.Policy.Horizon + time.Minute)
	if now := r.clock.Now(); due.After(now) {
		r.clock.Add(due.Sub(now))
	} else {
		r.clock.Add(w.cfg.Policy.Base)
	}
	testkit.Eventually(t, 10*time.Second, "a seat check while the list is held", func() bool { return checks.Load() > 0 })
	close(release)
	r.step(w)
	if n := r.rdb.ZCard(r.ctx, index).Val(); n != int64(len(r.sim.Sessions())) {
		t.Errorf("%d sessions indexed after the list came whole, want %d", n, len(r.sim.Sessions()))
	}
}
