package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/app"
	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/test/harness"
	"github.com/babelcast/babelcast/test/harness/service"
)

// librivox is a recording of a person that Debian's pocketsphinx-testdata
// installs (scripts/test installs the package): "and mister john dashwood
// had then leisure to consider how much there might be prudently in his
// power to do for them" (its transcription file).
const librivox = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav"

// With no OpenAI key the service interprets with the
// offline engine; an English speaker recorded in a WAV is heard in Spanish
// with Spanish captions, and a language the engine lacks is refused with
// the list of those it has.
func TestOfflineEngineEnglishToSpanish(t *testing.T) {
	t.Parallel()
	// The default engine without a key: no fake model server. The offline
	// engine is bound by the CPU (its decoders run at about half real time
	// on a free core), so on a machine busy with the suite's other tests
	// and packages it falls behind the speaker: the session must not close
	// (after the linger, with a flush bounded to 10 s) before it catches
	// up, so it keeps the default linger.
	s := service.Start(t, service.Options{Config: func(c *app.Config) { c.Linger = 30 * time.Second }})

	var refused struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if code := s.API.Call("POST", "/api/v1/rooms", `{"id":"nl","source_language":"en","languages":[{"code":"nl"}]}`, &refused); code != http.StatusBadRequest ||
		refused.Error.Code != "unsupported_language" || !strings.Contains(refused.Error.Message, "es") {
		t.Errorf("Dutch on the offline engine: %d %+v, want 400 unsupported_language listing es", code, refused.Error)
	}

	room := s.API.CreateRoom(`{"id":"talk","source_language":"en","languages":[{"code":"es"}]}`)
	aud := newAudience(t, s, "talk")
	es := aud.listen("es", t.TempDir()+"/es.wav")
	floor := aud.listen("en", t.TempDir()+"/floor.wav")
	aud.await("es", "en")
	src, err := audio.Open(librivox)
	if err != nil {
		t.Fatalf("the LibriVox recording (pocketsphinx-testdata): %v", err)
	}
	defer src.Close()
	speakAll(t, s, room, src)
	// About 2 s after the speech here; the bound is for a machine that
	// runs other decoders at the same time (the suite's other packages).
	harness.WaitFor(t, 2*time.Minute, "a Spanish caption and speech", func() bool {
		return len(es.finalCaptions()) > 0 && speechSeconds(es.audio()) > 1
	})
	harness.WaitFor(t, 10*time.Second, "the speaker's words on the floor", func() bool { return len(floor.finalCaptions()) > 0 })
	aud.stop()

	spanish := strings.ToLower(strings.Join(es.finalCaptions(), " "))
	// Apertium's Spanish for the sentence: function words any Spanish
	// rendering of it holds, and no English left untranslated.
	hits := 0
	for _, w := range []string{" de ", " su ", " para ", " en ", " que ", " a "} {
		if strings.Contains(" "+spanish+" ", w) {
			hits++
		}
	}
	if hits < 2 || strings.Contains(" "+spanish+" ", " the ") {
		t.Errorf("Spanish captions %q do not read as Spanish", spanish)
	}
	said := strings.ToLower(strings.Join(floor.finalCaptions(), " "))
	if !strings.Contains(said, "power") && !strings.Contains(said, "consider") {
		t.Errorf("floor captions %q miss what the speaker said", said)
	}
}

// speechSeconds is how much of pcm is louder than -40 dBFS, in seconds.
func speechSeconds(pcm []byte) float64 {
	s := audio.Samples(pcm)
	const block = 480 // 20 ms
	n := 0
	for i := 0; i+block <= len(s); i += block {
		if rms, _ := audio.Level(s[i : i+block]); rms > -40 {
			n++
		}
	}
	return float64(n) * 0.02
}
