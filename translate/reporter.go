package translate

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/metrics"
)

// reporter says how a channel is doing: its entry in the State bucket
// (state, last error, session time), refreshed before it expires, and its
// count in metrics.Sessions and metrics.SessionSeconds.
type reporter struct {
	kv          jetstream.KeyValue // the State bucket
	key         string             // livestate.ChannelKey(room, lang)
	node        string
	engine      string
	maxSessions int // for the message of a channel waiting under the cap
	log         *slog.Logger

	// mu guards the state as published and the session time accounting
	// behind it.
	mu        sync.Mutex
	st        livestate.Channel
	stRev     uint64 // revision of our last write of st; 0 when none stands
	gauge     string // state label counted in metrics.Sessions, "" when none
	capPut    time.Time
	seconds   float64   // session time used so far, finished and running
	sessStart time.Time // zero when no session is running
	lastAcct  time.Time // when seconds was last brought up to date
}

func newReporter(kv jetstream.KeyValue, room, lang, node, engineName string, maxSessions int, log *slog.Logger) *reporter {
	return &reporter{
		kv: kv, key: livestate.ChannelKey(room, lang),
		node: node, engine: engineName, maxSessions: maxSessions, log: log,
	}
}

// refresh rewrites the channel state before it expires, with the session
// time used so far, until ctx ends.
func (r *reporter) refresh(ctx context.Context) {
	livestate.Every(ctx, livestate.Refresh, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.st.State != "" {
			r.putLocked()
		}
	})
}

// seedSeconds continues the session time of the channel's previous owner.
func (r *reporter) seedSeconds(ctx context.Context) {
	gctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	e, err := r.kv.Get(gctx, r.key)
	if err != nil {
		return
	}
	st, ok := livestate.Decode[livestate.Channel](e.Value())
	if !ok {
		return
	}
	r.mu.Lock()
	r.seconds = max(r.seconds, st.SessionSeconds)
	r.mu.Unlock()
}

// setState publishes the channel's state while this node owns it. It
// returns the revision written (0 if the write failed) and whether the
// channel thereby started running (went to starting or active from
// neither).
func (r *reporter) setState(state, msg string) (rev uint64, entered bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.setStateLocked(state, msg)
}

func (r *reporter) setStateLocked(state, msg string) (rev uint64, entered bool) {
	next := livestate.Channel{State: state}
	entered = next.Running() && !r.st.Running()
	if r.st.State != state {
		r.st.Since = time.Now()
	}
	if r.gauge != state {
		if r.gauge != "" {
			metrics.Sessions.WithLabelValues(r.gauge).Dec()
		}
		metrics.Sessions.WithLabelValues(state).Inc()
		r.gauge = state
	}
	r.st.State, r.st.Error = state, msg
	return r.putLocked(), entered
}

// putCapError says, while no node holds the channel, that it waits for a
// free session under the cluster's cap.
func (r *reporter) putCapError() {
	r.mu.Lock()
	defer r.mu.Unlock()
	msg := fmt.Sprintf("session cap of %d reached", r.maxSessions)
	if r.st.State == livestate.StateError && r.st.Error == msg && time.Since(r.capPut) < livestate.Refresh {
		return
	}
	if r.st.State != livestate.StateError || r.st.Error != msg {
		r.log.Warn("channel waits: " + msg)
		r.st.Since = time.Now()
	}
	r.st.State, r.st.Error = livestate.StateError, msg
	r.capPut = time.Now()
	r.putLocked()
}

// putLocked writes st to the State bucket and returns the revision, 0 if
// the write failed.
func (r *reporter) putLocked() uint64 {
	r.accountLocked(time.Now())
	r.st.Node = r.node
	r.st.Engine = r.engine
	r.st.SessionSeconds = float64(int64(r.seconds*10)) / 10
	ctx, cancel := context.WithTimeout(context.Background(), kvTimeout)
	defer cancel()
	rev, err := r.kv.Put(ctx, r.key, livestate.Encode(r.st))
	if err != nil {
		r.log.Warn("cannot publish channel state", "state", r.st.State, "err", err)
		return 0
	}
	r.stRev = rev
	return rev
}

// clearGauge stops counting the channel in metrics.Sessions.
func (r *reporter) clearGauge() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clearGaugeLocked()
}

func (r *reporter) clearGaugeLocked() {
	if r.gauge != "" {
		metrics.Sessions.WithLabelValues(r.gauge).Dec()
		r.gauge = ""
	}
}

// drop deletes the channel state we published, unless someone wrote it
// since, and stops counting it in metrics.
func (r *reporter) drop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clearGaugeLocked()
	if r.stRev != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), kvTimeout)
		defer cancel()
		if err := r.kv.Delete(ctx, r.key, jetstream.LastRevision(r.stRev)); err != nil {
			r.log.Debug("delete channel state", "err", err)
		}
	}
	r.stRev = 0
	r.st = livestate.Channel{}
}

// startSession says a session of kind is open: the channel is active, and
// its time counts from now.
func (r *reporter) startSession(kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	r.st.Kind = kind
	r.sessStart, r.lastAcct = now, now
	r.setStateLocked(livestate.StateActive, "")
}

// endSession stops counting session time.
func (r *reporter) endSession() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accountLocked(time.Now())
	r.sessStart = time.Time{}
}

// accountLocked adds the running session's time since the last call to the
// channel's total and to metrics.SessionSeconds.
func (r *reporter) accountLocked(now time.Time) {
	if r.sessStart.IsZero() {
		return
	}
	d := now.Sub(r.lastAcct).Seconds()
	if d <= 0 {
		return
	}
	r.seconds += d
	r.lastAcct = now
	metrics.SessionSeconds.WithLabelValues(r.engine, r.st.Kind).Add(d)
}
