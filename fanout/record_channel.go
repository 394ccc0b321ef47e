package fanout

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/audio/opus"
	"github.com/babelcast/babelcast/internal/record"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/internal/wire"
)

// recordJob is one write to the record's stores.
type recordJob struct {
	what    string
	segment bool // an audio segment: the audio's bound is checked after it
	write   func(ctx context.Context) error
}

// recordWriter writes a room's cues and segments in order, off the NATS
// callbacks and the program's clock, through a bounded queue (the oldest
// writes are dropped, and counted in the log, when the store falls that
// far behind).
type recordWriter struct {
	rr        *roomRecorder
	q         *audio.Queue[recordJob]
	closing   chan struct{}
	closeOnce sync.Once
}

func newRecordWriter(rr *roomRecorder) *recordWriter {
	return &recordWriter{rr: rr, q: audio.NewQueue[recordJob](recordQueue, nil, 0), closing: make(chan struct{})}
}

func (w *recordWriter) push(j recordJob) {
	if n, _ := w.q.Push(j); n > 0 {
		w.rr.log.Warn("the record store falls behind; oldest writes dropped", "dropped", n)
	}
}

// close asks run to write what is queued and return.
func (w *recordWriter) close() { w.closeOnce.Do(func() { close(w.closing) }) }

// run writes queued jobs until close (after writing what is queued) or
// ctx ends (dropping it).
func (w *recordWriter) run(ctx context.Context) {
	for {
		for {
			j, ok := w.q.Pop()
			if !ok {
				break
			}
			w.do(ctx, j)
		}
		select {
		case <-ctx.Done():
			return
		case <-w.q.Ready():
		case <-w.closing:
			w.q.Close()
			for _, j := range w.q.PopAll() {
				w.do(ctx, j)
			}
			return
		}
	}
}

// do writes j, trying three times.
func (w *recordWriter) do(ctx context.Context, j recordJob) {
	var err error
	for attempt := 0; attempt < 3 && ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			sleepCtx(ctx, 500*time.Millisecond)
		}
		jctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = j.write(jctx)
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil && ctx.Err() == nil {
		w.rr.log.Warn("record write failed", "what", j.what, "err", err)
	}
	if j.segment {
		w.prune(ctx)
	}
}

// prune keeps the audio under --record-max-bytes.
func (w *recordWriter) prune(ctx context.Context) {
	max := w.rr.rs.s.o.RecordMaxBytes
	if max == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	removed, err := w.rr.rs.store.Prune(pctx, max, w.rr.id)
	for id, n := range removed {
		w.rr.log.Warn("recordings over --record-max-bytes: a room's oldest audio removed (its transcripts stay)",
			"pruned_room", id, "bytes", n, "max_bytes", max)
	}
	if err != nil {
		w.rr.log.Warn("cannot bound the recordings", "err", err)
	}
}

// channelRecorder keeps one channel's cues and, if the room is recorded,
// its audio.
type channelRecorder struct {
	rr     *roomRecorder
	w      *recordWriter
	lang   string
	floor  bool
	unsaid string // the room's source language
	run    string // tells this recorder's lines from another run's
	audio  bool

	prog *program
	subs []*nats.Subscription
	stop func()

	mu       sync.Mutex
	lines    captionLines
	open     map[uint64]*openLine   // lines by our numbering, until a while after final
	settling map[*time.Timer]func() // the original's lines whose end is being settled
	stopped  bool
	origEnd  time.Time // end of the last line of the original kept

	// The recording, owned by the program's goroutine.
	enc     *opus.Encoder
	seg     []byte    // framed packets of the current segment
	segN    int       // packets in seg
	segAt   time.Time // start of seg
	active  bool      // recording (not paused for silence)
	silentN int       // silent ticks since the last audio, not yet kept
}

// openLine is a caption line seen on the channel.
type openLine struct {
	start time.Time
	final bool
}

