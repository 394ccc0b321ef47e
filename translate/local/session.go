package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/translate/engine"
)

// asrRate is the recognizer's sample rate (the en-us model is 16 kHz).
const asrRate = 16000

// minSpeech is the least speech a turn needs to be worth a caption: shorter
// ones are coughs and clicks, which the recognizer turns into stray words.
const minSpeech = 200 * time.Millisecond

// speakerIdle is how long no audio at all must arrive before the turn in
// progress is ended as if its closing quiet had come: a speaker who hangs
// up, or whose file ends, sends no silence to end the last sentence.
// Speakers send their silences too, so a shorter gap is late audio.
const speakerIdle = time.Second

// session is one channel interpreted offline. Four goroutines, joined by
// bounded queues:
//
//	Append → backlog (drop oldest) → listen: resample to 16 kHz, detect turns
//	  → events → feed: stream each turn into the recognizer's FIFO
//	  → recognizer results → output: captions, Apertium, espeak-ng → Sink
//
// Turns are recognized one after another while the speaker talks; a turn's
// translation and speech run while the next turn is being recognized.
type session struct {
	e    *Engine
	ch   engine.Channel
	sink engine.Sink
	log  *slog.Logger
	tr   *translator
	gl   *glossary
	syn  *synthesizer
	rec  *recognizer

	// backlog of speaker audio, at 24 kHz
	qmu        sync.Mutex
	queue      []chunk
	queued     int // samples
	maxQueued  int
	closing    bool
	dropped    int // samples dropped since the last log line
	droppedLog time.Time
	qsig       chan struct{} // a chunk arrived (capacity 1)

	flush     chan struct{} // Close asked for the pending turns to be finished
	flushOnce sync.Once
	ctx       context.Context // aborts everything
	abort     context.CancelFunc
	done      chan struct{}

	events  chan vadEvent
	results chan recResult
	total   chan uint64 // feed's count of turns, once it has seen them all

	tmu   sync.Mutex
	turns map[uint64]*TurnReport

	errMu sync.Mutex
	err   error
}

type chunk struct {
	pcm      []int16
	captured time.Time
}

// errClosed is returned by Append after Close.
var errClosed = errors.New("local session closed")

func newSession(e *Engine, ch engine.Channel, sink engine.Sink, log *slog.Logger, tr *translator, v voice) (*session, error) {
	ctx, abort := context.WithCancel(context.Background())
	s := &session{
		e: e, ch: ch, sink: sink, log: log, tr: tr,
		gl:        newGlossary(ch.Glossary, ch.Target),
		syn:       &synthesizer{log: log, bin: e.tools.espeak, voice: v, wpm: e.opts.WordsPerMinute},
		maxQueued: int(e.opts.MaxBacklog.Seconds() * audio.Rate),
		qsig:      make(chan struct{}, 1),
		flush:     make(chan struct{}),
		ctx:       ctx, abort: abort,
		done:    make(chan struct{}),
		events:  make(chan vadEvent, 32),
		results: make(chan recResult, 32),
		total:   make(chan uint64, 1),
		turns:   map[uint64]*TurnReport{},
	}
	rec, err := newRecognizer(log, e.tools, s.results, ctx.Done())
	if err != nil {
		abort()
		return nil, err
	}
	if err := rec.start(); err != nil {
		abort()
		rec.close(ctx)
		return nil, err
	}
	s.rec = rec
	// An aborted session kills its recognizer at once, so no goroutine
	// waits on a FIFO write.
	context.AfterFunc(ctx, func() { rec.close(ctx) })

	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); s.listen() }()
	go func() { defer wg.Done(); s.feed() }()
	go func() { defer wg.Done(); s.output() }()
	go func() {
		wg.Wait()
		rec.close(ctx) // idle by now: it exits at the end of its control file
		abort()
		close(s.done)
	}()
	return s, nil
}

func (s *session) Kind() string { return "local" }

func (s *session) Done() <-chan struct{} { return s.done }

func (s *session) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// fail ends the session by itself with err.
func (s *session) fail(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = &engine.Error{Code: "engine_failed", Message: err.Error()}
		s.log.Error("local session failed", "err", err)
	}
	s.errMu.Unlock()
	s.abort()
}

// Append queues speaker audio. It never blocks: when the backlog is full
// the oldest audio is dropped, and said so in the log.
func (s *session) Append(pcm []byte, captured time.Time) error {
	samples := audio.Samples(pcm)
	if len(samples) == 0 {
		return nil
	}
	if s.ctx.Err() != nil {
		if err := s.Err(); err != nil {
			return err
		}
		return errClosed
	}
	s.qmu.Lock()
	if s.closing {
		s.qmu.Unlock()
		return errClosed
	}
	s.queue = append(s.queue, chunk{samples, captured})
	s.queued += len(samples)
	for s.queued > s.maxQueued && len(s.queue) > 1 {
		s.queued -= len(s.queue[0].pcm)
		s.dropped += len(s.queue[0].pcm)
		s.queue[0] = chunk{}
		s.queue = s.queue[1:]
		metrics.FramesDropped.WithLabelValues("translate", "local_behind").Inc()
	}
	if s.dropped > 0 && time.Since(s.droppedLog) > 5*time.Second {
		s.log.Warn("the recognizer is falling behind: dropped the oldest speaker audio",
			"dropped", (time.Duration(s.dropped) * time.Second / audio.Rate).Round(time.Millisecond),
			"backlog", s.e.opts.MaxBacklog)
		s.dropped, s.droppedLog = 0, time.Now()
	}
	s.qmu.Unlock()
	select {
	case s.qsig <- struct{}{}:
	default:
	}
	return nil
}

