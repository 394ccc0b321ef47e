package fanout

import (
	"context"

	"github.com/babelcast/babelcast/internal/booth"
	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/wire"
)

// watchState follows the channel's translator state and the room's mics
// in the state bucket, and tells listeners when what they see changes. It
// runs while the channel has listeners.
func (c *channel) watchState(ctx context.Context) {
	keys := []string{livestate.RoomMics(c.key.room)}
	if !c.floor {
		keys = append(keys, livestate.ChannelKey(c.key.room, c.key.lang))
	}
	rs := livestate.NewRoomState(c.key.room)
	for u := range livestate.Watch(ctx, c.h.s.o.State, livestate.WatchOptions{
		Keys: keys, Log: c.h.s.log.With("room", c.key.room, "lang", c.key.lang), What: "state watch",
	}) {
		rs.Apply(u)
		c.setState(c.viewState(rs))
	}
}

// viewState is what listeners of the channel are told: for the floor,
// active while a mic is connected; for a language, active while a mic
// speaks it (they hear the original), else its translator's state (idle
// when no translator has written one).
func (c *channel) viewState(rs *livestate.RoomState) wire.State {
	m := wire.State{Type: wire.TypeState, Lang: c.key.lang, State: livestate.StateIdle, Speaker: rs.Speaking()}
	ls := rs.Language(c.key.lang)
	switch {
	case c.floor:
		if rs.Speaking() {
			m.State = livestate.StateActive
		}
	case c.speaksOwn(rs) && ls.State != livestate.StateActive:
		m.State, m.Message = livestate.StateActive, ls.Error
	default:
		m.State, m.Message = ls.State, ls.Error
	}
	return m
}

// speaksOwn reports whether a mic of the room speaks the channel's
// language.
func (c *channel) speaksOwn(rs *livestate.RoomState) bool {
	for _, m := range rs.Mics {
		spoken := m.Language
		if spoken == "" {
			spoken = c.unsaid
		}
		if spoken == c.key.lang {
			return true
		}
	}
	return false
}

// setState records the state and sends it to listeners if it changed (the
// translator rewrites its key every few seconds with the same state).
func (c *channel) setState(m wire.State) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if !c.floor {
		if c.voice == "" {
			c.voice = booth.AI
		}
		m.Voice = c.voice
	}
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
