package client

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/babelcast/babelcast/internal/app"
	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/test/harness"
	"github.com/babelcast/babelcast/test/harness/service"
)

type ingestEnv struct {
	room harness.Room
	url  string
	sub  chan *nats.Msg
}

// newIngest runs the ingest role (and the API, to create the room) with
// room keynote, subscribed to the room's published audio.
func newIngest(t *testing.T) *ingestEnv {
	t.Helper()
	s := service.Start(t, service.Options{Config: func(c *app.Config) {
		c.Roles = []string{app.RoleIngest, app.RoleAPI}
		c.NATSListen = "127.0.0.1:0" // for the test's own connection
	}})
	rm := s.API.CreateRoom(`{"id":"keynote","source_language":"en","languages":[{"code":"es"}]}`)
	key, err := nats.NkeyOptionFromSeed(s.App().NATSKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(s.App().NATSURL(), key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	sub := make(chan *nats.Msg, 4096)
	if _, err := nc.ChanSubscribe(subject.Mic("keynote", "main"), sub); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &ingestEnv{room: rm, url: s.URL(), sub: sub}
}

// collect reads published audio until n samples arrived.
func (e *ingestEnv) collect(t *testing.T, n int) []int16 {
	t.Helper()
	var got []int16
	for len(got) < n {
		select {
		case m := <-e.sub:
			got = append(got, audio.Samples(m.Data)...)
		case <-time.After(10 * time.Second):
			t.Fatalf("published %d samples, want %d", len(got), n)
		}
	}
	return got
}

func rawTone(t *testing.T, rate int, seconds float64) *audio.Source {
	s := make([]int16, int(float64(rate)*seconds))
	for i := range s {
		s[i] = int16((i % 48) * 500)
	}
	src, err := audio.NewRawSource(bytes.NewReader(audio.Bytes(s)), rate)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestSpeakStreamsWholeSource(t *testing.T) {
	t.Parallel()
	e := newIngest(t)
	var log harness.Logs
	var mu sync.Mutex
	seen := map[string]bool{}
	err := Speak(context.Background(), SpeakOptions{
		Server: e.url, Room: "keynote", Key: e.room.SpeakerKey, Source: rawTone(t, 24000, 1), Log: &log,
		OnMessage: func(typ string, _ []byte) { mu.Lock(); seen[typ] = true; mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	got := e.collect(t, 24000)
	if len(got) != 24000 || got[47] != 47*500 {
		t.Fatalf("published %d samples", len(got))
	}
	// Speak waits for "ready" before it sends audio, however short the
	// source.
	mu.Lock()
	defer mu.Unlock()
	if !seen["ready"] {
		t.Errorf("server messages seen: %v", seen)
	}
	if !strings.Contains(log.String(), "ready: speaking in room keynote") {
		t.Errorf("log %q", log.String())
	}
}

func TestSpeakRealtimePacing(t *testing.T) {
	t.Parallel()
	e := newIngest(t)
	began := time.Now()
	var log harness.Logs
	err := Speak(context.Background(), SpeakOptions{
		Server: e.url, Room: "keynote", Key: e.room.SpeakerKey, Source: rawTone(t, 24000, 0.6), Realtime: true, Log: &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Paced: the last frame (at 0.5 s) could not go before its time.
	if el := time.Since(began); el < 500*time.Millisecond {
		t.Errorf("0.6 s of audio sent in %v: not paced", el)
	}
	e.collect(t, 14400)
	// The server's status (sent with ready, then every 2 s) reaches the log.
	if !strings.Contains(log.String(), "status: floor 0") {
		t.Errorf("no status line in the log: %q", log.String())
	}
}

func TestSpeakHandshakeErrorCarriesMessage(t *testing.T) {
	t.Parallel()
	e := newIngest(t)
	err := Speak(context.Background(), SpeakOptions{Server: e.url, Room: "keynote", Key: "spk_wrong", Source: rawTone(t, 24000, 0.1)})
	var he *HandshakeError
	if !errors.As(err, &he) || he.Status != 401 || !strings.Contains(err.Error(), "wrong speaker key") {
		t.Fatalf("wrong key: %v", err)
	}
	err = Speak(context.Background(), SpeakOptions{Server: e.url, Room: "nosuch", Key: "k", Source: rawTone(t, 24000, 0.1)})
	if !errors.As(err, &he) || he.Status != 404 || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("unknown room: %v", err)
	}
	if err := Speak(context.Background(), SpeakOptions{Server: "ftp://x", Room: "r", Key: "k", Source: rawTone(t, 24000, 0.1)}); err == nil {
		t.Error("ftp URL accepted")
	}
}

func TestSpeakReportsTakeover(t *testing.T) {
	t.Parallel()
	e := newIngest(t)
	ready := make(chan struct{})
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		errc <- Speak(context.Background(), SpeakOptions{
			Server: e.url, Room: "keynote", Key: e.room.SpeakerKey, Source: rawTone(t, 24000, 30), Realtime: true,
			OnMessage: func(typ string, _ []byte) {
				if typ == "ready" {
					once.Do(func() { close(ready) })
				}
			},
		})
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("no ready")
	}
	h := http.Header{"Authorization": {"Bearer " + e.room.SpeakerKey}}
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.url, "http")+"/api/v1/rooms/keynote/speak", h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case err := <-errc:
		var ce *CloseError
		if !errors.As(err, &ce) || ce.Code != 4001 || !strings.Contains(err.Error(), "replaced") {
			t.Fatalf("Speak returned %v, want close 4001", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Speak did not end when replaced")
	}
}

func TestSpeakCancel(t *testing.T) {
	t.Parallel()
	e := newIngest(t)
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	err := Speak(ctx, SpeakOptions{
		Server: e.url, Room: "keynote", Key: e.room.SpeakerKey, Source: rawTone(t, 24000, 30), Realtime: true,
		OnMessage: func(typ string, _ []byte) {
			if typ == "ready" {
				once.Do(cancel)
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Speak returned %v, want context.Canceled", err)
	}
}

func TestEndpoint(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"http://h:8080":      "ws://h:8080/api/v1/rooms/r/speak",
		"https://h/base/":    "wss://h/base/api/v1/rooms/r/speak",
		"wss://h":            "wss://h/api/v1/rooms/r/speak",
		"localhost:8080":     "ws://localhost:8080/api/v1/rooms/r/speak",
		"http://h/?x=1#frag": "ws://h/api/v1/rooms/r/speak",
	}
	for in, want := range cases {
		got, err := endpoint(in, roomPath("r", "/speak"), nil)
		if err != nil || got != want {
			t.Errorf("%s: %s %v, want %s", in, got, err, want)
		}
	}
}
