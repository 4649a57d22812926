package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
	"github.com/vista-warmer/vista-warmer/warmer"
)

// Main is the program: tests start it as main does, on port 0.
type Main struct {
	Stdout, Stderr io.Writer
	LookupEnv      func(string) (string, bool)

	Config *Config
	Logger *slog.Logger

	// Everything Run starts (the warmer, the HTTP server, the demo's
	// hints) runs in one group: the first to fail stops the others, and
	// done is closed once all have returned, with runErr the first error.
	cancel    context.CancelFunc
	done      chan struct{}
	runErr    error
	closeOnce sync.Once
	closeErr  error

	sim      *simServer
	mini     *embeddedRedis
	rdb      redis.UniversalClient
	redisOpt *redis.Options
	current  atomic.Pointer[warmer.Warmer] // the warmer running; a new one when Redis turns out a cluster
	// clustered is signalled when the plain client meets a cluster's
	// answer (MOVED, ASK, CLUSTERDOWN): see supervise.
	clustered chan struct{}
	httpSrv   *http.Server
	httpLn    net.Listener
}

// NewMain returns a Main that reads the process's environment and writes to
// its standard streams.
func NewMain() *Main {
	return &Main{Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv}
}

// ParseFlags reads args and the environment and builds the logger. It
// returns flag.ErrHelp after printing the usage for -h and --help; any
// other error is a bad flag or value, for the caller to print and exit 2.
func (m *Main) ParseFlags(_ context.Context, args []string) error {
	cfg, err := parseConfig(args, m.LookupEnv, m.Stdout)
	if err != nil {
		return err
	}
	m.Config = cfg
	color := false
	if f, ok := m.Stderr.(*os.File); ok {
		color = cfg.LogFormat == "text" && colorful(f, m.LookupEnv)
	}
	secrets := []string{cfg.VistaToken}
	if cfg.RedisOptions != nil {
		secrets = append(secrets, cfg.RedisOptions.Password)
	}
	if cfg.Sentinel != nil {
		secrets = append(secrets, cfg.Sentinel.Password)
	}
	if u, err := url.Parse(cfg.VistaURL); err == nil {
		if pw, ok := u.User.Password(); ok {
			secrets = append(secrets, pw)
		}
	}
	m.Logger = newLogger(newRedactor(m.Stderr, secrets...), cfg.LogFormat, cfg.LogLevel, color)
	return nil
}

