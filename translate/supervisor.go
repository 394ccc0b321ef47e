package translate

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/translate/engine"
)

// supervisor keeps one session of a channel running while this node owns
// the channel: it opens it, feeds it the room's audio, retries failures
// with backoff, restarts it when the channel's configuration changes, and
// stops retrying a permanent failure until then.
type supervisor struct {
	key, room    string
	engine       engine.Engine
	feeds        *feeds
	settings     *settings
	fails        *failures
	cap          capacity
	report       *reporter
	out          *outlet
	closeTimeout time.Duration
	log          *slog.Logger
}

// serve opens sessions and keeps one running, retrying failures, until ctx
// ends (reasonStopped, or reasonLost once lost is closed) or the channel
// must give way under MaxSessions (reasonCapped).
func (s *supervisor) serve(ctx context.Context, lost <-chan struct{}) stopReason {
	attempt := 0
	lastErr := ""
	for {
		cfg := s.settings.take() // the latest, and any change before it is seen
		var reason stopReason
		if msg, failed := s.fails.get(s.key, cfg); failed {
			s.report.setState(livestate.StateError, msg)
			reason = s.waitFor(ctx, lost, nil)
		} else {
			if rev, entered := s.report.setState(livestate.StateStarting, lastErr); entered && s.cap.taken(ctx, s.key, rev) {
				return reasonCapped
			}
			var err error
			var ran time.Duration
			reason, ran, err = s.session(ctx, lost, cfg)
			if reason == reasonEnded {
				msg := readable(err)
				if engine.IsPermanent(err) {
					s.log.Error("session failed; not retrying until the channel's configuration changes", "err", msg)
					metrics.Errors.WithLabelValues("translate", "session_permanent").Inc()
					s.fails.set(s.key, cfg, msg)
					attempt, lastErr = 0, ""
					continue
				}
				metrics.Errors.WithLabelValues("translate", "session").Inc()
				if ran >= longSession {
					attempt = 0
				}
				attempt++
				lastErr = msg
				s.report.setState(livestate.StateStarting, lastErr)
				d := backoff(attempt, err)
				s.log.Warn("session failed; retrying", "err", msg, "attempt", attempt, "retry_in", d.Round(time.Millisecond))
				reason = s.waitFor(ctx, lost, time.After(d))
			}
		}
		switch reason {
		case reasonChanged:
			s.log.Info("channel configuration changed; restarting session")
			attempt, lastErr = 0, ""
		case reasonStopped, reasonLost:
			return reason
		}
	}
}

// session opens one session and runs it until it ends, the configuration
// changes or ctx ends, and leaves it closed. ran is how long it was up.
func (s *supervisor) session(ctx context.Context, lost <-chan struct{}, cfg chanConfig) (reason stopReason, ran time.Duration, err error) {
	sess, err := s.engine.Open(ctx, cfg.ch, s.out.sink(cfg.ch))
	if err != nil {
		if ctx.Err() != nil {
			return reasonFor(lost), 0, nil
		}
		return reasonEnded, 0, err
	}
	// Subscribe before saying "active": whoever sees the state can count
	// on the audio it then publishes reaching the session.
	in := newInput(cfg.ch.Target, cfg.roomSource, s.engine.Capabilities().Sources, s.out.attr)
	if err := s.feeds.add(s.room, in); err != nil {
		s.closeSession(sess, lostCloseTimeout)
		return reasonEnded, 0, err
	}
	started := time.Now()
	s.report.startSession(sess.Kind())
	s.log.Info("session open", "kind", sess.Kind(), "engine", s.engine.Name())
	pumpCtx, stopPump := context.WithCancel(ctx)
	pumpDone := make(chan struct{})
	go func() {
		defer close(pumpDone)
		in.run(pumpCtx, sess, s.appendFailed())
	}()

	select {
	case <-sess.Done():
		reason, err = reasonEnded, sess.Err()
		if err == nil {
			err = &engine.Error{Code: "session_ended", Message: "the session ended unexpectedly"}
		}
	case <-s.settings.changed:
		reason = reasonChanged
	case <-ctx.Done():
		reason = reasonFor(lost)
	}
	s.feeds.remove(s.room, in)
	stopPump()
	select {
	case <-pumpDone:
	case <-time.After(s.closeTimeout):
		// Append is stuck, against its contract; Close should free it.
		s.log.Error("session Append does not return; closing anyway")
	}

	if reason == reasonLost || reason == reasonEnded {
		s.closeSession(sess, lostCloseTimeout) // free its resources; nothing to flush
	} else {
		s.closeSession(sess, s.closeTimeout) // flush: its last words are still published
	}
	s.report.endSession()
	s.log.Info("session closed", "ran", time.Since(started).Round(time.Second))
	return reason, time.Since(started), err
}

// appendFailed returns what the input calls with every Append's error:
// failures are counted, and logged once per streak.
func (s *supervisor) appendFailed() func(error) {
	failing := false
	return func(err error) {
		if err == nil {
			failing = false
			return
		}
		metrics.Errors.WithLabelValues("translate", "append").Inc()
		if !failing {
			s.log.Warn("session refuses audio", "err", err)
		}
		failing = true
	}
}

func (s *supervisor) closeSession(sess engine.Session, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := sess.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("session close", "err", err)
	}
}

// waitFor waits for a configuration change, the end of ctx, or timer.
func (s *supervisor) waitFor(ctx context.Context, lost <-chan struct{}, timer <-chan time.Time) stopReason {
	select {
	case <-ctx.Done():
		return reasonFor(lost)
	case <-s.settings.changed:
		return reasonChanged
	case <-timer:
		return reasonTimer
	}
}

// reasonFor is why ctx ended: the lease was lost, or the channel stops.
func reasonFor(lost <-chan struct{}) stopReason {
	if isShut(lost) {
		return reasonLost
	}
	return reasonStopped
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
