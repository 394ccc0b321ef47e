package translate

import (
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/subject"
)

// A burst of translated speech is published at real-time pace, and a caption
// emitted after it comes after it.
func TestOutputPacedAtRealTime(t *testing.T) {
	h := newHarness(t)
	eng := newFakeEngine("fake")
	eng.echo = false
	h.liveTalk("es")
	h.start(eng, "tr1", nil)
	es := eng.waitOpen(t, "es")
	h.waitActive("talk", "es")
	out, caps := h.subscribe(subject.Out("talk", "es")), h.subscribe(subject.Caption("talk", "es"))

	const frames = 10
	frame := make([]byte, audio.Rate/5*2) // 200 ms
	es.sinkMu.Lock()
	for i := 0; i < frames; i++ {
		es.sink.Audio(frame, time.Now())
	}
	es.sink.Caption(1, "después del audio", true)
	es.sinkMu.Unlock()

	first := time.Now()
	next(t, out)
	if n, _, _ := caps.Pending(); n != 0 {
		t.Error("the caption went out before the audio it follows")
	}
	for i := 1; i < frames; i++ {
		next(t, out)
	}
	spread := time.Since(first)
	// 2 s of audio may run paceLead ahead of the playhead, never more.
	if min := frames*200*time.Millisecond - 200*time.Millisecond - paceLead - 50*time.Millisecond; spread < min {
		t.Errorf("2 s of audio published in %v: faster than real time (want ≥ %v)", spread, min)
	}
	if c := nextCaption(t, caps); c.Text != "después del audio" {
		t.Errorf("caption %+v", c)
	}
}

// After a lost lease the backlog is dropped, so it cannot play if the lease
// comes back; after a normal stop it is published at once.
func TestOutletBacklogAfterStop(t *testing.T) {
	o := &outlet{queue: audio.NewQueue[pacedMsg](4, nil, 0)}
	o.enqueue(pacedMsg{dur: time.Second})
	o.held = &pacedMsg{dur: time.Second}
	o.discard()
	if o.held != nil || o.queue.Len() != 0 {
		t.Fatalf("discard left held=%v queued=%d", o.held, o.queue.Len())
	}
	for i := 0; i < 6; i++ { // two more than fit: the oldest go
		o.enqueue(pacedMsg{dur: time.Duration(i)})
	}
	if m, _ := o.queue.Pop(); o.queue.Len() != 3 || m.dur != 2 {
		t.Fatal("a full queue should drop its oldest messages")
	}
}
