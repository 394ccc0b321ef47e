package translate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/kvlease"
	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/translate/engine"
)

// Options configure a Worker.
type Options struct {
	NC     *nats.Conn
	Rooms  *room.Store
	State  jetstream.KeyValue // livestate.Bucket
	Leases jetstream.KeyValue // subject.BucketLeases
	Engine engine.Engine
	// Node names this process among the translator nodes; it must be a
	// single NATS subject token (no dots, spaces or wildcards).
	Node string
	Log  *slog.Logger
	// Linger keeps a session open this long after its speaker left or its
	// last listener did, so a reconnect does not pay for a new session.
	// Zero means 30 s; negative means no linger.
	Linger time.Duration
	// MaxSessions caps the sessions running across the whole cluster
	// (starting or active); 0 means no cap.
	MaxSessions int
	// CloseTimeout bounds closing a session, which waits for the
	// translation of audio already sent. Zero means 10 s.
	CloseTimeout time.Duration
}

// Worker runs the translate role on one node: it decides which channels
// (room, target language) need a session, competes with the other
// translator nodes for them through leases, and runs the sessions it owns.
type Worker struct {
	nc           *nats.Conn
	rooms        *room.Store
	state        jetstream.KeyValue
	leases       jetstream.KeyValue
	engine       engine.Engine
	caps         engine.Capabilities
	node         string
	log          *slog.Logger
	linger       time.Duration
	maxSessions  int
	closeTimeout time.Duration
	tick         time.Duration // reconcile period: linger timeouts, lease retries
	renewEvery   time.Duration // lease renewal period

	feeds    *feeds
	view     *clusterView
	fails    *failures
	registry *kvlease.Refresher // this node's engine.<node> entry

	// Owned by Run's goroutine.
	runCtx    context.Context
	roomsByID map[string]*room.Room
	live      *livestate.RoomStates // speakers and listeners of every room
	lastWant  map[string]time.Time  // lease key → when the channel was last wanted outright
	runners   map[string]*channel   // channels this node wants
	stopping  map[string]*channel   // channels closing down
	exited    chan *channel
	quit      chan struct{}
	wg        sync.WaitGroup // the channels' goroutines and the engine entry's refresh

	ready chan struct{} // closed by Run once the node is registered and knows the cluster
}

// New checks the options and makes a Worker; Run starts it.
func New(o Options) (*Worker, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	switch {
	case o.Linger == 0:
		o.Linger = 30 * time.Second
	case o.Linger < 0:
		o.Linger = 0
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 10 * time.Second
	}
	w := &Worker{
		nc: o.NC, rooms: o.Rooms, state: o.State, leases: o.Leases, engine: o.Engine,
		node: o.Node, log: o.Log, linger: o.Linger,
		maxSessions: o.MaxSessions, closeTimeout: o.CloseTimeout,
		tick: time.Second, renewEvery: time.Second,
		feeds:     newFeeds(o.NC),
		view:      newClusterView(),
		fails:     newFailures(),
		roomsByID: map[string]*room.Room{},
		live:      livestate.NewRoomStates(),
		lastWant:  map[string]time.Time{},
		runners:   map[string]*channel{},
		stopping:  map[string]*channel{},
		exited:    make(chan *channel),
		quit:      make(chan struct{}),
		ready:     make(chan struct{}),
	}
	w.registry = kvlease.NewRefresher(kvlease.RefresherOptions{
		KV: o.State, Every: livestate.Refresh, Log: o.Log, What: "engine info",
	})
	if err := w.check(); err != nil {
		return nil, err
	}
	w.caps = o.Engine.Capabilities()
	return w, nil
}

func (w *Worker) check() error {
	switch {
	case w.nc == nil || w.rooms == nil || w.state == nil || w.leases == nil:
		return errors.New("translate: NATS connection, room store and KV buckets are required")
	case w.engine == nil:
		return errors.New("translate: an engine is required")
	case w.node == "" || strings.ContainsAny(w.node, ". \t\r\n*>"):
		return fmt.Errorf("translate: node id %q must be one NATS subject token", w.node)
	case w.maxSessions < 0:
		return errors.New("translate: MaxSessions must not be negative")
	}
	return nil
}

