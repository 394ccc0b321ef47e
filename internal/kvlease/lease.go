// Package kvlease keeps keys alive in JetStream KV buckets whose entries
// expire (the live-state and lease buckets).
//
// A Lease owns one key by its revision: it creates the key if absent (or
// takes it over), renews it with the revision it last wrote, and releases it
// only if it is still its own. A Refresher keeps keys that only this
// process writes (presence counts, a node's engine entry) alive by
// rewriting them before they expire.
//
// One failure policy for every owner:
//   - A write that times out, or meets a JetStream with no leader, may or
//     may not have happened: it is retried, and the value it carried counts
//     as ours until known.
//   - Within the TTL of the last confirmed write, nobody else can own the
//     key: the retries go on. Past it, each failed retry reads the key
//     (any replica answers a read, leader or not): still our value, the
//     lease goes on; another value, it is lost at once; no key (it expired),
//     the holder creates it again, ahead of anyone else. Only while neither
//     a write nor a read gets through is the lease kept on trust: then
//     nobody can write the key, so nobody can take it.
//   - A write refused because the revision moved is settled by reading the
//     key: our own value (a renewal whose answer was lost) is adopted and
//     the lease goes on; another value means another owner, and the lease
//     is lost at once; no key means it expired or was freed, and the lease
//     is lost too.
//   - A closed NATS connection never comes back: the lease is lost.
//
// So a holder rides out a JetStream leader change however long the
// election takes (its channel, its speaker go on), and two owners never
// both believe they hold a key while both can reach the bucket. The one
// case left is a holder cut off from the cluster while the rest of it goes
// on: it keeps its key on trust until it reaches the bucket again, while
// what it publishes reaches only the servers it can still reach.
package kvlease

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Ways a lease ends or is refused. A *HeldError matches ErrHeld.
var (
	ErrHeld    = errors.New("kvlease: held by another owner") // the key holds another's value
	ErrGone    = errors.New("kvlease: the key is gone")       // deleted or expired while held
	ErrNotHeld = errors.New("kvlease: not held")              // never taken, or released, or lost
)

// HeldError says who holds the key instead of us.
type HeldError struct {
	Value    []byte
	Revision uint64
}

func (e *HeldError) Error() string { return fmt.Sprintf("%v (%q)", ErrHeld, e.Value) }

func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Options configure a Lease.
type Options struct {
	KV  jetstream.KeyValue
	Key string
	// TTL is how long the key outlives its last write: the bucket's TTL.
	TTL time.Duration
	// Every is how often Keep renews, well within TTL. It is also the
	// margin the holder keeps: from Every before the TTL of the last
	// renewal that worked runs out, a failing renewal reads the key to
	// know whether it is still ours.
	Every time.Duration
	// Timeout bounds one request to the bucket; zero means Every.
	Timeout time.Duration
	// Log reports renewals that fail and recover; nil logs nothing.
	Log *slog.Logger
}

// retryPause separates the attempts of a renewal in trouble.
const retryPause = 200 * time.Millisecond

// Lease owns one key by its revision. Its methods may be called from
// several goroutines; writes are made one at a time.
type Lease struct {
	o Options

	mu  sync.Mutex
	rev uint64 // revision of our last confirmed write; 0 when not held
	// value is what we hold or last tried to write; prev what a write in
	// doubt may not have replaced. Either in the key means the key is ours.
	value, prev []byte
	confirmed   time.Time // when the write behind rev was sent: the key lives TTL from then, at least
	lost        error     // why the lease ended, if it did
	onTrust     bool      // past the TTL, kept with neither write nor read getting through
}

// New makes a lease on o.Key; nothing is written until Claim or Take.
func New(o Options) *Lease {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = o.Every
	}
	return &Lease{o: o}
}

// Revision is the revision of our last confirmed write, 0 while not held.
func (l *Lease) Revision() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rev
}

// Claim creates the key with value if it is absent, or adopts it if it
// holds our own value (left by an earlier run, or by a renewal whose answer
// was lost). A key holding another value gives a *HeldError.
func (l *Lease) Claim(ctx context.Context, value []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.start(value)
	for attempt := 0; attempt < 2; attempt++ {
		sent := time.Now()
		rev, err := l.call(ctx, func(ctx context.Context) (uint64, error) { return l.o.KV.Create(ctx, l.o.Key, value) })
		if err == nil {
			l.held(rev, sent)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
		e, err := l.get(ctx)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			continue // deleted meanwhile: create again
		case err != nil:
			return err
		case !l.ours(e.Value()):
			return &HeldError{Value: e.Value(), Revision: e.Revision()}
		}
		sent = time.Now()
		rev, err = l.call(ctx, func(ctx context.Context) (uint64, error) {
			return l.o.KV.Update(ctx, l.o.Key, value, e.Revision())
		})
		if err == nil {
			l.held(rev, sent)
			return nil
		}
		if !isMismatch(err) {
			return err
		}
	}
	return fmt.Errorf("kvlease: %s keeps changing", l.o.Key)
}

