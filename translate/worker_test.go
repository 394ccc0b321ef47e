package translate

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/internal/wire"
	"github.com/babelcast/babelcast/translate/engine"
)

func TestOneSessionPerLanguageAndAudioFlows(t *testing.T) {
	h := newHarness(t)
	eng := newFakeEngine("fake")
	h.createRoom("talk", room.Language{Code: "es"}, room.Language{Code: "de", Voice: "marin"})
	h.speaker("talk", true)
	h.listeners("talk", "es", "fan1", 2)
	h.listeners("talk", "de", "fan2", 1)
	h.start(eng, "tr1", nil)

	es, de := eng.waitOpen(t, "es"), eng.waitOpen(t, "de")
	if de.ch.Voice != "marin" || de.ch.Source != "en" || de.ch.Room != "talk" || de.ch.Mode != room.ModeAuto {
		t.Errorf("de channel = %+v", de.ch)
	}
	st := h.waitActive("talk", "es")
	if st.Node != "tr1" || st.Engine != "fake" || st.Kind != "fake" || st.Error != "" {
		t.Errorf("es state = %+v", st)
	}
	h.waitActive("talk", "de")

	outES, outDE := h.subscribe(subject.Out("talk", "es")), h.subscribe(subject.Out("talk", "de"))
	capES, srcES := h.subscribe(subject.Caption("talk", "es")), h.subscribe(subject.SourceCaption("talk", "es"))
	// Two frames of speech: each session hears them mixed on its clock,
	// and its interpretation (the fake echoes) carries their capture time
	// and who spoke them.
	captured := time.Now().Add(-300 * time.Millisecond)
	h.publishAudio("talk", 1, tone(1000, 100*time.Millisecond), captured)
	h.publishAudio("talk", 2, tone(2000, 100*time.Millisecond), captured.Add(100*time.Millisecond))
	for _, sub := range []*nats.Subscription{outES, outDE} {
		var heard []int16
		for want := uint64(1); len(heard) < 2 || heard[len(heard)-1] != 2000; want++ {
			m := next(t, sub)
			f, seq := subject.FrameOf(m)
			if seq != want || f.Lang != "en" || f.Voice != VoiceAI {
				t.Fatalf("%s: message %d: seq %d, lang %q, voice %q", sub.Subject, want, seq, f.Lang, f.Voice)
			}
			if want == 1 && !f.Captured.Equal(captured) {
				t.Errorf("%s: capture %v, want %v", sub.Subject, f.Captured, captured)
			}
			heard = samplesOf(m.Data, heard)
		}
		if len(heard) != 2 || heard[0] != 1000 {
			t.Errorf("%s: heard %v, want the two frames in order", sub.Subject, heard)
		}
	}
	if f := <-es.appends; !f.Captured.Equal(captured) {
		t.Errorf("append captured %v, want %v", f.Captured, captured)
	}

	es.caption(3, "hola", false)
	if c := nextCaption(t, capES); c != (wire.Caption{Type: "caption", Lang: "es", Text: "hola", Segment: 3, SourceLanguage: "en"}) {
		t.Errorf("caption = %+v", c)
	}
	es.sourceCaption(4, "hello", true)
	if c := nextCaption(t, srcES); c != (wire.Caption{Type: "caption", Lang: "en", Text: "hello", Final: true, Segment: 4, Source: true, SourceLanguage: "en"}) {
		t.Errorf("source caption = %+v", c)
	}
	if n := eng.openCount("es") + eng.openCount("de"); n != 2 {
		t.Errorf("%d sessions opened, want 2", n)
	}

	// What this node serves is published, without targets: any language.
	e, err := h.bus.State.Get(context.Background(), livestate.EngineKey("tr1"))
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	if err := json.Unmarshal(e.Value(), &info); err != nil || info["engine"] != "fake" || info["targets"] != nil {
		t.Errorf("engine info = %s", e.Value())
	}
	_ = de
}

