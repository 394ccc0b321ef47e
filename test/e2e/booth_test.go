package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/ingest"
	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/audio/opus"
	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/wire"
	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/test/harness"
	"github.com/babelcast/babelcast/test/harness/service"
)

// interpreter is a booth connection as the booth page makes it: it streams
// its "voice" at real time (a tone standing for a language the room does
// not have, so a listener tells the interpreter from the AI; or silence),
// and keeps what the server says and sends back.
type interpreter struct {
	t    *testing.T
	name string
	conn *websocket.Conn
	wmu  sync.Mutex // writes

	tone atomic.Value  // string: the language whose tone it speaks, "" silence
	enc  *opus.Encoder // with "codec":"opus": what encodes its voice

	mu     sync.Mutex
	onAir  []wire.OnAir
	heard  []byte // what the booth sent back
	code   int    // the close code received
	closed chan struct{}
	cancel context.CancelFunc
}

// joinBooth connects an interpreter to the booth of lang (with query,
// e.g. "hear=es"), sends its start, and streams its voice until hangUp.
func joinBooth(t *testing.T, s *service.Service, room harness.Room, lang, name, query string) *interpreter {
	t.Helper()
	return joinBoothWith(t, s, room, lang, name, query, wire.CodecPCM)
}

// joinBoothWith is joinBooth with the interpreter's voice sent in codec.
func joinBoothWith(t *testing.T, s *service.Service, room harness.Room, lang, name, query, codec string) *interpreter {
	t.Helper()
	u := s.WS("/api/v1/rooms/" + room.ID + "/booth/" + lang + "?" + query)
	conn, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {"Bearer " + room.BoothKey(lang)}})
	if err != nil {
		t.Fatalf("booth %s: %v (%v)", lang, err, resp)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &interpreter{t: t, name: name, conn: conn, closed: make(chan struct{}), cancel: cancel}
	in.tone.Store("")
	if codec == wire.CodecOpus {
		if in.enc, err = opus.NewEncoder(0); err != nil {
			t.Fatal(err)
		}
	}
	in.send(map[string]any{"type": "start", "sample_rate": audio.Rate, "name": name, "codec": codec})
	go in.read()
	go in.stream(ctx)
	t.Cleanup(in.hangUp)
	return in
}

func (in *interpreter) send(v any) {
	b, _ := json.Marshal(v)
	in.wmu.Lock()
	defer in.wmu.Unlock()
	_ = in.conn.WriteMessage(websocket.TextMessage, b)
}

func (in *interpreter) read() {
	defer close(in.closed)
	for {
		mt, b, err := in.conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				in.mu.Lock()
				in.code = ce.Code
				in.mu.Unlock()
			}
			return
		}
		in.mu.Lock()
		if mt == websocket.BinaryMessage {
			in.heard = append(in.heard, b...)
		} else {
			var m wire.OnAir
			if json.Unmarshal(b, &m) == nil && m.Type == wire.TypeOnAir {
				in.onAir = append(in.onAir, m)
			}
		}
		in.mu.Unlock()
	}
}

// stream sends 100 ms of its voice every 100 ms, until ctx ends or the
// connection fails.
func (in *interpreter) stream(ctx context.Context) {
	livestate.Every(ctx, 100*time.Millisecond, func() {
		if err := in.sendVoice(); err != nil {
			in.cancel()
		}
	})
}

// sendVoice sends 100 ms of its voice: its tone, or silence.
func (in *interpreter) sendVoice() error {
	pcm := fakerealtime.Silence(100 * time.Millisecond)
	if l := in.tone.Load().(string); l != "" {
		pcm = fakerealtime.Speech(l, 100*time.Millisecond) // whole cycles: seamless
	}
	msg := pcm
	if in.enc != nil {
		msg = nil
		samples := audio.Samples(pcm)
		for i := 0; i+opus.FrameSamples <= len(samples); i += opus.FrameSamples {
			p, err := in.enc.Encode(nil, samples[i:i+opus.FrameSamples])
			if err != nil {
				return err
			}
			msg = opus.AppendFramed(msg, p)
		}
	}
	in.wmu.Lock()
	defer in.wmu.Unlock()
	return in.conn.WriteMessage(websocket.BinaryMessage, msg)
}

