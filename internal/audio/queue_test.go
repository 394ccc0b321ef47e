package audio

import (
	"slices"
	"sync"
	"testing"
)

func TestQueueDropsOldestByCount(t *testing.T) {
	q := NewQueue[int](3, nil, 0)
	for i := 1; i <= 5; i++ {
		q.Push(i)
	}
	if got := q.PopAll(); !slices.Equal(got, []int{3, 4, 5}) {
		t.Fatalf("queue holds %v, want the newest three", got)
	}
	if q.Dropped() != 2 {
		t.Fatalf("dropped %d, want 2", q.Dropped())
	}
}

func TestQueueDropsOldestBySize(t *testing.T) {
	q := NewQueue[Frame](0, func(f Frame) int { return len(f.PCM) }, 10)
	for _, n := range []int{4, 4, 4} {
		if d, _ := q.Push(Frame{PCM: make([]byte, n)}); d > 1 {
			t.Fatalf("dropped %d for one push", d)
		}
	}
	if q.Len() != 2 || q.Size() != 8 {
		t.Fatalf("len %d size %d, want 2 and 8", q.Len(), q.Size())
	}
	// An item bigger than the bound is still kept: the newest always is.
	q.Push(Frame{PCM: make([]byte, 12)})
	if q.Len() != 1 || q.Size() != 12 {
		t.Fatalf("after a big push: len %d size %d, want 1 and 12", q.Len(), q.Size())
	}
}

func TestQueuePopOrderAndClose(t *testing.T) {
	q := NewQueue[int](10, nil, 0)
	q.Push(1)
	q.Push(2)
	<-q.Ready()
	if v, ok := q.Pop(); !ok || v != 1 {
		t.Fatalf("pop %d %v, want 1", v, ok)
	}
	q.Close()
	if _, ok := q.Push(3); ok {
		t.Fatal("push after close succeeded")
	}
	if v, ok := q.Pop(); !ok || v != 2 {
		t.Fatalf("pop after close %d %v, want the queued 2", v, ok)
	}
	if _, ok := q.Pop(); ok {
		t.Fatal("pop from an empty queue succeeded")
	}
}

func TestQueueOneProducerOneConsumer(t *testing.T) {
	const n = 10000
	q := NewQueue[int](n, nil, 0)
	var got []int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for len(got) < n {
			<-q.Ready()
			for {
				v, ok := q.Pop()
				if !ok {
					break
				}
				got = append(got, v)
			}
		}
	}()
	for i := range n {
		q.Push(i)
	}
	wg.Wait()
	for i, v := range got {
		if v != i {
			t.Fatalf("item %d is %d: out of order", i, v)
		}
	}
}
