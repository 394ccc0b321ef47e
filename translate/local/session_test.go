package local

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/translate/engine"
)

// recordingSink keeps what a session delivers and checks the Sink contract
// as it goes (one call at a time, even-length audio in ≤ 200 ms pieces).
type recordingSink struct {
	t      testing.TB
	mu     sync.Mutex
	busy   bool
	audio  []int16
	pieces int
	first  time.Time // capture time of the first audio
	last   time.Time
	target map[uint64]string
	shown  map[uint64]int // lines shown (not final yet): audio pieces by then
	source map[uint64]string
	segs   []uint64 // source caption segments in order
	notify chan struct{}
}

func newRecordingSink(t testing.TB) *recordingSink {
	return &recordingSink{t: t, target: map[uint64]string{}, shown: map[uint64]int{}, source: map[uint64]string{}, notify: make(chan struct{}, 1)}
}

func (k *recordingSink) enter() {
	k.mu.Lock()
	if k.busy {
		k.t.Error("Sink called concurrently")
	}
	k.busy = true
}

func (k *recordingSink) leave() {
	k.busy = false
	k.mu.Unlock()
	select {
	case k.notify <- struct{}{}:
	default:
	}
}

func (k *recordingSink) Audio(pcm []byte, captured time.Time) {
	k.enter()
	defer k.leave()
	if len(pcm)%2 != 0 || len(pcm) == 0 || len(pcm) > 2*pieceSamples {
		k.t.Errorf("audio piece of %d bytes; want an even count of at most 200 ms", len(pcm))
	}
	if captured.IsZero() {
		k.t.Error("audio without capture time")
	}
	if k.first.IsZero() {
		k.first = captured
	}
	k.last = captured
	k.audio = append(k.audio, audio.Samples(pcm)...)
	k.pieces++
}

func (k *recordingSink) Caption(segment uint64, text string, final bool) {
	k.enter()
	defer k.leave()
	// A line is shown as its speech starts and final once it was spoken:
	// the record keeps a line from its first words to its end.
	if !final {
		if _, dup := k.shown[segment]; dup {
			k.t.Errorf("caption %d shown twice", segment)
		}
		if _, ok := k.source[segment]; !ok {
			k.t.Errorf("caption %d came before its source caption", segment)
		}
		k.shown[segment] = k.pieces
		return
	}
	if at, ok := k.shown[segment]; !ok {
		k.t.Errorf("caption %d final without being shown before its speech", segment)
	} else if k.pieces == at {
		k.t.Errorf("caption %d final before any of its speech", segment)
	}
	if _, dup := k.target[segment]; dup {
		k.t.Errorf("caption segment %d published twice", segment)
	}
	if _, ok := k.source[segment]; !ok {
		k.t.Errorf("caption %d came before its source caption", segment)
	}
	k.target[segment] = text
}

func (k *recordingSink) SourceCaption(segment uint64, text string, final bool) {
	k.enter()
	defer k.leave()
	if !final {
		k.t.Errorf("source caption %d not final", segment)
	}
	if n := len(k.segs); n > 0 && segment <= k.segs[n-1] {
		k.t.Errorf("source caption segment %d after %d: not increasing", segment, k.segs[n-1])
	}
	k.segs = append(k.segs, segment)
	k.source[segment] = text
}

// captions returns the caption count so far.
func (k *recordingSink) captions() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.target)
}

// waitCaptions waits until n captions arrived.
func (k *recordingSink) waitCaptions(t testing.TB, n int, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for k.captions() < n {
		select {
		case <-k.notify:
		case <-deadline:
			t.Fatalf("%d captions after %v; want %d", k.captions(), d, n)
		}
	}
}

// logBuffer is a slog handler target that tests can search.
type logBuffer struct {
	t  testing.TB
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.b.Write(p)
	l.mu.Unlock()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (l *logBuffer) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}