// speak makes the interpreter speak lang's tone ("" falls silent).
func (in *interpreter) speak(lang string) { in.tone.Store(lang) }

// lastOnAir is the last on_air message received.
func (in *interpreter) lastOnAir() (wire.OnAir, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.onAir) == 0 {
		return wire.OnAir{}, false
	}
	return in.onAir[len(in.onAir)-1], true
}

// awaitOnAir waits until the interpreter is told it is (or is not) on air,
// with name on air.
func (in *interpreter) awaitOnAir(onAir bool, name string) {
	in.t.Helper()
	harness.WaitFor(in.t, 5*time.Second, in.name+" told who is on air", func() bool {
		m, ok := in.lastOnAir()
		return ok && m.OnAir == onAir && m.Name == name
	})
}

// heardAudio is what the booth sent back so far.
func (in *interpreter) heardAudio() []byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]byte(nil), in.heard...)
}

// awaitClose waits for the server to close the connection after what,
// and checks the close code it gave.
func (in *interpreter) awaitClose(what string, want int) {
	in.t.Helper()
	select {
	case <-in.closed:
	case <-time.After(5 * time.Second):
		in.t.Fatalf("%s did not close the booth connection", what)
	}
	in.mu.Lock()
	code := in.code
	in.mu.Unlock()
	if code != want {
		in.t.Errorf("%s closed the booth connection with %d, want %d", what, code, want)
	}
}

// hangUp closes the connection as a browser does.
func (in *interpreter) hangUp() {
	in.cancel()
	in.wmu.Lock()
	_ = in.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	in.wmu.Unlock()
	select {
	case <-in.closed:
	case <-time.After(3 * time.Second):
	}
	in.conn.Close()
}

// firstHeard is when a listener first received lang's tone after t0.
func firstHeard(rec *recording, t0 time.Time, lang string) time.Time {
	return rec.firstAudioAfter(t0, lang)
}

// heardBetween counts the 100 ms blocks of lang's tone a listener received
// between from and to.
func heardBetween(rec *recording, from, to time.Time, lang string) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	block := audio.DurationBytes(100 * time.Millisecond)
	n, off := 0, 0
	for _, f := range rec.frames {
		for k := 0; k+block <= f.bytes; k += block {
			at := f.at.Add(audio.BytesDuration(k))
			b := rec.pcm[off+k : off+k+block]
			if at.After(from) && at.Before(to) && fakerealtime.RMS(b) > 0.01 && fakerealtime.Goertzel(b, fakerealtime.ToneHz(lang)) > 0.5 {
				n++
			}
		}
		off += f.bytes
	}
	return n
}

// inputMs is the audio the fake model was sent for channel lang so far.
func inputMs(s *service.Service, lang string) int64 {
	var n int64
	for _, si := range s.Fake.Sessions() {
		if si.Lang == lang {
			n += si.InputMs
		}
	}
	return n
}

