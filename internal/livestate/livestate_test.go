package livestate_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/bus"
	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/room"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openState(t *testing.T) jetstream.KeyValue {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Options{DataDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.State
}

func TestKeys(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		key  string
		want livestate.Key
	}{
		{livestate.MicKey("talk", "main"), livestate.Key{Kind: livestate.KindMic, Room: "talk", Mic: "main"}},
		{livestate.MicKey("talk", "q-7"), livestate.Key{Kind: livestate.KindMic, Room: "talk", Mic: "q-7"}},
		{livestate.ChannelKey("talk", "pt-BR"), livestate.Key{Kind: livestate.KindChannel, Room: "talk", Lang: "pt-BR"}},
		{livestate.ListenersKey("talk", "es", "fan-1"), livestate.Key{Kind: livestate.KindListeners, Room: "talk", Lang: "es", Node: "fan-1"}},
		{livestate.EngineKey("tr-1"), livestate.Key{Kind: livestate.KindEngine, Node: "tr-1"}},
	} {
		got, ok := livestate.ParseKey(c.key)
		if !ok || got != c.want || got.String() != c.key {
			t.Errorf("ParseKey(%q) = %+v, %v; want %+v", c.key, got, ok, c.want)
		}
	}
	for _, bad := range []string{"", "speaker", "speaker.a", "mic.talk", "mic.a.b.c", "channel.talk", "listeners.talk.es", "engine.", "other.talk", "talk.es"} {
		if k, ok := livestate.ParseKey(bad); ok {
			t.Errorf("ParseKey(%q) = %+v, want not a key", bad, k)
		}
	}
	if got := livestate.Mics(); got != "mic.*.*" {
		t.Errorf("Mics() = %q", got)
	}
}

func TestRoomStateSumsARoom(t *testing.T) {
	t.Parallel()
	put := func(key string, v any) livestate.Entry {
		return livestate.Entry{Key: key, Present: true, Value: livestate.Encode(v)}
	}
	rs := livestate.NewRoomState("talk")
	rs.Apply(livestate.Update{Reset: true, Entries: []livestate.Entry{
		put(livestate.MicKey("talk", "guest"), livestate.Mic{Node: "in-2", Language: "es", Name: "Ana", Since: time.Unix(100, 0)}),
		put(livestate.MicKey("talk", "main"), livestate.Mic{Node: "in-1", SampleRate: 48000, Language: "en", Since: time.Unix(200, 0)}),
		put(livestate.ChannelKey("talk", "es"), livestate.Channel{State: livestate.StateActive, Kind: "translate"}),
		put(livestate.ChannelKey("talk", "fr"), livestate.Channel{Error: "no state said"}),
		put(livestate.ListenersKey("talk", "es", "f1"), livestate.Listeners{Count: 2}),
		put(livestate.ListenersKey("talk", "es", "f2"), livestate.Listeners{Count: 3}),
		put(livestate.ListenersKey("talk", "en", "f1"), livestate.Listeners{Count: 4}),
		put(livestate.ListenersKey("other", "es", "f1"), livestate.Listeners{Count: 100}),
		{Key: livestate.ChannelKey("talk", "de"), Present: true, Value: []byte("{not json")},
	}})
	rm := &room.Room{ID: "talk", SourceLanguage: "en", Languages: []room.Language{{Code: "es"}, {Code: "fr"}, {Code: "de"}}}
	st := rs.Status(rm)
	if st.Speaker == nil || st.Speaker.ID != "main" || st.Speaker.Node != "in-1" || st.Floor.Listeners != 4 {
		t.Errorf("speaker %+v, floor %+v", st.Speaker, st.Floor)
	}
	if len(st.Mics) != 2 || st.Mics[0].ID != "guest" || st.Mics[0].Name != "Ana" || st.Mics[1].ID != "main" {
		t.Errorf("mics %+v, want guest (connected first) then main", st.Mics)
	}
	if !rs.Speaks("es") || rs.Speaks("fr") || !rs.SpeaksOtherThan("en") || !rs.SpeaksOtherThan("es") {
		t.Errorf("languages spoken wrong: %+v", rs.Mics)
	}
	want := []struct {
		code, state string
		listeners   int
	}{{"es", livestate.StateActive, 5}, {"fr", livestate.StateIdle, 0}, {"de", livestate.StateIdle, 0}}
	for i, w := range want {
		l := st.Languages[i]
		if l.Code != w.code || l.State != w.state || l.Listeners != w.listeners {
			t.Errorf("language %d = %+v, want %+v", i, l, w)
		}
	}
	// Changes: a node's listeners leave, main goes: guest stands for the
	// speaker; then guest goes too.
	rs.Apply(livestate.Update{Entries: []livestate.Entry{
		{Key: livestate.ListenersKey("talk", "es", "f2")},
		{Key: livestate.MicKey("talk", "main")},
	}})
	if rs.Listeners("es") != 2 || rs.Speaker() == nil || rs.Speaker().ID != "guest" {
		t.Errorf("after the changes: es %d listeners, speaker %+v", rs.Listeners("es"), rs.Speaker())
	}
	rs.Apply(livestate.Update{Entries: []livestate.Entry{{Key: livestate.MicKey("talk", "guest")}}})
	if rs.Speaking() || rs.Speaker() != nil {
		t.Errorf("a room with no mic still speaks: %+v", rs.Mics)
	}
	// A restarted watch says what is there now: the rest is gone.
	rs.Apply(livestate.Update{Reset: true})
	if rs.Listeners("es") != 0 || len(rs.Channels) != 0 {
		t.Errorf("after a reset: es %d listeners, channels %v", rs.Listeners("es"), rs.Channels)
	}
}

