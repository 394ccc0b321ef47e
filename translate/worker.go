package translate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/translate/engine"
)

// Options configure a Worker.
type Options struct {
	NC     *nats.Conn
	Rooms  *room.Store
	State  jetstream.KeyValue // subject.BucketState
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

	feeds *feeds
	view  clusterView

	failMu sync.Mutex
	failed map[string]failure // permanent failures by lease key

	// kill makes Run stop like a killed process: no session closed, no
	// lease released, no state deleted. Tests use it to check failover.
	kill atomic.Bool

	// Owned by Run's goroutine.
	runCtx    context.Context
	roomsByID map[string]*room.Room
	speakers  map[string]bool
	listeners map[string]map[string]int // lease key → fan-out node → listeners
	lastWant  map[string]time.Time      // lease key → when the channel was last wanted outright
	runners   map[string]*channel       // channels this node wants
	stopping  map[string]*channel       // channels closing down
	exited    chan *channel
	quit      chan struct{}
	wg        sync.WaitGroup

	ready chan struct{} // closed by Run once the node is registered and watching
}

// failure is a permanent session failure of a channel under a configuration.
type failure struct {
	cfg chanConfig
	msg string
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
		failed:    map[string]failure{},
		roomsByID: map[string]*room.Room{},
		speakers:  map[string]bool{},
		listeners: map[string]map[string]int{},
		lastWant:  map[string]time.Time{},
		runners:   map[string]*channel{},
		stopping:  map[string]*channel{},
		exited:    make(chan *channel),
		quit:      make(chan struct{}),
		ready:     make(chan struct{}),
	}
	w.view.leases = map[string]leaseInfo{}
	w.view.channels = map[string]viewChannel{}
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
// state, and returns. It returns an error only if it cannot start or its
// KV watches fail.
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
	// channel.holderGone). A killed process takes this with it.
	alive, err := w.nc.Subscribe(subject.TranslatorAlive(w.node), func(m *nats.Msg) { _ = m.Respond(nil) })
	if err != nil {
		return fmt.Errorf("translate: subscribe to alive probes: %w", err)
	}
	defer func() { _ = alive.Unsubscribe() }()
	if err := w.nc.Flush(); err != nil {
		return fmt.Errorf("translate: subscribe to alive probes: %w", err)
	}
	w.putEngine(ctx)

	roomEv, err := w.rooms.Watch(ctx)
	if err != nil {
		return err
	}
	stateW, err := w.state.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("translate: watch state: %w", err)
	}
	defer stateW.Stop()
	leaseW, err := w.leases.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("translate: watch leases: %w", err)
	}
	defer leaseW.Stop()
	close(w.ready)

	tick := time.NewTicker(w.tick)
	defer tick.Stop()
	engineTick := time.NewTicker(subject.StateRefresh)
	defer engineTick.Stop()

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case ev, ok := <-roomEv:
			if !ok {
				runErr = errors.New("translate: room watch stopped")
				break loop
			}
			w.onRoom(ev)
		case e, ok := <-stateW.Updates():
			if !ok {
				runErr = errors.New("translate: state watch stopped")
				break loop
			}
			if e != nil {
				w.onState(e)
			}
		case e, ok := <-leaseW.Updates():
			if !ok {
				runErr = errors.New("translate: lease watch stopped")
				break loop
			}
			if e != nil {
				w.onLease(e)
			}
		case c := <-w.exited:
			if w.stopping[c.key] == c {
				delete(w.stopping, c.key)
			}
		case <-tick.C:
		case <-engineTick.C:
			w.putEngine(ctx)
		}
		w.reconcile(time.Now())
	}
	if ctx.Err() != nil {
		runErr = nil
	}
	return w.shutdown(runErr)
}

// shutdown stops every channel and waits for them to close their sessions.
func (w *Worker) shutdown(runErr error) error {
	close(w.quit)
	for _, c := range w.runners {
		c.cancel()
	}
	for _, c := range w.stopping {
		c.cancel()
	}
	w.wg.Wait()
	if w.killed() {
		return runErr
	}
	ctx, cancel := context.WithTimeout(context.Background(), kvTimeout)
	defer cancel()
	if err := w.state.Delete(ctx, subject.EngineKey(w.node)); err != nil {
		w.log.Debug("delete engine info", "err", err)
	}
	w.log.Info("translator stopped")
	return runErr
}

// Ready is closed once Run has registered this node's engine in the State
// bucket (so the API checks new rooms' languages against it) and watches
// rooms, state and leases. It stays open if Run fails before that.
func (w *Worker) Ready() <-chan struct{} { return w.ready }

func (w *Worker) killed() bool { return w.kill.Load() }

// putEngine says in the State bucket what this node's engine can serve.
func (w *Worker) putEngine(ctx context.Context) {
	info := struct {
		Engine  string   `json:"engine"`
		Sources []string `json:"sources,omitempty"`
		Targets []string `json:"targets,omitempty"` // absent: any language
	}{w.engine.Name(), w.caps.Sources, w.caps.Targets}
	b, _ := json.Marshal(info)
	pctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	if _, err := w.state.Put(pctx, subject.EngineKey(w.node), b); err != nil && ctx.Err() == nil {
		w.log.Warn("cannot publish engine info", "err", err)
	}
}

