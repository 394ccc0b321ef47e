// Package fanout is the listener side of babelcast: it streams each channel's
// audio and captions from NATS to every listener who picked it, over a
// WebSocket (/api/v1/rooms/{id}/listen) or an endless WAV stream
// (/api/v1/rooms/{id}/audio/{lang}.wav), and reports how many listen to what
// (presence keys in the state bucket), so a channel nobody hears costs nothing.
//
// The shape follows centrifugal/centrifuge's hub/client split: a hub per node
// holds ONE NATS subscription per channel whatever the number of listeners,
// prepares each frame once, and hands it to every listener's bounded queue
// without ever blocking; one writer per connection drains its own queue with
// write deadlines. A listener that cannot keep up loses its oldest audio, and
// is closed (4408) if it keeps falling behind.
package fanout

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/access"
	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/option"
	"github.com/babelcast/babelcast/internal/record"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/wire"
)

// bytesPerSecond of channel audio (PCM16LE mono).
const bytesPerSecond = wire.SampleRate * 2

// Defaults of Options.
const (
	DefaultQueueFrames  = 150 // 3 s of 20 ms frames
	DefaultQueueAudio   = 3 * time.Second
	DefaultSlowAfter    = 5 * time.Second
	DefaultSendBuffer   = 64 << 10
	DefaultWriteTimeout = 10 * time.Second
	DefaultPingInterval = 10 * time.Second
	DefaultPongWait     = 30 * time.Second
	// A node takes DefaultMaxListeners connections (about 14 KiB each),
	// at most DefaultMaxListenersPerAddress from one address: enough for
	// a venue behind one NAT address, not for one client to take a node.
	DefaultMaxListeners           = 20000
	DefaultMaxListenersPerAddress = 1000
)

// Options configures the fan-out role.
type Options struct {
	NC    *nats.Conn
	Rooms *room.Store
	// State is the livestate.Bucket bucket: channel and speaker state is
	// read from it, listener presence written to it.
	State jetstream.KeyValue
	// Record, when set, is where this node keeps the record of events
	// (record.go): every channel's cues, and recorded rooms' audio, for
	// the rooms whose record lease (in Leases) it holds.
	Record         *record.Store
	Leases         jetstream.KeyValue
	RecordMaxBytes uint64 // bound on the recordings' audio; 0: none
	// Node names this process in presence keys.
	Node string
	Log  *slog.Logger

	// QueueFrames bounds each listener's queue of audio frames; when it is
	// full the oldest frame is dropped. Default DefaultQueueFrames.
	QueueFrames int
	// QueueAudio bounds the same queue by duration of audio (frames vary in
	// size: 20 ms from a browser, 200 ms from a translator). Default 3 s.
	QueueAudio time.Duration
	// SlowAfter: a listener that keeps losing frames this long is closed
	// with 4408 "too slow". Default 5 s.
	SlowAfter time.Duration
	// SendBuffer is the kernel send buffer asked for each WebSocket
	// listener, in bytes. A small one keeps a slow listener's backlog in our
	// queue, where the drop-oldest policy applies, rather than in the kernel
	// where it only adds delay. Default 64 KiB; negative keeps the system's.
	SendBuffer int
	// WriteTimeout bounds one write to a listener. Default 10 s.
	WriteTimeout time.Duration
	// PingInterval and PongWait detect dead WebSocket peers. Defaults 10 s
	// and 30 s.
	PingInterval time.Duration
	PongWait     time.Duration
	// MaxListeners caps this node's listener connections (WebSocket and
	// streams): one more is refused with 503. MaxListenersPerAddress caps
	// those of one client address: one more is refused with 429. Zero
	// means the default; negative, no cap.
	MaxListeners           int
	MaxListenersPerAddress int
}

// Server is the fan-out role of one node.
type Server struct {
	o        Options
	log      *slog.Logger
	hub      *hub
	presence *presence
	upgrader websocket.Upgrader
	// passcodes counts wrong passcodes by client and room; conns caps
	// listener connections.
	passcodes *access.Passcodes
	conns     *access.Conns
	rec       *recorders    // nil without Options.Record
	earlier   *earlierCache // nil without Options.Record

	runOnce sync.Once
}

