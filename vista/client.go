package vista

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxRetries   = 4
	DefaultBaseDelay    = 500 * time.Millisecond
	DefaultMaxDelay     = 30 * time.Second
	DefaultMaxURLLength = 2000
	// DefaultMaxBodyBytes bounds one page of an answer. Vista may send a
	// whole list on one page: 100k sessions are about 60 MB of JSON.
	DefaultMaxBodyBytes = 256 << 20
)

const (
	tokenHeader = "connectapitoken"
	maxPages    = 10000
	maxErrBody  = 512 // how much of an error answer StatusError keeps
)

// Config configures a Client. Only BaseURL is required.
type Config struct {
	// BaseURL is the root of Vista Connect, e.g.
	// https://connect.example.com/WSVistaWebClient/ (a missing trailing
	// slash is fine). It must be an absolute http or https URL without a
	// query.
	BaseURL string
	// Token is sent as the header connectapitoken when set. It never
	// appears in an error, a log line or String.
	Token string
	// HTTPClient carries the requests; nil means a client with the default
	// transport's settings. The client is copied, so that the token is not
	// sent along a redirect to another host.
	HTTPClient *http.Client
	// Timeout bounds each attempt of each request, page by page; default 30s.
	Timeout time.Duration
	// MaxRetries is the number of retries after the first attempt; default
	// 4, negative means none.
	MaxRetries int
	// BaseDelay is the ceiling of the first backoff; default 500ms.
	BaseDelay time.Duration
	// MaxDelay caps a backoff and a Retry-After the client honours; default
	// 30s.
	MaxDelay time.Duration
	// MaxURLLength bounds the URL of a seat check; default 2000. Longer
	// lists of ids are split into several requests.
	MaxURLLength int
	// MaxBodyBytes bounds one page of an answer; default
	// DefaultMaxBodyBytes. A larger answer is an error, and the list it
	// belongs to is not read.
	MaxBodyBytes int64
	// Zones gives each cinema its time zone.
	Zones Zones
	// Fields names further Vista fields to read into each entity's Extra.
	Fields Fields
	// KeepRaw fills each entity's Raw with its row's JSON. Off, Raw is nil
	// and a list holds no copy of the rows it came from (at 500k sessions
	// that copy was the largest thing a reload held).
	KeepRaw bool
	// Logger receives retries (debug, then warn); nil discards.
	Logger *slog.Logger
	// Observe, when set, is called once per HTTP attempt with the endpoint
	// ("cinemas", "films", "sessions", "seats"), the status (0 when no
	// answer came) and the time the attempt took, body included (not the
	// wait for the Budget).
	Observe func(endpoint string, status int, d time.Duration)
	// Budget, when set, bounds the requests: every HTTP attempt acquires it
	// before it is sent, at the priority its context carries
	// (WithPriority), and releases it once the body is read; the wait is
	// added to the context's Ticket (WithTicket). A 429 or 503 with
	// Retry-After pauses the whole Budget for that long (capped at
	// MaxDelay); one without Retry-After halves its rate for a minute. Nil
	// bounds nothing. Several Clients may share one Budget.
	Budget *Budget
}

// Fields names Vista fields, by Vista's spelling, that the client reads
// besides its own into Cinema.Extra, Film.Extra and Session.Extra: a string
// as its text, null or absent as "", a number or boolean as its JSON text,
// an array or object as compact JSON. A value longer than MaxTextBytes is a
// row error.
type Fields struct {
	Cinemas, Films, Sessions []string
}

// Client reads Vista Connect. It is safe for concurrent use.
type Client struct {
	base       *url.URL // with a trailing slash
	token      string
	hc         *http.Client
	timeout    time.Duration
	maxRetries int
	baseDelay  time.Duration
	maxDelay   time.Duration
	maxURLLen  int
	maxBody    int64
	zones      Zones
	fields     Fields
	keepRaw    bool
	log        *slog.Logger
	observe    func(endpoint string, status int, d time.Duration)
	budget     *Budget

	// sel is the $select seat checks use: an index into seatSelects, and
	// whether a check with it has passed. Until one has, seat checks go
	// one at a time (mu), so that finding a server's narrower $select
	// costs at most two requests in all.
	sel struct {
		mu        sync.Mutex
		level     atomic.Int32
		proven    atomic.Bool
		exhausted atomic.Bool // narrowing was tried and did not help
	}

	// jitter returns a random duration in [0, d]; tests make it exact.
	jitter func(d time.Duration) time.Duration
	// sleep waits d or until ctx is done; tests record what was asked.
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	base, err := parseBase(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:       base,
		token:      cfg.Token,
		timeout:    cfg.Timeout,
		maxRetries: cfg.MaxRetries,
		baseDelay:  cfg.BaseDelay,
		maxDelay:   cfg.MaxDelay,
		maxURLLen:  cfg.MaxURLLength,
		maxBody:    cfg.MaxBodyBytes,
		zones:      cfg.Zones,
		fields:     cfg.Fields,
		keepRaw:    cfg.KeepRaw,
		log:        cfg.Logger,
		observe:    cfg.Observe,
		budget:     cfg.Budget,
		jitter:     fullJitter,
		sleep:      sleepCtx,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.baseDelay <= 0 {
		c.baseDelay = DefaultBaseDelay
	}
	if c.maxDelay <= 0 {
		c.maxDelay = DefaultMaxDelay
	}
	if c.maxURLLen <= 0 {
		c.maxURLLen = DefaultMaxURLLength
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxBodyBytes
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if min := len(c.seatURL(0, nil)) + len(seatTerm("x")); c.maxURLLen < min+32 {
		return nil, fmt.Errorf("vista: MaxURLLength %d is too small for the base URL (need at least %d)", c.maxURLLen, min+32)
	}
	c.hc = httpClient(cfg.HTTPClient, base)
	return c, nil
}

func parseBase(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		// url.Error quotes the whole URL, which may hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("vista: base URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("vista: base URL: want an absolute http or https URL")
	case u.Host == "":
		return nil, errors.New("vista: base URL: no host")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, errors.New("vista: base URL: must not have a query or a fragment")
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	return u, nil
}

// httpClient copies hc (or a default one) and makes it drop the token on a
// redirect away from the base URL's scheme and host: net/http only strips
// its own credential headers.
func httpClient(hc *http.Client, base *url.URL) *http.Client {
	var c http.Client
	if hc != nil {
		c = *hc
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 8
		c.Transport = t
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !sameOrigin(req.URL, base) {
			req.Header.Del(tokenHeader)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

func sameOrigin(u, base *url.URL) bool {
	return strings.EqualFold(u.Scheme, base.Scheme) && strings.EqualFold(u.Host, base.Host)
}

// String names the client by its base URL, without the token or a password.
func (c *Client) String() string {
	return "vista.Client(" + c.base.Redacted() + ")"
}