func testEngine(t testing.TB, opts Options) (*Engine, *logBuffer) {
	t.Helper()
	testTools(t) // fails with the install command when tools are missing
	lb := &logBuffer{t: t}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, lb
}

// speaker streams recordings into sessions as the ingest would: 24 kHz
// PCM in 100 ms frames with capture times, room noise between sentences.
type speaker struct {
	sessions []engine.Session
	at       time.Time // capture time of the next sample
	rng      *rand.Rand
	speech   time.Duration
}

// openSpanish opens an English → Spanish session on e, recording into a
// fresh sink, and closes it at the end of the test.
func openSpanish(t testing.TB, e *Engine) (engine.Session, *recordingSink) {
	t.Helper()
	k := newRecordingSink(t)
	s, err := e.Open(context.Background(), engine.Channel{Room: "r", Source: "en", Target: "es"}, k)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, k
}

func newSpeaker(ss ...engine.Session) *speaker {
	return &speaker{sessions: ss, at: time.Now(), rng: rand.New(rand.NewPCG(7, 8))}
}

func (sp *speaker) send(t testing.TB, s []int16, pace bool) {
	t.Helper()
	const frame = audio.Rate / 10
	for off := 0; off < len(s); off += frame {
		pcm := audio.Bytes(s[off:min(off+frame, len(s))])
		for _, ss := range sp.sessions {
			if err := ss.Append(pcm, sp.at); err != nil {
				t.Fatalf("Append: %v", err)
			}
		}
		d := time.Duration(len(pcm)/2) * time.Second / audio.Rate
		sp.at = sp.at.Add(d)
		if pace {
			time.Sleep(d)
		}
	}
}

func (sp *speaker) quiet(t testing.TB, d time.Duration, pace bool) {
	sp.send(t, noise(sp.rng, int(d.Seconds()*audio.Rate)), pace)
}

func (sp *speaker) say(t testing.TB, c clip, pace bool) {
	sp.send(t, resampleAll(c.pcm, c.rate, audio.Rate), pace)
	sp.speech += time.Duration(len(c.pcm)) * time.Second / time.Duration(c.rate)
}

// contentWords are words of the LibriVox references with what Apertium
// makes of them in Spanish and Catalan.
var contentWords = []struct{ en, es, ca string }{
	{"consider", "considerar", "considerar"},
	{"power", "poder", "poder"},
	{"young", "joven", "jove"},
	{"man", "hombre", "home"},
	{"cold", "frío", "fred"},
	{"selfish", "egoísta", "egoista"},
	{"married", "cas", "casat"},
	{"amiable", "amable", "amable"},
	{"woman", "mujer", "dona"},
	{"respectable", "respetable", "respectable"},
	{"leisure", "ocio", "lleure"},
	{"even", "incluso", "fins i tot"},
}

