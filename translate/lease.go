package translate

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/kvlease"
	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/internal/subject"
)

// leaseOwner competes for a channel's lease in the Leases bucket (value:
// this node's id) and holds it: one node in the cluster runs a channel.
type leaseOwner struct {
	key   string // subject.LeaseKey(room, lang)
	node  string
	kv    jetstream.KeyValue // the Leases bucket
	lease *kvlease.Lease
	view  *clusterView // who holds which lease, from the worker's watch
	cap   capacity
	nc    *nats.Conn // alive probes
	tick  time.Duration
	// expiredGrace is how long after a lease expired this node leaves it
	// to its last holder: past the holder's next renewal attempt.
	expiredGrace time.Duration
	wake         <-chan struct{} // the lease was freed or session counts changed
	// capped is called while the session cap keeps the channel waiting.
	capped func()
	log    *slog.Logger
}

// acquire waits until this node holds the channel's lease, or ctx ends.
// Lease holders are known from the worker's watch of the Leases bucket; a
// freed lease wakes us at once, the tick covers anything missed.
func (l *leaseOwner) acquire(ctx context.Context) bool {
	for {
		if ctx.Err() != nil {
			return false
		}
		owner, seen := l.view.lease(l.key)
		switch {
		case owner == "" && l.cap.over(l.key):
			l.capped()
		case owner == "" || owner == l.node:
			// Ours, yet no session of ours holds it, is left by an earlier
			// run of this node or a renewal that failed only on our side:
			// Claim adopts it. A free lease goes first to nodes with fewer
			// sessions, spreading channels over the translator nodes.
			if owner == "" {
				wait := l.cap.fairDelay()
				if at, ok := l.view.expiredSince(l.key); ok {
					// Expired rather than released: perhaps while the
					// bucket elected a leader and took no renewals. Its
					// holder, if it still runs, takes it again first
					// (kvlease), and its channel goes on without a break.
					wait = max(wait, time.Until(at.Add(l.expiredGrace)))
				}
				if !sleepCtx(ctx, wait) {
					return false
				}
				if owner, _ := l.view.lease(l.key); owner != "" {
					continue
				}
			}
			err := l.lease.Claim(ctx, []byte(l.node))
			if err == nil {
				return true
			}
			if !errors.Is(err, kvlease.ErrHeld) && ctx.Err() == nil {
				l.log.Warn("cannot take channel lease", "err", err)
			}
		default:
			// Held by another node: if that node's process is gone, free
			// the lease now rather than wait out its TTL (the failover
			// time would be the TTL plus the new session's first words).
			if l.holderGone(ctx, owner) {
				err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(seen))
				if err == nil {
					l.log.Warn("lease holder is gone from NATS; freed its channel", "holder", owner)
					metrics.Errors.WithLabelValues("translate", "holder_gone").Inc()
					continue
				}
				l.log.Debug("free the lease of a gone holder", "holder", owner, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-l.wake:
		case <-time.After(l.tick):
		}
	}
}

// holderGone reports whether node, which holds the channel's lease, has
// left NATS: its alive subject has no responders, twice, goneConfirm
// apart (a connection that blips and reconnects at once is not a death).
// An answer, or a request that times out on a slow network, counts as
// alive: then the lease's TTL decides.
func (l *leaseOwner) holderGone(ctx context.Context, node string) bool {
	for i := 0; i < 2; i++ {
		if i > 0 && !sleepCtx(ctx, goneConfirm) {
			return false
		}
		rctx, cancel := context.WithTimeout(ctx, goneConfirm)
		_, err := l.nc.RequestWithContext(rctx, subject.TranslatorAlive(node), nil)
		cancel()
		if !errors.Is(err, nats.ErrNoResponders) {
			return false
		}
	}
	return true
}

// hold renews the lease until ctx ends (nil) or the lease is lost.
func (l *leaseOwner) hold(ctx context.Context) error { return l.lease.Keep(ctx) }

// release deletes the lease if it is still ours, so another node can take
// the channel at once.
func (l *leaseOwner) release() {
	ctx, cancel := context.WithTimeout(context.Background(), kvTimeout)
	defer cancel()
	if err := l.lease.Release(ctx); err != nil {
		l.log.Debug("release lease", "err", err)
	}
}
