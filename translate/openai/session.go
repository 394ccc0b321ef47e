package openai

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/translate/engine"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("openai: session closed")

const tickEvery = 50 * time.Millisecond

// dialResult is the outcome of a background connect.
type dialResult struct {
	c       *conn
	err     error
	purpose string // "reconnect" or "rotate"
}

// core is what both kinds of session share: the audio queue, the events of
// their connections, dialing in the background, closing and the end state.
// Everything but Append, Close, Done and Err runs on the run goroutine.
type core struct {
	eng  *Engine
	ch   engine.Channel
	sink engine.Sink
	kind string
	log  *slog.Logger

	queue    *audioQueue
	events   chan connEvent
	dialed   chan dialResult
	closeReq chan struct{}
	stop     chan struct{} // closed when the run loop ends: readers and dialers quit
	done     chan struct{} // closed when the session has ended
	wg       sync.WaitGroup
	ctx      context.Context // cancelled when the session ends: aborts dials
	cancel   context.CancelFunc
	update   func() clientEvent // builds the session.update of this kind; called by dialling goroutines

	closeOnce sync.Once
	errMu     sync.Mutex
	err       error

	// run-goroutine state
	nextConnID int
	dialing    bool
	attempts   int       // connection attempts failed in a row
	retryAt    time.Time // earliest next attempt
	closing    bool
	finished   bool
}

// kindEvents is what a kind of session does with the events of core.run.
// Every method runs on run's goroutine.
type kindEvents interface {
	pump()               // speaker audio is queued
	handle(e connEvent)  // a connection said something, or ended
	onDialed(dialResult) // a connection attempt is over
	beginClose()         // Close was called: flush, then finish
	tick(now time.Time)  // every tickEvery: timeouts, rotation, retries
	// end finishes what the kind still holds once the loop is over and
	// returns its connections, to be closed.
	end() []*conn
}

// run is a session's one goroutine: it hands k the session's events until
// the session is finished, then shuts it down.
func (s *core) run(k kindEvents) {
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	for !s.finished {
		select {
		case <-s.queue.notify:
			k.pump()
		case ev := <-s.events:
			k.handle(ev)
		case r := <-s.dialed:
			k.onDialed(r)
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

func newCore(e *Engine, ch engine.Channel, sink engine.Sink, kind string) *core {
	ctx, cancel := context.WithCancel(context.Background())
	log := e.log.With("room", ch.Room, "lang", ch.Target, "kind", kind)
	return &core{
		eng: e, ch: ch, sink: sink, kind: kind, log: log,
		queue:    newAudioQueue(durBytes(e.opt.QueueAudio), log),
		events:   make(chan connEvent, 256),
		dialed:   make(chan dialResult, 1),
		closeReq: make(chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
	}
}

// Append implements engine.Session: it queues and never blocks.
func (s *core) Append(pcm []byte, captured time.Time) error {
	if len(pcm)%2 != 0 {
		return errors.New("openai: PCM16 audio must have an even number of bytes")
	}
	if len(pcm) == 0 {
		return nil
	}
	if !s.queue.push(pcm, captured) {
		return ErrClosed
	}
	return nil
}

// Done implements engine.Session.
func (s *core) Done() <-chan struct{} { return s.done }

// Err implements engine.Session: why the session ended by itself.
func (s *core) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// Kind implements engine.Session.
func (s *core) Kind() string { return s.kind }

// Close implements engine.Session: flush, then end.
func (s *core) Close(ctx context.Context) error {
	s.queue.close()
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

// firstConnect opens the first connection inside Open, retrying retryable
// failures a few times within ctx.
func (s *core) firstConnect(ctx context.Context) (*conn, error) {
	for attempt := 0; ; attempt++ {
		c, err := s.eng.connect(ctx, s.kind, s.newConnID(), s.update)
		if err == nil {
			return c, nil
		}
		var te *engine.Error
		if !errors.As(err, &te) || te.Permanent || attempt+1 >= min(s.eng.opt.MaxRetries, 4) {
			s.countError(err)
			return nil, err
		}
		d := s.backoff(attempt, te.RetryAfter)
		s.log.Warn("opening the session failed; retrying", "err", err, "in", d)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *core) newConnID() int {
	s.nextConnID++
	return s.nextConnID
}

// startDial connects in the background; the result arrives on s.dialed.
func (s *core) startDial(purpose string) {
	if s.dialing {
		return
	}
	s.dialing = true
	id := s.newConnID()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c, err := s.eng.connect(s.ctx, s.kind, id, s.update)
		select {
		case s.dialed <- dialResult{c: c, err: err, purpose: purpose}:
		case <-s.stop:
			if c != nil {
				_ = c.ws.Close()
			}
		}
	}()
}

// dialFailed records a failed attempt and schedules the next one. It
// reports false when the session should give up.
func (s *core) dialFailed(err error) bool {
	s.dialing = false
	s.countError(err)
	var te *engine.Error
	if errors.As(err, &te) && te.Permanent {
		s.fail(err)
		return false
	}
	if s.ctx.Err() != nil {
		return false
	}
	s.attempts++
	if s.attempts >= s.eng.opt.MaxRetries {
		if te == nil {
			te = &engine.Error{Code: "connection_lost", Message: err.Error()}
		}
		s.fail(&engine.Error{Code: te.Code, Message: "gave up reconnecting: " + te.Message, RetryAfter: te.RetryAfter})
		return false
	}
	var ra time.Duration
	if te != nil {
		ra = te.RetryAfter
	}
	d := s.backoff(s.attempts-1, ra)
	s.retryAt = time.Now().Add(d)
	s.log.Warn("connecting failed; will retry", "err", err, "in", d.Round(time.Millisecond), "attempt", s.attempts)
	return true
}

// backoff is exponential with jitter, capped, and at least retryAfter.
func (s *core) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := s.eng.opt.BackoffBase << min(attempt, 16)
	if d > s.eng.opt.BackoffMax || d <= 0 {
		d = s.eng.opt.BackoffMax
	}
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	return max(d, retryAfter)
}

// fail ends the session with err.
func (s *core) fail(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.errMu.Unlock()
	s.log.Error("session ended", "err", err)
	s.finished = true
}

func (s *core) countError(err error) {
	code := "other"
	var te *engine.Error
	if errors.As(err, &te) {
		code = te.Code
	}
	metrics.Errors.WithLabelValues("translate", code).Inc()
}

// shutdown runs when the run loop ends: it stops readers and dialers and
// waits for them, then marks the session done.
func (s *core) shutdown(conns ...*conn) {
	s.queue.close()
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

// idleFor reports whether the speaker has sent nothing for d.
func (s *core) idleFor(now time.Time, d time.Duration) bool {
	return now.Sub(s.queue.lastReceived()) >= d
}
