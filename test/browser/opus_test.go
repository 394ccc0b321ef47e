package browser

import (
	"strings"
	"testing"
	"time"

	"github.com/babelcast/babelcast/test/harness"
)

// TestOpusInChromium: where the browser has WebCodecs (Chromium does), the
// speaker page sends Opus (AudioEncoder) and the attendee page asks for
// Opus and plays it through AudioDecoder, saying so on its debug line;
// ?codec=pcm on the attendee page's address gets PCM, said the same way,
// as does a browser without AudioDecoder.
func TestOpusInChromium(t *testing.T) {
	ctx, s := startService(t, 120*time.Second)
	r := s.API.CreateRoom(`{"id":"opus","name":"Opus","source_language":"en","languages":[{"code":"es"}]}`)
	b := newBrowser(ctx, t, browserOptions{micWAV: harness.SpeechWAV(t, "en", 3, 1)})
	speaker, attendee := goLive(t, s, b, r)

	if c := eval[string](speaker, `document.body.dataset.micCodec || ''`); c != "opus" {
		t.Errorf("the speaker page sends %q, want opus (AudioEncoder)", c)
	}
	// The attendee's Spanish arrives as Opus, decoded and played.
	attendee.waitFor("the debug line to say Opus", `document.getElementById('audio-debug').dataset.codec === 'opus'`, 5*time.Second)
	if line := eval[string](attendee, `document.getElementById('audio-debug').textContent`); !strings.Contains(line, "Opus") {
		t.Errorf("debug line %q", line)
	}
	if c := eval[string](attendee, `document.getElementById('player').dataset.mainCodec`); c != "opus" {
		t.Errorf("the main stream plays %q, want opus", c)
	}
	before := eval[float64](attendee, jsMainBytes)
	attendee.waitFor("more decoded audio", jsMainBytes+` > `+jsNumber(before+48000), 15*time.Second)
	attendee.waitFor("the player to play", `document.getElementById('player').dataset.mainPlaying === 'true'`, 5*time.Second)
	// What came off the network is a fraction of the PCM it decoded to.
	if ratio := eval[float64](attendee, `(() => {
		const d = document.getElementById('audio-debug').textContent.match(/(\d+) kB/);
		return d ? Number(d[1]) * 1000 / Number(document.getElementById('player').dataset.mainBytes) : 1;
	})()`); ratio > 0.3 {
		t.Errorf("received %.2f of the decoded bytes: not Opus-sized", ratio)
	}
	// The server counts both listeners (the main stream and the original
	// underneath) of this page, and the speaker's mic live.
	if st := s.API.Status(r.ID); !st.Speaker.Connected || st.Listeners("es") != 1 {
		t.Errorf("status: speaker %v, Spanish listeners %d", st.Speaker.Connected, st.Listeners("es"))
	}

	// A page that asks for PCM gets PCM, and says so.
	pcm := newTab(b, t, "attendee-pcm")
	pcm.navigate(s.URL()+"/rooms/"+r.ID+"?codec=pcm", "#play")
	pcm.click("#lang-es")
	pcm.click("#play")
	pcm.waitFor("the debug line to say PCM", `document.getElementById('audio-debug').dataset.codec === 'pcm'`, 20*time.Second)
	pcm.waitFor("PCM audio", jsMainBytes+` > 24000`, 15*time.Second)

	// A browser without WebCodecs falls back to PCM by itself.
	old := newTab(b, t, "attendee-no-webcodecs")
	old.navigate(s.URL()+"/rooms/"+r.ID, "#play")
	eval[bool](old, `(() => { window.AudioDecoder = undefined; return true; })()`)
	old.click("#lang-es")
	old.click("#play")
	old.waitFor("the debug line to say PCM", `document.getElementById('audio-debug').dataset.codec === 'pcm'`, 20*time.Second)
	old.waitFor("PCM audio", jsMainBytes+` > 24000`, 15*time.Second)
	attendee.screenshots("listen-opus")
}
