package audio

import (
	"testing"
	"time"
)

// constFrame is d of a constant sample value v from mic.
func constFrame(mic string, v int16, d time.Duration, speech bool) Frame {
	s := make([]int16, DurationBytes(d)/2)
	for i := range s {
		s[i] = v
	}
	return Frame{PCM: Bytes(s), Mic: mic, Lang: "en", Speaker: mic, Speech: speech}
}

func TestMixerWaitsForPrefillThenPlays(t *testing.T) {
	m := NewMixer(MixerOptions{Prefill: 150 * time.Millisecond})
	t0 := time.Now()
	m.Push(constFrame("a", 100, 100*time.Millisecond, true), t0)
	if mix := m.Mix(2400, t0); mix.Live() {
		t.Fatal("a mic played with 100 ms buffered, under the 150 ms prefill")
	}
	m.Push(constFrame("a", 100, 100*time.Millisecond, true), t0.Add(100*time.Millisecond))
	mix := m.Mix(2400, t0.Add(100*time.Millisecond))
	if !mix.Live() || !mix.Speech() || len(mix.Mics) != 1 || mix.Mics[0].Samples != 2400 {
		t.Fatalf("after prefill: %+v", mix.Mics)
	}
	if s := Samples(mix.PCM); len(s) != 2400 || s[0] != 100 || s[2399] != 100 {
		t.Fatalf("mixed samples wrong: len %d", len(s))
	}
}

func TestMixerSumsConcurrentMicsAndClips(t *testing.T) {
	m := NewMixer(MixerOptions{Prefill: 10 * time.Millisecond})
	now := time.Now()
	m.Push(constFrame("a", 1000, 100*time.Millisecond, true), now)
	m.Push(constFrame("b", 2000, 100*time.Millisecond, false), now)
	mix := m.Mix(2400, now)
	if s := Samples(mix.PCM); s[10] != 3000 {
		t.Fatalf("sum %d, want 3000", s[10])
	}
	if len(mix.Mics) != 2 {
		t.Fatalf("mics %+v, want both", mix.Mics)
	}
	m.Push(constFrame("a", 30000, 100*time.Millisecond, true), now)
	m.Push(constFrame("b", 30000, 100*time.Millisecond, true), now)
	if s := Samples(m.Mix(2400, now).PCM); s[0] != 32767 {
		t.Fatalf("loud sum %d, want clipped to 32767", s[0])
	}
}

func TestMixerPadsARunDryMicAndPlaysOutATail(t *testing.T) {
	m := NewMixer(MixerOptions{Prefill: 150 * time.Millisecond})
	t0 := time.Now()
	m.Push(constFrame("a", 7, 150*time.Millisecond, true), t0)
	first := m.Mix(2400, t0)
	second := m.Mix(2400, t0)
	if first.Mics[0].Samples != 2400 || second.Mics[0].Samples != 1200 {
		t.Fatalf("samples %d then %d, want 2400 then 1200", first.Mics[0].Samples, second.Mics[0].Samples)
	}
	if s := Samples(second.PCM); s[2399] != 0 || s[0] != 7 {
		t.Fatal("the dry part of the mix is not silence")
	}
	// A last short frame (under prefill) still plays once the mic is quiet.
	m.Push(constFrame("a", 9, 50*time.Millisecond, true), t0)
	if m.Mix(2400, t0.Add(10*time.Millisecond)).Live() {
		t.Fatal("a short frame played before the mic had been quiet for the prefill")
	}
	if tail := m.Mix(2400, t0.Add(200*time.Millisecond)); !tail.Live() || tail.Mics[0].Samples != 1200 {
		t.Fatalf("tail not played out: %+v", tail.Mics)
	}
}

func TestMixerBoundsDelay(t *testing.T) {
	m := NewMixer(MixerOptions{Prefill: 100 * time.Millisecond, MaxDelay: 500 * time.Millisecond})
	now := time.Now()
	for range 10 { // a 1 s burst
		m.Push(constFrame("a", 1, 100*time.Millisecond, true), now)
	}
	if m.Dropped() == 0 {
		t.Fatal("a burst beyond MaxDelay dropped nothing")
	}
	played := 0
	for m.Mix(240, now).Live() {
		played++
	}
	if d := time.Duration(played) * 10 * time.Millisecond; d > 500*time.Millisecond {
		t.Fatalf("played %v after the burst, more than MaxDelay", d)
	}
}

func TestMixerCaptureTimeAndWho(t *testing.T) {
	m := NewMixer(MixerOptions{Prefill: 10 * time.Millisecond})
	now := time.Now()
	f := constFrame("guest", 1, 100*time.Millisecond, true)
	f.Lang, f.Speaker, f.Captured = "es", "Ana", now.Add(-time.Second)
	m.Push(f, now)
	first := m.Mix(1200, now)  // 50 ms
	second := m.Mix(1200, now) // the next 50 ms of the same frame
	if p := first.Mics[0]; p.Lang != "es" || p.Speaker != "Ana" || p.Mic != "guest" || !p.Speech {
		t.Fatalf("part %+v", p)
	}
	if !first.Captured.Equal(f.Captured) || second.Captured.Sub(first.Captured) != 50*time.Millisecond {
		t.Fatalf("captured %v then %v, want the frame's time then 50 ms later", first.Captured, second.Captured)
	}
}
