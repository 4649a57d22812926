// Package clocktest holds the fixed instants the tests' fake clocks start
// at, so that no test's outcome depends on the hour, the day or the year it
// runs in.
//
// They lie years ahead of the real clock on purpose: the warmer gives a
// session's key an EXPIREAT at its showtime plus grace, which Redis counts
// on its own clock, so a fake clock behind the real one would write keys
// that are gone at once. Before the real clock reaches them (2031), move
// them all on by whole years, keeping the weekdays and the days the clocks
// change; Ahead says when that is due.
package clocktest

import (
	"testing"
	"time"
)

// Start is where a fake clock starts when the hour does not matter to the
// test: a Wednesday mid-morning in Europe, the evening in Sydney.
var Start = time.Date(2031, time.November, 12, 10, 0, 0, 0, time.UTC)

// Instant is a moment a test runs at, by a name that says why.
type Instant struct {
	Name string
	At   time.Time
}

// Instants are the moments at which a test whose outcome depends on the
// time of day runs, each as a subtest (see Each). Their hours are read in
// the zones of the simulated Vista's first cinemas: Europe/Berlin,
// Europe/London, then Australia/Sydney.
var Instants = []Instant{
	// No session left today in Europe; Sydney's afternoon.
	{"night", time.Date(2031, time.November, 12, 2, 30, 0, 0, time.UTC)},
	// A Friday at 20:00 in Berlin, 19:00 in London: the busiest showings.
	{"evening peak", time.Date(2031, time.November, 14, 19, 0, 0, 0, time.UTC)},
	// The last Sunday of March: at 01:00 UTC, half an hour on, Berlin
	// and London move from +01:00 and +00:00 to +02:00 and +01:00.
	{"clocks go forward", time.Date(2031, time.March, 30, 0, 30, 0, 0, time.UTC)},
	// The last Sunday of October: at 01:00 UTC they move back, and
	// Berlin's 02:00-03:00 comes twice.
	{"clocks go back", time.Date(2031, time.October, 26, 0, 30, 0, 0, time.UTC)},
	// 23:30 in Berlin: the business day, the year and the next day's
	// sessions all turn over within the hour.
	{"new year's eve", time.Date(2031, time.December, 31, 22, 30, 0, 0, time.UTC)},
}

// Each runs f as a subtest at each of Instants, named after it.
func Each(t *testing.T, f func(t *testing.T, at time.Time)) {
	t.Helper()
	for _, in := range Instants {
		t.Run(in.Name, func(t *testing.T) {
			Ahead(t, in.At)
			f(t, in.At)
		})
	}
}

// Ahead stops the test, saying why, when at is no longer ahead of the real
// clock: keys the warmer writes for sessions around at would expire in
// Redis as soon as written, which no test means to check.
func Ahead(tb testing.TB, at time.Time) {
	tb.Helper()
	if !at.After(time.Now().Add(24 * time.Hour)) {
		tb.Fatalf("the fixed instant %v is no longer ahead of the real clock: move the instants of internal/clocktest on by whole years", at)
	}
}
