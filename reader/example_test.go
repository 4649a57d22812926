package reader_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/keys"
	"github.com/vista-warmer/vista-warmer/reader"
)

// A cinema's programme for the next three hours, in two round trips.
func ExampleReader_CinemaSessions() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	r := reader.New(rdb, "vista")
	now := time.Now()
	sessions, err := r.CinemaSessions(context.Background(), "1001", now, now.Add(3*time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range sessions {
		fmt.Println(s.Showtime.Format("15:04"), s.FilmID, s.ScreenName, s.SeatsAvailable, "seats")
	}
}

// Every cinema and film, each list in two round trips.
func ExampleReader_Cinemas() {
	r := reader.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}), "vista")
	ctx := context.Background()
	cinemas, err := r.Cinemas(ctx)
	if err != nil {
		log.Fatal(err)
	}
	films, err := r.Films(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(cinemas), "cinemas,", len(films), "films")
}

// Following the changes: seats as they sell, and a re-read of what the
// app holds when events were missed or the cache was built anew.
func ExampleReader_Watch() {
	r := reader.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}), "vista")
	var at reader.Position // zero: from the next event; keep the last one to go on after a restart
	err := r.Watch(context.Background(), at, func(ev reader.Event) error {
		if ev.Resync {
			fmt.Println("events were missed: read the keys again")
		}
		if ev.Kind == keys.Sessions && ev.Event.Event == keys.EventItem {
			fmt.Println(ev.ID, *ev.SeatsAvailable, "seats")
		}
		at = ev.Position
		return nil
	})
	log.Fatal(err)
}

// The old get_sessions() and on_change, fed by one shared warmer: a copy
// of two cinemas read with no round trip.
func ExampleMirror() {
	r := reader.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}), "vista")
	m := reader.NewMirror(r, "1001", "1002")
	m.OnItem = func(k keys.Kind, id string) {
		if s, ok := m.Session(id); ok && k == keys.Sessions {
			fmt.Println(id, s.SeatsAvailable, "seats")
		}
	}
	m.OnRemoved = func(k keys.Kind, id, reason string) { fmt.Println(k, id, "removed:", reason) }
	go func() { log.Fatal(m.Run(context.Background())) }()
	<-m.Ready()
	now := time.Now()
	for _, s := range m.Sessions("1001", now, now.Add(3*time.Hour)) {
		fmt.Println(s.Showtime.Format("15:04"), s.FilmID, s.SeatsAvailable)
	}
}
