package translate

import (
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/internal/subject"
)

// queueFrames is how many speaker frames a session may have waiting before
// the oldest is dropped: a few seconds of audio at usual frame sizes, enough
// to ride out a hiccup without letting a stuck session pile up memory.
const queueFrames = 128

// frameQueue is a session's inbox of speaker audio: a slow session falls
// behind by at most queueFrames and never blocks the room's other sessions.
type frameQueue = audio.Queue[audio.Frame]

func newFrameQueue() *frameQueue { return audio.NewQueue[audio.Frame](queueFrames, nil, 0) }

var sessionQueueDropped = metrics.FramesDropped.WithLabelValues("translate", "session_queue_full")

// feeds shares one NATS subscription to a room's speaker audio among the
// sessions of that room on this node.
type feeds struct {
	nc *nats.Conn
	mu sync.RWMutex
	m  map[string]*feed // by room id
}

type feed struct {
	sub    *nats.Subscription
	queues map[*frameQueue]struct{}
}

func newFeeds(nc *nats.Conn) *feeds { return &feeds{nc: nc, m: map[string]*feed{}} }

// add makes q receive the room's speaker audio, subscribing if q is the
// room's first queue.
func (fs *feeds) add(roomID string, q *frameQueue) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.m[roomID]
	if f == nil {
		f = &feed{queues: map[*frameQueue]struct{}{}}
		sub, err := fs.nc.Subscribe(subject.Source(roomID), func(m *nats.Msg) { fs.deliver(roomID, m) })
		if err != nil {
			return fmt.Errorf("subscribe to speaker audio: %w", err)
		}
		// Audio is bursty but small; let the client buffer generously so the
		// server never cuts us off as a slow consumer. Per-session queues
		// above handle the dropping.
		_ = sub.SetPendingLimits(4096, 64<<20)
		f.sub = sub
		fs.m[roomID] = f
	}
	f.queues[q] = struct{}{}
	return nil
}

// remove stops q's audio, unsubscribing when the room has no queue left.
func (fs *feeds) remove(roomID string, q *frameQueue) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.m[roomID]
	if f == nil {
		return
	}
	delete(f.queues, q)
	if len(f.queues) == 0 {
		_ = f.sub.Unsubscribe()
		delete(fs.m, roomID)
	}
}

// deliver runs on the subscription's goroutine: it fans a frame out to
// every queue of the room without blocking on any of them.
func (fs *feeds) deliver(roomID string, m *nats.Msg) {
	if len(m.Data) == 0 || len(m.Data)%2 != 0 {
		metrics.FramesDropped.WithLabelValues("translate", "bad_frame").Inc()
		return
	}
	metrics.FramesIn.WithLabelValues("translate").Inc()
	_, captured := subject.AudioMeta(m)
	f := audio.Frame{PCM: m.Data, Captured: captured}
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	if fd := fs.m[roomID]; fd != nil {
		for q := range fd.queues {
			if n, _ := q.Push(f); n > 0 {
				sessionQueueDropped.Add(float64(n))
			}
		}
	}
}
