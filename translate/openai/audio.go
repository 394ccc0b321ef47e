package openai

import (
	"encoding/binary"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/babelcast/babelcast/internal/metrics"
)

// frame is speaker audio as handed to Append.
type frame struct {
	pcm      []byte
	captured time.Time
}

// audioQueue sits between Append and the session's run loop. It holds at
// most max bytes; when full it drops the oldest audio, so Append never
// blocks and a slow network costs the oldest speech, not the newest.
type audioQueue struct {
	mu       sync.Mutex
	frames   []frame
	bytes    int
	max      int
	closed   bool
	dropped  int // bytes dropped since the last log line
	lastLog  time.Time
	notify   chan struct{}
	log      *slog.Logger
	received time.Time // when the last frame came in
}

func newAudioQueue(max int, log *slog.Logger) *audioQueue {
	return &audioQueue{max: max, notify: make(chan struct{}, 1), log: log}
}

// push queues a copy of pcm. It reports false once the queue is closed.
func (q *audioQueue) push(pcm []byte, captured time.Time) bool {
	if len(pcm) > q.max {
		cut := len(pcm) - q.max
		cut -= cut % 2
		pcm = pcm[cut:]
		captured = addBytes(captured, cut)
	}
	cp := make([]byte, len(pcm))
	copy(cp, pcm)
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.received = time.Now()
	q.frames = append(q.frames, frame{pcm: cp, captured: captured})
	q.bytes += len(cp)
	for q.bytes > q.max && len(q.frames) > 1 {
		q.bytes -= len(q.frames[0].pcm)
		q.dropped += len(q.frames[0].pcm)
		metrics.FramesDropped.WithLabelValues("translate", "queue_full").Inc()
		q.frames[0] = frame{}
		q.frames = q.frames[1:]
	}
	if q.dropped > 0 && time.Since(q.lastLog) > 5*time.Second {
		q.log.Warn("session cannot keep up: dropped the oldest speaker audio", "dropped_ms", q.dropped/bytesPerMS)
		q.dropped = 0
		q.lastLog = time.Now()
	}
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return true
}

// take removes and returns everything queued.
func (q *audioQueue) take() []frame {
	q.mu.Lock()
	defer q.mu.Unlock()
	f := q.frames
	q.frames = nil
	q.bytes = 0
	return f
}

// lastReceived is when Append last gave audio.
func (q *audioQueue) lastReceived() time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.received
}

func (q *audioQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// bytesDur is the duration of n bytes of 24 kHz PCM16.
func bytesDur(n int64) time.Duration { return time.Duration(n) * time.Millisecond / bytesPerMS }

// durBytes is the (even) number of bytes of d of 24 kHz PCM16.
func durBytes(d time.Duration) int { return int(d/time.Millisecond) * bytesPerMS }

func addBytes(t time.Time, n int) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Add(bytesDur(int64(n)))
}

// loud reports whether pcm holds speech-level sound rather than silence or
// room noise: RMS above about -42 dBFS.
func loud(pcm []byte) bool { return rms(pcm) > loudRMS }

const loudRMS = 260

func rms(pcm []byte) float64 {
	n := len(pcm) / 2
	if n == 0 {
		return 0
	}
	var sum float64
	for i := 0; i < n; i++ {
		v := float64(int16(binary.LittleEndian.Uint16(pcm[2*i:])))
		sum += v * v
	}
	return math.Sqrt(sum / float64(n))
}

// mark ties a position in a connection's input (model time, in bytes) to
// the capture time of the audio there.
type mark struct {
	pos      int64
	captured time.Time
}

// marks maps input positions to capture times, keeping a bounded window.
type marks struct {
	list []mark
	keep int64 // bytes of history to keep
}

func (m *marks) add(pos int64, captured time.Time) {
	if captured.IsZero() {
		return
	}
	m.list = append(m.list, mark{pos, captured})
	if len(m.list) > 64 && m.list[0].pos < pos-m.keep {
		i := 0
		for i < len(m.list)-1 && m.list[i+1].pos < pos-m.keep {
			i++
		}
		m.list = append(m.list[:0:0], m.list[i:]...)
	}
}

// at estimates the capture time of the audio at pos; zero when unknown.
func (m *marks) at(pos int64) time.Time {
	for i := len(m.list) - 1; i >= 0; i-- {
		if m.list[i].pos <= pos {
			return m.list[i].captured.Add(bytesDur(pos - m.list[i].pos))
		}
	}
	return time.Time{}
}

// splitAudio hands pcm to emit in pieces of at most 200 ms.
func splitAudio(pcm []byte, captured time.Time, emit func([]byte, time.Time)) {
	const piece = 200 * bytesPerMS
	pcm = pcm[:len(pcm)-len(pcm)%2]
	for len(pcm) > 0 {
		n := min(piece, len(pcm))
		emit(pcm[:n], captured)
		pcm = pcm[n:]
		captured = addBytes(captured, n)
	}
}
