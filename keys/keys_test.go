package keys_test

import (
	"fmt"
	"testing"

	"github.com/vista-warmer/vista-warmer/keys"
)

func Example() {
	p := "vista"
	fmt.Println(keys.Session(p, "1001-14164"))
	fmt.Println(keys.Film(p, "HO00000720"))
	fmt.Println(keys.Cinema(p, "1001"))
	fmt.Println(keys.Index(p, keys.Sessions))
	fmt.Println(keys.CinemaSessions(p, "1001"))
	fmt.Println(keys.FilmSessions(p, "HO00000720"))
	fmt.Println(keys.Index(p, keys.Films))
	fmt.Println(keys.Meta(p), keys.Lease(p), keys.Stream(p))
	fmt.Println(keys.Channel(p, keys.Sessions))
	fmt.Println(keys.Loaded(keys.Cinemas))
	// Output:
	// vista:session:1001-14164
	// vista:film:HO00000720
	// vista:cinema:1001
	// vista:sessions
	// vista:cinema:1001:sessions
	// vista:film:HO00000720:sessions
	// vista:films
	// vista:meta vista:lease vista:events
	// vista:events:sessions
	// loaded:cinemas
}

func TestParseEntity(t *testing.T) {
	tests := []struct {
		key    string
		kind   keys.Kind
		id     string
		wantOK bool
	}{
		{"vista:session:1001-14164", keys.Sessions, "1001-14164", true},
		{"vista:film:HO00000720", keys.Films, "HO00000720", true},
		{"vista:cinema:1001", keys.Cinemas, "1001", true},
		{"vista:cinema:1001:sessions", "", "", false},
		{"vista:film:HO1:sessions", "", "", false},
		{"vista:sessions", "", "", false},
		{"vista:meta", "", "", false},
		{"vista:events:sessions", "", "", false},
		{"vista:screen:1", "", "", false},
		{"vista:session:", "", "", false},
		{"other:session:1", "", "", false},
		{"{vista}:session:1001-1", keys.Sessions, "1001-1", true},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			prefix := "vista"
			if tt.key[0] == '{' {
				prefix = "{vista}"
			}
			k, id, ok := keys.ParseEntity(prefix, tt.key)
			if k != tt.kind || id != tt.id || ok != tt.wantOK {
				t.Errorf("ParseEntity(%q) = %q, %q, %v, want %q, %q, %v", tt.key, k, id, ok, tt.kind, tt.id, tt.wantOK)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, k := range keys.Kinds {
		key := keys.Entity("p", k, "x-1")
		got, id, ok := keys.ParseEntity("p", key)
		if !ok || got != k || id != "x-1" {
			t.Errorf("ParseEntity(Entity(%q)) = %q, %q, %v", k, got, id, ok)
		}
	}
}

func TestHashTag(t *testing.T) {
	tests := []struct {
		prefix string
		tag    string
		ok     bool
	}{
		{"vista", "", false},
		{"{vista}", "vista", true},
		{"app:{vista}", "vista", true},
		{"{}", "", false},
		{"{vista", "", false},
	}
	for _, tt := range tests {
		tag, ok := keys.HashTag(tt.prefix)
		if tag != tt.tag || ok != tt.ok {
			t.Errorf("HashTag(%q) = %q, %v, want %q, %v", tt.prefix, tag, ok, tt.tag, tt.ok)
		}
	}
}
