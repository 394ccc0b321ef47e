package fanout

import (
	"fmt"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/test/signal"
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

// BenchmarkOpusEncodeTick is a channel's Opus cost, whatever its number of
// listeners: encoding one variant of one 100 ms tick of speech-like audio
// (five 20 ms packets at 32 kbit/s). Divided by 100 ms, it is the share of
// a core one variant of one channel takes.
func BenchmarkOpusEncodeTick(b *testing.B) {
	c := benchOpusChannel(0)
	ticks := speechTicks()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		var t opusTick
		if len(c.opusPackets(&t, programFrame{full: ticks[i%len(ticks)]}, 1)) != 5 {
			b.Fatal("not 5 packets")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(programTick.Nanoseconds())*100, "%core/variant")
}

// BenchmarkBroadcastOpus is BenchmarkBroadcast for Opus WebSocket
// listeners: encoding the tick once, framing it once, queueing it to every
// listener and popping it.
func BenchmarkBroadcastOpus(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("listeners=%d", n), func(b *testing.B) {
			c := benchOpusChannel(n)
			ls := *c.listeners.Load()
			ticks := speechTicks()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				c.deliver(programFrame{full: ticks[i%len(ticks)], captured: time.Now()})
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

// benchOpusChannel is a channel with n Opus WebSocket listeners, outside
// any hub.
func benchOpusChannel(n int) *channel {
	s := &Server{o: Options{QueueFrames: DefaultQueueFrames, QueueAudio: DefaultQueueAudio, SlowAfter: DefaultSlowAfter}, log: quietLog()}
	c := &channel{h: &hub{s: s}, key: chanKey{"bench", "es"}, prog: newProgram("es", false)}
	c.silence = &frame{data: make([]byte, audio.DurationBytes(programTick)), audio: true}
	ls := make([]*listener, n)
	for i := range ls {
		ls[i] = newListener(s, "bench", "es", false, transportWS)
		ls[i].codec = codecOpus
	}
	c.listeners.Store(&ls)
	return c
}

// speechTicks is 2 s of the test signal in 100 ms ticks.
func speechTicks() [][]byte {
	pcm := audio.Bytes(signal.Make(2 * time.Second))
	var ticks [][]byte
	for i := 0; i < len(pcm); i += 4800 {
		ticks = append(ticks, pcm[i:i+4800])
	}
	return ticks
}
