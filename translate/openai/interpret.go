package openai

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"

	"github.com/babelcast/babelcast/translate/engine"
)

const (
	frameBytes      = 20 * bytesPerMS  // energy window for choosing where to cut a long turn
	iChunk          = 100 * bytesPerMS // append granularity
	maxAppend       = 1000 * bytesPerMS
	speechPrefix    = 300 * bytesPerMS // audio kept before the detected start of speech
	maxTurnAttempts = 3
	iDrainTimeout   = 60 * time.Second
)

// hframe is 20 ms of input waiting to be appended.
type hframe struct {
	data     []byte
	captured time.Time
	energy   float64
}

// pendingCommit is a commit this session sent, awaiting its item.
type pendingCommit struct {
	eventID    string
	start, end int64
}

// iconn is an instructed-model connection and its input buffer state.
type iconn struct {
	*conn
	pos       int64     // bytes appended: the model's input clock
	base      time.Time // wall time at pos 0
	pend      []hframe  // not yet appended (batched, or held back near a long turn's end)
	part      []byte    // < 20 ms remainder
	partCap   time.Time
	holding   bool
	speaking  bool             // server VAD says speech is going on
	loudNow   bool             // our own ear: speech-level input lately (the VAD's word may lag)
	quietRun  int              // quiet 20 ms frames in a row
	turnStart int64            // where the audio of the next turn starts
	stopAt    map[string]int64 // item → end of speech, from speech_stopped
	commits   []pendingCommit
	audio     []byte // appended audio from audioStart to pos, for turns and replay
	audioAt   int64
	marks     marks
	retired   string // item of the last answered turn, deleted after the next
	draining  bool
	deadline  time.Time
	dead      bool
}

func (c *iconn) pendBytes() int64 { return int64(len(c.pend) * frameBytes) }

// audioRange returns a copy of the appended audio in [start, end).
func (c *iconn) audioRange(start, end int64) []byte {
	start = max(start, c.audioAt)
	end = min(end, c.audioAt+int64(len(c.audio)))
	if end <= start {
		return nil
	}
	return append([]byte(nil), c.audio[start-c.audioAt:end-c.audioAt]...)
}

// trimAudio drops appended audio before pos.
func (c *iconn) trimAudio(pos int64) {
	if pos <= c.audioAt {
		return
	}
	n := min(pos-c.audioAt, int64(len(c.audio)))
	c.audio = append(c.audio[:0:0], c.audio[n:]...)
	c.audioAt += n
}

// turn is one stretch of speech to translate, in the session's order.
type turn struct {
	n         uint64
	c         *iconn
	item      string
	audio     []byte // kept until answered, to replay on another connection
	capStart  time.Time
	capEnd    time.Time
	speechMS  int64
	src       string
	attempts  int
	rejected  int
	notBefore time.Time
}

// reply is the response in flight for the head turn.
type reply struct {
	t        *turn
	c        *iconn
	eventID  string
	id       string
	text     string
	approved bool
	rejected bool
	held     [][]byte // audio before the verdict
	out      int64    // bytes of audio forwarded
}

type srcCaption struct {
	conn int
	seg  uint64
	text string
}

// interpSession drives the instructed realtime model as an interpreter.
// Server VAD cuts turns but never answers them: this session queues each
// committed turn and asks for exactly one out-of-band response at a time,
// over that turn (and the previous one for context), so every turn is
// translated, in order, and the context stays small.
type interpSession struct {
	*core
	instr    string
	judge    judge
	cur      *iconn
	olds     []*iconn // draining after a move to cur
	next     *iconn
	ready    time.Time
	lost     *iconn // lost current connection, for its uncommitted speech
	turns    []*turn
	active   *reply
	byItem   map[string]*turn
	srcCaps  map[string]*srcCaption
	srcNext  uint64
	turnNext uint64
	prevSrc  string // what the speaker said in the last answered turn
	out      *segmenter
	lastLoud time.Time
}

