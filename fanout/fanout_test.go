package fanout

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/access"
	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/bus"
	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/internal/wire"
)

// env is a fan-out node on a real embedded NATS, served by httptest.
type env struct {
	t      *testing.T
	bus    *bus.Bus
	pub    *nats.Conn // a separate connection, as ingest/translate would be
	rooms  *room.Store
	srv    *Server
	http   *httptest.Server
	cancel context.CancelFunc
	runErr chan error
	once   sync.Once
}

func newEnv(t *testing.T, tweak func(*Options)) *env {
	t.Helper()
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Options{DataDir: t.TempDir(), Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	pub, err := b.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	e := &env{t: t, bus: b, pub: pub, rooms: room.NewStore(b.Rooms)}
	o := Options{NC: b.Conn, Rooms: e.rooms, State: b.State, Node: "node1", Log: quietLog()}
	if tweak != nil {
		tweak(&o)
	}
	e.srv, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	e.srv.Mount(r)
	e.http = httptest.NewServer(r)
	rctx, cancel := context.WithCancel(ctx)
	e.cancel = cancel
	e.runErr = make(chan error, 1)
	go func() { e.runErr <- e.srv.Run(rctx) }()
	t.Cleanup(func() {
		e.stop()
		e.http.Close()
	})
	e.createRoom(&room.Room{ID: "keynote", SourceLanguage: "en",
		Languages: []room.Language{{Code: "es"}, {Code: "nl"}}})
	// Start from a settled node: Run's room watch has seen the room.
	waitFor(t, "the room watch to deliver the room", func() bool {
		e.srv.hub.mu.Lock()
		defer e.srv.hub.mu.Unlock()
		return e.srv.hub.rooms["keynote"] != nil
	})
	return e
}

// stop ends Run and waits for it.
func (e *env) stop() {
	e.once.Do(func() {
		e.cancel()
		select {
		case <-e.runErr:
		case <-time.After(30 * time.Second):
			e.t.Error("Run did not return after cancel")
		}
	})
}

// channelListeners is the channel's current listener list.
func (h *hub) channelListeners(roomID, lang string) []*listener {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.channels[chanKey{roomID, lang}]; c != nil {
		return *c.listeners.Load()
	}
	return nil
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (e *env) createRoom(r *room.Room) {
	e.t.Helper()
	if err := r.Normalize(); err != nil {
		e.t.Fatal(err)
	}
	r.SpeakerKey = room.NewSpeakerKey()
	if err := e.rooms.Create(context.Background(), r); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(e.http.URL, "http") + path
}

// get fetches path, a response that ends (a refusal), from the fanout's
// HTTP server: the response, its body read and closed, and the body.
func (e *env) get(path string) (*http.Response, string) {
	e.t.Helper()
	resp, err := http.Get(e.http.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// stream opens path on the fanout's HTTP server, an audio stream of
// contentType, and fails the test unless it is one. The stream is closed
// when the test ends.
func (e *env) stream(path, contentType string) io.Reader {
	e.t.Helper()
	resp, err := http.Get(e.http.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != contentType {
		e.t.Fatalf("%s: %d %q, want 200 %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), contentType)
	}
	return resp.Body
}

// client is a listener WebSocket with its messages sorted by kind.
type client struct {
	conn  *websocket.Conn
	hello wire.Hello
	audio chan []byte
	text  chan map[string]any
	done  chan struct{}
	err   error // why reading stopped; read after done
}

// dial connects a listener and waits for its hello, which the server sends
// once the channel's subscriptions are live.
func (e *env) dial(roomID, lang string) *client {
	e.t.Helper()
	return e.dialWith(websocket.DefaultDialer, roomID, lang, true)
}

func (e *env) dialWith(d *websocket.Dialer, roomID, lang string, read bool) *client {
	e.t.Helper()
	conn, resp, err := d.Dial(e.wsURL("/api/v1/rooms/"+roomID+"/listen?lang="+lang), nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		e.t.Fatalf("dial %s/%s: %v (HTTP %d)", roomID, lang, err, status)
	}
	c := &client{conn: conn, audio: make(chan []byte, 100000), text: make(chan map[string]any, 1000), done: make(chan struct{})}
	e.t.Cleanup(func() { conn.Close() })
	typ, b, err := conn.ReadMessage()
	if err != nil || typ != websocket.TextMessage {
		e.t.Fatalf("first message: type %d, err %v", typ, err)
	}
	if err := json.Unmarshal(b, &c.hello); err != nil || c.hello.Type != "hello" {
		e.t.Fatalf("first message is not hello: %s", b)
	}
	if read {
		go c.readLoop()
	}
	return c
}

// dialRaw connects a listener to path offering subprotocols, expecting
// nothing of the server after the upgrade: the test reads what comes.
func (e *env) dialRaw(t *testing.T, path string, subprotocols []string) *client {
	t.Helper()
	d := websocket.Dialer{Subprotocols: subprotocols}
	conn, resp, err := d.Dial(e.wsURL(path), nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", path, err, status)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{conn: conn, audio: make(chan []byte, 1000), text: make(chan map[string]any, 1000), done: make(chan struct{})}
	go c.readLoop()
	return c
}

// sawHello reports whether a hello came (read it after done).
// awaitHello waits for the hello of a client dialed with dialRaw.
func (c *client) awaitHello(t *testing.T) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-c.text:
			if m["type"] == "hello" {
				return
			}
		case <-c.done:
			t.Fatalf("closed before its hello: %v", c.err)
		case <-timeout:
			t.Fatal("no hello")
		}
	}
}

func (c *client) sawHello() bool {
	for {
		select {
		case m := <-c.text:
			if m["type"] == "hello" {
				return true
			}
		default:
			return false
		}
	}
}

func (c *client) readLoop() {
	defer close(c.done)
	for {
		typ, b, err := c.conn.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		if typ == websocket.BinaryMessage {
			c.audio <- b
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			c.err = err
			return
		}
		c.text <- m
	}
}

// closeCode waits for the connection to end and returns its close code.
func (c *client) closeCode(t *testing.T) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		t.Fatal("connection not closed")
	}
	var ce *websocket.CloseError
	if errors.As(c.err, &ce) {
		return ce.Code
	}
	t.Fatalf("connection ended without a close frame: %v", c.err)
	return 0
}

// nextAudio returns the next audio frame.
func (c *client) nextAudio(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-c.audio:
		return b
	case <-c.done:
		t.Fatalf("connection ended: %v", c.err)
	case <-time.After(10 * time.Second):
		t.Fatal("no audio frame")
	}
	return nil
}

// nextText returns the next text message of the given type, skipping others.
func (c *client) nextText(t *testing.T, typ string) map[string]any {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-c.text:
			if m["type"] == typ {
				return m
			}
		case <-c.done:
			t.Fatalf("connection ended waiting for %s: %v", typ, c.err)
		case <-deadline:
			t.Fatalf("no %s message", typ)
		}
	}
}

