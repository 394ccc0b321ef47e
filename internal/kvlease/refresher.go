package kvlease

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Refresher keeps keys that only this process writes (their names carry
// its node id) alive in a bucket whose entries expire: Set records a key's
// value, Run writes what changed and rewrites every key before it expires,
// Clear deletes them all. A write that fails is tried again at the next
// pass, and the failure is logged once however long it lasts.
type Refresher struct {
	o RefresherOptions

	mu      sync.Mutex
	want    map[string][]byte   // key → value to hold; nil: to delete
	written map[string]struct{} // keys holding a value we wrote
	dirty   map[string]struct{} // keys whose value changed since written
	kick    chan struct{}
	failing bool // the last pass had failures
}

// RefresherOptions configure a Refresher.
type RefresherOptions struct {
	KV jetstream.KeyValue
	// Every is how often every key is rewritten, well within the bucket's TTL.
	Every time.Duration
	// Coalesce spaces passes that write changes: a burst of changes (a
	// storm of listeners connecting) becomes one write per key.
	Coalesce time.Duration
	// Log and What (what the keys are, for the log) report failing writes.
	Log  *slog.Logger
	What string
}

// refreshTimeout bounds one write of a Refresher: a write takes
// milliseconds, one to a bucket electing its leader gets no answer.
const refreshTimeout = 2 * time.Second

// NewRefresher makes a Refresher; Run starts its writes.
func NewRefresher(o RefresherOptions) *Refresher {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Refresher{
		o:    o,
		want: map[string][]byte{}, written: map[string]struct{}{}, dirty: map[string]struct{}{},
		kick: make(chan struct{}, 1),
	}
}

// Set makes key hold value from the next pass on; a nil value deletes it.
func (r *Refresher) Set(key string, value []byte) {
	r.mu.Lock()
	r.want[key] = value
	r.dirty[key] = struct{}{}
	r.mu.Unlock()
	r.poke()
}

// Put sets key and writes it now. If the write fails, Run tries again.
func (r *Refresher) Put(ctx context.Context, key string, value []byte) error {
	r.mu.Lock()
	r.want[key] = value
	r.mu.Unlock()
	if err := r.write(ctx, key, value); err != nil {
		r.Set(key, value)
		return err
	}
	r.mu.Lock()
	r.written[key] = struct{}{}
	r.mu.Unlock()
	return nil
}

func (r *Refresher) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run writes changes and rewrites every key until ctx ends.
func (r *Refresher) Run(ctx context.Context) {
	refresh := time.NewTimer(r.o.Every)
	defer refresh.Stop()
	for {
		all := false
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-refresh.C:
			all = true
			refresh.Reset(r.o.Every)
		}
		r.pass(ctx, all)
		if all {
			continue
		}
		select { // what changes meanwhile goes in the next pass
		case <-ctx.Done():
			return
		case <-time.After(r.o.Coalesce):
		}
	}
}

// pass writes the keys that changed (every key when all is set).
func (r *Refresher) pass(ctx context.Context, all bool) {
	r.mu.Lock()
	todo := map[string][]byte{}
	for k := range r.dirty {
		if _, wrote := r.written[k]; r.want[k] == nil && !wrote {
			delete(r.want, k) // came and went between two passes
			continue
		}
		todo[k] = r.want[k]
	}
	if all {
		for k, v := range r.want {
			todo[k] = v
		}
	}
	clear(r.dirty)
	r.mu.Unlock()

	var failed []string
	var lastErr error
	timedOut := false
	for k, v := range todo {
		if timedOut {
			// The bucket did not answer in time (a leader being elected):
			// the rest waits for the next pass rather than each timing out
			// in turn, so the pass ends, and the next one follows shortly.
			failed = append(failed, k)
			continue
		}
		if err := r.write(ctx, k, v); err != nil {
			if ctx.Err() != nil {
				return
			}
			failed = append(failed, k)
			lastErr = err
			timedOut = errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
			continue
		}
		r.mu.Lock()
		if v == nil {
			delete(r.written, k)
			if r.want[k] == nil {
				delete(r.want, k)
			}
		} else {
			r.written[k] = struct{}{}
		}
		r.mu.Unlock()
	}

	r.mu.Lock()
	for _, k := range failed {
		r.dirty[k] = struct{}{}
	}
	wasFailing := r.failing
	r.failing = len(failed) > 0
	r.mu.Unlock()
	switch {
	case len(failed) > 0 && !wasFailing:
		r.o.Log.Warn(r.o.What+" write failed; will retry", "keys", len(failed), "err", lastErr)
	case len(failed) == 0 && wasFailing:
		r.o.Log.Info(r.o.What + " writes work again")
	}
	if len(failed) > 0 {
		r.poke()
	}
}

// write puts value at key, or deletes key when value is nil.
func (r *Refresher) write(ctx context.Context, key string, value []byte) error {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	if value == nil {
		err := r.o.KV.Delete(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		return err
	}
	_, err := r.o.KV.Put(ctx, key, value)
	return err
}

// Clear deletes every key written or to be written, and forgets them all.
// Call it once Run has returned.
func (r *Refresher) Clear(ctx context.Context) error {
	r.mu.Lock()
	keys := map[string]struct{}{}
	for k := range r.written {
		keys[k] = struct{}{}
	}
	for k, v := range r.want {
		if v != nil {
			keys[k] = struct{}{}
		}
	}
	r.want, r.written, r.dirty = map[string][]byte{}, map[string]struct{}{}, map[string]struct{}{}
	r.mu.Unlock()
	var first error
	for k := range keys {
		if err := r.write(ctx, k, nil); err != nil && first == nil {
			first = err
		}
	}
	return first
}
