package fanout

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/metrics"
)

// What a program's mixers drop to stay within their MaxDelay: a mic or
// an interpretation that sends faster than real time (a client that
// bursts, a stall caught up) loses its oldest audio, counted here.
var (
	droppedMicBehind    = metrics.FramesDropped.WithLabelValues("fanout", "mic_behind")
	droppedInterpBehind = metrics.FramesDropped.WithLabelValues("fanout", "interpretation_behind")
)

// frameSamples is a frame of the count: 100 ms of audio, as ingest sends.
var frameSamples = audio.DurationBytes(100*time.Millisecond) / 2

// pushCounted pushes f into m, counting on c what m dropped for it.
func pushCounted(m *audio.Mixer, f audio.Frame, now time.Time, c prometheus.Counter) {
	before := m.Dropped()
	m.Push(f, now)
	if d := m.Dropped() - before; d > 0 {
		c.Add(float64(d) / float64(frameSamples))
	}
}