func startChannelRecorder(rr *roomRecorder, w *recordWriter, r *room.Room, lang string) (*channelRecorder, error) {
	c := &channelRecorder{rr: rr, w: w, lang: lang, floor: lang == wire.Floor, unsaid: r.SourceLanguage,
		run: strconv.FormatInt(time.Now().UnixNano(), 36), audio: r.Record, open: map[uint64]*openLine{}, settling: map[*time.Timer]func(){}}
	c.prog = newProgram(lang, c.floor)
	nc := rr.rs.s.o.NC
	sub := func(subj string, cb nats.MsgHandler) error {
		s, err := nc.Subscribe(subj, cb)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
		_ = s.SetPendingLimits(8192, 64<<20)
		c.subs = append(c.subs, s)
		return nil
	}
	err := sub(subject.SourceCaptions(r.ID), c.onSourceCaption)
	if err == nil && !c.floor {
		err = sub(subject.Caption(r.ID, lang), c.onCaption)
	}
	if err == nil && c.audio {
		if c.enc, err = opus.NewEncoder(0); err == nil {
			in := &programInput{prog: c.prog, unsaid: c.unsaid}
			err = in.subscribe(r.ID, lang, c.floor, sub)
		}
	}
	if err != nil {
		c.unsubscribe()
		return nil, err
	}
	if !c.audio {
		c.stop = func() { c.unsubscribe(); c.settleAll() }
		return c, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.prog.run(ctx, c.deliver)
	}()
	c.stop = func() {
		c.unsubscribe()
		c.settleAll()
		cancel()
		<-done
		c.endSegment() // the program's goroutine has ended: ours now
	}
	return c, nil
}

func (c *channelRecorder) unsubscribe() {
	for _, s := range c.subs {
		_ = s.Unsubscribe()
	}
}

// onCaption takes a line of the channel's interpretation.
func (c *channelRecorder) onCaption(m *nats.Msg) {
	cm, ok := readCaption(m)
	if !ok {
		return
	}
	c.caption(cm, c.lines.interpretation(cm.Segment), false)
}

// onSourceCaption takes what the translators heard said, where the
// channel carries it in the original (as the listeners' channel does).
func (c *channelRecorder) onSourceCaption(m *nats.Msg) {
	cm, ok := readCaption(m)
	if !ok {
		return
	}
	spoken := spokenIn(cm, c.unsaid)
	if !c.prog.plays(spoken) {
		return
	}
	from := subject.MicOf(m.Subject) // the last token: the translator's channel
	seg, ok := c.lines.original(from, cm.Segment, time.Now())
	if !ok {
		return
	}
	cm.SourceLanguage = spoken
	c.caption(cm, seg, true)
}

// caption notes a line's start, and keeps it as a cue once final. An
// interpretation's line ends as it is finalized (translators publish it
// with its speech); what was said in the original is transcribed after
// the words, so its line ends when the speech in its language last was
// heard, if that is later than its start.
func (c *channelRecorder) caption(cm wire.Caption, seg uint64, original bool) {
	now := time.Now()
	c.mu.Lock()
	l := c.open[seg]
	if l == nil {
		if len(c.open) > 1000 { // bound the memory: old lines are done
			clear(c.open)
		}
		l = &openLine{start: now}
		c.open[seg] = l
	}
	l.final = l.final || cm.Final
	start := l.start
	c.mu.Unlock()
	if !cm.Final || cm.Text == "" {
		return
	}
	cue := record.Cue{Start: start, End: now, Text: cm.Text, Speaker: cm.Speaker, SourceLanguage: cm.SourceLanguage,
		Line: c.run + "-" + strconv.FormatUint(seg, 10), Original: original}
	if !original {
		c.keep(cue)
		return
	}
	// The original's line is transcribed while or after it is said: its
	// end is the end of the speech in its language heard up to a moment
	// after the transcript (originalSettle), less the voice detector's
	// hangover.
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		c.keep(cue)
		return
	}
	var t *time.Timer
	settle := func() {
		c.mu.Lock()
		if _, ok := c.settling[t]; !ok {
			c.mu.Unlock()
			return // settled by stop
		}
		delete(c.settling, t)
		c.mu.Unlock()
		c.keep(c.settleOriginal(cue))
	}
	t = time.AfterFunc(originalSettle, settle)
	c.settling[t] = settle
}

