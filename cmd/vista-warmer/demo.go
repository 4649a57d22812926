package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/vista/vistasim"
	"github.com/vista-warmer/vista-warmer/warmer"
)

// demoSeed fixes the simulated Vista's data, so every demo shows the same
// cinemas and films.
const demoSeed = 1

// simServer is the simulated Vista of --demo, on a loopback port.
type simServer struct {
	URL    string
	sim    *vistasim.Server
	srv    *http.Server
	served chan struct{} // closed when Serve has returned
}

// demoVista is the demo's simulated chain: cinemas in three rounds of every
// zone the simulator knows, so that at any hour of the day some of them are
// showing and a few sessions are within the near window, checked every
// 10s, from the first minute on.
var demoVista = vistasim.Config{Seed: demoSeed, Cinemas: 27, Screens: 6, ShowsPerDay: 5}

func startSim() (*simServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: listen: %w", err)
	}
	sim := vistasim.New(demoVista)
	srv := &http.Server{
		Handler:           sim,
		ReadHeaderTimeout: 10 * time.Second,
	}
	s := &simServer{URL: "http://" + ln.Addr().String() + "/WSVistaWebClient/", sim: sim, srv: srv, served: make(chan struct{})}
	go func() {
		defer close(s.served)
		srv.Serve(ln)
	}()
	return s, nil
}

// Close gives a request in flight a moment, then cuts it: the simulator
// builds a whole list before it notices the client has gone.
func (s *simServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.served
	return err
}

// embeddedRedis is an in-process Redis (miniredis) on a loopback port.
// miniredis moves its TTLs only when told, so a goroutine tells it every
// half second how much real time has passed: the lease and the sessions'
// expiry then behave as on a real Redis.
type embeddedRedis struct {
	mr   *miniredis.Miniredis
	stop chan struct{}
	wg   sync.WaitGroup
}

func startEmbeddedRedis() (*embeddedRedis, error) {
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	e := &embeddedRedis{mr: mr, stop: make(chan struct{})}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-e.stop:
				return
			case now := <-t.C:
				mr.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	return e, nil
}

func (e *embeddedRedis) Addr() string { return e.mr.Addr() }
func (e *embeddedRedis) Port() string { return e.mr.Port() }

func (e *embeddedRedis) Close() {
	close(e.stop)
	e.wg.Wait()
	e.mr.Close()
}

// redisCLI is the redis-cli invocation that reaches opts, password left out.
func redisCLI(opts *redis.Options) string {
	host, port, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return "redis-cli"
	}
	cli := "redis-cli"
	if host != "127.0.0.1" && host != "localhost" && host != "" {
		cli += " -h " + host
	}
	if port != "6379" {
		cli += " -p " + port
	}
	if opts.DB != 0 {
		cli += " -n " + strconv.Itoa(opts.DB)
	}
	if opts.TLSConfig != nil {
		cli += " --tls"
	}
	return cli
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9:_.\-]+$`)

// shellKey quotes a key for the shell when its prefix needs it ({vista}).
func shellKey(k string) string {
	if plainKey.MatchString(k) {
		return k
	}
	return "'" + k + "'"
}

// demoHints waits for the first full load, then logs commands that show the
// cache working: a session hash, a cinema's programme until midnight, and the
// session events as seats sell.
func demoHints(ctx context.Context, log *slog.Logger, rdb redis.UniversalClient, w status, prefix, cli string) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for !w.Status(ctx).Ready {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	now := time.Now()
	index := keys.Index(prefix, keys.Sessions)
	// The next session to start changes most: it is checked every few
	// seconds and sells fastest.
	ids, err := rdb.ZRangeByScore(ctx, index, &redis.ZRangeBy{Min: strconv.FormatInt(now.Unix(), 10), Max: "+inf", Count: 1}).Result()
	if err == nil && len(ids) == 0 {
		ids, err = rdb.ZRange(ctx, index, 0, 0).Result()
	}
	if err != nil || len(ids) == 0 {
		if err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("demo: no session to show", "err", err)
		}
		return
	}
	id := ids[0]
	cinema, _ := rdb.HGet(ctx, keys.Session(prefix, id), "cinema_id").Result()
	if cinema == "" {
		cinema = "1001"
	}
	loc := time.UTC
	if tz, err := rdb.HGet(ctx, keys.Cinema(prefix, cinema), "timezone").Result(); err == nil {
		if l, err := vista.LoadZone(tz); err == nil {
			loc = l
		}
	}
	local := now.In(loc)
	midnight := time.Date(local.Year(), local.Month(), local.Day()+1, 0, 0, 0, 0, loc)

	log.Info("demo: the cache is warm; try these in another terminal")
	for _, cmd := range []string{
		fmt.Sprintf("%s HGETALL %s", cli, shellKey(keys.Session(prefix, id))),
		fmt.Sprintf("%s ZRANGEBYSCORE %s %d %d WITHSCORES", cli, shellKey(keys.CinemaSessions(prefix, cinema)), now.Unix(), midnight.Unix()),
		fmt.Sprintf("%s SUBSCRIBE %s", cli, shellKey(keys.Channel(prefix, keys.Sessions))),
		fmt.Sprintf("%s XREVRANGE %s + - COUNT 5", cli, shellKey(keys.Stream(prefix))),
		fmt.Sprintf("%s HGETALL %s", cli, shellKey(keys.Meta(prefix))),
	} {
		log.Info("  " + cmd)
	}
}

// demoKey marks a prefix the demo writes: simulated data goes only where
// there is nothing, or where the demo wrote before.
func demoKey(prefix string) string { return prefix + ":demo" }

// claimForDemo refuses to write the simulator's data into a Redis that
// holds a cache under prefix which the demo did not write, and marks the
// prefix as the demo's otherwise.
func claimForDemo(ctx context.Context, rdb redis.UniversalClient, prefix, shown string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := rdb.Exists(ctx, keys.Meta(prefix), keys.Index(prefix, keys.Cinemas), keys.Index(prefix, keys.Films),
		keys.Index(prefix, keys.Sessions)).Result()
	if err != nil {
		return nil // Redis does not answer yet: the warmer waits for it, and writes nothing meanwhile
	}
	demo, err := rdb.Exists(ctx, demoKey(prefix)).Result()
	if err == nil && n > 0 && demo == 0 {
		return fmt.Errorf("--demo: %s holds a cache under the prefix %q that the demo did not write; "+
			"the demo will not write simulated data into it (give another --prefix, or an empty Redis)", shown, prefix)
	}
	if err := rdb.Set(ctx, demoKey(prefix), "written by vista-warmer --demo", 0).Err(); err != nil {
		if code, _ := warmer.Refusal(err); code != "" {
			return nil // a replica, a full Redis: the warmer writes nothing there either, and /healthz says why
		}
		return err
	}
	return nil
}
