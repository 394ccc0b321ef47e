package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/access"
	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/bus"
	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/question"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/internal/wire"
)

type env struct {
	t     *testing.T
	bus   *bus.Bus
	rooms *room.Store
	room  *room.Room
	srv   *Server
	http  *httptest.Server
	stop  context.CancelFunc
	done  chan error
}

// newEnv starts NATS, a room "keynote" and an ingest node.
func newEnv(t *testing.T, tweak func(*Options)) *env {
	t.Helper()
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Options{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	e := &env{t: t, bus: b, rooms: room.NewStore(b.Rooms)}
	e.room = &room.Room{ID: "keynote", SourceLanguage: "en", Languages: []room.Language{{Code: "es"}, {Code: "de"}},
		SpeakerKey: room.NewSpeakerKey()}
	if err := e.room.Normalize(); err != nil {
		t.Fatal(err)
	}
	if err := e.rooms.Create(ctx, e.room); err != nil {
		t.Fatal(err)
	}
	e.srv, e.http, e.stop, e.done = e.node("n1", tweak)
	return e
}

// node starts one more ingest node on the same bus.
func (e *env) node(name string, tweak func(*Options)) (*Server, *httptest.Server, context.CancelFunc, chan error) {
	o := Options{NC: e.bus.Conn, Rooms: e.rooms, State: e.bus.State, Questions: question.NewStore(e.bus.Questions), Node: name,
		Log: slog.New(slog.DiscardHandler), LevelInterval: 50 * time.Millisecond, StatusInterval: 100 * time.Millisecond}
	if tweak != nil {
		tweak(&o)
	}
	s, err := New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	r := chi.NewRouter()
	s.Mount(r)
	hs := httptest.NewServer(r)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		<-done
		hs.Close()
	})
	return s, hs, cancel, done
}

func wsURL(hs *httptest.Server, path string) string {
	return "ws" + strings.TrimPrefix(hs.URL, "http") + path
}

func (e *env) dial(hs *httptest.Server, key string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	return websocket.DefaultDialer.Dial(wsURL(hs, "/api/v1/rooms/keynote/speak"), h)
}

func (e *env) speak(hs *httptest.Server) *websocket.Conn {
	e.t.Helper()
	c, _, err := e.dial(hs, e.room.SpeakerKey)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

func (e *env) subscribe() chan *nats.Msg {
	ch := make(chan *nats.Msg, 1024)
	sub, err := e.bus.Conn.ChanSubscribe(subject.Mic("keynote", "main"), ch)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { sub.Unsubscribe() })
	if err := e.bus.Conn.Flush(); err != nil {
		e.t.Fatal(err)
	}
	return ch
}

// awaitFrame waits for the next frame published on ch, what the test calls
// it, and checks that it holds n bytes.
func (e *env) awaitFrame(ch chan *nats.Msg, n int, what string) {
	e.t.Helper()
	select {
	case m := <-ch:
		if len(m.Data) != n {
			e.t.Errorf("%s of %d bytes, want %d", what, len(m.Data), n)
		}
	case <-time.After(5 * time.Second):
		e.t.Fatalf("%s not published", what)
	}
}

// expectNothingPublished proves no audio preceded a sentinel published now
// on the same connection (NATS keeps a connection's order).
func (e *env) expectNothingPublished(ch chan *nats.Msg) {
	e.t.Helper()
	if err := e.bus.Conn.Publish(subject.Mic("keynote", "main"), []byte("sentinel")); err != nil {
		e.t.Fatal(err)
	}
	select {
	case m := <-ch:
		if string(m.Data) != "sentinel" {
			e.t.Fatalf("audio was published: %d bytes", len(m.Data))
		}
	case <-time.After(5 * time.Second):
		e.t.Fatal("sentinel not received")
	}
}

type serverMsg struct {
	Type       string  `json:"type"`
	Code       string  `json:"code"`
	Message    string  `json:"message"`
	SampleRate int     `json:"sample_rate"`
	Room       string  `json:"room"`
	RMSDB      float64 `json:"rms_db"`
	PeakDB     float64 `json:"peak_db"`
	Speaker    bool    `json:"speaker"`
	Mic        string  `json:"mic"`
	Language   string  `json:"language"`
	Mics       []struct {
		Mic, Name, Language string
	} `json:"mics"`
	Languages []struct {
		Code      string `json:"code"`
		State     string `json:"state"`
		Listeners int    `json:"listeners"`
		Error     string `json:"error"`
	} `json:"languages"`
	FloorListeners int `json:"floor_listeners"`
}

