package fanout

import (
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
)

// pcmOf is d of every sample v.
func pcmOf(v int16, d time.Duration) []byte {
	s := make([]int16, audio.DurationBytes(d)/2)
	for i := range s {
		s[i] = v
	}
	return audio.Bytes(s)
}

// micFrame is d of every sample v from mic, in lang, speech or room sound.
func micFrame(mic, lang string, v int16, d time.Duration, speech bool) audio.Frame {
	return audio.Frame{PCM: pcmOf(v, d), Mic: mic, Lang: lang, Speech: speech}
}

// firstSample is the first sample of pcm, 0 for none.
func firstSample(pcm []byte) int16 {
	if len(pcm) < 2 {
		return 0
	}
	return audio.Samples(pcm[:2])[0]
}

// tickAt composes ticks until one has audio in full (or gives up).
func tickAt(p *program, now time.Time) programFrame {
	for range 10 {
		if f := p.compose(now); f.full != nil {
			return f
		}
		now = now.Add(p.tick)
	}
	return programFrame{}
}

func TestProgramOriginalInItsLanguageInterpretationOtherwise(t *testing.T) {
	t.Parallel()
	now := time.Now()
	es := newProgram("es", false)
	// English on the floor is not played on es; its interpretation is.
	es.pushMic(micFrame("m-en", "en", 100, 300*time.Millisecond, true), now)
	es.pushInterp(audio.Frame{PCM: pcmOf(7, 300*time.Millisecond)}, now)
	f := tickAt(es, now)
	if firstSample(f.full) != 7 || firstSample(f.alone) != 7 {
		t.Fatalf("English floor: full plays %d, alone %d; want the interpretation (7)", firstSample(f.full), firstSample(f.alone))
	}

	// Spanish on the floor: the original, with the interpretation still
	// playing ducked under it; without passthrough, the interpretation.
	es.pushMic(micFrame("m-es", "es", 1000, 300*time.Millisecond, true), now)
	f = es.compose(now.Add(200 * time.Millisecond))
	if got, want := firstSample(f.full), int16(1001); got != want { // 1000 + 7 × 0.25, truncated
		t.Fatalf("Spanish floor over an interpretation: %d, want %d (original + ducked interpretation)", got, want)
	}
	if firstSample(f.alone) != 7 {
		t.Fatalf("without passthrough: %d, want the interpretation alone (7)", firstSample(f.alone))
	}
}

func TestProgramMicWithoutSpeechPlaysOnlyWhenNothingElseDoes(t *testing.T) {
	t.Parallel()
	now := time.Now()
	en := newProgram("en", false)
	en.pushMic(micFrame("main", "en", 3, 400*time.Millisecond, false), now)
	// Room sound of the channel's own mic, nothing else: it plays (as the
	// floor always did for the source language).
	if f := tickAt(en, now); firstSample(f.full) != 3 || f.alone != nil {
		t.Fatalf("room sound alone: full %d, alone %v", firstSample(f.full), f.alone != nil)
	}
	// An interpretation comes: it plays instead of the room sound.
	en.pushInterp(audio.Frame{PCM: pcmOf(9, 200*time.Millisecond)}, now)
	f := en.compose(now.Add(100 * time.Millisecond))
	if firstSample(f.full) != 9 {
		t.Fatalf("interpretation over room sound: full %d, want 9", firstSample(f.full))
	}
}

func TestFloorMixesEveryMic(t *testing.T) {
	t.Parallel()
	now := time.Now()
	floor := newProgram("floor", true)
	floor.pushMic(micFrame("main", "en", 100, 300*time.Millisecond, true), now)
	floor.pushMic(micFrame("guest", "es", 20, 300*time.Millisecond, true), now)
	floor.pushInterp(audio.Frame{PCM: pcmOf(5, 300*time.Millisecond)}, now) // never on the floor
	if f := tickAt(floor, now); firstSample(f.full) != 120 {
		t.Fatalf("floor plays %d, want both mics mixed (120)", firstSample(f.full))
	}
}

func TestProgramSilenceIsNil(t *testing.T) {
	t.Parallel()
	p := newProgram("es", false)
	if f := p.compose(time.Now()); f.full != nil || f.alone != nil {
		t.Fatal("a program with nothing to play made audio")
	}
}
