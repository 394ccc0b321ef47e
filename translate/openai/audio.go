package openai

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
)

// Audio in and out of the Realtime API is PCM16 mono at audio.Rate, which
// is also babelcast's own rate: nothing is resampled here.
const (
	sampleRate = audio.Rate
	bytesPerMS = audio.BytesPerSecond / 1000
)

// addBytes is the capture time n bytes of audio after t (zero stays zero:
// unknown).
func addBytes(t time.Time, n int) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Add(audio.BytesDuration(n))
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
	pos      int
	captured time.Time
}

// marks maps input positions to capture times, keeping a bounded window.
type marks struct {
	list []mark
	keep int // bytes of history to keep
}

func (m *marks) add(pos int, captured time.Time) {
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
func (m *marks) at(pos int) time.Time {
	for i := len(m.list) - 1; i >= 0; i-- {
		if m.list[i].pos <= pos {
			return m.list[i].captured.Add(audio.BytesDuration(pos - m.list[i].pos))
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

// chunker cuts a stream of audio into pieces of size bytes, holding the
// remainder until more comes.
type chunker struct {
	size     int
	partial  []byte    // audio short of a whole piece
	captured time.Time // capture time of partial's first byte
}

// add cuts pcm onto what is held and hands each whole piece to emit.
func (k *chunker) add(pcm []byte, captured time.Time, emit func(piece []byte, captured time.Time)) {
	for len(pcm) > 0 {
		if len(k.partial) == 0 {
			k.captured = captured
		}
		n := min(k.size-len(k.partial), len(pcm))
		k.partial = append(k.partial, pcm[:n]...)
		pcm = pcm[n:]
		captured = addBytes(captured, n)
		if len(k.partial) == k.size {
			piece := k.partial
			k.partial = nil
			emit(piece, k.captured)
		}
	}
}

// pad completes what is held with silence and hands it to emit.
func (k *chunker) pad(emit func(piece []byte, captured time.Time)) {
	if len(k.partial) == 0 {
		return
	}
	piece := append(k.partial, make([]byte, k.size-len(k.partial))...)
	k.partial = nil
	emit(piece, k.captured)
}
