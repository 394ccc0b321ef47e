package openai

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/babelcast/babelcast/translate/engine"
)

// switchPause is the pause in the speech at which the session moves to a
// fresh connection.
const switchPause = 300 * time.Millisecond

// A rotator keeps a session on a working connection for as long as the
// session lives. A connection to the Realtime API lasts at most 60 minutes
// and cannot be resumed, and any connection may drop: the rotator dials a
// fresh one before the current one expires and moves the speaker's audio
// to it at a pause in the speech, and it replaces a connection that
// dropped, dialling with backoff.
//
// It holds the session's connections:
//   - cur takes the speaker's audio;
//   - next is a fresh connection waiting for a pause to take over from cur;
//   - draining are the connections the session moved off, finishing what
//     they hold, each within a deadline;
//   - lost is the current connection that dropped, kept until a fresh one
//     has taken over what it had not finished.
//
// What differs between the kinds of session is behind connKind, and a
// fresh connection is configured with the session.update that update
// builds. Every method runs on the session's run goroutine.
type rotator[C kindConn] struct {
	s      *session
	kind   connKind[C]
	update func() clientEvent // called on the dialling goroutine
	policy rotationPolicy

	cur, next C
	nextSince time.Time // when next became ready
	draining  []drainingConn[C]
	lost      C

	connIDs  int       // connection ids given so far
	dialing  bool      // a dial is in flight
	attempts int       // connection attempts failed in a row
	retryAt  time.Time // earliest next attempt
}

// kindConn is a kind's connection: its own state around the *conn it
// embeds. The zero value is no connection.
type kindConn interface {
	comparable
	wire() *conn
}

func (c *conn) wire() *conn { return c }

// A connKind is what a kind of session does at the moments its rotator
// manages.
type connKind[C kindConn] interface {
	// adopt wraps a fresh, configured connection in the kind's state.
	adopt(c *conn) C
	// event handles a server event of c.
	event(c C, ev *serverEvent)
	// retire asks c, which the session moves off, to finish what it holds.
	retire(c C, now time.Time)
	// drained reports whether a retired c has finished and can be closed.
	drained(c C) bool
	// replay gives c, the current connection after lost dropped, the work
	// that lost (zero when none) and any other ended connection left
	// unfinished.
	replay(c, lost C)
	// ended is told that c has ended, once the rotator has let it go.
	ended(c C)
	// done reports whether a closing session has nothing left to finish.
	done() bool
}

// rotationPolicy is where the kinds' rotations differ by more than a hook.
type rotationPolicy struct {
	// drainTimeout bounds how long a retired connection may take to finish.
	drainTimeout time.Duration
	// drainInOrder moves to a fresh connection only when no connection is
	// draining: the kind's output comes out in the order of its
	// connections.
	drainInOrder bool
	// finishOnCurrent says that what a closing session still holds is
	// finished on its current connection, so a closing session replaces a
	// current connection that drops.
	finishOnCurrent bool
}

type drainingConn[C kindConn] struct {
	c        C
	deadline time.Time
}

// dialResult is the outcome of a background connect.
type dialResult struct {
	c   *conn
	err error
}

func newRotator[C kindConn](s *session, kind connKind[C], update func() clientEvent, p rotationPolicy) *rotator[C] {
	return &rotator[C]{s: s, kind: kind, update: update, policy: p}
}

// open dials the session's first connection (inside Open, before the run
// goroutine starts), retrying retryable failures a few times within ctx.
func (r *rotator[C]) open(ctx context.Context) (C, error) {
	var none C
	for attempt := 0; ; attempt++ {
		c, err := r.s.eng.connect(ctx, r.s.kind, r.newConnID(), r.update)
		if err == nil {
			r.cur = r.adopt(c)
			return r.cur, nil
		}
		var te *engine.Error
		if !errors.As(err, &te) || te.Permanent || attempt+1 >= min(r.s.eng.opt.MaxRetries, 4) {
			r.s.countError(err)
			return none, err
		}
		d := r.s.eng.backoff(attempt, te.RetryAfter)
		r.s.log.Warn("opening the session failed; retrying", "err", err, "in", d)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return none, ctx.Err()
		}
	}
}

