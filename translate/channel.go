package translate

import (
	"context"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/babelcast/babelcast/internal/kvlease"
	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/translate/engine"
)

// Retry delays after a session fails with an error that is not permanent.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
	// longSession is how long a session must have run for its failure to
	// count as a fresh start rather than one more failure in a row.
	longSession = 30 * time.Second
	// lostCloseTimeout bounds closing a session whose lease was lost: its
	// output is no longer published, so there is nothing to wait for.
	lostCloseTimeout = time.Second
	// kvTimeout bounds one KV write or delete.
	kvTimeout = 2 * time.Second
	// goneConfirm separates the two probes that find a lease holder gone.
	goneConfirm = 500 * time.Millisecond
)

// chanConfig is what a channel's session is opened with. A change to it
// restarts the session and clears a permanent error.
type chanConfig struct {
	ch      engine.Channel
	created time.Time // the room's creation: a recreated room is a new configuration
	// roomSource is the room's source language: what a mic speaks unless
	// it says otherwise.
	roomSource string
}

func (a chanConfig) equal(b chanConfig) bool {
	return a.created.Equal(b.created) && a.roomSource == b.roomSource && reflect.DeepEqual(a.ch, b.ch)
}

// settings hold a channel's latest configuration, set by the worker and
// read by the channel's supervisor.
type settings struct {
	mu      sync.Mutex
	cfg     chanConfig
	changed chan struct{} // 1-buffered: cfg changed
}

func newSettings(cfg chanConfig) *settings {
	return &settings{cfg: cfg, changed: make(chan struct{}, 1)}
}

// set records the room's latest configuration for the channel; a running
// session restarts at its next chance.
func (s *settings) set(cfg chanConfig) {
	s.mu.Lock()
	same := cfg.equal(s.cfg)
	s.cfg = cfg
	s.mu.Unlock()
	if !same {
		signal(s.changed)
	}
}

// take returns the latest configuration, and takes the signal of any
// change before it.
func (s *settings) take() chanConfig {
	select {
	case <-s.changed:
	default:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// stopReason says why a channel stopped serving a session or waiting.
type stopReason int

const (
	reasonEnded   stopReason = iota // the session ended by itself
	reasonChanged                   // the channel's configuration changed
	reasonStopped                   // the channel is no longer wanted, or the worker stops
	reasonLost                      // the lease could not be renewed
	reasonTimer                     // a wait ran out
	reasonCapped                    // MaxSessions channels started first
)

// channel is this node's part in one (room, language), from when the
// worker wants it until the worker stops wanting it: its lease owner
// competes for the channel and holds it, and while it is held the
// supervisor runs its session, the reporter says how it goes and the
// outlet publishes what it says. One goroutine (run) drives it.
type channel struct {
	key, room, lang string
	log             *slog.Logger
	settings        *settings
	wake            chan struct{} // 1-buffered: the lease was freed or session counts changed
	pause           time.Duration // before competing again after losing the lease

	cancel context.CancelFunc // stops run
	done   chan struct{}      // closed when run returns

	lease  *leaseOwner
	sup    *supervisor
	report *reporter
	out    *outlet
}

// newChannel makes the parts of a channel, each with what it needs of the
// worker.
func (w *Worker) newChannel(cfg chanConfig) *channel {
	room, lang := cfg.ch.Room, cfg.ch.Target
	key := subject.LeaseKey(room, lang)
	log := w.log.With("room", room, "lang", lang)
	c := &channel{
		key: key, room: room, lang: lang, log: log,
		settings: newSettings(cfg),
		wake:     make(chan struct{}, 1),
		pause:    w.renewEvery,
		done:     make(chan struct{}),
		out:      newOutlet(w.nc, room, lang),
		report:   newReporter(w.state, room, lang, w.node, w.engine.Name(), w.maxSessions, log),
	}
	c.lease = &leaseOwner{
		key: key, node: w.node, kv: w.leases,
		lease: kvlease.New(kvlease.Options{
			KV: w.leases, Key: key, TTL: subject.LeaseTTL, Every: w.renewEvery, Log: log,
		}),
		view: w.view, cap: w.capacity(), nc: w.nc, tick: w.tick, expiredGrace: w.renewEvery + 500*time.Millisecond,
		wake: c.wake, capped: c.report.putCapError, log: log,
	}
	c.sup = &supervisor{
		key: key, room: room, engine: w.engine, feeds: w.feeds,
		settings: c.settings, fails: w.fails, cap: w.capacity(),
		report: c.report, out: c.out, closeTimeout: w.closeTimeout, log: log,
	}
	return c
}

// poke tells a channel waiting for its lease to look again.
func (c *channel) poke() { signal(c.wake) }

// isShut reports whether ch is closed.
func isShut(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// run competes for the channel's lease and runs its session while holding
// it, until ctx ends.
func (c *channel) run(ctx context.Context) {
	defer close(c.done)
	for {
		if !c.lease.acquire(ctx) {
			c.report.drop() // a "session cap reached" error we may have left
			return
		}
		if c.own(ctx) == reasonStopped {
			return
		}
		// Lost the lease (another node may hold it now) or gave way under
		// the session cap. Compete again, after a pause so a flapping
		// connection does not thrash.
		if !sleepCtx(ctx, c.pause) {
			return
		}
	}
}

// own runs the channel while this node holds its lease, until ctx ends
// (reasonStopped: the channel is released, session flushed and closed,
// lease and state deleted), the lease is lost (reasonLost), or the channel
// gives way under MaxSessions (reasonCapped: lease released, state says
// so).
func (c *channel) own(ctx context.Context) stopReason {
	c.log.Info("channel lease taken")
	ownCtx, cancelOwn := context.WithCancel(ctx)
	defer cancelOwn()
	lost := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := c.lease.hold(ownCtx); err != nil {
			// Gate the output off first: another node may speak for the
			// channel now, and there must never be two voices.
			c.out.open.Store(false)
			c.log.Error("channel lease lost; stopping session", "err", err)
			metrics.Errors.WithLabelValues("translate", "lease_lost").Inc()
			close(lost)
			cancelOwn()
		}
	}()
	go func() { defer wg.Done(); c.report.refresh(ownCtx) }()
	go func() { defer wg.Done(); c.out.pace(ownCtx) }()

	c.report.seedSeconds(ctx)
	c.out.open.Store(true)
	reason := c.sup.serve(ownCtx, lost)
	cancelOwn()
	wg.Wait()
	if reason != reasonLost {
		c.out.drain() // the closed session's last words, at once
	} else {
		c.out.discard()
	}
	c.out.open.Store(false)

	switch reason {
	case reasonLost:
		c.report.drop()
	case reasonCapped:
		c.lease.release()
		c.report.clearGauge()
		c.report.putCapError()
	default:
		c.lease.release()
		c.report.drop()
		c.log.Info("channel released")
	}
	return reason
}

// sleepCtx waits d or until ctx ends; it reports whether ctx is still alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
