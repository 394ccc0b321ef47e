package livestate

import (
	"testing"
	"time"
)

// TestLongestFirst: the longest connected first, and connections that
// came at the same instant by id, whatever order they come in.
func TestLongestFirst(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	ms := []MicStatus{
		{ID: "c", Mic: Mic{Since: t0.Add(time.Second)}},
		{ID: "b", Mic: Mic{Since: t0.In(time.FixedZone("CET", 3600))}}, // the same instant as a's
		{ID: "z", Mic: Mic{Since: t0.Add(-time.Second)}},
		{ID: "a", Mic: Mic{Since: t0}},
	}
	longestFirst(ms, func(m MicStatus) (time.Time, string) { return m.Since, m.ID })
	got := ""
	for _, m := range ms {
		got += m.ID
	}
	if got != "zabc" {
		t.Errorf("order %q, want zabc", got)
	}
}
