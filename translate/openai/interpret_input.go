package openai

import (
	"encoding/base64"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
)

// The instructed kind's input: the speaker's audio, cut into 20 ms frames,
// is appended to the model's input buffer in chunks, where server VAD cuts
// it into turns. A speaker who never pauses gives the VAD no turn end: the
// session follows the speech itself and, as a turn nears MaxTurn, holds
// the input back and commits the turn at the quietest 20 ms it held.

const (
	frameBytes     = 20 * bytesPerMS   // the unit of input held: loudness is judged, and long turns cut, per frame
	appendChunk    = 100 * bytesPerMS  // input is appended in chunks of at least this
	maxAppendBytes = 1000 * bytesPerMS // and at most this in one event
	speechPrefix   = 300 * bytesPerMS  // audio kept before the detected start of speech
)

// interpreterConn is a connection of the instructed kind and the state of
// its input buffer.
type interpreterConn struct {
	*conn
	frames       chunker      // input into frames
	pending      []inputFrame // not yet appended (batched, or held back near a long turn's end)
	holding      bool         // input is held back: a long turn is about to be cut
	speaking     bool         // server VAD says speech is going on
	loudNow      bool         // our own ear: speech-level input lately (the VAD's word may lag)
	quietRun     int          // quiet frames in a row
	turnStart    int          // input position where the audio of the next turn starts
	stopAt       map[string]int
	commits      []pendingCommit
	kept         []byte // the audio appended from keptFrom on: turns and replay take from it
	keptFrom     int
	answeredItem string // item of the last answered turn, deleted after the next
}

// inputFrame is 20 ms of input waiting to be appended, with its loudness.
type inputFrame struct {
	pcm      []byte
	captured time.Time
	energy   float64
}

// pendingCommit is a commit this session sent, awaiting its item.
type pendingCommit struct {
	eventID    string
	start, end int
}

func (c *interpreterConn) pendingBytes() int { return len(c.pending) * frameBytes }

// keptRange returns a copy of the appended audio in [start, end).
func (c *interpreterConn) keptRange(start, end int) []byte {
	start = max(start, c.keptFrom)
	end = min(end, c.keptFrom+len(c.kept))
	if end <= start {
		return nil
	}
	return append([]byte(nil), c.kept[start-c.keptFrom:end-c.keptFrom]...)
}

// trimKept drops the appended audio before pos.
func (c *interpreterConn) trimKept(pos int) {
	if pos <= c.keptFrom {
		return
	}
	n := min(pos-c.keptFrom, len(c.kept))
	c.kept = append(c.kept[:0:0], c.kept[n:]...)
	c.keptFrom += n
}

// pump moves the speaker's audio to the current connection.
func (s *interpreterSession) pump() {
	c := s.conns.cur
	if c == nil || s.closing {
		return
	}
	for _, f := range s.takeAudio() {
		s.addAudio(c, f.PCM, f.Captured)
	}
	s.flush(c, false)
	s.conns.maybeSwitch(time.Now())
}

// addAudio cuts input into frames on c's pending list.
func (s *interpreterSession) addAudio(c *interpreterConn, pcm []byte, captured time.Time) {
	c.frames.add(pcm, captured, func(f []byte, captured time.Time) { s.pushFrame(c, newInputFrame(f, captured)) })
}

// padPartial pads the partial frame with silence and queues it.
func (s *interpreterSession) padPartial(c *interpreterConn) {
	c.frames.pad(func(f []byte, captured time.Time) { s.pushFrame(c, newInputFrame(f, captured)) })
}

func newInputFrame(pcm []byte, captured time.Time) inputFrame {
	return inputFrame{pcm: pcm, captured: captured, energy: rms(pcm)}
}

// pushFrame queues a frame and follows speech onsets by ear, so a long
// turn is watched from its start even when the VAD's events lag.
func (s *interpreterSession) pushFrame(c *interpreterConn, f inputFrame) {
	if f.energy > loudRMS {
		c.quietRun = 0
		if !c.loudNow {
			c.loudNow = true
			if !c.speaking {
				onset := c.appended + c.pendingBytes()
				c.turnStart = max(c.turnStart, onset-speechPrefix)
			}
		}
	} else if c.quietRun++; c.quietRun >= 25 {
		c.loudNow = false
	}
	c.pending = append(c.pending, f)
}

