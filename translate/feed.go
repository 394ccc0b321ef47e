package translate

import (
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/internal/subject"
)

// feeds shares one NATS subscription to a room's mics among the sessions
// of that room on this node.
type feeds struct {
	nc *nats.Conn
	mu sync.RWMutex
	m  map[string]*feed // by room id
}

type feed struct {
	sub    *nats.Subscription
	booths *nats.Subscription // the room's booths (booth.go)
	inputs map[*input]struct{}
}

func newFeeds(nc *nats.Conn) *feeds { return &feeds{nc: nc, m: map[string]*feed{}} }

// add makes in hear the room's mics, subscribing if in is the room's first
// input.
func (fs *feeds) add(roomID string, in *input) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.m[roomID]
	if f == nil {
		f = &feed{inputs: map[*input]struct{}{}}
		sub, err := fs.nc.Subscribe(subject.Mics(roomID), func(m *nats.Msg) { fs.deliver(roomID, m) })
		if err != nil {
			return fmt.Errorf("subscribe to the room's mics: %w", err)
		}
		// Audio is bursty but small; let the client buffer generously so the
		// server never cuts us off as a slow consumer. Each input's mixer
		// bounds what it keeps.
		_ = sub.SetPendingLimits(4096, 64<<20)
		f.sub = sub
		if f.booths, err = fs.nc.Subscribe(subject.RoomBooths(roomID), func(m *nats.Msg) { fs.deliverBooth(roomID, m) }); err != nil {
			_ = sub.Unsubscribe()
			return fmt.Errorf("subscribe to the room's booths: %w", err)
		}
		fs.m[roomID] = f
	}
	f.inputs[in] = struct{}{}
	return nil
}

// remove stops in's audio, unsubscribing when the room has no input left.
func (fs *feeds) remove(roomID string, in *input) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.m[roomID]
	if f == nil {
		return
	}
	delete(f.inputs, in)
	if len(f.inputs) == 0 {
		_ = f.sub.Unsubscribe()
		_ = f.booths.Unsubscribe()
		delete(fs.m, roomID)
	}
}

// deliver runs on the subscription's goroutine: it hands a mic's frame to
// every input of the room without blocking on any of them.
func (fs *feeds) deliver(roomID string, m *nats.Msg) {
	if len(m.Data) == 0 || len(m.Data)%2 != 0 {
		metrics.FramesDropped.WithLabelValues("translate", "bad_frame").Inc()
		return
	}
	metrics.FramesIn.WithLabelValues("translate").Inc()
	f, _ := subject.FrameOf(m)
	now := time.Now()
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	if fd := fs.m[roomID]; fd != nil {
		for in := range fd.inputs {
			in.push(f, now)
		}
	}
}
