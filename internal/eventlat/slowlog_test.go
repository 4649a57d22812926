package main

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestPublishingPicksTheWritesThatAnnounce: of a run's logged commands,
// only the script calls whose arguments publish count, sorted; the
// lease keeper's commands, a write of confirmations, a PUBLISH sent on
// its own (the floor's relay) and a command that only names PUBLISH (a
// client asking COMMAND INFO) do not.
func TestPublishingPicksTheWritesThatAnnounce(t *testing.T) {
	logs := []redis.SlowLog{
		{Args: []string{"evalsha", "abc", "2", "vista:lease", "vista:meta", "me", "ep", "3", "", "14", "vw.hashwrite", "k", "", "3", "publish", "vista:events:sessions", "{}"}, Duration: 700 * time.Microsecond},
		{Args: []string{"get", "vista:lease"}, Duration: time.Microsecond},
		{Args: []string{"evalsha", "abc", "2", "vista:lease", "vista:meta", "me", "ep", "4", "", "14", "vw.hashwrite", "k", "", "... (80 more arguments)"}, Duration: 90 * time.Microsecond},
		{Args: []string{"publish", "eventlat:floor", "1"}, Duration: 5 * time.Microsecond},
		{Args: []string{"command", "info", "publish"}, Duration: 40 * time.Microsecond},
		{Args: []string{"EVALSHA", "abc", "2", "vista:lease", "vista:meta", "me", "ep", "5", "", "3", "SPUBLISH", "vista:events:sessions", "{}"}, Duration: 300 * time.Microsecond},
		{Args: nil},
	}
	got := publishing(logs)
	want := []time.Duration{300 * time.Microsecond, 700 * time.Microsecond}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("publishing: %v, want %v", got, want)
	}
}
