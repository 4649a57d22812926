// Package reader reads the cache a vista-warmer keeps in Redis, for Go
// apps: typed cinemas, films and sessions, in as few round trips as Redis
// allows, and Watch, which follows the change events from the stream with
// nothing lost or repeated within an epoch.
//
// It works against a replica and as a read-only ACL user: it only reads
// and subscribes.
package reader

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
)

// ErrNotFound is returned for an id the cache does not hold.
var ErrNotFound = errors.New("reader: not in the cache")

// Reader reads one warmer's cache: one Redis (or replica, or cluster) and
// one prefix. It is safe for concurrent use.
type Reader struct {
	rdb    redis.UniversalClient
	prefix string

	mu    sync.Mutex
	zones map[string]*time.Location // by cinema id
}

// New returns a Reader of the cache under prefix ("vista" when empty).
func New(rdb redis.UniversalClient, prefix string) *Reader {
	if prefix == "" {
		prefix = "vista"
	}
	return &Reader{rdb: rdb, prefix: prefix, zones: map[string]*time.Location{}}
}

// Cinema is a cinema as the cache holds it.
type Cinema struct {
	ID, Name           string
	Address1, Address2 string
	City               string
	Latitude           float64
	Longitude          float64
	// Location is the zone its times are in (the hash's timezone).
	Location  *time.Location
	Extra     map[string]string // fields kept with --cinema-fields
	UpdatedAt time.Time
}

// Film is a film as the cache holds it.
type Film struct {
	ID, Title      string
	Rating         string
	RuntimeMinutes int
	OpeningDate    string
	Distributor    string
	CinemaIDs      []string
	Extra          map[string]string // fields kept with --film-fields
	UpdatedAt      time.Time
}

// Session is a showtime as the cache holds it. Showtime is in the
// cinema's zone.
type Session struct {
	ID, CinemaID, FilmID string
	SessionID            string
	Showtime             time.Time
	BusinessDate         string
	ScreenName           string
	ScreenNumber         int
	SeatsAvailable       int
	SoldoutStatus        int
	Status               string     // as Vista sent it
	State                keys.State // normalised
	Attributes           []string
	Extra                map[string]string // fields kept with --session-fields
	// UpdatedAt is when the warmer last confirmed it, ChangedAt when a
	// value last changed, NextCheckAt when the warmer looks again.
	UpdatedAt, ChangedAt, NextCheckAt time.Time
}

// Cinema returns one cinema.
func (r *Reader) Cinema(ctx context.Context, id string) (*Cinema, error) {
	h, err := r.rdb.HGetAll(ctx, keys.Cinema(r.prefix, id)).Result()
	if err != nil {
		return nil, err
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("cinema %s: %w", id, ErrNotFound)
	}
	return r.cinema(h), nil
}

// Film returns one film.
func (r *Reader) Film(ctx context.Context, id string) (*Film, error) {
	h, err := r.rdb.HGetAll(ctx, keys.Film(r.prefix, id)).Result()
	if err != nil {
		return nil, err
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("film %s: %w", id, ErrNotFound)
	}
	return film(h), nil
}

// Session returns one session.
func (r *Reader) Session(ctx context.Context, id string) (*Session, error) {
	h, err := r.rdb.HGetAll(ctx, keys.Session(r.prefix, id)).Result()
	if err != nil {
		return nil, err
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("session %s: %w", id, ErrNotFound)
	}
	return r.session(ctx, h)
}

// Hash returns an entity's hash as the cache holds it: the contract's
// field names, every value a string, the extra fields and raw included.
// It is the form for a program that hands the cache on as JSON; Cinema,
// Film and Session read the same hash typed.
func (r *Reader) Hash(ctx context.Context, k keys.Kind, id string) (map[string]string, error) {
	h, err := r.rdb.HGetAll(ctx, keys.Entity(r.prefix, k, id)).Result()
	if err != nil {
		return nil, err
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("%s %s: %w", k.Singular(), id, ErrNotFound)
	}
	return h, nil
}

// Cinemas returns every cinema, in two round trips.
func (r *Reader) Cinemas(ctx context.Context) ([]Cinema, error) {
	ids, err := r.rdb.SMembers(ctx, keys.Index(r.prefix, keys.Cinemas)).Result()
	if err != nil {
		return nil, err
	}
	hashes, err := r.hashes(ctx, keys.Cinemas, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Cinema, 0, len(hashes))
	for _, h := range hashes {
		out = append(out, *r.cinema(h))
	}
	return out, nil
}

// Films returns every film, in two round trips.
func (r *Reader) Films(ctx context.Context) ([]Film, error) {
	ids, err := r.rdb.SMembers(ctx, keys.Index(r.prefix, keys.Films)).Result()
	if err != nil {
		return nil, err
	}
	hashes, err := r.hashes(ctx, keys.Films, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Film, 0, len(hashes))
	for _, h := range hashes {
		out = append(out, *film(h))
	}
	return out, nil
}

// CinemaSessions returns a cinema's sessions whose showtime is in
// [from, to], in showtime order, in two round trips. An id the index
// holds whose hash is gone is left out: while no warmer runs, sessions
// expire (showtime + grace) but stay in the indexes until one comes back.
func (r *Reader) CinemaSessions(ctx context.Context, cinemaID string, from, to time.Time) ([]Session, error) {
	return r.sessionsIn(ctx, keys.CinemaSessions(r.prefix, cinemaID), from, to)
}

