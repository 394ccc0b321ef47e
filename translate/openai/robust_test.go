package openai

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"

	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/translate/engine"
)

var nlChannel = engine.Channel{Room: "r", Source: "en", Target: "nl", Mode: room.ModeAuto}

// Speech going on longer than MaxTurn is committed by the session, at the
// quietest 20 ms of the last second, and every piece is translated.
func TestInterpretLongTurnIsCut(t *testing.T) {
	fake := newFake(t, fakerealtime.Options{ResponseSpeed: 20})
	sink, f := openFed(t, fake, func(o *Options) { o.MaxTurn = 2 * time.Second }, nlChannel, 4)
	hz := fakerealtime.ToneHz("en")
	var speech []byte
	speech = append(speech, fakerealtime.Tone(hz, 1500*time.Millisecond, 0.3)...)
	speech = append(speech, fakerealtime.Tone(hz, 40*time.Millisecond, 0.02)...) // a breath, still speech to the VAD
	speech = append(speech, fakerealtime.Tone(hz, 3460*time.Millisecond, 0.3)...)
	f.play(t, speech)
	f.play(t, fakerealtime.Silence(time.Second))
	sink.waitFor(t, 15*time.Second, "all pieces translated", func() bool {
		si := sessionsOf(fake, fakerealtime.Realtime)[0]
		return len(si.Turns) >= 3 && len(sink.finals(false)) == len(si.Turns) && toneMs(sink.audioCopy(), "nl") >= 4800
	})
	si := sessionsOf(fake, fakerealtime.Realtime)[0]
	var appended int64
	var cuts []int64
	for _, ev := range si.Events {
		switch ev.Type {
		case "input_audio_buffer.append":
			m := eventsOf(fakerealtime.SessionInfo{Events: []fakerealtime.ClientEvent{ev}}, ev.Type)[0]
			appended += int64(m["audio_bytes"].(float64))
		case "input_audio_buffer.commit":
			cuts = append(cuts, appended/bytesPerMS)
		}
	}
	if len(cuts) < 2 {
		t.Fatalf("cuts at %v ms, want at least 2 in 5 s of speech with MaxTurn 2s", cuts)
	}
	if cuts[0] < 1520 || cuts[0] > 1560 {
		t.Errorf("first cut at %d ms, want in the quiet 1500-1540 ms", cuts[0])
	}
	for i := 1; i < len(cuts); i++ {
		if d := cuts[i] - cuts[i-1]; d > 2000 {
			t.Errorf("turn of %d ms, longer than MaxTurn", d)
		}
	}
	answeredOnce(t, si)
}

// A reply that answers instead of translating is not forwarded; the turn is
// asked again and its translation is.
func TestInterpretCatchesNonTranslation(t *testing.T) {
	fake := newFake(t, fakerealtime.Options{ResponseSpeed: 20})
	fake.AddFault(fakerealtime.Fault{Endpoint: fakerealtime.Realtime, Action: fakerealtime.ActionOffTopic})
	sink, f := openFed(t, fake, nil, nlChannel, 4)
	f.bursts(t, 1, 800*time.Millisecond, 800*time.Millisecond)
	sink.waitFor(t, 10*time.Second, "the translation", func() bool { return len(sink.finals(false)) == 1 })
	si := sessionsOf(fake, fakerealtime.Realtime)[0]
	fake.WaitUntil(2*time.Second, func() bool { return len(sessionsOf(fake, fakerealtime.Realtime)[0].Responses) >= 2 })
	si = sessionsOf(fake, fakerealtime.Realtime)[0]
	if len(si.Responses) != 2 || !strings.HasPrefix(si.Responses[0].Transcript, "Sure!") {
		t.Fatalf("responses %+v: the fake did not answer off topic first", si.Responses)
	}
	audio := sink.audioCopy()
	if n := toneMs(audio, ""); n != 0 {
		t.Errorf("%d ms of the off-topic answer were forwarded", n)
	}
	if n := toneMs(audio, "nl"); n < 700 {
		t.Errorf("%d ms of the translation forwarded, want 800", n)
	}
	for _, c := range sink.finals(false) {
		if strings.Contains(c, "Sure") {
			t.Errorf("off-topic caption forwarded: %q", c)
		}
	}
	if got := sink.finals(false); got[0] != "[nl] sentence 1." {
		t.Errorf("captions %q", got)
	}
}

