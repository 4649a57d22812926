package keys

// State is a session's Status, normalised: one name for each of the
// values of Vista's SessionStatus, whichever form the server sent.
type State string

// The states. Vista's API definition numbers them 0 to 8.
const (
	StateOpen        State = "open"        // 0; also no Status at all
	StateClosed      State = "closed"      // 1
	StateInactive    State = "inactive"    // 2
	StateImported    State = "imported"    // 3
	StatePlanned     State = "planned"     // 4
	StateUnavailable State = "unavailable" // 5
	StateApproved    State = "approved"    // 6
	StateCancelled   State = "cancelled"   // 7: the session is removed
	StateUnknown     State = "unknown"     // 8, and any value not listed here
)

// States lists the states by Vista's number.
var States = [...]State{StateOpen, StateClosed, StateInactive, StateImported,
	StatePlanned, StateUnavailable, StateApproved, StateCancelled, StateUnknown}
