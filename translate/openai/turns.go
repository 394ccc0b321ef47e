package openai

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/translate/engine"
)

// The instructed kind's turn queue. Every committed turn is queued, and
// the head turn is asked for with one out-of-band response
// (conversation "none", input: that turn's item alone). A response that
// fails, is refused, or is not a translation is asked again (within
// maxTurnAttempts); a turn is never cancelled by the next one. Each
// answered turn's item is deleted one turn later, so the conversation on
// the server stays flat however long the talk.

const maxTurnAttempts = 3

// turnQueue is the instructed session's queue of turns to translate.
type turnQueue struct {
	turns      []*turn // committed, not yet answered, in order
	active     *reply  // the response in flight, for turns[0]
	byItem     map[string]*turn
	turnCount  uint64
	prevSource string // what the speaker said in the last answered turn: the next one's context
}

// turn is one stretch of speech to translate, in the session's order.
type turn struct {
	seq          uint64
	conn         *interpreterConn // whose conversation holds item
	item         string
	pcm          []byte // the turn's audio, kept until answered to re-create it on another connection
	capturedFrom time.Time
	capturedTo   time.Time
	speechMS     int
	source       string // what the speaker said, as transcribed
	attempts     int    // responses that failed or were refused
	rejected     int    // replies that were not translations
	notBefore    time.Time
}

// reply is the response in flight for the head turn.
type reply struct {
	turn       *turn
	conn       *interpreterConn
	eventID    string // of the response.create
	responseID string
	text       string   // transcript so far
	approved   bool     // judged a translation: forwarded
	rejected   bool     // judged not a translation: dropped
	heldAudio  [][]byte // audio before the verdict
	forwarded  int      // bytes of audio forwarded
}

// schedule asks for the head turn's translation when no response is active.
func (s *interpreterSession) schedule() {
	if s.active != nil || len(s.turns) == 0 || s.finished {
		return
	}
	t := s.turns[0]
	if t.conn == nil || t.conn.ended || t.item == "" || time.Now().Before(t.notBefore) {
		return
	}
	instr := s.instructions + contextLine(s.prevSource)
	if t.rejected > 0 {
		instr += reinforce(s.ch)
	}
	id := t.conn.send(outOfBandResponse(instr, t.item))
	s.active = &reply{turn: t, conn: t.conn, eventID: id}
}

// newTurn queues the turn of item, the input of c from start to end.
func (s *interpreterSession) newTurn(c *interpreterConn, item string, start, end int) {
	if start >= end {
		start = max(0, end-100*bytesPerMS)
	}
	s.turnCount++
	t := &turn{seq: s.turnCount, conn: c, item: item, speechMS: (end - start) / bytesPerMS}
	from := max(start, end-audio.DurationBytes(s.eng.opt.MaxTurn+2*time.Second))
	t.pcm = c.keptRange(from, end)
	t.capturedFrom = c.marks.at(start)
	t.capturedTo = c.marks.at(end)
	if sl := s.sourceLines[item]; sl != nil {
		t.source = sl.text
	}
	s.turns = append(s.turns, t)
	s.byItem[item] = t
	s.schedule()
}

// unqueue removes t from the queue.
func (s *interpreterSession) unqueue(t *turn) {
	for i, x := range s.turns {
		if x == t {
			s.turns = append(s.turns[:i:i], s.turns[i+1:]...)
			break
		}
	}
	delete(s.byItem, t.item)
}

// turnDone retires the head turn: its words become the context of the
// next one and the item answered before it is deleted (one turn late, so
// its transcription can finish), so the server-side conversation stays
// flat however long the talk.
func (s *interpreterSession) turnDone(t *turn) {
	s.unqueue(t)
	t.pcm = nil
	c := t.conn
	if t.source != "" {
		s.prevSource = t.source
	}
	if c != nil && !c.ended {
		if c.answeredItem != "" && c.answeredItem != t.item {
			c.send(&itemDelete{ItemID: c.answeredItem})
		}
		c.answeredItem = t.item
	}
}

// dropTurn gives up on a turn and deletes its item.
func (s *interpreterSession) dropTurn(t *turn, why string) {
	s.log.Error("turn not translated", "turn", t.seq, "why", why)
	s.unqueue(t)
	if c := t.conn; c != nil && !c.ended && t.item != "" && t.item != c.answeredItem {
		c.send(&itemDelete{ItemID: t.item})
	}
}

// retryLater counts a failed attempt at t and, unless that was the last
// of maxTurnAttempts, asks for t again after a backoff of at least minWait.
// It reports the wait, and false when t should be given up.
func (s *interpreterSession) retryLater(t *turn, minWait time.Duration) (time.Duration, bool) {
	t.attempts++
	if t.attempts >= maxTurnAttempts {
		return 0, false
	}
	d := max(s.eng.backoff(t.attempts-1, 0), minWait)
	t.notBefore = time.Now().Add(d)
	return d, true
}

func (s *interpreterSession) replyAudio(r *reply, pcm []byte) {
	if r.rejected {
		return
	}
	if !r.approved {
		r.heldAudio = append(r.heldAudio, pcm)
		return
	}
	s.emitAudio(r, pcm)
}

// emitAudio forwards a reply's audio, stamped with the capture time of the
// speech it translates.
func (s *interpreterSession) emitAudio(r *reply, pcm []byte) {
	captured := r.turn.capturedFrom
	if !captured.IsZero() {
		captured = captured.Add(audio.BytesDuration(r.forwarded))
		if !r.turn.capturedTo.IsZero() && captured.After(r.turn.capturedTo) {
			captured = r.turn.capturedTo
		}
	}
	r.forwarded += len(pcm)
	splitAudio(pcm, captured, s.sink.Audio)
}

