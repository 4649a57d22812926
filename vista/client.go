package vista

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
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

// seatSelects are the $select of a seat check, widest first. Older Vista
// servers have no Status, and some no SoldoutStatus, and refuse a $select
// that names them (400): CheckSeats then narrows it.
var seatSelects = [...]string{
	"$select=ID,SeatsAvailable,SoldoutStatus,Status",
	"$select=ID,SeatsAvailable,SoldoutStatus",
	"$select=ID,SeatsAvailable",
}

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

// endpoint is one of the lists the client reads.
type endpoint struct {
	name   string // for Observe and logs: "cinemas", ...
	entity string // Vista's entity set, for StatusError: "Cinemas", ...
	list   string // for DecodeError: "cinemas", ...
	// once: one attempt per request, no retry. A seat check's retry is
	// its next due time, which the caller keeps; a retry here would only
	// spend the budget that nearer checks need.
	once bool
}

var (
	epCinemas  = endpoint{name: "cinemas", entity: "Cinemas", list: "cinemas"}
	epFilms    = endpoint{name: "films", entity: "ScheduledFilms", list: "films"}
	epSessions = endpoint{name: "sessions", entity: "Sessions", list: "sessions"}
	epSeats    = endpoint{name: "seats", entity: "Sessions", list: "sessions", once: true}
)

func (c *Client) listURL(ep endpoint) *url.URL {
	return c.base.ResolveReference(&url.URL{Path: "OData.svc/" + ep.entity})
}