// Run starts the program and returns: the warmer, its HTTP endpoints and,
// for --demo or an embedded Redis, those too. It stops when ctx is done or
// Close is called.
func (m *Main) Run(ctx context.Context) (err error) {
	cfg, log := m.Config, m.Logger
	ctx, m.cancel = context.WithCancel(ctx)
	setRedisLogger(log)

	vistaURL := cfg.VistaURL
	if cfg.Demo {
		if vistaURL != "" {
			log.Info("demo: --vista-url is ignored; serving a simulated Vista instead")
		}
		if m.sim, err = startSim(); err != nil {
			return err
		}
		vistaURL = m.sim.URL
		log.Info("demo: simulated vista listening", "url", vistaURL, "seed", demoSeed)
	}

	m.redisOpt = cfg.RedisOptions
	redisShown := ""
	if cfg.Demo && cfg.RedisExplicit && !cfg.RedisFromFlag {
		log.Info("demo: REDIS_URL is not used; the demo runs its own Redis unless --redis-url is on the command line")
	}
	if cfg.RedisURL == embedded || (cfg.Demo && !cfg.RedisFromFlag) {
		if m.mini, err = startEmbeddedRedis(); err != nil {
			return err
		}
		m.redisOpt = &redis.Options{Addr: m.mini.Addr()}
		redisShown = "embedded " + m.mini.Addr()
		log.Info("embedded redis listening", "addr", m.mini.Addr(), "hint", "redis-cli -p "+m.mini.Port())
	} else {
		redisShown = redactURL(cfg.RedisURL)
	}
	m.clustered = make(chan struct{}, 1)
	if m.mini != nil {
		m.rdb = redis.NewClient(m.redisOpt) // our own: no cluster to ask about
	} else if cfg.Sentinel != nil {
		m.rdb = openSentinel(m.redisOpt, cfg.Sentinel)
		log.Info("redis through sentinels; following the master's failovers", "master", cfg.Sentinel.Master, "sentinels", cfg.Sentinel.Addrs)
	} else if m.rdb, err = openRedis(ctx, m.redisOpt, cfg.Prefix, log); err != nil {
		return err
	} else if c, ok := m.rdb.(*redis.Client); ok {
		c.AddHook(clusterHint{m.clustered})
	}

	if err := checkCredentials(ctx, m.rdb, redisShown); err != nil {
		return err
	}
	// Every command the warmer will send, tried once: an ACL that denies
	// one stops the start with its name, not a loop of failures later.
	if err := warmer.Preflight(ctx, m.rdb, cfg.Prefix, cfg.ShardedEvents); err != nil {
		return fmt.Errorf("%s: %w", redisShown, err)
	}
	warnEviction(ctx, m.rdb, log)
	if cfg.Demo && m.mini == nil {
		if err := claimForDemo(ctx, m.rdb, cfg.Prefix, redisShown); err != nil {
			return err
		}
	}
	if m.redisOpt.TLSConfig != nil && m.redisOpt.TLSConfig.InsecureSkipVerify {
		log.Warn("TLS to redis does not verify the server's certificate (skip_verify in --redis-url): anyone in between can read and change the cache; give --redis-ca instead")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := warmer.NewMetrics(reg)
	registerBuildInfo(reg, buildOf())
	budget := vista.NewBudget(cfg.UpstreamConcurrency, cfg.UpstreamRate)
	registerBudget(reg, budget)

	zone := cfg.Zone
	if zone == nil {
		zone = machineZone()
	}
	vc, err := vista.New(vista.Config{
		BaseURL:      vistaURL,
		Token:        cfg.VistaToken,
		Zones:        vista.Zones{Default: zone, Overrides: cfg.CinemaZones},
		Fields:       cfg.Fields,
		KeepRaw:      cfg.KeepRaw,
		MaxBodyBytes: cfg.MaxBody,
		Logger:       log.With("component", "vista"),
		Observe:      metrics.ObserveUpstream,
		Budget:       budget,
	})
	if err != nil {
		return fmt.Errorf("--vista-url: %w", err)
	}
	wcfg := warmer.Config{
		Redis:         m.rdb,
		Vista:         vc,
		Prefix:        cfg.Prefix,
		InstanceID:    cfg.InstanceID,
		LeaseTTL:      cfg.LeaseTTL,
		Policy:        cfg.Policy,
		CinemasCron:   cfg.CinemasCron,
		FilmsCron:     cfg.FilmsCron,
		SessionsCron:  cfg.SessionsCron,
		StreamMaxLen:  cfg.StreamMaxLen,
		KeepRaw:       cfg.KeepRaw,
		Fields:        cfg.Fields,
		MaxDrop:       cfg.MaxDrop,
		ShardedEvents: cfg.ShardedEvents,
		Windows:       cfg.Windows,
		Logger:        log,
		Metrics:       metrics,
		// A full sessions reload holds the old cache and the new list at
		// once; once it is in, that memory goes back to the OS rather than
		// waiting for the heap to need it.
		AfterReload: func(k keys.Kind) {
			if k == keys.Sessions {
				debug.FreeOSMemory()
			}
		},
	}
	w, err := warmer.New(wcfg)
	if err != nil {
		return err
	}
	m.current.Store(w)

	if m.httpLn, err = net.Listen("tcp", cfg.Listen); err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	m.httpSrv = &http.Server{
		Handler: newHandler(reg, liveStatus{&m.current}, &board{
			rdb:    func() redis.UniversalClient { return m.current.Load().Redis() },
			prefix: cfg.Prefix, reg: reg,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("http listening", "addr", m.HTTPAddr(), "endpoints", "/metrics /healthz /readyz", "board", "http://"+m.HTTPAddr()+"/")

	log.Info("starting", "version", buildOf().Version,
		"instance", cfg.InstanceID, "vista", vc.String(), "redis", redisShown, "prefix", cfg.Prefix,
		"default_zone", zone.String(), "horizon", cfg.Policy.Horizon, "near_window", cfg.Policy.NearWindow,
		"near_interval", cfg.Policy.NearInterval, "grace", cfg.Policy.Grace,
		"window_queries", cfg.Windows, "later_horizon", cfg.Policy.Later, "later_interval", cfg.Policy.LaterInterval,
		"cinemas_cron", cfg.CinemasCron, "films_cron", cfg.FilmsCron, "sessions_cron", cfg.SessionsCron,
		"upstream_concurrency", cfg.UpstreamConcurrency, "upstream_rate", cfg.UpstreamRate)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.supervise(gctx, wcfg) })
	g.Go(func() error { return m.serve(gctx) })
	if cfg.Demo {
		g.Go(func() error {
			demoHints(gctx, log, m.rdb, liveStatus{&m.current}, cfg.Prefix, redisCLI(m.redisOpt))
			return nil
		})
	}
	m.done = make(chan struct{})
	go func() {
		m.runErr = g.Wait()
		close(m.done)
	}()
	return nil
}

// serve serves the HTTP endpoints until ctx ends, then shuts the server
// down, letting the requests in flight finish for up to 5 s.
func (m *Main) serve(ctx context.Context) error {
	served := make(chan error, 1)
	go func() { served <- m.httpSrv.Serve(m.httpLn) }()
	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.httpSrv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	<-served // http.ErrServerClosed
	return nil
}

// supervise runs the warmer until ctx ends. When Redis turns out to be a
// cluster after the start (a cluster that came up after the warmer, a node
// answering MOVED), the warmer is stopped, a cluster client takes the plain
// one's place, and a new warmer runs on it.
func (m *Main) supervise(ctx context.Context, wcfg warmer.Config) error {
	w := m.current.Load()
	for {
		wctx, stop := context.WithCancel(ctx)
		ran := make(chan error, 1)
		go func() { ran <- w.Run(wctx) }()
		var rdb redis.UniversalClient
		for rdb == nil {
			select {
			case err := <-ran:
				stop()
				if err != nil && !errors.Is(err, context.Canceled) {
					return fmt.Errorf("warmer: %w", err)
				}
				return nil
			case <-m.clustered:
				c, err := clusterClient(ctx, m.redisOpt, m.Config.Prefix)
				if err != nil {
					stop()
					<-ran
					return err
				}
				rdb = c // nil: not a cluster after all, a stray answer
			}
		}
		stop()
		<-ran
		m.Logger.Info("redis is a cluster now; following its slots", "addr", m.redisOpt.Addr)
		old := m.rdb
		m.rdb, wcfg.Redis = rdb, rdb
		old.Close()
		var err error
		if w, err = warmer.New(wcfg); err != nil {
			return err
		}
		m.current.Store(w)
	}
}

// liveStatus is the probes' view of whichever warmer runs.
type liveStatus struct {
	w *atomic.Pointer[warmer.Warmer]
}

func (l liveStatus) Health(ctx context.Context) (bool, string) { return l.w.Load().Health(ctx) }
func (l liveStatus) Status(ctx context.Context) warmer.Status  { return l.w.Load().Status(ctx) }

// registerBudget exports the upstream budget's state, read at each scrape.
func registerBudget(reg prometheus.Registerer, b *vista.Budget) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vista_warmer_upstream_budget_in_use",
			Help: "Requests to Vista in flight (at most --upstream-concurrency).",
		}, func() float64 { return float64(b.InUse()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vista_warmer_upstream_budget_waiting",
			Help: "Requests to Vista waiting for the upstream budget: --upstream-concurrency, --upstream-rate or a Retry-After.",
		}, func() float64 { return float64(b.Waiting()) }),
	)
}