func (s *interpreterSession) replyText(r *reply, delta string) {
	if r.rejected {
		return
	}
	r.text += delta
	if !r.approved {
		s.judgeReply(r, false)
		return
	}
	if limit := lengthLimit(r.turn.source, r.turn.speechMS); limit > 0 && len([]rune(r.text)) > limit {
		s.reject(r, "ran on far longer than the speech")
		return
	}
	s.captions.add(delta, time.Now())
}

// judgeReply decides, once enough transcript is in, whether the reply is a
// translation; until then its audio is held back.
func (s *interpreterSession) judgeReply(r *reply, final bool) {
	if r.approved || r.rejected {
		return
	}
	decided, reason := s.judge.verdict(r.text, lengthLimit(r.turn.source, r.turn.speechMS), final)
	if !decided {
		return
	}
	if reason != "" {
		s.reject(r, reason)
		return
	}
	r.approved = true
	s.captions.add(r.text, time.Now())
	for _, a := range r.heldAudio {
		s.emitAudio(r, a)
	}
	r.heldAudio = nil
}

func (s *interpreterSession) reject(r *reply, reason string) {
	r.rejected = true
	r.heldAudio = nil
	r.turn.rejected++
	s.captions.finish()
	text := r.text
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	s.log.Warn("caught a reply that is not a translation; not forwarded", "turn", r.turn.seq, "why", reason, "reply", text, "source", r.turn.source)
}

// replyDone ends the response in flight: its turn is answered, or asked
// again.
func (s *interpreterSession) replyDone(r *reply, ev *serverEvent) {
	s.judgeReply(r, true)
	s.captions.finish()
	s.active = nil
	t := r.turn
	status := ""
	var ae *apiError
	if ev.Response != nil {
		status = ev.Response.Status
		if ev.Response.StatusDetails != nil {
			ae = ev.Response.StatusDetails.Error
		}
	}
	switch status {
	case "failed", "cancelled":
		te := s.eng.classify(ae)
		if s.failOn(te) {
			return
		}
		var minWait time.Duration
		if te != nil && te.Code == "rate_limited" {
			minWait = time.Second
		}
		d, ok := s.retryLater(t, minWait)
		if !ok {
			s.dropTurn(t, "response "+status+" too many times")
			break
		}
		s.log.Warn("response did not complete; retrying the turn", "turn", t.seq, "status", status, "in", d.Round(time.Millisecond))
	default:
		if r.rejected && t.rejected < 2 && r.forwarded == 0 {
			s.log.Info("asking again for the translation of the turn", "turn", t.seq)
			break // head turn again, with reinforced instructions
		}
		s.turnDone(t)
	}
	s.schedule()
}

// responseRefused handles an error event about the response.create of r.
func (s *interpreterSession) responseRefused(r *reply, ae *apiError, te *engine.Error) {
	s.active = nil
	if s.failOn(te) {
		return
	}
	var minWait time.Duration
	if te != nil {
		minWait = time.Second
	}
	t := r.turn
	d, ok := s.retryLater(t, minWait)
	if !ok {
		s.dropTurn(t, "response refused too many times: "+s.eng.scrub(ae.Message))
		s.schedule()
		return
	}
	if te != nil {
		s.countError(te)
	}
	s.log.Warn("response refused; retrying the turn", "turn", t.seq, "code", ae.Code, "in", d.Round(time.Millisecond))
}

// busy reports whether c still has turns, a response or a commit to finish.
func (s *interpreterSession) busy(c *interpreterConn) bool {
	if len(c.commits) > 0 || (s.active != nil && s.active.conn == c) {
		return true
	}
	for _, t := range s.turns {
		if t.conn == c {
			return true
		}
	}
	return false
}

// anyWork reports whether any turn, response or commit is unfinished.
func (s *interpreterSession) anyWork() bool {
	if len(s.turns) > 0 || s.active != nil {
		return true
	}
	for _, c := range s.conns.all() {
		if c != s.conns.next && !c.ended && len(c.commits) > 0 {
			return true
		}
	}
	return false
}

// recover moves the work of ended connections to the current one: turns
// not yet answered are re-created from their audio, and the speech lost
// (the current connection that dropped, if any) had not committed is
// appended again.
func (s *interpreterSession) recover(lost *interpreterConn) {
	c := s.conns.cur
	if c == nil || c.ended {
		return
	}
	for _, t := range append([]*turn(nil), s.turns...) {
		if t.conn == c || (t.conn != nil && !t.conn.ended) {
			continue
		}
		if len(t.pcm) == 0 {
			s.dropTurn(t, "its audio was not kept")
			continue
		}
		delete(s.byItem, t.item)
		t.item = newItemID()
		t.conn = c
		c.send(audioItem(t.item, t.pcm))
		s.byItem[t.item] = t
		s.log.Info("re-sent an unanswered turn", "turn", t.seq, "ms", len(t.pcm)/bytesPerMS)
	}
	if lost != nil {
		rest := lost.keptRange(lost.turnStart, lost.appended)
		for _, f := range lost.pending {
			rest = append(rest, f.pcm...)
		}
		rest = append(rest, lost.frames.partial...)
		if lost.speaking && len(rest) > 0 {
			s.addAudio(c, rest, lost.marks.at(lost.turnStart))
			s.flush(c, true)
			s.log.Info("re-sent speech the lost connection had not committed", "ms", len(rest)/bytesPerMS)
		}
	}
	s.schedule()
}

func newItemID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "bci_" + hex.EncodeToString(b)
}