// Close finishes the turn in progress and every turn not yet spoken, then
// stops the session's processes. When ctx ends first, it aborts.
func (s *session) Close(ctx context.Context) error {
	s.flushOnce.Do(func() {
		s.qmu.Lock()
		s.closing = true
		s.qmu.Unlock()
		close(s.flush)
	})
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.abort()
		<-s.done
		return ctx.Err()
	}
}

// queuedSamples is how much audio waits in the queue.
func (s *session) queuedSamples() int {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.queued
}

// take removes the queued audio; last is true once Close was called and
// nothing more will come.
func (s *session) take() (cs []chunk, last bool) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	cs, s.queue, s.queued = s.queue, nil, 0
	return cs, s.closing
}

// listen resamples the backlog to 16 kHz and cuts it into turns.
func (s *session) listen() {
	defer close(s.events)
	rs := audio.NewResampler(audio.Rate, asrRate)
	v := newVAD(asrRate, s.e.opts.Hangover, s.e.opts.MaxTurn)
	var (
		in24  int64 // input samples consumed
		marks []mark
		turn  uint64
		batch []vadEvent
	)
	collect := func(ev vadEvent) {
		if ev.kind == vadAudio && len(batch) > 0 && batch[len(batch)-1].kind != vadEnd {
			last := &batch[len(batch)-1]
			last.samples = append(last.samples, ev.samples...)
			return
		}
		if ev.kind == vadAudio {
			ev.samples = append([]int16(nil), ev.samples...)
		}
		batch = append(batch, ev)
	}
	send := func() bool {
		for _, ev := range batch {
			switch ev.kind {
			case vadStart:
				s.tmu.Lock()
				s.turns[turn] = &TurnReport{Turn: turn, Captured: captureAt(marks, ev.at)}
				s.tmu.Unlock()
				ev.at = int64(turn)
			case vadAudio:
				ev.at = int64(turn)
			case vadEnd:
				ev.at = int64(turn)
				turn++
			}
			select {
			case s.events <- ev:
			case <-s.ctx.Done():
				return false
			}
		}
		batch = batch[:0]
		return true
	}
	idle := time.NewTimer(speakerIdle)
	defer idle.Stop()
	for {
		select {
		case <-s.qsig:
		case <-s.flush:
		case <-idle.C:
			if s.queuedSamples() > 0 {
				// Audio came while this loop was busy (a recognizer that
				// fell behind blocks send): the speaker was not idle.
				idle.Reset(speakerIdle)
				break
			}
			if v.inTurn {
				v.flush(collect)
				if !send() {
					return
				}
			}
			continue
		case <-s.ctx.Done():
			return
		}
		cs, last := s.take()
		if len(cs) > 0 {
			idle.Reset(speakerIdle)
		}
		for _, c := range cs {
			pos16 := in24 * asrRate / audio.Rate
			if !c.captured.IsZero() {
				marks = append(marks, mark{pos16, c.captured})
				// Keep what the pre-roll can reach back to.
				for len(marks) > 1 && marks[1].pos < pos16-2*asrRate {
					marks = marks[1:]
				}
			}
			in24 += int64(len(c.pcm))
			v.push(rs.Process(c.pcm), collect)
			if !send() {
				return
			}
		}
		if last {
			v.push(rs.Flush(), collect)
			v.flush(collect)
			send()
			return
		}
	}
}

// mark ties a 16 kHz stream position to the capture time of its audio.
type mark struct {
	pos      int64
	captured time.Time
}

func captureAt(marks []mark, pos int64) time.Time {
	for i := len(marks) - 1; i >= 0; i-- {
		if marks[i].pos <= pos || i == 0 {
			return marks[i].captured.Add(time.Duration(pos-marks[i].pos) * time.Second / asrRate)
		}
	}
	return time.Time{}
}

