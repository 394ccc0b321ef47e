package openai

import (
	"context"
	"encoding/base64"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/translate/engine"
)

const (
	translationChunk = 200 * bytesPerMS // the translation model's frame: append in 200 ms chunks
	// speakerIdle is how long no audio at all must arrive before the
	// speaker is taken to have stopped sending and the input is topped up
	// with silence. Speakers send their silences too, so a shorter gap is
	// late audio (a network or scheduling hiccup) that arrives in a burst:
	// filling it with silence would split the sentence it falls in.
	speakerIdle             = time.Second
	replayMax               = 4 * time.Second  // un-translated speech re-sent after a drop
	translationDrainTimeout = 20 * time.Second // how long an old connection may take to flush
	maxHeldEvents           = 4096             // a fresh connection's output held while the old one flushes
)

// translationConn is a connection of the translation kind and the speech
// it has been given.
type translationConn struct {
	*conn
	speech  chunker      // speech into the model's 200 ms chunks
	recent  []sentSpeech // the last replayMax of speech appended, for replay after a drop
	lastOut int          // input position of the latest output seen
}

// sentSpeech is a chunk of speech appended to a connection, kept to be
// sent again to a fresh connection if this one drops before translating it.
type sentSpeech struct {
	pos      int
	pcm      []byte
	captured time.Time
}

// heldEvent is a fresh connection's server event, held until the old
// connection has delivered its flushed output.
type heldEvent struct {
	c  *translationConn
	ev *serverEvent
}

// translationSession is a session on the dedicated translation model: audio
// in, translated audio and captions out, continuously.
type translationSession struct {
	*session
	conns          *rotator[*translationConn]
	held           []heldEvent
	captions       *segmenter // the translation
	sourceCaptions *segmenter // what the speaker said
}

func openTranslation(ctx context.Context, e *Engine, ch engine.Channel, sink engine.Sink) (*translationSession, error) {
	s := &translationSession{session: newSession(e, ch, sink, KindTranslate)}
	// The model flushes what it holds when asked to close: a connection
	// moved from closes itself (at session.closed) and its output goes
	// before the fresh one's.
	s.conns = newRotator(s.session, connKind[*translationConn](s),
		func() clientEvent { return translationUpdate(e, ch) },
		rotationPolicy{drainTimeout: translationDrainTimeout, drainInOrder: true})
	s.captions = newSegmenter(sink.Caption)
	s.sourceCaptions = newSegmenter(sink.SourceCaption)
	c, err := s.conns.open(ctx)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.log.Info("translation session open", "model", e.opt.TranslateModel, "expires_in", time.Until(c.expiresAt).Round(time.Second))
	go s.run(s, s.conns)
	return s, nil
}

// translationUpdate is the session.update of the translation kind: the
// output language and the source captions' model, nothing else.
func translationUpdate(e *Engine, ch engine.Channel) *sessionUpdate[translationConfig] {
	u := &sessionUpdate[translationConfig]{}
	u.Session.Audio.Input.Transcription.Model = e.opt.TranscribeModel
	u.Session.Audio.Output.Language = room.Base(ch.Target)
	return u
}

func (s *translationSession) adopt(c *conn) *translationConn {
	c.marks.keep = audio.DurationBytes(60 * time.Second)
	return &translationConn{conn: c, speech: chunker{size: translationChunk}}
}

// end finishes the captions in progress and returns the connections.
func (s *translationSession) end() []*conn {
	s.captions.finish()
	s.sourceCaptions.finish()
	return s.conns.conns()
}

// pump moves the speaker's audio to the current connection. While there is
// none (reconnecting) the audio waits in the inbox, which drops the oldest.
func (s *translationSession) pump() {
	c := s.conns.cur
	if c == nil {
		return
	}
	for _, f := range s.takeAudio() {
		s.appendSpeech(c, f.PCM, f.Captured)
	}
	s.conns.maybeSwitch(time.Now())
}

// appendSpeech sends the speaker's audio to c in whole chunks.
func (s *translationSession) appendSpeech(c *translationConn, pcm []byte, captured time.Time) {
	c.speech.add(pcm, captured, func(chunk []byte, captured time.Time) { s.sendChunk(c, chunk, captured, true) })
}

// flushPartial pads the partial chunk with silence and sends it.
func (s *translationSession) flushPartial(c *translationConn) {
	c.speech.pad(func(chunk []byte, captured time.Time) { s.sendChunk(c, chunk, captured, true) })
}

// sendChunk appends a chunk to c's input; speech is kept for replay.
func (s *translationSession) sendChunk(c *translationConn, pcm []byte, captured time.Time, speech bool) {
	captured = c.capturedAt(captured, c.appended)
	c.send(&translationAppend{Audio: base64.StdEncoding.EncodeToString(pcm)})
	c.marks.add(c.appended, captured)
	if speech {
		c.recent = append(c.recent, sentSpeech{pos: c.appended, pcm: pcm, captured: captured})
		limit := c.appended - audio.DurationBytes(replayMax)
		i := 0
		for i < len(c.recent) && c.recent[i].pos < limit {
			i++
		}
		if i > 0 {
			c.recent = append(c.recent[:0:0], c.recent[i:]...)
		}
	}
	c.appended += len(pcm)
}

