package audio

import (
	"math"
	"testing"
)

func tone(freq float64, rate int, seconds float64, amp float64) []int16 {
	n := int(float64(rate) * seconds)
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return s
}

// goertzel returns the amplitude of freq in s (a sine of amplitude A gives A).
func goertzel(s []int16, freq float64, rate int) float64 {
	w := 2 * math.Pi * freq / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range s {
		s0 := float64(v) + c*s1 - s2
		s2, s1 = s1, s0
	}
	p := s1*s1 + s2*s2 - c*s1*s2
	return 2 * math.Sqrt(p) / float64(len(s))
}

func resampleAll(from, to int, in []int16) []int16 {
	r := NewResampler(from, to)
	out := r.Process(in)
	return append(out, r.Flush()...)
}

// middle drops the edges, where the zero history makes a transient.
func middle(s []int16, rate int) []int16 {
	cut := rate / 10
	return s[cut : len(s)-cut]
}

// A 1 kHz tone resampled to 24 kHz, down or up, keeps its length and its
// amplitude, and nothing else appears: not at 3 kHz, nor at 7 kHz, the
// image of 1 kHz around 8 kHz that upsampling from 8 kHz must remove.
func TestResampleKeepsTone(t *testing.T) {
	for _, c := range []struct {
		name    string
		from    int
		quiet   float64 // a frequency that must stay (nearly) silent…
		atMost  float64 // …with at most this amplitude
		meaning string
	}{
		{"down from 48 kHz", 48000, 3000, 16, "want silence"},
		{"up from 8 kHz", 8000, 7000, 16000 * 0.003, "want < -50 dB: the image"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := tone(1000, c.from, 1, 16000)
			out := resampleAll(c.from, 24000, in)
			if len(out) != 24000 {
				t.Fatalf("len %d, want 24000", len(out))
			}
			m := middle(out, 24000)
			if a := goertzel(m, 1000, 24000); math.Abs(a-16000)/16000 > 0.01 {
				t.Errorf("1 kHz amplitude %.0f, want 16000 ±1%%", a)
			}
			if a := goertzel(m, c.quiet, 24000); a > c.atMost {
				t.Errorf("%.0f Hz has %.1f, %s", c.quiet, a, c.meaning)
			}
		})
	}
}

func TestResampleRejectsAliases(t *testing.T) {
	for _, f := range []float64{12500, 15000, 20000} {
		in := tone(f, 48000, 1, 30000)
		out := middle(resampleAll(48000, 24000, in), 24000)
		alias := 24000 - f // where it would fold to
		rms, _ := Level(out)
		a := goertzel(out, alias, 24000)
		att := 20 * math.Log10(30000/math.Max(a, 1e-9))
		if att < 50 {
			t.Errorf("%.0f Hz: alias at %.0f Hz attenuated %.1f dB, want ≥ 50 (rms %.1f dBFS)", f, alias, att, rms)
		}
		t.Logf("%.0f Hz → alias %.0f Hz attenuated %.1f dB, rms %.1f dBFS", f, alias, att, rms)
	}
}

func TestResampleLengths(t *testing.T) {
	cases := []struct{ from, to, n, want int }{
		{44100, 24000, 44100, 24000},
		{8000, 24000, 8000, 24000},
		{48000, 24000, 4801, 2401},
		{44100, 24000, 441, 240},
		{22050, 24000, 1000, 1089}, // ceil(1000*24000/22050)=1088.4→1089
		{192000, 24000, 192000, 24000},
		{24000, 24000, 1234, 1234},
		{44101, 24000, 44101, 24000}, // many phases: interpolated table
	}
	for _, c := range cases {
		out := resampleAll(c.from, c.to, make([]int16, c.n))
		if len(out) != c.want {
			t.Errorf("%d→%d, %d in: %d out, want %d", c.from, c.to, c.n, len(out), c.want)
		}
	}
}

func TestResampleChunkedEqualsWhole(t *testing.T) {
	for _, rates := range [][2]int{{48000, 24000}, {44100, 24000}, {8000, 24000}, {44101, 24000}} {
		in := tone(440, rates[0], 0.5, 12000)
		for i := range in {
			in[i] += int16((i*7919)%2001 - 1000) // some broadband content
		}
		whole := resampleAll(rates[0], rates[1], in)
		r := NewResampler(rates[0], rates[1])
		var chunked []int16
		for i, step := 0, 1; i < len(in); step = step*3%997 + 1 {
			j := min(i+step, len(in))
			chunked = append(chunked, r.Process(in[i:j])...)
			i = j
		}
		chunked = append(chunked, r.Flush()...)
		if len(chunked) != len(whole) {
			t.Fatalf("%v: chunked %d samples, whole %d", rates, len(chunked), len(whole))
		}
		for i := range whole {
			if whole[i] != chunked[i] {
				t.Fatalf("%v: sample %d differs: %d vs %d", rates, i, chunked[i], whole[i])
			}
		}
	}
}

func TestResampleInterpolatedPhases(t *testing.T) {
	// 44101 Hz has 24000 phases against 24 kHz: the table is interpolated.
	in := tone(1000, 44101, 1, 16000)
	out := middle(resampleAll(44101, 24000, in), 24000)
	if a := goertzel(out, 1000, 24000); math.Abs(a-16000)/16000 > 0.01 {
		t.Errorf("1 kHz amplitude %.0f, want 16000", a)
	}
}

func TestResampleDCAndIdentity(t *testing.T) {
	in := make([]int16, 48000)
	for i := range in {
		in[i] = 10000
	}
	out := middle(resampleAll(48000, 44100, in), 44100)
	for i, v := range out {
		if v < 9999 || v > 10001 {
			t.Fatalf("DC at %d = %d, want 10000", i, v)
		}
	}
	id := NewResampler(24000, 24000)
	got := id.Process([]int16{1, 2, 3})
	if len(got) != 3 || got[2] != 3 || len(id.Flush()) != 0 {
		t.Fatalf("identity gave %v", got)
	}
}

// BenchmarkResampleASecond resamples a second of a microphone to 24 kHz:
// 48 kHz in the 100 ms chunks the ingest receives, 44.1 kHz in one piece.
func BenchmarkResampleASecond(b *testing.B) {
	for _, c := range []struct {
		name        string
		from, chunk int
	}{{"48kTo24k", 48000, 4800}, {"44kTo24k", 44100, 44100}} {
		b.Run(c.name, func(b *testing.B) {
			in := tone(1000, c.from, 1, 16000)
			r := NewResampler(c.from, 24000)
			b.SetBytes(int64(2 * len(in)))
			for b.Loop() {
				for i := 0; i < len(in); i += c.chunk {
					r.Process(in[i : i+c.chunk])
				}
			}
		})
	}
}
