package keys

// Fields are the contract's data fields of each kind's hash, in order. A
// warmer run with --cinema-fields, --film-fields or --session-fields adds
// further fields after them, under their snake_case names.
var Fields = map[Kind][]string{
	Cinemas: {FieldID, "name", "address1", "address2", "city", "latitude", "longitude", FieldTimezone},
	Films:   {FieldID, "title", "rating", "runtime_minutes", "opening_date", "distributor", "cinema_ids"},
	Sessions: {FieldID, FieldCinemaID, FieldFilmID, "session_id", FieldShowtime, "business_date",
		"screen_name", "screen_number", FieldSeatsAvailable, FieldSoldoutStatus, FieldStatus, FieldState, "attributes"},
}

// The data fields that programs read by name (the warmer, the readers):
// every kind's id, a cinema's zone, and what places a session and what a
// seat check tells of it.
const (
	FieldID             = "id"
	FieldTimezone       = "timezone"        // cinemas: the IANA zone showtimes are read in
	FieldCinemaID       = "cinema_id"       // sessions
	FieldFilmID         = "film_id"         // sessions
	FieldShowtime       = "showtime"        // sessions: RFC 3339 with the cinema's offset
	FieldSeatsAvailable = "seats_available" // sessions
	FieldSoldoutStatus  = "soldout_status"  // sessions
	FieldStatus         = "status"          // sessions: Vista's status, as Vista sent it
	FieldState          = "state"           // sessions: open, closed, planned or unknown
)

// The bookkeeping fields of a hash: not data, so never in an event's
// "changed".
const (
	FieldRaw         = "raw"           // the upstream JSON, with --keep-raw
	FieldUpdatedAt   = "updated_at"    // when the warmer last confirmed the entity
	FieldChangedAt   = "changed_at"    // sessions: when a value last changed
	FieldNextCheckAt = "next_check_at" // sessions: when the warmer looks again
)

// The fields of P:meta, besides Loaded(kind).
const (
	MetaSchema    = "schema"    // the layout's version, "1"
	MetaEpoch     = "epoch"     // changes whenever the cache is built from nothing
	MetaSeq       = "seq"       // the last event's number
	MetaHeartbeat = "heartbeat" // RFC 3339, at least every 10 s while a warmer writes
	MetaWriter    = "writer"    // the instance id of the writer
	// MetaReplID is the replication id of the Redis the cache was taken
	// over on (INFO replication's master_replid). A writer that finds
	// another on a Redis a failover promoted (master_replid2 set) builds
	// the cache anew under a new epoch, so that no seq is handed out
	// twice with different data. Readers may ignore it.
	MetaReplID = "replid"
)