func (w *Worker) onRoom(ev room.Event) {
	w.markLive(time.Now())
	if ev.Room == nil {
		delete(w.roomsByID, ev.ID)
		w.failMu.Lock()
		for key := range w.failed {
			if strings.HasPrefix(key, ev.ID+".") {
				delete(w.failed, key)
			}
		}
		w.failMu.Unlock()
		return
	}
	w.roomsByID[ev.ID] = ev.Room
}

func (w *Worker) onState(e jetstream.KeyValueEntry) {
	w.markLive(time.Now())
	gone := e.Operation() != jetstream.KeyValuePut
	kind, rest, _ := strings.Cut(e.Key(), ".")
	switch kind {
	case "speaker":
		if gone {
			delete(w.speakers, rest)
		} else {
			w.speakers[rest] = true
		}
	case "listeners":
		parts := strings.Split(rest, ".")
		if len(parts) != 3 {
			return
		}
		key, node := subject.LeaseKey(parts[0], parts[1]), parts[2]
		var lc subject.ListenerCount
		if !gone && json.Unmarshal(e.Value(), &lc) != nil {
			lc.Count = 0
		}
		byNode := w.listeners[key]
		if gone || lc.Count <= 0 {
			delete(byNode, node)
			if len(byNode) == 0 {
				delete(w.listeners, key)
			}
			return
		}
		if byNode == nil {
			byNode = map[string]int{}
			w.listeners[key] = byNode
		}
		byNode[node] = lc.Count
	case "channel":
		var st subject.ChannelState
		if !gone && json.Unmarshal(e.Value(), &st) != nil {
			gone = true
		}
		w.view.setChannel(rest, st, gone, e.Revision())
		// Session counts changed: channels waiting under the cap or for a
		// fair turn may go now.
		for _, c := range w.runners {
			c.poke()
		}
	}
	w.view.applied(e.Revision())
}

func (w *Worker) onLease(e jetstream.KeyValueEntry) {
	gone := e.Operation() != jetstream.KeyValuePut
	w.view.setLease(e.Key(), string(e.Value()), e.Revision(), gone)
	if c := w.runners[e.Key()]; c != nil && gone {
		c.poke()
	}
}

