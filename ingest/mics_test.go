package ingest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/question"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
)

// startMic connects a speaker that starts as mic with the given name and
// language, and returns it once ready.
func (e *env) startMic(t *testing.T, mic, name, lang string) *websocket.Conn {
	t.Helper()
	c := e.speak(e.http)
	b, _ := json.Marshal(map[string]any{"type": "start", "mic": mic, "name": name, "language": lang})
	if err := c.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
	next(t, c, "ready")
	return c
}

// micFrames are the frames the room's mics publish, kept by mic.
type micFrames struct {
	ch    chan *nats.Msg
	byMic map[string][]audio.Frame
}

// micFrames subscribes to every mic of the room.
func (e *env) micFrames(t *testing.T) *micFrames {
	t.Helper()
	mf := &micFrames{ch: make(chan *nats.Msg, 1024), byMic: map[string][]audio.Frame{}}
	sub, err := e.bus.Conn.ChanSubscribe(subject.Mics("keynote"), mf.ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := e.bus.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	return mf
}

// nextFrame waits for the next frame of mic.
func nextFrame(t *testing.T, mf *micFrames, mic string) audio.Frame {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for len(mf.byMic[mic]) == 0 {
		select {
		case m := <-mf.ch:
			f, _ := subject.FrameOf(m)
			mf.byMic[f.Mic] = append(mf.byMic[f.Mic], f)
		case <-deadline:
			t.Fatalf("no frame of mic %s", mic)
		}
	}
	f := mf.byMic[mic][0]
	mf.byMic[mic] = mf.byMic[mic][1:]
	return f
}

func speech(d time.Duration) []byte {
	s := make([]int16, audio.DurationBytes(d)/2)
	for i := range s {
		s[i] = int16(8000 * ((i/20%2)*2 - 1)) // a loud 600 Hz square wave
	}
	return audio.Bytes(s)
}

func TestSeveralMicsLiveAtOnce(t *testing.T) {
	e := newEnv(t, nil)
	frames := e.micFrames(t)
	main := e.startMic(t, "main", "", "")
	guest := e.startMic(t, "guest", "  Ana\n María  ", "es")

	// Both are live: each publishes on its own subject, saying who speaks
	// which language, and whether the frame holds speech.
	main.WriteMessage(websocket.BinaryMessage, speech(200*time.Millisecond))
	guest.WriteMessage(websocket.BinaryMessage, speech(200*time.Millisecond))
	if f := nextFrame(t, frames, "main"); f.Lang != "en" || f.Speaker != "" || f.Captured.IsZero() {
		t.Errorf("main's frame: lang %q, speaker %q, captured %v", f.Lang, f.Speaker, f.Captured)
	}
	g := nextFrame(t, frames, "guest")
	if g.Lang != "es" || g.Speaker != "Ana María" || !g.Speech {
		t.Errorf("guest's frame: lang %q, speaker %q, speech %v", g.Lang, g.Speaker, g.Speech)
	}
	// Each has its entry; the status both get lists both.
	live, err := livestate.ReadRoom(context.Background(), e.bus.State, "keynote")
	if err != nil {
		t.Fatal(err)
	}
	if m := live.Mics["guest"]; m.Language != "es" || m.Name != "Ana María" || m.Node != "n1" || len(live.Mics) != 2 {
		t.Errorf("mics in the state bucket: %+v", live.Mics)
	}
	for st := next(t, main, "status"); len(st.Mics) != 2; st = next(t, main, "status") {
	}

	// The guest switches to English mid-talk: her frames say so.
	guest.WriteMessage(websocket.TextMessage, []byte(`{"type":"language","language":"en"}`))
	guest.WriteMessage(websocket.BinaryMessage, speech(200*time.Millisecond))
	deadline := time.Now().Add(10 * time.Second)
	for nextFrame(t, frames, "guest").Lang != "en" {
		if time.Now().After(deadline) {
			t.Fatal("guest's frames never said English after the switch")
		}
	}
	// A silence frame is not speech.
	main.WriteMessage(websocket.BinaryMessage, make([]byte, audio.DurationBytes(time.Second)))
	deadline = time.Now().Add(10 * time.Second)
	for nextFrame(t, frames, "main").Speech {
		if time.Now().After(deadline) {
			t.Fatal("main's silence still counted as speech")
		}
	}

	// The main mic hangs up: the guest goes on.
	main.Close()
	guest.WriteMessage(websocket.BinaryMessage, speech(200*time.Millisecond))
	nextFrame(t, frames, "guest")
}

func TestMicRefusals(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.rooms.Update(context.Background(), func() *room.Room {
		r := *e.room
		r.MaxMics = 2
		return &r
	}(), 1); err != nil {
		t.Fatal(err)
	}
	e.startMic(t, "a", "", "")
	e.startMic(t, "b", "", "de")
	for _, tc := range []struct {
		name, start, code string
	}{
		{"a third mic", `{"type":"start","mic":"c"}`, "too_many_mics"},
		{"a language the room has not", `{"type":"start","mic":"a","language":"fr"}`, "bad_language"},
		{"a mic id of the wrong shape", `{"type":"start","mic":"Panel 2"}`, "bad_mic"},
		{"a question's mic", `{"type":"start","mic":"q-17"}`, "bad_mic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.speak(e.http)
			c.WriteMessage(websocket.TextMessage, []byte(tc.start))
			msgs, code := readUntilClose(t, c)
			if code != websocket.ClosePolicyViolation || lastError(msgs).Code != tc.code {
				t.Errorf("close %d, error %+v; want 1008 %s", code, lastError(msgs), tc.code)
			}
		})
	}
	// Taking over a live mic is no extra mic: it is let in.
	e.startMic(t, "a", "", "")
	// A bad switch closes too.
	b := e.startMic(t, "b", "", "de")
	b.WriteMessage(websocket.TextMessage, []byte(`{"type":"language","language":"xx-nope"}`))
	if msgs, code := readUntilClose(t, b); code != websocket.ClosePolicyViolation || lastError(msgs).Code != "bad_language" {
		t.Errorf("bad switch: close %d, %+v", code, lastError(msgs))
	}
}

