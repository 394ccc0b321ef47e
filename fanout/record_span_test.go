package fanout

import (
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/record"
)

// A line of the original spans its speech, whether the engine transcribes
// it while it is said (the line's end follows the speech) or only once it
// was said (the offline engine: the line is the run of speech, not a cue
// of no length at the moment of its transcript).
func TestOriginalLineSpansItsSpeech(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 2, 20, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	heard := func(c *channelRecorder, from, to int) {
		for ms := from; ms <= to; ms += 100 {
			c.rr.speech.heard("en", at(ms))
		}
	}
	line := func(c *channelRecorder, transcribed int) record.Cue {
		return c.settleOriginal(record.Cue{Start: at(transcribed), End: at(transcribed), SourceLanguage: "en", Text: "x"})
	}
	span := func(cue record.Cue) [2]time.Duration { return [2]time.Duration{cue.Start.Sub(t0), cue.End.Sub(t0)} }
	ms := func(a, b int) [2]time.Duration {
		return [2]time.Duration{time.Duration(a) * time.Millisecond, time.Duration(b) * time.Millisecond}
	}

	// Transcribed while said: starts with its transcript, ends with the speech.
	c := &channelRecorder{rr: &roomRecorder{}}
	heard(c, 0, 3000)
	if got, want := span(line(c, 200)), ms(200, 2700); got != want {
		t.Errorf("line transcribed while said: %v, want %v", got, want)
	}

	// Transcribed after it was said: the run of speech is the line...
	c = &channelRecorder{rr: &roomRecorder{}}
	heard(c, 0, 3000)
	if got, want := span(line(c, 5000)), ms(0, 2700); got != want {
		t.Errorf("line transcribed after it was said: %v, want %v", got, want)
	}
	// ...and the next line, of the next run, begins with that run.
	heard(c, 6000, 8000)
	if got, want := span(line(c, 9500)), ms(6000, 7700); got != want {
		t.Errorf("next line: %v, want %v", got, want)
	}
	// A second line of the same run (a turn split without a pause the run
	// shows) never starts before the previous line's end.
	c = &channelRecorder{rr: &roomRecorder{}}
	heard(c, 0, 3000)
	first := line(c, 3400)
	heard(c, 3100, 6000)
	if got, want := span(first), ms(0, 2700); got != want {
		t.Errorf("first line: %v, want %v", got, want)
	}
	if got, want := span(line(c, 6500)), ms(2700, 5700); got != want {
		t.Errorf("second line of one run: %v, want %v", got, want)
	}

	// No speech heard in its language: the line stays as transcribed.
	c = &channelRecorder{rr: &roomRecorder{}}
	if got, want := span(line(c, 500)), ms(500, 500); got != want {
		t.Errorf("no speech heard: %v, want %v", got, want)
	}
}