// readUntilClose reads text messages until the server closes, returning
// them and the close code.
func readUntilClose(t *testing.T, c *websocket.Conn) ([]serverMsg, int) {
	t.Helper()
	var msgs []serverMsg
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		mt, b, err := c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return msgs, ce.Code
			}
			t.Fatalf("read: %v (after %+v)", err, msgs)
		}
		if mt == websocket.TextMessage {
			var m serverMsg
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("server sent bad JSON %q", b)
			}
			msgs = append(msgs, m)
		}
	}
}

// next reads text messages until one of type typ.
func next(t *testing.T, c *websocket.Conn, typ string) serverMsg {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		var m serverMsg
		json.Unmarshal(b, &m)
		if m.Type == typ {
			return m
		}
	}
}

func lastError(msgs []serverMsg) serverMsg {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Type == "error" {
			return msgs[i]
		}
	}
	return serverMsg{}
}

func tone(freq float64, rate int, seconds, amp float64) []int16 {
	s := make([]int16, int(float64(rate)*seconds))
	for i := range s {
		s[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return s
}

func TestHandshakeErrors(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name   string
		url    string
		header string
		status int
		code   string
	}{
		{"no key", "/api/v1/rooms/keynote/speak", "", 401, "unauthorized"},
		{"wrong key", "/api/v1/rooms/keynote/speak", "Bearer spk_wrong", 401, "unauthorized"},
		{"wrong query key", "/api/v1/rooms/keynote/speak?key=nope", "", 401, "unauthorized"},
		{"basic auth", "/api/v1/rooms/keynote/speak", "Basic " + e.room.SpeakerKey, 401, "unauthorized"},
		{"wrong subprotocol key", "/api/v1/rooms/keynote/speak", "proto:" + access.CredentialProtocol(access.KindKey, "spk_wrong"), 401, "unauthorized"},
		{"unknown room", "/api/v1/rooms/nosuch/speak", "Bearer " + e.room.SpeakerKey, 404, "not_found"},
	}
	for _, c := range cases {
		h := http.Header{}
		d := websocket.Dialer{}
		if p, ok := strings.CutPrefix(c.header, "proto:"); ok {
			d.Subprotocols = []string{access.Protocol, p}
		} else if c.header != "" {
			h.Set("Authorization", c.header)
		}
		_, resp, err := d.Dial(wsURL(e.http, c.url), h)
		if err == nil || resp == nil {
			t.Fatalf("%s: dial succeeded", c.name)
		}
		var body httperr.Body
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != c.status || body.Error.Code != c.code || body.Error.Message == "" {
			t.Errorf("%s: %d %+v, want %d %s", c.name, resp.StatusCode, body, c.status, c.code)
		}
	}
	// A plain GET with the right key says the key is valid (the speaker
	// page's check), and starts nothing.
	req, _ := http.NewRequest("GET", e.http.URL+"/api/v1/rooms/keynote/speak", nil)
	req.Header.Set("Authorization", "Bearer "+e.room.SpeakerKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var check struct{ Room, Key string }
	json.NewDecoder(resp.Body).Decode(&check)
	resp.Body.Close()
	if resp.StatusCode != 200 || check.Room != "keynote" || check.Key != "valid" {
		t.Errorf("key check: %d %+v", resp.StatusCode, check)
	}
	// The key in the query works too.
	c, _, err := websocket.DefaultDialer.Dial(wsURL(e.http, "/api/v1/rooms/keynote/speak?key="+e.room.SpeakerKey), nil)
	if err != nil {
		t.Fatalf("?key=: %v", err)
	}
	c.Close()
	// The speaker page's way: the key in the subprotocol, where no load
	// balancer logs it. The server selects "babelcast".
	d := websocket.Dialer{Subprotocols: []string{access.Protocol, access.CredentialProtocol(access.KindKey, e.room.SpeakerKey)}}
	c, resp, err = d.Dial(wsURL(e.http, "/api/v1/rooms/keynote/speak"), nil)
	if err != nil {
		t.Fatalf("key in the subprotocol: %v", err)
	}
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != access.Protocol {
		t.Errorf("selected subprotocol %q", p)
	}
	c.Close()
}

func TestResamplesAndPublishesFrames(t *testing.T) {
	e := newEnv(t, nil)
	sub := e.subscribe()
	c := e.speak(e.http)
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"start","sample_rate":48000}`)); err != nil {
		t.Fatal(err)
	}
	if m := next(t, c, "ready"); m.SampleRate != 48000 || m.Room != "keynote" {
		t.Fatalf("ready %+v", m)
	}
	start := time.Now()
	in := tone(1000, 48000, 1, 16000)
	for i := 0; i < len(in); i += 960 { // 20 ms messages
		if err := c.WriteMessage(websocket.BinaryMessage, audio.Bytes(in[i:i+960])); err != nil {
			t.Fatal(err)
		}
	}
	// A sine at 16000/32768: peak -6.2 dBFS, RMS 3 dB lower.
	if lv := next(t, c, "level"); math.Abs(lv.RMSDB+9.2) > 0.2 || math.Abs(lv.PeakDB+6.2) > 0.2 {
		t.Errorf("level %+v, want rms -9.2, peak -6.2 dBFS", lv)
	}
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	if _, code := readUntilClose(t, c); code != websocket.CloseNormalClosure {
		t.Fatalf("close %d", code)
	}
	var got []int16
	var lastSeq uint64
	deadline := time.After(10 * time.Second)
	for len(got) < 24000 {
		select {
		case m := <-sub:
			seq, captured := subject.AudioMeta(m)
			if seq != lastSeq+1 {
				t.Fatalf("seq %d after %d", seq, lastSeq)
			}
			lastSeq = seq
			if captured.Before(start.Add(-time.Second)) || captured.After(time.Now()) {
				t.Errorf("capture time %v not within the test", captured)
			}
			if n := len(m.Data) / 2; n != 2400 && len(got)+n != 24000 {
				t.Errorf("frame %d has %d samples, want 2400 (100 ms)", seq, n)
			}
			got = append(got, audio.Samples(m.Data)...)
		case <-deadline:
			t.Fatalf("got %d samples, want 24000", len(got))
		}
	}
	if len(got) != 24000 {
		t.Fatalf("published %d samples for 1 s, want 24000", len(got))
	}
	e.expectNothingPublished(sub)
	// The tone is still there, at 24 kHz.
	rms, _ := audio.Level(got[2400:21600])
	if math.Abs(rms-(20*math.Log10(16000/32768.)-3)) > 0.3 {
		t.Errorf("rms %.1f dBFS", rms)
	}
}

func TestDefaultRateWithoutStart(t *testing.T) {
	e := newEnv(t, nil)
	sub := e.subscribe()
	c := e.speak(e.http)
	c.WriteMessage(websocket.BinaryMessage, audio.Bytes(tone(440, 24000, 0.1, 1000)))
	if m := next(t, c, "ready"); m.SampleRate != 24000 {
		t.Fatalf("ready %+v", m)
	}
	e.awaitFrame(sub, 4800, "a frame")
}

func TestBadInputCloses(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxFrame = 1024 })
	cases := []struct {
		name  string
		send  func(c *websocket.Conn)
		close int
		code  string
	}{
		{"odd length", func(c *websocket.Conn) { c.WriteMessage(websocket.BinaryMessage, make([]byte, 101)) }, 1007, "bad_audio"},
		{"oversized", func(c *websocket.Conn) { c.WriteMessage(websocket.BinaryMessage, make([]byte, 2000)) }, 1009, "frame_too_large"},
		{"malformed json", func(c *websocket.Conn) { c.WriteMessage(websocket.TextMessage, []byte(`{"type":`)) }, 1008, "bad_message"},
		{"unknown type", func(c *websocket.Conn) { c.WriteMessage(websocket.TextMessage, []byte(`{"type":"dance"}`)) }, 1008, "bad_message"},
		{"bad rate", func(c *websocket.Conn) {
			c.WriteMessage(websocket.TextMessage, []byte(`{"type":"start","sample_rate":1000}`))
		}, 1008, "bad_sample_rate"},
		{"start after audio", func(c *websocket.Conn) {
			c.WriteMessage(websocket.BinaryMessage, make([]byte, 100))
			c.WriteMessage(websocket.TextMessage, []byte(`{"type":"start","sample_rate":48000}`))
		}, 1008, "bad_message"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := e.subscribe()
			c := e.speak(e.http)
			tc.send(c)
			msgs, code := readUntilClose(t, c)
			if code != tc.close {
				t.Errorf("close %d, want %d", code, tc.close)
			}
			if er := lastError(msgs); er.Code != tc.code || er.Message == "" {
				t.Errorf("error %+v, want code %s", er, tc.code)
			}
			e.expectNothingPublished(sub)
		})
	}
}

func TestTakeoverSameNodeAndAcrossNodes(t *testing.T) {
	e := newEnv(t, nil)
	first := e.speak(e.http)
	first.WriteMessage(websocket.BinaryMessage, make([]byte, 480))
	next(t, first, "ready")

	// A connection takes the mic over when it starts, or having said
	// nothing for a second.
	second := e.speak(e.http)
	msgs, code := readUntilClose(t, first)
	if code != wire.CloseReplaced || lastError(msgs).Code != "replaced" {
		t.Fatalf("first: close %d, %+v; want 4001 replaced", code, msgs)
	}
	second.WriteMessage(websocket.BinaryMessage, make([]byte, 480))
	next(t, second, "ready")

	// A third connection on another ingest node takes the mic over too.
	_, hs2, _, _ := e.node("n2", nil)
	third := e.speak(hs2)
	msgs, code = readUntilClose(t, second)
	if code != wire.CloseReplaced || lastError(msgs).Code != "replaced" {
		t.Fatalf("second: close %d, %+v; want 4001 replaced", code, msgs)
	}
	third.WriteMessage(websocket.BinaryMessage, make([]byte, 480))
	next(t, third, "ready")
	// The entry names the node holding the speaker now, and stays.
	waitSpeakerState(t, e.bus.State, func(st *livestate.Mic) bool { return st != nil && st.Node == "n2" })
}

// waitSpeakerState watches speaker.keynote until ok holds (nil = absent).
func waitSpeakerState(t *testing.T, kv jetstream.KeyValue, ok func(*livestate.Mic) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := kv.Watch(ctx, livestate.MicKey("keynote", "main"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var cur *livestate.Mic
	for {
		select {
		case e := <-w.Updates():
			if e != nil {
				cur = nil
				if e.Operation() == jetstream.KeyValuePut {
					cur = &livestate.Mic{}
					json.Unmarshal(e.Value(), cur)
				}
			}
			if ok(cur) {
				return
			}
		case <-ctx.Done():
			t.Fatalf("speaker state is %+v", cur)
		}
	}
}

func TestSpeakerStateAppearsAndDisappears(t *testing.T) {
	e := newEnv(t, nil)
	c := e.speak(e.http)
	c.WriteMessage(websocket.TextMessage, []byte(`{"type":"start","sample_rate":44100}`))
	next(t, c, "ready")
	waitSpeakerState(t, e.bus.State, func(st *livestate.Mic) bool {
		return st != nil && st.Node == "n1" && st.SampleRate == 44100 && !st.Since.IsZero()
	})
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	readUntilClose(t, c)
	waitSpeakerState(t, e.bus.State, func(st *livestate.Mic) bool { return st == nil })
}

func TestStateRefreshedBeforeTTL(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Refresh = 100 * time.Millisecond })
	c := e.speak(e.http)
	c.WriteMessage(websocket.BinaryMessage, make([]byte, 480))
	next(t, c, "ready")
	puts := 0
	waitSpeakerState(t, e.bus.State, func(st *livestate.Mic) bool {
		if st != nil && st.Node == "n1" {
			puts++
		}
		return puts >= 4 // the first write and three refreshes
	})
}

func TestRoomDeletedCloses4404(t *testing.T) {
	e := newEnv(t, nil)
	c := e.speak(e.http)
	c.WriteMessage(websocket.BinaryMessage, make([]byte, 480))
	next(t, c, "ready")
	if err := e.rooms.Delete(context.Background(), "keynote"); err != nil {
		t.Fatal(err)
	}
	msgs, code := readUntilClose(t, c)
	if code != wire.CloseRoomGone || lastError(msgs).Code != "room_deleted" {
		t.Fatalf("close %d %+v, want 4404", code, msgs)
	}
	waitSpeakerState(t, e.bus.State, func(st *livestate.Mic) bool { return st == nil })
}

func TestKeyRotationCloses(t *testing.T) {
	e := newEnv(t, nil)
	c := e.speak(e.http)
	c.WriteMessage(websocket.BinaryMessage, make([]byte, 480))
	next(t, c, "ready")
	rm, rev, _ := e.rooms.Get(context.Background(), "keynote")
	rm.SpeakerKey = room.NewSpeakerKey()
	if err := e.rooms.Update(context.Background(), rm, rev); err != nil {
		t.Fatal(err)
	}
	msgs, code := readUntilClose(t, c)
	if code != websocket.ClosePolicyViolation || lastError(msgs).Code != "key_rotated" {
		t.Fatalf("close %d %+v, want 1008 key_rotated", code, msgs)
	}
	// Renaming the room does not disturb a speaker with the right key.
	c = e.speak2(rm.SpeakerKey)
	rm, rev, _ = e.rooms.Get(context.Background(), "keynote")
	rm.Name = "Renamed"
	e.rooms.Update(context.Background(), rm, rev)
	c.WriteMessage(websocket.BinaryMessage, make([]byte, 480))
	next(t, c, "ready")
	next(t, c, "status")
}

func (e *env) speak2(key string) *websocket.Conn {
	e.t.Helper()
	c, _, err := e.dial(e.http, key)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

func TestStatusReportsChannelsAndListeners(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	put := func(key string, v any) {
		b, _ := json.Marshal(v)
		if _, err := e.bus.State.Put(ctx, key, b); err != nil {
			t.Fatal(err)
		}
	}
	put(livestate.ChannelKey("keynote", "es"), livestate.Channel{State: livestate.StateActive})
	put(livestate.ChannelKey("keynote", "de"), livestate.Channel{State: livestate.StateError, Error: "quota"})
	put(livestate.ListenersKey("keynote", "es", "f1"), livestate.Listeners{Count: 2})
	put(livestate.ListenersKey("keynote", "es", "f2"), livestate.Listeners{Count: 1})
	put(livestate.ListenersKey("keynote", "en", "f1"), livestate.Listeners{Count: 4})
	put(livestate.ListenersKey("other", "es", "f1"), livestate.Listeners{Count: 9})
	c := e.speak(e.http)
	c.WriteMessage(websocket.TextMessage, []byte(`{"type":"start"}`))
	next(t, c, "ready")
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := next(t, c, "status")
		ok := m.Speaker && len(m.Languages) == 2 && m.FloorListeners == 4 &&
			m.Languages[0].Code == "es" && m.Languages[0].State == "active" && m.Languages[0].Listeners == 3 &&
			m.Languages[1].Code == "de" && m.Languages[1].State == "error" && m.Languages[1].Error == "quota"
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v", m)
		}
	}
	// A listener count going away is noticed.
	e.bus.State.Delete(ctx, livestate.ListenersKey("keynote", "es", "f2"))
	for {
		m := next(t, c, "status")
		if m.Languages[0].Listeners == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v", m)
		}
	}
}

func TestShutdownClosesSpeakers1001(t *testing.T) {
	e := newEnv(t, nil)
	sub := e.subscribe()
	c := e.speak(e.http)
	c.WriteMessage(websocket.BinaryMessage, audio.Bytes(make([]int16, 1200))) // 50 ms: less than a frame
	next(t, c, "ready")
	waitSpeakerState(t, e.bus.State, func(st *livestate.Mic) bool { return st != nil })
	e.stop()
	msgs, code := readUntilClose(t, c)
	if code != websocket.CloseGoingAway || lastError(msgs).Code != "shutting_down" {
		t.Fatalf("close %d %+v", code, msgs)
	}
	if err := <-e.done; err != nil {
		t.Fatal(err)
	}
	e.done <- nil // for the cleanup
	waitSpeakerState(t, e.bus.State, func(st *livestate.Mic) bool { return st == nil })
	// The half frame held back went out.
	e.awaitFrame(sub, 2400, "the held-back last frame")
	// New speakers are refused.
	_, resp, err := e.dial(e.http, e.room.SpeakerKey)
	if err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after shutdown: %v", err)
	}
	if resp != nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