// TestBoothInterpreterWithTheAIAsSafetyNet: a Spanish channel with a booth,
// a talk in English that does not stop. The AI interprets until the
// interpreter (who "speaks" German's tone) takes the air; then listeners
// hear the interpreter and none of the AI, and the model is fed nothing;
// when the interpreter falls silent 4 s while the floor speaks, mutes or
// hangs up, the AI is heard within 2 s; and the interpreter again from
// their next word.
func TestBoothInterpreterWithTheAIAsSafetyNet(t *testing.T) {
	t.Parallel()
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{}})
	room := s.API.CreateRoom(`{"id":"booth","name":"Booth","source_language":"en","languages":[{"code":"es","booth":true}]}`)
	if room.BoothKey("es") == "" || room.Links.Booths["es"] == "" {
		t.Fatalf("no booth key or link for es: %+v", room)
	}
	aud := newAudience(t, s, room.ID)
	es := aud.listen("es", "")
	aud.await("es")
	speakInBackground(t, s.URL(), room, newEndlessSpeech(2*time.Second, 300*time.Millisecond))
	t0 := time.Now()
	harness.WaitFor(t, 10*time.Second, "the AI heard", func() bool { return !firstHeard(es, t0, "es").IsZero() })

	ines := joinBooth(t, s, room, "es", "Ines", "")
	ines.awaitOnAir(false, "")
	ines.speak("de")
	ines.send(map[string]string{"type": wire.TypeTake})
	ines.awaitOnAir(true, "Ines")
	took := time.Now()
	harness.WaitFor(t, 3*time.Second, "the interpreter heard", func() bool { return !firstHeard(es, took, "de").IsZero() })
	t.Logf("interpreter heard %v after take", firstHeard(es, took, "de").Sub(took).Round(10*time.Millisecond))

	// On air and speaking: the interpreter only, and the model fed nothing
	// once its top-up of silence (5 s) is over.
	settled := time.Now().Add(time.Second)
	harness.WaitFor(t, 15*time.Second, "8 s of the interpreter", func() bool {
		return heardBetween(es, settled, time.Now(), "de") >= 80
	})
	if n := heardBetween(es, settled, time.Now(), "es"); n > 0 {
		t.Errorf("listeners heard %d blocks of the AI while the interpreter spoke", n)
	}
	before, at := inputMs(s, "es"), time.Now()
	harness.WaitFor(t, 10*time.Second, "3 more s of the interpreter", func() bool {
		return heardBetween(es, at, time.Now(), "de") >= 30
	})
	fed := inputMs(s, "es") - before
	t.Logf("cost: the model was fed %d ms of audio in the 3 s while the interpreter spoke", fed)
	if fed > 200 {
		t.Errorf("the model was fed %d ms of audio in 3 s while the interpreter spoke", fed)
	}
	if st := esVoice(t, s, room); st != "human" {
		t.Errorf("state voice %q while the interpreter speaks, want human", st)
	}

	// Silent while the floor speaks: the AI within 4 + 2 s.
	ines.speak("")
	quiet := time.Now()
	harness.WaitFor(t, 8*time.Second, "the AI after the interpreter's silence", func() bool { return !firstHeard(es, quiet, "es").IsZero() })
	delay := firstHeard(es, quiet, "es").Sub(quiet)
	t.Logf("silent interpreter: AI heard %v after their last word", delay.Round(10*time.Millisecond))
	if delay < 3500*time.Millisecond || delay > 6*time.Second {
		t.Errorf("the AI took over %v after the interpreter fell silent, want 4–6 s", delay)
	}
	// Their next word brings them back.
	ines.speak("de")
	back := time.Now()
	harness.WaitFor(t, 2*time.Second, "the interpreter back", func() bool { return !firstHeard(es, back, "de").IsZero() })
	t.Logf("interpreter back %v after their next word", firstHeard(es, back, "de").Sub(back).Round(10*time.Millisecond))

	// Mute: the AI within 2 s; unmute and speak: the interpreter. The AI
	// is cold first (nothing fed for 7 s, its top-up of silence over), so
	// the delay measured is the whole takeover.
	cold(t, es, s)
	ines.send(map[string]any{"type": wire.TypeMute, "muted": true})
	muted := time.Now()
	aiWithin2s(t, es, muted, "mute")
	if n := heardBetween(es, muted.Add(500*time.Millisecond), time.Now(), "de"); n > 0 {
		t.Errorf("a muted interpreter was heard (%d blocks)", n)
	}
	ines.send(map[string]any{"type": wire.TypeMute, "muted": false})
	unmuted := time.Now()
	harness.WaitFor(t, 3*time.Second, "the interpreter after unmute", func() bool { return !firstHeard(es, unmuted, "de").IsZero() })

	// Hang up: the AI within 2 s.
	cold(t, es, s)
	ines.hangUp()
	aiWithin2s(t, es, time.Now(), "the interpreter hung up")
	if st := esVoice(t, s, room); st != "ai" {
		t.Errorf("state voice %q with nobody in the booth, want ai", st)
	}
}

// aiWithin2s checks that a listener of es heard the AI's Spanish within
// 2 s of since, when what happened.
func aiWithin2s(t *testing.T, es *recording, since time.Time, what string) {
	t.Helper()
	harness.WaitFor(t, 4*time.Second, "the AI after "+what, func() bool { return !firstHeard(es, since, "es").IsZero() })
	if d := firstHeard(es, since, "es").Sub(since); d > 2*time.Second {
		t.Errorf("the AI took over %v after %s, want within 2 s", d, what)
	} else {
		t.Logf("%s: AI heard %v after", what, d.Round(10*time.Millisecond))
	}
}