// frameFor makes a PCM frame of n bytes whose every sample is seq, so a
// listener can tell which frames it heard although the program re-cuts
// them into its own ticks.
func frameFor(seq uint64, n int) []byte {
	s := make([]int16, n/2)
	for i := range s {
		s[i] = int16(seq)
	}
	return audio.Bytes(s)
}

// seqOf is the frame a program tick starts with (0: silence).
func seqOf(b []byte) uint64 {
	for _, v := range audio.Samples(b) {
		if v != 0 {
			return uint64(v)
		}
	}
	return 0
}

// publishAudio publishes frame seq of n bytes: on a mic subject as that
// mic's speech in English, else as a channel's interpretation.
func (e *env) publishAudio(subj string, seq uint64, n int) {
	e.t.Helper()
	f := audio.Frame{PCM: frameFor(seq, n), Captured: time.Now(), Lang: "en", Speech: true, Voice: "ai"}
	if err := e.pub.PublishMsg(subject.FrameMsg(subj, f, seq)); err != nil {
		e.t.Fatal(err)
	}
}

// heard reads c's audio until it has heard the frames want (by their
// sample values, silence aside), and reports what it heard instead if it
// does not, in order.
func (c *client) heard(t *testing.T, want ...uint64) {
	t.Helper()
	var got []uint64
	deadline := time.After(15 * time.Second)
	for len(got) < len(want) {
		select {
		case b := <-c.audio:
			for _, v := range audio.Samples(b) {
				if v != 0 && (len(got) == 0 || got[len(got)-1] != uint64(v)) {
					got = append(got, uint64(v))
				}
			}
		case <-c.done:
			t.Fatalf("connection ended after hearing %v: %v", got, c.err)
		case <-deadline:
			t.Fatalf("heard %v, want %v", got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("heard %v, want %v", got, want)
	}
}

// waitFor polls cond until it holds; only for conditions with no event to
// wait on (goroutine counts, KV contents).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestChannelListenersGetEveryFrameInOrder(t *testing.T) {
	e := newEnv(t, nil)
	es := []*client{e.dial("keynote", "es"), e.dial("keynote", "es"), e.dial("keynote", "es")}
	nl := e.dial("keynote", "nl")
	src := e.dial("keynote", "en")
	floor := e.dial("keynote", "floor")
	if es[0].hello.Lang != "es" || es[0].hello.Floor || es[0].hello.SampleRate != 24000 || es[0].hello.Room != "keynote" || !es[0].hello.Passthrough {
		t.Errorf("hello = %+v", es[0].hello)
	}
	if !src.hello.Floor || !floor.hello.Floor || floor.hello.Lang != "floor" {
		t.Errorf("source hello = %+v, floor hello = %+v", src.hello, floor.hello)
	}

	const n = 100 // a burst of 2 s: nothing may be dropped
	var want []uint64
	for seq := uint64(1); seq <= n; seq++ {
		e.publishAudio(subject.Out("keynote", "es"), seq, 960)
		want = append(want, seq)
	}
	e.publishAudio(subject.Out("keynote", "nl"), 901, 960)
	e.publishAudio(subject.Mic("keynote", "main"), 701, 4800)

	for _, c := range es {
		c.heard(t, want...)
	}
	// The nl listener hears nl's own: none of es's reached it.
	nl.heard(t, 901)
	// The source language's channel and the floor hear the mic.
	src.heard(t, 701)
	floor.heard(t, 701)
	for _, c := range append(es, nl, src, floor) {
		select {
		case b := <-c.audio:
			t.Errorf("listener %s got an extra frame %d", c.hello.Lang, seqOf(b))
		default:
		}
	}
}

// Frames of every size take the right WebSocket length encoding (7, 16
// and 64 bits).
func TestWSHeader(t *testing.T) {
	for _, c := range []struct {
		n    int
		want []byte
	}{
		{10, []byte{0x82, 10}},
		{65534, []byte{0x82, 126, 0xff, 0xfe}},
		{70000, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70}},
	} {
		if got := wsHeader(opBinary, c.n); !bytes.Equal(got, c.want) {
			t.Errorf("header of %d bytes = %x, want %x", c.n, got, c.want)
		}
	}
}

