package fanout

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/booth"
	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/internal/wire"
)

// Counters of this role, resolved once (label lookups cost more than the
// increments on the per-frame paths).
var (
	framesIn    = metrics.FramesIn.WithLabelValues("fanout")
	framesOut   = metrics.FramesOut.WithLabelValues("fanout")
	droppedSlow = metrics.FramesDropped.WithLabelValues("fanout", "slow_listener")
	oddAudio    = metrics.Errors.WithLabelValues("fanout", "odd_audio")
	badCaption  = metrics.Errors.WithLabelValues("fanout", "bad_caption")
)

// Errors of hub.join.
var (
	errShuttingDown = errors.New("server shutting down")
	errRoomGone     = errors.New("room deleted")
	errLangGone     = errors.New("language removed")
	errPasscode     = errors.New("passcode changed")
)

// captionSwitchAfter is how long the floor's chosen source-caption stream
// must be silent before another translator's may take over.
const captionSwitchAfter = 5 * time.Second

// maxCaptionBytes bounds a caption message we pass on.
const maxCaptionBytes = 64 << 10

type chanKey struct{ room, lang string }

// hub holds this node's channels: for each channel somebody listens to,
// one subscription to the room's mics, one to the channel's interpretation
// and its captions, one to what the translators heard (source captions),
// and the program that composes them (program.go).
type hub struct {
	s *Server

	mu       sync.Mutex
	channels map[chanKey]*channel
	gone     map[string]time.Time  // rooms deleted lately, so a late join fails
	rooms    map[string]*room.Room // rooms as last seen by the watch
	revs     map[string]uint64     // their revisions
	closed   bool                  // shutting down: no new listeners
	conns    sync.WaitGroup        // joined listeners' handlers
	bg       sync.WaitGroup        // channels' state watches

	subs atomic.Int64 // NATS subscriptions held, for tests and metrics
}

func newHub(s *Server) *hub {
	return &hub{s: s, channels: map[chanKey]*channel{}, gone: map[string]time.Time{},
		rooms: map[string]*room.Room{}, revs: map[string]uint64{}}
}

// channel is one (room, language) somebody listens to on this node; lang
// wire.Floor is the floor itself.
type channel struct {
	h     *hub
	key   chanKey
	floor bool
	// unsaid is the room's source language: what a mic that does not say
	// its language speaks.
	unsaid string

	// listeners is replaced (copy on write) under hub.mu and read
	// lock-free by the NATS callbacks.
	listeners atomic.Pointer[[]*listener]
	counts    map[string]int // listeners by transport; under hub.mu

	prog    *program
	opus    opusStage // the program's goroutine only (deliver)
	subs    []*nats.Subscription
	silence *frame        // a tick of silence: the length of a continuous stream's frames
	ready   chan struct{} // closed once NATS has confirmed the subscriptions
	stop    context.CancelFunc

	stateMu    sync.Mutex
	state      wire.State
	stateKnown bool
	voice      string // booth.Human or booth.AI (voice.go)

	// The channel's caption lines, numbered for its listeners.
	lines captionLines
}

// join adds l to its channel, subscribing the channel if l is its first
// listener, and returns once the subscriptions are live (so no frame
// published after join returns is missed). The caller must call leave.
func (h *hub) join(ctx context.Context, l *listener) error {
	k := chanKey{l.room, l.lang}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errShuttingDown
	}
	if _, ok := h.gone[l.room]; ok {
		h.mu.Unlock()
		return errRoomGone
	}
	// The room may have changed between the handshake's lookup and now;
	// if the watch is behind the handshake instead, the handshake's check
	// stands, and roomChanged checks again when the watch catches up.
	if r := h.rooms[l.room]; r != nil && h.revs[l.room] > l.admittedAt {
		if !serves(r, l.lang, l.floor) {
			h.mu.Unlock()
			return errLangGone
		}
		if !r.AdmitsListener(l.passcode, l.key) {
			h.mu.Unlock()
			return errPasscode
		}
	}
	c := h.channels[k]
	created := false
	if c == nil {
		var err error
		if c, err = h.openChannel(k, l.floor, l.unsaid); err != nil {
			h.mu.Unlock()
			return err
		}
		created = true
	}
	old := *c.listeners.Load()
	next := make([]*listener, len(old), len(old)+1)
	copy(next, old)
	next = append(next, l)
	c.listeners.Store(&next)
	l.joined = true
	c.counts[l.transport]++
	metrics.Listeners.WithLabelValues(k.room, k.lang, l.transport).Inc()
	h.s.presence.set(k.room, k.lang, len(next))
	h.conns.Add(1)
	h.mu.Unlock()

	if created {
		if err := h.s.o.NC.FlushTimeout(5 * time.Second); err != nil {
			h.s.log.Warn("NATS flush after subscribe", "room", k.room, "lang", k.lang, "err", err)
		}
		close(c.ready)
	} else {
		select {
		case <-c.ready:
		case <-ctx.Done():
		}
	}
	// The current state, if known; otherwise it comes when the watch has it.
	c.stateMu.Lock()
	if c.stateKnown {
		c.sendState(l, c.state, textFrame(c.state))
	}
	c.stateMu.Unlock()
	return nil
}

