package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/access"
	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/httperr"
)

// fakeFanout is a small listener endpoint: each connection is handed to
// session with its attempt number (from 1).
type fakeFanout struct {
	attempts atomic.Int32
	session  func(c *websocket.Conn, attempt int, r *http.Request)
	srv      *httptest.Server
}

func newFakeFanout(t *testing.T, session func(c *websocket.Conn, attempt int, r *http.Request)) *fakeFanout {
	f := &fakeFanout{session: session}
	up := websocket.Upgrader{Subprotocols: []string{access.Protocol}}
	var wg sync.WaitGroup
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/rooms/keynote/listen" {
			httperr.NotFound(w, "room \"x\" does not exist")
			return
		}
		if r.URL.Query().Get("lang") != "es" {
			httperr.BadRequest(w, "room keynote has no language "+r.URL.Query().Get("lang")+"; it has: en, es")
			return
		}
		n := int(f.attempts.Add(1))
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer c.Close()
		f.session(c, n, r)
	}))
	t.Cleanup(func() { f.srv.CloseClientConnections(); f.srv.Close(); wg.Wait() })
	return f
}

func hello(c *websocket.Conn) {
	c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","room":"keynote","lang":"es","sample_rate":24000,"floor":false}`))
}

// frames sends n frames of 100 ms whose samples all equal value.
func frames(c *websocket.Conn, n int, value int16) error {
	s := make([]int16, 2400)
	for i := range s {
		s[i] = value
	}
	for range n {
		if err := c.WriteMessage(websocket.BinaryMessage, audio.Bytes(s)); err != nil {
			return err
		}
	}
	return nil
}

func caption(c *websocket.Conn, seg int, text string, final bool) {
	b, _ := json.Marshal(map[string]any{"type": "caption", "lang": "es", "text": text, "final": final, "segment": seg})
	c.WriteMessage(websocket.TextMessage, b)
}

func closeWith(c *websocket.Conn, code int) {
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
	// Wait for the client's reply so the close handshake completes.
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

// readWAV checks the header sizes and returns the samples.
func readWAV(t *testing.T, path string) []int16 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 {
		t.Fatalf("WAV of %d bytes", len(b))
	}
	data := binary.LittleEndian.Uint32(b[40:])
	if int(data) != len(b)-44 || binary.LittleEndian.Uint32(b[4:]) != data+36 {
		t.Fatalf("WAV header sizes %d/%d for %d data bytes", binary.LittleEndian.Uint32(b[4:]), data, len(b)-44)
	}
	r, err := audio.NewWAVReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if r.Format.SampleRate != 24000 || r.Format.Channels != 1 {
		t.Fatalf("format %v", r.Format)
	}
	return audio.Samples(b[44:])
}

func TestListenRecordsUntilServerCloses(t *testing.T) {
	t.Parallel()
	f := newFakeFanout(t, func(c *websocket.Conn, _ int, r *http.Request) {
		// The passcode comes in the subprotocol, not the URL.
		if p, _ := access.Credential(r, access.KindPasscode); p != "s3cret" || r.URL.Query().Has("passcode") {
			return
		}
		hello(c)
		frames(c, 5, 100)
		caption(c, 1, "hola", false)
		caption(c, 1, "hola a\ntodos", true)
		frames(c, 5, 100)
		caption(c, 2, "adiós", true)
		closeWith(c, websocket.CloseNormalClosure)
	})
	path := filepath.Join(t.TempDir(), "es.wav")
	var caps bytes.Buffer
	var hooked atomic.Int64
	err := Listen(context.Background(), ListenOptions{
		Server: f.srv.URL, Room: "keynote", Lang: "es", Passcode: "s3cret",
		OutPath: path, Captions: &caps, OnAudio: func(p []byte) { hooked.Add(int64(len(p))) },
	})
	if err != nil {
		t.Fatal(err)
	}
	got := readWAV(t, path)
	if len(got) != 24000 || got[12345] != 100 {
		t.Fatalf("recorded %d samples", len(got))
	}
	if hooked.Load() != 48000 {
		t.Errorf("OnAudio saw %d bytes", hooked.Load())
	}
	if caps.String() != "hola a todos\nadiós\n" {
		t.Errorf("captions %q", caps.String())
	}
}

