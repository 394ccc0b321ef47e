package translate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
}

func (a chanConfig) equal(b chanConfig) bool {
	return a.created.Equal(b.created) && reflect.DeepEqual(a.ch, b.ch)
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

// channel is this node's part in one (room, language): competing for its
// lease and, while holding it, running its session. One goroutine (run)
// drives it; it lives from when the worker wants the channel until the
// worker stops wanting it.
type channel struct {
	w          *Worker
	key        string // subject.LeaseKey(room, lang)
	room, lang string
	log        *slog.Logger

	cfgMu   sync.Mutex
	cfg     chanConfig
	changed chan struct{} // 1-buffered: cfg changed
	wake    chan struct{} // 1-buffered: the lease was freed or session counts changed

	cancel context.CancelFunc // stops run
	done   chan struct{}      // closed when run returns

	out      outlet
	leaseRev atomic.Uint64

	// stMu guards the channel state as published in the State bucket and
	// the session time accounting behind it.
	stMu      sync.Mutex
	st        subject.ChannelState
	stRev     uint64 // revision of our last write of st; 0 when none stands
	gauge     string // state label counted in metrics.Sessions, "" when none
	capPut    time.Time
	seconds   float64   // session time used so far, finished and running
	sessStart time.Time // zero when no session is running
	lastAcct  time.Time // when seconds was last brought up to date
}

func newChannel(w *Worker, cfg chanConfig) *channel {
	c := &channel{
		w:       w,
		key:     subject.LeaseKey(cfg.ch.Room, cfg.ch.Target),
		room:    cfg.ch.Room,
		lang:    cfg.ch.Target,
		log:     w.log.With("room", cfg.ch.Room, "lang", cfg.ch.Target),
		cfg:     cfg,
		changed: make(chan struct{}, 1),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	c.out.c = c
	c.out.queue = newPaceQueue()
	return c
}

func (c *channel) config() chanConfig {
	c.cfgMu.Lock()
	defer c.cfgMu.Unlock()
	return c.cfg
}

// setConfig records the room's latest configuration for the channel; a
// running session restarts at its next chance.
func (c *channel) setConfig(cfg chanConfig) {
	c.cfgMu.Lock()
	same := cfg.equal(c.cfg)
	c.cfg = cfg
	c.cfgMu.Unlock()
	if !same {
		signal(c.changed)
	}
}

// poke tells a channel waiting for its lease to look again.
func (c *channel) poke() { signal(c.wake) }

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
		rev, ok := c.acquire(ctx)
		if !ok {
			if !c.w.killed() {
				c.dropState() // a "session cap reached" error we may have left
			}
			return
		}
		if c.own(ctx, rev) == reasonStopped {
			return
		}
		// Lost the lease (another node may hold it now) or gave way under
		// the session cap. Compete again, after a pause so a flapping
		// connection does not thrash.
		if !sleepCtx(ctx, c.w.renewEvery) {
			return
		}
	}
}

