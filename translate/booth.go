package translate

import (
	"time"

	"github.com/nats-io/nats.go"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/booth"
	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/internal/subject"
)

// humanPreRoll is the floor audio held back while an interpreter covers
// the channel that goes to the model when it no longer does: the
// sentence the interpreter left unfinished.
const humanPreRoll = 20 // ticks of inputTick: 2 s

// humanGate holds a channel's model input back while a human interpreter
// of its booth covers it: on air and speaking, or silent for less than
// booth.FeedLimit while the floor speaks. The session stays open, fed
// nothing: a model bills the audio it is sent. When the interpreter falls
// silent, hands over, mutes or hangs up, the input opens with the last
// humanPreRoll of the floor, ahead of fanout's own switch to the AI
// (booth.SilenceLimit), so the AI has its words ready when it is heard.
type humanGate struct {
	track *booth.Tracker
	held  []audio.Mix // input thread only
}

func newHumanGate() *humanGate { return &humanGate{track: booth.NewTracker(booth.FeedLimit)} }

// covers reports whether the interpreter covers the channel at now, and
// holds m back if so.
func (g *humanGate) covers(m audio.Mix, now time.Time) bool {
	if !g.track.Human(now) {
		return false
	}
	if m.Live() {
		if g.held = append(g.held, m); len(g.held) > humanPreRoll {
			g.held = g.held[1:]
		}
	}
	return true
}

// release returns what was held back, once: the pre-roll.
func (g *humanGate) release() []audio.Mix {
	h := g.held
	g.held = nil
	return h
}

// pushBooth takes a frame of the channel's booth: the interpreter on air
// (an empty frame: nobody is, any more).
func (in *input) pushBooth(f audio.Frame, silent time.Duration, spoke bool, now time.Time) {
	if len(f.PCM) == 0 {
		in.human.track.Off()
		return
	}
	in.human.track.Frame(f.Speech, silent, spoke, now)
}

// deliverBooth hands a booth's frame to the inputs of its channel.
func (fs *feeds) deliverBooth(roomID string, m *nats.Msg) {
	if len(m.Data)%2 != 0 {
		metrics.FramesDropped.WithLabelValues("translate", "bad_frame").Inc()
		return
	}
	f, _ := subject.FrameOf(m)
	silent, spoke := subject.SilentFor(m)
	lang := subject.BoothLang(m.Subject)
	now := time.Now()
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	if fd := fs.m[roomID]; fd != nil {
		for in := range fd.inputs {
			if in.lang == lang {
				in.pushBooth(f, silent, spoke, now)
			}
		}
	}
}