func TestNoListenersNoSessionUnlessAlwaysOn(t *testing.T) {
	h := newHarness(t)
	eng := newFakeEngine("fake")
	h.createRoom("talk", room.Language{Code: "es"}, room.Language{Code: "de", AlwaysOn: true})
	h.speaker("talk", true)
	h.start(eng, "tr1", nil)

	eng.waitOpen(t, "de")
	h.waitActive("talk", "de")
	absentFor(t, 1500*time.Millisecond, "es session without listeners", func() bool { return eng.openCount("es") > 0 })

	h.listeners("talk", "es", "fan1", 1)
	eng.waitOpen(t, "es")
	h.waitActive("talk", "es")
}

func TestNoSpeakerNoSession(t *testing.T) {
	h := newHarness(t)
	eng := newFakeEngine("fake")
	h.createRoom("talk", room.Language{Code: "es", AlwaysOn: true})
	h.listeners("talk", "es", "fan1", 3)
	h.start(eng, "tr1", nil)
	absentFor(t, 1500*time.Millisecond, "session without a speaker", func() bool { return eng.openCount("es") > 0 })
	h.speaker("talk", true)
	eng.waitOpen(t, "es")
}

func TestLingerThenClose(t *testing.T) {
	h := newHarness(t)
	eng := newFakeEngine("fake")
	h.liveTalk("es")
	const linger = time.Second
	h.start(eng, "tr1", func(o *Options) { o.Linger = linger })

	// The speaker leaves: the session stays for Linger, then closes.
	s := eng.waitOpen(t, "es")
	h.waitActive("talk", "es")
	gone := time.Now()
	h.speaker("talk", false)
	s.waitClosed(t)
	if d := time.Since(gone); d < linger {
		t.Errorf("closed %v after the speaker left, before the linger of %v", d, linger)
	}
	h.waitState("talk", "es", "deleted", absent)

	// The speaker is back; the last listener leaves: same.
	h.speaker("talk", true)
	s = eng.waitOpen(t, "es")
	h.waitActive("talk", "es")
	gone = time.Now()
	if err := h.bus.State.Delete(context.Background(), livestate.ListenersKey("talk", "es", "fan1")); err != nil {
		t.Fatal(err)
	}
	s.waitClosed(t)
	if d := time.Since(gone); d < linger {
		t.Errorf("closed %v after the last listener left, before the linger of %v", d, linger)
	}
	h.waitState("talk", "es", "deleted", absent)
	if _, err := h.bus.Leases.Get(context.Background(), subject.LeaseKey("talk", "es")); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("lease after release: %v", err)
	}
}

