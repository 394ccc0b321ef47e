package fanout

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkBroadcast measures the hub's own cost of one tick of a
// channel's program (100 ms) for N WebSocket listeners: preparing the
// frame once, queueing it to every
// listener, and each writer popping it (the network write is not
// included; test/bench/fanout measures the whole path).
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("listeners=%d", n), func(b *testing.B) {
			s := &Server{o: Options{QueueFrames: DefaultQueueFrames, QueueAudio: DefaultQueueAudio, SlowAfter: DefaultSlowAfter}}
			c := &channel{h: &hub{s: s}, key: chanKey{"bench", "es"}}
			ls := make([]*listener, n)
			for i := range ls {
				ls[i] = newListener(s, "bench", "es", false, transportWS)
			}
			c.listeners.Store(&ls)
			tick := programFrame{full: make([]byte, 4800), captured: time.Now()}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c.deliver(tick)
				for _, l := range ls {
					<-l.wake
					if f, _, _ := l.next(); f == nil {
						b.Fatal("frame not queued")
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/listener")
		})
	}
}

// BenchmarkPushAudioFull is the cost of queueing to a listener whose queue
// is full (drop-oldest path).
func BenchmarkPushAudioFull(b *testing.B) {
	s := &Server{o: Options{QueueFrames: DefaultQueueFrames, QueueAudio: DefaultQueueAudio, SlowAfter: time.Hour}}
	l := newListener(s, "bench", "es", false, transportWS)
	f := &frame{data: make([]byte, 960), audio: true}
	now := time.Now()
	b.ReportAllocs()
	for range b.N {
		l.pushAudio(f, now)
	}
}
