package openai

import (
	"context"
	"encoding/base64"
	"strings"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/translate/engine"
)

// interpreterDrainTimeout bounds how long a connection moved from may take
// to answer the turns it holds before they move to the current one.
const interpreterDrainTimeout = 60 * time.Second

// interpreterSession drives the instructed realtime model as an
// interpreter. Server VAD cuts turns but never answers them: the session
// queues each committed turn and asks for exactly one out-of-band response
// at a time, over that turn alone (the previous turn's words ride along in
// the instructions as context), so every turn is translated, in order, and
// the model's context stays small.
//
// This file opens the session and handles the server's events;
// interpret_input.go turns the speaker's audio into the model's input and
// cuts long turns; turns.go is the turn queue and its responses; judge.go
// catches replies that are not translations.
type interpreterSession struct {
	*session
	conns        *rotator[*interpreterConn]
	instructions string
	judge        judge
	turnQueue

	captions       *segmenter             // the translation
	sourceLines    map[string]*sourceLine // what the speaker said, by item, until final
	nextSourceLine uint64
}

// sourceLine is the caption of what the speaker said in one item.
type sourceLine struct {
	conn int // id of the connection that transcribes it
	seg  uint64
	text string
}

func openInterpret(ctx context.Context, e *Engine, ch engine.Channel, sink engine.Sink) (*interpreterSession, error) {
	s := &interpreterSession{
		session:        newSession(e, ch, sink, KindInterpret),
		instructions:   instructions(ch),
		judge:          newJudge(ch),
		turnQueue:      turnQueue{byItem: map[string]*turn{}},
		sourceLines:    map[string]*sourceLine{},
		nextSourceLine: 1,
	}
	// A connection moved from answers its own turns, then is closed; a
	// closing session finishes its turns on the current connection.
	s.conns = newRotator(s.session, connKind[*interpreterConn](s),
		func() clientEvent { return realtimeUpdate(e, ch, s.instructions) },
		rotationPolicy{drainTimeout: interpreterDrainTimeout, finishOnCurrent: true})
	s.captions = newSegmenter(sink.Caption)
	c, err := s.conns.open(ctx)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.log.Info("interpreter session open", "model", e.opt.RealtimeModel, "voice", voiceOf(ch), "expires_in", time.Until(c.expiresAt).Round(time.Second))
	go s.run(s, s.conns)
	return s, nil
}

// realtimeUpdate is the session.update of the instructed kind: the
// interpreter's instructions, audio only, and server VAD that cuts turns
// but never answers them (the session asks for each response itself).
func realtimeUpdate(e *Engine, ch engine.Channel, instructions string) *sessionUpdate[realtimeConfig] {
	u := &sessionUpdate[realtimeConfig]{}
	c := &u.Session
	c.Type = "realtime"
	c.Instructions = instructions
	c.OutputModalities = []string{"audio"}
	c.Audio.Input.Format = pcm24k
	c.Audio.Input.Transcription.Model = e.opt.TranscribeModel
	c.Audio.Input.TurnDetection = turnDetection{Type: "server_vad", SilenceDurationMS: 500}
	c.Audio.Output.Format = pcm24k
	c.Audio.Output.Voice = voiceOf(ch)
	return u
}

// voiceOf is the voice the channel asks for, or DefaultVoice.
func voiceOf(ch engine.Channel) string {
	if ch.Voice == "" {
		return DefaultVoice
	}
	return ch.Voice
}

func (s *interpreterSession) adopt(c *conn) *interpreterConn {
	c.marks.keep = audio.DurationBytes(2*s.eng.opt.MaxTurn + 10*time.Second)
	return &interpreterConn{conn: c, frames: chunker{size: frameBytes}, stopAt: map[string]int{}}
}

// end finishes the captions in progress and returns the connections.
func (s *interpreterSession) end() []*conn {
	s.captions.finish()
	s.finishSourceLines(nil)
	return s.conns.conns()
}

func (s *interpreterSession) tick(now time.Time) {
	s.pump()
	s.keepTime(now)
	s.captions.tick(now)
	s.schedule()
	s.conns.tick(now)
}

// beginClose commits the speech the current connection holds; the session
// ends once every turn is answered.
func (s *interpreterSession) beginClose() {
	s.closing = true
	s.conns.dropNext()
	if c := s.conns.cur; c != nil {
		for _, f := range s.takeAudio() {
			s.addAudio(c, f.PCM, f.Captured)
		}
		s.commitNow(c)
	}
	if s.done() {
		s.finished = true
	}
}

// retire commits the speech c holds: c answers its turns, then is closed.
func (s *interpreterSession) retire(c *interpreterConn, now time.Time) { s.commitNow(c) }

// drained reports whether c has answered its turns.
func (s *interpreterSession) drained(c *interpreterConn) bool { return !s.busy(c) }

// replay moves the unanswered turns to c, current after lost dropped,
// with the speech lost had not committed.
func (s *interpreterSession) replay(c, lost *interpreterConn) {
	s.recover(lost)
	s.pump()
}

// done reports whether every turn is answered.
func (s *interpreterSession) done() bool { return !s.anyWork() }