// Cinemas reads every cinema, each with its zone resolved through
// Config.Zones. When some rows cannot be read it returns the others with a
// RowErrors.
func (c *Client) Cinemas(ctx context.Context) ([]Cinema, error) {
	var (
		cinemas []Cinema
		rowErrs RowErrors
	)
	one := rawOrNot(c.keepRaw, cinemaDecoder(c.resolve, c.fields.Cinemas), func(v *Cinema) { v.Raw = nil })
	err := c.fetchList(ctx, epCinemas, c.listURL(epCinemas), func(rows []json.RawMessage, first int) error {
		cinemas, rowErrs = decodeRows(cinemas, rowErrs, epCinemas.list, rows, first, one)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cinemas, rowErrors(rowErrs)
}

func (c *Client) resolve(id, tz string) *time.Location {
	loc, _ := c.zones.Resolve(id, tz)
	return loc
}

// Films reads the scheduled films, merging Vista's one row per cinema and
// film into one Film per ScheduledFilmId. When some rows cannot be read it
// returns the others with a RowErrors; a bad row's cinema is then missing
// from its film's CinemaIDs.
func (c *Client) Films(ctx context.Context) ([]Film, error) {
	var (
		filmRows []filmRow
		rowErrs  RowErrors
	)
	one := rawOrNot(c.keepRaw, filmDecoder(c.fields.Films), func(v *filmRow) { v.film.Raw = nil })
	err := c.fetchList(ctx, epFilms, c.listURL(epFilms), func(rows []json.RawMessage, first int) error {
		filmRows, rowErrs = decodeRows(filmRows, rowErrs, epFilms.list, rows, first, one)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return mergeFilms(filmRows), rowErrors(rowErrs)
}

// Sessions reads every session. zones gives each cinema's location by
// cinema ID, as Cinemas resolved it; a cinema missing from it gets
// Config.Zones' choice for a cinema without TimeZoneId. When some rows cannot
// be read it returns the others with a RowErrors.
func (c *Client) Sessions(ctx context.Context, zones map[string]*time.Location) ([]Session, error) {
	var sessions []Session
	err := c.SessionPages(ctx, zones, func(page []Session) error {
		sessions = append(sessions, page...)
		return nil
	})
	var rowErrs RowErrors
	if err != nil && !errors.As(err, &rowErrs) {
		return nil, err
	}
	return sessions, err
}

// SessionPages reads OData.svc/Sessions as Sessions does, but hands each
// page's sessions to each as soon as the page is decoded, so the whole
// list is never held at once. each may keep what it is given. An error of
// each stops the read (no further page is fetched) and is returned; the
// rows that could not be read come back at the end as RowErrors, as from
// Sessions.
func (c *Client) SessionPages(ctx context.Context, zones map[string]*time.Location, each func([]Session) error) error {
	resolved := make(map[string]*time.Location)
	zone := func(cinemaID string) *time.Location {
		if loc := zones[cinemaID]; loc != nil {
			return loc
		}
		loc, ok := resolved[cinemaID]
		if !ok {
			loc = c.resolve(cinemaID, "")
			resolved[cinemaID] = loc
		}
		return loc
	}
	var rowErrs RowErrors
	one := rawOrNot(c.keepRaw, sessionDecoder(zone, c.fields.Sessions), func(v *Session) { v.Raw = nil })
	err := c.fetchList(ctx, epSessions, c.listURL(epSessions), func(rows []json.RawMessage, first int) error {
		var page []Session
		page, rowErrs = decodeRows(page, rowErrs, epSessions.list, rows, first, one)
		return each(page)
	})
	if err != nil {
		return err
	}
	return rowErrors(rowErrs)
}

// rowErrors keeps a nil RowErrors from becoming a non-nil error.
func rowErrors(r RowErrors) error {
	if len(r) == 0 {
		return nil
	}
	return r
}

// RejectedError names the ids of a seat check that Vista refused (400 Bad
// Request) even when asked about one at a time. The other ids were checked.
type RejectedError struct {
	IDs []string
	Err error // the answer for the first of them, a *StatusError
}

// Error names the first few refused ids.
func (e *RejectedError) Error() string {
	return fmt.Sprintf("vista: seat check rejected for %d session(s) %s: %v", len(e.IDs), quoteIDs(e.IDs), e.Err)
}

// Unwrap returns the answer for the first refused id.
func (e *RejectedError) Unwrap() error { return e.Err }

func quoteIDs(ids []string) string {
	const show = 5
	q := make([]string, 0, show)
	for i, id := range ids {
		if i == show {
			q = append(q, fmt.Sprintf("and %d more", len(ids)-show))
			break
		}
		q = append(q, strconv.Quote(excerpt(id)))
	}
	return strings.Join(q, ", ")
}

// CheckSeats asks Vista for the seats of the sessions ids, in as few
// requests as MaxURLLength allows, one after another. seats follows the order
// of ids (each id once); gone lists the ids Vista no longer knows.
//
// Each request is made once: a failed one (a 5xx, a 429, a timeout) is not
// retried here, as the caller's next check is its retry. Its requests wait
// for the Budget at ctx's priority: pass the earliest showtime of ids with
// WithPriority, and a Ticket (WithTicket) to learn how long they waited.
//
// An id Vista refuses on its own (400) costs only itself: the others are
// still checked, and err is then a *RejectedError naming it. A row of the
// answer that cannot be read makes err hold a RowErrors; such ids are neither
// in seats nor in gone. Any other error stops the check: seats and gone then
// hold what the requests before it found.
//
// Older Vista servers have no Status or SoldoutStatus and refuse a $select
// that names them. Until a seat check has passed, a refused request is
// asked again once without Status, then once without SoldoutStatus too,
// before its ids are taken to be at fault; the narrowest $select that works
// is kept for the life of the Client. Seats then reports the fields it did
// not get as absent (HasStatus, HasSoldoutStatus).
func (c *Client) CheckSeats(ctx context.Context, ids []string) (seats []Seats, gone []string, err error) {
	ids = dedup(ids)
	found := make(map[string]Seats, len(ids))
	isGone := make(map[string]bool)
	var (
		rejected *RejectedError
		rowErrs  RowErrors
		answered bool // some request of this check got an answer
		probed   bool
	)
	var check func(batch []string) error
	check = func(batch []string) error {
		rows, err := c.seatRequest(ctx, batch)
		var se *StatusError
		// 414 too: the server's bound on a URL may be below MaxURLLength.
		if errors.As(err, &se) && (se.StatusCode == http.StatusBadRequest || se.StatusCode == http.StatusRequestURITooLong) {
			if len(batch) == 1 {
				if rejected == nil {
					rejected = &RejectedError{Err: err}
				}
				rejected.IDs = append(rejected.IDs, batch[0])
				// Refused down to one id before any answer: is it this id,
				// or does Vista refuse every query of this form? One more
				// id, from the other end, tells, rather than 2n-1 requests.
				if last := ids[len(ids)-1]; !answered && !probed && last != batch[0] {
					probed = true
					if err := check([]string{last}); err != nil {
						return err
					}
					if !answered {
						// Should the $select be at fault after all (the
						// first batch that tried narrowing it held a bad
						// id), the next check tries narrowing again.
						c.sel.exhausted.Store(false)
						return fmt.Errorf("vista %s: every seat check refused: %w", epSeats.entity, se)
					}
				}
				return nil
			}
			half := len(batch) / 2
			if err := check(batch[:half]); err != nil {
				return err
			}
			return check(batch[half:])
		}
		if err != nil {
			return err
		}
		answered = true
		got, bad := decodeSeats(rows, 0)
		rowErrs = append(rowErrs, bad...)
		asked := make(map[string]bool, len(batch))
		for _, id := range batch {
			asked[id] = true
		}
		answered := make(map[string]bool, len(got))
		for _, s := range got {
			if asked[s.ID] {
				found[s.ID] = s
				answered[s.ID] = true
			}
		}
		blind := false // a row without a readable ID may be any of the batch
		for _, e := range bad {
			answered[e.ID] = true
			blind = blind || e.ID == ""
		}
		if !blind {
			for _, id := range batch {
				if !answered[id] {
					isGone[id] = true
				}
			}
		}
		return nil
	}
	for _, batch := range c.seatBatches(ids) {
		if err = check(batch); err != nil {
			break
		}
	}
	for _, id := range ids {
		if s, ok := found[id]; ok {
			seats = append(seats, s)
		} else if isGone[id] {
			gone = append(gone, id)
		}
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if rejected != nil {
		errs = append(errs, rejected)
	}
	if len(rowErrs) > 0 {
		errs = append(errs, rowErrs)
	}
	if len(errs) == 1 {
		return seats, gone, errs[0]
	}
	return seats, gone, errors.Join(errs...)
}

// SeatSelect returns the $select seat checks use now.
func (c *Client) SeatSelect() string {
	return seatSelects[c.sel.level.Load()]
}

// seatRequest asks for the seats of one batch, narrowing the $select while
// no seat check has passed yet (see CheckSeats).
func (c *Client) seatRequest(ctx context.Context, batch []string) ([]json.RawMessage, error) {
	if !c.sel.proven.Load() {
		c.sel.mu.Lock()
		defer c.sel.mu.Unlock()
	}
	level := c.sel.level.Load()
	rows, err := c.fetchSeats(ctx, level, batch)
	if err == nil {
		c.sel.proven.Store(true)
		return rows, nil
	}
	if !isBadRequest(err) || c.sel.proven.Load() || c.sel.exhausted.Load() {
		return nil, err
	}
	for l := level + 1; l < int32(len(seatSelects)); l++ {
		narrow, nerr := c.fetchSeats(ctx, l, batch)
		switch {
		case nerr == nil:
			c.sel.level.Store(l)
			c.sel.proven.Store(true)
			c.log.Warn("vista refuses the seat check's fields; asking for fewer from now on",
				"was", seatSelects[level], "now", seatSelects[l])
			return narrow, nil
		case !isBadRequest(nerr):
			return nil, nerr // no verdict on the $select: ask again next time
		}
	}
	c.sel.exhausted.Store(true)
	return nil, err
}

func isBadRequest(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.StatusCode == http.StatusBadRequest
}

func (c *Client) fetchSeats(ctx context.Context, level int32, batch []string) ([]json.RawMessage, error) {
	u, err := url.Parse(c.seatURL(level, batch))
	if err != nil {
		return nil, fmt.Errorf("vista %s: %w", epSeats.entity, err)
	}
	var rows []json.RawMessage
	if err := c.fetchList(ctx, epSeats, u, func(page []json.RawMessage, _ int) error { rows = append(rows, page...); return nil }); err != nil {
		return nil, err
	}
	return rows, nil
}

func dedup(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// seatURL is the URL of a seat check for ids with the $select of level,
// as sent.
func (c *Client) seatURL(level int32, ids []string) string {
	var b strings.Builder
	b.WriteString(c.listURL(epSeats).String())
	b.WriteString("?" + seatSelects[level] + "&$filter=")
	for i, id := range ids {
		if i > 0 {
			b.WriteString(seatOr)
		}
		b.WriteString(seatTerm(id))
	}
	return b.String()
}

var seatOr = queryEscape(" or ")

// seatTerm is the escaped filter term for one id. OData quotes a string
// literal in single quotes and doubles a quote inside it.
func seatTerm(id string) string {
	return queryEscape("ID eq '" + strings.ReplaceAll(id, "'", "''") + "'")
}

// queryEscape escapes s for a query, with spaces as %20: not every OData
// server reads + as a space.
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// seatBatches splits ids so that each seat-check URL stays within
// MaxURLLength. An id too long to fit on its own goes alone: the server will
// refuse it or answer it, and either way it costs only itself.
func (c *Client) seatBatches(ids []string) [][]string {
	prefix := len(c.seatURL(0, nil)) // the widest $select: the bound holds for all
	var (
		batches [][]string
		cur     []string
		n       int
	)
	for _, id := range ids {
		l := len(seatTerm(id))
		if len(cur) > 0 && n+len(seatOr)+l > c.maxURLLen {
			batches = append(batches, cur)
			cur = nil
		}
		if len(cur) == 0 {
			n = prefix + l
		} else {
			n += len(seatOr) + l
		}
		cur = append(cur, id)
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	return batches
}

// rawOrNot returns a row decoder that keeps the row's Raw only with keep.
func rawOrNot[T any](keep bool, one func(*row, json.RawMessage) (T, *DecodeError), drop func(*T)) func(*row, json.RawMessage) (T, *DecodeError) {
	if keep {
		return one
	}
	return func(r *row, raw json.RawMessage) (T, *DecodeError) {
		v, err := one(r, raw)
		drop(&v)
		return v, err
	}
}

// fetchList reads every page of a list, starting at u, and hands each
// page's rows to each as soon as the page is read, with the index of the
// first of them in the whole list. The page's bytes are dropped before the
// next page is asked for, so that a list of any length holds one page at a
// time, and each should keep only what it decodes. After an error the caller
// must drop what each was given: a partial list reads as entities that
// disappeared.
func (c *Client) fetchList(ctx context.Context, ep endpoint, u *url.URL, each func(rows []json.RawMessage, first int) error) error {
	seen := make(map[string]bool)
	first := 0
	for pages := 0; ; pages++ {
		if pages == maxPages {
			return fmt.Errorf("vista %s: more than %d pages", ep.entity, maxPages)
		}
		seen[u.String()] = true
		body, err := c.get(ctx, ep, u)
		if err != nil {
			return err
		}
		p, err := decodePage(ep.list, body)
		if err != nil {
			return err
		}
		if err := each(p.rows, first); err != nil {
			return err
		}
		first += len(p.rows)
		if p.next == "" {
			return nil
		}
		next, err := u.Parse(p.next)
		if err != nil {
			return fmt.Errorf("vista %s: next link: %w", ep.entity, err)
		}
		switch {
		case !sameOrigin(next, c.base):
			// Following it would hand the token to another host, or send it
			// in clear text.
			return fmt.Errorf("vista %s: next link leaves %s://%s", ep.entity, c.base.Scheme, c.base.Host)
		case seen[next.String()]:
			return fmt.Errorf("vista %s: next link loops back to a page already read", ep.entity)
		}
		u = next
	}
}

// get fetches u, retrying what may pass: transport errors, timeouts, 408, 429
// and 5xx, except for an endpoint asked once (seat checks). A context that
// ends stops it at once, in a backoff or a wait for the budget too.
func (c *Client) get(ctx context.Context, ep endpoint, u *url.URL) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("vista %s: %w", ep.entity, err)
		}
		body, retryAfter, err := c.attempt(ctx, ep, u)
		if err == nil {
			return body, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("vista %s: %w", ep.entity, ctx.Err())
		}
		var ae *attemptError
		if !errors.As(err, &ae) {
			return nil, err
		}
		if attempt >= c.maxRetries || ep.once {
			return nil, ae.err
		}
		delay := c.backoff(attempt)
		if retryAfter >= 0 {
			delay = min(retryAfter, c.maxDelay)
		}
		level := slog.LevelDebug
		if attempt > 0 {
			level = slog.LevelWarn
		}
		c.log.Log(ctx, level, "vista request failed, retrying",
			"endpoint", ep.name, "attempt", attempt+1, "delay", delay, "err", err)
		if err := c.sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("vista %s: %w", ep.entity, err)
		}
	}
}

// backoff is a full-jitter delay: random in [0, min(MaxDelay, BaseDelay*2^attempt)].
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.baseDelay
	for i := 0; i < attempt && ceiling < c.maxDelay; i++ {
		if ceiling > c.maxDelay/2 {
			ceiling = c.maxDelay
			break
		}
		ceiling *= 2
	}
	return c.jitter(min(ceiling, c.maxDelay))
}

func fullJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// attemptError is a failed attempt that may pass on a retry.
type attemptError struct{ err error }

func (e *attemptError) Error() string { return e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

// attempt makes one request, within the budget. retryAfter is the server's
// Retry-After, or -1. Errors for a retry are wrapped in *attemptError.
func (c *Client) attempt(ctx context.Context, ep endpoint, u *url.URL) (body []byte, retryAfter time.Duration, err error) {
	retryAfter = -1
	// Acquired before the attempt's timeout starts: a wait for the budget
	// is not the server's slowness.
	release, err := c.budget.acquireFor(ctx)
	if err != nil {
		return nil, retryAfter, fmt.Errorf("vista %s: %w", ep.entity, err)
	}
	defer release()
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, retryAfter, fmt.Errorf("vista %s: %w", ep.entity, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set(tokenHeader, c.token)
	}
	start := time.Now()
	status := 0
	defer func() {
		if c.observe != nil {
			c.observe(ep.name, status, time.Since(start))
		}
	}()
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, retryAfter, c.transportError(ep, actx, err)
	}
	defer resp.Body.Close()
	status = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		excerptBody, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection can be reused
		se := &StatusError{Endpoint: ep.entity, StatusCode: resp.StatusCode, Body: c.cleanBody(excerptBody)}
		switch code := resp.StatusCode; {
		case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
			if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				retryAfter = d
				c.pause(ep, min(d, c.maxDelay))
			} else {
				c.budget.slowDown()
			}
			return nil, retryAfter, &attemptError{se}
		case code == http.StatusRequestTimeout || code >= 500:
			return nil, retryAfter, &attemptError{se}
		}
		return nil, retryAfter, se
	}
	if resp.ContentLength > c.maxBody {
		return nil, retryAfter, fmt.Errorf("vista %s: answer of %d bytes, more than the %d allowed", ep.entity, resp.ContentLength, c.maxBody)
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return nil, retryAfter, c.transportError(ep, actx, err)
	}
	if int64(len(body)) > c.maxBody {
		return nil, retryAfter, fmt.Errorf("vista %s: answer larger than the %d bytes allowed", ep.entity, c.maxBody)
	}
	return body, retryAfter, nil
}