func TestCaptionsAsJSON(t *testing.T) {
	e := newEnv(t, nil)
	es := e.dial("keynote", "es")
	nl := e.dial("keynote", "nl")
	cm := wire.Caption{Type: "caption", Lang: "es", Text: "Hola a todos", Final: true, Segment: 7}
	b, _ := json.Marshal(cm)
	if err := e.pub.Publish(subject.Caption("keynote", "es"), b); err != nil {
		t.Fatal(err)
	}
	// Garbage on the subject never reaches listeners.
	_ = e.pub.Publish(subject.Caption("keynote", "es"), []byte("{not json"))
	b2, _ := json.Marshal(wire.Caption{Type: "caption", Lang: "es", Text: "Bienvenidos", Segment: 8})
	_ = e.pub.Publish(subject.Caption("keynote", "es"), b2)
	bnl, _ := json.Marshal(wire.Caption{Type: "caption", Lang: "nl", Text: "Hallo", Segment: 1})
	_ = e.pub.Publish(subject.Caption("keynote", "nl"), bnl)

	// Lines are numbered for the channel's listeners (its interpretation
	// and its original share one sequence); each line keeps its number
	// while it grows.
	m := es.nextText(t, "caption")
	if m["text"] != "Hola a todos" || m["lang"] != "es" || m["final"] != true || m["segment"] != 1.0 {
		t.Errorf("caption = %v", m)
	}
	m = es.nextText(t, "caption")
	if m["text"] != "Bienvenidos" || m["final"] != false || m["segment"] != 2.0 {
		t.Errorf("second caption = %v", m)
	}
	b3, _ := json.Marshal(wire.Caption{Type: "caption", Lang: "es", Text: "Bienvenidos a todos", Final: true, Segment: 8})
	_ = e.pub.Publish(subject.Caption("keynote", "es"), b3)
	if m := es.nextText(t, "caption"); m["text"] != "Bienvenidos a todos" || m["segment"] != 2.0 {
		t.Errorf("the line grown = %v, want it on segment 2 still", m)
	}
	if m := nl.nextText(t, "caption"); m["text"] != "Hallo" {
		t.Errorf("nl caption = %v, want only nl's", m)
	}
}

func TestFloorCaptionsStickToOneTranslator(t *testing.T) {
	e := newEnv(t, nil)
	floor := e.dial("keynote", "en")
	pubCap := func(from string, seg uint64, text string) {
		b, _ := json.Marshal(wire.Caption{Type: "caption", Lang: "en", Text: text, Segment: seg, Source: true})
		if err := e.pub.Publish(subject.SourceCaption("keynote", from), b); err != nil {
			t.Fatal(err)
		}
	}
	pubCap("es", 3, "hello every")
	pubCap("nl", 3, "hello everyone (nl's hearing)")
	pubCap("es", 3, "hello everyone")
	m := floor.nextText(t, "caption")
	if m["text"] != "hello every" || m["lang"] != "en" || m["source"] != true {
		t.Errorf("first floor caption = %v", m)
	}
	m = floor.nextText(t, "caption")
	if m["text"] != "hello everyone" {
		t.Errorf("second floor caption = %v; want es's again (nl's must be ignored while es speaks)", m)
	}
	if m["segment"] != 1.0 {
		t.Errorf("floor segment = %v, want the floor's own numbering (1)", m["segment"])
	}
}

func TestFloorSegmentSwitchesAfterSilence(t *testing.T) {
	c := &captionLines{}
	t0 := time.Now()
	if seg, ok := c.original("es", 10, t0); !ok || seg != 1 {
		t.Fatalf("first = %d %v", seg, ok)
	}
	if _, ok := c.original("nl", 4, t0.Add(time.Second)); ok {
		t.Fatal("nl taken while es is live")
	}
	if seg, ok := c.original("es", 10, t0.Add(2*time.Second)); !ok || seg != 1 {
		t.Fatalf("es update = %d %v", seg, ok)
	}
	seg, ok := c.original("nl", 4, t0.Add(2*time.Second+captionSwitchAfter))
	if !ok || seg != 2 {
		t.Fatalf("after es is silent, nl = %d %v; want switch with a fresh segment 2", seg, ok)
	}
	if _, ok := c.original("es", 11, t0.Add(3*time.Second+captionSwitchAfter)); ok {
		t.Fatal("es taken back while nl is live")
	}
}

func TestStateAtConnectAndOnChange(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	put := func(key string, v any) {
		b, _ := json.Marshal(v)
		if _, err := e.bus.State.Put(ctx, key, b); err != nil {
			t.Fatal(err)
		}
	}
	put(livestate.ChannelKey("keynote", "es"), livestate.Channel{State: livestate.StateStarting, Since: time.Now()})
	es := e.dial("keynote", "es")
	m := es.nextText(t, "state")
	if m["state"] != "starting" || m["speaker"] != false || m["lang"] != "es" {
		t.Errorf("initial state = %v", m)
	}
	// A refresh with the same visible state says nothing; a change does.
	put(livestate.ChannelKey("keynote", "es"), livestate.Channel{State: livestate.StateStarting, SessionSeconds: 3, Since: time.Now()})
	put(livestate.MicKey("keynote", "main"), livestate.Mic{Node: "n", Since: time.Now(), SampleRate: 48000, Language: "en"})
	m = es.nextText(t, "state")
	if m["state"] != "starting" || m["speaker"] != true {
		t.Errorf("after speaker joined = %v", m)
	}
	put(livestate.ChannelKey("keynote", "es"), livestate.Channel{State: livestate.StateError, Error: "quota exceeded", Since: time.Now()})
	m = es.nextText(t, "state")
	if m["state"] != "error" || m["message"] != "quota exceeded" {
		t.Errorf("after error = %v", m)
	}
	// A second listener of the live channel gets the current state at once.
	es2 := e.dial("keynote", "es")
	if m := es2.nextText(t, "state"); m["state"] != "error" || m["speaker"] != true {
		t.Errorf("second listener's state = %v", m)
	}
	// The floor is active while the speaker is connected.
	floor := e.dial("keynote", "en")
	if m := floor.nextText(t, "state"); m["state"] != "active" || m["speaker"] != true {
		t.Errorf("floor state = %v", m)
	}
	if err := e.bus.State.Delete(ctx, livestate.MicKey("keynote", "main")); err != nil {
		t.Fatal(err)
	}
	if m := floor.nextText(t, "state"); m["state"] != "idle" || m["speaker"] != false {
		t.Errorf("floor state after speaker left = %v", m)
	}
}