func TestLanguageRemovedAndChanged(t *testing.T) {
	h := newHarness(t)
	eng := newFakeEngine("fake")
	h.liveTalk("es", "de")
	w := h.start(eng, "tr1", func(o *Options) { o.Linger = time.Hour })

	es, de := eng.waitOpen(t, "es"), eng.waitOpen(t, "de")
	h.waitActive("talk", "es")
	h.waitActive("talk", "de")

	// Removing a language closes its session at once, despite the linger,
	// and flushes it: its last words are still published.
	outDE := h.subscribe(subject.Out("talk", "de"))
	h.updateRoom("talk", func(r *room.Room) { r.Languages = r.Languages[:1] })
	de.waitClosed(t)
	if m := next(t, outDE); string(m.Data) != string(flushPCM) {
		t.Errorf("flushed audio = %v", m.Data)
	} else if _, capt := subject.AudioMeta(m); !capt.IsZero() {
		t.Errorf("unknown capture time published as %v", capt)
	}
	h.waitState("talk", "de", "deleted", absent)
	if es.isClosed() {
		t.Fatal("es session closed with de")
	}

	// Changing a language's voice restarts its session with the new one;
	// caption lines of the new session follow the old session's.
	capES := h.subscribe(subject.Caption("talk", "es"))
	es.caption(0, "uno", true)
	if c := nextCaption(t, capES); c.Segment != 0 {
		t.Errorf("first segment = %d", c.Segment)
	}
	h.updateRoom("talk", func(r *room.Room) { r.Languages[0].Voice = "cedar" })
	es.waitClosed(t)
	if c := nextCaption(t, capES); c.Text != "flushed" || c.Segment != 99 {
		t.Errorf("flushed caption = %+v", c)
	}
	es2 := eng.waitOpen(t, "es")
	if es2.ch.Voice != "cedar" {
		t.Errorf("restarted with voice %q", es2.ch.Voice)
	}
	h.waitActive("talk", "es")
	es2.caption(0, "dos", false)
	if c := nextCaption(t, capES); c.Segment != 100 {
		t.Errorf("new session's first segment = %d, want 100", c.Segment)
	}

	// always_on is not a session setting: no restart.
	h.updateRoom("talk", func(r *room.Room) { r.Languages[0].AlwaysOn = true })
	// Deleting the room closes everything.
	if err := h.rooms.Delete(context.Background(), "talk"); err != nil {
		t.Fatal(err)
	}
	es2.waitClosed(t)
	if n := es2.closeCalls.Load(); n != 1 {
		t.Errorf("Close called %d times", n)
	}
	if eng.openCount("es") != 2 {
		t.Errorf("es opened %d times, want 2", eng.openCount("es"))
	}
	h.waitState("talk", "es", "deleted", absent)
	_ = w
}

func TestPermanentErrorNotRetried(t *testing.T) {
	h := newHarness(t)
	eng := newFakeEngine("fake")
	eng.openErr["es"] = []error{&engine.Error{Code: "invalid_api_key", Message: "the API key was refused", Permanent: true}}
	h.liveTalk("es")
	h.start(eng, "tr1", nil)

	st := h.waitState("talk", "es", "error", isState(livestate.StateError))
	if st.Error != "the API key was refused" {
		t.Errorf("error = %q", st.Error)
	}
	absentFor(t, 2500*time.Millisecond, "permanent error retried", func() bool { return eng.openCount("es") > 1 })

	// A session that fails permanently while running: same.
	h.updateRoom("talk", func(r *room.Room) { r.Languages[0].Voice = "ash" })
	s := eng.waitOpen(t, "es")
	h.waitActive("talk", "es")
	s.fail(&engine.Error{Code: "insufficient_quota", Message: "no quota left", Permanent: true})
	st = h.waitState("talk", "es", "error", isState(livestate.StateError))
	if st.Error != "no quota left" {
		t.Errorf("error = %q", st.Error)
	}
	absentFor(t, 2500*time.Millisecond, "permanent error retried", func() bool { return eng.openCount("es") > 2 })

	// Still no retry when the speaker comes back...
	h.speaker("talk", false)
	h.waitState("talk", "es", "released", absent)
	h.speaker("talk", true)
	h.waitState("talk", "es", "error again", isState(livestate.StateError))
	if eng.openCount("es") != 2 {
		t.Errorf("reopened after a permanent error: %d opens", eng.openCount("es"))
	}
	// ...but a configuration change retries.
	h.updateRoom("talk", func(r *room.Room) { r.Glossary = []room.GlossaryEntry{{Term: "NATS"}} })
	eng.waitOpen(t, "es")
	h.waitActive("talk", "es")
}

func TestTransientErrorRetried(t *testing.T) {
	h := newHarness(t)
	eng := newFakeEngine("fake")
	eng.openErr["es"] = []error{errors.New("dial tcp: connection refused")}
	h.liveTalk("es")
	h.start(eng, "tr1", nil)

	s := eng.waitOpen(t, "es") // after the failed first attempt
	if eng.openCount("es") != 2 {
		t.Errorf("opens = %d, want 2", eng.openCount("es"))
	}
	h.waitActive("talk", "es")

	s.fail(&engine.Error{Code: "server_error", Message: "the server had a hiccup"})
	st := h.waitState("talk", "es", "starting", isState(livestate.StateStarting))
	if st.Error != "the server had a hiccup" {
		t.Errorf("error while retrying = %q", st.Error)
	}
	eng.waitOpen(t, "es")
	st = h.waitActive("talk", "es")
	if st.Error != "" {
		t.Errorf("error still shown once active: %q", st.Error)
	}
	if s.closeCalls.Load() != 1 {
		t.Errorf("failed session closed %d times, want 1", s.closeCalls.Load())
	}
}