// pause holds every request of the budget for d: Vista asked for it, and
// asked the client, not this one request.
func (c *Client) pause(ep endpoint, d time.Duration) {
	if c.budget == nil || d <= 0 {
		return
	}
	c.log.Warn("vista asks to wait; pausing every request", "endpoint", ep.name, "for", d)
	c.budget.pauseFor(d)
}

// transportError describes a request that got no (whole) answer. A timeout of
// the attempt is reported as such, not as the caller's deadline.
func (c *Client) transportError(ep endpoint, actx context.Context, err error) error {
	if actx.Err() == context.DeadlineExceeded {
		return &attemptError{fmt.Errorf("vista %s: no answer within %v", ep.entity, c.timeout)}
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		return fmt.Errorf("vista %s: %w", ep.entity, err) // retrying does not fix a certificate
	}
	return &attemptError{fmt.Errorf("vista %s: %w", ep.entity, err)}
}

// cleanBody keeps the start of an error answer readable on one log line and
// free of the token, should the server echo it.
func (c *Client) cleanBody(b []byte) string {
	s := strings.ToValidUTF8(string(b), "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if c.token != "" {
		s = strings.ReplaceAll(s, c.token, "[redacted]")
	}
	return s
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP-date
// (RFC 9110, 10.2.3). A date in the past means now.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		const maxSecs = uint64(1<<63-1) / uint64(time.Second)
		if secs > maxSecs {
			secs = maxSecs
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