func (r *rotator[C]) newConnID() int {
	r.connIDs++
	return r.connIDs
}

// adopt starts reading a fresh connection and hands it to the kind.
func (r *rotator[C]) adopt(c *conn) C {
	startReader(&r.s.wg, c, r.s.events, r.s.stop, r.s.log)
	c.start = time.Now()
	return r.kind.adopt(c)
}

// all returns the connections the session holds, current first.
func (r *rotator[C]) all() []C {
	var none C
	var out []C
	for _, c := range []C{r.cur, r.next} {
		if c != none {
			out = append(out, c)
		}
	}
	for _, d := range r.draining {
		out = append(out, d.c)
	}
	return out
}

// conns returns the connections the session holds, to be closed.
func (r *rotator[C]) conns() []*conn {
	var out []*conn
	for _, c := range r.all() {
		out = append(out, c.wire())
	}
	return out
}

// find returns the kind's connection of w, if the session still holds it.
func (r *rotator[C]) find(w *conn) (C, bool) {
	for _, c := range r.all() {
		if c.wire() == w {
			return c, true
		}
	}
	var none C
	return none, false
}

// handle passes a server event to the kind, or handles the end of a
// connection.
func (r *rotator[C]) handle(e connEvent) {
	c, ok := r.find(e.c)
	if !ok {
		return // a connection already let go
	}
	if e.closed {
		r.closed(c, e.err)
		return
	}
	r.kind.event(c, e.ev)
}

// closed lets c go: a fresh connection takes over from a current one that
// dropped, at once when one is ready, else after a backoff.
func (r *rotator[C]) closed(c C, err error) {
	var none C
	w := c.wire()
	if !w.closed {
		w.closed = true
		_ = w.ws.Close()
	}
	w.ended = true
	switch c {
	case r.next:
		r.next = none
	case r.cur:
		r.cur = none
		if r.s.closing && r.kind.done() {
			break
		}
		r.s.log.Warn("connection lost; reconnecting", "conn", w.id, "err", err)
		r.s.countError(&engine.Error{Code: "connection_lost"})
		r.lost = c
		if next := r.next; next != none { // a fresh connection is already there: use it
			r.next = none
			r.takeOver(next, time.Now())
		} else {
			r.retryAt = time.Now().Add(r.s.eng.backoff(0, 0))
		}
	default:
		r.draining = slices.DeleteFunc(r.draining, func(d drainingConn[C]) bool { return d.c == c })
	}
	r.kind.ended(c)
	if r.s.closing && r.kind.done() {
		r.s.finished = true
	}
}

// takeOver makes c current after the current connection dropped.
func (r *rotator[C]) takeOver(c C, now time.Time) {
	var none C
	r.cur = c
	c.wire().start = now
	lost := r.lost
	r.lost = none
	r.kind.replay(c, lost)
}

// dialDone takes the outcome of a background dial: the fresh connection
// replaces a lost current one at once, or waits as next for a pause.
func (r *rotator[C]) dialDone(d dialResult) {
	var none C
	r.dialing = false
	if d.err != nil {
		r.dialFailed(d.err)
		return
	}
	r.attempts = 0
	if r.s.closing && (r.cur != none || !r.policy.finishOnCurrent) {
		d.c.close()
		return
	}
	c := r.adopt(d.c)
	if r.cur == none {
		r.s.log.Info("reconnected", "conn", d.c.id)
		r.takeOver(c, time.Now())
		return
	}
	r.next, r.nextSince = c, time.Now()
	r.maybeSwitch(r.nextSince)
}