// openChannel subscribes a new channel and starts its program. Called with
// h.mu held.
func (h *hub) openChannel(k chanKey, floor bool, unsaid string) (*channel, error) {
	c := &channel{h: h, key: k, floor: floor, unsaid: unsaid, counts: map[string]int{}, ready: make(chan struct{}),
		prog: newProgram(k.lang, floor)}
	c.silence = &frame{data: make([]byte, audio.DurationBytes(c.prog.tick)), audio: true}
	empty := []*listener{}
	c.listeners.Store(&empty)
	subscribe := func(subj string, cb nats.MsgHandler) error {
		sub, err := h.s.o.NC.Subscribe(subj, cb)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
		// Audio is small and steady; let a burst wait rather than be
		// dropped by the client library before the hub sees it.
		_ = sub.SetPendingLimits(8192, 64<<20)
		c.subs = append(c.subs, sub)
		return nil
	}
	in := &programInput{prog: c.prog, unsaid: unsaid, count: true}
	err := in.subscribe(k.room, k.lang, floor, subscribe)
	if err == nil {
		err = subscribe(subject.SourceCaptions(k.room), c.onSourceCaption)
	}
	if err == nil && !floor {
		err = subscribe(subject.Caption(k.room, k.lang), c.onCaption)
	}
	if err != nil {
		for _, sub := range c.subs {
			_ = sub.Unsubscribe()
		}
		return nil, err
	}
	h.subs.Add(int64(len(c.subs)))
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	h.channels[k] = c
	h.bg.Add(2)
	go func() {
		defer h.bg.Done()
		c.watchState(ctx)
	}()
	go func() {
		defer h.bg.Done()
		c.prog.run(ctx, c.deliver)
	}()
	h.s.log.Debug("channel subscribed", "room", k.room, "lang", k.lang)
	return c, nil
}

// leave removes l from its channel, unsubscribing the channel when l was
// its last listener. It is idempotent.
func (h *hub) leave(l *listener) {
	k := chanKey{l.room, l.lang}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !l.joined {
		return
	}
	l.joined = false
	defer h.conns.Done()
	c := h.channels[k]
	if c == nil {
		return
	}
	old := *c.listeners.Load()
	next := make([]*listener, 0, len(old))
	for _, x := range old {
		if x != l {
			next = append(next, x)
		}
	}
	c.listeners.Store(&next)
	c.counts[l.transport]--
	if c.counts[l.transport] <= 0 {
		delete(c.counts, l.transport)
		metrics.Listeners.DeleteLabelValues(k.room, k.lang, l.transport)
	} else {
		metrics.Listeners.WithLabelValues(k.room, k.lang, l.transport).Dec()
	}
	h.s.presence.set(k.room, k.lang, len(next))
	if len(next) == 0 {
		c.close()
		delete(h.channels, k)
		h.s.log.Debug("channel unsubscribed", "room", k.room, "lang", k.lang)
	}
}

// close drops the channel's subscriptions, state watch and program.
func (c *channel) close() {
	for _, sub := range c.subs {
		_ = sub.Unsubscribe()
	}
	c.h.subs.Add(-int64(len(c.subs)))
	c.stop()
}

// subscriptions is how many NATS subscriptions the hub holds.
func (h *hub) subscriptions() int { return int(h.subs.Load()) }

// listenerCount is how many listeners channel (roomID, lang) has here.
func (h *hub) listenerCount(roomID, lang string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.channels[chanKey{roomID, lang}]; c != nil {
		return len(*c.listeners.Load())
	}
	return 0
}

