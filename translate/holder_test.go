package translate

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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

// A lease that expired, rather than being released or freed, may have
// expired while the bucket elected a leader and took no renewals: its
// holder, still running, takes it again at once (kvlease), and a waiting
// node leaves it that moment instead of racing it, so the channel goes on
// without a break. A lease whose holder does not come back is taken all
// the same, a moment later.
func TestExpiredLeaseIsLeftToItsHolderForAMoment(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.liveTalk("es")
	ctx := context.Background()
	// tr1 is alive on NATS (it answers probes) and holds es, but writes
	// nothing more: as a holder whose renewals cannot get through.
	alive, err := h.bus.Conn.Subscribe(subject.TranslatorAlive("tr1"), func(m *nats.Msg) { _ = m.Respond(nil) })
	if err != nil {
		t.Fatal(err)
	}
	defer alive.Unsubscribe()
	key := subject.LeaseKey("talk", "es")
	if _, err := h.bus.Leases.Create(ctx, key, []byte("tr1")); err != nil {
		t.Fatal(err)
	}
	w, err := h.bus.Leases.Watch(ctx, key, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expired := func() {
		t.Helper()
		for {
			select {
			case e := <-w.Updates():
				if e != nil && e.Operation() == jetstream.KeyValuePurge {
					return
				}
			case <-time.After(2 * subject.LeaseTTL):
				t.Fatal("the lease never expired")
			}
		}
	}
	eng := newFakeEngine("fake")
	h.start(eng, "tr2", nil)

	expired()
	// The holder's next renewal finds the key gone and creates it again.
	time.Sleep(300 * time.Millisecond)
	if _, err := h.bus.Leases.Create(ctx, key, []byte("tr1")); err != nil {
		t.Fatalf("the holder could not take its lease again: %v (tr2 raced it)", err)
	}
	absentFor(t, 2*time.Second, "tr2 running es", func() bool { return eng.openCount("es") > 0 })

	// This time the holder does not come back: tr2 takes the channel.
	expired()
	h.waitState("talk", "es", "active on tr2", func(st *livestate.Channel) bool {
		return st != nil && st.State == livestate.StateActive && st.Node == "tr2"
	})
}
