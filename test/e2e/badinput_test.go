package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/client"
	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/test/harness"
	"github.com/babelcast/babelcast/test/harness/service"
)

// closeCode reads from c until it closes and returns the close code.
func closeCode(t *testing.T, c *websocket.Conn) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

// Bad input of every kind gets a clear refusal, and a room whose speaker
// and listener behave keeps working throughout.
func TestBadInputChangesNothingElse(t *testing.T) {
	t.Parallel()
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{}})
	good := s.API.CreateRoom(`{"id":"good","source_language":"en","languages":[{"code":"es"}]}`)
	other := s.API.CreateRoom(`{"id":"other","source_language":"en","languages":[{"code":"fr"}]}`)

	// A floor listener of the good room records throughout.
	aud := newAudience(t, s, "good")
	floor := aud.listen("en", t.TempDir()+"/floor.wav")
	aud.await("en")

	// Organizer API.
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/api/v1/rooms", `{"id":"x",`, 400},
		{"POST", "/api/v1/rooms", `{"id":"x","source_language":"en","colour":"red"}`, 400},
		{"POST", "/api/v1/rooms", `{"id":"x","source_language":"en","languages":[{"code":"xx"}]}`, 400},
		{"POST", "/api/v1/rooms", `{"id":"good","source_language":"en"}`, 409},
		{"POST", "/api/v1/rooms", `{"id":"big","name":"` + strings.Repeat("a", 300<<10) + `"}`, 413},
		{"PATCH", "/api/v1/rooms/good", `{"languages":[{"code":"es","voice":"nobody"}]}`, 400},
		{"GET", "/api/v1/rooms/nowhere", "", 404},
		{"DELETE", "/api/v1/rooms/nowhere", "", 404},
	} {
		if code := s.API.Call(tc.method, tc.path, tc.body, nil); code != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, code, tc.want)
		}
	}
	req, _ := http.NewRequest("GET", s.URL()+"/api/v1/rooms", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("wrong admin token: %v %v", resp.StatusCode, err)
	}

	// Speakers: wrong key, unknown room, then a real speaker that sends an
	// odd-length frame, and one that sends an oversized frame.
	for _, tc := range []struct {
		path, key string
		want      int
	}{
		{"/api/v1/rooms/good/speak", other.SpeakerKey, 401},
		{"/api/v1/rooms/nowhere/speak", good.SpeakerKey, 404},
	} {
		_, resp, err := websocket.DefaultDialer.Dial(s.WS(tc.path), http.Header{"Authorization": {"Bearer " + tc.key}})
		if err == nil || resp == nil || resp.StatusCode != tc.want {
			t.Errorf("speak %s: %v, want HTTP %d", tc.path, err, tc.want)
		}
	}
	for _, tc := range []struct {
		frame []byte
		want  int
	}{
		{make([]byte, 4801), 1007},
		{make([]byte, 200<<10), 1009},
	} {
		c, _, err := websocket.DefaultDialer.Dial(s.WS("/api/v1/rooms/other/speak"), http.Header{"Authorization": {"Bearer " + other.SpeakerKey}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.WriteMessage(websocket.BinaryMessage, tc.frame); err != nil {
			t.Fatal(err)
		}
		if got := closeCode(t, c); got != tc.want {
			t.Errorf("%d-byte frame: close %d, want %d", len(tc.frame), got, tc.want)
		}
		c.Close()
	}
	// Listeners: unknown language, unknown room.
	for path, want := range map[string]int{
		"/api/v1/rooms/good/listen?lang=de":    400,
		"/api/v1/rooms/nowhere/listen?lang=es": 404,
		"/api/v1/rooms/good/audio/xx.wav":      400,
	} {
		if strings.HasSuffix(path, ".wav") {
			resp, err := http.Get(s.URL() + path)
			if err != nil || resp.StatusCode != want {
				t.Errorf("GET %s: %v %v, want %d", path, resp.StatusCode, err, want)
			}
			continue
		}
		_, resp, err := websocket.DefaultDialer.Dial(s.WS(path), nil)
		if err == nil || resp == nil || resp.StatusCode != want {
			t.Errorf("listen %s: %v, want HTTP %d", path, err, want)
		}
	}

	// The good room still works: its speaker is heard on the floor.
	src, err := audio.NewRawSource(strings.NewReader(string(fakerealtime.Speech("en", time.Second))), audio.Rate)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Speak(context.Background(), client.SpeakOptions{Server: s.URL(), Room: "good", Key: good.SpeakerKey, Source: src}); err != nil {
		t.Fatalf("good speaker: %v", err)
	}
	harness.WaitFor(t, 10*time.Second, "the good room's floor audio", func() bool { return duration(floor.audio(), "en") >= 900*time.Millisecond })
	aud.stop()
	if resp, err := http.Get(s.URL() + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("not ready after bad input: %v", err)
	}
}

// On shutdown, listeners and speakers are told why they are disconnected.
func TestShutdownClosesWithReason(t *testing.T) {
	t.Parallel()
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{}})
	room := s.API.CreateRoom(`{"id":"bye","source_language":"en","languages":[{"code":"es"}]}`)
	listener, _, err := websocket.DefaultDialer.Dial(s.WS("/api/v1/rooms/bye/listen?lang=es"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	speaker, _, err := websocket.DefaultDialer.Dial(s.WS("/api/v1/rooms/bye/speak?key="+room.SpeakerKey), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer speaker.Close()
	if err := speaker.WriteMessage(websocket.BinaryMessage, fakerealtime.Speech("en", 200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Stop() // fails the test unless the shutdown is clean
	}()
	if code := closeCode(t, listener); code != websocket.CloseGoingAway {
		t.Errorf("listener closed with %d, want 1001", code)
	}
	if code := closeCode(t, speaker); code != websocket.CloseGoingAway {
		t.Errorf("speaker closed with %d, want 1001", code)
	}
	<-done
}
