package openai

import (
	"context"
	"encoding/base64"
	"time"

	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/translate/engine"
)

const (
	tChunk = 200 * bytesPerMS // the translation model's frame: append in 200 ms chunks
	// speakerIdle is how long no audio at all must arrive before the
	// speaker is taken to have stopped sending and the input is topped up
	// with silence. Speakers send their silences too, so a shorter gap is
	// late audio (a network or scheduling hiccup) that arrives in a burst:
	// filling it with silence would split the sentence it falls in.
	speakerIdle  = time.Second
	pauseNeeded  = 300 * time.Millisecond
	replayMax    = 4 * time.Second  // un-translated speech re-sent after a drop
	drainTimeout = 20 * time.Second // how long an old connection may take to flush
)

// tconn is a translation connection and the input it has been given.
type tconn struct {
	*conn
	pos      int64     // bytes appended: the model's input clock
	base     time.Time // wall time at pos 0, moved forward when input ran ahead
	partial  []byte    // speech not yet making a whole chunk
	partCap  time.Time // capture time of partial's first byte
	marks    marks
	sent     []sentChunk // recent speech chunks, for replay after a drop
	lastOut  int64       // input position (bytes) of the latest output seen
	closing  bool        // session.close sent
	deadline time.Time   // when a closing connection is given up on
}

type sentChunk struct {
	pos      int64
	data     []byte
	captured time.Time
}

// transSession is a session on the dedicated translation model: audio in,
// translated audio and captions out, continuously.
type transSession struct {
	*core
	cur      *tconn    // takes the audio
	old      *tconn    // flushing after a move to cur; its output goes first
	next     *tconn    // fresh connection waiting for a pause to take over
	ready    time.Time // when next became ready
	held     []connEvent
	lost     *tconn    // the connection that dropped, for replay
	lastLoud time.Time // when the speaker last sent speech-level audio
	out      *segmenter
	in       *segmenter
}

func openTranslation(ctx context.Context, e *Engine, ch engine.Channel, sink engine.Sink) (*transSession, error) {
	s := &transSession{core: newCore(e, ch, sink, KindTranslate)}
	s.update = func() clientEvent { return translationUpdate(e, ch) }
	s.out = newSegmenter(sink.Caption)
	s.in = newSegmenter(sink.SourceCaption)
	c, err := s.firstConnect(ctx)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.cur = s.adopt(c)
	s.log.Info("translation session open", "model", e.opt.TranslateModel, "expires_in", time.Until(c.expiresAt).Round(time.Second))
	go s.core.run(s)
	return s, nil
}

func (s *transSession) adopt(c *conn) *tconn {
	startReader(&s.wg, c, s.events, s.stop, s.log)
	return &tconn{conn: c, base: time.Now(), marks: marks{keep: int64(60 * 1000 * bytesPerMS)}}
}

// end finishes the captions in progress and returns the connections.
func (s *transSession) end() []*conn {
	s.out.finish()
	s.in.finish()
	var conns []*conn
	for _, c := range []*tconn{s.cur, s.old, s.next} {
		if c != nil {
			conns = append(conns, c.conn)
		}
	}
	return conns
}

// pump moves queued speaker audio to the current connection. While there is
// none (reconnecting) the audio waits in the queue, which drops the oldest.
func (s *transSession) pump() {
	if s.cur == nil || s.cur.closing {
		return
	}
	for _, f := range s.queue.take() {
		s.appendSpeech(s.cur, f.pcm, f.captured)
		if loud(f.pcm) {
			s.lastLoud = time.Now()
		}
	}
	s.maybeSwitch(time.Now())
}

func (s *transSession) appendSpeech(c *tconn, pcm []byte, captured time.Time) {
	for len(pcm) > 0 {
		if len(c.partial) == 0 {
			c.partCap = captured
		}
		n := min(tChunk-len(c.partial), len(pcm))
		c.partial = append(c.partial, pcm[:n]...)
		pcm = pcm[n:]
		captured = addBytes(captured, n)
		if len(c.partial) == tChunk {
			s.sendChunk(c, c.partial, c.partCap, true)
			c.partial = nil
		}
	}
}

// flushPartial pads the partial chunk with silence and sends it.
func (s *transSession) flushPartial(c *tconn) {
	if len(c.partial) == 0 {
		return
	}
	chunk := append(c.partial, make([]byte, tChunk-len(c.partial))...)
	s.sendChunk(c, chunk, c.partCap, true)
	c.partial = nil
}

