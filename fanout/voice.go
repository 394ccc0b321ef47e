package fanout

import (
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/booth"
)

// A language's channel may have a booth of human interpreters. Its
// program then chooses, every tick, whose interpretation it plays: the
// interpreter on air (from subject.Booths) or the AI (subject.Out), as a
// booth.Tracker decides from the booth's frames and the floor's speech.
// The voice not chosen is drained and dropped, so neither falls behind;
// listeners' state messages say which is heard ("voice").

// voicePick holds a channel's human voice and the tracker that chooses.
type voicePick struct {
	human *audio.Mixer
	track *booth.Tracker
}

func newVoicePick() *voicePick {
	return &voicePick{
		human: audio.NewMixer(audio.MixerOptions{Prefill: micPrefill, MaxDelay: micMaxDelay}),
		track: booth.NewTracker(booth.SilenceLimit),
	}
}

// floorSpeech notes speech of a mic the channel interprets.
func (p *program) floorSpeech(f audio.Frame, now time.Time) {
	if p.pick != nil && f.Speech && !p.plays(f.Lang) {
		p.pick.track.Floor(now)
	}
}

// pushHuman takes a frame of the booth's interpreter on air; an empty
// frame says nobody is on air any more.
func (p *program) pushHuman(f audio.Frame, silent time.Duration, spoke bool, now time.Time) {
	if p.pick == nil {
		return
	}
	if len(f.PCM) == 0 {
		p.pick.track.Off()
		return
	}
	p.pick.track.Frame(f.Speech, silent, spoke, now)
	p.pick.human.Push(f, now)
}

// interpretation mixes a tick of both voices and returns the chosen one,
// and its name.
func (p *program) interpretation(n int, now time.Time) (audio.Mix, string) {
	if p.pick == nil {
		return p.interp.Mix(n, now), booth.AI
	}
	ai, human := p.interp.Mix(n, now), p.pick.human.Mix(n, now)
	if p.pick.track.Human(now) {
		return human, booth.Human
	}
	return ai, booth.AI
}

// setVoice tells listeners whose interpretation the channel now carries.
func (c *channel) setVoice(v string) {
	if c.floor {
		return
	}
	c.stateMu.Lock()
	if c.voice == v {
		c.stateMu.Unlock()
		return
	}
	c.voice = v
	m, known := c.state, c.stateKnown
	c.stateMu.Unlock()
	if known {
		c.setState(m) // with the voice
	}
}

// voiceIs reports whether the channel carries voice v now.
func (c *channel) voiceIs(v string) bool {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.voice == v
}
