package fanout

import (
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/booth"
)

// TestProgramPicksTheInterpreterOrTheAI: a channel with a booth plays the
// interpreter on air (and none of the AI) from their first word, and the
// AI once nobody is on air.
func TestProgramPicksTheInterpreterOrTheAI(t *testing.T) {
	t.Parallel()
	now := time.Now()
	es := newProgram("es", false)
	ai := func() { es.pushInterp(audio.Frame{PCM: pcmOf(7, 100*time.Millisecond)}, now) }
	human := func(speech bool) {
		es.pushHuman(audio.Frame{PCM: pcmOf(40, 100*time.Millisecond), Mic: "c1", Lang: "es", Speech: speech, Voice: booth.Human}, 0, false, now)
	}
	ai()
	if f := tickAt(es, now); firstSample(f.full) != 7 || f.voice != booth.AI {
		t.Fatalf("nobody on air: %d (%s), want the AI (7)", firstSample(f.full), f.voice)
	}
	// On air, speaking: the interpreter only, though the AI goes on.
	for range 5 {
		ai()
		human(true)
		now = now.Add(es.tick)
	}
	f := tickAt(es, now)
	if firstSample(f.full) != 40 || firstSample(f.alone) != 40 || f.voice != booth.Human {
		t.Fatalf("interpreter on air: full %d, alone %d (%s), want the interpreter (40)", firstSample(f.full), firstSample(f.alone), f.voice)
	}
	// Hands over (an empty frame): the AI at once.
	es.pushHuman(audio.Frame{}, 0, false, now)
	ai()
	if f := es.compose(now.Add(es.tick)); f.voice != booth.AI || firstSample(f.full) == 40 {
		t.Fatalf("after the hand-over: %d (%s), want the AI", firstSample(f.full), f.voice)
	}
}
