package kvwatch_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/bus"
	"github.com/babelcast/babelcast/internal/kvwatch"
)

// TestDecoded: the current values come, then every change in order, with
// the entries decode refuses left out and deletions passed to decode; the
// channel closes when ctx ends.
func TestDecoded(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	kv, err := b.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "kvwatch_test"})
	if err != nil {
		t.Fatal(err)
	}
	put := func(k, v string) {
		t.Helper()
		if _, err := kv.PutString(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	put("a", "1")
	w, err := kv.WatchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	got := kvwatch.Decoded(wctx, w, 0, func(e jetstream.KeyValueEntry) (int, bool) {
		if e.Operation() != jetstream.KeyValuePut {
			return -1, true
		}
		n, err := strconv.Atoi(string(e.Value()))
		return n, err == nil
	})
	next := func(want int) {
		t.Helper()
		select {
		case v, ok := <-got:
			if !ok || v != want {
				t.Fatalf("got %d (open %v), want %d", v, ok, want)
			}
		case <-ctx.Done():
			t.Fatalf("no value; want %d", want)
		}
	}
	next(1)
	put("b", "not a number")
	put("b", "2")
	next(2)
	if err := kv.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	next(-1)
	stop()
	for range got { // drains, then ends: the channel closes
	}
}