// tick keeps the connections alive, closes retired ones that finished or
// ran out of time, and dials: to replace a lost connection, or a fresh one
// before the current one expires.
func (r *rotator[C]) tick(now time.Time) {
	var none C
	for _, c := range r.all() {
		c.wire().keepAlive(now)
	}
	for _, d := range r.draining {
		w := d.c.wire()
		if w.closed {
			continue
		}
		if drained := r.kind.drained(d.c); drained || now.After(d.deadline) {
			if !drained {
				r.s.log.Warn("a connection moved from did not finish in time; closing it", "conn", w.id)
			}
			w.close() // its reader reports the end
		}
	}
	if r.s.closing && r.kind.done() {
		r.s.finished = true
		return
	}
	switch {
	case r.cur == none:
		if (!r.s.closing || r.policy.finishOnCurrent) && !r.dialing && now.After(r.retryAt) {
			r.startDial()
		}
	case r.s.closing:
	case r.next != none:
		r.maybeSwitch(now)
	case !r.dialing && now.After(r.retryAt) && now.After(r.cur.wire().rotateAt(r.s.eng.opt.RotateBefore)):
		r.s.log.Info("connection expires soon; opening a fresh one", "conn", r.cur.wire().id, "expires_at", r.cur.wire().expiresAt)
		r.startDial()
	}
}

// maybeSwitch moves the speaker's audio to the fresh connection at a pause
// in the speech (or after SwitchWait): the current one retires and
// finishes what it holds.
func (r *rotator[C]) maybeSwitch(now time.Time) {
	var none C
	if r.next == none || r.cur == none || (r.policy.drainInOrder && len(r.draining) > 0) {
		return
	}
	paused := r.s.pausedFor(now, switchPause)
	if !paused && now.Sub(r.nextSince) < r.s.eng.opt.SwitchWait {
		return
	}
	old := r.cur.wire()
	r.retireCurrent(now)
	r.cur, r.next = r.next, none
	r.cur.wire().start = now
	r.s.log.Info("moved to a fresh connection", "from", old.id, "to", r.cur.wire().id, "at_pause", paused)
}

// retireCurrent moves the current connection to the draining ones, asking
// it to finish what it holds. The session has no current connection until
// another takes over.
func (r *rotator[C]) retireCurrent(now time.Time) {
	var none C
	c := r.cur
	r.kind.retire(c, now)
	c.wire().retired = true
	r.draining = append(r.draining, drainingConn[C]{c: c, deadline: now.Add(r.policy.drainTimeout)})
	r.cur = none
}

// dropNext closes the fresh connection waiting to take over, if any.
func (r *rotator[C]) dropNext() {
	var none C
	if r.next != none {
		r.next.wire().close()
		r.next = none
	}
}

// startDial connects in the background; the result arrives on the
// session's dialed channel.
func (r *rotator[C]) startDial() {
	if r.dialing {
		return
	}
	r.dialing = true
	s, id := r.s, r.newConnID()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c, err := s.eng.connect(s.ctx, s.kind, id, r.update)
		select {
		case s.dialed <- dialResult{c: c, err: err}:
		case <-s.stop:
			if c != nil {
				_ = c.ws.Close()
			}
		}
	}()
}

// dialFailed records a failed attempt and schedules the next one, or ends
// the session: on a permanent error, or after MaxRetries in a row.
func (r *rotator[C]) dialFailed(err error) {
	r.s.countError(err)
	var te *engine.Error
	if errors.As(err, &te) && te.Permanent {
		r.s.fail(err)
		return
	}
	if r.s.ctx.Err() != nil {
		return
	}
	r.attempts++
	if r.attempts >= r.s.eng.opt.MaxRetries {
		if te == nil {
			te = &engine.Error{Code: "connection_lost", Message: err.Error()}
		}
		r.s.fail(&engine.Error{Code: te.Code, Message: "gave up reconnecting: " + te.Message, RetryAfter: te.RetryAfter})
		return
	}
	var ra time.Duration
	if te != nil {
		ra = te.RetryAfter
	}
	d := r.s.eng.backoff(r.attempts-1, ra)
	r.retryAt = time.Now().Add(d)
	r.s.log.Warn("connecting failed; will retry", "err", err, "in", d.Round(time.Millisecond), "attempt", r.attempts)
}

// backoff is exponential with jitter, capped, and at least retryAfter.
func (e *Engine) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := e.opt.BackoffBase << min(attempt, 16)
	if d > e.opt.BackoffMax || d <= 0 {
		d = e.opt.BackoffMax
	}
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	return max(d, retryAfter)
}
