// Package signal is a test signal for lossy audio paths (Opus): a
// voice-like sound whose length and energy envelope can be found again
// after encoding, mixing and decoding, the comparison that finds them,
// and the decoding of an Ogg/Opus recording to compare.
// Tests use it to check that what a listener decodes is what was sent:
// as long (no packet lost) and shaped the same.
package signal

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/audio/opus"
)

// Step is the envelope's step: the signal's level changes every Step.
const Step = 200 * time.Millisecond

// Make returns d of the signal at 24 kHz: two tones under an envelope
// that steps every Step, never silent.
func Make(d time.Duration) []int16 {
	levels := []float64{0.08, 0.5, 0.2, 0.7, 0.3, 0.6, 0.1, 0.45, 0.25, 0.65}
	step := int(Step.Seconds() * audio.Rate)
	s := make([]int16, int(d.Seconds()*audio.Rate))
	for i := range s {
		t := float64(i) / audio.Rate
		a := levels[(i/step)%len(levels)]
		s[i] = int16(a * 16000 * (math.Sin(2*math.Pi*310*t) + 0.6*math.Sin(2*math.Pi*720*t)) / 1.6)
	}
	return s
}

// Loud is where s is louder than silence (and codec noise): its first and
// last such sample, -1 when there is none.
func Loud(s []int16) (first, last int) {
	first, last = -1, -1
	for i, v := range s {
		if v > 600 || v < -600 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	return first, last
}

// Heard reports whether s holds a whole signal with at least tail of
// silence after it.
func Heard(s []int16, tail time.Duration) bool {
	f, l := Loud(s)
	return f >= 0 && len(s)-l > int(tail.Seconds()*audio.Rate) && l > f
}

// RMS is the root mean square of s.
func RMS(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(max(1, len(s))))
}

// Compare checks that got holds want: as long, within 10 ms (a lost 20 ms
// packet would shorten it by twice that), and with the same level in the
// middle of every step of the envelope (within -3/+3 dB). It returns what
// differs.
func Compare(want, got []int16) []string {
	var errs []string
	wf, wl := Loud(want)
	gf, gl := Loud(got)
	if gf < 0 {
		return []string{fmt.Sprintf("decoded audio is silent (%d samples)", len(got))}
	}
	if d := (gl - gf) - (wl - wf); d < -240 || d > 240 {
		errs = append(errs, fmt.Sprintf("the signal lasts %d samples, want %d (±240)", gl-gf, wl-wf))
	}
	step := int(Step.Seconds() * audio.Rate)
	for k := 0; wf+(k+1)*step <= wl; k++ {
		a := want[wf+k*step+step/4 : wf+k*step+3*step/4]
		from := gf + k*step + step/4
		if from+step/2 > len(got) {
			return append(errs, fmt.Sprintf("decoded audio ends in step %d", k))
		}
		if r := RMS(got[from:from+step/2]) / RMS(a); r < 0.7 || r > 1.4 {
			errs = append(errs, fmt.Sprintf("step %d: level %.0f, want %.0f", k, RMS(got[from:from+step/2]), RMS(a)))
		}
	}
	return errs
}

// DecodeOggFile reads an Ogg/Opus file with opus.Reader (which checks
// every page's CRC) and decodes it with libopus, to 24 kHz.
func DecodeOggFile(path string) ([]int16, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := opus.NewReader(f)
	dec, err := opus.NewDecoder()
	if err != nil {
		return nil, err
	}
	var pcm []int16
	for {
		p, _, err := r.ReadPacket()
		if errors.Is(err, io.EOF) {
			return pcm, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if pcm, err = dec.Decode(pcm, p); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
}
