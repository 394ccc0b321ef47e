package local

import (
	"math"
	"time"
)

// vad cuts the speaker's audio into turns by energy: a turn starts when
// most of the last few 10 ms frames are well above the noise floor, and
// ends after a hangover of quiet, so a breath between words does not split
// a sentence. Turns longer than maxTurn are cut, at a short pause when one
// comes in the last two seconds before the limit, else hard.
//
// The noise floor follows the quietest frames at once and rises slowly
// (2 dB a second), so a noisier room is learned within seconds while a
// long sentence does not raise the floor above the speech.
type vad struct {
	rate      int // samples per second (16000 in the session)
	frameLen  int // samples per 10 ms frame
	hangover  int // quiet frames that end a turn
	softPause int // quiet frames that end a turn near maxTurn
	maxTurn   int // frames
	softFrom  int // frames into a turn where a short pause may end it
	preRoll   int // frames of audio kept before the onset

	noiseDB float64
	recent  []bool    // speech decisions of the last onsetWindow frames
	pre     [][]int16 // frames before a turn, for its pre-roll
	frame   []int16   // partial frame
	inTurn  bool
	turnLen int   // frames in the current turn
	quiet   int   // consecutive quiet frames in the turn
	speech  int   // speech frames in the current turn
	pos     int64 // samples consumed: the stream position of frame
}

const (
	vadFrame          = 10 * time.Millisecond
	onsetWindow       = 8  // frames looked at for an onset
	onsetNeeded       = 5  // speech frames among them that start a turn
	speechMarginDB    = 10 // above the noise floor
	speechMinDB       = -55.0
	noiseStartDB      = -60.0
	noiseMinDB        = -90.0
	noiseRisePerFrame = 0.02 // dB: 2 dB a second
)

// vadEvent is what the detector reports while consuming audio.
type vadEvent struct {
	kind    vadKind
	samples []int16       // turn audio (vadAudio, and vadStart's pre-roll)
	at      int64         // stream position of the first sample (vadStart)
	speech  time.Duration // speech in the turn (vadEnd)
	cut     bool          // vadEnd: the turn hit its length limit
}

type vadKind int

const (
	vadStart vadKind = iota
	vadAudio
	vadEnd
)

func newVAD(rate int, hangover, maxTurn time.Duration) *vad {
	fl := rate * int(vadFrame/time.Millisecond) / 1000
	frames := func(d time.Duration) int { return max(1, int(d/vadFrame)) }
	v := &vad{
		rate: rate, frameLen: fl,
		hangover:  frames(hangover),
		softPause: frames(min(hangover, 150*time.Millisecond)),
		maxTurn:   frames(maxTurn),
		softFrom:  frames(max(maxTurn-2*time.Second, maxTurn/2)),
		preRoll:   frames(300 * time.Millisecond),
		noiseDB:   noiseStartDB,
	}
	return v
}

// push consumes samples and calls emit for each event, in order. Audio
// events carry copies: the caller may keep them.
func (v *vad) push(s []int16, emit func(vadEvent)) {
	for len(s) > 0 {
		n := min(v.frameLen-len(v.frame), len(s))
		v.frame = append(v.frame, s[:n]...)
		s = s[n:]
		if len(v.frame) == v.frameLen {
			v.step(v.frame, emit)
			v.pos += int64(v.frameLen)
			v.frame = make([]int16, 0, v.frameLen)
		}
	}
}

// flush ends the turn in progress, if any, with the partial frame.
func (v *vad) flush(emit func(vadEvent)) {
	if v.inTurn {
		if len(v.frame) > 0 {
			emit(vadEvent{kind: vadAudio, samples: v.frame})
		}
		v.end(false, emit)
	}
	v.frame = make([]int16, 0, v.frameLen)
}

func (v *vad) step(f []int16, emit func(vadEvent)) {
	db := frameDB(f)
	isSpeech := db > max(v.noiseDB+speechMarginDB, speechMinDB)
	if db < v.noiseDB {
		v.noiseDB = max(db, noiseMinDB)
	} else {
		v.noiseDB += noiseRisePerFrame
	}
	v.recent = append(v.recent, isSpeech)
	if len(v.recent) > onsetWindow {
		v.recent = v.recent[1:]
	}

	if !v.inTurn {
		v.pre = append(v.pre, f)
		if len(v.pre) > v.preRoll {
			v.pre = v.pre[1:]
		}
		if count(v.recent) < onsetNeeded {
			return
		}
		v.inTurn, v.turnLen, v.quiet, v.speech = true, len(v.pre), 0, count(v.recent)
		var pre []int16
		for _, p := range v.pre {
			pre = append(pre, p...)
		}
		at := v.pos + int64(v.frameLen) - int64(len(pre))
		v.pre = v.pre[:0]
		emit(vadEvent{kind: vadStart, samples: pre, at: at})
		return
	}

	emit(vadEvent{kind: vadAudio, samples: f})
	v.turnLen++
	if isSpeech {
		v.quiet = 0
		v.speech++
	} else {
		v.quiet++
	}
	switch {
	case v.quiet >= v.hangover:
		v.end(false, emit)
	case v.turnLen >= v.softFrom && v.quiet >= v.softPause:
		v.end(false, emit)
	case v.turnLen >= v.maxTurn:
		v.end(true, emit)
	}
}

func (v *vad) end(cut bool, emit func(vadEvent)) {
	emit(vadEvent{kind: vadEnd, speech: time.Duration(v.speech) * vadFrame, cut: cut})
	v.inTurn = false
	v.recent = v.recent[:0]
	v.pre = v.pre[:0]
}

func count(b []bool) int {
	n := 0
	for _, x := range b {
		if x {
			n++
		}
	}
	return n
}

// frameDB is a frame's RMS level in dBFS.
func frameDB(f []int16) float64 {
	if len(f) == 0 {
		return noiseMinDB
	}
	var sum float64
	for _, x := range f {
		sum += float64(x) * float64(x)
	}
	rms := math.Sqrt(sum/float64(len(f))) / 32768
	if rms <= 0 {
		return -120
	}
	return 20 * math.Log10(rms)
}