func (s *transSession) sendChunk(c *tconn, data []byte, captured time.Time, speech bool) {
	if captured.IsZero() {
		captured = c.base.Add(bytesDur(c.pos))
	}
	c.send(&translationAppend{Audio: base64.StdEncoding.EncodeToString(data)})
	c.marks.add(c.pos, captured)
	if speech {
		c.sent = append(c.sent, sentChunk{pos: c.pos, data: data, captured: captured})
		limit := c.pos - int64(durBytes(replayMax))
		i := 0
		for i < len(c.sent) && c.sent[i].pos < limit {
			i++
		}
		if i > 0 {
			c.sent = append(c.sent[:0:0], c.sent[i:]...)
		}
	}
	c.pos += int64(len(data))
}

// keepTime tops the current connection's input up with silence to wall
// clock pace while the speaker sends nothing: the model's clock only moves
// with input, and the last words come out only when it moves on.
func (s *transSession) keepTime(c *tconn, now time.Time) {
	if c == nil || c.closing || !s.idleFor(now, speakerIdle) {
		return
	}
	s.flushPartial(c)
	if ahead := bytesDur(c.pos) - now.Sub(c.base); ahead > 0 {
		c.base = c.base.Add(-ahead) // input ran ahead of the clock: line the clocks up again
		return
	}
	silence := make([]byte, tChunk)
	for i := 0; i < 50 && bytesDur(c.pos+tChunk) <= now.Sub(c.base); i++ {
		s.sendChunk(c, silence, time.Time{}, false)
	}
}

func (s *transSession) tick(now time.Time) {
	if s.cur != nil {
		s.pump()
		s.keepTime(s.cur, now)
	}
	for _, c := range []*tconn{s.cur, s.old, s.next} {
		if c != nil {
			c.keepAlive(now)
		}
	}
	s.out.tick(now)
	s.in.tick(now)
	if s.old != nil && now.After(s.old.deadline) {
		s.log.Warn("old connection did not finish flushing in time; dropping it", "conn", s.old.id)
		s.old.close()
	}
	if s.closing {
		if s.cur != nil && s.cur.closing && now.After(s.cur.deadline) {
			s.log.Warn("the model did not confirm session.close in time", "conn", s.cur.id)
			s.finished = true
		}
		if s.cur == nil && s.old == nil {
			s.finished = true
		}
		return
	}
	switch {
	case s.cur == nil:
		if !s.dialing && now.After(s.retryAt) {
			s.startDial("reconnect")
		}
	case s.next != nil:
		s.maybeSwitch(now)
	case !s.dialing && now.After(s.retryAt) && now.After(s.cur.rotateAt(s.eng.opt.RotateBefore)):
		s.log.Info("connection expires soon; opening a fresh one", "conn", s.cur.id, "expires_at", s.cur.expiresAt)
		s.startDial("rotate")
	}
}

// maybeSwitch moves to the fresh connection at a pause in the speech (or
// after SwitchWait): audio from here on goes to the new connection, the
// old one is asked to flush and its output is delivered first.
func (s *transSession) maybeSwitch(now time.Time) {
	if s.next == nil || s.old != nil {
		return
	}
	paused := now.Sub(s.lastLoud) >= pauseNeeded
	if !paused && now.Sub(s.ready) < s.eng.opt.SwitchWait {
		return
	}
	old := s.cur
	s.flushPartial(old)
	old.send(&sessionClose{})
	old.closing = true
	old.deadline = now.Add(drainTimeout)
	s.old = old
	s.cur, s.next = s.next, nil
	s.cur.base = now
	s.log.Info("moved to a fresh connection", "from", old.id, "to", s.cur.id, "at_pause", paused)
}

func (s *transSession) onDialed(r dialResult) {
	s.dialing = false
	if r.err != nil {
		s.dialFailed(r.err)
		return
	}
	s.attempts = 0
	if s.closing {
		r.c.close()
		return
	}
	c := s.adopt(r.c)
	if s.cur == nil {
		s.cur = c
		s.replay()
		s.log.Info("reconnected", "conn", c.id)
		s.pump()
		return
	}
	s.next = c
	s.ready = time.Now()
	s.maybeSwitch(s.ready)
}

