package openai

import (
	"testing"
	"time"

	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/translate/engine"
)

// Speaker audio that arrives late in a burst (a network or scheduling
// hiccup of 800 ms in the middle of a sentence) is the same speech: the
// session must not take the hiccup for a pause, fill it with silence and
// split the sentence or turn in two.
func TestLateAudioDoesNotSplitSpeech(t *testing.T) {
	fake := newFake(t, fakerealtime.Options{ResponseSpeed: 10})
	e := newEngine(t, fake, nil)
	es, nl := newSink(), newSink()
	sessions := []engine.Session{
		open(t, e, engine.Channel{Room: "r", Source: "en", Target: "es"}, es),
		open(t, e, nlChannel, nl),
	}
	frame := 20 * time.Millisecond
	speech, silence := fakerealtime.Speech("en", frame), fakerealtime.Silence(frame)
	// 2 s of speech with an 800 ms hiccup in its middle, then 1.5 s of
	// silence; two such sentences.
	var script [][]byte
	for range 2 {
		for range 100 {
			script = append(script, speech)
		}
		for range 75 {
			script = append(script, silence)
		}
	}
	start := time.Now()
	captured := start
	for i, f := range script {
		due := start.Add(time.Duration(i) * frame)
		if k := i % 175; k >= 50 && k < 90 {
			// The hiccup: 800 ms of speech arrive late, all at once with
			// the frame after them.
			due = start.Add(time.Duration(i-k+90) * frame)
		}
		time.Sleep(time.Until(due)) // pacing the speaker, hiccup included
		for _, s := range sessions {
			if err := s.Append(f, captured); err != nil {
				t.Fatal(err)
			}
		}
		captured = captured.Add(frame)
	}
	es.waitFor(t, 5*time.Second, "two Spanish lines", func() bool { return len(es.finals(false)) >= 2 })
	nl.waitFor(t, 5*time.Second, "two Dutch lines", func() bool { return len(nl.finals(false)) >= 2 })
	time.Sleep(time.Second) // would a third line come?
	if got := es.finals(false); len(got) != 2 {
		t.Errorf("translation: %d lines for 2 sentences: %q", len(got), got)
	}
	if got := nl.finals(false); len(got) != 2 {
		t.Errorf("interpreter: %d lines for 2 turns: %q", len(got), got)
	}
}
