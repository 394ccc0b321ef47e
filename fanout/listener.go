package fanout

import (
	"sync"
	"time"

	"github.com/babelcast/babelcast/internal/wire"
)

// Transports, as in the babelcast_listeners metric.
const (
	transportWS  = "websocket"
	transportWAV = "wav"
	transportOgg = "ogg"
)

// maxControl bounds a listener's queue of text messages (captions, state).
// They are few (a handful a second), so a listener with this many waiting
// has not read for far longer than SlowAfter: it is closed as too slow
// rather than losing text.
const maxControl = 256

// frame is one message for listeners, prepared once and shared by all of
// them: never modified after it is queued.
type frame struct {
	hdr      []byte // its WebSocket frame header
	data     []byte // the payload: PCM for audio, JSON for text
	audio    bool
	captured time.Time // capture time of audio, zero when unknown
	// pcmBytes is what the frame weighs in a listener's queue when its
	// data is compressed (Opus): the PCM it stands for, so the queue's
	// bound in audio time holds whatever the codec.
	pcmBytes int
}

// weight is what f counts for against a listener's queue bound.
func (f *frame) weight() int {
	if f.pcmBytes > 0 {
		return f.pcmBytes
	}
	return len(f.data)
}

// listener is one connected listener's queue. The hub pushes into it from
// NATS callbacks and must never block; the connection's writer pops.
//
// Policy: audio frames are bounded (frames and bytes); when full the oldest
// audio frame is dropped. Text messages are queued separately and written
// first, so captions and state are never lost to audio. A listener that
// keeps dropping for slowAfter, or lets maxControl text messages pile up, is
// closed with 4408.
type listener struct {
	room, lang, transport string
	floor                 bool
	// passthrough: the listener hears the original when the floor speaks
	// the channel's language; without it, only interpretations.
	passthrough bool
	unsaid      string // the room's source language when admitted
	passcode    string // as given at the handshake: checked again when the room changes
	key         string // likewise, a speaker key given in place of the passcode
	admittedAt  uint64 // revision of the room the handshake checked
	text        bool   // wants text messages (WebSocket)
	codec       int    // codecPCM, codecOpus or codecOgg
	// oggStarted: the Ogg listener has had its header pages (deliver's
	// goroutine only).
	oggStarted bool

	maxFrames, maxBytes int
	slowAfter           time.Duration

	wake chan struct{} // capacity 1: "something to do"

	mu        sync.Mutex
	audio     []*frame // ring buffer, grown on demand up to maxFrames
	head, n   int
	bytes     int
	control   []*frame
	dropStart time.Time // first drop of the current streak; zero when caught up
	dropped   uint64
	closing   bool
	code      int
	reason    string

	joined bool // in its channel's listener list; guarded by hub.mu

	// The last state message queued; guarded by channel.stateMu.
	state     wire.State
	stateSent bool
}

func newListener(s *Server, roomID, lang string, floor bool, transport string) *listener {
	return &listener{
		room: roomID, lang: lang, floor: floor, transport: transport, passthrough: true,
		text:      transport == transportWS,
		maxFrames: s.o.QueueFrames,
		maxBytes:  s.audioQueueBytes(),
		slowAfter: s.o.SlowAfter,
		wake:      make(chan struct{}, 1),
	}
}

func (l *listener) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// pushAudio queues an audio frame, dropping the oldest ones if the queue is
// full. It never blocks.
func (l *listener) pushAudio(f *frame, now time.Time) {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return
	}
	drops := 0
	for l.n > 0 && (l.n == l.maxFrames || l.bytes+f.weight() > l.maxBytes) {
		old := l.audio[l.head]
		l.audio[l.head] = nil
		l.head = (l.head + 1) % len(l.audio)
		l.n--
		l.bytes -= old.weight()
		drops++
	}
	if l.n == len(l.audio) { // room to grow, up to maxFrames
		grown := make([]*frame, min(max(2*len(l.audio), 4), l.maxFrames))
		for i := range l.n {
			grown[i] = l.audio[(l.head+i)%len(l.audio)]
		}
		l.audio, l.head = grown, 0
	}
	if drops > 0 {
		l.dropped += uint64(drops)
		if l.dropStart.IsZero() {
			l.dropStart = now
		} else if now.Sub(l.dropStart) >= l.slowAfter {
			l.closeLocked(wire.CloseTooSlow, "too slow")
		}
	}
	if !l.closing {
		l.audio[(l.head+l.n)%len(l.audio)] = f
		l.n++
		l.bytes += f.weight()
	}
	l.mu.Unlock()
	if drops > 0 {
		droppedSlow.Add(float64(drops))
	}
	l.signal()
}

// pushText queues a text message (caption, state, hello). It never blocks.
func (l *listener) pushText(f *frame) {
	if !l.text {
		return
	}
	l.mu.Lock()
	if !l.closing {
		if len(l.control) >= maxControl {
			l.closeLocked(wire.CloseTooSlow, "too slow")
		} else {
			l.control = append(l.control, f)
		}
	}
	l.mu.Unlock()
	l.signal()
}

// close asks the writer to close the connection with code and reason. The
// first reason wins; queued messages are discarded.
func (l *listener) close(code int, reason string) {
	l.mu.Lock()
	l.closeLocked(code, reason)
	l.mu.Unlock()
	l.signal()
}

func (l *listener) closeLocked(code int, reason string) {
	if l.closing {
		return
	}
	l.closing, l.code, l.reason = true, code, reason
	l.audio, l.head, l.n, l.bytes, l.control = nil, 0, 0, 0, nil
}

// next pops the next message to write: text first, then audio in order.
// When the listener is closing it returns the close code instead.
func (l *listener) next() (f *frame, code int, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return nil, l.code, l.reason
	}
	if len(l.control) > 0 {
		f = l.control[0]
		l.control[0] = nil
		l.control = l.control[1:]
		if len(l.control) == 0 {
			l.control = nil // let the backing array go
		}
		return f, 0, ""
	}
	if l.n == 0 {
		l.dropStart = time.Time{} // caught up: a drop streak ends
		return nil, 0, ""
	}
	f = l.audio[l.head]
	l.audio[l.head] = nil
	l.head = (l.head + 1) % len(l.audio)
	l.n--
	l.bytes -= f.weight()
	return f, 0, ""
}

// stats reports frames dropped so far, for logs.
func (l *listener) droppedFrames() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropped
}
