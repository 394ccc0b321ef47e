package fanout

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// count is a counter's value.
func count(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// A mic or an interpretation that bursts beyond its mixer's bound loses
// its oldest audio, and the loss is counted: never a silent drop.
func TestProgramCountsWhatItDrops(t *testing.T) {
	t.Parallel()
	now := time.Now()
	p := newProgram("es", false)
	mic, interp := count(t, droppedMicBehind), count(t, droppedInterpBehind)
	// 3 s of the channel's own mic at once: 1 s is the most it queues.
	for range 30 {
		p.pushMic(micFrame("main", "es", 1000, 100*time.Millisecond, true), now)
	}
	// 8 s of interpretation at once: 5 s is the most it queues.
	for range 80 {
		p.pushInterp(micFrame("", "en", 1000, 100*time.Millisecond, true), now)
	}
	// Other tests may drop too (the counters are the process's): at least ours.
	if d := count(t, droppedMicBehind) - mic; d < 15 {
		t.Errorf("mic burst: %.1f frames counted dropped, want about 20 (3 s into a 1 s bound)", d)
	}
	if d := count(t, droppedInterpBehind) - interp; d < 25 {
		t.Errorf("interpretation burst: %.1f frames counted dropped, want about 30 (8 s into a 5 s bound)", d)
	}
}
