package ingest

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Interpreters connecting at once take at most MaxInterpreters seats of a
// booth between them; a seat given back can be taken again, and booths do
// not share seats.
func TestBoothSeatsAreBounded(t *testing.T) {
	t.Parallel()
	var b boothSet
	var seated atomic.Int32
	var wg sync.WaitGroup
	for range 5 * MaxInterpreters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b.sit("conf", "fr") {
				seated.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := seated.Load(); n != MaxInterpreters {
		t.Fatalf("%d seated at once, want %d", n, MaxInterpreters)
	}
	if !b.sit("conf", "es") {
		t.Error("a full French booth took the Spanish booth's seats")
	}
	b.stand("conf", "fr")
	if !b.sit("conf", "fr") || b.sit("conf", "fr") {
		t.Error("a seat given back is taken again, and only one")
	}
}
