package warmer

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/vista"
)

// TestSessionRecordPacksEachField: a session packed field by field into
// one buffer holds what pack makes of its fields as the hash has them.
func TestSessionRecordPacksEachField(t *testing.T) {
	zone := time.FixedZone("", -(3*3600 + 30*60))
	base := vista.Session{ID: "1001-14164", CinemaID: "1001", FilmID: "HO00001234", SessionID: "14164",
		Showtime: time.Date(2031, 3, 14, 19, 45, 0, 0, zone), BusinessDate: "2031-03-14",
		SeatsAvailable: 212, ScreenName: "Écran 7", ScreenNumber: 7, SoldoutStatus: 1, Status: "Open", State: keys.StateOpen}
	cases := []struct {
		name   string
		extras int // extra fields asked for
		edit   func(*vista.Session)
	}{
		{"no attributes", 0, func(*vista.Session) {}},
		{"one attribute", 0, func(s *vista.Session) { s.Attributes = []string{"3D"} }},
		{"three attributes", 0, func(s *vista.Session) { s.Attributes = []string{"3D", "", "Dolby Atmos"} }},
		{"zeros and negatives", 0, func(s *vista.Session) {
			s.SeatsAvailable, s.ScreenNumber, s.SoldoutStatus = -1, 0, -2147483648
			s.Showtime = time.Date(2031, 3, 14, 19, 45, 0, 0, time.UTC)
		}},
		{"empty strings", 0, func(s *vista.Session) { s.ScreenName, s.Status, s.State, s.BusinessDate = "", "", "", "" }},
		{"extra fields as asked", 2, func(s *vista.Session) { s.Extra = []string{"true", ";WWW;"} }},
		{"fewer extra values than asked", 3, func(s *vista.Session) { s.Extra = []string{"x"} }},
		{"more extra values than asked", 1, func(s *vista.Session) { s.Extra = []string{"x", "y", "z"} }},
		{"bytes that are not UTF-8", 0, func(s *vista.Session) { s.ScreenName = "\xff\xfe" }},
		{"a long value", 1, func(s *vista.Session) { s.Extra = []string{strings.Repeat("é", 400)} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base
			c.edit(&s)
			fields := slices.Clone(baseFields[keys.Sessions])
			for i := range c.extras {
				fields = append(fields, "extra_"+string(rune('a'+i)))
			}
			w := &Warmer{fields: map[keys.Kind][]string{keys.Sessions: fields}}
			want := []string{s.ID, s.CinemaID, s.FilmID, s.SessionID, s.Showtime.Format(time.RFC3339), s.BusinessDate,
				s.ScreenName, strconv.Itoa(s.ScreenNumber), strconv.Itoa(s.SeatsAvailable), strconv.Itoa(s.SoldoutStatus), s.Status, string(s.State),
				strings.Join(s.Attributes, ",")}
			for i := range c.extras {
				v := ""
				if i < len(s.Extra) {
					v = s.Extra[i]
				}
				want = append(want, v)
			}
			r := w.sessionRecord(s)
			if r.vals != pack(want) {
				t.Errorf("packed %q, want %q", r.vals.all(), want)
			}
			if got := r.vals.all(); len(got) != len(fields) {
				t.Errorf("%d fields packed for the hash's %d", len(got), len(fields))
			}
		})
	}
}
