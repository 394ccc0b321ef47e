package translate

import (
	"context"
	"sync"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/translate/engine"
)

// What a session hears, and when.
const (
	// inputTick is the clock of a session's input: how much of the mix is
	// taken at a time.
	inputTick = 100 * time.Millisecond
	// inputPrefill is what each mic buffers before it plays into the mix:
	// a speaker frame (100 ms) and network jitter.
	inputPrefill = 150 * time.Millisecond
	// inputMaxDelay bounds a mic's backlog: speakers send at their own
	// pace, a file may come in bursts, and none of it should be lost.
	inputMaxDelay = 15 * time.Second
	// gateHold keeps the input open this long after the last speech, so
	// pauses between words and sentences reach the model (it needs them to
	// end sentences and turns) before the input is held back.
	gateHold = 2 * time.Second
	// preRoll is the audio just before speech that goes with it when the
	// input opens, so a first syllable the detector needed to hear is not
	// cut.
	preRoll = 3 // ticks
)

var inputDropped = metrics.FramesDropped.WithLabelValues("translate", "input_behind")

// input is what a session of a channel hears: the room's mics that speak
// another language than the channel's own, and one the engine understands,
// mixed on the session's own clock. While none of them speaks, nothing is
// sent: the channel's listeners hear the floor itself then (it speaks
// their language, or nobody speaks), and a model is billed for the audio
// it is sent, silence too.
type input struct {
	lang    string   // the channel's language: speech in it is not sent
	sources []string // languages the engine understands; nil: any
	unsaid  string   // the language of a frame that does not say: the room's source language
	mixer   *audio.Mixer
	attr    *attribution
	human   *humanGate // the channel's booth (booth.go)
	tick    time.Duration
}

func newInput(lang, unsaid string, sources []string, attr *attribution) *input {
	return &input{
		lang: lang, unsaid: unsaid, sources: sources, attr: attr, tick: inputTick, human: newHumanGate(),
		mixer: audio.NewMixer(audio.MixerOptions{Prefill: inputPrefill, MaxDelay: inputMaxDelay}),
	}
}

// hears reports whether the session should hear speech in lang.
func (in *input) hears(lang string) bool {
	return lang != in.lang && room.Covers(in.sources, lang)
}

// push takes a frame of a mic of the room; it runs on the room's NATS
// subscription and never blocks.
func (in *input) push(f audio.Frame, now time.Time) {
	if f.Lang == "" {
		f.Lang = in.unsaid
	}
	if !in.hears(f.Lang) {
		// The mic switched to the channel's language, or one the engine
		// does not know: what it still had queued plays out, then stops.
		return
	}
	if f.Speech {
		in.human.track.Floor(now)
	}
	before := in.mixer.Dropped()
	in.mixer.Push(f, now)
	if d := in.mixer.Dropped() - before; d > 0 {
		inputDropped.Add(float64(d) / float64(audio.DurationBytes(100*time.Millisecond)/2))
	}
}

// run feeds sess from the mix until ctx ends: speech, the pauses within
// gateHold of it, and the preRoll before it.
func (in *input) run(ctx context.Context, sess engine.Session, onAppendErr func(error)) {
	t := time.NewTicker(in.tick)
	defer t.Stop()
	n := audio.DurationBytes(in.tick) / 2
	var (
		lastSpeech time.Time
		held       []audio.Mix // the last ticks not sent, for the pre-roll
	)
	send := func(m audio.Mix) {
		in.attr.heard(m)
		onAppendErr(sess.Append(m.PCM, m.Captured))
	}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			m := in.mixer.Mix(n, now)
			if in.human.covers(m, now) {
				held = held[:0]
				continue
			}
			for _, h := range in.human.release() {
				if h.Speech() {
					lastSpeech = now
				}
				send(h)
			}
			if !m.Live() {
				held = held[:0]
				continue
			}
			if m.Speech() {
				if lastSpeech.IsZero() || now.Sub(lastSpeech) > gateHold {
					for _, h := range held {
						send(h)
					}
					held = held[:0]
				}
				lastSpeech = now
			}
			if !lastSpeech.IsZero() && now.Sub(lastSpeech) <= gateHold {
				send(m)
				continue
			}
			if held = append(held, m); len(held) > preRoll {
				held = held[1:]
			}
		}
	}
}

// attribution remembers who said what in which language, by capture
// time, for the audio a session was sent: the session's output is
// labelled with it (captions name the speaker and the language they
// interpret) without the engine having to know.
type attribution struct {
	mu    sync.Mutex
	spans []heardSpan // in capture order, bounded
	last  heardSpan   // the latest span with speech
}

type heardSpan struct {
	from, to      time.Time
	lang, speaker string
	speech        bool
}

// maxSpans bounds the memory: a few minutes of 100 ms ticks.
const maxSpans = 2048

// heard records a mix sent to the session.
func (a *attribution) heard(m audio.Mix) {
	var best audio.MicPart
	for _, p := range m.Mics {
		if (p.Speech && !best.Speech) || (p.Speech == best.Speech && p.Samples > best.Samples) {
			best = p
		}
	}
	if best.Mic == "" || m.Captured.IsZero() {
		return
	}
	sp := heardSpan{from: m.Captured, to: m.Captured.Add(audio.BytesDuration(len(m.PCM))), lang: best.Lang, speaker: best.Speaker, speech: best.Speech}
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := len(a.spans); n > 0 && a.spans[n-1].lang == sp.lang && a.spans[n-1].speaker == sp.speaker &&
		a.spans[n-1].speech == sp.speech && !sp.from.Before(a.spans[n-1].from) {
		a.spans[n-1].to = sp.to // the same voice goes on
	} else {
		if len(a.spans) == maxSpans {
			a.spans = append(a.spans[:0], a.spans[maxSpans/2:]...)
		}
		a.spans = append(a.spans, sp)
	}
	if best.Speech {
		a.last = sp
	}
}

// at is who spoke the audio captured at t, as far as is known: the last
// speech at or before t (a pause belongs to whoever spoke before it).
func (a *attribution) at(t time.Time) (lang, speaker string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t.IsZero() {
		return a.last.lang, a.last.speaker
	}
	for i := len(a.spans) - 1; i >= 0; i-- {
		if !t.Before(a.spans[i].from) && a.spans[i].speech {
			return a.spans[i].lang, a.spans[i].speaker
		}
	}
	if len(a.spans) > 0 {
		return a.spans[0].lang, a.spans[0].speaker
	}
	return "", ""
}

// latest is who spoke last: what a transcript of the input just now is of.
func (a *attribution) latest() (lang, speaker string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last.lang, a.last.speaker
}
