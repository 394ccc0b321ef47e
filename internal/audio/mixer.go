package audio

import (
	"sync"
	"time"
)

// A Mixer mixes the live mics of a room into one stream, the way a
// conference bridge does: each mic has its own first-in first-out buffer,
// filled as its frames arrive (from NATS, at the pace and jitter of the
// network), and a clock owned by the caller takes the same stretch of audio
// from every mic at once and sums it.
//
// A mic starts to play once Prefill of its audio is buffered, so arrival
// jitter does not tear its speech; when its buffer runs dry it pads with
// silence and waits for Prefill again. A mic that gets more than MaxDelay
// ahead of the clock (a burst, or a sender whose clock runs fast) loses its
// oldest audio down to Prefill, so the mix never drifts behind the room.
//
// Push may be called from any goroutine; Mix by the clock's owner.
type Mixer struct {
	prefill, maxDelay int // in samples

	mu      sync.Mutex
	mics    map[string]*micBuffer
	sum     []int32
	dropped int // samples dropped to stay within MaxDelay
}

// MixerOptions tune a Mixer; zero values take the defaults.
type MixerOptions struct {
	// Prefill is how much of a mic's audio is buffered before it plays.
	// Default 150 ms: speaker frames are ~100 ms, plus network jitter.
	Prefill time.Duration
	// MaxDelay bounds a mic's buffer; beyond it the oldest audio goes.
	// Default 1 s. A consumer that must not lose speech that arrives in
	// bursts (a translator's session) sets it higher.
	MaxDelay time.Duration
}

// micBuffer is one mic's queued audio: samples, and the frames they came
// from (for who spoke, in which language, captured when).
type micBuffer struct {
	samples []int16
	spans   []span // one per frame, covering samples in order
	playing bool
	last    time.Time // when its last frame came
}

// span is the part of a mic's buffer that one frame filled.
type span struct {
	n        int // samples left of the frame
	captured time.Time
	lang     string
	speaker  string
	speech   bool
}

// Mix is one stretch of mixed audio.
type Mix struct {
	// PCM is the mix: PCM16LE mono at Rate, the length asked for; silence
	// where no mic played.
	PCM []byte
	// Captured is when the oldest audio in the mix was captured; zero when
	// no mic played or none said.
	Captured time.Time
	// Mics are the mics that played in it, in no particular order.
	Mics []MicPart
}

// MicPart says what one mic put into a Mix.
type MicPart struct {
	Mic, Lang, Speaker string
	// Speech reports that some of the mic's audio in the mix was speech
	// (as the frames said; see Frame.Speech).
	Speech bool
	// Samples is how many of the mix's samples came from the mic.
	Samples int
}

// Live reports whether any mic played in m.
func (m Mix) Live() bool { return len(m.Mics) > 0 }

// Speech reports whether any mic spoke in m.
func (m Mix) Speech() bool {
	for _, p := range m.Mics {
		if p.Speech {
			return true
		}
	}
	return false
}

// NewMixer makes an empty mixer.
func NewMixer(o MixerOptions) *Mixer {
	if o.Prefill <= 0 {
		o.Prefill = 150 * time.Millisecond
	}
	if o.MaxDelay <= o.Prefill {
		o.MaxDelay = max(time.Second, 2*o.Prefill)
	}
	return &Mixer{
		prefill:  DurationBytes(o.Prefill) / 2,
		maxDelay: DurationBytes(o.MaxDelay) / 2,
		mics:     map[string]*micBuffer{},
	}
}

// Push queues a frame of mic f.Mic, which arrived at now. Frames of one mic
// must come in order.
func (m *Mixer) Push(f Frame, now time.Time) {
	s := Samples(f.PCM)
	if len(s) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.mics[f.Mic]
	if b == nil {
		b = &micBuffer{}
		m.mics[f.Mic] = b
	}
	b.samples = append(b.samples, s...)
	b.spans = append(b.spans, span{n: len(s), captured: f.Captured, lang: f.Lang, speaker: f.Speaker, speech: f.Speech})
	b.last = now
	if len(b.samples) > m.maxDelay {
		// Fell too far behind: keep Prefill, so the mic plays on at once.
		m.dropped += b.take(len(b.samples)-m.prefill, nil)
	}
}

// Dropped is how many samples mics have lost so far to stay within
// MaxDelay.
func (m *Mixer) Dropped() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dropped
}

// Forget drops a mic and whatever it still had queued (it hung up).
func (m *Mixer) Forget(mic string) {
	m.mu.Lock()
	delete(m.mics, mic)
	m.mu.Unlock()
}

// Mix takes n samples from every mic that is playing and returns their sum;
// now is the clock's time. A mic that has stopped sending (nothing for
// Prefill) plays out what it has left even if that is less than Prefill.
func (m *Mixer) Mix(n int, now time.Time) Mix {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cap(m.sum) < n {
		m.sum = make([]int32, n)
	}
	sum := m.sum[:n]
	clear(sum)
	var out Mix
	for id, b := range m.mics {
		if !b.playing {
			switch {
			case len(b.samples) == 0:
				delete(m.mics, id) // nothing pending: it comes back with its next frame
				continue
			case len(b.samples) < m.prefill && now.Sub(b.last) < m.prefillDuration():
				continue
			}
			b.playing = true
		}
		part := MicPart{Mic: id}
		k := b.take(n, func(sp span, from, to int) {
			for i := from; i < to; i++ {
				sum[i] += int32(b.samples[i])
			}
			part.Lang, part.Speaker = sp.lang, sp.speaker
			part.Speech = part.Speech || sp.speech
			if !sp.captured.IsZero() && (out.Captured.IsZero() || sp.captured.Before(out.Captured)) {
				out.Captured = sp.captured
			}
		})
		if k < n {
			b.playing = false // ran dry: wait for Prefill again
		}
		if k > 0 {
			part.Samples = k
			out.Mics = append(out.Mics, part)
		}
	}
	pcm := make([]byte, 2*n)
	for i, v := range sum {
		x := uint16(clamp16(v))
		pcm[2*i], pcm[2*i+1] = byte(x), byte(x>>8)
	}
	out.PCM = pcm
	return out
}

// take removes up to n samples from the front of b, calling each (when not
// nil) for every span they cover with the range of b.samples it covers,
// before the samples are removed. It returns how many it took.
func (b *micBuffer) take(n int, each func(sp span, from, to int)) int {
	n = min(n, len(b.samples))
	pos := 0
	for pos < n && len(b.spans) > 0 {
		sp := &b.spans[0]
		k := min(sp.n, n-pos)
		if each != nil {
			each(*sp, pos, pos+k)
		}
		pos += k
		sp.n -= k
		if sp.n == 0 {
			b.spans = b.spans[1:]
		} else {
			// The rest of this frame was captured later.
			sp.captured = addSamples(sp.captured, k)
		}
	}
	b.samples = b.samples[:copy(b.samples, b.samples[n:])]
	return n
}

func (m *Mixer) prefillDuration() time.Duration {
	return time.Duration(m.prefill) * time.Second / Rate
}

func addSamples(t time.Time, n int) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Add(time.Duration(n) * time.Second / Rate)
}

func clamp16(v int32) int16 {
	switch {
	case v > 32767:
		return 32767
	case v < -32768:
		return -32768
	}
	return int16(v)
}
