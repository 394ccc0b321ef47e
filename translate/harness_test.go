package translate

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/bus"
	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/internal/wire"
	"github.com/babelcast/babelcast/translate/engine"
)

// The harness of the translator's tests: one embedded NATS, workers on
// their own connections, and what a test needs to play the other roles.

const waitFor = 10 * time.Second

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// harness is one embedded NATS with the shared buckets, and what a test
// needs to play the other roles (api, ingest, fanout).
type harness struct {
	t     *testing.T
	bus   *bus.Bus
	rooms *room.Store
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	// A listener, so each worker has a TCP connection of its own to cut.
	b, err := bus.Open(context.Background(), bus.Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return &harness{t: t, bus: b, rooms: room.NewStore(b.Rooms)}
}

// conn is a NATS connection of its own, as another process would have.
type conn struct {
	nc                   *nats.Conn
	rooms                *room.Store
	state, leases, roomK jetstream.KeyValue
	tcp                  *tcpDialer
}

// tcpDialer dials NATS and keeps the connection, so a test can cut it.
type tcpDialer struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (d *tcpDialer) Dial(network, address string) (net.Conn, error) {
	c, err := net.Dial(network, address)
	if err == nil {
		d.mu.Lock()
		d.conns = append(d.conns, c)
		d.mu.Unlock()
	}
	return c, err
}

// cut closes the connection under the NATS client, as the death of its
// process does: no goodbye to the server, which drops the client's
// subscriptions, and (without reconnects) no way back.
func (d *tcpDialer) cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		_ = c.Close()
	}
}

func (h *harness) newConn() conn {
	h.t.Helper()
	d := &tcpDialer{}
	key, err := nats.NkeyOptionFromSeed(h.bus.ListenerKeyFile())
	if err != nil {
		h.t.Fatal(err)
	}
	nc, err := nats.Connect(h.bus.ClientURL(), key, nats.SetCustomDialer(d), nats.NoReconnect())
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx := context.Background()
	c := conn{nc: nc, tcp: d}
	for name, kv := range map[string]*jetstream.KeyValue{
		subject.BucketRooms: &c.roomK, livestate.Bucket: &c.state, subject.BucketLeases: &c.leases,
	} {
		if *kv, err = js.KeyValue(ctx, name); err != nil {
			h.t.Fatal(err)
		}
	}
	c.rooms = room.NewStore(c.roomK)
	return c
}

type worker struct {
	*Worker
	conn   conn
	cancel context.CancelFunc
	errc   chan error
}

// start runs a Worker on its own NATS connection until the test ends.
func (h *harness) start(eng engine.Engine, node string, tune func(*Options)) *worker {
	h.t.Helper()
	c := h.newConn()
	o := Options{
		NC: c.nc, Rooms: c.rooms, State: c.state, Leases: c.leases, Engine: eng,
		Node: node, Log: testLogger().With("node", node), Linger: -1,
	}
	if tune != nil {
		tune(&o)
	}
	w, err := New(o)
	if err != nil {
		h.t.Fatal(err)
	}
	w.tick = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	wk := &worker{Worker: w, conn: c, cancel: cancel, errc: make(chan error, 1)}
	go func() { wk.errc <- w.Run(ctx) }()
	h.t.Cleanup(func() { wk.stop(h.t) })
	return wk
}

