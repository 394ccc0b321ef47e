package translate

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/metrics"
)

// Engines produce speech in bursts, often many times faster than real time
// (a Realtime response, a synthesized turn). Listeners are a broadcast: the
// outlet publishes a channel's audio at real-time pace, a little ahead of the
// playhead, so players need only a small jitter buffer and every listener
// node sees the same steady stream. Captions travel in the same queue, so a
// line appears with the speech before it, not seconds ahead of it.
const (
	// paceLead is how far ahead of real time audio may be published.
	paceLead = 300 * time.Millisecond
	// paceQueue bounds the queue: about 3 minutes of 200 ms frames. An
	// engine that runs further ahead loses its oldest output (counted).
	paceQueue = 1024
)

// Counters resolved once: they are touched for every frame.
var (
	paceDropped  = metrics.FramesDropped.WithLabelValues("translate", "pace_queue_full")
	publishErrs  = metrics.Errors.WithLabelValues("translate", "publish")
	framesOutput = metrics.FramesOut.WithLabelValues("translate")
)

// pacedMsg is one message waiting to be published: audio (dur > 0) or a caption.
type pacedMsg struct {
	msg *nats.Msg
	dur time.Duration
}

func newPaceQueue() *audio.Queue[pacedMsg] { return audio.NewQueue[pacedMsg](paceQueue, nil, 0) }

// enqueue adds m to the pacing queue, dropping the oldest message if full.
// Sinks call it from the session's goroutine; it never blocks.
func (o *outlet) enqueue(m pacedMsg) {
	if n, _ := o.queue.Push(m); n > 0 {
		paceDropped.Add(float64(n))
	}
}

// pace publishes queued messages at real-time pace until ctx ends. A message
// it holds when ctx ends is left in o.held for drain.
func (o *outlet) pace(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if o.held == nil {
			m, ok := o.queue.Pop()
			if !ok {
				select {
				case <-ctx.Done():
					return
				case <-o.queue.Ready():
				}
				continue
			}
			o.held = &m
		}
		if o.held.dur > 0 {
			now := time.Now()
			if o.playhead.Before(now) {
				o.playhead = now // a pause: start again from now
			}
			if wait := o.playhead.Sub(now) - paceLead; wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
			o.playhead = o.playhead.Add(o.held.dur)
		}
		o.publish(o.held)
		o.held = nil
	}
}

// drain publishes at once whatever pace left behind: the flushed tail of a
// session closed because its channel stops. Call it only after pace returned.
func (o *outlet) drain() {
	if o.held != nil {
		o.publish(o.held)
		o.held = nil
	}
	for _, m := range o.queue.PopAll() {
		o.publish(&m)
	}
}

// discard drops whatever pace left behind: after the lease was lost another
// node speaks for the channel, and this backlog must not play if the lease
// comes back. Call it only after pace returned.
func (o *outlet) discard() {
	o.held = nil
	o.queue.PopAll()
}

func (o *outlet) publish(m *pacedMsg) {
	if !o.open.Load() {
		return // the lease is gone: another node speaks for the channel now
	}
	if !o.nc.IsConnected() {
		// NATS would buffer the message and send it on reconnecting, late,
		// perhaps over the voice of a node that took the channel meanwhile.
		publishErrs.Inc()
		return
	}
	if err := o.nc.PublishMsg(m.msg); err != nil {
		publishErrs.Inc()
		return
	}
	if m.dur > 0 {
		framesOutput.Inc()
	}
}