func openInterpret(ctx context.Context, e *Engine, ch engine.Channel, sink engine.Sink) (*interpSession, error) {
	s := &interpSession{
		core:    newCore(e, ch, sink, KindInterpret),
		instr:   instructions(ch),
		judge:   newJudge(ch),
		byItem:  map[string]*turn{},
		srcCaps: map[string]*srcCaption{},
		srcNext: 1,
	}
	s.update = func() clientEvent { return realtimeUpdate(e, ch, s.instr) }
	s.out = newSegmenter(sink.Caption)
	c, err := s.firstConnect(ctx)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.cur = s.adopt(c)
	s.log.Info("interpreter session open", "model", e.opt.RealtimeModel, "voice", voiceOf(ch), "expires_in", time.Until(c.expiresAt).Round(time.Second))
	go s.core.run(s)
	return s, nil
}

func (s *interpSession) adopt(c *conn) *iconn {
	startReader(&s.wg, c, s.events, s.stop, s.log)
	return &iconn{conn: c, base: time.Now(), stopAt: map[string]int64{},
		marks: marks{keep: int64(durBytes(2*s.eng.opt.MaxTurn + 10*time.Second))}}
}

// end finishes the captions in progress and returns the connections.
func (s *interpSession) end() []*conn {
	s.out.finish()
	for k, sc := range s.srcCaps {
		s.sink.SourceCaption(sc.seg, sc.text, true)
		delete(s.srcCaps, k)
	}
	conns := []*conn{}
	for _, c := range append([]*iconn{s.cur, s.next}, s.olds...) {
		if c != nil {
			conns = append(conns, c.conn)
		}
	}
	return conns
}

// --- input ---

func (s *interpSession) pump() {
	if s.cur == nil || s.closing {
		return
	}
	now := time.Now()
	for _, f := range s.queue.take() {
		if loud(f.pcm) {
			s.lastLoud = now
		}
		s.addAudio(s.cur, f.pcm, f.captured)
	}
	s.flush(s.cur, false)
	s.maybeSwitch(now)
}

// addAudio cuts input into 20 ms frames on c's pending list.
func (s *interpSession) addAudio(c *iconn, pcm []byte, captured time.Time) {
	for len(pcm) > 0 {
		if len(c.part) == 0 {
			c.partCap = captured
		}
		n := min(frameBytes-len(c.part), len(pcm))
		c.part = append(c.part, pcm[:n]...)
		pcm = pcm[n:]
		captured = addBytes(captured, n)
		if len(c.part) == frameBytes {
			s.pushFrame(c, hframe{data: c.part, captured: c.partCap, energy: rms(c.part)})
			c.part = nil
		}
	}
}

// pushFrame queues a 20 ms frame and follows speech onsets by ear, so a
// long turn is watched from its start even when the VAD's events lag.
func (s *interpSession) pushFrame(c *iconn, f hframe) {
	if f.energy > loudRMS {
		c.quietRun = 0
		if !c.loudNow {
			c.loudNow = true
			if !c.speaking {
				onset := c.pos + c.pendBytes()
				c.turnStart = max(c.turnStart, onset-speechPrefix)
			}
		}
	} else if c.quietRun++; c.quietRun >= 25 {
		c.loudNow = false
	}
	c.pend = append(c.pend, f)
}

// flush appends c's pending frames unless they are held back for a cut;
// without force it waits for a whole chunk.
func (s *interpSession) flush(c *iconn, force bool) {
	if c == nil || c.dead {
		return
	}
	if force && len(c.part) > 0 {
		c.part = append(c.part, make([]byte, frameBytes-len(c.part))...)
		s.pushFrame(c, hframe{data: c.part, captured: c.partCap, energy: rms(c.part)})
		c.part = nil
	}
	s.checkLongTurn(c)
	if c.holding || len(c.pend) == 0 || (!force && c.pendBytes() < iChunk) {
		return
	}
	s.sendFrames(c, len(c.pend))
}

