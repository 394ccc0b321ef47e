package kvlease_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/bus"
	"github.com/babelcast/babelcast/internal/kvlease"
)

func openState(t *testing.T) jetstream.KeyValue {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Options{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.State
}

// flaky is a bucket whose writes can be made to fail the way they do
// while JetStream elects a leader: the request times out. With applied
// set, the write happens all the same and only its answer is lost.
type flaky struct {
	jetstream.KeyValue
	failing atomic.Bool
	applied atomic.Bool
}

func (f *flaky) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	if !f.failing.Load() {
		return f.KeyValue.Update(ctx, key, value, rev)
	}
	if f.applied.Load() {
		if _, err := f.KeyValue.Update(ctx, key, value, rev); err != nil {
			return 0, err
		}
	}
	return 0, context.DeadlineExceeded
}

func newLease(kv jetstream.KeyValue, ttl, every time.Duration) *kvlease.Lease {
	return kvlease.New(kvlease.Options{KV: kv, Key: "lease.a", TTL: ttl, Every: every})
}

// claimed is a lease on lease.a, claimed with value.
func claimed(t *testing.T, kv jetstream.KeyValue, value string, ttl, every time.Duration) *kvlease.Lease {
	t.Helper()
	l := newLease(kv, ttl, every)
	if err := l.Claim(context.Background(), []byte(value)); err != nil {
		t.Fatal(err)
	}
	return l
}

func value(t *testing.T, kv jetstream.KeyValue) string {
	t.Helper()
	e, err := kv.Get(context.Background(), "lease.a")
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(e.Value())
}

func TestClaimIsExclusiveAndReleaseFreesTheKey(t *testing.T) {
	t.Parallel()
	kv := openState(t)
	ctx := context.Background()
	a, b := claimed(t, kv, "node-a", 4*time.Second, time.Second), newLease(kv, 4*time.Second, time.Second)
	var held *kvlease.HeldError
	if err := b.Claim(ctx, []byte("node-b")); !errors.As(err, &held) || string(held.Value) != "node-a" {
		t.Fatalf("second claim: %v, want held by node-a", err)
	}
	// A node's own leftover (an earlier run of it) is adopted.
	again := newLease(kv, 4*time.Second, time.Second)
	if err := again.Claim(ctx, []byte("node-a")); err != nil || again.Revision() <= a.Revision() {
		t.Fatalf("claim of our own leftover: %v, revision %d after %d", err, again.Revision(), a.Revision())
	}
	if err := again.Release(ctx); err != nil || value(t, kv) != "" {
		t.Fatalf("release: %v, key holds %q", err, value(t, kv))
	}
	if err := b.Claim(ctx, []byte("node-b")); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	// Releasing a lease someone else now holds leaves it alone.
	if err := a.Release(ctx); err != nil || value(t, kv) != "node-b" {
		t.Fatalf("stale release: %v, key holds %q", err, value(t, kv))
	}
}

// A renewal whose answer was lost wrote a revision the holder does not
// know: releasing must still delete the key, or it lingers for its TTL.
func TestReleaseAfterARenewalsAnswerWasLost(t *testing.T) {
	t.Parallel()
	kv := &flaky{KeyValue: openState(t)}
	ctx := context.Background()
	l := claimed(t, kv, "node-a", 4*time.Second, 100*time.Millisecond)
	kv.applied.Store(true)
	kv.failing.Store(true)
	if err := l.Set(ctx, []byte("node-a")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("renewal: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if v := value(t, kv); v != "" {
		t.Errorf("lease after release: %q", v)
	}
}

// Renewals that time out are retried while the TTL allows: a JetStream
// leader change does not cost the lease. A renewal that finds its own
// write, answered too late, goes on from it.
func TestKeepRidesOutTimeouts(t *testing.T) {
	t.Parallel()
	kv := &flaky{KeyValue: openState(t)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := claimed(t, kv, "node-a", 2*time.Second, 200*time.Millisecond)
	kept := make(chan error, 1)
	go func() { kept <- l.Keep(ctx) }()
	kv.applied.Store(true)
	kv.failing.Store(true)
	time.Sleep(time.Second) // five renewals' worth, all in doubt
	kv.failing.Store(false)
	rev := l.Revision()
	deadline := time.Now().Add(2 * time.Second)
	for l.Revision() == rev && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-kept:
		t.Fatalf("Keep gave up: %v", err)
	default:
	}
	if l.Revision() == rev {
		t.Fatal("no renewal after the trouble ended")
	}
	cancel()
	if err := <-kept; err != nil {
		t.Errorf("Keep after cancel: %v", err)
	}
}

// Renewals that keep failing end the lease before its TTL runs out: by
// then another may hold the key.
func TestKeepGivesUpBeforeTheTTL(t *testing.T) {
	t.Parallel()
	kv := &flaky{KeyValue: openState(t)}
	ctx := context.Background()
	const ttl, every = 1500 * time.Millisecond, 300 * time.Millisecond
	l := newLease(kv, ttl, every)
	claimed := time.Now()
	if err := l.Claim(ctx, []byte("node-a")); err != nil {
		t.Fatal(err)
	}
	kv.failing.Store(true)
	err := l.Keep(ctx)
	took := time.Since(claimed)
	if !errors.Is(err, kvlease.ErrExpired) {
		t.Fatalf("Keep: %v, want ErrExpired", err)
	}
	if took > ttl || took < ttl-2*every {
		t.Errorf("gave up %v after the last renewal; want between %v and the TTL %v", took, ttl-2*every, ttl)
	}
}

// A renewal that finds another owner's value ends the lease at once.
func TestKeepLosesToAnotherOwnerAtOnce(t *testing.T) {
	t.Parallel()
	kv := openState(t)
	ctx := context.Background()
	l := claimed(t, kv, "conn-1", 4*time.Second, 100*time.Millisecond)
	if _, err := kv.Put(ctx, "lease.a", []byte("conn-2")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Keep(ctx) }()
	select {
	case err := <-done:
		var held *kvlease.HeldError
		if !errors.As(err, &held) || string(held.Value) != "conn-2" {
			t.Errorf("Keep: %v, want held by conn-2", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Keep still holds a lease another took")
	}
	if l.Revision() != 0 {
		t.Error("a lost lease still has a revision")
	}
	// Take is a takeover: the newest writer wins.
	if err := l.Take(ctx, []byte("conn-3")); err != nil || value(t, kv) != "conn-3" {
		t.Fatalf("take: %v, key holds %q", err, value(t, kv))
	}
}

// A key deleted under its holder (expired, or freed by another node that
// found the holder gone) ends the lease.
func TestKeepLosesAGoneKey(t *testing.T) {
	t.Parallel()
	kv := openState(t)
	ctx := context.Background()
	l := claimed(t, kv, "node-a", 4*time.Second, 100*time.Millisecond)
	if err := kv.Delete(ctx, "lease.a"); err != nil {
		t.Fatal(err)
	}
	if err := l.Keep(ctx); !errors.Is(err, kvlease.ErrGone) {
		t.Fatalf("Keep: %v, want ErrGone", err)
	}
}