// Many turns: every turn answered once, each response sees one item, and
// the conversation does not grow.
func TestInterpretContextStaysFlat(t *testing.T) {
	fake := newFake(t, fakerealtime.Options{ResponseSpeed: 40})
	sink, f := openFed(t, fake, nil, nlChannel, 8)
	const turns = 10
	f.bursts(t, turns, 300*time.Millisecond, 600*time.Millisecond)
	sink.waitFor(t, 15*time.Second, "all turns", func() bool { return len(sink.finals(false)) >= turns })
	si := sessionsOf(fake, fakerealtime.Realtime)[0]
	if len(si.Turns) != turns {
		t.Fatalf("%d turns committed, want %d", len(si.Turns), turns)
	}
	if m := fake.MaxResponseInputItems(); m != 1 {
		t.Errorf("largest response input %d items, want 1", m)
	}
	if si.ConversationItems > 2 {
		t.Errorf("%d items kept in the conversation after %d turns", si.ConversationItems, turns)
	}
	answeredOnce(t, si)
}

// Before a connection expires the session moves to a fresh one at a pause:
// every sentence is translated once, and the old connection is closed by
// the session, not by expiry.
func TestTranslationRotation(t *testing.T) {
	fake := newFake(t, fakerealtime.Options{SessionDuration: 6 * time.Second})
	sink, f := openFed(t, fake, func(o *Options) { o.RotateBefore = 4 * time.Second; o.SwitchWait = 2 * time.Second },
		engine.Channel{Room: "r", Source: "en", Target: "es"}, 1)
	const n = 8
	f.bursts(t, n, 400*time.Millisecond, 600*time.Millisecond)
	sink.waitFor(t, 5*time.Second, "all sentences", func() bool { return len(sink.finals(false)) >= n && len(sink.finals(true)) >= n })
	time.Sleep(300 * time.Millisecond) // would a sentence come twice?
	if got := sink.finals(false); len(got) != n {
		t.Errorf("%d sentences translated for %d spoken: %q", len(got), n, got)
	}
	if got := sink.finals(true); len(got) != n {
		t.Errorf("%d source sentences for %d spoken: %q", len(got), n, got)
	}
	ss := sessionsOf(fake, fakerealtime.Translate)
	if len(ss) < 2 {
		t.Fatalf("%d connections, want a move to a fresh one", len(ss))
	}
	for _, si := range ss[:len(ss)-1] {
		if si.CloseReason != "session.close" {
			t.Errorf("connection ended by %q, want session.close before expiry", si.CloseReason)
		}
	}
	if ms := toneMs(sink.audioCopy(), "es"); ms < n*400 || ms > n*600 {
		t.Errorf("%d ms translated for %d ms spoken", ms, n*400)
	}
}

func TestInterpretRotation(t *testing.T) {
	fake := newFake(t, fakerealtime.Options{SessionDuration: 5 * time.Second, ResponseSpeed: 10})
	sink, f := openFed(t, fake, func(o *Options) { o.RotateBefore = 3500 * time.Millisecond; o.SwitchWait = 2 * time.Second }, nlChannel, 1)
	const n = 6
	f.bursts(t, n, 500*time.Millisecond, 800*time.Millisecond)
	sink.waitFor(t, 5*time.Second, "all turns", func() bool { return len(sink.finals(false)) >= n })
	time.Sleep(300 * time.Millisecond)
	if got := sink.finals(false); len(got) != n {
		t.Errorf("%d turns translated for %d spoken: %q", len(got), n, got)
	}
	ss := sessionsOf(fake, fakerealtime.Realtime)
	if len(ss) < 2 {
		t.Fatalf("%d connections, want a move to a fresh one", len(ss))
	}
	for _, si := range ss {
		if strings.Contains(si.CloseReason, "expired") {
			t.Errorf("a connection expired instead of being moved from")
		}
	}
	total := 0
	for _, si := range ss {
		for turn, c := range si.AnswerCounts() {
			if c != 1 {
				t.Errorf("turn %s answered %d times", turn, c)
			}
			total++
		}
	}
	if total != n {
		t.Errorf("%d turns over both connections, want %d", total, n)
	}
}