// cold waits until the interpreter has spoken 7 s on end and the es model
// has been fed nothing for the last 2 of them.
func cold(t *testing.T, es *recording, s *service.Service) {
	t.Helper()
	from := time.Now()
	var fed int64
	var at time.Time
	harness.WaitFor(t, 20*time.Second, "7 s of the interpreter, the model idle", func() bool {
		if heardBetween(es, from, time.Now(), "de") < 50 {
			return false
		}
		if n := inputMs(s, "es"); n != fed || at.IsZero() {
			fed, at = n, time.Now()
		}
		return time.Since(at) >= 2*time.Second && heardBetween(es, from, time.Now(), "de") >= 70
	})
}

// esVoice is the voice a new listener of es is told.
func esVoice(t *testing.T, s *service.Service, room harness.Room) string {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(s.WS("/api/v1/rooms/"+room.ID+"/listen?lang=es"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		mt, b, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("no state: %v", err)
		}
		var m wire.State
		if mt == websocket.TextMessage && json.Unmarshal(b, &m) == nil && m.Type == wire.TypeState {
			return m.Voice
		}
	}
}

// blocksOf lists when each 100 ms block of lang's tone reached a listener.
func blocksOf(rec *recording, lang string) []time.Time {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	block := audio.DurationBytes(100 * time.Millisecond)
	var out []time.Time
	off := 0
	for _, f := range rec.frames {
		for k := 0; k+block <= f.bytes; k += block {
			b := rec.pcm[off+k : off+k+block]
			if fakerealtime.RMS(b) > 0.01 && fakerealtime.Goertzel(b, fakerealtime.ToneHz(lang)) > 0.5 {
				out = append(out, f.at.Add(audio.BytesDuration(k)))
			}
		}
		off += f.bytes
	}
	return out
}

// toneIn reports whether pcm holds at least d of lang's tone.
func toneIn(pcm []byte, lang string, d time.Duration) bool { return duration(pcm, lang) >= d }