// Take writes value whatever the key holds: a takeover (the newest speaker
// connection wins). The previous holder finds out when it next renews.
func (l *Lease) Take(ctx context.Context, value []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.start(value)
	sent := time.Now()
	rev, err := l.call(ctx, func(ctx context.Context) (uint64, error) { return l.o.KV.Put(ctx, l.o.Key, value) })
	if err != nil {
		return err
	}
	l.held(rev, sent)
	return nil
}

// Set writes a new value now, under the same rules as a renewal.
func (l *Lease) Set(ctx context.Context, value []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.renewLocked(ctx, value)
}

// Keep renews the lease every Every until ctx ends (it returns nil) or the
// lease is lost: a *HeldError, ErrGone, or the connection's closing. A
// renewal that fails otherwise is retried every retryPause, under the
// package's failure policy.
func (l *Lease) Keep(ctx context.Context) error {
	wait := l.o.Every
	failing := false
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		l.mu.Lock()
		err := l.renewLocked(ctx, l.value)
		l.mu.Unlock()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			if failing {
				l.o.Log.Info("lease renewals work again", "key", l.o.Key)
			}
			failing, wait = false, l.o.Every
		case isFinal(err):
			return err
		default:
			if !failing {
				l.o.Log.Warn("lease renewal failed; retrying", "key", l.o.Key, "err", err)
			}
			failing, wait = true, retryPause
		}
	}
}

// Release deletes the key if it is still ours, so another may take it at
// once. It tries until ctx ends; a key that is not ours is left alone.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	rev := l.rev
	l.rev, l.lost = 0, ErrNotHeld
	if l.value == nil {
		return nil // never claimed
	}
	for {
		var err error
		if rev != 0 {
			err = l.del(ctx, rev)
			if err == nil {
				return nil
			}
			rev = 0
		}
		if err == nil || isMismatch(err) {
			// Not the revision we knew: perhaps a renewal whose answer was
			// lost wrote a newer one. Delete it if it still says ours.
			var e jetstream.KeyValueEntry
			e, err = l.get(ctx)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
				return nil
			case err == nil && !l.ours(e.Value()):
				return nil
			case err == nil:
				rev = e.Revision()
				continue
			}
		}
		if isFinal(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(retryPause):
		}
	}
}

// renewLocked writes value with our revision. When the revision moved it
// reads the key: ours, it adopts the revision and writes again; otherwise
// the lease is lost. A write that gets no answer past the deadline reads
// the key (settle).
func (l *Lease) renewLocked(ctx context.Context, value []byte) error {
	if l.lost != nil {
		return l.lost
	}
	if l.rev == 0 {
		return ErrNotHeld
	}
	if !bytes.Equal(value, l.value) {
		l.prev, l.value = l.value, value
	}
	for attempt := 0; attempt < 2; attempt++ {
		sent := time.Now()
		rev, err := l.call(ctx, func(ctx context.Context) (uint64, error) { return l.o.KV.Update(ctx, l.o.Key, value, l.rev) })
		if err == nil {
			l.held(rev, sent)
			return nil
		}
		if !isMismatch(err) {
			if errors.Is(err, nats.ErrConnectionClosed) {
				return l.lose(err)
			}
			if ctx.Err() == nil && time.Now().After(l.deadline()) {
				return l.settle(ctx, value, err)
			}
			return err
		}
		e, err := l.get(ctx)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) && time.Now().After(l.deadline()):
			// Expired while the bucket could not take our renewals.
			return l.recreate(ctx, value, err)
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return l.lose(ErrGone) // deleted by someone, within its TTL
		case err != nil:
			return err
		case !l.ours(e.Value()):
			return l.lose(&HeldError{Value: e.Value(), Revision: e.Revision()})
		}
		l.rev = e.Revision() // our own write, answered too late: go on from it
	}
	return fmt.Errorf("kvlease: %s keeps changing", l.o.Key)
}