// reconcile starts channels that are wanted and stops those no longer
// wanted. A channel is wanted while its room has the language, this node's
// engine serves it, and it was "live" (speaker connected, and listeners or
// always_on) within the last Linger.
func (w *Worker) reconcile(now time.Time) {
	w.markLive(now)
	wanted := map[string]chanConfig{}
	for id, r := range w.roomsByID {
		for _, l := range r.Languages {
			if !w.serves(r.SourceLanguage, l.Code) {
				continue
			}
			key := subject.LeaseKey(id, l.Code)
			if t, ok := w.lastWant[key]; ok && now.Sub(t) <= w.linger {
				wanted[key] = configFor(r, l)
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
			c.setConfig(cfg)
			continue
		}
		if w.stopping[key] != nil {
			continue // started again once the old one has closed
		}
		w.start(cfg)
	}
}

// markLive notes the channels that are live now: speaker connected, and
// listeners or always_on. It runs before every change is applied (and in
// every reconcile), so a channel's linger counts from the moment it stopped
// being live (its last listener or its speaker left), not from the
// reconcile before that.
func (w *Worker) markLive(now time.Time) {
	for id, r := range w.roomsByID {
		if !w.speakers[id] {
			continue
		}
		for _, l := range r.Languages {
			key := subject.LeaseKey(id, l.Code)
			if w.serves(r.SourceLanguage, l.Code) && (l.AlwaysOn || len(w.listeners[key]) > 0) {
				w.lastWant[key] = now
			}
		}
	}
}

func (w *Worker) whyUnwanted(c *channel) string {
	r := w.roomsByID[c.room]
	switch {
	case r == nil:
		return "room deleted"
	case !hasLang(r, c.lang):
		return "language removed"
	case !w.speakers[c.room]:
		return "speaker gone"
	default:
		return "no listeners"
	}
}

func (w *Worker) start(cfg chanConfig) {
	c := newChannel(w, cfg)
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
	_, ok := r.Language(code)
	return ok
}

func configFor(r *room.Room, l room.Language) chanConfig {
	mode := l.Mode
	if mode == "" {
		mode = room.ModeAuto
	}
	return chanConfig{
		ch: engine.Channel{
			Room: r.ID, RoomName: r.Name, Source: r.SourceLanguage, Target: l.Code,
			Voice: l.Voice, Mode: mode, Glossary: r.Glossary, Notes: r.Notes,
		},
		created: r.CreatedAt,
	}
}

// serves reports whether this node's engine can interpret src into target.
func (w *Worker) serves(src, target string) bool {
	return langIn(w.caps.Sources, src) && langIn(w.caps.Targets, target)
}

// langIn reports whether code is in list (nil: any language), directly or
// by its base language ("pt" serves "pt-BR").
func langIn(list []string, code string) bool {
	if list == nil {
		return true
	}
	base := room.Base(code)
	for _, l := range list {
		if strings.EqualFold(l, code) || strings.EqualFold(l, base) {
			return true
		}
	}
	return false
}

func langList(list []string) string {
	if list == nil {
		return "any"
	}
	return strings.Join(list, ",")
}

func (w *Worker) failedWith(key string, cfg chanConfig) (string, bool) {
	w.failMu.Lock()
	defer w.failMu.Unlock()
	f, ok := w.failed[key]
	if !ok || !f.cfg.equal(cfg) {
		return "", false
	}
	return f.msg, true
}

func (w *Worker) setFailed(key string, cfg chanConfig, msg string) {
	w.failMu.Lock()
	defer w.failMu.Unlock()
	w.failed[key] = failure{cfg: cfg, msg: msg}
}

// overCap reports whether opening channel key would exceed MaxSessions.
// It is a first look, to avoid needless leases; capTaken is the rule.
func (w *Worker) overCap(key string) bool {
	return w.maxSessions > 0 && w.view.running("", key) >= w.maxSessions
}

// capTaken reports whether channel key, which went to "starting" at State
// revision rev, must give way under MaxSessions: whether MaxSessions other
// channels started running before it. Every node orders channels by the
// same revisions, so when several start at once the later ones give way
// and the cap holds across the cluster.
func (w *Worker) capTaken(ctx context.Context, key string, rev uint64) bool {
	if w.maxSessions <= 0 {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	w.view.caughtUp(cctx, rev) // if the watch lags, judge on what we know
	return w.view.runningBefore(key, w.view.entered(key, rev)) >= w.maxSessions
}

// fairDelay is how long to wait before competing for a free lease: nodes
// already running sessions wait longer, so channels spread over nodes.
func (w *Worker) fairDelay() time.Duration {
	n := min(w.view.running(w.node, ""), 10)
	return time.Duration(n)*50*time.Millisecond + rand.N(50*time.Millisecond)
}

// clusterView is what this node knows of every translator node: who holds
// which lease and the state of every channel. Run's goroutine writes it
// from KV watches; channels read it.
type clusterView struct {
	mu       sync.Mutex
	leases   map[string]leaseInfo
	channels map[string]viewChannel // by lease key
	rev      uint64                 // last State bucket revision applied
	moved    chan struct{}          // closed and replaced when rev moves
}

type leaseInfo struct {
	owner string
	rev   uint64
}

type viewChannel struct {
	st subject.ChannelState
	// entered is the State bucket revision at which the channel last went
	// from not running to running (starting or active). Every node sees
	// the same stream, so it orders channels the same way everywhere.
	entered uint64
}

func running(state string) bool {
	return state == subject.StateStarting || state == subject.StateActive
}

func (v *clusterView) setLease(key, owner string, rev uint64, gone bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if gone {
		delete(v.leases, key)
		return
	}
	v.leases[key] = leaseInfo{owner: owner, rev: rev}
}

func (v *clusterView) lease(key string) (owner string, rev uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	l := v.leases[key]
	return l.owner, l.rev
}

// setChannel records a channel's state (gone: deleted or expired), written
// at State bucket revision rev.
func (v *clusterView) setChannel(key string, st subject.ChannelState, gone bool, rev uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if gone {
		delete(v.channels, key)
		return
	}
	vc := viewChannel{st: st}
	if running(st.State) {
		vc.entered = rev
		if prev, ok := v.channels[key]; ok && running(prev.st.State) {
			vc.entered = prev.entered
		}
	}
	v.channels[key] = vc
}

// applied notes that every State bucket change up to rev is in the view.
func (v *clusterView) applied(rev uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if rev > v.rev {
		v.rev = rev
		if v.moved != nil {
			close(v.moved)
			v.moved = nil
		}
	}
}

// caughtUp waits until the view holds every State change up to rev.
func (v *clusterView) caughtUp(ctx context.Context, rev uint64) bool {
	for {
		v.mu.Lock()
		if v.rev >= rev {
			v.mu.Unlock()
			return true
		}
		if v.moved == nil {
			v.moved = make(chan struct{})
		}
		moved := v.moved
		v.mu.Unlock()
		select {
		case <-moved:
		case <-ctx.Done():
			return false
		}
	}
}

// running counts channels starting or active, on node (or any node if
// node is ""), leaving out channel except.
func (v *clusterView) running(node, except string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for key, vc := range v.channels {
		if key == except || (node != "" && vc.st.Node != node) {
			continue
		}
		if running(vc.st.State) {
			n++
		}
	}
	return n
}

// entered is when channel key started running, or def if not known to run.
func (v *clusterView) entered(key string, def uint64) uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	if vc, ok := v.channels[key]; ok && running(vc.st.State) && vc.entered != 0 {
		return vc.entered
	}
	return def
}

// runningBefore counts channels other than key that started running
// before State bucket revision rev.
func (v *clusterView) runningBefore(key string, rev uint64) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for k, vc := range v.channels {
		if k != key && running(vc.st.State) && vc.entered < rev {
			n++
		}
	}
	return n
}