// sendFrames appends the first n pending frames.
func (s *interpSession) sendFrames(c *iconn, n int) {
	frames := c.pend[:n]
	for len(frames) > 0 {
		k := min(len(frames), maxAppend/frameBytes)
		buf := make([]byte, 0, k*frameBytes)
		for _, f := range frames[:k] {
			captured := f.captured
			if captured.IsZero() {
				captured = c.base.Add(bytesDur(c.pos + int64(len(buf))))
			}
			c.marks.add(c.pos+int64(len(buf)), captured)
			buf = append(buf, f.data...)
		}
		c.send(&bufferAppend{Audio: base64.StdEncoding.EncodeToString(buf)})
		c.audio = append(c.audio, buf...)
		c.pos += int64(len(buf))
		frames = frames[k:]
	}
	c.pend = append(c.pend[:0:0], c.pend[n:]...)
	// keep only what a turn may still need: from the next turn's start, and
	// never more than a long turn's worth
	keepFrom := c.turnStart - speechPrefix
	if limit := c.pos - int64(durBytes(s.eng.opt.MaxTurn+3*time.Second)); keepFrom < limit {
		keepFrom = limit
	}
	for _, pc := range c.commits {
		keepFrom = min(keepFrom, pc.start)
	}
	c.trimAudio(keepFrom)
}

// checkLongTurn holds input back as speech nears MaxTurn without a commit,
// and at MaxTurn commits at the quietest 20 ms of what it held.
func (s *interpSession) checkLongTurn(c *iconn) {
	if !(c.speaking || c.loudNow) || c.draining {
		c.holding = false
		return
	}
	maxTurn := durBytes(s.eng.opt.MaxTurn)
	hold := min(durBytes(time.Second), maxTurn/2)
	spoken := c.pos + c.pendBytes() - c.turnStart
	if !c.holding && spoken >= int64(maxTurn-hold) {
		c.holding = true
	}
	if !c.holding || spoken < int64(maxTurn) || len(c.pend) == 0 {
		return
	}
	if !c.speaking { // loud, but not speech to the VAD: nothing to cut
		c.holding = false
		return
	}
	best := 0 // the quietest frame that ends within MaxTurn
	for i, f := range c.pend {
		if c.pos+int64((i+1)*frameBytes)-c.turnStart > int64(maxTurn) && i > 0 {
			break
		}
		if f.energy <= c.pend[best].energy {
			best = i
		}
	}
	start := c.turnStart
	s.sendFrames(c, best+1)
	id := c.send(&bufferCommit{})
	c.commits = append(c.commits, pendingCommit{eventID: id, start: start, end: c.pos})
	c.turnStart = c.pos
	c.holding = false
	s.log.Info("long turn cut", "conn", c.id, "turn_ms", (c.pos-start)/bytesPerMS)
}

// commitNow ends the speech c holds as a turn (at a move to a fresh
// connection, and at Close).
func (s *interpSession) commitNow(c *iconn) {
	if len(c.part) > 0 {
		c.part = append(c.part, make([]byte, frameBytes-len(c.part))...)
		s.pushFrame(c, hframe{data: c.part, captured: c.partCap, energy: rms(c.part)})
		c.part = nil
	}
	c.holding = false
	if len(c.pend) > 0 {
		s.sendFrames(c, len(c.pend))
	}
	if c.speaking && c.pos-c.turnStart >= 100*bytesPerMS {
		id := c.send(&bufferCommit{})
		c.commits = append(c.commits, pendingCommit{eventID: id, start: c.turnStart, end: c.pos})
		c.turnStart = c.pos
	}
}

