package audio

import "sync"

// Queue is a bounded first-in first-out queue between a producer that must
// never block (a NATS callback, a session's Append) and one consumer.
//
// Policy: it holds at most maxItems items and, when size is given, at most
// maxSize of their summed sizes; a Push that would go over drops the oldest
// items, counting them, and always keeps the newest. Audio that falls this
// far behind is worth less than what is being said now.
type Queue[T any] struct {
	maxItems, maxSize int
	size              func(T) int

	mu      sync.Mutex
	items   []T // items[head:] are queued
	head    int
	total   int // summed size of the queued items
	dropped uint64
	closed  bool
	ready   chan struct{}
}

// NewQueue makes a queue of at most maxItems items. size, when not nil,
// measures an item (bytes of audio, say) and maxSize bounds their sum;
// zero maxItems or maxSize leaves that bound out.
func NewQueue[T any](maxItems int, size func(T) int, maxSize int) *Queue[T] {
	if size == nil {
		maxSize = 0
	}
	return &Queue[T]{maxItems: maxItems, maxSize: maxSize, size: size, ready: make(chan struct{}, 1)}
}

// Push adds v at the back, dropping the oldest items to make room. It
// never blocks; it returns how many items it dropped, and false (adding
// nothing) once the queue is closed.
func (q *Queue[T]) Push(v T) (dropped int, ok bool) {
	n := q.measure(v)
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, false
	}
	for q.len() > 0 && q.over(1, n) {
		var zero T
		q.total -= q.measure(q.items[q.head])
		q.items[q.head] = zero
		q.head++
		dropped++
	}
	if q.head > 0 && q.head >= len(q.items)/2 {
		// Slide the live items down so the backing array does not grow
		// without bound while the consumer keeps up.
		m := copy(q.items, q.items[q.head:])
		clear(q.items[m:])
		q.items, q.head = q.items[:m], 0
	}
	q.items = append(q.items, v)
	q.total += n
	q.dropped += uint64(dropped)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return dropped, true
}

func (q *Queue[T]) measure(v T) int {
	if q.size == nil {
		return 0
	}
	return q.size(v)
}

func (q *Queue[T]) len() int { return len(q.items) - q.head }

// over reports whether adding k items of size n would break a bound.
func (q *Queue[T]) over(k, n int) bool {
	return (q.maxItems > 0 && q.len()+k > q.maxItems) || (q.maxSize > 0 && q.total+n > q.maxSize)
}

// Pop removes and returns the oldest item, if any.
func (q *Queue[T]) Pop() (v T, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.len() == 0 {
		return v, false
	}
	v = q.items[q.head]
	var zero T
	q.items[q.head] = zero
	q.head++
	q.total -= q.measure(v)
	if q.len() == 0 {
		q.items, q.head = q.items[:0], 0
	}
	return v, true
}

// PopAll removes and returns every queued item, oldest first.
func (q *Queue[T]) PopAll() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.len() == 0 {
		return nil
	}
	out := make([]T, q.len())
	copy(out, q.items[q.head:])
	clear(q.items)
	q.items, q.head, q.total = q.items[:0], 0, 0
	return out
}

// Ready receives a value after a Push: the consumer waits on it, then pops
// until the queue is empty. One signal may stand for several pushes.
func (q *Queue[T]) Ready() <-chan struct{} { return q.ready }

// Len is how many items are queued.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.len()
}

// Size is the summed size of the queued items (0 without a size function).
func (q *Queue[T]) Size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.total
}

// Dropped is how many items Push has dropped so far.
func (q *Queue[T]) Dropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// Close makes later Pushes fail; what is queued can still be popped.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}