// acquire waits until this node holds the channel's lease, or ctx ends.
// Lease holders are known from the worker's watch of the Leases bucket; a
// freed lease wakes us at once, the worker's tick covers anything missed.
func (c *channel) acquire(ctx context.Context) (rev uint64, ok bool) {
	for {
		if ctx.Err() != nil {
			return 0, false
		}
		owner, seen := c.w.view.lease(c.key)
		switch {
		case owner == "":
			if c.w.overCap(c.key) {
				c.putCapError()
				break
			}
			// Nodes with fewer sessions get a head start, spreading
			// channels over the translator nodes.
			if !sleepCtx(ctx, c.w.fairDelay()) {
				return 0, false
			}
			if owner, _ := c.w.view.lease(c.key); owner != "" {
				continue
			}
			rev, err := c.w.leases.Create(ctx, c.key, []byte(c.w.node))
			if err == nil {
				return rev, true
			}
			if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
				c.log.Warn("cannot take channel lease", "err", err)
			}
		case owner == c.w.node:
			// Ours, yet no session of ours holds it: left by an earlier
			// run of this node, or a renewal that failed only on our side.
			rev, err := c.w.leases.Update(ctx, c.key, []byte(c.w.node), seen)
			if err == nil {
				return rev, true
			}
		default:
			// Held by another node: if that node's process is gone, free
			// the lease now rather than wait out its TTL (the failover
			// time would be the TTL plus the new session's first words).
			if c.holderGone(ctx, owner) {
				err := c.w.leases.Delete(ctx, c.key, jetstream.LastRevision(seen))
				if err == nil {
					c.log.Warn("lease holder is gone from NATS; freed its channel", "holder", owner)
					metrics.Errors.WithLabelValues("translate", "holder_gone").Inc()
					continue
				}
				c.log.Debug("free the lease of a gone holder", "holder", owner, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return 0, false
		case <-c.wake:
		case <-time.After(c.w.tick):
		}
	}
}

// holderGone reports whether node, which holds the channel's lease, has
// left NATS: its alive subject has no responders, twice, goneConfirm
// apart (a connection that blips and reconnects at once is not a death).
// An answer, or a request that times out on a slow network, counts as
// alive: then the lease's TTL decides, as before.
func (c *channel) holderGone(ctx context.Context, node string) bool {
	for i := 0; i < 2; i++ {
		if i > 0 && !sleepCtx(ctx, goneConfirm) {
			return false
		}
		rctx, cancel := context.WithTimeout(ctx, goneConfirm)
		_, err := c.w.nc.RequestWithContext(rctx, subject.TranslatorAlive(node), nil)
		cancel()
		if !errors.Is(err, nats.ErrNoResponders) {
			return false
		}
	}
	return true
}

// own runs the channel while this node holds its lease (revision rev),
// until ctx ends (reasonStopped: the channel is released, session flushed
// and closed, lease and state deleted), the lease is lost (reasonLost), or
// the channel gives way under MaxSessions (reasonCapped: lease released,
// state says so).
func (c *channel) own(ctx context.Context, rev uint64) stopReason {
	c.leaseRev.Store(rev)
	c.log.Info("channel lease taken")
	ownCtx, cancelOwn := context.WithCancel(ctx)
	defer cancelOwn()
	lostCh := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); c.renew(ownCtx, lostCh, cancelOwn) }()
	go func() { defer wg.Done(); c.refresh(ownCtx) }()
	go func() { defer wg.Done(); c.out.pace(ownCtx) }()

	c.seedSeconds(ctx)
	c.out.open.Store(true)
	reason := c.serve(ownCtx, lostCh)
	cancelOwn()
	wg.Wait()
	if reason != reasonLost && !c.w.killed() {
		c.out.drain() // the closed session's last words, at once
	} else {
		c.out.discard()
	}
	c.out.open.Store(false)

	switch {
	case c.w.killed():
		return reasonStopped
	case reason == reasonLost:
		c.dropState()
	case reason == reasonCapped:
		c.releaseLease()
		c.clearGauge()
		c.putCapError()
	default:
		c.releaseLease()
		c.dropState()
		c.log.Info("channel released")
	}
	return reason
}

