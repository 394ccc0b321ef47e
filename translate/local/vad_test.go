package local

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// noise is quiet background hiss at about -60 dBFS.
func noise(rng *rand.Rand, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(rng.NormFloat64() * 33)
	}
	return out
}

// tone is a loud 300 Hz tone standing in for a voice.
func tone(n, rate int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(8000 * math.Sin(2*math.Pi*300*float64(i)/float64(rate)))
	}
	return out
}

type vadRun struct {
	starts, ends []int64 // sample positions
	cuts         []bool
	audio        int // samples inside turns
}

func runVAD(v *vad, s []int16, chunk int) *vadRun {
	r := &vadRun{}
	var pos int64 // end of the turn's audio so far
	emit := func(ev vadEvent) {
		switch ev.kind {
		case vadStart:
			r.starts = append(r.starts, ev.at)
			pos = ev.at + int64(len(ev.samples))
			r.audio += len(ev.samples)
		case vadAudio:
			pos += int64(len(ev.samples))
			r.audio += len(ev.samples)
		case vadEnd:
			r.ends = append(r.ends, pos)
			r.cuts = append(r.cuts, ev.cut)
		}
	}
	for off := 0; off < len(s); off += chunk {
		v.push(s[off:min(off+chunk, len(s))], emit)
	}
	v.flush(emit)
	return r
}

func TestVADTurns(t *testing.T) {
	const rate = 16000
	rng := rand.New(rand.NewPCG(1, 2))
	var s []int16
	s = append(s, noise(rng, rate)...)     // 0-1 s quiet
	s = append(s, tone(2*rate, rate)...)   // 1-3 s speech
	s = append(s, noise(rng, rate/5)...)   // a 200 ms breath: same turn
	s = append(s, tone(rate, rate)...)     // 3.2-4.2 s
	s = append(s, noise(rng, 2*rate)...)   // 2 s quiet: turn ends
	s = append(s, tone(rate/100, rate)...) // a 10 ms click: no turn
	s = append(s, noise(rng, rate)...)     //
	s = append(s, tone(rate, rate)...)     // 7.21-8.21 s second turn, ended by flush
	v := newVAD(rate, 500*time.Millisecond, 10*time.Second)
	r := runVAD(v, s, 1234)
	if len(r.starts) != 2 || len(r.ends) != 2 {
		t.Fatalf("turns start at %v, end at %v; want 2 turns", r.starts, r.ends)
	}
	// The onset is found within 50 ms; the pre-roll reaches 300 ms before.
	if at := float64(r.starts[0]) / rate; at < 0.65 || at > 0.75 {
		t.Errorf("first turn starts at %.3f s; want about 0.7 (1 s minus the pre-roll)", at)
	}
	if end := float64(r.ends[0]) / rate; end < 4.65 || end > 4.85 {
		t.Errorf("first turn ends at %.3f s; want 4.2 s + 0.5 s hangover", end)
	}
	if at := float64(r.starts[1]) / rate; at < 6.9 || at > 7.0 {
		t.Errorf("second turn starts at %.3f s; want about 6.96 (7.21 s plus the onset minus the pre-roll)", at)
	}
	if end := float64(r.ends[1]) / rate; end != float64(len(s))/rate {
		t.Errorf("second turn ends at %.3f s; want the flush at the end", end)
	}
}

func TestVADCutsLongTurns(t *testing.T) {
	const rate = 16000
	rng := rand.New(rand.NewPCG(3, 4))
	var s []int16
	s = append(s, noise(rng, rate/2)...)
	// 9 s of speech, a 200 ms pause (after 8 s: ends the turn softly), then
	// 12 s of speech without a pause (cut hard at 10 s).
	s = append(s, tone(9*rate, rate)...)
	s = append(s, noise(rng, rate/5)...)
	s = append(s, tone(12*rate, rate)...)
	s = append(s, noise(rng, rate)...)
	v := newVAD(rate, 500*time.Millisecond, 10*time.Second)
	r := runVAD(v, s, 1600)
	if len(r.ends) != 3 {
		t.Fatalf("turns end at %v; want 3 turns", r.ends)
	}
	if end := float64(r.ends[0]) / rate; end < 9.6 || end > 9.7 {
		t.Errorf("first turn ends at %.2f s; want at the short pause, 9.65", end)
	}
	if !r.cuts[1] || r.cuts[0] || r.cuts[2] {
		t.Errorf("cuts = %v; want only the second turn cut by the limit", r.cuts)
	}
	if d := float64(r.ends[1]-r.starts[1]) / rate; d < 9.9 || d > 10.01 {
		t.Errorf("cut turn lasts %.2f s; want 10", d)
	}
}

// TestVADOnLibriVox: each recording, between stretches of room noise, is
// one turn.
func TestVADOnLibriVox(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	v := newVAD(16000, defaultHangover, defaultMaxTurn)
	for _, c := range libriVox(t) {
		pcm := c.pcm
		if c.rate != 16000 {
			pcm = resampleAll(pcm, c.rate, 16000)
		}
		var s []int16
		s = append(s, noise(rng, 16000)...)
		s = append(s, pcm...)
		s = append(s, noise(rng, 16000)...)
		r := runVAD(v, s, 2400)
		t.Logf("%s (%.2f s): turns %v–%v", c.id, float64(len(pcm))/16000, r.starts, r.ends)
		if len(r.starts) != 1 {
			t.Errorf("%s: %d turns; want 1", c.id, len(r.starts))
		}
	}
}
