package audio

import (
	"math"
	"time"
)

// VoiceDetector tells speech from silence and room noise in one mic's
// audio, by energy. A 10 ms block is loud when it stands speechMarginDB
// above the noise floor (and above an absolute minimum). Voice starts when
// onsetNeeded of the last onsetWindow blocks are loud (a click is not
// speech) and lasts until no block has been loud for the hangover, so the
// gaps between words do not count as silence.
//
// The noise floor follows the quietest blocks at once and rises slowly
// (2 dB a second), so a noisy room is learned within seconds while a long
// sentence does not raise the floor above the speech.
type VoiceDetector struct {
	hangover int // blocks

	noiseDB   float64
	block     []int16 // partial block carried to the next call
	recent    uint8   // loudness of the last onsetWindow blocks, one bit each
	voice     bool
	sinceLoud int // blocks since the last loud one
}

const (
	voiceBlock        = Rate / 100 // 10 ms
	onsetWindow       = 8
	onsetNeeded       = 3
	speechMarginDB    = 10.0
	speechMinDB       = -50.0
	noiseStartDB      = -60.0
	noiseMinDB        = -90.0
	noiseRisePerBlock = 0.02 // dB: 2 dB a second
)

// NewVoiceDetector makes a detector whose voice lasts hangover after the
// last loud block (300 ms when zero).
func NewVoiceDetector(hangover time.Duration) *VoiceDetector {
	if hangover <= 0 {
		hangover = 300 * time.Millisecond
	}
	return &VoiceDetector{hangover: int(hangover / (10 * time.Millisecond)), noiseDB: noiseStartDB}
}

// Voice consumes the next samples of the mic and reports whether any of
// them is voice.
func (v *VoiceDetector) Voice(s []int16) bool {
	any := v.voice
	for len(s) > 0 {
		k := min(voiceBlock-len(v.block), len(s))
		v.block = append(v.block, s[:k]...)
		s = s[k:]
		if len(v.block) < voiceBlock {
			break
		}
		v.step(v.block)
		v.block = v.block[:0]
		any = any || v.voice
	}
	return any
}

// step takes one block: updates the noise floor, the onset window and the
// voice state.
func (v *VoiceDetector) step(b []int16) {
	db, _ := Level(b)
	loud := db > speechMinDB && db > v.noiseDB+speechMarginDB
	if db < v.noiseDB {
		v.noiseDB = math.Max(db, noiseMinDB)
	} else {
		v.noiseDB += noiseRisePerBlock
	}
	v.recent <<= 1
	if loud {
		v.recent |= 1
		v.sinceLoud = 0
	} else {
		v.sinceLoud++
	}
	switch {
	case !v.voice && onesIn(v.recent) >= onsetNeeded:
		v.voice = true
	case v.voice && v.sinceLoud > v.hangover:
		v.voice = false
	}
}

func onesIn(x uint8) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}
