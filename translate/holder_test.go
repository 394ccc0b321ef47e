package translate

import (
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/subject"
)

// A node waiting for a channel frees the lease of a holder that is gone
// from NATS (its alive probe has no responders) instead of waiting out the
// lease's TTL: the takeover comes well within the TTL. A holder that
// answers keeps its channel.
func TestGoneHolderLosesItsLeaseBeforeTheTTL(t *testing.T) {
	h := newHarness(t)
	h.liveTalk("es")
	engines := map[string]*fakeEngine{"tr1": newFakeEngine("fake"), "tr2": newFakeEngine("fake")}
	workers := map[string]*worker{
		"tr1": h.start(engines["tr1"], "tr1", nil),
		"tr2": h.start(engines["tr2"], "tr2", nil),
	}
	holder := h.waitActive("talk", "es").Node
	other := map[string]string{"tr1": "tr2", "tr2": "tr1"}[holder]

	// Alive: the other node probes it and leaves it be.
	absentFor(t, 2*time.Second, "the live holder robbed", func() bool { return engines[other].openCount("es") > 0 })

	killed := time.Now()
	workers[holder].die() // no lease released: only the probe can tell
	h.waitState("talk", "es", "active on "+other, func(st *livestate.Channel) bool {
		return st != nil && st.State == livestate.StateActive && st.Node == other
	})
	took := time.Since(killed)
	t.Logf("takeover %v after the holder died (lease TTL %v)", took.Round(time.Millisecond), subject.LeaseTTL)
	if took > subject.LeaseTTL/2 {
		t.Errorf("takeover took %v: the gone holder's lease was waited out", took)
	}
	if n := engines[other].openCount("es"); n != 1 {
		t.Errorf("%s opened es %d times", other, n)
	}
}
