// Package keys is the public contract's layout in Go, for the warmer
// and its readers alike: every Redis key, index and channel name, the hash
// fields, P:meta's fields, the change event and its JSON, and the session
// states. It is pure naming, with no dependency beyond the standard
// library: readers in any language build the same strings, and these are
// the one place the layout is spelled out.
package keys

import "strings"

// Kind is one of the three kinds of entity the warmer keeps.
type Kind string

// The kinds, in the order a full load runs them: sessions need the cinemas'
// time zones.
const (
	Cinemas  Kind = "cinemas"
	Films    Kind = "films"
	Sessions Kind = "sessions"
)

// Kinds lists every kind in load order.
var Kinds = []Kind{Cinemas, Films, Sessions}

// Singular returns the word used in an entity's key: "cinema", "film", "session".
func (k Kind) Singular() string { return strings.TrimSuffix(string(k), "s") }

// Valid reports whether k is one of the three kinds.
func (k Kind) Valid() bool { return k == Cinemas || k == Films || k == Sessions }

// Entity returns the hash key of one entity: P:cinema:{id}, P:film:{id}, P:session:{id}.
func Entity(prefix string, k Kind, id string) string {
	return prefix + ":" + k.Singular() + ":" + id
}

// Cinema returns P:cinema:{id}.
func Cinema(prefix, id string) string { return Entity(prefix, Cinemas, id) }

// Film returns P:film:{id}, id being the ScheduledFilmId.
func Film(prefix, id string) string { return Entity(prefix, Films, id) }

// Session returns P:session:{id}, id being the composite session ID.
func Session(prefix, id string) string { return Entity(prefix, Sessions, id) }

// Index returns the index of all ids of a kind: the sets P:cinemas and
// P:films, and the sorted set P:sessions (score: showtime in Unix seconds).
func Index(prefix string, k Kind) string { return prefix + ":" + string(k) }

// CinemaSessions returns the sorted set P:cinema:{id}:sessions.
func CinemaSessions(prefix, cinemaID string) string {
	return Cinema(prefix, cinemaID) + ":sessions"
}

// FilmSessions returns the sorted set P:film:{id}:sessions.
func FilmSessions(prefix, filmID string) string {
	return Film(prefix, filmID) + ":sessions"
}

// Meta returns the hash P:meta (schema, epoch, seq, heartbeat, loaded:*, writer).
func Meta(prefix string) string { return prefix + ":meta" }

// Lease returns P:lease, the key whose holder is the one writer.
func Lease(prefix string) string { return prefix + ":lease" }

// Channel returns the pub/sub channel of a kind: P:events:{kind}.
func Channel(prefix string, k Kind) string { return prefix + ":events:" + string(k) }

// Stream returns the stream P:events that keeps every event for catch-up.
func Stream(prefix string) string { return prefix + ":events" }

// Loaded returns the P:meta field holding a kind's last full reload: loaded:{kind}.
func Loaded(k Kind) string { return "loaded:" + string(k) }

// ParseEntity splits an entity key into its kind and id. It reports false
// for any other key, index keys such as P:cinema:{id}:sessions included.
func ParseEntity(prefix, key string) (k Kind, id string, ok bool) {
	rest, ok := strings.CutPrefix(key, prefix+":")
	if !ok {
		return "", "", false
	}
	word, id, ok := strings.Cut(rest, ":")
	if !ok || id == "" {
		return "", "", false
	}
	k = Kind(word + "s")
	if !k.Valid() {
		return "", "", false
	}
	if k != Sessions && strings.HasSuffix(id, ":sessions") {
		return "", "", false
	}
	return k, id, true
}

// HashTag returns the hash tag of a prefix, the part between the first "{"
// and the next "}", which Redis Cluster hashes instead of the whole key. All
// of the warmer's keys share one slot only when the prefix carries one.
func HashTag(prefix string) (tag string, ok bool) {
	_, after, found := strings.Cut(prefix, "{")
	if !found {
		return "", false
	}
	tag, _, found = strings.Cut(after, "}")
	if !found || tag == "" {
		return "", false
	}
	return tag, true
}
