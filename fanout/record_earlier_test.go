package fanout

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/record"
)

// slowCues is a transcript store that answers only when told to, whatever
// the context says (as a JetStream consumer being recreated during a
// leader election may).
type slowCues struct {
	reads   atomic.Int32
	started chan string // each read's language
	release chan struct{}
}

func (s *slowCues) ReadCues(_ context.Context, room, lang string) ([]record.Cue, error) {
	s.reads.Add(1)
	s.started <- lang
	<-s.release
	return []record.Cue{{Text: "hello " + lang}}, nil
}

// A listener joining while the store is slow waits only as long as its
// context: the read goes on without it, and those who come meanwhile share
// it rather than start another.
func TestEarlierWaitsNoLongerThanTheListener(t *testing.T) {
	t.Parallel()
	store := &slowCues{started: make(chan string, 10), release: make(chan struct{})}
	ec := newEarlierCache(store, slog.New(slog.DiscardHandler))
	defer ec.close()
	k := chanKey{"keynote", "es"}

	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := ec.cues(ctx, k)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a join while the store is slow: %v, want its deadline", err)
		}
	}
	<-store.started // the one read under way (whenever its goroutine ran)
	if n := store.reads.Load(); n != 1 {
		t.Errorf("%d reads of the transcript for three joins, want one", n)
	}

	close(store.release)
	cues, err := ec.cues(context.Background(), k)
	if err != nil || len(cues) != 1 || cues[0].Text != "hello es" {
		t.Fatalf("once the store answers: %v, %v", cues, err)
	}
	if _, err := ec.cues(context.Background(), chanKey{"keynote", "fr"}); err != nil {
		t.Fatal(err)
	}
	if n := store.reads.Load(); n != 2 {
		t.Errorf("%d reads, want one per channel", n)
	}
}
