package fakerealtime_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/test/fakerealtime"
)

// client is a minimal Realtime client for the fake's own tests: it reads
// every server event into a channel from its own goroutine.
type client struct {
	t      testing.TB
	ws     *websocket.Conn
	events chan event
	err    error // the read error that ended the stream; valid once events is closed
}

type event map[string]any

func (e event) typ() string { s, _ := e["type"].(string); return s }

// at is the value at a path of keys into nested objects (nil if none).
func (e event) at(path ...string) any {
	var v any = map[string]any(e)
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	return v
}

func (e event) str(path ...string) string { s, _ := e.at(path...).(string); return s }

func (e event) num(path ...string) float64 { f, _ := e.at(path...).(float64); return f }

func bearer(key string) http.Header { return http.Header{"Authorization": {"Bearer " + key}} }

func dial(t testing.TB, url string, h http.Header) *client {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", url, err, status)
	}
	c := &client{t: t, ws: ws, events: make(chan event, 100000)}
	go func() {
		defer close(c.events)
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				c.err = err
				return
			}
			var ev event
			if err := json.Unmarshal(data, &ev); err != nil {
				c.err = err
				return
			}
			c.events <- ev
		}
	}()
	t.Cleanup(func() { ws.Close() })
	return c
}

func (c *client) send(v any) {
	c.t.Helper()
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// appendAudio sends pcm in 200 ms appends.
func (c *client) appendAudio(typ string, pcm []byte) {
	c.t.Helper()
	const chunk = 9600
	for len(pcm) > 0 {
		n := min(chunk, len(pcm))
		c.send(map[string]any{"type": typ, "audio": base64.StdEncoding.EncodeToString(pcm[:n])})
		pcm = pcm[n:]
	}
}

// appendUntilGone sends pcm in 200 ms appends, stopping at the first
// write that fails: the server may drop the connection meanwhile.
func (c *client) appendUntilGone(typ string, pcm []byte) {
	const chunk = 9600
	for len(pcm) > 0 {
		n := min(chunk, len(pcm))
		if c.ws.WriteJSON(map[string]any{"type": typ, "audio": base64.StdEncoding.EncodeToString(pcm[:n])}) != nil {
			return
		}
		pcm = pcm[n:]
	}
}

// next returns the next event of one of the given types, skipping others.
func (c *client) next(types ...string) event {
	c.t.Helper()
	ev, _ := c.until(types...)
	return ev
}

// until returns the next event of one of types and every event before it.
func (c *client) until(types ...string) (event, []event) {
	c.t.Helper()
	var seen []event
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				c.t.Fatalf("connection ended (%v) while waiting for %v; saw %v", c.err, types, typesOf(seen))
			}
			seen = append(seen, ev)
			for _, t := range types {
				if ev.typ() == t {
					return ev, seen
				}
			}
		case <-timeout:
			c.t.Fatalf("timed out waiting for %v; saw %v", types, typesOf(seen))
		}
	}
}

// barrier sends an event the fake must reject and returns everything the
// fake sent before the rejection: since the fake answers in order, that is
// all the output caused by earlier events.
func (c *client) barrier() []event {
	c.t.Helper()
	c.send(map[string]any{"type": "barrier.please_reject", "event_id": "barrier"})
	for {
		ev, seen := c.until("error")
		if ev.str("error", "event_id") == "barrier" {
			return seen[:len(seen)-1]
		}
	}
}

// closed waits for the connection to end and returns its close code, or
// -1 when it ended without a close frame.
func (c *client) closed() int {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-c.events:
			if !ok {
				var ce *websocket.CloseError
				if errors.As(c.err, &ce) {
					return ce.Code
				}
				return -1
			}
		case <-timeout:
			c.t.Fatal("connection did not end")
		}
	}
}

func typesOf(evs []event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.typ()
	}
	return out
}

func ofType(evs []event, typ string) []event {
	var out []event
	for _, e := range evs {
		if e.typ() == typ {
			out = append(out, e)
		}
	}
	return out
}

// audioOf decodes and joins the delta audio of events.
func audioOf(t testing.TB, evs []event) []byte {
	t.Helper()
	var pcm []byte
	for _, e := range evs {
		b, err := base64.StdEncoding.DecodeString(e.str("delta"))
		if err != nil {
			t.Fatalf("bad base64 in %s: %v", e.typ(), err)
		}
		pcm = append(pcm, b...)
	}
	return pcm
}

func textOf(evs []event) string {
	s := ""
	for _, e := range evs {
		s += e.str("delta")
	}
	return s
}

func ms(pcm []byte) int { return len(pcm) / 48 }

// connect dials url with s's key and returns the connection and its
// first event, session.created.
func connect(t testing.TB, s *fakerealtime.Server, url string) (*client, event) {
	t.Helper()
	c := dial(t, url, bearer(s.APIKey()))
	return c, c.next("session.created")
}

func newServer(t testing.TB, opts fakerealtime.Options) *fakerealtime.Server {
	return fakerealtime.New(t, opts)
}
