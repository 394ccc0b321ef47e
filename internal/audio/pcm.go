// Package audio holds babelcast's audio plumbing: PCM16LE conversion, a
// streaming band-limited resampler, levels in dBFS, WAV reading and writing,
// MP3 decoding, and Source, which turns any supported input into the 24 kHz
// mono PCM16 stream that the rest of the system speaks.
package audio

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Rate is the sample rate of every PCM stream inside babelcast (speaker
// audio on NATS, translated audio, listener audio): 24 kHz mono PCM16LE,
// what the OpenAI Realtime API takes and gives.
const Rate = 24000

// Sample rates accepted from the outside world.
const (
	MinRate = 8000
	MaxRate = 192000
)

// CheckRate reports whether rate is one babelcast accepts as input.
func CheckRate(rate int) error {
	if rate < MinRate || rate > MaxRate {
		return fmt.Errorf("sample rate %d Hz is outside %d..%d", rate, MinRate, MaxRate)
	}
	return nil
}

// Samples decodes PCM16LE bytes into samples. A trailing odd byte is ignored.
func Samples(b []byte) []int16 { return AppendSamples(make([]int16, 0, len(b)/2), b) }

// AppendSamples appends the PCM16LE samples in b to dst.
func AppendSamples(dst []int16, b []byte) []int16 {
	for i := 0; i+1 < len(b); i += 2 {
		dst = append(dst, int16(binary.LittleEndian.Uint16(b[i:])))
	}
	return dst
}

// Bytes encodes samples as PCM16LE.
func Bytes(s []int16) []byte { return AppendBytes(make([]byte, 0, 2*len(s)), s) }

// AppendBytes appends samples to dst as PCM16LE.
func AppendBytes(dst []byte, s []int16) []byte {
	for _, v := range s {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(v))
	}
	return dst
}

// SilenceDB is the level reported for digital silence, instead of -Inf
// (which JSON cannot carry).
const SilenceDB = -100.0

// Level measures samples in dBFS: RMS and peak relative to full scale
// (32768), so a full-scale square wave is 0 dB and a full-scale sine is
// about -3 dB RMS. Silence and empty input give SilenceDB.
func Level(s []int16) (rmsDB, peakDB float64) {
	var m Meter
	m.Add(s)
	rmsDB, peakDB, _ = m.Take()
	return rmsDB, peakDB
}

// Meter measures the level of audio that comes in pieces, as Level does
// of one: a speaker's level over the messages of the last fraction of a
// second. The zero Meter is empty.
type Meter struct {
	sum  float64 // of the samples' squares
	n    int
	peak int
}

// Add takes samples into the measure.
func (m *Meter) Add(s []int16) {
	for _, v := range s {
		x := int(v)
		m.sum += float64(x * x)
		if x < 0 {
			x = -x
		}
		m.peak = max(m.peak, x)
	}
	m.n += len(s)
}

// Take returns the level of the samples added since the last Take, as
// Level measures it, and empties m; ok is false when none were added.
func (m *Meter) Take() (rmsDB, peakDB float64, ok bool) {
	if m.n == 0 {
		return SilenceDB, SilenceDB, false
	}
	rms := math.Sqrt(m.sum / float64(m.n))
	rmsDB, peakDB = toDB(rms/32768), toDB(float64(m.peak)/32768)
	*m = Meter{}
	return rmsDB, peakDB, true
}

func toDB(ratio float64) float64 {
	if ratio <= 0 {
		return SilenceDB
	}
	db := 20 * math.Log10(ratio)
	if db < SilenceDB {
		return SilenceDB
	}
	return math.Round(db*10) / 10
}

// clip16 rounds x to the nearest int16, saturating.
func clip16(x float64) int16 {
	switch {
	case x >= 32767:
		return 32767
	case x <= -32768:
		return -32768
	case x >= 0:
		return int16(x + 0.5)
	default:
		return int16(x - 0.5)
	}
}

// Downmix averages interleaved frames of the given channel count into mono,
// appending to dst. A trailing partial frame is ignored.
func Downmix(dst, interleaved []int16, channels int) []int16 {
	if channels <= 1 {
		return append(dst, interleaved...)
	}
	for i := 0; i+channels <= len(interleaved); i += channels {
		sum := 0
		for c := 0; c < channels; c++ {
			sum += int(interleaved[i+c])
		}
		// Round half away from zero so a symmetric signal stays symmetric.
		if sum >= 0 {
			dst = append(dst, int16((sum+channels/2)/channels))
		} else {
			dst = append(dst, int16(-((-sum + channels/2) / channels)))
		}
	}
	return dst
}
