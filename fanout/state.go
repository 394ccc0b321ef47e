package fanout

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/internal/wire"
)

// watchState follows the channel's translator state and the room's speaker
// in the state bucket, and tells listeners when what they see changes. It
// runs while the channel has listeners; NATS trouble restarts the watch.
func (c *channel) watchState(ctx context.Context) {
	log := c.h.s.log.With("room", c.key.room, "lang", c.key.lang)
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		// WatchFiltered prefixes the keys in place: a fresh slice each time.
		keys := []string{subject.SpeakerKey(c.key.room)}
		if !c.floor {
			keys = append(keys, subject.ChannelKey(c.key.room, c.key.lang))
		}
		// ctx also bounds the watch's subscription: nats.go drops it when
		// ctx ends.
		w, err := c.h.s.o.State.WatchFiltered(ctx, keys)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("state watch failed; retrying", "err", err, "in", backoff)
		} else {
			c.followState(ctx, w)
			_ = w.Stop()
			backoff = 500 * time.Millisecond // it worked: the next trouble starts afresh
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
			backoff = min(backoff*2, 10*time.Second)
		}
	}
}

func (c *channel) followState(ctx context.Context, w jetstream.KeyWatcher) {
	var (
		speaker bool
		ch      *subject.ChannelState
		initial = true
	)
	speakerKey := subject.SpeakerKey(c.key.room)
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e != nil {
				present := e.Operation() == jetstream.KeyValuePut
				if e.Key() == speakerKey {
					speaker = present
				} else {
					ch = nil
					if present {
						var cs subject.ChannelState
						if json.Unmarshal(e.Value(), &cs) == nil {
							ch = &cs
						}
					}
				}
				if initial {
					continue // wait for the end of the current values
				}
			}
			initial = false
			c.setState(c.viewState(speaker, ch))
		}
	}
}

// viewState is what listeners of the channel are told: for the floor, live
// when the speaker is connected; for a translated channel, its translator's
// state (idle when no translator has written one).
func (c *channel) viewState(speaker bool, ch *subject.ChannelState) wire.State {
	m := wire.State{Type: wire.TypeState, Lang: c.key.lang, State: subject.StateIdle, Speaker: speaker}
	switch {
	case c.floor:
		if speaker {
			m.State = subject.StateActive
		}
	case ch != nil:
		m.State, m.Message = ch.State, ch.Error
		if m.State == "" {
			m.State = subject.StateIdle
		}
	}
	return m
}

// setState records the state and sends it to listeners if it changed (the
// translator rewrites its key every few seconds with the same state).
func (c *channel) setState(m wire.State) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.stateKnown && c.state == m {
		return
	}
	c.state, c.stateKnown = m, true
	f := textFrame(m)
	for _, l := range *c.listeners.Load() {
		c.sendState(l, m, f)
	}
}

// sendState pushes state m (encoded as f) to l unless l has it already: a
// listener joining while the watch starts must not be told twice. Called
// with c.stateMu held.
func (c *channel) sendState(l *listener, m wire.State, f *frame) {
	if l.stateSent && l.state == m {
		return
	}
	l.state, l.stateSent = m, true
	l.pushText(f)
}
