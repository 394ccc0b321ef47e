package kvlease_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/kvlease"
)

func TestRefresherWritesRewritesAndClears(t *testing.T) {
	t.Parallel()
	kv := openState(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := kv.Watch(ctx, "count.>", jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	// await reads the bucket's changes until one to key of the kind wanted.
	await := func(key string, op jetstream.KeyValueOp) {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case e := <-w.Updates():
				if e.Key() == "count.c" {
					t.Fatal("a key set to nil before any write was written")
				}
				if e.Key() == key && e.Operation() == op {
					return
				}
			case <-timeout:
				t.Fatalf("no %v of %s", op, key)
			}
		}
	}
	r := kvlease.NewRefresher(kvlease.RefresherOptions{KV: kv, Every: 200 * time.Millisecond, Coalesce: 50 * time.Millisecond})
	stopped := make(chan struct{})
	runCtx, stop := context.WithCancel(ctx)
	go func() { defer close(stopped); r.Run(runCtx) }()

	r.Set("count.a", []byte("1"))
	r.Set("count.b", []byte("2"))
	r.Set("count.c", []byte("3"))
	r.Set("count.c", nil) // came and went
	await("count.a", jetstream.KeyValuePut)
	await("count.a", jetstream.KeyValuePut) // rewritten before it expires
	r.Set("count.b", nil)
	await("count.b", jetstream.KeyValueDelete)

	stop()
	<-stopped
	if err := r.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	await("count.a", jetstream.KeyValueDelete)
}

// stalling is a bucket whose writes can be made to get no answer, as while
// JetStream elects a leader: each waits out its deadline.
type stalling struct {
	jetstream.KeyValue
	stalled atomic.Bool
}

func (s *stalling) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if s.stalled.Load() {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return s.KeyValue.Put(ctx, key, value)
}

// While the bucket answers no writes, a pass does not wait out every key's
// timeout in turn: once the bucket answers again, every key is rewritten
// within about one write's timeout (2 s), not one per key.
func TestRefresherRecoversPromptlyFromAStall(t *testing.T) {
	t.Parallel()
	kv := &stalling{KeyValue: openState(t)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := kvlease.NewRefresher(kvlease.RefresherOptions{KV: kv, Every: 500 * time.Millisecond, Coalesce: 50 * time.Millisecond})
	go r.Run(ctx)
	const keys = 20
	kv.stalled.Store(true)
	for i := range keys {
		r.Set(fmt.Sprintf("count.%d", i), []byte("1"))
	}
	time.Sleep(3 * time.Second) // the election: passes meet a bucket that does not answer
	kv.stalled.Store(false)
	back := time.Now()
	deadline := back.Add(3500 * time.Millisecond)
	for {
		n := 0
		for i := range keys {
			if _, err := kv.Get(ctx, fmt.Sprintf("count.%d", i)); err == nil {
				n++
			}
		}
		if n == keys {
			t.Logf("every key written %v after the bucket answered again", time.Since(back).Round(10*time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d keys written 3.5 s after the bucket answered again", n, keys)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
