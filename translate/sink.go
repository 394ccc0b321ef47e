package translate

import (
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/internal/wire"
	"github.com/babelcast/babelcast/translate/engine"
)

// outlet publishes a channel's output on NATS. It outlives sessions, so the
// audio sequence and caption segments keep increasing across session
// restarts, and it is gated: once the channel's lease is lost nothing more is
// published, so two nodes never speak at once.
type outlet struct {
	nc                        *nats.Conn
	outSubj, capSubj, srcSubj string      // the channel's audio, captions, source captions
	open                      atomic.Bool // publishing allowed: set while this node owns the channel

	seq     atomic.Uint64 // last audio sequence number published
	nextSeg atomic.Uint64 // one past the highest caption segment published
	nextSrc atomic.Uint64 // one past the highest source caption segment published

	// attr says who spoke what the sessions are sent, to label their output.
	attr *attribution

	// Pacing (pace.go): queue is filled by the sinks; playhead and held
	// belong to the pace goroutine, then to drain.
	queue    *audio.Queue[pacedMsg]
	playhead time.Time
	held     *pacedMsg
}

func newOutlet(nc *nats.Conn, room, lang string) *outlet {
	return &outlet{
		nc:      nc,
		outSubj: subject.Out(room, lang), capSubj: subject.Caption(room, lang), srcSubj: subject.SourceCaption(room, lang),
		queue: newPaceQueue(), attr: &attribution{},
	}
}

// sessionSink is the Sink given to one session. It renumbers the session's
// caption segments after those of earlier sessions of the channel, so a
// listener never sees a new line replace an old one, and labels what the
// session says with who spoke it and in what language (from the outlet's
// attribution): the session's own goroutine calls it, one call at a time.
type sessionSink struct {
	o              *outlet
	segOff, srcOff uint64
	target, source string
	// lag is how far the session's audio runs behind the speech it
	// interprets, as its latest audio said (0 before any).
	lag time.Duration
	// lines are who and what each caption line in progress interprets,
	// fixed at its first words so its label does not flip.
	lines map[uint64]heardSpan
}

func (o *outlet) sink(ch engine.Channel) *sessionSink {
	return &sessionSink{
		o: o, target: ch.Target, source: ch.Source,
		segOff: o.nextSeg.Load(), srcOff: o.nextSrc.Load(),
	}
}

func (s *sessionSink) Audio(pcm []byte, captured time.Time) {
	o := s.o
	if !o.open.Load() || len(pcm) == 0 {
		return
	}
	if len(pcm)%2 != 0 {
		pcm = pcm[:len(pcm)-1] // never publish half a sample
	}
	lang, speaker := o.attr.at(captured)
	if !captured.IsZero() {
		s.lag = time.Since(captured)
	}
	f := audio.Frame{PCM: pcm, Captured: captured, Lang: lang, Speaker: speaker, Speech: true, Voice: VoiceAI}
	o.enqueue(pacedMsg{msg: subject.FrameMsg(o.outSubj, f, o.seq.Add(1)), dur: audio.BytesDuration(len(pcm))})
}

// Voices of a channel's interpretation.
const (
	VoiceAI    = "ai"
	VoiceHuman = "human"
)

func (s *sessionSink) Caption(segment uint64, text string, final bool) {
	seg := s.segOff + segment
	who, ok := s.lines[segment]
	if !ok {
		// A line starts: it interprets what was said about the session's
		// lag ago (what was said last, before any audio).
		if s.lag > 0 {
			who.lang, who.speaker = s.o.attr.at(time.Now().Add(-s.lag))
		} else {
			who.lang, who.speaker = s.o.attr.latest()
		}
		if s.lines == nil {
			s.lines = map[uint64]heardSpan{}
		}
		s.lines[segment] = who
	}
	if final || len(s.lines) > 100 {
		delete(s.lines, segment)
	}
	lang, speaker := who.lang, who.speaker
	s.o.publishCaption(s.o.capSubj, wire.Caption{
		Type: wire.TypeCaption, Lang: s.target, Text: text, Final: final, Segment: seg,
		Speaker: speaker, SourceLanguage: lang,
	}, &s.o.nextSeg)
}

func (s *sessionSink) SourceCaption(segment uint64, text string, final bool) {
	seg := s.srcOff + segment
	lang, speaker := s.o.attr.latest()
	if lang == "" {
		lang = s.source
	}
	s.o.publishCaption(s.o.srcSubj, wire.Caption{
		Type: wire.TypeCaption, Lang: lang, Text: text, Final: final, Segment: seg, Source: true,
		Speaker: speaker, SourceLanguage: lang,
	}, &s.o.nextSrc)
}

func (o *outlet) publishCaption(subj string, c wire.Caption, next *atomic.Uint64) {
	if !o.open.Load() {
		return
	}
	for {
		n := next.Load()
		if c.Segment < n || next.CompareAndSwap(n, c.Segment+1) {
			break
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		return // a struct of strings and numbers always marshals
	}
	o.enqueue(pacedMsg{msg: &nats.Msg{Subject: subj, Data: b}})
}
