package local

import (
	"context"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
)

// TestSynthesizerSpanish speaks a sentence with the Spanish voice and checks
// the audio: 24 kHz pieces of at most 200 ms, audible, of a sentence's length.
func TestSynthesizerSpanish(t *testing.T) {
	tl := testTools(t)
	v, ok := tl.voiceFor("es", "")
	if !ok {
		t.Fatal("no espeak-ng voice for es")
	}
	s := &synthesizer{log: testLog(t), bin: tl.espeak, voice: v, wpm: 175}
	var all []int16
	pieces := 0
	start := time.Now()
	var first time.Duration
	err := s.speak(context.Background(), "No fue un hombre joven mal dispuesto.", func(p []int16) {
		if pieces == 0 {
			first = time.Since(start)
		}
		pieces++
		if len(p) == 0 || len(p) > pieceSamples {
			t.Errorf("piece of %d samples", len(p))
		}
		all = append(all, p...)
	})
	if err != nil {
		t.Fatal(err)
	}
	dur := time.Duration(len(all)) * time.Second / audio.Rate
	rms, _ := audio.Level(all)
	t.Logf("voice %s (%s): %v of audio in %d pieces, first after %v, total %v, RMS %.1f dBFS",
		v.File, v.Lang, dur, pieces, first, time.Since(start), rms)
	if dur < time.Second || dur > 6*time.Second {
		t.Errorf("speech lasts %v; want a sentence's 1..6 s", dur)
	}
	if rms < -40 {
		t.Errorf("speech RMS %.1f dBFS: too quiet", rms)
	}
}

func TestVoiceFor(t *testing.T) {
	tl := &tools{voices: []voice{
		{Lang: "es", File: "roa/es", Priority: 5},
		{Lang: "es-419", File: "roa/es-419", Priority: 5},
		{Lang: "pt-br", File: "roa/pt-BR", Priority: 5},
		{Lang: "pt", File: "roa/pt", Priority: 6},
		{Lang: "ca", Name: "Catalan", File: "roa/ca", Priority: 5},
	}}
	for _, c := range []struct{ target, asked, want string }{
		{"es", "", "roa/es"},
		{"es-419", "", "roa/es-419"},
		{"es-MX", "", "roa/es"},
		{"es", "es-419", "roa/es-419"},
		{"es", "marin", "roa/es"},
		{"es", "catalan", "roa/es"},
		{"ca", "catalan", "roa/ca"},
		{"pt", "", "roa/pt"},
	} {
		v, ok := tl.voiceFor(c.target, c.asked)
		if !ok || v.File != c.want {
			t.Errorf("voiceFor(%q, %q) = %v, %v; want %s", c.target, c.asked, v.File, ok, c.want)
		}
	}
	if _, ok := tl.voiceFor("fr", ""); ok {
		t.Error("voiceFor(fr) found a voice")
	}
}