// keepTime tops the input up with silence to wall-clock pace while the
// speaker sends nothing, so server VAD sees the pause and ends the turn.
func (s *interpSession) keepTime(c *iconn, now time.Time) {
	if c == nil || c.dead || c.draining || s.closing || !s.idleFor(now, speakerIdle) {
		return
	}
	if len(c.part) > 0 {
		s.flush(c, true)
	}
	total := c.pos + c.pendBytes()
	if ahead := bytesDur(total) - now.Sub(c.base); ahead > 0 {
		c.base = c.base.Add(-ahead)
	} else {
		for i := 0; i < 50 && bytesDur(total+iChunk) <= now.Sub(c.base); i++ {
			for k := 0; k < iChunk/frameBytes; k++ {
				s.pushFrame(c, hframe{data: make([]byte, frameBytes), captured: c.base.Add(bytesDur(total))})
				total += frameBytes
			}
		}
	}
	s.flush(c, true)
}

// --- turns and responses ---

// schedule asks for the head turn's translation when no response is active.
func (s *interpSession) schedule() {
	if s.active != nil || len(s.turns) == 0 || s.finished {
		return
	}
	t := s.turns[0]
	if t.c == nil || t.c.dead || t.item == "" || time.Now().Before(t.notBefore) {
		return
	}
	instr := s.instr + contextLine(s.prevSrc)
	if t.rejected > 0 {
		instr += reinforce(s.ch)
	}
	id := t.c.send(outOfBandResponse(instr, t.item))
	s.active = &reply{t: t, c: t.c, eventID: id}
}

func (s *interpSession) newTurn(c *iconn, item string, start, end int64) {
	if start >= end {
		start = max(0, end-100*bytesPerMS)
	}
	s.turnNext++
	t := &turn{n: s.turnNext, c: c, item: item, speechMS: (end - start) / bytesPerMS}
	from := max(start, end-int64(durBytes(s.eng.opt.MaxTurn+2*time.Second)))
	t.audio = c.audioRange(from, end)
	t.capStart = c.marks.at(start)
	t.capEnd = c.marks.at(end)
	if sc := s.srcCaps[item]; sc != nil {
		t.src = sc.text
	}
	s.turns = append(s.turns, t)
	s.byItem[item] = t
	s.schedule()
}

// turnDone retires the head turn: its words become the context of the
// next one and the item retired before it is deleted (one turn late, so its
// transcription can finish), so the server-side conversation stays flat
// however long the talk.
func (s *interpSession) turnDone(t *turn) {
	for i, x := range s.turns {
		if x == t {
			s.turns = append(s.turns[:i:i], s.turns[i+1:]...)
			break
		}
	}
	delete(s.byItem, t.item)
	t.audio = nil
	c := t.c
	if t.src != "" {
		s.prevSrc = t.src
	}
	if c != nil && !c.dead {
		if c.retired != "" && c.retired != t.item {
			c.send(&itemDelete{ItemID: c.retired})
		}
		c.retired = t.item
	}
}

// dropTurn gives up on a turn and deletes its item.
func (s *interpSession) dropTurn(t *turn, why string) {
	s.log.Error("turn not translated", "turn", t.n, "why", why)
	for i, x := range s.turns {
		if x == t {
			s.turns = append(s.turns[:i:i], s.turns[i+1:]...)
			break
		}
	}
	delete(s.byItem, t.item)
	if t.c != nil && !t.c.dead && t.item != "" && t.item != t.c.retired {
		t.c.send(&itemDelete{ItemID: t.item})
	}
}

func (s *interpSession) replyAudio(r *reply, pcm []byte) {
	if r.rejected {
		return
	}
	if !r.approved {
		r.held = append(r.held, pcm)
		return
	}
	s.emitAudio(r, pcm)
}

func (s *interpSession) emitAudio(r *reply, pcm []byte) {
	captured := r.t.capStart
	if !captured.IsZero() {
		captured = captured.Add(bytesDur(r.out))
		if !r.t.capEnd.IsZero() && captured.After(r.t.capEnd) {
			captured = r.t.capEnd
		}
	}
	r.out += int64(len(pcm))
	splitAudio(pcm, captured, s.sink.Audio)
}

func (s *interpSession) replyText(r *reply, delta string) {
	if r.rejected {
		return
	}
	r.text += delta
	if !r.approved {
		s.judgeReply(r, false)
		return
	}
	if limit := lengthLimit(r.t.src, r.t.speechMS); limit > 0 && len([]rune(r.text)) > limit {
		s.reject(r, "ran on far longer than the speech")
		return
	}
	s.out.add(delta, time.Now())
}

