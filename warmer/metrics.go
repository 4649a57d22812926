package warmer

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vista-warmer/vista-warmer/keys"
)

// Metrics are the warmer's Prometheus metrics. One set serves one warmer;
// tests give each warmer its own registry.
type Metrics struct {
	changes     *prometheus.CounterVec
	upstream    *prometheus.CounterVec
	upstreamDur *prometheus.HistogramVec
	redisWrite  prometheus.Histogram
	events      *prometheus.CounterVec
	tiers       *prometheus.GaugeVec
	lastReload  *prometheus.GaugeVec
	leaseHeld   *funcGauge
	errors      *prometheus.CounterVec
	badRows     *prometheus.CounterVec
	duplicates  *prometheus.CounterVec
	dropsHeld   *prometheus.CounterVec
	dropHeld    *prometheus.GaugeVec

	checkRemovals *prometheus.CounterVec
	checksDoubted prometheus.Counter
	writes        prometheus.Counter
	repairs       *prometheus.CounterVec
	lateness      *prometheus.HistogramVec
	unkept        *prometheus.HistogramVec
	slipped       *prometheus.CounterVec
	checksSent    *prometheus.CounterVec
	sweeps        *prometheus.CounterVec

	redisFailures *prometheus.CounterVec
	fullReloads   *prometheus.CounterVec
	reloadTook    *prometheus.HistogramVec
	redisUp       *funcGauge
	heartbeat     prometheus.Gauge
}

// errorOps are the operations vista_warmer_errors_total counts.
var errorOps = []string{"take_over", "reload_cinemas", "reload_films", "reload_sessions", "expire", "check",
	"heartbeat", "lease", "restore_meta"}

// redisFailureCodes are the codes of describe, as the metric labels them.
var redisFailureCodes = []string{"oom", "readonly", "auth", "acl", "not_serving", "tls", "unreachable", "error"}

// What a repair mended, as the metric labels it.
const (
	repairIndex = "index" // an index key that disagreed with the cache
	repairHash  = "hash"  // an entity's hash that Redis had lost
)

