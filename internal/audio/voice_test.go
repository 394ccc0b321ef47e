package audio

import (
	"math"
	"testing"
	"time"
)

// tone is d of a sine at hz and amplitude amp (of full scale), or
// silence-like noise when amp is tiny.
func sine(hz float64, d time.Duration, amp float64) []int16 {
	n := DurationBytes(d) / 2
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(amp * 32767 * math.Sin(2*math.Pi*hz*float64(i)/Rate))
	}
	return s
}

func TestVoiceDetectorSpeechSilenceAndHangover(t *testing.T) {
	v := NewVoiceDetector(300 * time.Millisecond)
	if v.Voice(sine(200, 500*time.Millisecond, 0.0005)) {
		t.Fatal("quiet room noise counted as voice")
	}
	if !v.Voice(sine(200, 100*time.Millisecond, 0.3)) {
		t.Fatal("speech-level tone not voice")
	}
	// A 200 ms breath between words is still voice (hangover).
	if !v.Voice(sine(200, 100*time.Millisecond, 0.0005)) || !v.Voice(sine(200, 100*time.Millisecond, 0.0005)) {
		t.Fatal("a short pause ended the voice before the hangover")
	}
	// A long pause ends it.
	v.Voice(sine(200, 300*time.Millisecond, 0.0005))
	if v.Voice(sine(200, 100*time.Millisecond, 0.0005)) {
		t.Fatal("voice outlasted the hangover")
	}
}

func TestVoiceDetectorIgnoresAClick(t *testing.T) {
	v := NewVoiceDetector(0)
	v.Voice(sine(200, 300*time.Millisecond, 0.0005))
	click := append(sine(1000, 10*time.Millisecond, 0.5), sine(200, 90*time.Millisecond, 0.0005)...)
	if v.Voice(click) {
		t.Fatal("a 10 ms click counted as voice")
	}
}

func TestVoiceDetectorLearnsANoisyRoom(t *testing.T) {
	v := NewVoiceDetector(0)
	// A steady hum at -30 dBFS: loud at first, then learned as the floor.
	hum := sine(100, 100*time.Millisecond, 0.03)
	var last bool
	for range 100 { // 10 s
		last = v.Voice(hum)
	}
	if last {
		t.Fatal("a steady hum is still voice after 10 s")
	}
	if !v.Voice(sine(300, 200*time.Millisecond, 0.5)) {
		t.Fatal("speech over the hum not detected")
	}
}