// judgeReply decides, once enough transcript is in, whether the reply is a
// translation; until then its audio is held back.
func (s *interpSession) judgeReply(r *reply, final bool) {
	if r.approved || r.rejected {
		return
	}
	decided, reason := s.judge.verdict(r.text, lengthLimit(r.t.src, r.t.speechMS), final)
	if !decided {
		return
	}
	if reason != "" {
		s.reject(r, reason)
		return
	}
	r.approved = true
	s.out.add(r.text, time.Now())
	for _, a := range r.held {
		s.emitAudio(r, a)
	}
	r.held = nil
}

func (s *interpSession) reject(r *reply, reason string) {
	r.rejected = true
	r.held = nil
	r.t.rejected++
	s.out.finish()
	text := r.text
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	s.log.Warn("caught a reply that is not a translation; not forwarded", "turn", r.t.n, "why", reason, "reply", text, "source", r.t.src)
}

func (s *interpSession) replyDone(r *reply, ev *serverEvent) {
	s.judgeReply(r, true)
	s.out.finish()
	s.active = nil
	t := r.t
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
		if te != nil && te.Permanent {
			s.countError(te)
			s.fail(te)
			return
		}
		t.attempts++
		if t.attempts >= maxTurnAttempts {
			s.dropTurn(t, "response "+status+" "+maxTurnAttemptsText)
			break
		}
		d := s.backoff(t.attempts-1, 0)
		if te != nil && te.Code == "rate_limited" {
			d = max(d, time.Second)
		}
		t.notBefore = time.Now().Add(d)
		s.log.Warn("response did not complete; retrying the turn", "turn", t.n, "status", status, "in", d.Round(time.Millisecond))
	default:
		if r.rejected && t.rejected < 2 && r.out == 0 {
			s.log.Info("asking again for the translation of the turn", "turn", t.n)
			break // head turn again, with reinforced instructions
		}
		s.turnDone(t)
	}
	s.schedule()
}

const maxTurnAttemptsText = "too many times"

// --- events ---

func (s *interpSession) find(c *conn) *iconn {
	for _, x := range append([]*iconn{s.cur, s.next}, s.olds...) {
		if x != nil && x.conn == c {
			return x
		}
	}
	return nil
}