// ended forgets c's response in flight (its turn stays at the head of the
// queue, to be asked again), ends its source captions and moves its turns
// to the current connection.
func (s *interpreterSession) ended(c *interpreterConn) {
	if r := s.active; r != nil && r.conn == c {
		s.captions.finish()
		s.active = nil
	}
	s.finishSourceLines(c.conn)
	s.recover(nil)
}

// event handles a server event of c.
func (s *interpreterSession) event(c *interpreterConn, ev *serverEvent) {
	r := s.active
	mine := r != nil && r.conn == c && (r.responseID == "" || ev.ResponseID == "" || ev.ResponseID == r.responseID)
	switch ev.Type {
	case "input_audio_buffer.speech_started":
		c.speaking = true
		start := c.appended
		if ev.AudioStartMS != nil {
			start = int(*ev.AudioStartMS) * bytesPerMS
		}
		c.turnStart = max(c.turnStart, start-speechPrefix)
	case "input_audio_buffer.speech_stopped":
		c.speaking = false
		end := c.appended
		if ev.AudioEndMS != nil {
			end = int(*ev.AudioEndMS) * bytesPerMS
		}
		if ev.ItemID != "" {
			c.stopAt[ev.ItemID] = end
		}
		if c.holding {
			c.holding = false
			s.flush(c, true)
		}
	case "input_audio_buffer.committed":
		s.onCommitted(c, ev.ItemID)
	case "conversation.item.input_audio_transcription.delta":
		s.sourceDelta(c, ev.ItemID, ev.Delta, false)
	case "conversation.item.input_audio_transcription.completed":
		s.sourceDelta(c, ev.ItemID, ev.Transcript, true)
	case "response.created":
		if r != nil && r.conn == c && r.responseID == "" && ev.Response != nil {
			r.responseID = ev.Response.ID
		}
	case "response.output_audio.delta":
		if !mine {
			return
		}
		pcm, err := base64.StdEncoding.DecodeString(ev.Delta)
		if err != nil {
			s.log.Warn("undecodable output audio", "err", err)
			return
		}
		s.replyAudio(r, pcm)
	case "response.output_audio_transcript.delta":
		if mine {
			s.replyText(r, ev.Delta)
		}
	case "response.output_audio_transcript.done":
		if mine {
			if !r.approved && !r.rejected && len(ev.Transcript) > len(r.text) {
				r.text = ev.Transcript
			}
			s.judgeReply(r, true)
		}
	case "response.done":
		if mine {
			s.replyDone(r, ev)
		}
	case "error":
		s.onError(c, ev.Error)
	}
}

// onCommitted queues the turn the model made of c's input: VAD's, or the
// session's own commit.
func (s *interpreterSession) onCommitted(c *interpreterConn, item string) {
	if item == "" {
		return
	}
	var start, end int
	if stop, ok := c.stopAt[item]; ok { // server VAD ended the turn
		delete(c.stopAt, item)
		start, end = c.turnStart, stop
		if len(c.commits) > 0 && c.commits[0].start < end {
			start = c.commits[0].start // our commit raced it; ours will fail empty
		}
		c.turnStart = max(c.turnStart, end)
	} else if len(c.commits) > 0 { // our commit
		pc := c.commits[0]
		c.commits = c.commits[1:]
		start, end = pc.start, pc.end
	} else {
		start, end = c.turnStart, c.appended
		c.turnStart = max(c.turnStart, end)
	}
	s.newTurn(c, item, start, end)
}

// sourceDelta captions what the speaker said, as the model transcribes it.
func (s *interpreterSession) sourceDelta(c *interpreterConn, item, text string, final bool) {
	if item == "" {
		return
	}
	sl := s.sourceLines[item]
	if sl == nil {
		if strings.TrimSpace(text) == "" {
			return
		}
		sl = &sourceLine{conn: c.id, seg: s.nextSourceLine}
		s.nextSourceLine++
		s.sourceLines[item] = sl
	}
	if final {
		sl.text = strings.TrimSpace(text)
		delete(s.sourceLines, item)
	} else {
		sl.text = strings.TrimLeft(sl.text+text, " ")
	}
	if t := s.byItem[item]; t != nil {
		t.source = sl.text
	}
	if sl.text != "" || final {
		s.sink.SourceCaption(sl.seg, sl.text, final)
	}
}

// finishSourceLines makes the source captions of c (of every connection
// when c is nil) final as they stand.
func (s *interpreterSession) finishSourceLines(c *conn) {
	for item, sl := range s.sourceLines {
		if c == nil || sl.conn == c.id {
			s.sink.SourceCaption(sl.seg, sl.text, true)
			delete(s.sourceLines, item)
		}
	}
}

func (s *interpreterSession) onError(c *interpreterConn, ae *apiError) {
	if ae == nil {
		return
	}
	te := s.eng.classify(ae)
	if ae.EventID != "" {
		if r := s.active; r != nil && r.conn == c && r.eventID == ae.EventID {
			s.responseRefused(r, ae, te)
			return
		}
		for i, pc := range c.commits {
			if pc.eventID == ae.EventID {
				c.commits = append(c.commits[:i:i], c.commits[i+1:]...)
				s.log.Debug("commit refused", "code", ae.Code, "conn", c.id)
				return
			}
		}
	}
	if te == nil {
		s.warnServerError(c.conn, ae)
		return
	}
	s.interrupted(c.conn, te)
}