// TestBoothHandoverAndRelay: two interpreters share the Spanish booth and
// hand over while both speak (Ines "speaks" German's tone, Bea Italian's):
// listeners hear Ines, then Bea from her first word, with no overlap and
// no gap over 300 ms, and both are told who is on air. A French
// interpreter relays from Spanish (?hear=es): they hear the Spanish
// channel's AI, then its interpreter; one on the floor hears the speaker.
func TestBoothHandoverAndRelay(t *testing.T) {
	t.Parallel()
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{}})
	room := s.API.CreateRoom(`{"id":"relay","name":"Relay","source_language":"en",
		"languages":[{"code":"es","booth":true},{"code":"fr","booth":true}]}`)
	aud := newAudience(t, s, room.ID)
	es := aud.listen("es", "")
	aud.listen("fr", "") // the French AI runs, and transcribes the floor
	aud.await("es", "fr")
	relay := joinBooth(t, s, room, "fr", "Rémi", "hear=es")
	floor := joinBooth(t, s, room, "fr", "Flo", "")
	// Sentences of 2 s with pauses of 0.5 s: the fake model ends a
	// sentence, and a caption line, at 400 ms of silence.
	speakInBackground(t, s.URL(), room, newEndlessSpeech(2*time.Second, 500*time.Millisecond))
	harness.WaitFor(t, 10*time.Second, "the relay hears the Spanish AI", func() bool {
		return toneIn(relay.heardAudio(), "es", time.Second)
	})
	harness.WaitFor(t, 5*time.Second, "the floor booth hears the speaker", func() bool {
		return toneIn(floor.heardAudio(), "en", time.Second)
	})

	ines := joinBooth(t, s, room, "es", "Ines", "")
	bea := joinBooth(t, s, room, "es", "Bea", "")
	ines.speak("de")
	bea.speak("it") // off air: nobody hears her yet
	ines.send(map[string]string{"type": wire.TypeTake})
	bea.awaitOnAir(false, "Ines")
	ines.awaitOnAir(true, "Ines")
	took := time.Now()
	harness.WaitFor(t, 5*time.Second, "2 s of Ines", func() bool { return heardBetween(es, took, time.Now(), "de") >= 20 })
	if n := heardBetween(es, took, time.Now(), "it"); n > 0 {
		t.Errorf("Bea, off air, was heard (%d blocks)", n)
	}
	harness.WaitFor(t, 5*time.Second, "the relay hears Ines", func() bool {
		return toneIn(relay.heardAudio(), "de", time.Second)
	})

	// Captions go on while Ines is on air: the floor's own words (babelcast
	// does not transcribe interpreters), from the French AI's session.
	lines := len(es.finalLines())
	harness.WaitFor(t, 15*time.Second, "floor captions on the Spanish channel while Ines is on air", func() bool {
		got := es.finalLines()
		return len(got) > lines && got[len(got)-1].Source
	})

	bea.send(map[string]string{"type": wire.TypeTake})
	bea.awaitOnAir(true, "Bea")
	ines.awaitOnAir(false, "Bea")
	handed := time.Now()
	harness.WaitFor(t, 5*time.Second, "2 s of Bea", func() bool { return heardBetween(es, handed, time.Now(), "it") >= 20 })
	aud.stop()

	de, it := blocksOf(es, "de"), blocksOf(es, "it")
	if len(de) == 0 || len(it) == 0 {
		t.Fatalf("heard %d blocks of Ines and %d of Bea", len(de), len(it))
	}
	lastInes, firstBea := de[len(de)-1], it[0]
	if lastInes.After(firstBea) {
		t.Errorf("Ines and Bea overlap: Ines until %v after Bea began", lastInes.Sub(firstBea))
	}
	gap := firstBea.Sub(lastInes) - 100*time.Millisecond
	t.Logf("handover: %v of silence between Ines's last and Bea's first block", gap.Round(10*time.Millisecond))
	if gap > 300*time.Millisecond {
		t.Errorf("handover left a gap of %v, want at most 300 ms", gap)
	}
	if n := heardBetween(es, handed, time.Now(), "es"); n > 0 {
		t.Errorf("the AI was heard (%d blocks) during the handover", n)
	}
}

// TestBoothRefusesBadInput: the booth's door and messages. A wrong key,
// a language without a booth, a relay of a channel the room has not and a
// codec it does not serve are refused before the upgrade; a plain GET
// with the key tells the booth page the glossary; a bad message closes
// with 1008; rotating the keys closes the booth's connections.
func TestBoothRefusesBadInput(t *testing.T) {
	t.Parallel()
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{}})
	room := s.API.CreateRoom(`{"id":"door","source_language":"en","languages":[{"code":"es","booth":true},{"code":"fr"}],
		"glossary":[{"term":"NATS","note":"keep"}]}`)
	key := room.BoothKey("es")
	get := func(path, key string) (int, string) {
		req, _ := http.NewRequest("GET", s.URL()+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b [4096]byte
		n, _ := resp.Body.Read(b[:])
		return resp.StatusCode, string(b[:n])
	}
	base := "/api/v1/rooms/door/booth/"
	for _, c := range []struct {
		path, key string
		status    int
	}{
		{base + "es", "", http.StatusUnauthorized},
		{base + "es", "bth_wrong", http.StatusUnauthorized},
		{base + "es", room.SpeakerKey, http.StatusUnauthorized},
		{base + "fr", key, http.StatusNotFound},
		{base + "xx-not-a-language", key, http.StatusNotFound},
		// Without one of the room's booth keys, a language without a
		// booth looks like a booth with another key.
		{base + "fr", "bth_wrong", http.StatusUnauthorized},
		{base + "fr", "", http.StatusUnauthorized},
		{base + "xx-not-a-language", "", http.StatusUnauthorized},
		{"/api/v1/rooms/nope/booth/es", key, http.StatusNotFound},
		{base + "es?hear=es", key, http.StatusBadRequest},
		{base + "es?hear=de", key, http.StatusBadRequest},
		{base + "es?codec=mp3", key, http.StatusBadRequest},
	} {
		if st, body := get(c.path, c.key); st != c.status {
			t.Errorf("GET %s: %d %s, want %d", c.path, st, body, c.status)
		}
	}
	if st, body := get(base+"es?hear=fr", key); st != http.StatusOK || !strings.Contains(body, `"term":"NATS"`) || strings.Contains(body, key) {
		t.Errorf("key check: %d %s", st, body)
	}

	in := joinBooth(t, s, room, "es", "Ines", "")
	in.send(map[string]string{"type": "dance"})
	in.awaitClose("a bad message", wire.CloseBadMessage)

	other := joinBooth(t, s, room, "es", "Bea", "")
	other.awaitOnAir(false, "")
	// A booth takes MaxInterpreters connections, then 429.
	for range ingest.MaxInterpreters - 1 {
		joinBooth(t, s, room, "es", "Spare", "")
	}
	if _, resp, err := websocket.DefaultDialer.Dial(s.WS(base+"es"), http.Header{"Authorization": {"Bearer " + key}}); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("one interpreter over the maximum: %v %v, want 429", err, resp)
	}
	if code := s.API.Call("PATCH", "/api/v1/rooms/door", `{"rotate_booth_keys":true}`, nil); code != http.StatusOK {
		t.Fatalf("rotate: %d", code)
	}
	other.awaitClose("rotating the keys (key_rotated)", wire.CloseBadMessage)
}