// The outcomes of a change, as the project this one replaces counted them.
const (
	outUnchanged = "unchanged"
	outUpdated   = "updated"
	outAdded     = "added"
	outRemoved   = "removed"
)

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, which suits tests that do not read them).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vista_warmer_changes_total",
			Help: "Entities looked at, by kind and outcome (unchanged, updated, added, removed).",
		}, []string{"kind", "outcome"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vista_warmer_upstream_requests_total",
			Help: "HTTP requests to Vista, by endpoint and status code (0: no answer).",
		}, []string{"endpoint", "status"}),
		upstreamDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vista_warmer_upstream_request_duration_seconds",
			Help:    "Latency of HTTP requests to Vista, by endpoint.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 10),
		}, []string{"endpoint"}),
		redisWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vista_warmer_redis_write_duration_seconds",
			Help:    "Latency of one fenced write (one script call, a batch of changes).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 10),
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vista_warmer_events_published_total",
			Help: "Change events published, by kind and event.",
		}, []string{"kind", "event"}),
		tiers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vista_warmer_sessions",
			Help: "Sessions held, by proximity tier (beyond_horizon, approaching, near, started).",
		}, []string{"tier"}),
		lastReload: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vista_warmer_last_reload_timestamp_seconds",
			Help: "Unix time of the last successful full reload, by kind.",
		}, []string{"kind"}),
		leaseHeld: newFuncGauge("vista_warmer_lease_held", "1 while this instance holds the lease and writes, 0 on standby."),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vista_warmer_errors_total",
			Help: "Failed operations, by operation (take_over, reload_cinemas, reload_films, reload_sessions, expire, check, heartbeat, lease, restore_meta); every series exists from the start at 0.",
		}, []string{"op"}),
		badRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vista_warmer_rows_refused_total",
			Help: "Rows of Vista's lists that were not cached, by kind and reason (unreadable, unsafe_id, too_large, out_of_range).",
		}, []string{"kind", "reason"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vista_warmer_duplicate_rows_total",
			Help: "Rows of Vista's lists whose id an earlier row of the same list had (the last row counts), by kind.",
		}, []string{"kind"}),
		dropsHeld: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vista_warmer_drops_held_total",
			Help: "Full reloads whose removals were held back for removing more than --max-drop of a kind, by kind.",
		}, []string{"kind"}),
		checkRemovals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vista_warmer_check_removals_total",
			Help: "Sessions seat checks removed, by reason (gone: Vista no longer has it; cancelled).",
		}, []string{"reason"}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vista_warmer_fenced_writes_total",
			Help: "Fenced writes (one script call each: a batch of changes and their events, or a heartbeat) that Redis ran: this instance wrote as the lease's holder.",
		}),
		checksDoubted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vista_warmer_checks_doubted_total",
			Help: "Sessions a seat check called gone in an answer that found none of those asked for: not believed on its own (checked again; past a batch, a held drop).",
		}),
		dropHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vista_warmer_drop_held",
			Help: "1 while a drop of the kind is held back, waiting for a reload to confirm it; /readyz is not ready meanwhile.",
		}, []string{"kind"}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vista_warmer_repairs_total",
			Help: "Things in Redis the warmer found broken and mended, by kind and what (index: an index key; hash: an entity's hash Redis had lost).",
		}, []string{"kind", "what"}),
		lateness: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vista_warmer_check_lateness_seconds",
			Help:    "How late a session's seat check went out against its due time, or against when this instance began to write if that was later, the wait for the upstream budget included, by tier. What was overdue before then is in vista_warmer_check_unkept_seconds.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300},
		}, []string{"tier"}),
		unkept: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vista_warmer_check_unkept_seconds",
			Help:    "How long a session's seat check had been overdue when this instance began to write (after a stop, a failover or a pause: no warmer kept the cache meanwhile), by tier; one observation per check found overdue.",
			Buckets: []float64{1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200},
		}, []string{"tier"}),
		slipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vista_warmer_checks_slipped_total",
			Help: "Seat checks that went out more than a second late because they waited for the upstream budget (--upstream-concurrency, --upstream-rate, Retry-After), by tier.",
		}, []string{"tier"}),
		checksSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vista_warmer_session_checks_total",
			Help: "Sessions asked for in seat checks, by how: due (at or after their due time) or early (riding along within half their interval).",
		}, []string{"how"}),
		sweeps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vista_warmer_window_queries_total",
			Help: "Window queries (the seats of every session in a span of showtimes) answered, by window (near: the grace and the horizon; later: the horizon to --later-horizon) and outcome: ok, slow (longer than the sweep's interval: counts as a failure), refused (400: checks by id alone for an hour), failed.",
		}, []string{"window", "outcome"}),
		redisFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vista_warmer_redis_failures_total",
			Help: "Redis operations that failed, by what (lease, writes) and why: oom (maxmemory), readonly (a replica), auth, acl, not_serving (LOADING, MASTERDOWN...), tls, unreachable, error.",
		}, []string{"op", "why"}),
	}
	m.fullReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vista_warmer_full_reloads_total",
		Help: "Full reloads taken into the cache (each ends in a full_reload event), by kind.",
	}, []string{"kind"})
	m.reloadTook = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "vista_warmer_reload_duration_seconds",
		Help:    "How long full reloads took, from the first request to the last write, by kind.",
		Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
	}, []string{"kind"})
	m.heartbeat = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vista_warmer_heartbeat_timestamp_seconds",
		Help: "When this instance, as writer, last wrote P:meta's heartbeat (Unix seconds); 0 before it has.",
	})
	m.redisUp = newFuncGauge("vista_warmer_redis_up",
		"1 while Redis answers the lease keeper; 0 once a try of its got no answer, or one has waited for half the lease TTL (as /healthz says).")
	for _, op := range errorOps {
		m.errors.WithLabelValues(op)
	}
	for _, op := range []string{"lease", "writes"} {
		for _, code := range redisFailureCodes {
			m.redisFailures.WithLabelValues(op, code)
		}
	}
	for _, t := range Tiers {
		if t != "expired" && t != "beyond_horizon" {
			m.lateness.WithLabelValues(t)
			m.unkept.WithLabelValues(t)
			m.slipped.WithLabelValues(t)
		}
	}
	m.checksSent.WithLabelValues("due")
	m.checksSent.WithLabelValues("early")
	for _, w := range []string{"near", "later"} {
		for _, o := range []string{"ok", "slow", "refused", "failed"} {
			m.sweeps.WithLabelValues(w, o)
		}
	}
	m.checkRemovals.WithLabelValues(keys.ReasonGone)
	m.checkRemovals.WithLabelValues(keys.ReasonCancelled)
	for _, k := range keys.Kinds {
		kind := string(k)
		m.fullReloads.WithLabelValues(kind)
		for _, o := range []string{outUnchanged, outUpdated, outAdded, outRemoved} {
			m.changes.WithLabelValues(kind, o)
		}
		// Every series exists from the start, so an alert on the first
		// increase sees it.
		for _, reason := range badReasons {
			m.badRows.WithLabelValues(kind, reason)
		}
		m.duplicates.WithLabelValues(kind)
		m.dropsHeld.WithLabelValues(kind)
		m.dropHeld.WithLabelValues(kind)
		m.repairs.WithLabelValues(kind, repairIndex)
		m.repairs.WithLabelValues(kind, repairHash)
	}
	m.setTiers(nil)
	if reg != nil {
		reg.MustRegister(m.changes, m.upstream, m.upstreamDur, m.redisWrite, m.events,
			m.tiers, m.lastReload, m.leaseHeld, m.errors, m.badRows, m.duplicates, m.dropsHeld,
			m.dropHeld, m.checkRemovals, m.checksDoubted, m.writes, m.repairs, m.lateness, m.unkept, m.slipped, m.checksSent, m.sweeps, m.redisFailures, m.fullReloads, m.reloadTook, m.redisUp, m.heartbeat)
	}
	return m
}

// ObserveUpstream records one HTTP request to Vista; it fits vista.Config.Observe.
func (m *Metrics) ObserveUpstream(endpoint string, status int, d time.Duration) {
	m.upstream.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
	m.upstreamDur.WithLabelValues(endpoint).Observe(d.Seconds())
}

// setTiers sets the sessions-per-tier gauges from counts; nil sets them all
// to zero. Expired sessions are not held, so that tier has no gauge.
func (m *Metrics) setTiers(counts map[string]int) {
	for _, t := range Tiers {
		if t != "expired" {
			m.tiers.WithLabelValues(t).Set(float64(counts[t]))
		}
	}
}

// funcGauge is a gauge read when scraped, from what the parts saw:
// vista_warmer_lease_held and vista_warmer_redis_up. A writer cut off from
// Redis cannot learn that it lost the lease, and its lease keeper may wait
// on Redis for long: a value read when scraped says so while it waits.
type funcGauge struct {
	desc *prometheus.Desc
	val  atomic.Value // func() float64
}

func newFuncGauge(name, help string) *funcGauge {
	g := &funcGauge{desc: prometheus.NewDesc(name, help, nil, nil)}
	g.val.Store(func() float64 { return 0 })
	return g
}

func (g *funcGauge) Set(f func() float64) { g.val.Store(f) }

func (g *funcGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *funcGauge) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, g.val.Load().(func() float64)())
}