func TestDelayMessages(t *testing.T) {
	e := newEnv(t, nil)
	es := e.dial("keynote", "es")
	captured := time.Now().Add(-1500 * time.Millisecond)
	// Frames keep coming for over a second, so a delay message is due.
	deadline := time.Now().Add(10 * time.Second)
	seq := uint64(0)
	for {
		seq++
		if err := e.pub.PublishMsg(subject.AudioMsg(subject.Out("keynote", "es"), frameFor(seq, 960), seq, captured)); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-es.text:
			if m["type"] != "delay" {
				continue
			}
			ms, _ := m["ms"].(float64)
			if ms < 1500 || ms > 10000 {
				t.Errorf("delay = %v ms, want about 1500 + age of the test", ms)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no delay message")
		}
	}
}

// slowDialer connects with a tiny receive buffer so a client that does not
// read stalls the server's writes quickly.
func slowDialer() *websocket.Dialer {
	return &websocket.Dialer{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			_ = c.(*net.TCPConn).SetReadBuffer(32 << 10)
			return c, nil
		},
		HandshakeTimeout: 10 * time.Second,
	}
}

func TestSlowListenerLosesOldestThenIsClosed(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.QueueFrames = 50
		// Long enough that five more frames at a live pace (phase 1) do
		// not get it closed before it reads again, on a loaded machine.
		o.SlowAfter = 2 * time.Second
		o.SendBuffer = 4096
	})
	fast := e.dial("keynote", "es")
	slow := e.dialWith(slowDialer(), "keynote", "es", false)
	var published uint64
	publish := func() {
		published++
		e.publishAudio(subject.Out("keynote", "es"), published, 4800)
		time.Sleep(100 * time.Millisecond) // a live source's pace: the program plays at real time
	}
	slowState := func() (dropped uint64, closing bool) {
		for _, l := range e.srv.hub.channelListeners("keynote", "es") {
			l.mu.Lock()
			d, c := l.dropped, l.closing && l.code == wire.CloseTooSlow
			l.mu.Unlock()
			if d > 0 || c {
				return d, c
			}
		}
		return 0, false
	}
	deadline := time.Now().Add(60 * time.Second)

	// 1. The slow listener stops reading: once its queue is full, its
	// oldest frames go.
	for d, _ := slowState(); d == 0; d, _ = slowState() {
		if time.Now().After(deadline) {
			t.Fatal("slow listener never dropped a frame")
		}
		publish()
	}
	for range 5 {
		publish()
	}
	// It reads again: what was in the kernel buffers, a gap, then the
	// newest frames up to the last one published.
	var got []uint64
	for len(got) == 0 || got[len(got)-1] != published {
		typ, b, err := slow.conn.ReadMessage()
		if err != nil {
			t.Fatalf("slow listener, catching up (heard %v): %v", got, err)
		}
		if typ != websocket.BinaryMessage {
			continue
		}
		for _, v := range audio.Samples(b) {
			if v != 0 && (len(got) == 0 || got[len(got)-1] != uint64(v)) {
				got = append(got, uint64(v))
			}
		}
	}
	gap := false
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("slow listener: frames out of order: %d after %d", got[i], got[i-1])
		}
		gap = gap || got[i] != got[i-1]+1
	}
	if got[0] != 1 || !gap || uint64(len(got)) >= published {
		t.Errorf("slow listener got %d frames %v...; want from 1, with the oldest queued ones missing", len(got), got[:min(len(got), 5)])
	}

	t.Logf("phase 1: %d published, slow listener got %d", published, len(got))
	// 2. It stops reading again and keeps falling behind: closed with 4408.
	for _, closing := slowState(); !closing; _, closing = slowState() {
		if time.Now().After(deadline) {
			t.Fatal("slow listener never closed")
		}
		publish()
	}
	go slow.readLoop()
	if code := slow.closeCode(t); code != wire.CloseTooSlow {
		t.Fatalf("slow listener closed with %d, want 4408", code)
	}

	// The fast listener on the same channel got every frame, in order.
	var all []uint64
	for seq := uint64(1); seq <= published; seq++ {
		all = append(all, seq)
	}
	fast.heard(t, all...)
}