// FilmSessions returns a film's sessions whose showtime is in [from, to],
// in showtime order.
func (r *Reader) FilmSessions(ctx context.Context, filmID string, from, to time.Time) ([]Session, error) {
	return r.sessionsIn(ctx, keys.FilmSessions(r.prefix, filmID), from, to)
}

// Sessions returns every session whose showtime is in [from, to].
func (r *Reader) Sessions(ctx context.Context, from, to time.Time) ([]Session, error) {
	return r.sessionsIn(ctx, keys.Index(r.prefix, keys.Sessions), from, to)
}

// CinemaSessionHashes is CinemaSessions with each session as its hash
// holds it (see Hash), in showtime order.
func (r *Reader) CinemaSessionHashes(ctx context.Context, cinemaID string, from, to time.Time) ([]map[string]string, error) {
	return r.sessionHashes(ctx, keys.CinemaSessions(r.prefix, cinemaID), from, to)
}

func (r *Reader) sessionHashes(ctx context.Context, index string, from, to time.Time) ([]map[string]string, error) {
	ids, err := r.rdb.ZRangeByScore(ctx, index, &redis.ZRangeBy{
		Min: strconv.FormatInt(from.Unix(), 10), Max: strconv.FormatInt(to.Unix(), 10),
	}).Result()
	if err != nil {
		return nil, err
	}
	return r.hashes(ctx, keys.Sessions, ids)
}

func (r *Reader) sessionsIn(ctx context.Context, index string, from, to time.Time) ([]Session, error) {
	hashes, err := r.sessionHashes(ctx, index, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]Session, 0, len(hashes))
	for _, h := range hashes {
		s, err := r.session(ctx, h)
		if err != nil {
			return nil, err
		}
		out = append(out, *s)
	}
	return out, nil
}

// hashes reads the hashes of ids in one pipelined round trip, leaving out
// those that are gone: expired between the index and the read, or, while
// no warmer runs, expired and still indexed (only a warmer removes an id
// from the indexes).
func (r *Reader) hashes(ctx context.Context, k keys.Kind, ids []string) ([]map[string]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, keys.Entity(r.prefix, k, id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]map[string]string, 0, len(ids))
	for _, c := range cmds {
		if h := c.Val(); len(h) > 0 {
			out = append(out, h)
		}
	}
	return out, nil
}

func (r *Reader) cinema(h map[string]string) *Cinema {
	c := &Cinema{
		ID: h["id"], Name: h["name"], Address1: h["address1"], Address2: h["address2"], City: h["city"],
		Latitude: float(h["latitude"]), Longitude: float(h["longitude"]),
		Location: zone(h["timezone"]), Extra: extra(keys.Cinemas, h), UpdatedAt: stamp(h[keys.FieldUpdatedAt]),
	}
	r.mu.Lock()
	r.zones[c.ID] = c.Location
	r.mu.Unlock()
	return c
}

func film(h map[string]string) *Film {
	return &Film{
		ID: h["id"], Title: h["title"], Rating: h["rating"], RuntimeMinutes: integer(h["runtime_minutes"]),
		OpeningDate: h["opening_date"], Distributor: h["distributor"], CinemaIDs: list(h["cinema_ids"]),
		Extra: extra(keys.Films, h), UpdatedAt: stamp(h[keys.FieldUpdatedAt]),
	}
}

func (r *Reader) session(ctx context.Context, h map[string]string) (*Session, error) {
	loc, err := r.zone(ctx, h["cinema_id"])
	if err != nil {
		return nil, err
	}
	return &Session{
		ID: h["id"], CinemaID: h["cinema_id"], FilmID: h["film_id"], SessionID: h["session_id"],
		Showtime: stamp(h["showtime"]).In(loc), BusinessDate: h["business_date"],
		ScreenName: h["screen_name"], ScreenNumber: integer(h["screen_number"]),
		SeatsAvailable: integer(h["seats_available"]), SoldoutStatus: integer(h["soldout_status"]),
		Status: h["status"], State: keys.State(h["state"]), Attributes: list(h["attributes"]),
		Extra:     extra(keys.Sessions, h),
		UpdatedAt: stamp(h[keys.FieldUpdatedAt]), ChangedAt: stamp(h[keys.FieldChangedAt]),
		NextCheckAt: stamp(h[keys.FieldNextCheckAt]),
	}, nil
}

// zone returns a cinema's zone, read once per cinema: the showtime's
// offset alone does not say which zone it is.
func (r *Reader) zone(ctx context.Context, cinemaID string) (*time.Location, error) {
	r.mu.Lock()
	loc, ok := r.zones[cinemaID]
	r.mu.Unlock()
	if ok {
		return loc, nil
	}
	tz, err := r.rdb.HGet(ctx, keys.Cinema(r.prefix, cinemaID), "timezone").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	loc = zone(tz)
	r.mu.Lock()
	r.zones[cinemaID] = loc
	r.mu.Unlock()
	return loc, nil
}

func zone(name string) *time.Location {
	if loc, err := time.LoadLocation(name); err == nil && name != "" {
		return loc
	}
	return time.UTC
}

func stamp(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

func integer(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func float(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

func list(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// extra returns the fields of a hash that are neither the contract's nor
// bookkeeping: those an operator asked for.
func extra(k keys.Kind, h map[string]string) map[string]string {
	var out map[string]string
	for name, v := range h {
		if isContract(k, name) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = v
	}
	return out
}

func isContract(k keys.Kind, name string) bool {
	switch name {
	case keys.FieldRaw, keys.FieldUpdatedAt, keys.FieldChangedAt, keys.FieldNextCheckAt:
		return true
	}
	for _, f := range keys.Fields[k] {
		if f == name {
			return true
		}
	}
	return false
}