// settleOriginal sets the span of a line of the original from the speech
// heard in its language: a line transcribed while it is said ends with
// that speech; a line transcribed only once it was said (an engine that
// transcribes a turn when it ends, as the offline one) is that run of
// speech, from its first words, but never before the previous line's end.
func (c *channelRecorder) settleOriginal(cue record.Cue) record.Cue {
	run, ok := c.rr.speech.runOf(cue.SourceLanguage, cue.Start)
	end := run.end.Add(-voiceHangover)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !ok:
	case end.After(cue.Start):
		cue.End = end
	case end.After(c.origEnd):
		cue.Start, cue.End = later(run.start, c.origEnd), end
	}
	c.origEnd = later(c.origEnd, cue.End)
	return cue
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Settling the end of the original's lines.
const (
	// originalSettle is how long after its transcript a line of the
	// original may still be spoken.
	originalSettle = time.Second
	// voiceHangover is how long ingest's voice detector calls speech
	// after the last loud sound (audio.NewVoiceDetector's default).
	voiceHangover = 300 * time.Millisecond
)

// keep sends a cue to the store.
func (c *channelRecorder) keep(cue record.Cue) {
	store, roomID, lang := c.rr.rs.store, c.rr.id, c.lang
	c.w.push(recordJob{what: "cue", write: func(ctx context.Context) error { return store.AddCue(ctx, roomID, lang, cue) }})
}

// settleAll keeps the lines still settling, as they are.
func (c *channelRecorder) settleAll() {
	c.mu.Lock()
	c.stopped = true
	pending := c.settling
	c.settling = map[*time.Timer]func(){}
	c.mu.Unlock()
	for t := range pending {
		t.Stop()
	}
	for t, settle := range pending {
		c.mu.Lock()
		c.settling[t] = settle
		c.mu.Unlock()
		settle()
	}
}

// deliver takes one tick of the program into the recording. Audio is
// kept with the silences between its words; a silence longer than
// recordIdleAfter pauses the recording (the silence is not kept) until
// the next audio.
func (c *channelRecorder) deliver(pf programFrame) {
	now := time.Now()
	if c.active {
		// The recording keeps to the wall clock, where cues are timed: a
		// stall of the program's clock (ticks it skipped) is silence, and
		// a clock running ahead starts a new segment.
		at := c.segAt.Add(time.Duration(c.segN)*record.PacketDuration + time.Duration(c.silentN)*c.prog.tick)
		switch lag := now.Sub(at); {
		case lag > 2*c.prog.tick:
			c.silentN += int(lag / c.prog.tick)
		case lag < -time.Second && c.segN > 0:
			c.endSegment()
			c.segAt, c.silentN = now, 0
		}
	}
	if len(pf.full) == 0 {
		if c.active {
			c.silentN++
			if time.Duration(c.silentN)*c.prog.tick >= recordIdleAfter {
				c.endSegment()
				c.active, c.silentN = false, 0
			}
		}
		return
	}
	if !c.active {
		c.active, c.segAt = true, now
	}
	silence := make([]byte, audio.DurationBytes(c.prog.tick))
	for ; c.silentN > 0; c.silentN-- {
		c.encode(silence)
	}
	tick := make([]byte, len(silence))
	copy(tick, pf.full)
	c.encode(tick)
}

// encode adds a tick of PCM (a whole number of packets) to the segment,
// sending the segment to the store when it is full.
func (c *channelRecorder) encode(pcm []byte) {
	samples := audio.Samples(pcm)
	for i := 0; i+opus.FrameSamples <= len(samples); i += opus.FrameSamples {
		p, err := c.enc.Encode(nil, samples[i:i+opus.FrameSamples])
		if err != nil {
			c.rr.log.Warn("opus encode", "lang", c.lang, "err", err)
			p = nil
		}
		if p == nil {
			continue
		}
		if c.segN == 0 && len(c.seg) == 0 && c.segAt.IsZero() {
			c.segAt = time.Now()
		}
		c.seg = opus.AppendFramed(c.seg, p)
		c.segN++
		if c.segN >= segmentPackets {
			next := c.segAt.Add(time.Duration(c.segN) * record.PacketDuration)
			c.endSegment()
			c.segAt = next
		}
	}
}

// endSegment sends the current segment to the store.
func (c *channelRecorder) endSegment() {
	if c.segN == 0 {
		return
	}
	data, n, at := c.seg, c.segN, c.segAt
	c.seg, c.segN, c.segAt = nil, 0, time.Time{}
	store, roomID, lang := c.rr.rs.store, c.rr.id, c.lang
	c.w.push(recordJob{what: "segment", segment: true, write: func(ctx context.Context) error {
		return store.PutSegment(ctx, roomID, lang, at, n, data)
	}})
}