// settle decides, past the TTL of our last confirmed write, on a renewal
// that got no answer (werr): it reads the key. Ours, the lease goes on
// (nobody took it, and nobody can while the bucket takes no writes);
// another's, it is lost; none, we create it again. When the read gets no
// answer either, the lease goes on trust: nobody can write the key now.
func (l *Lease) settle(ctx context.Context, value []byte, werr error) error {
	e, err := l.get(ctx)
	switch {
	case err == nil && l.ours(e.Value()):
		l.trust(false, werr)
		return werr
	case err == nil:
		return l.lose(&HeldError{Value: e.Value(), Revision: e.Revision()})
	case errors.Is(err, nats.ErrConnectionClosed):
		return l.lose(err)
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		l.trust(true, err)
		return werr
	}
	return l.recreate(ctx, value, werr)
}

// recreate creates the key again after it expired while the bucket took
// no writes: before anyone who waited for it, so the holder's work goes on.
// Create is atomic: if another was quicker, the lease is lost to it.
func (l *Lease) recreate(ctx context.Context, value []byte, werr error) error {
	sent := time.Now()
	rev, err := l.call(ctx, func(ctx context.Context) (uint64, error) { return l.o.KV.Create(ctx, l.o.Key, value) })
	switch {
	case err == nil:
		l.o.Log.Info("lease expired while the bucket took no writes; created it again", "key", l.o.Key)
		l.held(rev, sent)
		return nil
	case isMismatch(err):
		// Someone was quicker, or our create was answered too late.
		if e, err := l.get(ctx); err == nil && l.ours(e.Value()) {
			l.held(e.Revision(), sent)
			return nil
		} else if err == nil {
			return l.lose(&HeldError{Value: e.Value(), Revision: e.Revision()})
		}
		return werr
	case errors.Is(err, nats.ErrConnectionClosed):
		return l.lose(err)
	default:
		l.trust(true, err)
		return werr
	}
}

// trust logs, once, that the lease is kept past its TTL with renewals
// failing: read back as ours, or (unreadable) on trust alone.
func (l *Lease) trust(unreadable bool, err error) {
	if l.onTrust {
		return
	}
	l.onTrust = true
	if unreadable {
		l.o.Log.Warn("lease kept on trust: the bucket answers neither writes nor reads, so nobody else can take the key", "key", l.o.Key, "err", err)
	} else {
		l.o.Log.Warn("lease kept: renewals fail but the key still holds our value", "key", l.o.Key, "err", err)
	}
}

func (l *Lease) start(value []byte) {
	l.rev, l.lost = 0, nil
	if !bytes.Equal(value, l.value) {
		l.prev, l.value = l.value, value
	}
}

func (l *Lease) held(rev uint64, sent time.Time) {
	l.rev, l.confirmed, l.lost, l.prev, l.onTrust = rev, sent, nil, nil, false
}

func (l *Lease) lose(err error) error {
	l.rev, l.lost = 0, err
	return err
}

// deadline is when a lease whose renewals fail starts reading the key to
// know whether it is still ours: Every before the last confirmed write's
// TTL ends, so before anyone else could create it.
func (l *Lease) deadline() time.Time { return l.confirmed.Add(l.o.TTL - l.o.Every) }

// ours reports whether v is a value we wrote or may have written.
func (l *Lease) ours(v []byte) bool {
	return bytes.Equal(v, l.value) || (l.prev != nil && bytes.Equal(v, l.prev))
}

// call makes one write, bounded by Timeout.
func (l *Lease) call(ctx context.Context, write func(context.Context) (uint64, error)) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.o.Timeout)
	defer cancel()
	return write(ctx)
}

func (l *Lease) get(ctx context.Context) (jetstream.KeyValueEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, l.o.Timeout)
	defer cancel()
	return l.o.KV.Get(ctx, l.o.Key)
}

func (l *Lease) del(ctx context.Context, rev uint64) error {
	ctx, cancel := context.WithTimeout(ctx, l.o.Timeout)
	defer cancel()
	return l.o.KV.Delete(ctx, l.o.Key, jetstream.LastRevision(rev))
}

// isMismatch reports whether a write was refused because the key's
// revision is not the one given (or, for Create, the key exists).
func isMismatch(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// isFinal reports whether err ends a lease rather than asking for a retry.
func isFinal(err error) bool {
	return errors.Is(err, ErrHeld) || errors.Is(err, ErrGone) ||
		errors.Is(err, ErrNotHeld) || errors.Is(err, nats.ErrConnectionClosed)
}