// A dropped connection is replaced and the speech it had not translated is
// sent again.
func TestTranslationReconnects(t *testing.T) {
	fake := newFake(t, fakerealtime.Options{TranslateDelay: 2 * time.Second})
	sink, f := openFed(t, fake, nil, engine.Channel{Room: "r", Source: "en", Target: "es"}, 4)
	f.play(t, fakerealtime.Speech("en", 600*time.Millisecond))
	if fake.Drop(fakerealtime.Translate) != 1 {
		t.Fatal("nothing to drop")
	}
	fake.WaitUntil(5*time.Second, func() bool {
		return fake.OpenNow(fakerealtime.Translate) == 1 && fake.Opened(fakerealtime.Translate) == 2
	})
	f.play(t, fakerealtime.Silence(300*time.Millisecond))
	f.play(t, fakerealtime.Speech("en", 600*time.Millisecond))
	sink.waitFor(t, 10*time.Second, "both sentences", func() bool { return toneMs(sink.audioCopy(), "es") >= 1200 })
	if ms := toneMs(sink.audioCopy(), "es"); ms > 1400 {
		t.Errorf("%d ms translated for 1200 spoken: doubled", ms)
	}
	select {
	case <-f.s.Done():
		t.Fatalf("session ended: %v", f.s.Err())
	default:
	}
}

// A connection dropped while a turn is being answered: the session
// reconnects and the turn is asked again on the new connection.
func TestInterpretReconnectRetriesTurn(t *testing.T) {
	fake := newFake(t, fakerealtime.Options{ResponseSpeed: 0.5})
	sink, f := openFed(t, fake, nil, nlChannel, 4)
	f.bursts(t, 1, 700*time.Millisecond, 700*time.Millisecond)
	if !fake.WaitUntil(5*time.Second, func() bool { return len(fake.Responses()) == 1 }) {
		t.Fatal("no response started")
	}
	fake.Drop(fakerealtime.Realtime)
	sink.waitFor(t, 10*time.Second, "the retried turn", func() bool {
		for _, c := range sink.finals(false) {
			if c == "[nl] (audio)." {
				return true
			}
		}
		return false
	})
	ss := sessionsOf(fake, fakerealtime.Realtime)
	if len(ss) != 2 || len(eventsOf(ss[1], "conversation.item.create")) != 1 {
		t.Fatalf("want the turn re-created once on a second connection; sessions %d", len(ss))
	}
	if r := ss[1].Responses; len(r) != 1 || r[0].Status != "completed" || r[0].InputItems != 1 {
		t.Errorf("responses on the new connection: %+v", r)
	}
}

// countingDialer counts TCP connections.
func countingDialer(n *atomic.Int32) *websocket.Dialer {
	d := &net.Dialer{}
	return &websocket.Dialer{HandshakeTimeout: 5 * time.Second, NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		return d.DialContext(ctx, network, addr)
	}}
}