func TestListenReconnectsAfterDrop(t *testing.T) {
	t.Parallel()
	f := newFakeFanout(t, func(c *websocket.Conn, attempt int, _ *http.Request) {
		hello(c)
		switch attempt {
		case 1:
			frames(c, 3, 1)
			c.UnderlyingConn().Close() // dropped, no close frame
		case 2:
			frames(c, 2, 2)
			closeWith(c, websocket.CloseGoingAway) // server restarting
		default:
			frames(c, 4, 3)
			closeWith(c, websocket.CloseNormalClosure)
		}
	})
	path := filepath.Join(t.TempDir(), "es.wav")
	var log bytes.Buffer
	err := Listen(context.Background(), ListenOptions{
		Server: f.srv.URL, Room: "keynote", Lang: "es", OutPath: path, Log: &log,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.attempts.Load() != 3 {
		t.Errorf("%d connections, want 3", f.attempts.Load())
	}
	got := readWAV(t, path)
	if len(got) != 9*2400 || got[0] != 1 || got[3*2400] != 2 || got[len(got)-1] != 3 {
		t.Fatalf("recorded %d samples", len(got))
	}
	if !strings.Contains(log.String(), "reconnecting") {
		t.Errorf("log %q", log.String())
	}
}

func TestListenDoesNotRetryRefusals(t *testing.T) {
	t.Parallel()
	f := newFakeFanout(t, func(c *websocket.Conn, _ int, _ *http.Request) {
		hello(c)
		frames(c, 1, 5)
		c.WriteMessage(websocket.TextMessage, []byte(`{"type":"error","code":"room_deleted","message":"the room was deleted"}`))
		closeWith(c, 4404)
	})
	ctx := context.Background()
	opts := ListenOptions{Server: f.srv.URL, Room: "keynote", Lang: "fr", MinBackoff: time.Millisecond}
	err := Listen(ctx, opts)
	var he *HandshakeError
	if !errors.As(err, &he) || he.Status != 400 || !strings.Contains(err.Error(), "it has: en, es") {
		t.Fatalf("unknown language: %v", err)
	}
	opts.Room = "other"
	if err := Listen(ctx, opts); !errors.As(err, &he) || he.Status != 404 || he.Code != "not_found" {
		t.Fatalf("unknown room: %v", err)
	}
	if f.attempts.Load() != 0 {
		t.Fatalf("refused handshakes were retried")
	}
	opts.Room, opts.Lang = "keynote", "es"
	path := filepath.Join(t.TempDir(), "es.wav")
	opts.OutPath = path
	err = Listen(ctx, opts)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4404 || !strings.Contains(err.Error(), "room deleted") {
		t.Fatalf("room deleted: %v", err)
	}
	if f.attempts.Load() != 1 {
		t.Errorf("%d connections after 4404, want 1", f.attempts.Load())
	}
	if got := readWAV(t, path); len(got) != 2400 {
		t.Errorf("recorded %d samples before the deletion", len(got))
	}
}

func TestListenDurationAndCancel(t *testing.T) {
	t.Parallel()
	stopped := make(chan struct{}, 4)
	f := newFakeFanout(t, func(c *websocket.Conn, _ int, _ *http.Request) {
		hello(c)
		defer func() { stopped <- struct{}{} }()
		// Endless live stream, paced a little faster than real time; the
		// client's close frame makes ReadMessage fail in the drain below.
		go func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
		for {
			if err := frames(c, 1, 7); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond) // pacing a fake live stream, not synchronisation
		}
	})
	path := filepath.Join(t.TempDir(), "es.wav")
	err := Listen(context.Background(), ListenOptions{Server: f.srv.URL, Room: "keynote", Lang: "es",
		OutPath: path, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got := readWAV(t, path); len(got) == 0 || len(got)%2400 != 0 {
		t.Errorf("recorded %d samples", len(got))
	}
	// Cancelling ctx ends it the same way, into a non-seekable writer.
	ctx, cancel := context.WithCancel(context.Background())
	var buf bytes.Buffer
	got := make(chan int64, 1)
	go func() {
		Listen(ctx, ListenOptions{Server: f.srv.URL, Room: "keynote", Lang: "es", Out: &buf,
			OnAudio: func([]byte) { cancel() }})
		got <- int64(buf.Len())
	}()
	select {
	case n := <-got:
		b := buf.Bytes()
		if n < 44+4800 || binary.LittleEndian.Uint32(b[40:]) != 0xFFFFFFFF {
			t.Errorf("stream WAV of %d bytes", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Listen did not stop on cancel")
	}
}

func TestListenStopsWhenThePasscodeChanges(t *testing.T) {
	t.Parallel()
	f := newFakeFanout(t, func(c *websocket.Conn, _ int, _ *http.Request) {
		hello(c)
		frames(c, 1, 5)
		closeWith(c, 4403)
	})
	err := Listen(context.Background(), ListenOptions{Server: f.srv.URL, Room: "keynote", Lang: "es",
		OutPath: filepath.Join(t.TempDir(), "es.wav"), MinBackoff: time.Millisecond})
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4403 || !strings.Contains(err.Error(), "passcode changed") {
		t.Fatalf("passcode changed: %v", err)
	}
	if f.attempts.Load() != 1 {
		t.Errorf("%d connections after 4403, want 1: the old passcode cannot get back in", f.attempts.Load())
	}
}