func TestWatchAndRead(t *testing.T) {
	t.Parallel()
	kv := openState(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	put := func(key string, v any) {
		if _, err := kv.Put(context.Background(), key, livestate.Encode(v)); err != nil {
			t.Fatal(err)
		}
	}
	put(livestate.MicKey("talk", "main"), livestate.Mic{Node: "in-1"})
	put(livestate.ListenersKey("talk", "es", "f1"), livestate.Listeners{Count: 2})
	put(livestate.EngineKey("tr-1"), livestate.Engine{Engine: "fake"})
	if err := kv.Delete(context.Background(), livestate.MicKey("talk", "main")); err != nil {
		t.Fatal(err)
	}
	updates := livestate.Watch(ctx, kv, livestate.WatchOptions{Keys: livestate.RoomKeys("talk"), Log: quiet()})
	next := func() livestate.Update {
		t.Helper()
		timer := time.NewTimer(5 * time.Second)
		defer timer.Stop()
		select {
		case u := <-updates:
			return u
		case <-timer.C:
			t.Fatal("no update")
		}
		panic("unreachable")
	}
	if u := next(); !u.Reset || len(u.Entries) != 1 || u.Entries[0].Key != livestate.ListenersKey("talk", "es", "f1") {
		t.Fatalf("first update %+v: want a reset with the listeners only", u)
	}
	put(livestate.ChannelKey("talk", "es"), livestate.Channel{State: livestate.StateStarting})
	if u := next(); u.Reset || len(u.Entries) != 1 || !u.Entries[0].Present || u.Entries[0].Key != livestate.ChannelKey("talk", "es") {
		t.Fatalf("change %+v", u)
	}
	rs, err := livestate.ReadRoom(context.Background(), kv, "talk")
	if err != nil || rs.Language("es").State != livestate.StateStarting || rs.Listeners("es") != 2 || rs.Speaking() {
		t.Fatalf("ReadRoom: %+v, %v", rs, err)
	}
	engines, err := livestate.ReadEngines(context.Background(), kv)
	if err != nil || len(engines) != 1 || engines["tr-1"].Engine != "fake" {
		t.Fatalf("ReadEngines: %+v, %v", engines, err)
	}
	cancel()
	for range updates { // closed once ctx ends
	}
}

// Retry waits longer after each failure in a row, and starts again from
// the shortest wait once a watch got going.
func TestRetryBacksOffAndStartsAfresh(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var starts []time.Time
	livestate.Retry(ctx, quiet(), "test watch", func(_ context.Context, established func()) error {
		starts = append(starts, time.Now())
		switch len(starts) {
		case 3:
			established()
		case 5:
			cancel()
		}
		return errors.New("watch ended")
	})
	gaps := make([]time.Duration, 0, 4)
	for i := 1; i < len(starts); i++ {
		gaps = append(gaps, starts[i].Sub(starts[i-1]))
	}
	// 500 ms, 1 s, then (the third start worked) 500 ms and 1 s again.
	mins := []time.Duration{500 * time.Millisecond, time.Second, 500 * time.Millisecond, time.Second}
	if len(gaps) != 4 {
		t.Fatalf("%d starts", len(starts))
	}
	for i, g := range gaps {
		if g < mins[i] {
			t.Errorf("wait %d: %v, want at least %v", i+1, g, mins[i])
		}
	}
	if gaps[2] >= 2*time.Second {
		t.Errorf("after a watch that worked the wait was %v: the backoff did not start again", gaps[2])
	}
}

// An audience question's mic stands for the speaker only when it is the
// only mic: the console and the speaker's status name the panel first.
func TestSpeakerIsNotAQuestionUnlessAlone(t *testing.T) {
	t.Parallel()
	rs := livestate.NewRoomState("talk")
	put := func(mic string, m livestate.Mic) livestate.Entry {
		return livestate.Entry{Key: livestate.MicKey("talk", mic), Present: true, Value: livestate.Encode(m)}
	}
	rs.Apply(livestate.Update{Reset: true, Entries: []livestate.Entry{
		put("q-abc", livestate.Mic{Question: "abc", Since: time.Unix(1, 0)}),
		put("panel-2", livestate.Mic{Since: time.Unix(2, 0)}),
	}})
	if sp := rs.Speaker(); sp == nil || sp.ID != "panel-2" {
		t.Fatalf("speaker %+v, want the panel's mic before the question's", sp)
	}
	rs.Apply(livestate.Update{Entries: []livestate.Entry{{Key: livestate.MicKey("talk", "panel-2")}}})
	if sp := rs.Speaker(); sp == nil || sp.ID != "q-abc" {
		t.Fatalf("speaker %+v, want the question's mic when it is the only one", sp)
	}
}