func TestOneSubscriptionPerChannel(t *testing.T) {
	e := newEnv(t, nil)
	base := e.bus.Conn.NumSubscriptions()
	first := e.dial("keynote", "es")
	// The channel's state watch subscribes in the background; its first
	// state message says it is in place, so the count below is settled.
	first.nextText(t, "state")
	one := e.bus.Conn.NumSubscriptions()
	if e.srv.hub.subscriptions() != 5 {
		t.Errorf("hub holds %d subscriptions for one channel, want 5 (mics, interpretation, captions, source captions, booth)", e.srv.hub.subscriptions())
	}
	var cs []*client
	for range 30 {
		cs = append(cs, e.dial("keynote", "es"))
	}
	if got := e.bus.Conn.NumSubscriptions(); got != one {
		t.Errorf("31 listeners hold %d NATS subscriptions, 1 listener %d: want the same", got, one)
	}
	if e.srv.hub.subscriptions() != 5 {
		t.Errorf("hub holds %d subscriptions, want 5", e.srv.hub.subscriptions())
	}
	// Every one of them still gets the audio.
	e.publishAudio(subject.Out("keynote", "es"), 1, 960)
	for _, c := range append(cs, first) {
		if seqOf(c.nextAudio(t)) != 1 {
			t.Fatal("wrong frame")
		}
	}
	for _, c := range append(cs, first) {
		c.conn.Close()
	}
	waitFor(t, "channel unsubscribed", func() bool {
		return e.srv.hub.subscriptions() == 0 && e.bus.Conn.NumSubscriptions() <= base
	})
}