// Run does the role's work until ctx ends, then closes every session
// (flushing translations in flight), releases its leases and deletes its
// state, and returns. It returns an error only if it cannot start: its
// watches of the KV buckets ride out NATS trouble.
func (w *Worker) Run(ctx context.Context) error {
	if w.runCtx != nil {
		return errors.New("translate: Run called twice")
	}
	w.runCtx = ctx
	w.log.Info("translator ready", "engine", w.engine.Name(),
		"sources", langList(w.caps.Sources), "targets", langList(w.caps.Targets),
		"max_sessions", w.maxSessions, "linger", w.linger)
	// Answer "alive" probes while Run runs: a node waiting for one of
	// our channels frees its lease at once when we are gone (see
	// leaseOwner.holderGone). A killed process takes this with it.
	alive, err := w.nc.Subscribe(subject.TranslatorAlive(w.node), func(m *nats.Msg) { _ = m.Respond(nil) })
	if err != nil {
		return fmt.Errorf("translate: subscribe to alive probes: %w", err)
	}
	defer func() { _ = alive.Unsubscribe() }()
	if err := w.nc.Flush(); err != nil {
		return fmt.Errorf("translate: subscribe to alive probes: %w", err)
	}
	info := livestate.Engine{Engine: w.engine.Name(), Sources: w.caps.Sources, Targets: w.caps.Targets}
	if err := w.registry.Put(ctx, livestate.EngineKey(w.node), livestate.Encode(info)); err != nil && ctx.Err() == nil {
		w.log.Warn("cannot publish engine info", "err", err)
	}
	w.wg.Add(1)
	go func() { defer w.wg.Done(); w.registry.Run(ctx) }()

	rooms := livestate.WatchRooms(ctx, w.rooms, w.log)
	states := livestate.Watch(ctx, w.state, livestate.WatchOptions{Log: w.log, What: "state watch"})
	leases := livestate.Watch(ctx, w.leases, livestate.WatchOptions{Log: w.log, What: "lease watch"})
	unseen := 2 // watches yet to deliver what is there: ready after
	seen := func(u livestate.Update) {
		if u.Reset && unseen > 0 {
			if unseen--; unseen == 0 {
				close(w.ready)
			}
		}
	}
	tick := time.NewTicker(w.tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			w.shutdown()
			return nil
		case ev, ok := <-rooms:
			if ok {
				w.onRoom(ev)
			}
		case u, ok := <-states:
			if ok {
				w.onState(u)
				seen(u)
			}
		case u, ok := <-leases:
			if ok {
				w.onLease(u)
				seen(u)
			}
		case c := <-w.exited:
			if w.stopping[c.key] == c {
				delete(w.stopping, c.key)
			}
		case <-tick.C:
		}
		if ctx.Err() == nil {
			w.reconcile(time.Now())
		}
	}
}

// shutdown stops every channel, waits for them to close their sessions
// (and the engine entry's refresh to stop), and deletes this node's engine
// entry.
func (w *Worker) shutdown() {
	close(w.quit)
	for _, c := range w.runners {
		c.cancel()
	}
	for _, c := range w.stopping {
		c.cancel()
	}
	w.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), kvTimeout)
	defer cancel()
	if err := w.registry.Clear(ctx); err != nil {
		w.log.Debug("delete engine info", "err", err)
	}
	w.log.Info("translator stopped")
}

// Ready is closed once Run has registered this node's engine in the State
// bucket (so the API checks new rooms' languages against it) and knows
// the state and lease entries of the cluster.
func (w *Worker) Ready() <-chan struct{} { return w.ready }

func (w *Worker) onRoom(ev room.Event) {
	w.markLive(time.Now())
	if ev.Room == nil {
		delete(w.roomsByID, ev.ID)
		w.fails.forgetRoom(ev.ID)
		return
	}
	w.roomsByID[ev.ID] = ev.Room
}

// onState takes an update of the State bucket: speakers and listeners of
// every room (what decides which channels are wanted), and every
// channel's state (what the session cap counts).
func (w *Worker) onState(u livestate.Update) {
	w.markLive(time.Now())
	w.live.Apply(u)
	var present map[string]bool // after a restart: the channels that are there
	if u.Reset {
		present = map[string]bool{}
	}
	for _, e := range u.Entries {
		if k, ok := livestate.ParseKey(e.Key); ok && k.Kind == livestate.KindChannel {
			key := subject.LeaseKey(k.Room, k.Lang)
			st, readable := livestate.Decode[livestate.Channel](e.Value)
			w.view.setChannel(key, st, !readable, e.Revision)
			if present != nil {
				present[key] = true
			}
		}
		w.view.applied(e.Revision)
	}
	if present != nil {
		w.view.keepChannels(present)
	}
	// Session counts may have changed: channels waiting under the cap or
	// for a fair turn may go now.
	for _, c := range w.runners {
		c.poke()
	}
}

func (w *Worker) onLease(u livestate.Update) {
	for _, key := range w.view.applyLeases(u) {
		if c := w.runners[key]; c != nil {
			c.poke()
		}
	}
}