// flush appends c's pending frames unless they are held back for a cut;
// without force it waits for a whole chunk.
func (s *interpreterSession) flush(c *interpreterConn, force bool) {
	if c == nil || c.ended {
		return
	}
	if force {
		s.padPartial(c)
	}
	s.checkLongTurn(c)
	if c.holding || len(c.pending) == 0 || (!force && c.pendingBytes() < appendChunk) {
		return
	}
	s.sendFrames(c, len(c.pending))
}

// sendFrames appends the first n pending frames.
func (s *interpreterSession) sendFrames(c *interpreterConn, n int) {
	frames := c.pending[:n]
	for len(frames) > 0 {
		k := min(len(frames), maxAppendBytes/frameBytes)
		buf := make([]byte, 0, k*frameBytes)
		for _, f := range frames[:k] {
			pos := c.appended + len(buf)
			c.marks.add(pos, c.capturedAt(f.captured, pos))
			buf = append(buf, f.pcm...)
		}
		c.send(&bufferAppend{Audio: base64.StdEncoding.EncodeToString(buf)})
		c.kept = append(c.kept, buf...)
		c.appended += len(buf)
		frames = frames[k:]
	}
	c.pending = append(c.pending[:0:0], c.pending[n:]...)
	// keep only what a turn may still need: from the next turn's start, and
	// never more than a long turn's worth
	keepFrom := c.turnStart - speechPrefix
	if limit := c.appended - audio.DurationBytes(s.eng.opt.MaxTurn+3*time.Second); keepFrom < limit {
		keepFrom = limit
	}
	for _, pc := range c.commits {
		keepFrom = min(keepFrom, pc.start)
	}
	c.trimKept(keepFrom)
}

// commit ends the input from start to here as a turn.
func (s *interpreterSession) commit(c *interpreterConn, start int) {
	id := c.send(&bufferCommit{})
	c.commits = append(c.commits, pendingCommit{eventID: id, start: start, end: c.appended})
	c.turnStart = c.appended
}

// checkLongTurn holds input back as speech nears MaxTurn without a commit,
// and at MaxTurn commits at the quietest frame of what it held.
func (s *interpreterSession) checkLongTurn(c *interpreterConn) {
	if !(c.speaking || c.loudNow) || c.retired {
		c.holding = false
		return
	}
	maxTurn := audio.DurationBytes(s.eng.opt.MaxTurn)
	hold := min(audio.DurationBytes(time.Second), maxTurn/2)
	spoken := c.appended + c.pendingBytes() - c.turnStart
	if !c.holding && spoken >= maxTurn-hold {
		c.holding = true
	}
	if !c.holding || spoken < maxTurn || len(c.pending) == 0 {
		return
	}
	if !c.speaking { // loud, but not speech to the VAD: nothing to cut
		c.holding = false
		return
	}
	best := 0 // the quietest frame that ends within MaxTurn
	for i, f := range c.pending {
		if c.appended+(i+1)*frameBytes-c.turnStart > maxTurn && i > 0 {
			break
		}
		if f.energy <= c.pending[best].energy {
			best = i
		}
	}
	start := c.turnStart
	s.sendFrames(c, best+1)
	s.commit(c, start)
	c.holding = false
	s.log.Info("long turn cut", "conn", c.id, "turn_ms", (c.appended-start)/bytesPerMS)
}

// commitNow ends the speech c holds as a turn (at a move to a fresh
// connection, and at Close).
func (s *interpreterSession) commitNow(c *interpreterConn) {
	s.padPartial(c)
	c.holding = false
	if len(c.pending) > 0 {
		s.sendFrames(c, len(c.pending))
	}
	if c.speaking && c.appended-c.turnStart >= 100*bytesPerMS {
		s.commit(c, c.turnStart)
	}
}

// keepTime tops the input up with silence to wall-clock pace while the
// speaker sends nothing, so server VAD sees the pause and ends the turn.
func (s *interpreterSession) keepTime(now time.Time) {
	c := s.conns.cur
	if c == nil || s.closing || !s.idleFor(now, speakerIdle) {
		return
	}
	if len(c.frames.partial) > 0 {
		s.flush(c, true)
	}
	if s.idleFor(now, speakerIdle+s.eng.opt.TopUp) {
		c.holdClock(c.pendingBytes(), now)
		return
	}
	total := c.appended + c.pendingBytes()
	for range c.silenceOwed(c.pendingBytes(), appendChunk, now) * (appendChunk / frameBytes) {
		s.pushFrame(c, inputFrame{pcm: make([]byte, frameBytes), captured: c.start.Add(audio.BytesDuration(total))})
		total += frameBytes
	}
	s.flush(c, true)
}