func TestAcceptedQuestionSpeaksAsItsOwnMic(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	qs := question.NewStore(e.bus.Questions)
	q, token, err := qs.Ask(ctx, "keynote", "Zoé", "de")
	if err != nil {
		t.Fatal(err)
	}
	// Waiting: not yet.
	if _, resp, err := e.dial(e.http, token); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("a waiting question connected: %v %v", resp, err)
	}
	if _, resp, err := e.dial(e.http, "qtk_"+q.ID+"_forged"); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("a forged token connected: %v %v", resp, err)
	}
	if _, err := qs.SetState(ctx, "keynote", q.ID, question.Accepted); err != nil {
		t.Fatal(err)
	}
	frames := e.micFrames(t)
	c, _, err := e.dial(e.http, token)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Whatever the start says, a question is its own mic, in its language.
	c.WriteMessage(websocket.TextMessage, []byte(`{"type":"start","mic":"main","language":"en"}`))
	if r := next(t, c, "ready"); r.Mic != "q-"+q.ID || r.Language != "de" {
		t.Fatalf("ready %+v, want mic q-%s in de", r, q.ID)
	}
	c.WriteMessage(websocket.BinaryMessage, speech(200*time.Millisecond))
	if f := nextFrame(t, frames, "q-"+q.ID); f.Lang != "de" || f.Speaker != "Zoé" {
		t.Errorf("question's frame: %+v", f)
	}
	// The question ends: its mic is closed, normally.
	if _, err := qs.SetState(ctx, "keynote", q.ID, question.Ended); err != nil {
		t.Fatal(err)
	}
	if _, code := readUntilClose(t, c); code != websocket.CloseNormalClosure {
		t.Errorf("ended question's mic closed with %d, want 1000", code)
	}
}