// reconcile starts channels that are wanted and stops those no longer
// wanted. A channel is wanted while its room has the language, this node's
// engine serves it, and it was "live" (a mic speaks a language the channel
// must interpret, and the channel has listeners or is always_on) within the
// last Linger.
func (w *Worker) reconcile(now time.Time) {
	w.markLive(now)
	wanted := map[string]chanConfig{}
	for id, r := range w.roomsByID {
		for _, l := range channels(r) {
			if !room.Covers(w.caps.Targets, l.Code) {
				continue
			}
			key := subject.LeaseKey(id, l.Code)
			if t, ok := w.lastWant[key]; ok && now.Sub(t) <= w.linger {
				wanted[key] = w.configFor(r, l)
			}
		}
	}
	for key := range w.lastWant {
		if _, ok := wanted[key]; !ok {
			delete(w.lastWant, key)
		}
	}
	for key, c := range w.runners {
		if _, ok := wanted[key]; ok {
			continue
		}
		c.log.Info("closing channel: " + w.whyUnwanted(c))
		c.cancel()
		delete(w.runners, key)
		w.stopping[key] = c
	}
	for key, cfg := range wanted {
		if c := w.runners[key]; c != nil {
			c.settings.set(cfg)
			continue
		}
		if w.stopping[key] != nil {
			continue // started again once the old one has closed
		}
		w.start(cfg)
	}
}

// markLive notes the channels that are live now: speaker connected, and
// listeners, always_on, or a recorded room (its record needs every
// channel, listened to or not). It runs before every change is applied (and in
// every reconcile), so a channel's linger counts from the moment it stopped
// being live (its last listener or its speaker left), not from the
// reconcile before that.
func (w *Worker) markLive(now time.Time) {
	for id, r := range w.roomsByID {
		live := w.live.Get(id)
		for _, l := range channels(r) {
			if room.Covers(w.caps.Targets, l.Code) && w.mustInterpret(r, live, l.Code) &&
				(l.AlwaysOn || r.Record || live.Listeners(l.Code) > 0) {
				w.lastWant[subject.LeaseKey(id, l.Code)] = now
			}
		}
	}
}

// mustInterpret reports whether a mic of the room speaks a language other
// than lang that this node's engine understands: speech channel lang's
// listeners cannot hear in the original.
func (w *Worker) mustInterpret(r *room.Room, live *livestate.RoomState, lang string) bool {
	for _, m := range live.Mics {
		spoken := m.Language
		if spoken == "" {
			spoken = r.SourceLanguage
		}
		if spoken != lang && room.Covers(w.caps.Sources, spoken) {
			return true
		}
	}
	return false
}

// channels are the room's languages that are channels: every language,
// the source language first (its channel interprets whatever the floor
// says in the others).
func channels(r *room.Room) []room.Language {
	src := room.Language{Code: r.SourceLanguage}
	for _, l := range r.Languages {
		if l.Code == r.SourceLanguage {
			src = l
		}
	}
	out := []room.Language{src}
	for _, l := range r.Languages {
		if l.Code != r.SourceLanguage {
			out = append(out, l)
		}
	}
	return out
}

func (w *Worker) whyUnwanted(c *channel) string {
	r := w.roomsByID[c.room]
	switch {
	case r == nil:
		return "room deleted"
	case !hasLang(r, c.lang):
		return "language removed"
	case !w.live.Get(c.room).Speaking():
		return "speaker gone"
	case !w.mustInterpret(r, w.live.Get(c.room), c.lang):
		return "nothing to interpret: every mic speaks the channel's language"
	default:
		return "no listeners"
	}
}

func (w *Worker) start(cfg chanConfig) {
	c := w.newChannel(cfg)
	ctx, cancel := context.WithCancel(w.runCtx)
	c.cancel = cancel
	w.runners[c.key] = c
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer cancel()
		c.run(ctx)
		select {
		case w.exited <- c:
		case <-w.quit:
		}
	}()
}

func hasLang(r *room.Room, code string) bool {
	return r.Serves(code)
}

// configFor is the configuration of channel l of room r: it interprets
// into l what is said in the room's other languages (those the engine
// understands), the source language above all.
func (w *Worker) configFor(r *room.Room, l room.Language) chanConfig {
	mode := l.Mode
	if mode == "" {
		mode = room.ModeAuto
	}
	src := r.SourceLanguage
	if src == l.Code {
		for _, c := range channels(r) {
			if c.Code != l.Code && room.Covers(w.caps.Sources, c.Code) {
				src = c.Code
				break
			}
		}
	}
	return chanConfig{
		ch: engine.Channel{
			Room: r.ID, RoomName: r.Name, Source: src, Target: l.Code,
			Voice: l.Voice, Mode: mode, Glossary: r.Glossary, Notes: r.Notes,
		},
		created:    r.CreatedAt,
		roomSource: r.SourceLanguage,
	}
}

func langList(list []string) string {
	if list == nil {
		return "any"
	}
	return strings.Join(list, ",")
}

// capacity is the session cap as this node applies it.
func (w *Worker) capacity() capacity {
	return capacity{view: w.view, node: w.node, max: w.maxSessions}
}
