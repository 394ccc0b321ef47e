// Package e2e runs babelcast end to end in-process: `serve` with every role
// and an embedded NATS, the openai engine pointed at the fake Realtime server,
// a speaker streaming a file with the speak client, and listeners recording
// with the listen client.
package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/test/harness"
	"github.com/babelcast/babelcast/test/harness/service"
)

// TestSpeakerToListenersThroughBothSessionKinds is the end-to-end
// check: a room with Spanish (the dedicated translation model) and Dutch
// (an instructed realtime session), a speaker streaming a file, and
// listeners of each channel and of the floor.
func TestSpeakerToListenersThroughBothSessionKinds(t *testing.T) {
	t.Parallel()
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{}})
	room := s.API.CreateRoom(`{"id":"keynote","name":"Keynote","source_language":"en",
		"languages":[{"code":"es"},{"code":"nl","voice":"marin"}]}`)

	dir := t.TempDir()
	aud := newAudience(t, s, room.ID)
	es := aud.listen("es", filepath.Join(dir, "es.wav"))
	nl := aud.listen("nl", filepath.Join(dir, "nl.wav"))
	floor := aud.listen("en", filepath.Join(dir, "floor.wav"))
	aud.await("en", "es", "nl")

	src, err := audio.Open(harness.SpeechWAV(t, "en", 3, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	speakAll(t, s, room, src)

	// Each channel must carry the translation of all three bursts (the fake
	// speaks as long as it heard speech), and the floor the speech itself.
	speech := 3 * 1500 * time.Millisecond
	harness.WaitFor(t, 20*time.Second, "translations of every burst", func() bool {
		return duration(es.audio(), "es") >= speech*9/10 && duration(nl.audio(), "nl") >= speech*9/10 &&
			len(es.finalCaptions()) >= 3 && len(nl.finalCaptions()) >= 3
	})
	harness.WaitFor(t, 10*time.Second, "floor audio", func() bool { return duration(floor.audio(), "en") >= speech*9/10 })
	harness.WaitFor(t, 10*time.Second, "floor captions", func() bool { return len(floor.finalCaptions()) >= 1 })
	aud.stop()

	langs := []string{"en", "es", "nl"}
	for lang, rec := range map[string]*recording{"es": es, "nl": nl, "en": floor} {
		pcm := rec.audio()
		if got := fakerealtime.DetectLanguage(pcm, langs); got != lang {
			t.Errorf("%s listeners hear %q", lang, got)
		}
		// Audio from their own session only: no trace of another channel.
		for _, other := range langs {
			if other == lang {
				continue
			}
			if share := fakerealtime.Goertzel(pcm, fakerealtime.ToneHz(other)); share > 0.02 {
				t.Errorf("%s listeners got %.0f%% of their energy from %s", lang, share*100, other)
			}
		}
	}
	for lang, rec := range map[string]*recording{"es": es, "nl": nl} {
		for _, c := range rec.finalCaptions() {
			if !strings.HasPrefix(c, "["+lang+"]") {
				t.Errorf("%s caption %q is not from the %s session", lang, c, lang)
			}
		}
	}
	if c := floor.finalCaptions(); !strings.Contains(strings.Join(c, " "), "source sentence") {
		t.Errorf("floor captions %q are not the speaker's words", c)
	}
	// One session per channel, of the right kind.
	if n := s.Fake.OpenedFor(fakerealtime.Translate, "es"); n != 1 {
		t.Errorf("%d translation sessions for es, want 1", n)
	}
	if n := s.Fake.Opened(fakerealtime.Realtime); n != 1 {
		t.Errorf("%d realtime sessions, want 1 (nl)", n)
	}
	if n := s.Fake.CancelledResponses(); n != 0 {
		t.Errorf("%d responses cancelled: a translation was cut off", n)
	}
	// The recordings are valid WAV files holding what was heard.
	for _, lang := range langs {
		f, err := os.Open(filepath.Join(dir, lang+".wav"))
		if lang == "en" {
			f, err = os.Open(filepath.Join(dir, "floor.wav"))
		}
		if err != nil {
			t.Fatal(err)
		}
		wr, err := audio.NewWAVReader(f)
		if err != nil {
			t.Fatalf("%s recording: %v", lang, err)
		}
		if wr.Format.SampleRate != 24000 || wr.Format.Channels != 1 {
			t.Errorf("%s recording format %+v", lang, wr.Format)
		}
		f.Close()
	}
}