func TestTwoWorkersOneOwnerAndFailover(t *testing.T) {
	h := newHarness(t)
	h.liveTalk("es", "de")
	engines := map[string]*fakeEngine{"tr1": newFakeEngine("fake"), "tr2": newFakeEngine("fake")}
	workers := map[string]*worker{
		"tr1": h.start(engines["tr1"], "tr1", nil),
		"tr2": h.start(engines["tr2"], "tr2", nil),
	}
	owner := map[string]string{}
	for _, lang := range []string{"es", "de"} {
		owner[lang] = h.waitActive("talk", lang).Node
	}
	// Both workers know who holds each lease: neither will open more.
	for node, w := range workers {
		for lang, o := range owner {
			deadline := time.Now().Add(waitFor)
			for got, _ := w.view.lease(subject.LeaseKey("talk", lang)); got != o; got, _ = w.view.lease(subject.LeaseKey("talk", lang)) {
				if time.Now().After(deadline) {
					t.Fatalf("%s sees %s lease held by %q, not %q", node, lang, got, o)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	for _, lang := range []string{"es", "de"} {
		total := engines["tr1"].openCount(lang) + engines["tr2"].openCount(lang)
		if total != 1 || engines[owner[lang]].live(lang) != 1 {
			t.Errorf("%s: %d sessions opened, want exactly 1 (on %s)", lang, total, owner[lang])
		}
	}

	// The owner of es dies: the other node takes it over within 5 s.
	dead := owner["es"]
	other := map[string]string{"tr1": "tr2", "tr2": "tr1"}[dead]
	outES := h.subscribe(subject.Out("talk", "es"))
	killed := time.Now()
	workers[dead].die()
	// Its lease is left behind: the takeover cannot lean on a release.
	if e, err := h.bus.Leases.Get(context.Background(), subject.LeaseKey("talk", "es")); err != nil || string(e.Value()) != dead {
		t.Fatalf("es lease just after %s died: %v, %v", dead, e, err)
	}
	st := h.waitState("talk", "es", "active on "+other, func(st *livestate.Channel) bool {
		return st != nil && st.State == livestate.StateActive && st.Node == other
	})
	took := time.Since(killed)
	t.Logf("failover took %v", took)
	if took > 5*time.Second {
		t.Errorf("failover took %v, want at most 5s", took)
	}
	if engines[other].openCount("es") != 1 {
		t.Errorf("%s opened es %d times", other, engines[other].openCount("es"))
	}
	// Audio flows from the new owner; the dead one says nothing.
	h.publishAudio("talk", 1, tone(7, 200*time.Millisecond), time.Now())
	m := next(t, outES)
	if len(m.Data) < 2 || audio.Samples(m.Data)[0] != 7 {
		t.Errorf("audio after failover starts %v, want the frame sent", m.Data[:min(8, len(m.Data))])
	}
	// One voice: every message that follows continues the same
	// publisher's sequence.
	_, last := subject.FrameOf(m)
	for {
		m, err := outES.NextMsg(300 * time.Millisecond)
		if err != nil {
			break
		}
		if _, seq := subject.FrameOf(m); seq != last+1 {
			t.Fatalf("es audio sequence %d after %d: two nodes publish", seq, last)
		} else {
			last = seq
		}
	}
	_ = st
}

func TestMaxSessions(t *testing.T) {
	h := newHarness(t)
	eng := newFakeEngine("fake")
	h.liveTalk("es", "de")
	h.start(eng, "tr1", func(o *Options) { o.MaxSessions = 1 })

	var first, second string
	select {
	case s := <-eng.opened:
		first = s.ch.Target
	case <-time.After(waitFor):
		t.Fatal("no session opened")
	}
	second = map[string]string{"es": "de", "de": "es"}[first]
	h.waitActive("talk", first)
	st := h.waitState("talk", second, "capped", isState(livestate.StateError))
	if st.Error != "session cap of 1 reached" {
		t.Errorf("capped channel error = %q", st.Error)
	}
	if _, err := h.bus.Leases.Get(context.Background(), subject.LeaseKey("talk", second)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("capped channel holds a lease: %v", err)
	}
	if eng.openCount(second) != 0 {
		t.Errorf("%s opened beyond the cap", second)
	}

	// The first channel's listeners leave: the second gets its turn.
	if err := h.bus.State.Delete(context.Background(), livestate.ListenersKey("talk", first, "fan1")); err != nil {
		t.Fatal(err)
	}
	eng.waitOpen(t, second)
	h.waitActive("talk", second)
}

func TestSlowSessionDoesNotHoldUpOthers(t *testing.T) {
	h := newHarness(t)
	eng := newFakeEngine("fake")
	release := make(chan struct{})
	eng.block["es"] = release
	h.liveTalk("es", "de")
	h.start(eng, "tr1", nil)
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the worker stops
	es, de := eng.waitOpen(t, "es"), eng.waitOpen(t, "de")
	h.waitActive("talk", "es")
	h.waitActive("talk", "de")

	// Speech goes out 100 ms at a time, each frame a constant value; de
	// hears every one, in order, while es is stuck in Append.
	const frames = 30
	pcm := func(v int) []byte {
		s := make([]int16, audio.DurationBytes(100*time.Millisecond)/2)
		for k := range s {
			s[k] = int16(1000 + v)
		}
		return audio.Bytes(s)
	}
	start := time.Now()
	for i := range frames {
		h.publishAudio("talk", uint64(i+1), pcm(i), start.Add(time.Duration(i)*100*time.Millisecond))
		time.Sleep(100 * time.Millisecond) // a speaker's pace, not synchronization
	}
	var heard []int // the frame values de heard, each once
	deadline := time.After(waitFor)
	for len(heard) == 0 || heard[len(heard)-1] != frames-1 {
		select {
		case f := <-de.appends:
			for _, v := range audio.Samples(f.PCM) {
				if got := int(v) - 1000; got >= 0 && (len(heard) == 0 || heard[len(heard)-1] != got) {
					heard = append(heard, got)
				}
			}
		case <-deadline:
			t.Fatalf("de heard %v of %d frames while es was stuck", heard, frames)
		}
	}
	for i, v := range heard {
		if v != i {
			t.Fatalf("de heard frames %v: not every one, in order", heard)
		}
	}
	unblock()
	// es still hears the speech once it is unstuck.
	select {
	case <-es.appends:
	case <-time.After(waitFor):
		t.Fatal("es never heard anything once unstuck")
	}
}

func TestRunClosesSessionsOnShutdown(t *testing.T) {
	h := newHarness(t)
	eng := newFakeEngine("fake")
	h.liveTalk("es")
	w := h.start(eng, "tr1", nil)
	s := eng.waitOpen(t, "es")
	h.waitActive("talk", "es")
	out := h.subscribe(subject.Out("talk", "es"))

	w.stop(t)
	if n := s.closeCalls.Load(); n != 1 {
		t.Fatalf("Close called %d times", n)
	}
	if m := next(t, out); string(m.Data) != string(flushPCM) {
		t.Errorf("flushed audio not published: %v", m.Data)
	}
	ctx := context.Background()
	if _, err := h.bus.Leases.Get(ctx, subject.LeaseKey("talk", "es")); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("lease after shutdown: %v", err)
	}
	for _, key := range []string{livestate.ChannelKey("talk", "es"), livestate.EngineKey("tr1")} {
		if _, err := h.bus.State.Get(ctx, key); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("%s after shutdown: %v", key, err)
		}
	}
}

func TestEngineTargetsLimitChannels(t *testing.T) {
	h := newHarness(t)
	eng := newFakeEngine("fake")
	eng.targets = []string{"pt", "fr"}
	h.createRoom("talk", room.Language{Code: "pt-BR", AlwaysOn: true}, room.Language{Code: "ja", AlwaysOn: true})
	h.speaker("talk", true)
	h.start(eng, "tr1", nil)
	eng.waitOpen(t, "pt-BR")
	h.waitActive("talk", "pt-BR")
	e, err := h.bus.State.Get(context.Background(), livestate.EngineKey("tr1"))
	if err != nil {
		t.Fatal(err)
	}
	var info livestate.Engine
	if err := json.Unmarshal(e.Value(), &info); err != nil || len(info.Targets) != 2 {
		t.Errorf("engine info = %s", e.Value())
	}
	absentFor(t, time.Second, "ja opened by an engine without it", func() bool { return eng.openCount("ja") > 0 })
}

func TestNewChecksOptions(t *testing.T) {
	h := newHarness(t)
	good := Options{NC: h.bus.Conn, Rooms: h.rooms, State: h.bus.State, Leases: h.bus.Leases, Engine: newFakeEngine("fake"), Node: "tr1"}
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*Options){
		"no engine":    func(o *Options) { o.Engine = nil },
		"no node":      func(o *Options) { o.Node = "" },
		"dotted node":  func(o *Options) { o.Node = "a.b" },
		"no leases":    func(o *Options) { o.Leases = nil },
		"negative cap": func(o *Options) { o.MaxSessions = -1 },
	} {
		o := good
		change(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestBackoff(t *testing.T) {
	for attempt := 1; attempt <= 10; attempt++ {
		d := backoff(attempt, errors.New("x"))
		if d < minBackoff || d > maxBackoff {
			t.Errorf("attempt %d: %v outside [%v, %v]", attempt, d, minBackoff, maxBackoff)
		}
	}
	if d := backoff(8, errors.New("x")); d < 24*time.Second {
		t.Errorf("attempt 8: %v, want near the 30s cap", d)
	}
	if d := backoff(1, &engine.Error{Code: "rate_limited", RetryAfter: 45 * time.Second}); d != 45*time.Second {
		t.Errorf("RetryAfter ignored: %v", d)
	}
	if d := backoff(1, &engine.Error{Code: "session_expired"}); d != 0 {
		t.Errorf("expired session waits %v", d)
	}
}

func TestSessionSecondsAccumulate(t *testing.T) {
	h := newHarness(t)
	w, err := New(Options{NC: h.bus.Conn, Rooms: h.rooms, State: h.bus.State, Leases: h.bus.Leases, Engine: newFakeEngine("fake"), Node: "tr1"})
	if err != nil {
		t.Fatal(err)
	}
	c := w.newChannel(chanConfig{ch: engine.Channel{Room: "talk", Source: "en", Target: "es"}}).report
	c.seconds = 10 // from an earlier session or owner
	c.mu.Lock()
	c.sessStart = time.Now().Add(-3 * time.Second)
	c.lastAcct = c.sessStart
	c.st.State = livestate.StateActive
	c.putLocked()
	c.mu.Unlock()
	c.endSession()
	e, err := h.bus.State.Get(context.Background(), livestate.ChannelKey("talk", "es"))
	if err != nil {
		t.Fatal(err)
	}
	var st livestate.Channel
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		t.Fatal(err)
	}
	if st.SessionSeconds < 12.9 || st.SessionSeconds > 14 || st.Node != "tr1" || st.Engine != "fake" {
		t.Errorf("state = %+v, want about 13 session seconds", st)
	}
	if c.seconds < 13 {
		t.Errorf("seconds after the session ended = %v", c.seconds)
	}
}