// serve opens sessions and keeps one running, retrying failures, until ctx
// ends (reasonStopped or reasonLost) or the channel must give way under
// MaxSessions (reasonCapped).
func (c *channel) serve(ctx context.Context, lostCh <-chan struct{}) stopReason {
	attempt := 0
	lastErr := ""
	for {
		select { // the config read below is the latest
		case <-c.changed:
		default:
		}
		cfg := c.config()
		var reason stopReason
		if msg, failed := c.w.failedWith(c.key, cfg); failed {
			c.setState(subject.StateError, msg)
			reason = c.waitFor(ctx, lostCh, nil)
		} else {
			if rev, entered := c.setState(subject.StateStarting, lastErr); entered && c.w.capTaken(ctx, c.key, rev) {
				return reasonCapped
			}
			var err error
			var ran time.Duration
			reason, ran, err = c.session(ctx, lostCh, cfg)
			if reason == reasonEnded {
				msg := readable(err)
				if engine.IsPermanent(err) {
					c.log.Error("session failed; not retrying until the channel's configuration changes", "err", msg)
					metrics.Errors.WithLabelValues("translate", "session_permanent").Inc()
					c.w.setFailed(c.key, cfg, msg)
					attempt, lastErr = 0, ""
					continue
				}
				metrics.Errors.WithLabelValues("translate", "session").Inc()
				if ran >= longSession {
					attempt = 0
				}
				attempt++
				lastErr = msg
				c.setState(subject.StateStarting, lastErr)
				d := backoff(attempt, err)
				c.log.Warn("session failed; retrying", "err", msg, "attempt", attempt, "retry_in", d.Round(time.Millisecond))
				reason = c.waitFor(ctx, lostCh, time.After(d))
			}
		}
		switch reason {
		case reasonChanged:
			c.log.Info("channel configuration changed; restarting session")
			attempt, lastErr = 0, ""
		case reasonStopped, reasonLost:
			return reason
		}
	}
}

// session opens one session and runs it until it ends, the configuration
// changes or ctx ends; it always leaves the session closed (except when the
// worker was killed). ran is how long the session was up.
func (c *channel) session(ctx context.Context, lostCh <-chan struct{}, cfg chanConfig) (reason stopReason, ran time.Duration, err error) {
	sess, err := c.w.engine.Open(ctx, cfg.ch, c.out.sink(cfg.ch))
	if err != nil {
		if ctx.Err() != nil {
			return c.reasonFor(lostCh), 0, nil
		}
		return reasonEnded, 0, err
	}
	// Subscribe before saying "active": whoever sees the state can count
	// on the audio it then publishes reaching the session.
	q := newFrameQueue()
	if err := c.w.feeds.add(c.room, q); err != nil {
		c.closeSession(sess, lostCloseTimeout)
		return reasonEnded, 0, err
	}
	started := time.Now()
	c.startSession(sess.Kind())
	c.log.Info("session open", "kind", sess.Kind(), "engine", c.w.engine.Name())
	pumpCtx, stopPump := context.WithCancel(ctx)
	pumpDone := make(chan struct{})
	go c.pump(pumpCtx, q, sess, pumpDone)

	select {
	case <-sess.Done():
		reason, err = reasonEnded, sess.Err()
		if err == nil {
			err = &engine.Error{Code: "session_ended", Message: "the session ended unexpectedly"}
		}
	case <-c.changed:
		reason = reasonChanged
	case <-ctx.Done():
		reason = c.reasonFor(lostCh)
	}
	c.w.feeds.remove(c.room, q)
	stopPump()
	select {
	case <-pumpDone:
	case <-time.After(c.w.closeTimeout):
		// Append is stuck, against its contract; Close should free it.
		c.log.Error("session Append does not return; closing anyway")
	}

	switch {
	case c.w.killed():
		// A killed process closes nothing.
	case reason == reasonLost || reason == reasonEnded:
		c.closeSession(sess, lostCloseTimeout) // free its resources; nothing to flush
	default:
		c.closeSession(sess, c.w.closeTimeout) // flush: its last words are still published
	}
	c.endSession()
	c.log.Info("session closed", "ran", time.Since(started).Round(time.Second))
	return reason, time.Since(started), err
}

// pump feeds the session from its queue, so a slow Append holds up only
// this session.
func (c *channel) pump(ctx context.Context, q *frameQueue, sess engine.Session, done chan<- struct{}) {
	defer close(done)
	failing := false
	for {
		f, ok := q.Pop()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-q.Ready():
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if err := sess.Append(f.PCM, f.Captured); err != nil {
			metrics.Errors.WithLabelValues("translate", "append").Inc()
			if !failing {
				c.log.Warn("session refuses audio", "err", err)
			}
			failing = true
		} else {
			failing = false
		}
	}
}

