package fanout

import (
	"context"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
)

// A channel's program is what its listeners hear, composed on this node
// from what NATS brings, on a steady clock:
//
//   - the floor (lang=floor) is the mix of every live mic;
//   - a language's channel plays the original voice while the floor speaks
//     that language (the mix of the mics speaking it), and the channel's
//     interpretation (from its translator, or relayed from a human
//     interpreter) otherwise. When the original takes over while an
//     interpretation is still playing, the interpretation goes on, ducked
//     under the original, rather than being cut: no word is lost. With no
//     interpretation to play, the channel's own mics play even when nobody
//     speaks into them (room sound, as the floor carries it);
//   - the variant without passthrough (for a participant who must not hear
//     themselves) is the interpretation alone.
//
// Every tick yields one frame per variant, as long as the audio it holds
// (a voice that ends mid-tick is not padded), or nothing when there is
// nothing to play: the WebSocket sends what there is, continuous streams
// (WAV) fill the tick with silence.
const (
	// programTick is the program's clock: the length of the frames sent.
	programTick = 100 * time.Millisecond
	// micPrefill buffers each mic's frames (100 ms from ingest) and the
	// network's jitter before they play.
	micPrefill = 150 * time.Millisecond
	// micMaxDelay bounds how far a mic may fall behind the room.
	micMaxDelay = time.Second
	// interpPrefill: the translator publishes its interpretation at real
	// time, a little ahead: little to wait for.
	interpPrefill = 50 * time.Millisecond
	// interpMaxDelay bounds a backlog of interpretation.
	interpMaxDelay = 5 * time.Second
	// duckGain is the interpretation's level under the original (-12 dB).
	duckGain = 0.25
)

// program composes one channel. Its mixers take frames from NATS callbacks;
// run owns the clock.
type program struct {
	floor  bool
	lang   string
	orig   *audio.Mixer // the mics this channel plays in the original
	interp *audio.Mixer // the channel's interpretation, one voice
	pick   *voicePick   // its booth's interpreter, and the choice (voice.go)
	tick   time.Duration
}

func newProgram(lang string, floor bool) *program {
	p := &program{
		floor: floor, lang: lang, tick: programTick,
		orig: audio.NewMixer(audio.MixerOptions{Prefill: micPrefill, MaxDelay: micMaxDelay}),
	}
	if !floor {
		p.interp = audio.NewMixer(audio.MixerOptions{Prefill: interpPrefill, MaxDelay: interpMaxDelay})
		p.pick = newVoicePick()
	}
	return p
}

// plays reports whether the channel plays mic audio in lang in the
// original.
func (p *program) plays(lang string) bool { return p.floor || lang == p.lang }

// pushMic takes a mic's frame (its language already known); the mics this
// channel does not play in the original are left out.
func (p *program) pushMic(f audio.Frame, now time.Time) {
	p.floorSpeech(f, now)
	if p.plays(f.Lang) {
		pushCounted(p.orig, f, now, droppedMicBehind)
	}
}

// pushInterp takes a frame of the channel's interpretation.
func (p *program) pushInterp(f audio.Frame, now time.Time) {
	if p.interp != nil {
		f.Mic = "interpretation"
		pushCounted(p.interp, f, now, droppedInterpBehind)
	}
}

// programFrame is one tick of the program, in both variants.
type programFrame struct {
	full, alone []byte    // PCM, at most a tick; nil when silent
	captured    time.Time // of the speech in full (or alone), zero when unknown
	aloneAt     time.Time
	voice       string // whose interpretation: booth.Human or booth.AI ("" on the floor)
}

// played is the part of m's PCM some voice filled: a voice starts at the
// start of the tick (the mixer takes from every mic's front), so it is a
// prefix.
func played(m audio.Mix) []byte {
	n := 0
	for _, p := range m.Mics {
		n = max(n, p.Samples)
	}
	return m.PCM[:2*n]
}

// compose takes one tick of every source and composes the variants.
func (p *program) compose(now time.Time) programFrame {
	n := audio.DurationBytes(p.tick) / 2
	o := p.orig.Mix(n, now)
	var i audio.Mix
	var f programFrame
	if p.interp != nil {
		i, f.voice = p.interpretation(n, now)
	}
	if i.Live() {
		f.alone, f.aloneAt = played(i), i.Captured
	}
	switch {
	case o.Speech() && i.Live():
		f.full, f.captured = duckUnder(played(o), played(i)), o.Captured
	case o.Speech():
		f.full, f.captured = played(o), o.Captured
	case i.Live():
		f.full, f.captured = played(i), i.Captured
	case o.Live():
		f.full, f.captured = played(o), o.Captured
	}
	return f
}

// duckUnder mixes under into over at duckGain, into a new slice as long as
// the longer of the two.
func duckUnder(over, under []byte) []byte {
	out := make([]byte, max(len(over), len(under)))
	copy(out, over)
	for k := 0; k+1 < len(under); k += 2 {
		a := int32(int16(uint16(out[k]) | uint16(out[k+1])<<8))
		b := int32(int16(uint16(under[k]) | uint16(under[k+1])<<8))
		v := a + int32(float32(b)*duckGain)
		v = max(-32768, min(32767, v))
		out[k], out[k+1] = byte(v), byte(uint16(v)>>8)
	}
	return out
}

// run composes a frame every tick and hands it to deliver, until ctx ends.
// The clock keeps to wall time: after a stall it catches up tick by tick
// rather than drifting behind the room.
func (p *program) run(ctx context.Context, deliver func(programFrame)) {
	next := time.Now().Add(p.tick)
	timer := time.NewTimer(p.tick)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := time.Now()
		for !next.After(now) {
			deliver(p.compose(now))
			next = next.Add(p.tick)
			if now.Sub(next) > time.Second { // a long stall: start again from now
				next = now.Add(p.tick)
			}
		}
		timer.Reset(next.Sub(now))
	}
}