// New checks the options and builds the role; Run starts its background work.
func New(o Options) (*Server, error) {
	if o.NC == nil || o.Rooms == nil || o.State == nil {
		return nil, errors.New("fanout: NC, Rooms and State are required")
	}
	if o.Node == "" {
		return nil, errors.New("fanout: Node is required")
	}
	o.Log = cmp.Or(o.Log, slog.Default())
	o.QueueFrames = option.Default(o.QueueFrames, DefaultQueueFrames)
	o.QueueAudio = option.Default(o.QueueAudio, DefaultQueueAudio)
	o.SlowAfter = option.Default(o.SlowAfter, DefaultSlowAfter)
	o.SendBuffer = cmp.Or(o.SendBuffer, DefaultSendBuffer) // negative: the system's
	o.WriteTimeout = option.Default(o.WriteTimeout, DefaultWriteTimeout)
	o.PingInterval = option.Default(o.PingInterval, DefaultPingInterval)
	o.PongWait = option.Default(o.PongWait, DefaultPongWait)
	o.MaxListeners = cmp.Or(o.MaxListeners, DefaultMaxListeners) // negative: no cap
	o.MaxListenersPerAddress = cmp.Or(o.MaxListenersPerAddress, DefaultMaxListenersPerAddress)
	s := &Server{
		o: o, log: o.Log, // the caller names the role, as for the other roles
		passcodes: access.NewPasscodes(),
		conns:     access.NewConns(o.MaxListenersPerAddress, o.MaxListeners),
	}
	if o.Record != nil {
		if o.Leases == nil {
			return nil, errors.New("fanout: Leases is required with Record")
		}
		s.rec = newRecorders(s)
		s.earlier = newEarlierCache(o.Record, s.log)
	}
	s.presence = newPresence(o.State, o.Node, s.log)
	s.hub = newHub(s)
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// Listeners only send control frames: a small read buffer. Write
		// buffers come from a pool, used only for the rare unprepared
		// message (audio and text go out as prepared frames), to keep
		// idle connections small.
		ReadBufferSize:  256,
		WriteBufferPool: &sync.Pool{},
		// The listen page may be embedded on any site; no cookies are
		// involved (the passcode is presented explicitly, in the
		// subprotocol or the URL), so any origin may connect.
		CheckOrigin: func(*http.Request) bool { return true },
		// The pages offer "babelcast" and their passcode as a second
		// subprotocol; the server selects "babelcast".
		Subprotocols: []string{access.Protocol},
		// Failed upgrades answer in the API's JSON error shape too.
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			httperr.Write(w, status, "invalid_request", reason.Error())
		},
	}
	return s, nil
}

// Mount registers the listener routes.
func (s *Server) Mount(r chi.Router) {
	r.Get("/api/v1/rooms/{id}/listen", s.handleListen)
	r.Get("/api/v1/rooms/{id}/audio/{file}", s.handleWAV)
	r.Get("/api/v1/rooms/{id}/earlier", s.handleEarlier)
}

// Run watches rooms (closing listeners of deleted rooms and removed
// languages) and keeps presence keys up to date. When ctx ends it closes
// every listener with 1001, deletes its presence keys and returns.
func (s *Server) Run(ctx context.Context) error {
	first := false
	s.runOnce.Do(func() { first = true })
	if !first {
		return errors.New("fanout: Run called twice")
	}
	var wg sync.WaitGroup
	s.rec.begin(ctx)
	wg.Add(4)
	go func() { defer wg.Done(); s.watchRooms(ctx) }()
	go func() { defer wg.Done(); s.rec.run(ctx) }()
	go func() { defer wg.Done(); s.presence.run(ctx) }()
	go func() {
		defer wg.Done()
		livestate.Every(ctx, time.Minute, func() { s.passcodes.Prune(time.Now()) }) // forget refilled budgets
	}()
	<-ctx.Done()

	s.hub.shutdown(s.o.WriteTimeout + time.Second)
	wg.Wait()
	if s.earlier != nil {
		s.earlier.close()
	}
	dctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.presence.clear(dctx); err != nil {
		s.log.Warn("presence keys not deleted; they expire by themselves", "err", err)
	}
	return nil
}

// watchRooms follows room changes until ctx ends.
func (s *Server) watchRooms(ctx context.Context) {
	for ev := range livestate.WatchRooms(ctx, s.o.Rooms, s.log) {
		if ev.Room == nil {
			s.hub.roomDeleted(ev.ID)
			s.rec.roomDeleted(ev.ID)
		} else {
			s.hub.roomChanged(ev.Room, ev.Revision)
			s.rec.roomChanged(ev.Room)
		}
	}
}

// audioQueueBytes is QueueAudio in bytes of channel audio.
func (s *Server) audioQueueBytes() int {
	return int(s.o.QueueAudio.Seconds() * bytesPerSecond)
}

// fmtLangs lists a room's channels for error messages.
func fmtLangs(r *room.Room) string {
	out := wire.Floor + ", " + r.SourceLanguage + " (source)"
	for _, l := range r.Languages {
		out += ", " + l.Code
	}
	return out
}

// admitError is a handshake failure, written as a JSON HTTP error.
type admitError struct {
	status int
	code   string
	msg    string
	retry  time.Duration // Retry-After, if any
}

func (e *admitError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }
