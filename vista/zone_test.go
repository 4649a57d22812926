package vista

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// mustZone loads an IANA zone or stops the test.
func mustZone(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

func TestLoadZone(t *testing.T) {
	tests := []struct {
		name    string
		want    string // the zone's name; "" when an error is wanted
		wantErr string
	}{
		{name: "Europe/Berlin", want: "Europe/Berlin"},
		{name: "America/New_York", want: "America/New_York"},
		{name: "Asia/Calcutta", want: "Asia/Calcutta"}, // an alias still loads as itself
		{name: "UTC", want: "UTC"},
		{name: "Etc/UTC", want: "Etc/UTC"},
		{name: "W. Europe Standard Time", want: "Europe/Berlin"},
		{name: "GMT Standard Time", want: "Europe/London"},
		{name: "Eastern Standard Time", want: "America/New_York"},
		{name: "AUS Eastern Standard Time", want: "Australia/Sydney"},
		{name: "New Zealand Standard Time", want: "Pacific/Auckland"},
		{name: "South Africa Standard Time", want: "Africa/Johannesburg"},
		{name: "Tokyo Standard Time", want: "Asia/Tokyo"},
		{name: "India Standard Time", want: "Asia/Kolkata"},
		{name: "UTC-11", want: "Etc/GMT+11"},
		{name: "UTC+12", want: "Etc/GMT-12"},
		{name: "  W. Europe Standard Time\t", want: "Europe/Berlin"},
		{name: " Europe/Paris ", want: "Europe/Paris"},
		{name: "Mars Standard Time", wantErr: `unknown time zone "Mars Standard Time"`},
		{name: "w. europe standard time", wantErr: `unknown time zone "w. europe standard time"`},
		{name: "W. Europe  Standard Time", wantErr: `unknown time zone "W. Europe  Standard Time"`},
		{name: "Europe/Atlantis", wantErr: `unknown time zone "Europe/Atlantis"`},
		{name: "Local", wantErr: `unknown time zone "Local"`},
		{name: "", wantErr: "empty time zone name"},
		{name: "   ", wantErr: "empty time zone name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc, err := LoadZone(tt.name)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("LoadZone(%q) = %v, %v, want error %q", tt.name, loc, err, tt.wantErr)
				}
				if loc != nil {
					t.Errorf("LoadZone(%q) = %v with the error, want nil", tt.name, loc)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadZone(%q) = %v, want %s", tt.name, err, tt.want)
			}
			if got := loc.String(); got != tt.want {
				t.Errorf("LoadZone(%q) = %s, want %s", tt.name, got, tt.want)
			}
		})
	}
}

// TestLoadZoneWindowsTable checks that every IANA name the table maps to
// loads from the embedded tz database, and that the load goes through the
// table (no Windows name is shadowed by an IANA name of the same spelling
// except "UTC", which means the same either way).
func TestLoadZoneWindowsTable(t *testing.T) {
	if len(windowsZones) < 130 {
		t.Errorf("windowsZones has %d names, want the whole CLDR table (130+)", len(windowsZones))
	}
	for win, iana := range windowsZones {
		t.Run(win, func(t *testing.T) {
			if _, err := time.LoadLocation(iana); err != nil {
				t.Fatalf("LoadLocation(%q) for %q: %v", iana, win, err)
			}
			loc, err := LoadZone(win)
			if err != nil {
				t.Fatalf("LoadZone(%q) = %v, want %s", win, err, iana)
			}
			if win == "UTC" {
				return
			}
			if got := loc.String(); got != iana {
				t.Errorf("LoadZone(%q) = %s, want %s", win, got, iana)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	lisbon := mustZone(t, "Europe/Lisbon")
	zones := Zones{
		Default:   lisbon,
		Overrides: map[string]*time.Location{"42": mustZone(t, "Asia/Tokyo")},
	}
	tests := []struct {
		zones      Zones
		cinema     string
		timeZoneID string
		want       string
		wantSrc    ZoneSource
	}{
		{zones, "1", "America/Chicago", "America/Chicago", ZoneIANA},
		{zones, "42", "America/Chicago", "America/Chicago", ZoneIANA}, // TimeZoneId beats the override
		{zones, "1", "Central Standard Time", "America/Chicago", ZoneWindows},
		{zones, "42", " Central Standard Time ", "America/Chicago", ZoneWindows},
		{zones, "42", "", "Asia/Tokyo", ZoneOverride},
		{zones, "42", "Mars Standard Time", "Asia/Tokyo", ZoneOverride},
		{zones, "42", "Local", "Asia/Tokyo", ZoneOverride},
		{zones, "1", "", "Europe/Lisbon", ZoneDefault},
		{zones, "1", "Mars Standard Time", "Europe/Lisbon", ZoneDefault},
		{Zones{Default: berlin}, "42", "", "Europe/Berlin", ZoneDefault}, // nil Overrides
		{Zones{Overrides: map[string]*time.Location{"42": nil}}, "42", "", time.Local.String(), ZoneDefault},
		{Zones{}, "1", "", time.Local.String(), ZoneDefault},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%q", tt.cinema, tt.timeZoneID), func(t *testing.T) {
			loc, src := tt.zones.Resolve(tt.cinema, tt.timeZoneID)
			if loc.String() != tt.want || src != tt.wantSrc {
				t.Errorf("Resolve(%q, %q) = %s, %s, want %s, %s", tt.cinema, tt.timeZoneID, loc, src, tt.want, tt.wantSrc)
			}
		})
	}
	if loc, _ := (Zones{}).Resolve("1", ""); loc != time.Local {
		t.Errorf("Resolve with nil Default = %p, want time.Local %p", loc, time.Local)
	}
}

func TestResolveConcurrent(t *testing.T) {
	zones := Zones{
		Default:   time.UTC,
		Overrides: map[string]*time.Location{"7": mustZone(t, "Asia/Tokyo")},
	}
	names := []string{"Europe/Berlin", "W. Europe Standard Time", "Mars Standard Time", "", "Pacific/Auckland", "Tokyo Standard Time"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				name := names[(g+i)%len(names)]
				loc, src := zones.Resolve("7", name)
				if loc == nil || src == "" {
					t.Errorf("Resolve(%q, %q) = %v, %q", "7", name, loc, src)
					return
				}
				if _, err := ParseLocal("2026-11-25T20:00:00", loc); err != nil {
					t.Errorf("ParseLocal in %s: %v", loc, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestParseLocal(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	newYork := mustZone(t, "America/New_York")
	sydney := mustZone(t, "Australia/Sydney")
	brisbane := mustZone(t, "Australia/Brisbane")
	tests := []struct {
		name string
		s    string
		loc  *time.Location
		want string // RFC 3339 with nanoseconds, in loc
	}{
		{"plain", "2026-11-25T20:00:00", berlin, "2026-11-25T20:00:00+01:00"},
		{"summer", "2026-07-01T20:00:00", berlin, "2026-07-01T20:00:00+02:00"},
		{"fraction zero", "2026-11-25T20:00:00.000", berlin, "2026-11-25T20:00:00+01:00"},
		{"fraction ticks", "2026-11-25T20:00:00.1234567", berlin, "2026-11-25T20:00:00.1234567+01:00"},
		{"fraction long", "2026-11-25T20:00:00.1234567891", berlin, "2026-11-25T20:00:00.123456789+01:00"},
		{"date only", "2026-11-25", berlin, "2026-11-25T00:00:00+01:00"},
		{"space", " 2026-11-25T20:00:00 ", berlin, "2026-11-25T20:00:00+01:00"},
		{"utc", "2026-11-25T20:00:00", time.UTC, "2026-11-25T20:00:00Z"},
		{"nil loc", "2026-11-25T20:00:00", nil, "2026-11-25T20:00:00Z"},
		{"leap day", "2028-02-29T12:00:00", sydney, "2028-02-29T12:00:00+11:00"},
		{"Z", "2026-11-25T20:00:00Z", berlin, "2026-11-25T21:00:00+01:00"},
		{"Z fraction", "2026-11-25T20:00:00.5Z", newYork, "2026-11-25T15:00:00.5-05:00"},
		{"plus offset", "2026-11-25T20:00:00+01:00", newYork, "2026-11-25T14:00:00-05:00"},
		{"minus offset", "2026-11-25T20:00:00-05:30", berlin, "2026-11-26T02:30:00+01:00"},

		// Clocks go forward: the missing wall time moves on by the gap.
		{"berlin gap", "2026-03-29T02:30:00", berlin, "2026-03-29T03:30:00+02:00"},
		{"berlin gap start", "2026-03-29T02:00:00", berlin, "2026-03-29T03:00:00+02:00"},
		{"berlin before gap", "2026-03-29T01:59:59", berlin, "2026-03-29T01:59:59+01:00"},
		{"berlin after gap", "2026-03-29T03:00:00", berlin, "2026-03-29T03:00:00+02:00"},
		{"new york gap", "2026-03-08T02:30:00", newYork, "2026-03-08T03:30:00-04:00"},
		{"sydney gap", "2026-10-04T02:30:00", sydney, "2026-10-04T03:30:00+11:00"},

		// Clocks go back: the repeated wall time is the first, on summer time.
		{"berlin overlap", "2026-10-25T02:30:00", berlin, "2026-10-25T02:30:00+02:00"},
		{"berlin overlap start", "2026-10-25T02:00:00", berlin, "2026-10-25T02:00:00+02:00"},
		{"berlin after overlap", "2026-10-25T03:00:00", berlin, "2026-10-25T03:00:00+01:00"},
		{"new york overlap", "2026-11-01T01:30:00", newYork, "2026-11-01T01:30:00-04:00"},
		{"sydney overlap", "2026-04-05T02:30:00", sydney, "2026-04-05T02:30:00+11:00"},
		{"sydney after overlap", "2026-04-05T03:00:00", sydney, "2026-04-05T03:00:00+10:00"},

		// The ISO form some servers send: ticks and the cinema's offset.
		{"ticks and offset", "2018-01-09T20:05:00.0000000+10:00", brisbane, "2018-01-09T20:05:00+10:00"},
		{"ticks and offset elsewhere", "2018-01-09T20:05:00.0000000+10:00", sydney, "2018-01-09T21:05:00+11:00"},

		// OData v2: /Date(ms)/ is a wall time counted as if UTC...
		{"v2 wall", "/Date(1795636800000)/", berlin, "2026-11-25T20:00:00+01:00"},
		{"v2 wall millis", "/Date(1795636800123)/", berlin, "2026-11-25T20:00:00.123+01:00"},
		{"v2 wall utc", "/Date(1795636800000)/", time.UTC, "2026-11-25T20:00:00Z"},
		{"v2 before 1970", "/Date(-1500)/", time.UTC, "1969-12-31T23:59:58.5Z"},
		{"v2 spaces", " /Date(1795636800000)/ ", berlin, "2026-11-25T20:00:00+01:00"},
		{"v2 berlin gap", "/Date(1774751400000)/", berlin, "2026-03-29T03:30:00+02:00"},
		{"v2 berlin overlap", "/Date(1792895400000)/", berlin, "2026-10-25T02:30:00+02:00"},
		{"v2 new york gap", "/Date(1772937000000)/", newYork, "2026-03-08T03:30:00-04:00"},
		{"v2 new york overlap", "/Date(1793496600000)/", newYork, "2026-11-01T01:30:00-04:00"},
		{"v2 sydney gap", "/Date(1791081000000)/", sydney, "2026-10-04T03:30:00+11:00"},
		{"v2 sydney overlap", "/Date(1775356200000)/", sydney, "2026-04-05T02:30:00+11:00"},
		// ...and /Date(ms+hhmm)/ an instant, whose offset only names a zone.
		{"v2 instant", "/Date(1795633200000+0100)/", berlin, "2026-11-25T20:00:00+01:00"},
		{"v2 instant elsewhere", "/Date(1795633200000+0100)/", newYork, "2026-11-25T14:00:00-05:00"},
		{"v2 instant other offset", "/Date(1795633200000-0500)/", berlin, "2026-11-25T20:00:00+01:00"},
		{"v2 instant after the change", "/Date(1774747800000+0100)/", berlin, "2026-03-29T03:30:00+02:00"},
		{"v2 vista docs", "/Date(1511150290590+1300)/", mustZone(t, "Pacific/Auckland"), "2017-11-20T16:58:10.59+13:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLocal(tt.s, tt.loc)
			if err != nil {
				t.Fatalf("ParseLocal(%q) = %v, want %s", tt.s, err, tt.want)
			}
			if s := got.Format(time.RFC3339Nano); s != tt.want {
				t.Errorf("ParseLocal(%q) = %s, want %s", tt.s, s, tt.want)
			}
			wantLoc := tt.loc
			if wantLoc == nil {
				wantLoc = time.UTC
			}
			if got.Location() != wantLoc {
				t.Errorf("ParseLocal(%q).Location() = %s, want %s", tt.s, got.Location(), wantLoc)
			}
		})
	}
}

func TestParseLocalBad(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	for _, s := range []string{
		"banana",
		"",
		"   ",
		"2026-11-25T",
		"2026-11-25T20:00",
		"2026-11-25T20:00:00.",
		"2026-11-25T20:00:00+01",
		"2026-11-25T20:00:00+0100",
		"2026-11-25T20:00:00 UTC",
		"2026-11-25T24:00:00",
		"2026-11-25T20:60:00",
		"2026-11-25T20:00:60",
		"2026-13-01",
		"2026-00-01",
		"2026-02-29",
		"2026-04-31",
		"2026-11-25X20:00:00",
		"2026/11/25",
		"26-11-25",
		"+026-11-25",
		"2026-11-25T20:00:00+24:00",
		"/Date()/",
		"/Date(abc)/",
		"/Date(1700000000000)",
		"Date(1700000000000)/",
		"/Date(1700000000000+01)/",
		"/Date(1700000000000+01:00)/",
		"/Date(1700000000000+2400)/",
		"/Date(1700000000000Z)/",
		"/Date(99999999999999999)/",
		"/Date(--1)/",
	} {
		t.Run(s, func(t *testing.T) {
			got, err := ParseLocal(s, berlin)
			want := fmt.Sprintf("%q is not a date", s)
			if err == nil || err.Error() != want {
				t.Errorf("ParseLocal(%q) = %v, %v, want error %s", s, got, err, want)
			}
		})
	}
	if _, err := ParseLocal("banana", berlin); err == nil || err.Error() != `"banana" is not a date` {
		t.Errorf(`ParseLocal("banana") = %v, want "banana" is not a date`, err)
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		s, want, wantErr string
	}{
		{s: "2026-11-25", want: "2026-11-25"},
		{s: "2026-11-25T00:00:00", want: "2026-11-25"},
		{s: "2026-11-25T05:30:00", want: "2026-11-25"},
		{s: "2026-11-25T00:00:00.000", want: "2026-11-25"},
		{s: "2026-11-25T00:00:00.1234567", want: "2026-11-25"},
		{s: "2026-11-25T00:00:00Z", want: "2026-11-25"},
		{s: "2026-11-25T23:00:00-05:00", want: "2026-11-25"},
		{s: " 2026-11-25 ", want: "2026-11-25"},
		{s: "2028-02-29", want: "2028-02-29"},
		{s: "", want: ""},
		{s: "x", wantErr: `"x" is not a date`},
		{s: "2026-02-30", wantErr: `"2026-02-30" is not a date`},
		{s: "2026-11-25T99:00:00", wantErr: `"2026-11-25T99:00:00" is not a date`},
		{s: "2026-11-25garbage", wantErr: `"2026-11-25garbage" is not a date`},
		{s: "/Date(1551139200000)/", want: "2019-02-26"},
		{s: "/Date(1551135600000+0100)/", want: "2019-02-26"},
		{s: "/Date(1551135600000-0100)/", want: "2019-02-25"},
		{s: "/Date(1551135600000)/", want: "2019-02-25"},
		{s: "/Date(-1)/", want: "1969-12-31"},
		{s: "/Date(x)/", wantErr: `"/Date(x)/" is not a date`},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			got, err := ParseDate(tt.s)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("ParseDate(%q) = %q, %v, want error %s", tt.s, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseDate(%q) = %q, %v, want %q", tt.s, got, err, tt.want)
			}
		})
	}
}

func BenchmarkParseLocal(b *testing.B) {
	berlin := mustZone(b, "Europe/Berlin")
	for b.Loop() {
		if _, err := ParseLocal("2026-11-25T20:00:00.000", berlin); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResolve(b *testing.B) {
	zones := Zones{Default: time.UTC}
	for b.Loop() {
		zones.Resolve("1", "W. Europe Standard Time")
	}
}