// stop cancels Run and waits for it to return.
func (w *worker) stop(t *testing.T) {
	t.Helper()
	w.cancel()
	select {
	case err := <-w.errc:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		w.errc <- nil // a later stop returns at once
	case <-time.After(waitFor + 5*time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// die cuts w off NATS as the death of its process would: nothing is
// released and nothing more is published. The worker runs on, unable to
// reach anyone, until the test ends.
func (w *worker) die() { w.conn.tcp.cut() }

func (h *harness) createRoom(id string, langs ...room.Language) {
	h.t.Helper()
	now := time.Now().UTC()
	r := &room.Room{ID: id, SourceLanguage: "en", Languages: langs, SpeakerKey: room.NewSpeakerKey(), CreatedAt: now, UpdatedAt: now}
	if err := r.Normalize(); err != nil {
		h.t.Fatal(err)
	}
	if err := h.rooms.Create(context.Background(), r); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) updateRoom(id string, change func(*room.Room)) {
	h.t.Helper()
	ctx := context.Background()
	r, rev, err := h.rooms.Get(ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	change(r)
	if err := r.Normalize(); err != nil {
		h.t.Fatal(err)
	}
	if err := h.rooms.Update(ctx, r, rev); err != nil {
		h.t.Fatal(err)
	}
}

// liveTalk creates room "talk" (source en) with langs, its speaker
// connected and one listener of each language on fan1.
func (h *harness) liveTalk(langs ...string) {
	h.t.Helper()
	rl := make([]room.Language, len(langs))
	for i, code := range langs {
		rl[i] = room.Language{Code: code}
	}
	h.createRoom("talk", rl...)
	h.speaker("talk", true)
	for _, code := range langs {
		h.listeners("talk", code, "fan1", 1)
	}
}

func (h *harness) speaker(id string, on bool) {
	h.t.Helper()
	ctx := context.Background()
	var err error
	if on {
		b, _ := json.Marshal(livestate.Mic{Node: "ingest1", Since: time.Now(), SampleRate: 24000, Language: "en"})
		_, err = h.bus.State.Put(ctx, livestate.MicKey(id, "main"), b)
	} else {
		err = h.bus.State.Delete(ctx, livestate.MicKey(id, "main"))
	}
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) listeners(id, lang, node string, n int) {
	h.t.Helper()
	b, _ := json.Marshal(livestate.Listeners{Count: n})
	if _, err := h.bus.State.Put(context.Background(), livestate.ListenersKey(id, lang, node), b); err != nil {
		h.t.Fatal(err)
	}
}

// waitState watches channel (id, lang)'s state until ok accepts it (nil
// when the key is absent) and returns it.
func (h *harness) waitState(id, lang string, what string, ok func(*livestate.Channel) bool) *livestate.Channel {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	w, err := h.bus.State.Watch(ctx, livestate.ChannelKey(id, lang))
	if err != nil {
		h.t.Fatal(err)
	}
	defer w.Stop()
	var cur *livestate.Channel
	initial := true
	for {
		select {
		case e := <-w.Updates():
			if e == nil { // end of initial values: the key may be absent
				initial = false
			} else if e.Operation() != jetstream.KeyValuePut {
				cur = nil
			} else {
				cur = &livestate.Channel{}
				if err := json.Unmarshal(e.Value(), cur); err != nil {
					h.t.Fatal(err)
				}
			}
			if !initial || e == nil {
				if ok(cur) {
					return cur
				}
			}
		case <-ctx.Done():
			h.t.Fatalf("channel %s/%s: never %s; last state %+v", id, lang, what, cur)
			return nil
		}
	}
}

func isState(state string) func(*livestate.Channel) bool {
	return func(st *livestate.Channel) bool { return st != nil && st.State == state }
}

func absent(st *livestate.Channel) bool { return st == nil }

func (h *harness) waitActive(id, lang string) *livestate.Channel {
	h.t.Helper()
	return h.waitState(id, lang, "active", isState(livestate.StateActive))
}

func (h *harness) subscribe(subj string) *nats.Subscription {
	h.t.Helper()
	sub, err := h.bus.Conn.SubscribeSync(subj)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.bus.Conn.Flush(); err != nil {
		h.t.Fatal(err)
	}
	// Unread messages would hold up draining the bus's connection.
	h.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return sub
}

// tone is d of speech as the fake engine hears it: every sample v.
func tone(v int16, d time.Duration) []byte {
	s := make([]int16, audio.DurationBytes(d)/2)
	for i := range s {
		s[i] = v
	}
	return audio.Bytes(s)
}

// samplesOf collects the distinct sample values of pcm, in order, each
// once per run.
func samplesOf(pcm []byte, into []int16) []int16 {
	for _, v := range audio.Samples(pcm) {
		if len(into) == 0 || into[len(into)-1] != v {
			into = append(into, v)
		}
	}
	return into
}

func (h *harness) publishAudio(id string, seq uint64, pcm []byte, captured time.Time) {
	h.t.Helper()
	f := audio.Frame{PCM: pcm, Captured: captured, Lang: "en", Speech: true}
	if err := h.bus.Conn.PublishMsg(subject.FrameMsg(subject.Mic(id, "main"), f, seq)); err != nil {
		h.t.Fatal(err)
	}
}

func next(t *testing.T, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	m, err := sub.NextMsg(waitFor)
	if err != nil {
		t.Fatalf("no message on %s: %v", sub.Subject, err)
	}
	return m
}

func nextCaption(t *testing.T, sub *nats.Subscription) wire.Caption {
	t.Helper()
	var c wire.Caption
	if err := json.Unmarshal(next(t, sub).Data, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// absentFor checks that cond stays false for d: for things that must NOT
// happen, where no event says "it will not".
func absentFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			t.Fatalf("unexpected: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
