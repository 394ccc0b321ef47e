package livestate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/room"
)

// Entry is one key of a bucket as a watch delivers it.
type Entry struct {
	Key      string // as stored; ParseKey reads a key of this bucket
	Revision uint64
	// Present is false when the key was deleted, purged or expired.
	Present bool
	// Expired is true when the key was removed for its age (the bucket's
	// TTL; babelcast purges no key otherwise): its writer stopped writing,
	// or could not write while the bucket had no leader.
	Expired bool
	Value   []byte
	Created time.Time // when this revision was written
}

// Update is what a watch delivers. After every start of the watch (the
// first and every restart) comes one Update with Reset set, holding every
// key that is present now: whoever follows the keys forgets what it knew
// and takes these. Then comes one Update per change.
type Update struct {
	Reset   bool
	Entries []Entry
}

// WatchOptions say what Watch follows.
type WatchOptions struct {
	// Keys are the keys or patterns ("*" for one token, ">" for the rest)
	// to follow; none means every key.
	Keys []string
	// UpdatesOnly skips the current values: the first Update is an empty
	// Reset, then changes from now on.
	UpdatesOnly bool
	// Log and What (a name for the log) report the watch's restarts.
	Log  *slog.Logger
	What string
}

// Watch follows keys of kv (the state bucket, or another bucket of live
// entries) until ctx ends, then closes the channel. NATS trouble restarts
// the watch under Retry's policy; each restart begins with a Reset.
func Watch(ctx context.Context, kv jetstream.KeyValue, o WatchOptions) <-chan Update {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	out := make(chan Update)
	go func() {
		defer close(out)
		Retry(ctx, o.Log, o.What, func(ctx context.Context, established func()) error {
			return follow(ctx, kv, o, out, established)
		})
	}()
	return out
}

// errWatchEnded: NATS closed the watch (connection closed, consumer gone).
var errWatchEnded = errors.New("watch ended")

func follow(ctx context.Context, kv jetstream.KeyValue, o WatchOptions, out chan<- Update, established func()) error {
	var opts []jetstream.WatchOpt
	if o.UpdatesOnly {
		opts = append(opts, jetstream.UpdatesOnly())
	}
	// WatchFiltered prefixes the keys in place: hand it a copy. ctx also
	// bounds the watch's subscription: nats.go drops it when ctx ends.
	w, err := kv.WatchFiltered(ctx, slices.Clone(o.Keys), opts...)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	send := func(u Update) bool {
		select {
		case out <- u:
			return true
		case <-ctx.Done():
			return false
		}
	}
	reset := Update{Reset: true}
	if !o.UpdatesOnly {
		if reset.Entries, err = current(ctx, w); err != nil {
			return err
		}
	}
	established()
	if !send(reset) {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errWatchEnded
			}
			if e != nil && !send(Update{Entries: []Entry{entryOf(e)}}) {
				return nil
			}
		}
	}
}

// current reads a watch's current values, up to the marker that ends them.
func current(ctx context.Context, w jetstream.KeyWatcher) ([]Entry, error) {
	var out []Entry
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errWatchEnded
			}
			if e == nil {
				return out, nil
			}
			if en := entryOf(e); en.Present {
				out = append(out, en)
			}
		}
	}
}

// LastReader is a bucket that reads the present entries under many keys
// at once without a consumer (a batched direct get, which any replica
// answers): the buckets of package bus. Reads then work while the bucket
// or the cluster elects a leader.
type LastReader interface {
	LastFor(ctx context.Context, keys []string) ([]jetstream.KeyValueEntry, error)
}

// read returns the entries of kv present now under keys, once: through
// LastFor where kv offers it, else (or when it refuses so many keys) with
// a watch.
func read(ctx context.Context, kv jetstream.KeyValue, keys []string) ([]Entry, error) {
	if lr, ok := kv.(LastReader); ok {
		es, err := lr.LastFor(ctx, keys)
		if err == nil {
			out := make([]Entry, len(es))
			for i, e := range es {
				out[i] = entryOf(e)
			}
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
	}
	w, err := kv.WatchFiltered(ctx, slices.Clone(keys), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read %v: %w", keys, err)
	}
	defer func() { _ = w.Stop() }()
	entries, err := current(ctx, w)
	if err != nil {
		return nil, fmt.Errorf("read %v: %w", keys, err)
	}
	return entries, nil
}

func entryOf(e jetstream.KeyValueEntry) Entry {
	return Entry{
		Key: e.Key(), Revision: e.Revision(), Value: e.Value(), Created: e.Created(),
		Present: e.Operation() == jetstream.KeyValuePut, Expired: e.Operation() == jetstream.KeyValuePurge,
	}
}

// The one retry policy of watches.
const (
	minRetry = 500 * time.Millisecond
	maxRetry = 10 * time.Second
)

// Retry runs watch until ctx ends, starting it again each time it returns:
// after minRetry, doubling up to maxRetry while it keeps failing. A watch
// that calls established (it got its watch going) makes the next failure
// start again from minRetry: a NATS hiccup an hour later is not punished
// for the trouble before it. Every role's watches of the shared buckets go
// through here.
func Retry(ctx context.Context, log *slog.Logger, what string, watch func(ctx context.Context, established func()) error) {
	wait := minRetry
	for ctx.Err() == nil {
		worked := false
		err := watch(ctx, func() { worked = true })
		if ctx.Err() != nil {
			return
		}
		if worked {
			wait = minRetry
		}
		log.Warn(what+" stopped; restarting", "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, maxRetry)
	}
}

// WatchRooms sends the rooms (room.Store.Watch: the current ones, then every
// change) until ctx ends, then closes the channel. It restarts the watch
// under Retry's policy; after a restart the current rooms come again, with
// the rooms deleted meanwhile as deletions.
func WatchRooms(ctx context.Context, rooms *room.Store, log *slog.Logger) <-chan room.Event {
	out := make(chan room.Event)
	go func() {
		defer close(out)
		Retry(ctx, log, "room watch", func(ctx context.Context, established func()) error {
			events, err := rooms.Watch(ctx)
			if err != nil {
				return err
			}
			established()
			for ev := range events {
				select {
				case out <- ev:
				case <-ctx.Done():
					return nil
				}
			}
			return errWatchEnded
		})
	}()
	return out
}