// replay re-sends the speech the lost connection had been given but not yet
// translated (after the last output seen, at most replayMax).
func (s *transSession) replay() {
	lost := s.lost
	s.lost = nil
	if lost == nil {
		return
	}
	n := 0
	for _, ch := range lost.sent {
		if ch.pos >= lost.lastOut {
			s.sendChunk(s.cur, ch.data, ch.captured, true)
			n++
		}
	}
	if n > 0 {
		s.log.Info("re-sent speech the lost connection had not translated", "ms", n*200)
	}
}

func (s *transSession) handle(e connEvent) {
	c := s.find(e.c)
	if c == nil {
		return // a connection already forgotten
	}
	if e.closed {
		s.onClosed(c, e.err)
		return
	}
	if c == s.cur && s.old != nil && len(s.held) < 4096 {
		s.held = append(s.held, e) // the old connection's output goes first
		return
	}
	s.process(c, e.ev)
}

func (s *transSession) find(c *conn) *tconn {
	for _, t := range []*tconn{s.cur, s.old, s.next} {
		if t != nil && t.conn == c {
			return t
		}
	}
	return nil
}

func (s *transSession) process(c *tconn, ev *serverEvent) {
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
			pos := *ev.ElapsedMS * bytesPerMS
			captured = c.marks.at(pos)
			c.lastOut = max(c.lastOut, pos)
		}
		splitAudio(pcm, captured, s.sink.Audio)
	case "session.output_transcript.delta":
		s.out.add(ev.Delta, now)
		if ev.ElapsedMS != nil {
			c.lastOut = max(c.lastOut, *ev.ElapsedMS*bytesPerMS)
		}
	case "session.input_transcript.delta":
		s.in.add(ev.Delta, now)
	case "session.closed":
		if !c.closing {
			s.log.Warn("server closed the session", "conn", c.id)
		}
		c.close() // the reader reports the end; handled in onClosed
	case "error":
		s.onError(c, ev.Error)
	}
}

func (s *transSession) onError(c *tconn, ae *apiError) {
	te := s.eng.classify(ae)
	if te == nil {
		if ae != nil {
			s.log.Warn("server error event", "code", ae.Code, "type", ae.Type, "message", s.eng.scrub(ae.Message), "conn", c.id)
		}
		return
	}
	s.countError(te)
	if te.Permanent {
		s.fail(te)
		return
	}
	s.log.Warn("connection interrupted", "code", te.Code, "conn", c.id)
	if te.Code == "session_expired" {
		c.close() // no resume: reconnect at once
	}
}

// onClosed handles the end of a connection.
func (s *transSession) onClosed(c *tconn, err error) {
	if !c.closed {
		c.closed = true
		_ = c.ws.Close()
	}
	switch c {
	case s.old:
		s.old = nil
		s.out.finish() // the old connection's last line
		s.in.finish()
		held := s.held
		s.held = nil
		for _, e := range held {
			if t := s.find(e.c); t != nil {
				s.process(t, e.ev)
			}
		}
	case s.next:
		s.next = nil
	case s.cur:
		if s.closing && c.closing {
			s.cur = nil
			s.finished = s.old == nil
			return
		}
		s.log.Warn("connection lost; reconnecting", "conn", c.id, "err", err)
		s.countError(&engine.Error{Code: "connection_lost"})
		s.cur = nil
		s.lost = c
		if s.next != nil { // a fresh connection is already there: use it
			s.cur, s.next = s.next, nil
			s.cur.base = time.Now()
			s.replay()
			s.pump()
			return
		}
		if s.closing {
			s.finished = s.old == nil
			return
		}
		s.retryAt = time.Now().Add(s.backoff(0, 0))
	}
	if s.closing && s.cur == nil && s.old == nil {
		s.finished = true
	}
}

// beginClose flushes: the queued audio goes out, session.close asks the
// model to finish, and the run loop ends at session.closed.
func (s *transSession) beginClose() {
	s.closing = true
	if s.next != nil {
		s.next.close()
		s.next = nil
	}
	if s.cur == nil {
		s.finished = s.old == nil
		return
	}
	s.pump()
	s.flushPartial(s.cur)
	s.cur.send(&sessionClose{})
	s.cur.closing = true
	s.cur.deadline = time.Now().Add(drainTimeout)
}

// translationUpdate is the session.update of the translation kind: the
// output language and the source captions' model, nothing else.
func translationUpdate(e *Engine, ch engine.Channel) *sessionUpdate[translationConfig] {
	u := &sessionUpdate[translationConfig]{}
	u.Session.Audio.Input.Transcription.Model = e.opt.TranscribeModel
	u.Session.Audio.Output.Language = room.Base(ch.Target)
	return u
}