func listenerCount(t *testing.T, kv jetstream.KeyValue, key string) (int, bool) {
	t.Helper()
	en, err := kv.Get(context.Background(), key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var lc livestate.Listeners
	if err := json.Unmarshal(en.Value(), &lc); err != nil {
		t.Fatal(err)
	}
	return lc.Count, true
}

func TestPresence(t *testing.T) {
	e := newEnv(t, nil)
	key := livestate.ListenersKey("keynote", "es", "node1")
	a, b, c := e.dial("keynote", "es"), e.dial("keynote", "es"), e.dial("keynote", "es")
	waitFor(t, "presence count 3", func() bool { n, ok := listenerCount(t, e.bus.State, key); return ok && n == 3 })
	a.conn.Close()
	waitFor(t, "presence count 2", func() bool { n, ok := listenerCount(t, e.bus.State, key); return ok && n == 2 })
	b.conn.Close()
	c.conn.Close()
	waitFor(t, "presence key deleted", func() bool { _, ok := listenerCount(t, e.bus.State, key); return !ok })
}

func TestShutdownClosesListenersAndPresence(t *testing.T) {
	e := newEnv(t, nil)
	key := livestate.ListenersKey("keynote", "nl", "node1")
	nl := e.dial("keynote", "nl")
	go func() {
		// A WAV listener too: its stream must end.
		resp, err := http.Get(e.http.URL + "/api/v1/rooms/keynote/audio/es.wav")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	waitFor(t, "presence written", func() bool { _, ok := listenerCount(t, e.bus.State, key); return ok })
	waitFor(t, "WAV listener joined", func() bool { return e.srv.hub.listenerCount("keynote", "es") == 1 })
	e.stop()
	if code := nl.closeCode(t); code != wire.CloseShutdown {
		t.Errorf("close code %d, want 1001", code)
	}
	if _, ok := listenerCount(t, e.bus.State, key); ok {
		t.Error("presence key left behind after shutdown")
	}
	if n := e.srv.hub.listenerCount("keynote", "es"); n != 0 {
		t.Errorf("WAV listener still joined after shutdown (%d)", n)
	}
	// New listeners are refused.
	_, resp, err := websocket.DefaultDialer.Dial(e.wsURL("/api/v1/rooms/keynote/listen?lang=es"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after shutdown: %v, %v; want 503", err, resp)
	}
}

func TestRoomDeletedCloses4404(t *testing.T) {
	e := newEnv(t, nil)
	es := e.dial("keynote", "es")
	floor := e.dial("keynote", "en")
	if err := e.rooms.Delete(context.Background(), "keynote"); err != nil {
		t.Fatal(err)
	}
	if code := es.closeCode(t); code != wire.CloseRoomGone {
		t.Errorf("es closed with %d, want 4404", code)
	}
	if code := floor.closeCode(t); code != wire.CloseRoomGone {
		t.Errorf("floor closed with %d, want 4404", code)
	}
}

func TestLanguageRemovedCloses4404(t *testing.T) {
	e := newEnv(t, nil)
	es := e.dial("keynote", "es")
	nl := e.dial("keynote", "nl")
	ctx := context.Background()
	r, rev, err := e.rooms.Get(ctx, "keynote")
	if err != nil {
		t.Fatal(err)
	}
	r.Languages = []room.Language{{Code: "nl"}}
	if err := e.rooms.Update(ctx, r, rev); err != nil {
		t.Fatal(err)
	}
	if code := es.closeCode(t); code != wire.CloseRoomGone {
		t.Errorf("es closed with %d, want 4404", code)
	}
	// nl stays: it still gets audio.
	e.publishAudio(subject.Out("keynote", "nl"), 5, 960)
	if seqOf(nl.nextAudio(t)) != 5 {
		t.Error("nl listener lost its audio")
	}
}

// A new passcode locks out the listeners who came in without it (4403);
// those who have it stay, and so does everyone when the passcode is removed.
func TestPasscodeChangeClosesThoseWithoutIt(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.createRoom(&room.Room{ID: "private", SourceLanguage: "en", Languages: []room.Language{{Code: "de"}}, Passcode: "s3cret"})
	setPasscode := func(p string) {
		t.Helper()
		r, rev, err := e.rooms.Get(ctx, "private")
		if err != nil {
			t.Fatal(err)
		}
		r.Passcode = p
		if err := e.rooms.Update(ctx, r, rev); err != nil {
			t.Fatal(err)
		}
	}
	de := e.dial("private", "de&passcode=s3cret")
	floor := e.dial("private", "en&passcode=s3cret")
	other := e.dial("keynote", "es")

	setPasscode("n3w")
	for name, c := range map[string]*client{"de": de, "floor": floor} {
		if code := c.closeCode(t); code != wire.ClosePasscodeChanged {
			t.Errorf("%s listener with the old passcode closed with %d, want %d", name, code, wire.ClosePasscodeChanged)
		}
	}
	// The new passcode gets in at once, even if this node's room watch
	// has not seen the change yet.
	fresh := e.dial("private", "de&passcode=n3w")
	setPasscode("")
	open := e.dial("private", "de")
	e.publishAudio(subject.Out("private", "de"), 1, 960)
	e.publishAudio(subject.Out("keynote", "es"), 1, 960)
	for name, c := range map[string]*client{"with the new passcode": fresh, "after the passcode was removed": open, "in another room": other} {
		if seqOf(c.nextAudio(t)) != 1 {
			t.Errorf("listener %s: wrong frame", name)
		}
	}
}

func TestHandshakeErrors(t *testing.T) {
	e := newEnv(t, nil)
	e.createRoom(&room.Room{ID: "private", SourceLanguage: "en", Languages: []room.Language{{Code: "de"}}, Passcode: "s3cret"})
	cases := []struct {
		path   string
		status int
		want   string
	}{
		{"/api/v1/rooms/nope/listen?lang=es", 404, "not_found"},
		{"/api/v1/rooms/keynote/listen?lang=fr", 400, "floor, en (source), es, nl"},
		{"/api/v1/rooms/keynote/listen", 400, "floor, en (source), es, nl"},
		// A plain GET says whether the room and language exist, never
		// whether a passcode is right: the same 426 for none, a wrong one
		// and the right one.
		{"/api/v1/rooms/private/listen?lang=de", 426, "upgrade_required"},
		{"/api/v1/rooms/private/listen?lang=de&passcode=wrong", 426, "upgrade_required"},
		{"/api/v1/rooms/private/listen?lang=de&passcode=s3cret", 426, "upgrade_required"},
		{"/api/v1/rooms/nope/audio/es.wav", 404, "not_found"},
		{"/api/v1/rooms/keynote/audio/fr.wav", 400, "floor, en (source), es, nl"},
		{"/api/v1/rooms/private/audio/de.wav", 403, "passcode"},
		{"/api/v1/rooms/keynote/audio/es.mp3", 404, "not_found"},
		{"/api/v1/rooms/keynote/listen?lang=es", 426, "upgrade_required"}, // a plain GET, no upgrade
	}
	for _, tc := range cases {
		resp, body := e.get(tc.path)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s; want %d containing %q", tc.path, resp.StatusCode, body, tc.status, tc.want)
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: content type %q", tc.path, resp.Header.Get("Content-Type"))
		}
	}
	// The right passcode gets in; so does a differently cased language code.
	conn, _, err := websocket.DefaultDialer.Dial(e.wsURL("/api/v1/rooms/private/listen?lang=DE&passcode=s3cret"), nil)
	if err != nil {
		t.Fatalf("with passcode: %v", err)
	}
	conn.Close()
	// A wrong passcode is told after the upgrade: closed with 4403 before
	// any hello.
	for _, q := range []string{"", "&passcode=wrong"} {
		c := e.dialRaw(t, "/api/v1/rooms/private/listen?lang=de"+q, nil)
		if code := c.closeCode(t); code != wire.ClosePasscodeChanged {
			t.Errorf("passcode %q: close %d, want %d", q, code, wire.ClosePasscodeChanged)
		}
		if c.sawHello() {
			t.Errorf("passcode %q: a hello was sent", q)
		}
	}
}

// The pages present the passcode in the WebSocket subprotocol, where no
// load balancer logs it: "babelcast" and "babelcast.passcode.<base64url>".
// The server selects "babelcast".
func TestPasscodeInSubprotocol(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.createRoom(&room.Room{ID: "private", SourceLanguage: "en", Languages: []room.Language{{Code: "de"}}, Passcode: "sésame"})
	d := websocket.Dialer{Subprotocols: []string{access.Protocol, access.CredentialProtocol(access.KindPasscode, "sésame")}}
	conn, resp, err := d.Dial(e.wsURL("/api/v1/rooms/private/listen?lang=de"), nil)
	if err != nil {
		t.Fatalf("passcode in the subprotocol: %v", err)
	}
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != access.Protocol {
		t.Errorf("selected subprotocol %q, want %q", p, access.Protocol)
	}
	_, msg, err := conn.ReadMessage()
	if err != nil || !strings.Contains(string(msg), `"hello"`) {
		t.Errorf("first message %s, %v", msg, err)
	}
	conn.Close()
	wrong := e.dialRaw(t, "/api/v1/rooms/private/listen?lang=de", []string{access.Protocol, access.CredentialProtocol(access.KindPasscode, "sesame")})
	if code := wrong.closeCode(t); code != wire.ClosePasscodeChanged {
		t.Errorf("wrong passcode in the subprotocol: close %d", code)
	}
}

// The room's speaker key stands for its passcode (a conversation's phones
// and the speaker page hear the room with the key they hold), until the
// key is rotated; a wrong key is a wrong passcode.
func TestSpeakerKeyStandsForThePasscode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	r := &room.Room{ID: "private", SourceLanguage: "en", Languages: []room.Language{{Code: "de"}}, Passcode: "s3cret"}
	e.createRoom(r)
	withKey := func(key string) []string {
		return []string{access.Protocol, access.CredentialProtocol(access.KindKey, key)}
	}
	update := func(change func(*room.Room)) {
		t.Helper()
		cur, rev, err := e.rooms.Get(ctx, "private")
		if err != nil {
			t.Fatal(err)
		}
		change(cur)
		if err := e.rooms.Update(ctx, cur, rev); err != nil {
			t.Fatal(err)
		}
	}

	phone := e.dialRaw(t, "/api/v1/rooms/private/listen?lang=de", withKey(r.SpeakerKey))
	phone.awaitHello(t) // it has joined the channel
	wrong := e.dialRaw(t, "/api/v1/rooms/private/listen?lang=de", withKey("spk_not-this-one"))
	if code := wrong.closeCode(t); code != wire.ClosePasscodeChanged || wrong.sawHello() {
		t.Errorf("a wrong key: close %d (hello %v), want %d before any hello", code, wrong.sawHello(), wire.ClosePasscodeChanged)
	}
	// A new passcode does not lock out the key's holder.
	update(func(r *room.Room) { r.Passcode = "n3w" })
	fresh := e.dial("private", "de&passcode=n3w") // the change is seen: a new listener gets in with it
	e.publishAudio(subject.Out("private", "de"), 1, 960)
	for name, c := range map[string]*client{"with the key": phone, "with the new passcode": fresh} {
		if seqOf(c.nextAudio(t)) != 1 {
			t.Errorf("listener %s: wrong frame", name)
		}
	}
	// A new key does.
	update(func(r *room.Room) { r.SpeakerKey = room.NewSpeakerKey() })
	if code := phone.closeCode(t); code != wire.ClosePasscodeChanged {
		t.Errorf("the old key's listener after the key's rotation: close %d, want %d", code, wire.ClosePasscodeChanged)
	}
}

// A client gets a budget of wrong passcodes for a room, by WebSocket and
// stream alike. Past it, its requests for that room are refused with 429
// before the passcode is looked at (the right one too: a passcode can be
// guessed, so telling it apart would undo the limit); other rooms are not
// affected.
func TestPasscodeGuessesAreLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.createRoom(&room.Room{ID: "private", SourceLanguage: "en", Languages: []room.Language{{Code: "de"}}, Passcode: "s3cret"})
	e.createRoom(&room.Room{ID: "other", SourceLanguage: "en", Passcode: "0th3r"})
	for i := range access.PasscodeBurst {
		if i%2 == 0 {
			c := e.dialRaw(t, "/api/v1/rooms/private/listen?lang=de&passcode=guess"+strconv.Itoa(i), nil)
			if code := c.closeCode(t); code != wire.ClosePasscodeChanged {
				t.Fatalf("guess %d: close %d", i+1, code)
			}
			continue
		}
		if resp, _ := e.get("/api/v1/rooms/private/audio/de.wav?passcode=guess" + strconv.Itoa(i)); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("guess %d: status %d", i+1, resp.StatusCode)
		}
	}
	for _, path := range []string{
		"/api/v1/rooms/private/listen?lang=de&passcode=s3cret", // the right one, by WebSocket
		"/api/v1/rooms/private/listen?lang=de&passcode=guess",
		"/api/v1/rooms/private/audio/de.wav?passcode=s3cret", // the right one, streamed
	} {
		_, resp, err := websocket.DefaultDialer.Dial(e.wsURL(path), nil)
		if strings.Contains(path, ".wav") {
			resp, err = http.Get(e.http.URL + path)
			if err == nil {
				resp.Body.Close()
			}
		} else if err == nil {
			t.Fatalf("%s: connected while blocked", path)
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s while blocked: %v %v, want 429 with Retry-After", path, resp, err)
		}
	}
	// A plain GET (how the pages ask why a handshake failed) says so too.
	resp, body := e.get("/api/v1/rooms/private/listen?lang=de")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "too_many_attempts") {
		t.Errorf("plain GET while blocked: %d %s", resp.StatusCode, body)
	}
	// Another room, and a room without a passcode, are not affected.
	e.dial("other", "en&passcode=0th3r").conn.Close()
	e.dial("keynote", "es").conn.Close()
}

