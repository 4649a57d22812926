package reader

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
)

// Mirror is an in-process copy of the cache, or of chosen cinemas' part of
// it, loaded from the keys and kept in step by Watch: read with no round
// trip at all, as the library this project replaces was, but fed by one
// shared warmer. Its reads are safe for concurrent use while Run runs.
type Mirror struct {
	r    *Reader
	only map[string]bool // the cinemas kept; nil: all

	// Handlers, called from Run's goroutine after the copy took the
	// change in. Each may be nil.
	OnItem       func(k keys.Kind, id string)                // added or changed
	OnRemoved    func(k keys.Kind, id string, reason string) // removed_item
	OnFullReload func(k keys.Kind)                           // reloaded whole, or read again after a Resync

	mu       sync.RWMutex
	cinemas  map[string]Cinema
	films    map[string]Film
	sessions map[string]Session
	at       Position
	ready    chan struct{}
	once     sync.Once
}

// NewMirror returns a Mirror of the cache r reads; with cinema ids, only
// those cinemas and their sessions are kept (films are kept whole). Run
// loads and follows it.
func NewMirror(r *Reader, cinemaIDs ...string) *Mirror {
	m := &Mirror{r: r, ready: make(chan struct{})}
	if len(cinemaIDs) > 0 {
		m.only = map[string]bool{}
		for _, id := range cinemaIDs {
			m.only[id] = true
		}
	}
	return m
}

// Ready is closed once the first load is in.
func (m *Mirror) Ready() <-chan struct{} { return m.ready }

// Run loads the copy, then keeps it in step until ctx ends. Events
// published while it loads are not lost: it follows them from where the
// stream stood before the load.
func (m *Mirror) Run(ctx context.Context) error {
	from, err := m.r.newest(ctx)
	if err != nil {
		return err
	}
	if err := m.load(ctx); err != nil {
		return err
	}
	m.once.Do(func() { close(m.ready) })
	return m.r.Watch(ctx, Position{StreamID: from}, func(ev Event) error {
		return m.take(ctx, ev)
	})
}

// load reads everything the mirror keeps, and replaces the copy with it.
func (m *Mirror) load(ctx context.Context) error {
	cinemas, err := m.r.Cinemas(ctx)
	if err != nil {
		return err
	}
	films, err := m.r.Films(ctx)
	if err != nil {
		return err
	}
	var sessions []Session
	if m.only == nil {
		sessions, err = m.r.Sessions(ctx, time.Unix(0, 0), time.Unix(1<<40, 0))
		if err != nil {
			return err
		}
	} else {
		for id := range m.only {
			s, err := m.r.CinemaSessions(ctx, id, time.Unix(0, 0), time.Unix(1<<40, 0))
			if err != nil {
				return err
			}
			sessions = append(sessions, s...)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cinemas, m.films, m.sessions = map[string]Cinema{}, map[string]Film{}, map[string]Session{}
	for _, c := range cinemas {
		if m.keeps(c.ID) {
			m.cinemas[c.ID] = c
		}
	}
	for _, f := range films {
		m.films[f.ID] = f
	}
	for _, s := range sessions {
		m.sessions[s.ID] = s
	}
	return nil
}

func (m *Mirror) keeps(cinemaID string) bool { return m.only == nil || m.only[cinemaID] }

// take applies one event: the entity is read again from its key, a
// removal dropped, a full reload or a Resync read whole.
func (m *Mirror) take(ctx context.Context, ev Event) error {
	m.mu.Lock()
	m.at = ev.Position
	m.mu.Unlock()
	if ev.Resync || ev.Event.Event == keys.EventFullReload {
		if err := m.load(ctx); err != nil {
			return err
		}
		kinds := []keys.Kind{ev.Kind}
		if ev.Resync {
			kinds = keys.Kinds
		}
		for _, k := range kinds {
			if m.OnFullReload != nil {
				m.OnFullReload(k)
			}
		}
		return nil
	}
	switch ev.Event.Event {
	case keys.EventRemoved:
		m.mu.Lock()
		kept := m.drop(ev.Kind, ev.ID)
		m.mu.Unlock()
		if kept && m.OnRemoved != nil {
			m.OnRemoved(ev.Kind, ev.ID, ev.Reason)
		}
	case keys.EventItem:
		kept, err := m.refresh(ctx, ev.Kind, ev.ID)
		if err != nil {
			return err
		}
		if kept && m.OnItem != nil {
			m.OnItem(ev.Kind, ev.ID)
		}
	}
	return nil
}

func (m *Mirror) drop(k keys.Kind, id string) bool {
	switch k {
	case keys.Cinemas:
		_, ok := m.cinemas[id]
		delete(m.cinemas, id)
		return ok
	case keys.Films:
		_, ok := m.films[id]
		delete(m.films, id)
		return ok
	default:
		_, ok := m.sessions[id]
		delete(m.sessions, id)
		return ok
	}
}

// refresh reads one entity again; it reports whether the mirror keeps it.
// One that is gone already (a removal follows) is left to that removal.
func (m *Mirror) refresh(ctx context.Context, k keys.Kind, id string) (bool, error) {
	var err error
	switch k {
	case keys.Cinemas:
		var c *Cinema
		if c, err = m.r.Cinema(ctx, id); err == nil && m.keeps(id) {
			m.mu.Lock()
			m.cinemas[id] = *c
			m.mu.Unlock()
			return true, nil
		}
	case keys.Films:
		var f *Film
		if f, err = m.r.Film(ctx, id); err == nil {
			m.mu.Lock()
			m.films[id] = *f
			m.mu.Unlock()
			return true, nil
		}
	default:
		var s *Session
		if s, err = m.r.Session(ctx, id); err == nil && m.keeps(s.CinemaID) {
			m.mu.Lock()
			m.sessions[id] = *s
			m.mu.Unlock()
			return true, nil
		}
	}
	if err == nil || errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return false, err
}

// Position is where the mirror stands in the events.
func (m *Mirror) Position() Position {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.at
}

// Cinema returns a cinema of the copy.
func (m *Mirror) Cinema(id string) (Cinema, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c, ok := m.cinemas[id]
	return c, ok
}

// Film returns a film of the copy.
func (m *Mirror) Film(id string) (Film, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	f, ok := m.films[id]
	return f, ok
}

// Session returns a session of the copy.
func (m *Mirror) Session(id string) (Session, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s, ok := m.sessions[id]
	return s, ok
}

// Cinemas returns the copy's cinemas, by id.
func (m *Mirror) Cinemas() []Cinema {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return byID(m.cinemas)
}

// Films returns the copy's films, by id.
func (m *Mirror) Films() []Film {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return byID(m.films)
}

// byID returns a map's values in the order of their keys, the ids.
func byID[V any](m map[string]V) []V {
	out := make([]V, 0, len(m))
	for _, id := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[id])
	}
	return out
}

// Sessions returns the copy's sessions of a cinema ("" for all) whose
// showtime is in [from, to], in showtime order.
func (m *Mirror) Sessions(cinemaID string, from, to time.Time) []Session {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Session
	for _, s := range m.sessions {
		if (cinemaID == "" || s.CinemaID == cinemaID) && !s.Showtime.Before(from) && !s.Showtime.After(to) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Session) int {
		if c := a.Showtime.Compare(b.Showtime); c != 0 {
			return c
		}
		return compare(a.ID, b.ID)
	})
	return out
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
