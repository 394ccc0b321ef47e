package room_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/bus"
	"github.com/babelcast/babelcast/internal/room"
)

func openStore(t *testing.T) (*room.Store, *bus.Bus) {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return room.NewStore(b.Rooms), b
}

func TestStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	r := &room.Room{ID: "keynote", SourceLanguage: "en", Languages: []room.Language{{Code: "es"}}, SpeakerKey: "k"}
	if err := r.Normalize(); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, r); !errors.Is(err, room.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	got, rev, err := s.Get(ctx, "keynote")
	if err != nil || got.Languages[0].Code != "es" {
		t.Fatalf("get: %+v %v", got, err)
	}
	got.Name = "Opening"
	if err := s.Update(ctx, got, rev); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, got, rev); !errors.Is(err, room.ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "Opening" {
		t.Fatalf("list: %v %v", list, err)
	}
	if err := s.Delete(ctx, "keynote"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "keynote"); !errors.Is(err, room.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := s.Delete(ctx, "keynote"); !errors.Is(err, room.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestStoreWatchSeesChanges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, _ := openStore(t)
	existing := &room.Room{ID: "a", SourceLanguage: "en"}
	if err := s.Create(ctx, existing); err != nil {
		t.Fatal(err)
	}
	events, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := func() room.Event {
		select {
		case ev := <-events:
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no watch event")
		}
		return room.Event{}
	}
	if ev := next(); ev.ID != "a" || ev.Room == nil {
		t.Fatalf("initial: %+v", ev)
	}
	if err := s.Create(ctx, &room.Room{ID: "b", SourceLanguage: "en"}); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.ID != "b" || ev.Room == nil {
		t.Fatalf("create: %+v", ev)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.ID != "a" || ev.Room != nil {
		t.Fatalf("delete: %+v", ev)
	}
}

func TestRoomsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := room.NewStore(b.Rooms).Create(ctx, &room.Room{ID: "kept", SourceLanguage: "en"}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b2, err := bus.Open(ctx, bus.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if _, _, err := room.NewStore(b2.Rooms).Get(ctx, "kept"); err != nil {
		t.Fatalf("room lost over restart: %v", err)
	}
}