// feed streams turns into the recognizer, and tells output how many turns
// there were once the events end.
func (s *session) feed() {
	var (
		u     *utterance
		turns uint64
	)
	for ev := range s.events {
		turn := uint64(ev.at)
		switch ev.kind {
		case vadStart:
			turns = turn + 1
			var err error
			u, err = s.rec.begin(s.ctx, turn)
			if err != nil { // the turn is reported lost by output
				if errors.Is(err, errRecognizerGaveUp) {
					s.fail(err)
				}
				u = nil
				continue
			}
			if len(ev.samples) > 0 {
				s.write(&u, turn, ev.samples)
			}
		case vadAudio:
			s.write(&u, turn, ev.samples)
		case vadEnd:
			s.tmu.Lock()
			if r := s.turns[turn]; r != nil {
				r.Ended, r.Speech, r.Cut = time.Now(), ev.speech, ev.cut
			}
			s.tmu.Unlock()
			if u != nil {
				u.end(s.ctx)
				u = nil
			}
		}
	}
	if u != nil {
		u.end(s.ctx)
	}
	s.total <- turns
}

func (s *session) write(u **utterance, turn uint64, samples []int16) {
	s.tmu.Lock()
	if r := s.turns[turn]; r != nil {
		r.Length += time.Duration(len(samples)) * time.Second / asrRate
	}
	s.tmu.Unlock()
	if *u == nil {
		return
	}
	if err := (*u).write(samples); err != nil {
		if s.ctx.Err() == nil { // output logs the turn lost
			s.log.Warn("the recognizer stopped reading; killed it", "turn", turn, "err", err)
		}
		*u = nil
	}
}

// output turns each recognized turn into captions and speech, in order of
// turns, until every turn has been resolved.
func (s *session) output() {
	var (
		resolved uint64
		total    uint64
		known    bool
		seg      uint64
		waiting  = map[uint64]recResult{} // results ahead of their turn
	)
	for !known || resolved < total {
		select {
		case res := <-s.results:
			waiting[res.turn] = res
			for {
				r, ok := waiting[resolved]
				if !ok {
					break
				}
				delete(waiting, resolved)
				resolved++
				if s.speak(r, &seg) != nil {
					return
				}
			}
		case total = <-s.total:
			known = true
		case <-s.ctx.Done():
			return
		}
	}
}

// speak publishes one turn. It returns an error only when the session
// must end.
func (s *session) speak(res recResult, seg *uint64) error {
	rep := &TurnReport{Turn: res.turn}
	s.tmu.Lock()
	if r := s.turns[res.turn]; r != nil {
		*rep = *r // a copy: a lost turn's audio may still be counted
	}
	delete(s.turns, res.turn)
	s.tmu.Unlock()
	defer func() {
		if s.e.opts.OnTurn != nil {
			s.e.opts.OnTurn(*rep)
		}
	}()
	rep.Recognized = time.Now()
	switch {
	case res.lost != nil:
		rep.Err = res.lost
		if s.ctx.Err() == nil {
			s.log.Warn("turn lost", "turn", res.turn, "err", res.lost)
		}
		return nil
	case res.text == "":
		rep.Err = errors.New("nothing recognized")
		return nil
	case rep.Speech < minSpeech:
		rep.Err = fmt.Errorf("only %v of speech: noise", rep.Speech)
		s.log.Debug("turn skipped: too little speech", "turn", res.turn, "speech", rep.Speech, "heard", res.text)
		return nil
	}
	rep.Segment = *seg
	*seg++
	rep.Source = res.text
	s.sink.SourceCaption(rep.Segment, sentence(res.text), true)

	text, err := s.tr.translate(s.ctx, res.text, s.gl)
	rep.Translated = time.Now()
	if err != nil {
		rep.Err = err
		if s.ctx.Err() != nil {
			return err
		}
		if errors.Is(err, errTranslatorGaveUp) {
			s.fail(err)
			return err
		}
		s.log.Warn("turn not translated", "turn", res.turn, "err", err)
		return nil
	}
	rep.Translation = sentence(text)
	if rep.Translation == "" {
		return nil
	}
	// The line shows as its speech starts and is final once all of it is
	// spoken (captions travel with the audio, at its pace): listeners read
	// it while they hear it, and the record keeps when it was heard, first
	// words to end, rather than a cue of no length.
	s.sink.Caption(rep.Segment, rep.Translation, false)
	defer s.sink.Caption(rep.Segment, rep.Translation, true)

	var samples int
	err = s.syn.speak(s.ctx, rep.Translation, func(p []int16) {
		if samples == 0 {
			rep.FirstAudio = time.Now()
		}
		samples += len(p)
		s.sink.Audio(audio.Bytes(p), rep.Captured)
	})
	rep.Done = time.Now()
	rep.Audio = time.Duration(samples) * time.Second / audio.Rate
	if err != nil {
		rep.Err = err
		if s.ctx.Err() != nil {
			return err
		}
		s.log.Warn("turn not spoken", "turn", res.turn, "err", err)
		return nil
	}
	s.log.Debug("turn interpreted", "turn", res.turn, "segment", rep.Segment,
		"length", rep.Length.Round(10*time.Millisecond),
		"recognized_after", rep.Recognized.Sub(rep.Ended).Round(time.Millisecond),
		"first_audio_after", rep.FirstAudio.Sub(rep.Ended).Round(time.Millisecond),
		"heard", rep.Source, "said", rep.Translation)
	return nil
}

// sentence capitalizes a caption line: the recognizer speaks lower case.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}
