package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/client"
	"github.com/babelcast/babelcast/internal/wire"
	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/test/harness"
	"github.com/babelcast/babelcast/test/harness/service"
	"github.com/babelcast/babelcast/test/signal"
)

// Opus end to end: the speak client sends Opus, ingest decodes it, the
// floor channel is encoded once more for its listeners, and the listen
// client records it as Ogg/Opus, and (over PCM) as WAV. Both recordings
// hold the speech, as long and as loud as spoken, with the silence around
// it where it was in time. (The mic's path may stretch the speech by a
// tick of jitter on a loaded machine; fanout's tests check, from the
// channel on, that no packet is lost and the envelope is kept.)
func TestOpusSpeakerToOggAndWAVRecordings(t *testing.T) {
	t.Parallel()
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{}})
	rm := s.API.CreateRoom(`{"id":"opus","source_language":"en","languages":[{"code":"es"}]}`)
	dir := t.TempDir()
	oggPath, wavPath := filepath.Join(dir, "en.ogg"), filepath.Join(dir, "en.wav")

	aud := newAudience(t, s, rm.ID)
	began := time.Now() // the recordings start after this, at their hello
	oggRec := aud.listen("en", oggPath)
	aud.listen("en", wavPath)
	harness.WaitFor(t, 10*time.Second, "two listeners", func() bool { return s.API.Status(rm.ID).Listeners("en") == 2 })

	sig := signal.Make(2 * time.Second)
	spoken := append(make([]int16, audio.Rate/2), sig...) // half a second of silence first
	err := client.Speak(context.Background(), client.SpeakOptions{Server: s.URL(), Room: rm.ID, Key: rm.SpeakerKey,
		Source: newPCMSource(audio.Bytes(spoken)), Realtime: true, Codec: wire.CodecOpus})
	if err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 10*time.Second, "the speech and a second after it", func() bool {
		return signal.Heard(audio.Samples(oggRec.audio()), time.Second)
	})
	aud.stop()
	covered := time.Since(began)

	ogg, err := signal.DecodeOggFile(oggPath)
	if err != nil {
		t.Fatal(err)
	}
	wav := readWAVFile(t, wavPath)
	for _, r := range []struct {
		name string
		pcm  []int16
	}{{"Ogg", ogg}, {"WAV", wav}} {
		f, l := signal.Loud(r.pcm)
		if f < 0 {
			t.Errorf("%s: no speech in %d samples", r.name, len(r.pcm))
			continue
		}
		if d := time.Duration(l-f-len(sig)) * time.Second / audio.Rate; d < -30*time.Millisecond || d > 250*time.Millisecond {
			t.Errorf("%s: the speech lasts %v, spoken %v", r.name, time.Duration(l-f)*time.Second/audio.Rate, 2*time.Second)
		}
		if ratio := signal.RMS(r.pcm[f:l]) / signal.RMS(sig); ratio < 0.7 || ratio > 1.4 {
			t.Errorf("%s: the speech is %.2f times as loud as spoken", r.name, ratio)
		}
		// The recording covers the time it ran: silence included.
		if d := audio.BytesDuration(2*len(r.pcm)) - covered; d < -800*time.Millisecond || d > 200*time.Millisecond {
			t.Errorf("%s: %v of audio for %v of recording", r.name, audio.BytesDuration(2*len(r.pcm)), covered)
		}
	}
	// Both put the speech at the same time.
	of, _ := signal.Loud(ogg)
	wf, _ := signal.Loud(wav)
	if d := time.Duration(of-wf) * time.Second / audio.Rate; d < -250*time.Millisecond || d > 250*time.Millisecond {
		t.Errorf("the speech starts %v into the Ogg and %v into the WAV", time.Duration(of)*time.Second/audio.Rate, time.Duration(wf)*time.Second/audio.Rate)
	}
}

// readWAVFile is the samples of a WAV the listen client wrote (a
// 44-byte header, then PCM16 mono 24 kHz).
func readWAVFile(t *testing.T, path string) []int16 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 44 || string(b[:4]) != "RIFF" {
		t.Fatalf("%s: %d bytes, %v", path, len(b), err)
	}
	return audio.Samples(b[44:])
}