// Listener connections are capped per client address (429) and per node
// (503), in the API's error shape; a slot is given back when its listener
// leaves.
func TestListenerCaps(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.MaxListenersPerAddress = 2; o.MaxListeners = 3 })
	refused := func(path string, status int, code string) {
		t.Helper()
		_, resp, err := websocket.DefaultDialer.Dial(e.wsURL(path), nil)
		if err == nil || resp == nil {
			t.Fatalf("%s: connected past the cap (%v)", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != status || !strings.Contains(string(body), code) || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: %d %s, want %d %s with Retry-After", path, resp.StatusCode, body, status, code)
		}
	}
	a := e.dial("keynote", "es")
	e.dial("keynote", "nl")
	refused("/api/v1/rooms/keynote/listen?lang=es", http.StatusTooManyRequests, "too_many_listeners")
	// A stream counts too.
	if resp, _ := e.get("/api/v1/rooms/keynote/audio/es.wav"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a stream past the per-address cap: %d", resp.StatusCode)
	}
	a.conn.Close()
	waitFor(t, "the slot given back", func() bool {
		c, _, err := websocket.DefaultDialer.Dial(e.wsURL("/api/v1/rooms/keynote/listen?lang=es"), nil)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	// The node's cap, whoever asks.
	e2 := newEnv(t, func(o *Options) { o.MaxListenersPerAddress = 10; o.MaxListeners = 2 })
	e2.dial("keynote", "es")
	e2.dial("keynote", "nl")
	_, resp, err := websocket.DefaultDialer.Dial(e2.wsURL("/api/v1/rooms/keynote/listen?lang=es"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("past the node's cap: %v %v", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "server_full") {
		t.Errorf("body %s", body)
	}
}

func TestWAVStream(t *testing.T) {
	e := newEnv(t, nil)
	wav := e.stream("/api/v1/rooms/keynote/audio/es.wav", "audio/wav")
	hdr := make([]byte, 44)
	if _, err := io.ReadFull(wav, hdr); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" || string(hdr[12:16]) != "fmt " || string(hdr[36:40]) != "data" {
		t.Fatalf("header %q", hdr)
	}
	if le.Uint16(hdr[20:]) != 1 || le.Uint16(hdr[22:]) != 1 || le.Uint32(hdr[24:]) != 24000 || le.Uint16(hdr[34:]) != 16 {
		t.Errorf("format: pcm=%d ch=%d rate=%d bits=%d", le.Uint16(hdr[20:]), le.Uint16(hdr[22:]), le.Uint32(hdr[24:]), le.Uint16(hdr[34:]))
	}
	if le.Uint32(hdr[40:]) != 0xFFFFFFFF {
		t.Errorf("data size %#x, want 0xFFFFFFFF", le.Uint32(hdr[40:]))
	}
	// The header is flushed once subscribed: audio published now arrives.
	for seq := uint64(1); seq <= 20; seq++ {
		e.publishAudio(subject.Out("keynote", "es"), seq, 960)
	}
	_ = e.pub.Publish(subject.Caption("keynote", "es"), []byte(`{"type":"caption","text":"not in a WAV"}`))
	e.publishAudio(subject.Out("keynote", "es"), 21, 960)
	for seq := uint64(1); seq <= 21; seq++ {
		b := make([]byte, 960)
		if _, err := io.ReadFull(wav, b); err != nil {
			t.Fatal(err)
		}
		if string(b) != string(frameFor(seq, 960)) {
			t.Fatalf("frame %d: got seq %d", seq, seqOf(b))
		}
	}
}

func TestConnectStormLeavesNothingBehind(t *testing.T) {
	e := newEnv(t, nil)
	// Warm up: the first KV write and watch start lazily-created helpers.
	warm := e.dial("keynote", "es")
	warm.conn.Close()
	waitFor(t, "warm-up listener gone", func() bool { return e.srv.hub.subscriptions() == 0 })
	waitFor(t, "presence idle", func() bool {
		_, ok := listenerCount(t, e.bus.State, livestate.ListenersKey("keynote", "es", "node1"))
		return !ok
	})
	baseSubs := e.bus.Conn.NumSubscriptions()
	baseG := runtime.NumGoroutine()

	langs := []string{"es", "nl", "en"}
	const rounds, perRound = 10, 30
	for r := range rounds {
		var cs []*client
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range perRound {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lang := langs[(r+i)%len(langs)]
				conn, _, err := websocket.DefaultDialer.Dial(e.wsURL("/api/v1/rooms/keynote/listen?lang="+lang), nil)
				if err != nil {
					t.Error(err)
					return
				}
				if _, _, err := conn.ReadMessage(); err != nil { // hello
					t.Error(err)
				}
				mu.Lock()
				cs = append(cs, &client{conn: conn})
				mu.Unlock()
			}()
		}
		// Some leave abruptly mid-handshake too.
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", e.http.Listener.Addr().String())
				if err == nil {
					_, _ = c.Write([]byte("GET /api/v1/rooms/keynote/listen?lang=es HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"))
					c.Close()
				}
			}()
		}
		wg.Wait()
		for i, c := range cs {
			if i%2 == 0 {
				_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
			}
			c.conn.Close()
		}
	}
	waitFor(t, "every channel unsubscribed", func() bool {
		return e.srv.hub.subscriptions() == 0 && e.bus.Conn.NumSubscriptions() <= baseSubs
	})
	waitFor(t, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= baseG+2 })
	for _, lang := range langs {
		if n := e.srv.hub.listenerCount("keynote", lang); n != 0 {
			t.Errorf("%s: %d listeners left", lang, n)
		}
	}
	waitFor(t, "presence keys gone", func() bool {
		for _, lang := range langs {
			if _, ok := listenerCount(t, e.bus.State, livestate.ListenersKey("keynote", lang, "node1")); ok {
				return false
			}
		}
		return true
	})
}

func TestJoinAfterLanguageRemovedIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	// The watch has seen a newer room than the handshake's lookup will.
	r, rev, err := e.rooms.Get(context.Background(), "keynote")
	if err != nil {
		t.Fatal(err)
	}
	r.Languages = []room.Language{{Code: "nl"}}
	e.srv.hub.roomChanged(r, rev+1)
	if resp, _ := e.get("/api/v1/rooms/keynote/audio/es.wav"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("join of a removed language: %d, want 400", resp.StatusCode)
	}
	if n := e.srv.hub.listenerCount("keynote", "es"); n != 0 {
		t.Errorf("%d listeners joined a removed language", n)
	}
}

func TestWAVStreamOverHTTP2(t *testing.T) {
	e := newEnv(t, nil)
	ts := httptest.NewUnstartedServer(e.http.Config.Handler)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()
	resp, err := ts.Client().Get(ts.URL + "/api/v1/rooms/keynote/audio/es.wav")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "audio/wav" {
		t.Fatalf("%s %d %q", resp.Proto, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	hdr := make([]byte, 44)
	if _, err := io.ReadFull(resp.Body, hdr); err != nil || string(hdr[:4]) != "RIFF" {
		t.Fatalf("header %q %v", hdr, err)
	}
	for seq := uint64(1); seq <= 5; seq++ {
		e.publishAudio(subject.Out("keynote", "es"), seq, 960)
	}
	for seq := uint64(1); seq <= 5; seq++ {
		b := make([]byte, 960)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			t.Fatal(err)
		}
		if seqOf(b) != seq {
			t.Fatalf("frame %d: got seq %d", seq, seqOf(b))
		}
	}
}
