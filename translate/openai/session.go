package openai

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/translate/engine"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("openai: session closed")

const tickEvery = 50 * time.Millisecond

// session is what both kinds of session share: the inbox of speaker audio,
// the one goroutine that runs the session, closing and the end state. Its
// Append, Close, Done, Err and Kind are the engine.Session of either kind.
//
// Everything but Append, Close, Done, Err and Kind runs on the run
// goroutine.
type session struct {
	eng  *Engine
	ch   engine.Channel
	sink engine.Sink
	kind string
	log  *slog.Logger

	inbox    *inbox
	events   chan connEvent  // from the connections' readers
	dialed   chan dialResult // from the rotator's dialling goroutine
	closeReq chan struct{}   // Close was called
	stop     chan struct{}   // closed when the run loop ends: readers and dialers quit
	done     chan struct{}   // closed when the session has ended
	wg       sync.WaitGroup  // readers and dialers
	ctx      context.Context // cancelled when the session ends: aborts dials
	cancel   context.CancelFunc

	closeOnce sync.Once
	errMu     sync.Mutex
	err       error

	// run-goroutine state
	closing  bool      // Close was called: finish what is held, then end
	finished bool      // the run loop ends
	lastLoud time.Time // when the speaker last sent speech-level audio
}

// A sessionKind is what a kind of session does with the events of the run
// loop. Its connections' events go to its rotator. Every method runs on
// the run goroutine.
type sessionKind interface {
	pump()              // speaker audio is in the inbox
	beginClose()        // Close was called: flush, then finish
	tick(now time.Time) // every tickEvery: timeouts, rotation, retries
	// end finishes what the kind still holds once the loop is over and
	// returns its connections, to be closed.
	end() []*conn
}

// connEvents is a rotator as the run loop sees it.
type connEvents interface {
	handle(e connEvent)
	dialDone(r dialResult)
}

func newSession(e *Engine, ch engine.Channel, sink engine.Sink, kind string) *session {
	ctx, cancel := context.WithCancel(context.Background())
	log := e.log.With("room", ch.Room, "lang", ch.Target, "kind", kind)
	return &session{
		eng: e, ch: ch, sink: sink, kind: kind, log: log,
		inbox:    newInbox(audio.DurationBytes(e.opt.QueueAudio), log),
		events:   make(chan connEvent, 256),
		dialed:   make(chan dialResult, 1),
		closeReq: make(chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
	}
}

// run is the session's one goroutine: it hands the session's events to k
// and conns until the session is finished, then shuts it down.
func (s *session) run(k sessionKind, conns connEvents) {
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	for !s.finished {
		select {
		case <-s.inbox.ready():
			k.pump()
		case ev := <-s.events:
			conns.handle(ev)
		case r := <-s.dialed:
			conns.dialDone(r)
		case <-s.closeReq:
			k.beginClose()
		case now := <-t.C:
			k.tick(now)
		case <-s.ctx.Done():
			s.finished = true
		}
	}
	s.shutdown(k.end()...)
}

// Append implements engine.Session: it queues and never blocks.
func (s *session) Append(pcm []byte, captured time.Time) error {
	if len(pcm)%2 != 0 {
		return errors.New("openai: PCM16 audio must have an even number of bytes")
	}
	if len(pcm) == 0 {
		return nil
	}
	if !s.inbox.push(pcm, captured) {
		return ErrClosed
	}
	return nil
}

// Done implements engine.Session.
func (s *session) Done() <-chan struct{} { return s.done }

// Err implements engine.Session: why the session ended by itself.
func (s *session) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// Kind implements engine.Session.
func (s *session) Kind() string { return s.kind }

// Close implements engine.Session: flush, then end.
func (s *session) Close(ctx context.Context) error {
	s.inbox.close()
	s.closeOnce.Do(func() {
		select {
		case s.closeReq <- struct{}{}:
		case <-s.done:
		}
	})
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cancel() // the run loop sees it and ends at once
		<-s.done
		return ctx.Err()
	}
}

// takeAudio empties the inbox, noting when the speaker last spoke.
func (s *session) takeAudio() []audio.Frame {
	frames := s.inbox.take()
	for _, f := range frames {
		if loud(f.PCM) {
			s.lastLoud = time.Now()
		}
	}
	return frames
}

