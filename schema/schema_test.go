package schema_test

import (
	"fmt"
	"testing"

	"github.com/vista-warmer/vista-warmer/schema"
)

func Example() {
	p := "vista"
	fmt.Println(schema.Session(p, "1001-14164"))
	fmt.Println(schema.Film(p, "HO00000720"))
	fmt.Println(schema.Cinema(p, "1001"))
	fmt.Println(schema.Index(p, schema.Sessions))
	fmt.Println(schema.CinemaSessions(p, "1001"))
	fmt.Println(schema.FilmSessions(p, "HO00000720"))
	fmt.Println(schema.Index(p, schema.Films))
	fmt.Println(schema.Meta(p), schema.Lease(p), schema.Stream(p))
	fmt.Println(schema.Channel(p, schema.Sessions))
	fmt.Println(schema.Loaded(schema.Cinemas))
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
		kind   schema.Kind
		id     string
		wantOK bool
	}{
		{"vista:session:1001-14164", schema.Sessions, "1001-14164", true},
		{"vista:film:HO00000720", schema.Films, "HO00000720", true},
		{"vista:cinema:1001", schema.Cinemas, "1001", true},
		{"vista:cinema:1001:sessions", "", "", false},
		{"vista:film:HO1:sessions", "", "", false},
		{"vista:sessions", "", "", false},
		{"vista:meta", "", "", false},
		{"vista:events:sessions", "", "", false},
		{"vista:screen:1", "", "", false},
		{"vista:session:", "", "", false},
		{"other:session:1", "", "", false},
		{"{vista}:session:1001-1", schema.Sessions, "1001-1", true},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			prefix := "vista"
			if tt.key[0] == '{' {
				prefix = "{vista}"
			}
			k, id, ok := schema.ParseEntity(prefix, tt.key)
			if k != tt.kind || id != tt.id || ok != tt.wantOK {
				t.Errorf("ParseEntity(%q) = %q, %q, %v, want %q, %q, %v", tt.key, k, id, ok, tt.kind, tt.id, tt.wantOK)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, k := range schema.Kinds {
		key := schema.Entity("p", k, "x-1")
		got, id, ok := schema.ParseEntity("p", key)
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
		tag, ok := schema.HashTag(tt.prefix)
		if tag != tt.tag || ok != tt.ok {
			t.Errorf("HashTag(%q) = %q, %v, want %q, %v", tt.prefix, tag, ok, tt.tag, tt.ok)
		}
	}
}