func (c *channel) closeSession(sess engine.Session, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := sess.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
		c.log.Warn("session close", "err", err)
	}
}

// waitFor waits for a configuration change, the end of ctx, or timer.
func (c *channel) waitFor(ctx context.Context, lostCh <-chan struct{}, timer <-chan time.Time) stopReason {
	select {
	case <-ctx.Done():
		return c.reasonFor(lostCh)
	case <-c.changed:
		return reasonChanged
	case <-timer:
		return reasonTimer
	}
}

func (c *channel) reasonFor(lostCh <-chan struct{}) stopReason {
	select {
	case <-lostCh:
		return reasonLost
	default:
		return reasonStopped
	}
}

// renew keeps the lease alive. The first failure ends ownership at once
// (output gated off, session stopped): another node may take the channel
// once the lease expires, and there must never be two voices.
func (c *channel) renew(ctx context.Context, lostCh chan<- struct{}, cancelOwn context.CancelFunc) {
	t := time.NewTicker(c.w.renewEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, c.w.renewEvery)
		rev, err := c.w.leases.Update(rctx, c.key, []byte(c.w.node), c.leaseRev.Load())
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.out.open.Store(false)
			c.log.Error("channel lease lost; stopping session", "err", err)
			metrics.Errors.WithLabelValues("translate", "lease_lost").Inc()
			close(lostCh)
			cancelOwn()
			return
		}
		c.leaseRev.Store(rev)
	}
}

// refresh rewrites the channel state before it expires, with the session
// time used so far.
func (c *channel) refresh(ctx context.Context) {
	t := time.NewTicker(subject.StateRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.stMu.Lock()
			if c.st.State != "" {
				c.putLocked()
			}
			c.stMu.Unlock()
		}
	}
}

// releaseLease deletes the lease (only if still ours), so another node can
// take the channel at once.
func (c *channel) releaseLease() {
	ctx, cancel := context.WithTimeout(context.Background(), kvTimeout)
	defer cancel()
	if err := c.w.leases.Delete(ctx, c.key, jetstream.LastRevision(c.leaseRev.Load())); err != nil {
		c.log.Debug("release lease", "err", err)
	}
}

// seedSeconds continues the session time of the channel's previous owner.
func (c *channel) seedSeconds(ctx context.Context) {
	gctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	e, err := c.w.state.Get(gctx, subject.ChannelKey(c.room, c.lang))
	if err != nil {
		return
	}
	var st subject.ChannelState
	if json.Unmarshal(e.Value(), &st) != nil {
		return
	}
	c.stMu.Lock()
	if st.SessionSeconds > c.seconds {
		c.seconds = st.SessionSeconds
	}
	c.stMu.Unlock()
}

// setState publishes the channel's state while this node owns it. It
// returns the revision written (0 if the write failed) and whether the
// channel thereby started running (went to starting or active from
// neither).
func (c *channel) setState(state, msg string) (rev uint64, entered bool) {
	c.stMu.Lock()
	defer c.stMu.Unlock()
	return c.setStateLocked(state, msg)
}

func (c *channel) setStateLocked(state, msg string) (rev uint64, entered bool) {
	entered = running(state) && !running(c.st.State)
	if c.st.State != state {
		c.st.Since = time.Now()
	}
	if c.gauge != state {
		if c.gauge != "" {
			metrics.Sessions.WithLabelValues(c.gauge).Dec()
		}
		metrics.Sessions.WithLabelValues(state).Inc()
		c.gauge = state
	}
	c.st.State, c.st.Error = state, msg
	return c.putLocked(), entered
}