// keepTime tops the current connection's input up with silence to wall
// clock pace while the speaker sends nothing: the model's clock only moves
// with input, and the last words come out only when it moves on.
func (s *translationSession) keepTime(now time.Time) {
	c := s.conns.cur
	if c == nil || !s.idleFor(now, speakerIdle) {
		return
	}
	s.flushPartial(c)
	if s.idleFor(now, speakerIdle+s.eng.opt.TopUp) {
		c.holdClock(0, now)
		return
	}
	n := c.silenceOwed(0, translationChunk, now)
	silence := make([]byte, translationChunk)
	for range n {
		s.sendChunk(c, silence, time.Time{}, false)
	}
}

func (s *translationSession) tick(now time.Time) {
	s.pump()
	s.keepTime(now)
	s.captions.tick(now)
	s.sourceCaptions.tick(now)
	s.conns.tick(now)
}

// retire flushes c: its last partial chunk goes out and session.close asks
// the model for what it still holds; session.closed ends it.
func (s *translationSession) retire(c *translationConn, now time.Time) {
	s.flushPartial(c)
	c.send(&sessionClose{})
}

// drained is false: a connection moved from ends when the model confirms
// session.close (or at its deadline).
func (s *translationSession) drained(*translationConn) bool { return false }

// replay re-sends to c the speech the lost connection had been given but
// not yet translated (after the last output seen, at most replayMax).
func (s *translationSession) replay(c, lost *translationConn) {
	if lost != nil {
		n := 0
		for _, sp := range lost.recent {
			if sp.pos >= lost.lastOut {
				s.sendChunk(c, sp.pcm, sp.captured, true)
				n++
			}
		}
		if n > 0 {
			s.log.Info("re-sent speech the lost connection had not translated", "ms", n*200)
		}
	}
	s.pump()
}

// event holds a fresh connection's output while an old one flushes, so
// that the old connection's output goes first.
func (s *translationSession) event(c *translationConn, ev *serverEvent) {
	if c == s.conns.cur && len(s.conns.draining) > 0 && len(s.held) < maxHeldEvents {
		s.held = append(s.held, heldEvent{c, ev})
		return
	}
	s.process(c, ev)
}

func (s *translationSession) process(c *translationConn, ev *serverEvent) {
	now := time.Now()
	switch ev.Type {
	case "session.output_audio.delta":
		pcm, err := base64.StdEncoding.DecodeString(ev.Delta)
		if err != nil {
			s.log.Warn("undecodable output audio", "err", err)
			return
		}
		var captured time.Time
		if ev.ElapsedMS != nil {
			pos := int(*ev.ElapsedMS) * bytesPerMS
			captured = c.marks.at(pos)
			c.lastOut = max(c.lastOut, pos)
		}
		splitAudio(pcm, captured, s.sink.Audio)
	case "session.output_transcript.delta":
		s.captions.add(ev.Delta, now)
		if ev.ElapsedMS != nil {
			c.lastOut = max(c.lastOut, int(*ev.ElapsedMS)*bytesPerMS)
		}
	case "session.input_transcript.delta":
		s.sourceCaptions.add(ev.Delta, now)
	case "session.closed":
		if !c.retired {
			s.log.Warn("server closed the session", "conn", c.id)
		}
		c.close() // the reader reports the end
	case "error":
		s.onError(c, ev.Error)
	}
}

func (s *translationSession) onError(c *translationConn, ae *apiError) {
	te := s.eng.classify(ae)
	if te == nil {
		if ae != nil {
			s.warnServerError(c.conn, ae)
		}
		return
	}
	s.interrupted(c.conn, te)
}

// ended delivers, when an old connection has flushed, its last caption
// lines and then the fresh connection's output held meanwhile.
func (s *translationSession) ended(c *translationConn) {
	if !c.retired {
		return
	}
	s.captions.finish() // the old connection's last line
	s.sourceCaptions.finish()
	held := s.held
	s.held = nil
	for _, h := range held {
		if !h.c.ended {
			s.process(h.c, h.ev)
		}
	}
}

// done: a closing translation session has finished once the connection it
// closed has delivered what the model flushed.
func (s *translationSession) done() bool {
	return s.conns.cur == nil && len(s.conns.draining) == 0
}

// beginClose flushes: the queued audio goes out, session.close asks the
// model to finish, and the session ends at session.closed.
func (s *translationSession) beginClose() {
	s.closing = true
	s.conns.dropNext()
	if s.conns.cur != nil {
		s.pump()
		s.conns.retireCurrent(time.Now())
	}
	if s.done() {
		s.finished = true
	}
}