func (s *interpSession) handle(e connEvent) {
	c := s.find(e.c)
	if c == nil {
		return
	}
	if e.closed {
		s.onClosed(c, e.err)
		return
	}
	ev := e.ev
	r := s.active
	mine := r != nil && r.c == c && (r.id == "" || ev.ResponseID == "" || ev.ResponseID == r.id)
	switch ev.Type {
	case "input_audio_buffer.speech_started":
		c.speaking = true
		start := c.pos
		if ev.AudioStartMS != nil {
			start = *ev.AudioStartMS * bytesPerMS
		}
		c.turnStart = max(c.turnStart, start-speechPrefix)
	case "input_audio_buffer.speech_stopped":
		c.speaking = false
		end := c.pos
		if ev.AudioEndMS != nil {
			end = *ev.AudioEndMS * bytesPerMS
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
		s.srcDelta(c, ev.ItemID, ev.Delta, false)
	case "conversation.item.input_audio_transcription.completed":
		s.srcDelta(c, ev.ItemID, ev.Transcript, true)
	case "response.created":
		if r != nil && r.c == c && r.id == "" && ev.Response != nil {
			r.id = ev.Response.ID
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

func (s *interpSession) onCommitted(c *iconn, item string) {
	if item == "" {
		return
	}
	var start, end int64
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
		start, end = c.turnStart, c.pos
		c.turnStart = max(c.turnStart, end)
	}
	s.newTurn(c, item, start, end)
}

func (s *interpSession) srcDelta(c *iconn, item, text string, final bool) {
	if item == "" {
		return
	}
	sc := s.srcCaps[item]
	if sc == nil {
		if strings.TrimSpace(text) == "" {
			return
		}
		sc = &srcCaption{conn: c.id, seg: s.srcNext}
		s.srcNext++
		s.srcCaps[item] = sc
	}
	if final {
		sc.text = strings.TrimSpace(text)
		delete(s.srcCaps, item)
	} else {
		sc.text = strings.TrimLeft(sc.text+text, " ")
	}
	if t := s.byItem[item]; t != nil {
		t.src = sc.text
	}
	if sc.text != "" || final {
		s.sink.SourceCaption(sc.seg, sc.text, final)
	}
}

func (s *interpSession) onError(c *iconn, ae *apiError) {
	if ae == nil {
		return
	}
	te := s.eng.classify(ae)
	if ae.EventID != "" {
		if r := s.active; r != nil && r.c == c && r.eventID == ae.EventID {
			s.active = nil
			if te != nil && te.Permanent {
				s.countError(te)
				s.fail(te)
				return
			}
			t := r.t
			t.attempts++
			if t.attempts >= maxTurnAttempts {
				s.dropTurn(t, "response refused "+maxTurnAttemptsText+": "+s.eng.scrub(ae.Message))
				s.schedule()
				return
			}
			d := s.backoff(t.attempts-1, 0)
			if te != nil {
				s.countError(te)
				d = max(d, time.Second)
			}
			t.notBefore = time.Now().Add(d)
			s.log.Warn("response refused; retrying the turn", "turn", t.n, "code", ae.Code, "in", d.Round(time.Millisecond))
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
		s.log.Warn("server error event", "code", ae.Code, "type", ae.Type, "message", s.eng.scrub(ae.Message), "conn", c.id)
		return
	}
	s.countError(te)
	if te.Permanent {
		s.fail(te)
		return
	}
	s.log.Warn("connection interrupted", "code", te.Code, "conn", c.id)
	if te.Code == "session_expired" {
		c.close()
	}
}

// --- connections ---

func (s *interpSession) tick(now time.Time) {
	if s.cur != nil {
		s.pump()
		s.keepTime(s.cur, now)
	}
	for _, c := range append([]*iconn{s.cur, s.next}, s.olds...) {
		if c != nil {
			c.keepAlive(now)
		}
	}
	s.out.tick(now)
	s.schedule()
	for _, o := range s.olds {
		if !o.closed && (!s.busy(o) || now.After(o.deadline)) {
			if s.busy(o) {
				s.log.Warn("old connection did not finish its turns in time; moving them", "conn", o.id)
			}
			o.close() // reader reports it; onClosed moves what is left
		}
	}
	if s.closing {
		if !s.anyWork() {
			s.finished = true
			return
		}
	}
	switch {
	case s.cur == nil:
		if !s.dialing && now.After(s.retryAt) {
			s.startDial("reconnect")
		}
	case s.closing:
	case s.next != nil:
		s.maybeSwitch(now)
	case !s.dialing && now.After(s.retryAt) && now.After(s.cur.rotateAt(s.eng.opt.RotateBefore)):
		s.log.Info("connection expires soon; opening a fresh one", "conn", s.cur.id, "expires_at", s.cur.expiresAt)
		s.startDial("rotate")
	}
}

// busy reports whether c still has turns, a response or a commit to finish.
func (s *interpSession) busy(c *iconn) bool {
	if len(c.commits) > 0 || (s.active != nil && s.active.c == c) {
		return true
	}
	for _, t := range s.turns {
		if t.c == c {
			return true
		}
	}
	return false
}

func (s *interpSession) anyWork() bool {
	if len(s.turns) > 0 || s.active != nil {
		return true
	}
	for _, c := range append([]*iconn{s.cur}, s.olds...) {
		if c != nil && !c.dead && len(c.commits) > 0 {
			return true
		}
	}
	return false
}

// maybeSwitch moves input to the fresh connection at a pause: the old one
// commits the speech it holds and answers its turns before it closes.
func (s *interpSession) maybeSwitch(now time.Time) {
	if s.next == nil || s.cur == nil {
		return
	}
	paused := now.Sub(s.lastLoud) >= pauseNeeded
	if !paused && now.Sub(s.ready) < s.eng.opt.SwitchWait {
		return
	}
	old := s.cur
	s.commitNow(old)
	old.draining = true
	old.deadline = now.Add(iDrainTimeout)
	s.olds = append(s.olds, old)
	s.cur, s.next = s.next, nil
	s.cur.base = now
	s.log.Info("moved to a fresh connection", "from", old.id, "to", s.cur.id, "at_pause", paused)
}

func (s *interpSession) onDialed(r dialResult) {
	s.dialing = false
	if r.err != nil {
		s.dialFailed(r.err)
		return
	}
	s.attempts = 0
	if s.closing && s.cur != nil {
		r.c.close()
		return
	}
	c := s.adopt(r.c)
	if s.cur == nil {
		s.cur = c
		s.log.Info("reconnected", "conn", c.id)
		s.recover()
		s.pump()
		return
	}
	s.next = c
	s.ready = time.Now()
	s.maybeSwitch(s.ready)
}

// recover moves the work of lost connections to the current one: turns not
// yet answered are re-created from their audio, and the speech the lost
// connection had not committed is appended again.
func (s *interpSession) recover() {
	c := s.cur
	if c == nil || c.dead {
		return
	}
	for _, t := range append([]*turn(nil), s.turns...) {
		if t.c == c || (t.c != nil && !t.c.dead) {
			continue
		}
		if len(t.audio) == 0 {
			s.dropTurn(t, "its audio was not kept")
			continue
		}
		delete(s.byItem, t.item)
		t.item = newItemID()
		t.c = c
		c.send(audioItem(t.item, t.audio))
		s.byItem[t.item] = t
		s.log.Info("re-sent an unanswered turn", "turn", t.n, "ms", len(t.audio)/bytesPerMS)
	}
	if lost := s.lost; lost != nil {
		s.lost = nil
		rest := lost.audioRange(lost.turnStart, lost.pos)
		for _, f := range lost.pend {
			rest = append(rest, f.data...)
		}
		rest = append(rest, lost.part...)
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

func (s *interpSession) onClosed(c *iconn, err error) {
	if !c.closed {
		c.closed = true
		_ = c.ws.Close()
	}
	c.dead = true
	if r := s.active; r != nil && r.c == c {
		s.out.finish()
		s.active = nil // the turn stays at the head and is asked again
	}
	for k, sc := range s.srcCaps {
		if sc.conn == c.id {
			s.sink.SourceCaption(sc.seg, sc.text, true)
			delete(s.srcCaps, k)
		}
	}
	switch {
	case c == s.next:
		s.next = nil
		return
	case c == s.cur:
		s.cur = nil
		if !(s.closing && !s.anyWork()) {
			s.log.Warn("connection lost; reconnecting", "conn", c.id, "err", err)
			s.countError(&engine.Error{Code: "connection_lost"})
			s.lost = c
			if s.next != nil {
				s.cur, s.next = s.next, nil
				s.cur.base = time.Now()
			} else {
				s.retryAt = time.Now().Add(s.backoff(0, 0))
			}
		}
	default:
		for i, o := range s.olds {
			if o == c {
				s.olds = append(s.olds[:i:i], s.olds[i+1:]...)
			}
		}
	}
	s.recover()
	if s.closing && !s.anyWork() {
		s.finished = true
	}
}

func (s *interpSession) beginClose() {
	s.closing = true
	if s.next != nil {
		s.next.close()
		s.next = nil
	}
	if s.cur != nil {
		for _, f := range s.queue.take() {
			s.addAudio(s.cur, f.pcm, f.captured)
		}
		s.commitNow(s.cur)
	}
	if !s.anyWork() {
		s.finished = true
	}
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
