package audio

import "math"

// Resampler converts a PCM16 mono stream from one sample rate to another.
//
// It is a polyphase windowed-sinc (Kaiser) resampler: each output sample is
// the input convolved with a sinc low-pass at 0.9 × min(from, to)/2 whose
// phase is the output instant's fractional position between input samples.
// The Kaiser window (β = 8.6, about 85 dB stopband) spans 32 zero crossings
// of the lower rate on each side, so the passband is flat to about 0.8 of
// the lower Nyquist frequency and everything above that Nyquist frequency
// is stopped (measured: 12.5 kHz into 24 kHz comes out over 100 dB down).
// Rate pairs needing more than 1024 filter phases (say 44101 → 24000)
// interpolate linearly between 1024 precomputed phases. Filter delay is
// compensated: output sample n is the input at time n·from/to, so a
// resampled stream lines up with its source and is ceil(len·to/from)
// samples long after Flush.
//
// No band-limited resampler that is kept up and pure Go exists on the
// module proxy (gopxl/beep interpolates without a low-pass), hence this one.
//
// A Resampler keeps state between calls, so feeding a stream in chunks gives
// exactly the samples of feeding it whole. It is not safe for concurrent
// use.
type Resampler struct {
	from, to int
	l, m     int // to/g, from/g: output n is at input time n·m/l
	half     int // taps on each side of the output instant
	phases   int // rows in table: l when exact, else interpolated
	exact    bool
	table    []float32 // phases(+1) rows of 2·half taps

	buf  []float32 // input samples from absolute index base
	base int64
	pos  int64 // floor of the next output's input time
	ph   int   // its fractional part, in 1/l
	n    int64 // input samples consumed so far
}

const (
	rsZeroCrossings = 32   // per side, at the lower rate
	rsRolloff       = 0.90 // cutoff as a fraction of the lower Nyquist frequency
	rsBeta          = 8.6  // Kaiser window shape
	rsMaxPhases     = 1024 // beyond this many phases, interpolate between rows
)

// NewResampler makes a resampler from one rate to another. Rates must be
// positive (see CheckRate for those babelcast accepts); it panics otherwise,
// as that is a programming error. When from == to, it copies its input.
func NewResampler(from, to int) *Resampler {
	if from <= 0 || to <= 0 {
		panic("audio: NewResampler with non-positive rate")
	}
	r := &Resampler{from: from, to: to}
	if from == to {
		return r
	}
	g := gcd(from, to)
	r.l, r.m = to/g, from/g
	low := min(from, to)
	// Filter half-width and cutoff in input samples / cycles per input sample.
	width := float64(rsZeroCrossings) * float64(from) / float64(low)
	fc := rsRolloff * 0.5 * float64(low) / float64(from)
	r.half = int(width) + 1
	r.exact = r.l <= rsMaxPhases
	r.phases = r.l
	rows := r.l
	if !r.exact {
		r.phases = rsMaxPhases
		rows = rsMaxPhases + 1
	}
	taps := 2 * r.half
	r.table = make([]float32, rows*taps)
	i0 := besselI0(rsBeta)
	for p := 0; p < rows; p++ {
		frac := float64(p) / float64(r.phases)
		row := r.table[p*taps : (p+1)*taps]
		var sum float64
		tmp := make([]float64, taps)
		for j := range taps {
			// Tap j weighs input k = pos-half+1+j; tau = t - k.
			tau := frac + float64(r.half-1-j)
			x := tau / width
			if x <= -1 || x >= 1 {
				continue
			}
			w := besselI0(rsBeta*math.Sqrt(1-x*x)) / i0
			tmp[j] = 2 * fc * sinc(2*fc*tau) * w
			sum += tmp[j]
		}
		// Normalise each phase to unity DC gain so a constant input stays
		// constant whatever the phase.
		for j := range taps {
			row[j] = float32(tmp[j] / sum)
		}
	}
	r.Reset()
	return r
}

// Reset forgets the stream so far, to start a new one.
func (r *Resampler) Reset() {
	if r.from == r.to {
		return
	}
	// Samples before the stream are silence.
	r.buf = r.buf[:0]
	for range r.half {
		r.buf = append(r.buf, 0)
	}
	r.base = -int64(r.half)
	r.pos, r.ph, r.n = 0, 0, 0
}

// From and To are the rates the resampler converts between.
func (r *Resampler) From() int { return r.from }
func (r *Resampler) To() int   { return r.to }

// Process resamples the next chunk of the stream. The output lags the input
// by the filter's half-width until Flush.
func (r *Resampler) Process(in []int16) []int16 {
	if r.from == r.to {
		return append([]int16(nil), in...)
	}
	for _, v := range in {
		r.buf = append(r.buf, float32(v))
	}
	r.n += int64(len(in))
	out := make([]int16, 0, int(int64(len(in))*int64(r.l)/int64(r.m))+2)
	return r.run(out, r.n)
}

// Flush ends the stream: it returns the outputs still held back, so the
// whole output is ceil(inputs·to/from) samples, and resets the resampler.
func (r *Resampler) Flush() []int16 {
	if r.from == r.to {
		return nil
	}
	for range r.half + 1 {
		r.buf = append(r.buf, 0)
	}
	out := r.run(nil, r.n)
	r.Reset()
	return out
}

// run produces every output whose input time is before limit and whose
// taps are all in buf, then drops input no later output needs.
func (r *Resampler) run(out []int16, limit int64) []int16 {
	taps := 2 * r.half
	end := r.base + int64(len(r.buf))
	for r.pos < limit && r.pos+int64(r.half) < end {
		start := int(r.pos - int64(r.half) + 1 - r.base)
		x := r.buf[start : start+taps]
		var acc float64
		if r.exact {
			row := r.table[r.ph*taps : (r.ph+1)*taps]
			acc = dot(x, row)
		} else {
			f := float64(r.ph) * float64(r.phases) / float64(r.l)
			i := int(f)
			a := f - float64(i)
			lo := r.table[i*taps : (i+1)*taps]
			hi := r.table[(i+1)*taps : (i+2)*taps]
			acc = (1-a)*dot(x, lo) + a*dot(x, hi)
		}
		out = append(out, clip16(acc))
		r.ph += r.m
		r.pos += int64(r.ph / r.l)
		r.ph %= r.l
	}
	// Keep from the first tap of the next output on.
	if drop := int(r.pos - int64(r.half) + 1 - r.base); drop > 0 {
		drop = min(drop, len(r.buf))
		n := copy(r.buf, r.buf[drop:])
		r.buf = r.buf[:n]
		r.base += int64(drop)
	}
	return out
}

func dot(x, h []float32) float64 {
	h = h[:len(x)]
	var a0, a1, a2, a3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a0 += x[i] * h[i]
		a1 += x[i+1] * h[i+1]
		a2 += x[i+2] * h[i+2]
		a3 += x[i+3] * h[i+3]
	}
	for ; i < len(x); i++ {
		a0 += x[i] * h[i]
	}
	return float64(a0) + float64(a1) + float64(a2) + float64(a3)
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the zeroth-order modified Bessel function of the first kind,
// by its power series (converges quickly for the β used here).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	q := x * x / 4
	for k := 1; k < 200; k++ {
		term *= q / float64(k*k)
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
