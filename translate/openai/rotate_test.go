package openai

import (
	"testing"
	"time"

	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/translate/engine"
)

// Connections that live shorter than RotateBefore (here 4 s against the
// default 3 minutes) are moved from halfway through their life: before
// rotateAt, every fresh connection was "about to expire" at once and the
// session opened a new one every tick.
func TestShortLivedConnectionsDoNotRotateInALoop(t *testing.T) {
	fake := newFake(t, fakerealtime.Options{SessionDuration: 4 * time.Second, ResponseSpeed: 10})
	e := newEngine(t, fake, nil)
	es := open(t, e, engine.Channel{Room: "r", Source: "en", Target: "es"}, newSink())
	nl := open(t, e, nlChannel, newSink())
	// 5 s of speaker audio, 300 ms of speech a second, at real-time pace,
	// through connections that live 4 s.
	speech, silence := fakerealtime.Speech("en", 20*time.Millisecond), fakerealtime.Silence(20*time.Millisecond)
	start := time.Now()
	for i := range 250 {
		frame := silence
		if i%50 < 15 {
			frame = speech
		}
		for _, s := range []engine.Session{es, nl} {
			if err := s.Append(frame, start.Add(time.Duration(i)*20*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * 20 * time.Millisecond))) // pacing the speaker
	}
	for _, ep := range []fakerealtime.Endpoint{fakerealtime.Translate, fakerealtime.Realtime} {
		ss := sessionsOf(fake, ep)
		// One move at 2 s, one at 4 s (the second connection, opened at
		// about 2 s, halfway at 4 s): at most 4 with the first.
		if len(ss) < 2 || len(ss) > 4 {
			t.Errorf("%s: %d connections in 5 s of connections that live 4 s, want 2..4", ep, len(ss))
		}
		for _, si := range ss {
			if si.CloseReason == "session expired" {
				t.Errorf("%s: connection %s ran into its expiry", ep, si.ID)
			}
		}
	}
}