// TestBoothHearsOpus: with ?codec=opus the booth's feed is length-prefixed
// 20 ms Opus packets at 48 kHz, as a listener's, and decodes to the floor.
func TestBoothHearsOpus(t *testing.T) {
	t.Parallel()
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{}})
	room := s.API.CreateRoom(`{"id":"opus","source_language":"en","languages":[{"code":"es","booth":true}]}`)
	conn, _, err := websocket.DefaultDialer.Dial(s.WS("/api/v1/rooms/opus/booth/es?codec=opus"),
		http.Header{"Authorization": {"Bearer " + room.BoothKey("es")}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	speakInBackground(t, s.URL(), room, newEndlessSpeech(0, 0))
	dec, err := opus.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var ready wire.BoothReady
	var pcm []int16
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	for len(pcm) < 2*audio.Rate {
		mt, b, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("after %d samples: %v", len(pcm), err)
		}
		if mt == websocket.TextMessage {
			if ready.Type == "" {
				_ = json.Unmarshal(b, &ready)
			}
			continue
		}
		packets, err := opus.SplitFramed(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range packets {
			if pcm, err = dec.Decode(pcm, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ready.Codec != "opus" || ready.SampleRate != 48000 {
		t.Errorf("ready %+v, want codec opus at 48000", ready)
	}
	if got := duration(audio.Bytes(pcm[audio.Rate/2:]), "en"); got < time.Second {
		t.Errorf("decoded %v of the floor's tone in 1.5 s of the feed", got)
	}
}

// TestBoothSpeaksOpus: an interpreter may send Opus (start "codec":"opus",
// length-prefixed packets, as a speaker); listeners hear them, and a packet
// that is not Opus closes the connection with bad_audio.
func TestBoothSpeaksOpus(t *testing.T) {
	t.Parallel()
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{}})
	room := s.API.CreateRoom(`{"id":"opusin","source_language":"en","languages":[{"code":"es","booth":true}]}`)
	aud := newAudience(t, s, room.ID)
	es := aud.listen("es", "")
	aud.await("es")
	ines := joinBoothWith(t, s, room, "es", "Ines", "", wire.CodecOpus)
	ines.awaitOnAir(false, "")
	ines.speak("de")
	ines.send(map[string]string{"type": wire.TypeTake})
	ines.awaitOnAir(true, "Ines")
	took := time.Now()
	harness.WaitFor(t, 10*time.Second, "a second of the interpreter's Opus", func() bool {
		return heardBetween(es, took, time.Now(), "de") >= 10
	})

	ines.wmu.Lock()
	_ = ines.conn.WriteMessage(websocket.BinaryMessage, []byte{0, 9, 1, 2}) // says 9 bytes, has 2
	ines.wmu.Unlock()
	ines.awaitClose("bad Opus framing (bad_audio)", wire.CloseBadAudio)
}
