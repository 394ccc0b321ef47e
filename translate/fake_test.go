package translate

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/translate/engine"
)

// fakeEngine is an Engine whose sessions record what they are given and
// emit audio and captions when the test says so.
type fakeEngine struct {
	name    string
	targets []string
	echo    bool // sessions publish every appended frame back as translated audio

	mu       sync.Mutex
	sessions []*fakeSession
	opens    map[string]int     // Open calls by target language
	openErr  map[string][]error // errors returned by successive Opens, by target
	block    map[string]chan struct{}
	opened   chan *fakeSession // every session opened
	waited   map[string]int    // sessions of a language already returned by waitOpen
	moved    chan struct{}     // closed and replaced when a session opens
}

func newFakeEngine(name string) *fakeEngine {
	return &fakeEngine{
		name: name, echo: true,
		opens:   map[string]int{},
		openErr: map[string][]error{},
		block:   map[string]chan struct{}{},
		opened:  make(chan *fakeSession, 64),
		waited:  map[string]int{},
		moved:   make(chan struct{}),
	}
}

func (e *fakeEngine) Name() string { return e.name }

func (e *fakeEngine) Capabilities() engine.Capabilities {
	return engine.Capabilities{Targets: e.targets}
}

func (e *fakeEngine) Open(ctx context.Context, ch engine.Channel, sink engine.Sink) (engine.Session, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.opens[ch.Target]++
	if errs := e.openErr[ch.Target]; len(errs) > 0 {
		e.openErr[ch.Target] = errs[1:]
		if errs[0] != nil {
			return nil, errs[0]
		}
	}
	s := &fakeSession{
		ch: ch, sink: sink, echo: e.echo, block: e.block[ch.Target],
		appends: make(chan audio.Frame, 1024),
		done:    make(chan struct{}),
		closed:  make(chan struct{}),
	}
	e.sessions = append(e.sessions, s)
	select {
	case e.opened <- s:
	default:
	}
	close(e.moved)
	e.moved = make(chan struct{})
	return s, nil
}

func (e *fakeEngine) openCount(lang string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.opens[lang]
}

// live counts sessions for lang that were neither closed nor failed.
func (e *fakeEngine) live(lang string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, s := range e.sessions {
		if s.ch.Target == lang && !s.isClosed() && !s.isDone() {
			n++
		}
	}
	return n
}

// waitOpen returns the next session opened for lang that it did not
// return before.
func (e *fakeEngine) waitOpen(t *testing.T, lang string) *fakeSession {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		e.mu.Lock()
		n := 0
		for _, s := range e.sessions {
			if s.ch.Target != lang {
				continue
			}
			if n++; n > e.waited[lang] {
				e.waited[lang] = n
				e.mu.Unlock()
				return s
			}
		}
		moved := e.moved
		e.mu.Unlock()
		select {
		case <-moved:
		case <-deadline:
			t.Fatalf("no %s session opened by %s", lang, e.name)
			return nil
		}
	}
}

type fakeSession struct {
	ch    engine.Channel
	echo  bool
	block chan struct{} // when set, Append waits for it to close

	sinkMu sync.Mutex // Sink calls are one at a time
	sink   engine.Sink

	appends    chan audio.Frame // every appended frame, if the test keeps up
	appendN    atomic.Int64
	done       chan struct{}
	doneOnce   sync.Once
	err        atomic.Pointer[error] // why it ended by itself
	closed     chan struct{}
	closeOnce  sync.Once
	closeCalls atomic.Int32
}

var flushPCM = []byte{9, 9, 9, 9}

func (s *fakeSession) Append(pcm []byte, captured time.Time) error {
	if s.block != nil {
		<-s.block
	}
	if s.isClosed() {
		return errors.New("session closed")
	}
	s.appendN.Add(1)
	select {
	case s.appends <- audio.Frame{PCM: pcm, Captured: captured}:
	default:
	}
	if s.echo {
		s.sinkMu.Lock()
		s.sink.Audio(pcm, captured)
		s.sinkMu.Unlock()
	}
	return nil
}

// Close flushes: it emits a last audio frame and a final caption.
func (s *fakeSession) Close(ctx context.Context) error {
	s.closeCalls.Add(1)
	s.closeOnce.Do(func() {
		s.sinkMu.Lock()
		s.sink.Audio(flushPCM, time.Time{})
		s.sink.Caption(99, "flushed", true)
		s.sinkMu.Unlock()
		close(s.closed)
	})
	return nil
}

func (s *fakeSession) Done() <-chan struct{} { return s.done }

func (s *fakeSession) Err() error {
	if err := s.err.Load(); err != nil {
		return *err
	}
	return nil
}

func (s *fakeSession) Kind() string { return "fake" }

// fail ends the session by itself with err.
func (s *fakeSession) fail(err error) {
	s.err.Store(&err)
	s.doneOnce.Do(func() { close(s.done) })
}

func (s *fakeSession) caption(seg uint64, text string, final bool) {
	s.sinkMu.Lock()
	defer s.sinkMu.Unlock()
	s.sink.Caption(seg, text, final)
}

func (s *fakeSession) sourceCaption(seg uint64, text string, final bool) {
	s.sinkMu.Lock()
	defer s.sinkMu.Unlock()
	s.sink.SourceCaption(seg, text, final)
}

func (s *fakeSession) isClosed() bool { return isShut(s.closed) }

func (s *fakeSession) isDone() bool { return isShut(s.done) }

func (s *fakeSession) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s session not closed", s.ch.Target)
	}
}
