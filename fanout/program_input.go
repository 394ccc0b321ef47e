package fanout

import (
	"time"

	"github.com/nats-io/nats.go"

	"github.com/babelcast/babelcast/internal/subject"
)

// programInput feeds a program from NATS: the room's mics, and for a
// channel other than the floor its interpretation and its booth. A hub's
// channel and a channel's recorder each have one; only the hub's counts
// its frames in the fan-out's metrics.
type programInput struct {
	prog   *program
	unsaid string // the room's source language: what a mic that does not say speaks
	count  bool   // count frames in framesIn and oddAudio
}

// subscribe subscribes, with sub, to what the program of channel lang of
// the room hears.
func (in *programInput) subscribe(roomID, lang string, floor bool, sub func(string, nats.MsgHandler) error) error {
	err := sub(subject.Mics(roomID), in.onMic)
	if err == nil && !floor {
		err = sub(subject.Out(roomID, lang), in.onInterp)
	}
	if err == nil && !floor {
		err = sub(subject.Booths(roomID, lang), in.onBooth)
	}
	return err
}

// odd counts a frame in, and reports whether its audio is not whole
// samples: half a sample would shift every later one.
func (in *programInput) odd(m *nats.Msg) bool {
	if in.count {
		framesIn.Inc()
	}
	if len(m.Data)%2 == 0 {
		return false
	}
	if in.count {
		oddAudio.Inc()
	}
	return true
}

// onMic takes a frame of one of the room's mics.
func (in *programInput) onMic(m *nats.Msg) {
	if in.odd(m) || len(m.Data) == 0 {
		return
	}
	f, _ := subject.FrameOf(m)
	if f.Lang == "" {
		f.Lang = in.unsaid
	}
	in.prog.pushMic(f, time.Now())
}

// onInterp takes a frame of the channel's interpretation.
func (in *programInput) onInterp(m *nats.Msg) {
	if in.odd(m) || len(m.Data) == 0 {
		return
	}
	f, _ := subject.FrameOf(m)
	in.prog.pushInterp(f, time.Now())
}

// onBooth takes a frame of the channel's booth (an empty one says nobody
// is on air any more: voice.go).
func (in *programInput) onBooth(m *nats.Msg) {
	if in.odd(m) {
		return
	}
	f, _ := subject.FrameOf(m)
	silent, spoke := subject.SilentFor(m)
	in.prog.pushHuman(f, silent, spoke, time.Now())
}