// TestSessionInterpretsLibriVox streams the five LibriVox sentences of real
// speech into a Spanish and a Catalan session at once, and checks that each
// heard what was said and spoke its translation.
func TestSessionInterpretsLibriVox(t *testing.T) {
	cs := libriVox(t)
	var mu sync.Mutex
	var reports []TurnReport
	e, _ := testEngine(t, Options{MaxBacklog: 5 * time.Minute, OnTurn: func(r TurnReport) {
		mu.Lock()
		reports = append(reports, r)
		mu.Unlock()
	}})
	ctx := context.Background()
	sinks := map[string]*recordingSink{}
	var sessions []engine.Session
	for _, lang := range []string{"es", "ca"} {
		sinks[lang] = newRecordingSink(t)
		s, err := e.Open(ctx, engine.Channel{Room: "keynote", Source: "en", Target: lang}, sinks[lang])
		if err != nil {
			t.Fatalf("Open %s: %v", lang, err)
		}
		if s.Kind() != "local" {
			t.Errorf("Kind = %q", s.Kind())
		}
		sessions = append(sessions, s)
	}
	sp := newSpeaker(sessions...)
	start := sp.at
	sp.quiet(t, time.Second, false)
	var refs []string
	for _, c := range cs {
		sp.say(t, c, false)
		sp.quiet(t, time.Second, false)
		refs = append(refs, c.ref)
	}
	end := sp.at
	for i, s := range sessions {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		if err := s.Close(cctx); err != nil {
			t.Fatalf("Close %d: %v", i, err)
		}
		cancel()
		select {
		case <-s.Done():
		default:
			t.Error("Done not closed after Close")
		}
		if err := s.Err(); err != nil {
			t.Errorf("Err after Close = %v", err)
		}
		if err := s.Append(make([]byte, 480), end); err == nil {
			t.Error("Append after Close succeeded")
		}
	}

	for _, lang := range []string{"es", "ca"} {
		k := sinks[lang]
		var heard []string
		checked, found := 0, 0
		for _, seg := range k.segs {
			src, tr := k.source[seg], strings.ToLower(k.target[seg])
			heard = append(heard, src)
			t.Logf("%s %d: %q → %q", lang, seg, src, k.target[seg])
			if tr == "" {
				t.Errorf("%s: segment %d (%q) has no translation", lang, seg, src)
			}
			for _, w := range words(tr) {
				if w == "the" || w == "was" || w == "been" {
					t.Errorf("%s: segment %d is not translated: %q", lang, seg, tr)
				}
			}
			for _, cw := range contentWords {
				if !contains(words(src), cw.en) {
					continue
				}
				want := map[string]string{"es": cw.es, "ca": cw.ca}[lang]
				checked++
				if strings.Contains(tr, want) {
					found++
				} else {
					t.Logf("%s: %q heard in segment %d, but %q is not in %q", lang, cw.en, seg, want, tr)
				}
			}
		}
		w := wer(strings.Join(refs, " "), strings.Join(heard, " "))
		t.Logf("%s: %d segments, source WER %.1f%%, %d/%d recognized content words translated",
			lang, len(k.segs), 100*w, found, checked)
		if len(k.segs) != len(cs) {
			t.Errorf("%s: %d caption segments; want one per sentence, %d", lang, len(k.segs), len(cs))
		}
		if w > maxSessionWER {
			t.Errorf("%s: source captions have WER %.1f%% against the references; want at most %.0f%%", lang, 100*w, 100*maxSessionWER)
		}
		if checked < 6 || found < checked-1 {
			t.Errorf("%s: %d of %d recognized content words found translated; want at least 6 checked and at most one missing", lang, found, checked)
		}

		// Speech: audible, of plausible length, stamped with capture times
		// of the speech it translates.
		dur := time.Duration(len(k.audio)) * time.Second / audio.Rate
		rms, _ := audio.Level(k.audio)
		t.Logf("%s: %v of speech in %d pieces (input speech %v), RMS %.1f dBFS", lang, dur.Round(time.Millisecond), k.pieces, sp.speech.Round(time.Millisecond), rms)
		if dur < sp.speech/2 || dur > 3*sp.speech {
			t.Errorf("%s: %v of translated speech for %v of input speech", lang, dur, sp.speech)
		}
		if rms < -35 {
			t.Errorf("%s: translated speech RMS %.1f dBFS: silent", lang, rms)
		}
		if k.first.Before(start) || k.last.After(end) || !k.last.After(k.first) {
			t.Errorf("%s: capture times %v..%v outside the input's %v..%v", lang, k.first, k.last, start, end)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	for _, r := range reports {
		if r.Err != nil {
			continue
		}
		t.Logf("turn %d: %v long (%v speech); after the turn ended: recognized %v, translated %v, first audio %v, done %v",
			r.Turn, r.Length.Round(10*time.Millisecond), r.Speech, r.Recognized.Sub(r.Ended).Round(time.Millisecond),
			r.Translated.Sub(r.Ended).Round(time.Millisecond), r.FirstAudio.Sub(r.Ended).Round(time.Millisecond),
			r.Done.Sub(r.Ended).Round(time.Millisecond))
	}
}

// maxSessionWER bounds the source captions' word error rate over the five
// sentences (the recognizer alone: maxLibriVoxWER; turns cut by the
// detector may lose a word at an edge).
const maxSessionWER = 0.40

func contains(ws []string, w string) bool {
	for _, x := range ws {
		if x == w {
			return true
		}
	}
	return false
}

// TestSessionEndsTurnWhenSpeakerStopsSending: the speaker's audio stops
// mid-sentence (the file ended, the speaker hung up) and nothing more
// comes, not even silence. The turn is still interpreted, without a Close.
func TestSessionEndsTurnWhenSpeakerStopsSending(t *testing.T) {
	c := libriVox(t)[4]            // "he might even have been made amiable himself"
	c.pcm = c.pcm[:len(c.pcm)*3/4] // cut off while talking
	e, _ := testEngine(t, Options{})
	s, k := openSpanish(t, e)
	sp := newSpeaker(s)
	sp.quiet(t, 500*time.Millisecond, false)
	sp.say(t, c, false)
	k.waitCaptions(t, 1, 30*time.Second)
}

// TestSessionCloseFlushesTurn closes a session while the speaker is still
// talking: the turn in progress is still interpreted before Close returns.
func TestSessionCloseFlushesTurn(t *testing.T) {
	c := libriVox(t)[4] // "he might even have been made amiable himself"
	e, _ := testEngine(t, Options{})
	k := newRecordingSink(t)
	s, err := e.Open(context.Background(), engine.Channel{Room: "r", Source: "en-US", Target: "es"}, k)
	if err != nil {
		t.Fatal(err)
	}
	sp := newSpeaker(s)
	sp.quiet(t, 500*time.Millisecond, false)
	sp.say(t, c, false) // no quiet after: the turn is still open
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.target) != 1 || len(k.audio) == 0 {
		t.Fatalf("after Close: captions %v, %d audio samples; want the open turn interpreted", k.target, len(k.audio))
	}
	if !strings.Contains(strings.ToLower(k.target[k.segs[0]]), "amable") {
		t.Errorf("caption %q does not translate %q", k.target[k.segs[0]], c.ref)
	}
}

// TestSessionRestartsRecognizer kills the session's recognizer: the next
// turn is recognized by a new one, and the log says so.
func TestSessionRestartsRecognizer(t *testing.T) {
	cs := libriVox(t)
	e, lb := testEngine(t, Options{})
	sess, k := openSpanish(t, e)
	s := sess.(*session)
	s.rec.mu.Lock()
	killGroup(s.rec.proc.cmd)
	old := s.rec.proc
	s.rec.mu.Unlock()
	<-old.done

	sp := newSpeaker(s)
	sp.quiet(t, 500*time.Millisecond, false)
	sp.say(t, cs[1], false) // "he was not an ill disposed young man"
	sp.quiet(t, time.Second, false)
	k.waitCaptions(t, 1, time.Minute)
	if !lb.contains("restarting it") {
		t.Error("the log does not say the recognizer was restarted")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if tr := k.target[k.segs[0]]; !strings.Contains(strings.ToLower(tr), "hombre joven") {
		t.Errorf("caption after restart %q does not translate %q", tr, cs[1].ref)
	}
	select {
	case <-s.Done():
		t.Fatalf("session ended: %v", s.Err())
	default:
	}
}

// TestSessionFailsWhenRecognizerKeepsDying: a recognizer that cannot run
// ends the session by itself with an engine error, not a hang.
func TestSessionFailsWhenRecognizerKeepsDying(t *testing.T) {
	e, _ := testEngine(t, Options{})
	bad := *e.tools
	bad.sphinx = "/bin/false"
	e.tools = &bad
	s, _ := openSpanish(t, e)
	sp := newSpeaker(s)
	rng := rand.New(rand.NewPCG(1, 1))
	// The speaker goes on talking at real time, turn after turn, as in a
	// talk: every turn costs a restart or two until the budget is spent.
	deadline := time.Now().Add(time.Minute)
	turns := 0
	for failed := false; !failed; turns++ {
		if time.Now().After(deadline) {
			t.Fatalf("session still running after %d turns with a recognizer that cannot start", turns)
		}
		turn := append(tone(audio.Rate/2, audio.Rate), noise(rng, audio.Rate)...)
		for off := 0; off < len(turn) && !failed; off += audio.Rate / 10 {
			pcm := audio.Bytes(turn[off:min(off+audio.Rate/10, len(turn))])
			failed = s.Append(pcm, sp.at) != nil // the session has given up
			sp.at = sp.at.Add(100 * time.Millisecond)
			time.Sleep(100 * time.Millisecond) // pacing the speaker
		}
	}
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Append fails but the session is not done")
	}
	t.Logf("the session gave up after %d turns", turns)
	var te *engine.Error
	if err := s.Err(); !errors.As(err, &te) || te.Code != "engine_failed" || te.Permanent {
		t.Fatalf("Err = %v; want a non-permanent engine_failed", err)
	}
	if err := s.Append(make([]byte, 480), time.Now()); err == nil {
		t.Error("Append to a failed session succeeded")
	}
}

func TestOpenUnsupportedLanguage(t *testing.T) {
	e, _ := testEngine(t, Options{})
	caps := e.Capabilities()
	if strings.Join(caps.Sources, ",") != "en" || !contains(caps.Targets, "es") || !contains(caps.Targets, "ca") {
		t.Fatalf("Capabilities = %+v; want en into ca and es", caps)
	}
	for _, ch := range []engine.Channel{
		{Room: "r", Source: "en", Target: "ja"},
		{Room: "r", Source: "de", Target: "es"},
	} {
		_, err := e.Open(context.Background(), ch, newRecordingSink(t))
		var te *engine.Error
		if !errors.As(err, &te) || te.Code != "unsupported_language" || !te.Permanent ||
			!strings.Contains(te.Message, "ca, es") {
			t.Errorf("Open(%s→%s) = %v; want a permanent unsupported_language listing ca, es", ch.Source, ch.Target, err)
		}
	}
}

// TestNewNamesMissingPackages: without the tools, New says which Debian
// packages to install.
func TestNewNamesMissingPackages(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := New(Options{ModelDir: t.TempDir(), ApertiumDir: t.TempDir()})
	if err == nil {
		t.Fatal("New succeeded without any tools")
	}
	for _, want := range []string{"pocketsphinx_batch (Debian package pocketsphinx)", "espeak-ng (Debian package espeak-ng)",
		"pocketsphinx-en-us", "apt-get install " + DebianPackages} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestAppendDropsOldest: a session whose recognizer falls behind keeps the
// newest audio and says so in the log.
func TestAppendDropsOldest(t *testing.T) {
	lb := &logBuffer{t: t}
	s := &session{
		ctx:       context.Background(),
		e:         &Engine{opts: Options{MaxBacklog: time.Second}},
		log:       slog.New(slog.NewTextHandler(lb, nil)),
		maxQueued: audio.Rate, qsig: make(chan struct{}, 1),
	}
	base := time.Now()
	for i := 0; i < 30; i++ { // 3 s of 100 ms frames, none consumed
		if err := s.Append(make([]byte, audio.Rate/5), base.Add(time.Duration(i)*100*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if s.queued > audio.Rate || len(s.queue) != 10 {
		t.Fatalf("queued %d samples in %d chunks; want the last 1 s", s.queued, len(s.queue))
	}
	if got := s.queue[0].captured; !got.Equal(base.Add(2 * time.Second)) {
		t.Errorf("oldest kept chunk captured at +%v; want +2s", got.Sub(base))
	}
	if !lb.contains("falling behind") {
		t.Error("no log line about dropped audio")
	}
}
