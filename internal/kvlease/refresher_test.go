package kvlease_test

import (
	"context"
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