// deliver hands one tick of the program to every listener: prepared (and
// encoded, for Opus: opus.go) once per variant and transport, queued
// everywhere, never waiting for anyone.
// The WebSocket gets the audio there is; a continuous stream (WAV) gets a
// whole tick, silence where there is no audio.
func (c *channel) deliver(pf programFrame) {
	c.setVoice(pf.voice)
	ls := *c.listeners.Load()
	if len(ls) == 0 {
		return
	}
	var prepared [2][2]*frame // [passthrough][continuous]
	get := func(passthrough, continuous bool) *frame {
		i, j := b2i(passthrough), b2i(continuous)
		if f := prepared[i][j]; f != nil {
			return f
		}
		pcm, captured := pf.full, pf.captured
		if !passthrough {
			pcm, captured = pf.alone, pf.aloneAt
		}
		var f *frame
		switch {
		case continuous && len(pcm) < len(c.silence.data):
			padded := make([]byte, len(c.silence.data))
			copy(padded, pcm)
			f = &frame{data: padded, audio: true, captured: captured}
		case len(pcm) > 0:
			f = &frame{hdr: wsHeader(opBinary, len(pcm)), data: pcm, audio: true, captured: captured}
		}
		prepared[i][j] = f
		return f
	}
	now := time.Now()
	var op opusTick
	for _, l := range ls {
		if l.codec != codecPCM {
			c.deliverOpus(&op, pf, l, now)
			continue
		}
		if f := get(l.passthrough, !l.text); f != nil {
			l.pushAudio(f, now)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// onCaption passes a line of the channel's interpretation on, re-encoded
// so listeners only ever get well-formed messages in their channel's
// language.
func (c *channel) onCaption(m *nats.Msg) {
	cm, ok := readCaption(m)
	if !ok {
		return
	}
	cm.Type, cm.Lang, cm.Source = wire.TypeCaption, c.key.lang, false
	cm.Segment = c.lines.interpretation(cm.Segment)
	c.broadcastText(textFrame(cm))
}

// onSourceCaption passes on what the room's translators heard said, where
// this channel carries it in the original: every language on the floor,
// the channel's own language elsewhere. Several translators hear the same
// speech; one of them at a time is followed (floorSegment).
func (c *channel) onSourceCaption(m *nats.Msg) {
	cm, ok := readCaption(m)
	if !ok {
		return
	}
	spoken := spokenIn(cm, c.unsaid)
	if !c.prog.plays(spoken) && !c.voiceIs(booth.Human) {
		return // the interpretation's own lines say it; an interpreter's have none
	}
	from := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	seg, ok := c.lines.original(from, cm.Segment, time.Now())
	if !ok {
		return
	}
	cm.Type, cm.Lang, cm.Segment, cm.Source, cm.SourceLanguage = wire.TypeCaption, spoken, seg, true, spoken
	c.broadcastText(textFrame(cm))
}

// spokenIn is the language a source caption's words were said in: its
// source_language, or the room's source language (unsaid) where it says
// none.
func spokenIn(cm wire.Caption, unsaid string) string {
	return cmp.Or(cm.SourceLanguage, unsaid)
}

// readCaption decodes a caption from NATS, counting what it cannot read.
func readCaption(m *nats.Msg) (wire.Caption, bool) {
	var cm wire.Caption
	if len(m.Data) > maxCaptionBytes || json.Unmarshal(m.Data, &cm) != nil {
		badCaption.Inc()
		return cm, false
	}
	return cm, true
}

// captionLines numbers a channel's caption lines for its listeners. The
// interpretation's lines and the original's share one sequence, so a line
// of one never replaces a line of the other. Several translators hear the
// same original speech: the channel follows the first one heard, and
// switches when that one has been silent for captionSwitchAfter.
type captionLines struct {
	mu     sync.Mutex
	next   uint64
	source string    // the translator whose source captions are followed
	last   time.Time // when it last said something
	segs   map[lineKey]uint64
}

// lineKey is a line as its publisher numbered it.
type lineKey struct {
	original bool
	seg      uint64
}

// interpretation numbers a line of the channel's interpretation.
func (cl *captionLines) interpretation(seg uint64) uint64 {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.number(lineKey{false, seg})
}

// original decides whether to pass on a source caption from channel
// from's translator, and numbers it.
func (cl *captionLines) original(from string, seg uint64, now time.Time) (uint64, bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if from != cl.source {
		if cl.source != "" && now.Sub(cl.last) < captionSwitchAfter {
			return 0, false
		}
		cl.source = from
		for k := range cl.segs {
			if k.original {
				delete(cl.segs, k) // the old translator's numbering
			}
		}
	}
	cl.last = now
	return cl.number(lineKey{true, seg}), true
}

func (cl *captionLines) number(k lineKey) uint64 {
	if cl.segs == nil {
		cl.segs = map[lineKey]uint64{}
	}
	ours, ok := cl.segs[k]
	if !ok {
		cl.next++
		ours = cl.next
		if len(cl.segs) > 1000 { // bound the memory: old lines are done
			clear(cl.segs)
		}
		cl.segs[k] = ours
	}
	// A final line stays mapped: a publisher may finalize a line twice
	// (the second time with its full stop).
	return ours
}

func (c *channel) broadcastText(f *frame) {
	for _, l := range *c.listeners.Load() {
		l.pushText(f)
	}
}

// textFrame encodes a text message for listeners.
func textFrame(v any) *frame {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own message types are encoded
	}
	return &frame{hdr: wsHeader(opText, len(b)), data: b}
}

// roomDeleted closes every listener of the room with 4404.
func (h *hub) roomDeleted(id string) {
	h.mu.Lock()
	delete(h.rooms, id)
	delete(h.revs, id)
	h.gone[id] = time.Now()
	for k, t := range h.gone { // forget old tombstones
		if time.Since(t) > time.Minute {
			delete(h.gone, k)
		}
	}
	var victims []*listener
	for k, c := range h.channels {
		if k.room == id {
			victims = append(victims, *c.listeners.Load()...)
		}
	}
	h.mu.Unlock()
	for _, l := range victims {
		l.close(wire.CloseRoomGone, "room deleted")
	}
	if len(victims) > 0 {
		h.s.log.Info("room deleted; listeners closed", "room", id, "listeners", len(victims))
	}
}

// isClosed reports whether the hub is shutting down (no new listeners).
func (h *hub) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// watched is room id as the rooms watch last saw it, if it did.
func (h *hub) watched(id string) (*room.Room, uint64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[id]
	return r, h.revs[id], r != nil
}

// roomChanged records room r at revision rev and closes the listeners of
// languages it no longer serves, and those whose passcode (or key) it no
// longer accepts.
func (h *hub) roomChanged(r *room.Room, rev uint64) {
	h.mu.Lock()
	delete(h.gone, r.ID)
	h.rooms[r.ID] = r
	h.revs[r.ID] = rev
	var langGone, locked []*listener
	for k, c := range h.channels {
		if k.room != r.ID {
			continue
		}
		for _, l := range *c.listeners.Load() {
			switch {
			case !serves(r, k.lang, c.floor):
				langGone = append(langGone, l)
			case !r.AdmitsListener(l.passcode, l.key):
				// A new passcode locks out those who came in without it
				// (a new speaker key those who came in with the old one).
				locked = append(locked, l)
			}
		}
	}
	h.mu.Unlock()
	for _, l := range langGone {
		l.close(wire.CloseRoomGone, "language removed")
	}
	for _, l := range locked {
		l.close(wire.ClosePasscodeChanged, "passcode changed")
	}
	if len(langGone) > 0 {
		h.s.log.Info("languages removed; listeners closed", "room", r.ID, "listeners", len(langGone))
	}
	if len(locked) > 0 {
		h.s.log.Info("passcode changed; listeners without it closed", "room", r.ID, "listeners", len(locked))
	}
}

// serves reports whether room r still has channel lang: the floor always,
// a language while the room has it.
func serves(r *room.Room, lang string, floor bool) bool {
	return floor || r.Serves(lang)
}

// shutdown refuses new listeners, closes every listener with 1001 and waits
// (up to grace) for their connections to end.
func (h *hub) shutdown(grace time.Duration) {
	h.mu.Lock()
	h.closed = true
	var all []*listener
	for _, c := range h.channels {
		all = append(all, *c.listeners.Load()...)
	}
	h.mu.Unlock()
	for _, l := range all {
		l.close(wire.CloseShutdown, "server shutting down")
	}
	done := make(chan struct{})
	go func() {
		h.conns.Wait()
		h.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		// Writers give up after WriteTimeout, so this only happens if
		// grace is shorter; the waiter goroutine ends with them.
		h.s.log.Warn("listeners still closing after shutdown grace", "grace", grace)
	}
}