// putCapError says, while no node holds the channel, that it waits for a
// free session under the cluster's cap.
func (c *channel) putCapError() {
	c.stMu.Lock()
	defer c.stMu.Unlock()
	msg := fmt.Sprintf("session cap of %d reached", c.w.maxSessions)
	if c.st.State == subject.StateError && c.st.Error == msg && time.Since(c.capPut) < subject.StateRefresh {
		return
	}
	if c.st.State != subject.StateError || c.st.Error != msg {
		c.log.Warn("channel waits: " + msg)
		c.st.Since = time.Now()
	}
	c.st.State, c.st.Error = subject.StateError, msg
	c.capPut = time.Now()
	c.putLocked()
}

// putLocked writes st to the State bucket and returns the revision, 0 if
// the write failed.
func (c *channel) putLocked() uint64 {
	c.accountLocked(time.Now())
	c.st.Node = c.w.node
	c.st.Engine = c.w.engine.Name()
	c.st.SessionSeconds = float64(int64(c.seconds*10)) / 10
	b, err := json.Marshal(c.st)
	if err != nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), kvTimeout)
	defer cancel()
	rev, err := c.w.state.Put(ctx, subject.ChannelKey(c.room, c.lang), b)
	if err != nil {
		c.log.Warn("cannot publish channel state", "state", c.st.State, "err", err)
		return 0
	}
	c.stRev = rev
	return rev
}

// clearGauge stops counting the channel in metrics.Sessions.
func (c *channel) clearGauge() {
	c.stMu.Lock()
	defer c.stMu.Unlock()
	c.clearGaugeLocked()
}

func (c *channel) clearGaugeLocked() {
	if c.gauge != "" {
		metrics.Sessions.WithLabelValues(c.gauge).Dec()
		c.gauge = ""
	}
}

// dropState deletes the channel state we published, unless someone wrote
// it since, and stops counting it in metrics.
func (c *channel) dropState() {
	c.stMu.Lock()
	defer c.stMu.Unlock()
	c.clearGaugeLocked()
	if c.stRev != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), kvTimeout)
		defer cancel()
		if err := c.w.state.Delete(ctx, subject.ChannelKey(c.room, c.lang), jetstream.LastRevision(c.stRev)); err != nil {
			c.log.Debug("delete channel state", "err", err)
		}
	}
	c.stRev = 0
	c.st = subject.ChannelState{}
}

func (c *channel) startSession(kind string) {
	c.stMu.Lock()
	defer c.stMu.Unlock()
	now := time.Now()
	c.st.Kind = kind
	c.sessStart, c.lastAcct = now, now
	c.setStateLocked(subject.StateActive, "")
}

func (c *channel) endSession() {
	c.stMu.Lock()
	defer c.stMu.Unlock()
	c.accountLocked(time.Now())
	c.sessStart = time.Time{}
}

// accountLocked adds the running session's time since the last call to the
// channel's total and to metrics.SessionSeconds.
func (c *channel) accountLocked(now time.Time) {
	if c.sessStart.IsZero() {
		return
	}
	d := now.Sub(c.lastAcct).Seconds()
	if d <= 0 {
		return
	}
	c.seconds += d
	c.lastAcct = now
	metrics.SessionSeconds.WithLabelValues(c.w.engine.Name(), c.st.Kind).Add(d)
}

// backoff is the delay before retry number attempt (from 1): exponential
// from minBackoff to maxBackoff with ±20 % jitter, or longer if the server
// asked for it. An expired session is replaced at once.
func backoff(attempt int, err error) time.Duration {
	var e *engine.Error
	if errors.As(err, &e) && e.Code == "session_expired" && attempt == 1 {
		return 0
	}
	d := minBackoff << min(attempt-1, 5)
	d = d*4/5 + rand.N(d*2/5)
	d = max(minBackoff, min(d, maxBackoff))
	if e != nil && e.RetryAfter > d {
		d = min(e.RetryAfter, 5*time.Minute)
	}
	return d
}

// readable is the message an organizer sees for err.
func readable(err error) string {
	var e *engine.Error
	if errors.As(err, &e) {
		if e.Message != "" {
			return e.Message
		}
		return e.Code
	}
	if err == nil {
		return ""
	}
	return err.Error()
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
