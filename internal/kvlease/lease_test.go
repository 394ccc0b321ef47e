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
// set, the write happens all the same and only its answer is lost. With
// unreadable set, reads time out too (no replica answers).
type flaky struct {
	jetstream.KeyValue
	failing    atomic.Bool
	applied    atomic.Bool
	unreadable atomic.Bool
}

func (f *flaky) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	if f.failing.Load() {
		return 0, context.DeadlineExceeded
	}
	return f.KeyValue.Create(ctx, key, value, opts...)
}

func (f *flaky) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if f.unreadable.Load() {
		return nil, context.DeadlineExceeded
	}
	return f.KeyValue.Get(ctx, key)
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
	await(func() bool { return l.Revision() != rev })
	stillKept(t, kept, "after the trouble")
	if l.Revision() == rev {
		t.Fatal("no renewal after the trouble ended")
	}
	cancel()
	if err := <-kept; err != nil {
		t.Errorf("Keep after cancel: %v", err)
	}
}

// keeping runs Keep in the background; the returned channel has its
// result. It is stopped when the test ends.
func keeping(t *testing.T, l *kvlease.Lease) <-chan error {
	ctx, cancel := context.WithCancel(context.Background())
	kept := make(chan error, 1)
	go func() { kept <- l.Keep(ctx) }()
	t.Cleanup(cancel)
	return kept
}

// stillKept fails the test if Keep has returned.
func stillKept(t *testing.T, kept <-chan error, when string) {
	t.Helper()
	select {
	case err := <-kept:
		t.Fatalf("%s: Keep gave up: %v", when, err)
	default:
	}
}

// outageTTL is the TTL of a lease in an outage.
const outageTTL = 1500 * time.Millisecond

// outage is a lease on lease.a that node-a keeps (TTL outageTTL, renewed
// every 300 ms), and the bucket under it, whose writes now fail.
func outage(t *testing.T) (*flaky, *kvlease.Lease, <-chan error) {
	t.Helper()
	kv := &flaky{KeyValue: openState(t)}
	l := claimed(t, kv, "node-a", outageTTL, 300*time.Millisecond)
	kept := keeping(t, l)
	kv.failing.Store(true)
	return kv, l, kept
}

// await polls cond until it holds or two seconds have passed; the caller
// checks what it waited for.
func await(cond func() bool) {
	deadline := time.Now().Add(2 * time.Second)
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// lostTo fails the test unless Keep, whose result kept has, returns
// within two seconds that owner holds the key.
func lostTo(t *testing.T, kept <-chan error, owner string) {
	t.Helper()
	select {
	case err := <-kept:
		var held *kvlease.HeldError
		if !errors.As(err, &held) || string(held.Value) != owner {
			t.Fatalf("Keep: %v, want held by %s", err, owner)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Keep still holds a lease another took")
	}
}

// A bucket with no leader takes no writes, however long the election
// takes; nobody else can take the key meanwhile. The holder keeps its
// lease past the TTL, while reads show the key still ours, or while
// nothing answers at all; and renews again once the bucket does.
func TestKeepRidesOutAnOutageLongerThanTheTTL(t *testing.T) {
	t.Parallel()
	kv, l, kept := outage(t)
	time.Sleep(2 * outageTTL) // writes fail, reads say ours
	stillKept(t, kept, "writes failing, the key readable")
	kv.unreadable.Store(true)
	time.Sleep(outageTTL) // nothing answers
	stillKept(t, kept, "nothing answering")
	rev := l.Revision()
	kv.failing.Store(false)
	kv.unreadable.Store(false)
	await(func() bool { return l.Revision() != rev })
	stillKept(t, kept, "after the outage")
	if l.Revision() == rev || value(t, kv) != "node-a" {
		t.Fatalf("no renewal after the outage (key holds %q)", value(t, kv))
	}
}

// The key expired while the bucket took no writes (the election outlasted
// the TTL): the holder creates it again at once, rather than leave it to
// whoever waited for it, and its channel never stops.
func TestKeepCreatesAKeyThatExpiredDuringAnOutage(t *testing.T) {
	t.Parallel()
	kv, l, kept := outage(t)
	// The bucket lost the key meanwhile; the next renewal's read finds none.
	if err := kv.KeyValue.Delete(context.Background(), "lease.a"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(outageTTL)
	stillKept(t, kept, "key gone, writes failing")
	rev := l.Revision()
	kv.failing.Store(false)
	await(func() bool { return value(t, kv) == "node-a" })
	stillKept(t, kept, "after the outage")
	if value(t, kv) != "node-a" || l.Revision() == rev {
		t.Fatalf("the key was not created again: holds %q", value(t, kv))
	}
}

// Past the TTL, with renewals failing, a read that finds another owner's
// value ends the lease at once.
func TestKeepPastTheTTLLosesToAnotherOwner(t *testing.T) {
	t.Parallel()
	kv, _, kept := outage(t)
	time.Sleep(outageTTL)
	stillKept(t, kept, "writes failing")
	if _, err := kv.KeyValue.Put(context.Background(), "lease.a", []byte("node-b")); err != nil {
		t.Fatal(err)
	}
	lostTo(t, kept, "node-b")
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
	lostTo(t, keeping(t, l), "conn-2")
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