func TestInvalidKeyIsPermanent(t *testing.T) {
	fake := newFake(t, fakerealtime.Options{})
	var dials atomic.Int32
	const key = "sk-wrong-key-0123456789"
	var logs strings.Builder
	var logMu sync.Mutex
	e := newEngine(t, fake, func(o *Options) {
		o.APIKey = key
		o.Dialer = countingDialer(&dials)
		o.Log = slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	defer func() {
		logMu.Lock()
		defer logMu.Unlock()
		if strings.Contains(logs.String(), key) || strings.Contains(logs.String(), "6789") {
			t.Errorf("the key leaks into the log:\n%s", logs.String())
		}
	}()
	for _, ch := range []engine.Channel{{Room: "r", Source: "en", Target: "es"}, nlChannel} {
		dials.Store(0)
		_, err := e.Open(context.Background(), ch, newSink())
		var te *engine.Error
		if !errorsAs(err, &te) || te.Code != "invalid_api_key" || !te.Permanent {
			t.Fatalf("Open with a wrong key: %v", err)
		}
		if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "6789") {
			t.Errorf("the key leaks into the error: %v", err)
		}
		if dials.Load() != 1 {
			t.Errorf("%d connection attempts, want 1: a bad key is not retried", dials.Load())
		}
	}
}

func TestPermanentErrorEndsSession(t *testing.T) {
	fake := newFake(t, fakerealtime.Options{})
	e := newEngine(t, fake, nil)
	for _, ch := range []engine.Channel{{Room: "r", Source: "en", Target: "es"}, nlChannel} {
		s := open(t, e, ch, newSink())
		before := fake.Opened("")
		fake.SendError("", "insufficient_quota", 0)
		select {
		case <-s.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("session did not end on insufficient_quota")
		}
		var te *engine.Error
		if !errorsAs(s.Err(), &te) || te.Code != "insufficient_quota" || !te.Permanent {
			t.Errorf("Err = %v", s.Err())
		}
		time.Sleep(300 * time.Millisecond) // would it reconnect?
		if fake.Opened("") != before {
			t.Errorf("reconnected after a permanent error")
		}
	}
	e2 := newEngine(t, fake, func(o *Options) { o.TranslateModel = "gpt-nope" })
	_, err := e2.Open(context.Background(), engine.Channel{Room: "r", Source: "en", Target: "es"}, newSink())
	if !engine.IsPermanent(err) || !strings.Contains(err.Error(), "model_not_found") {
		t.Errorf("unknown model: %v", err)
	}
}

func TestRateLimitRetried(t *testing.T) {
	fake := newFake(t, fakerealtime.Options{})
	e := newEngine(t, fake, nil)
	fake.RejectConnections(1200*time.Millisecond, time.Second)
	start := time.Now()
	sink := newSink()
	s := open(t, e, engine.Channel{Room: "r", Source: "en", Target: "es"}, sink)
	if d := time.Since(start); d < time.Second {
		t.Errorf("opened after %v: Retry-After not respected", d)
	}
	// And inside the session: a drop while connections are refused.
	fake.RejectConnections(1200*time.Millisecond, time.Second)
	fake.Drop(fakerealtime.Translate)
	f := &feeder{s: s, speed: 4}
	f.play(t, fakerealtime.Speech("en", 400*time.Millisecond))
	sink.waitFor(t, 10*time.Second, "translation after the rate limit", func() bool { return toneMs(sink.audioCopy(), "es") >= 400 })
	if s.Err() != nil {
		t.Errorf("Err = %v", s.Err())
	}
}

func TestAzureRealtime(t *testing.T) {
	fake := newFake(t, fakerealtime.Options{Azure: true})
	sink, f := openFed(t, fake, func(o *Options) { o.RealtimeURL = fake.AzureURL(); o.Azure = true }, nlChannel, 4)
	f.bursts(t, 1, 500*time.Millisecond, 700*time.Millisecond)
	sink.waitFor(t, 10*time.Second, "a translation over Azure", func() bool { return len(sink.finals(false)) == 1 })
}

// Append never blocks: a full queue drops the oldest audio and counts it.
func TestQueueDropsOldest(t *testing.T) {
	q := newInbox(1000, testLog(t))
	c := metrics.FramesDropped.WithLabelValues("translate", "queue_full")
	before := counterValue(c)
	t0 := time.Unix(100, 0)
	for i := 0; i < 5; i++ {
		if !q.push(make([]byte, 400), t0.Add(time.Duration(i)*time.Second)) {
			t.Fatal("push refused")
		}
	}
	got := q.take()
	if len(got) != 2 || !got[0].Captured.Equal(t0.Add(3*time.Second)) {
		t.Errorf("kept %d frames starting at %v, want the newest 2", len(got), got[0].Captured)
	}
	if d := counterValue(c) - before; d != 3 {
		t.Errorf("%v drops counted, want 3", d)
	}
	q.close()
	if q.push([]byte{0, 0}, t0) {
		t.Error("push after close")
	}
}

func counterValue(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// session_expired with turns still waiting: the session reconnects and
// every unanswered turn is translated on the new connection.
func TestInterpretExpiryKeepsQueuedTurns(t *testing.T) {
	fake := newFake(t, fakerealtime.Options{ResponseSpeed: 1})
	sink, f := openFed(t, fake, nil, nlChannel, 4)
	const n = 3
	f.bursts(t, n, 600*time.Millisecond, 700*time.Millisecond)
	if !fake.WaitUntil(5*time.Second, func() bool { return len(sessionsOf(fake, fakerealtime.Realtime)[0].Turns) == n }) {
		t.Fatal("turns not committed")
	}
	fake.Expire(fakerealtime.Realtime)
	answered := func() int {
		done := 0
		for _, si := range sessionsOf(fake, fakerealtime.Realtime) {
			for _, r := range si.Responses {
				if r.Status == "completed" {
					done++
				}
			}
		}
		return done
	}
	sink.waitFor(t, 15*time.Second, "every turn answered", func() bool { return answered() >= n })
	time.Sleep(200 * time.Millisecond)
	if a := answered(); a != n {
		t.Errorf("%d responses completed for %d turns", a, n)
	}
	ss := sessionsOf(fake, fakerealtime.Realtime)
	if len(ss) != 2 || ss[0].CloseReason != "session expired" {
		t.Fatalf("sessions: %d, first ended %q", len(ss), ss[0].CloseReason)
	}
	if c := len(eventsOf(ss[1], "conversation.item.create")); c != n-len(ss[0].Responses)+btoi(ss[0].Responses[len(ss[0].Responses)-1].Status != "completed") {
		t.Errorf("%d turns re-created on the new connection", c)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
