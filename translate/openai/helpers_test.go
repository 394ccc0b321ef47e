package openai

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/translate/engine"
)

// testSink records a session's output.
type testSink struct {
	mu       sync.Mutex
	audio    []byte
	pieces   int
	maxPiece int
	odd      bool
	captured []time.Time
	caps     map[uint64]line
	capOrder []uint64
	src      map[uint64]line
	srcOrder []uint64
	changed  chan struct{}
}

type line struct {
	text       string
	final      bool
	updates    int
	afterFinal bool
}

func newSink() *testSink {
	return &testSink{caps: map[uint64]line{}, src: map[uint64]line{}, changed: make(chan struct{}, 1)}
}

func (s *testSink) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *testSink) Audio(pcm []byte, captured time.Time) {
	s.mu.Lock()
	s.audio = append(s.audio, pcm...)
	s.pieces++
	s.maxPiece = max(s.maxPiece, len(pcm))
	s.odd = s.odd || len(pcm)%2 != 0
	s.captured = append(s.captured, captured)
	s.mu.Unlock()
	s.poke()
}

func record(m map[uint64]line, order *[]uint64, seg uint64, text string, final bool) {
	l, ok := m[seg]
	if !ok {
		*order = append(*order, seg)
	}
	if l.final {
		l.afterFinal = true
	}
	l.text, l.final = text, final
	l.updates++
	m[seg] = l
}

func (s *testSink) Caption(seg uint64, text string, final bool) {
	s.mu.Lock()
	record(s.caps, &s.capOrder, seg, text, final)
	s.mu.Unlock()
	s.poke()
}

func (s *testSink) SourceCaption(seg uint64, text string, final bool) {
	s.mu.Lock()
	record(s.src, &s.srcOrder, seg, text, final)
	s.mu.Unlock()
	s.poke()
}

// finals returns the final lines in order.
func (s *testSink) finals(source bool) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, order := s.caps, s.capOrder
	if source {
		m, order = s.src, s.srcOrder
	}
	var out []string
	for _, seg := range order {
		if m[seg].final {
			out = append(out, m[seg].text)
		}
	}
	return out
}

func (s *testSink) audioCopy() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.audio...)
}

// waitFor waits until cond holds, re-checking whenever the sink changes and
// at least every 50 ms (some conditions are on the fake's state).
func (s *testSink) waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		select {
		case <-s.changed:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// toneMs is how many ms of pcm carry lang's tone, judged per 20 ms.
func toneMs(pcm []byte, lang string) int {
	const block = 20 * bytesPerMS
	hz := fakerealtime.ToneHz(lang)
	n := 0
	for i := 0; i+block <= len(pcm); i += block {
		if fakerealtime.Goertzel(pcm[i:i+block], hz) > 0.5 {
			n += 20
		}
	}
	return n
}

func testLog(t *testing.T) *slog.Logger {
	if os.Getenv("OPENAI_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newFake(t *testing.T, opts fakerealtime.Options) *fakerealtime.Server {
	if os.Getenv("OPENAI_TEST_LOG") != "" {
		opts.Logf = t.Logf
	}
	return fakerealtime.New(t, opts)
}

func newEngine(t *testing.T, fake *fakerealtime.Server, mod func(*Options)) *Engine {
	t.Helper()
	o := Options{APIKey: fake.APIKey(), RealtimeURL: fake.URL(), Log: testLog(t),
		BackoffBase: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond}
	if mod != nil {
		mod(&o)
	}
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func open(t *testing.T, e *Engine, ch engine.Channel, sink engine.Sink) engine.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.Open(ctx, ch, sink)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// openFed opens a session of ch on fake (engine options changed by mod)
// and a feeder that speaks into it at speed times real time; the feeder's
// s is the session.
func openFed(t *testing.T, fake *fakerealtime.Server, mod func(*Options), ch engine.Channel, speed float64) (*testSink, *feeder) {
	t.Helper()
	sink := newSink()
	return sink, &feeder{s: open(t, newEngine(t, fake, mod), ch, sink), speed: speed}
}

// feeder plays audio into a session at a multiple of real-time pace, in
// 20 ms frames, with capture times.
type feeder struct {
	s     engine.Session
	speed float64
	clock time.Time
}

func (f *feeder) play(t *testing.T, pcm []byte) {
	t.Helper()
	const frame = 20 * bytesPerMS
	if f.clock.IsZero() {
		f.clock = time.Now()
	}
	start := time.Now()
	for i := 0; i < len(pcm); i += frame {
		end := min(i+frame, len(pcm))
		if err := f.s.Append(pcm[i:end], f.clock); err != nil {
			t.Fatalf("Append: %v", err)
		}
		f.clock = f.clock.Add(audio.BytesDuration(end - i))
		due := start.Add(time.Duration(float64(audio.BytesDuration(end)) / f.speed))
		if d := time.Until(due); d > 0 {
			time.Sleep(d) // pacing the speaker, not synchronizing
		}
	}
}

// bursts plays n bursts of speech, each followed by a gap of silence.
func (f *feeder) bursts(t *testing.T, n int, speech, gap time.Duration) {
	t.Helper()
	for range n {
		f.play(t, fakerealtime.Speech("en", speech))
		f.play(t, fakerealtime.Silence(gap))
	}
}

// answeredOnce checks that the fake answered every turn of si once.
func answeredOnce(t *testing.T, si fakerealtime.SessionInfo) {
	t.Helper()
	for turn, n := range si.AnswerCounts() {
		if n != 1 {
			t.Errorf("turn %s answered %d times", turn, n)
		}
	}
}

// sessionsOf returns the fake's sessions of ep.
func sessionsOf(fake *fakerealtime.Server, ep fakerealtime.Endpoint) []fakerealtime.SessionInfo {
	var out []fakerealtime.SessionInfo
	for _, si := range fake.Sessions() {
		if si.Endpoint == ep {
			out = append(out, si)
		}
	}
	return out
}

// eventsOf lists the raw client events of a type in a session.
func eventsOf(si fakerealtime.SessionInfo, typ string) []map[string]any {
	var out []map[string]any
	for _, e := range si.Events {
		if e.Type == typ {
			var m map[string]any
			_ = json.Unmarshal(e.Raw, &m)
			out = append(out, m)
		}
	}
	return out
}

func hasBetaField(raw string) bool {
	for _, f := range []string{`"modalities"`, `"input_audio_format"`, `"output_audio_format"`, `"input_audio_transcription"`} {
		if strings.Contains(raw, f) {
			return true
		}
	}
	return false
}