// pausedFor reports whether the speaker has sent no speech-level audio for d.
func (s *session) pausedFor(now time.Time, d time.Duration) bool {
	return now.Sub(s.lastLoud) >= d
}

// idleFor reports whether the speaker has sent nothing at all for d.
func (s *session) idleFor(now time.Time, d time.Duration) bool {
	return now.Sub(s.inbox.lastReceived()) >= d
}

// fail ends the session with err.
func (s *session) fail(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.errMu.Unlock()
	s.log.Error("session ended", "err", err)
	s.finished = true
}

// failOn ends the session if te is permanent, and reports whether it did.
func (s *session) failOn(te *engine.Error) bool {
	if te == nil || !te.Permanent {
		return false
	}
	s.countError(te)
	s.fail(te)
	return true
}

// warnServerError logs an error event that interrupts nothing.
func (s *session) warnServerError(c *conn, ae *apiError) {
	s.log.Warn("server error event", "code", ae.Code, "type", ae.Type, "message", s.eng.scrub(ae.Message), "conn", c.id)
}

// interrupted handles an error event that ends c's work: a permanent one
// ends the session; an expired connection is closed at once, to be
// replaced (it cannot be resumed).
func (s *session) interrupted(c *conn, te *engine.Error) {
	if s.failOn(te) {
		return
	}
	s.countError(te)
	s.log.Warn("connection interrupted", "code", te.Code, "conn", c.id)
	if te.Code == "session_expired" {
		c.close()
	}
}

func (s *session) countError(err error) {
	code := "other"
	var te *engine.Error
	if errors.As(err, &te) {
		code = te.Code
	}
	metrics.Errors.WithLabelValues("translate", code).Inc()
}

// shutdown runs when the run loop ends: it stops readers and dialers and
// waits for them, then marks the session done.
func (s *session) shutdown(conns ...*conn) {
	s.inbox.close()
	s.cancel()
	for _, c := range conns {
		if c != nil && !c.closed {
			c.close()
		}
	}
	close(s.stop)
	s.wg.Wait()
	close(s.done)
}

// inbox holds the speaker audio between Append and the run loop: at most
// max bytes, dropping the oldest when full, so Append never blocks and a
// slow network costs the oldest speech, not the newest.
type inbox struct {
	max   int
	queue *audio.Queue[audio.Frame]
	log   *slog.Logger

	// mu makes a push and its measure of what it dropped one step, so a
	// take in between does not count as dropped.
	mu       sync.Mutex
	received time.Time // when Append last gave audio
	dropped  int       // bytes dropped since the last log line
	lastLog  time.Time
}

func newInbox(max int, log *slog.Logger) *inbox {
	size := func(f audio.Frame) int { return len(f.PCM) }
	return &inbox{max: max, queue: audio.NewQueue(0, size, max), log: log}
}

// push queues a copy of pcm, or its newest max bytes. It reports false once
// the inbox is closed.
func (in *inbox) push(pcm []byte, captured time.Time) bool {
	if len(pcm) > in.max {
		cut := len(pcm) - in.max
		cut -= cut % 2
		pcm = pcm[cut:]
		captured = addBytes(captured, cut)
	}
	f := audio.Frame{PCM: append([]byte(nil), pcm...), Captured: captured}
	in.mu.Lock()
	defer in.mu.Unlock()
	before := in.queue.Size()
	n, ok := in.queue.Push(f)
	if !ok {
		return false
	}
	in.received = time.Now()
	if n > 0 {
		metrics.FramesDropped.WithLabelValues("translate", "queue_full").Add(float64(n))
		in.dropped += before + len(f.PCM) - in.queue.Size()
	}
	if in.dropped > 0 && time.Since(in.lastLog) > 5*time.Second {
		in.log.Warn("session cannot keep up: dropped the oldest speaker audio", "dropped_ms", in.dropped/bytesPerMS)
		in.dropped = 0
		in.lastLog = time.Now()
	}
	return true
}

// ready receives a value after a push.
func (in *inbox) ready() <-chan struct{} { return in.queue.Ready() }

// take removes and returns everything queued.
func (in *inbox) take() []audio.Frame {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.queue.PopAll()
}

// lastReceived is when Append last gave audio.
func (in *inbox) lastReceived() time.Time {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.received
}

func (in *inbox) close() { in.queue.Close() }
