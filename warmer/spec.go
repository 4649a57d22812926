package warmer

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
)

// spec is what sets one kind apart from the others: how its list is read,
// the fields of its hash, the indexes that list it, whether it has a
// showtime (and so a TTL and a schedule of its own) and what its item
// events carry. One engine serves the three kinds by reading their specs;
// it never asks which kind it has.
type spec struct {
	kind   keys.Kind
	fields []string // the data fields, in record order: the contract's, then the extras
	args   []any    // the fields as command arguments, made once, not for each write

	// What a kind with a showtime (sessions) has, each named for what it
	// changes; a kind without (cinemas, films) has none of them.
	//
	// sorted: its indexes are sorted sets scored by the showtime (Unix
	// seconds), so that readers ask for a time range; else its index is
	// a set.
	sorted bool
	// expires: an entity leaves at its showtime plus the grace: its hash
	// has that TTL, the expiry removes it on schedule, and a list or an
	// answer that comes after it neither adds nor removes it.
	expires bool
	// checked: each entity is checked on a schedule of its own; its hash
	// carries changed_at and next_check_at, and a list taken in yields to
	// what checks saw or removed since it was fetched.
	checked bool

	// owners are the entities whose own index lists an entry besides its
	// kind's index: a session is listed by its cinema and its film.
	owners []owner

	// live are the positions of the fields a seat check reads: a list
	// fetched before a check does not overwrite what the check found.
	live []int

	// needs is a kind whose first load must be in before this one loads
	// (a session's showtime is read in its cinema's zone); "" for none.
	needs keys.Kind

	// list reads the kind's whole list from Vista into l.
	list func(ctx context.Context, w *Warmer, l *listing, zones map[string]*time.Location) error

	// extras adds what an item event carries beyond the common fields.
	extras func(ev *keys.Event, r *record)
}

// owner is an index of another kind's entity that lists entries of this
// one.
type owner struct {
	kind  keys.Kind                      // the owning entity's kind
	field int                            // where the record holds the owner's id
	key   func(prefix, id string) string // the owner's index of this kind
}

// placing lists the data fields whose change moves an entry between
// indexes: the owners' ids and, for a sorted kind, the showtime (the score).
func (sp *spec) placing() []string {
	var names []string
	if sp.sorted {
		names = append(names, sp.fields[sShowtime])
	}
	for _, o := range sp.owners {
		names = append(names, sp.fields[o.field])
	}
	return names
}

// kindSpecs builds the three kinds' specs for a warmer's field names.
func kindSpecs(fields map[keys.Kind][]string) map[keys.Kind]*spec {
	specs := map[keys.Kind]*spec{
		keys.Cinemas: {kind: keys.Cinemas, fields: fields[keys.Cinemas], list: listCinemas},
		keys.Films:   {kind: keys.Films, fields: fields[keys.Films], list: listFilms},
		keys.Sessions: {
			kind: keys.Sessions, fields: fields[keys.Sessions], sorted: true, expires: true, checked: true,
			owners: []owner{
				{kind: keys.Cinemas, field: sCinemaID, key: keys.CinemaSessions},
				{kind: keys.Films, field: sFilmID, key: keys.FilmSessions},
			},
			live:  seatFields[:],
			needs: keys.Cinemas,
			list:  listSessions,
			extras: func(ev *keys.Event, r *record) {
				n, _ := strconv.Atoi(r.vals.get(sSeatsAvailable))
				ev.SeatsAvailable = &n
			},
		},
	}
	for _, sp := range specs {
		for _, f := range sp.fields {
			sp.args = append(sp.args, f)
		}
	}
	return specs
}

func listCinemas(ctx context.Context, w *Warmer, l *listing, _ map[string]*time.Location) error {
	list, err := w.cfg.Vista.Cinemas(ctx)
	for _, c := range list {
		l.seen(c.ID)
		l.take(c.ID, w.cinemaRecord(c))
	}
	return err
}

func listFilms(ctx context.Context, w *Warmer, l *listing, _ map[string]*time.Location) error {
	list, err := w.cfg.Vista.Films(ctx)
	for _, f := range list {
		l.seen(f.ID)
		l.take(f.ID, w.filmRecord(f))
	}
	return err
}

// listSessions reads the sessions: one Vista lists as cancelled, or past
// its showtime + grace, is a reason for a cached one to leave; a showtime
// no cinema could list is refused.
func listSessions(ctx context.Context, w *Warmer, l *listing, zones map[string]*time.Location) error {
	now := l.now
	take := func(list []vista.Session) error {
		for _, s := range list {
			l.seen(s.ID)
			switch {
			case s.Cancelled():
				l.cancelled[s.ID] = true
			case s.Showtime.Before(now.Add(-maxBehind)) || s.Showtime.After(now.Add(maxAhead)):
				l.refuse(badOutOfRange, s.ID, fmt.Sprintf("session %s: showtime %s is more than a day past or 400 days ahead",
					s.ID, s.Showtime.Format(time.RFC3339)))
			case w.expired(now, s.Showtime):
				l.expired[s.ID] = true
			default:
				r := w.sessionRecord(s)
				r.nextCheck = instantOf(w.cfg.Policy.FirstCheck(now, r.showtime.time(), s.ID))
				r.asOf = instantOf(now)
				l.take(s.ID, r)
			}
		}
		return l.flush()
	}
	// Page by page where the Fetcher can: the decoded list is never held
	// whole, only the records made of it.
	if p, ok := w.cfg.Vista.(SessionPager); ok {
		return p.SessionPages(ctx, zones, take)
	}
	list, err := w.cfg.Vista.Sessions(ctx, zones)
	if terr := take(list); terr != nil {
		return terr // the writer stopped taking the list
	}
	return err
}

// SessionPager is a Fetcher that hands the sessions over page by page, as
// *vista.Client does: a reload then holds no more of the decoded list than
// a page.
type SessionPager interface {
	SessionPages(ctx context.Context, zones map[string]*time.Location, each func([]vista.Session) error) error
}