// Done is closed when the warmer and the HTTP server have stopped: after
// Close, or when one of them failed on its own.
func (m *Main) Done() <-chan struct{} { return m.done }

// Err is why the warmer or the HTTP server stopped on its own, once Done
// is closed.
func (m *Main) Err() error {
	select {
	case <-m.done:
		return m.runErr
	default:
		return nil
	}
}

// HTTPAddr is the address /metrics, /healthz and /readyz are served on,
// with the port chosen when --listen asked for :0.
func (m *Main) HTTPAddr() string {
	if m.httpLn == nil {
		return ""
	}
	return m.httpLn.Addr().String()
}

// RedisAddr is the host:port of the Redis in use, embedded or not.
func (m *Main) RedisAddr() string {
	if m.redisOpt == nil {
		return ""
	}
	return m.redisOpt.Addr
}

// Close stops the warmer, which finishes its write and releases the lease,
// then shuts the HTTP server and closes Redis, the simulated Vista and the
// embedded Redis. It is safe to call more than once.
func (m *Main) Close() error {
	m.closeOnce.Do(func() {
		if m.cancel != nil {
			m.cancel()
		}
		var errs []error
		if m.done != nil {
			<-m.done
		} else if m.httpLn != nil {
			m.httpLn.Close() // Run failed before it served
		}
		if m.rdb != nil {
			if err := m.rdb.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close redis: %w", err))
			}
		}
		if m.sim != nil {
			if err := m.sim.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close demo vista: %w", err))
			}
		}
		if m.mini != nil {
			m.mini.Close()
		}
		m.closeErr = errors.Join(errs...)
		if m.Logger != nil && m.closeErr == nil && m.done != nil {
			m.Logger.Info("stopped")
		}
	})
	return m.closeErr
}

// fail reports an error that ends the program and returns the exit status:
// 2 for a setting found wrong at start, 1 for anything else.
func (m *Main) fail(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(m.Stderr, "vista-warmer:", err)
		return 2
	}
	m.Logger.Error("stopped", "err", err)
	return 1
}
