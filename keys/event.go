package keys

// Event is one change event as readers receive it, on the kind's channel and
// in the stream. Field order and omissions follow the contract byte for byte.
type Event struct {
	Seq            int64    `json:"seq"`
	Epoch          string   `json:"epoch"`
	Kind           Kind     `json:"kind"`
	Event          string   `json:"event"` // EventItem, EventRemoved or EventFullReload
	ID             string   `json:"id,omitempty"`
	SeatsAvailable *int     `json:"seats_available,omitempty"` // sessions' item events only
	Changed        []string `json:"changed,omitempty"`
	Reason         string   `json:"reason,omitempty"` // removed_item only
	Count          *int     `json:"count,omitempty"`  // full_reload only
	At             string   `json:"at"`
}

// The event names.
const (
	EventItem       = "item"
	EventRemoved    = "removed_item"
	EventFullReload = "full_reload"
)

// The reasons a removed_item gives.
const (
	ReasonGone      = "gone"
	ReasonExpired   = "expired"
	ReasonCancelled = "cancelled"
)
