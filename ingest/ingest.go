// Package ingest is the ingest role: it takes a room's speaker over a
// WebSocket (GET /api/v1/rooms/{id}/speak), resamples the audio to 24 kHz
// mono, cuts it into ~100 ms frames and publishes them on the room's source
// subject, where translators and the floor channel pick it up.
//
// A room has one speaker at a time, cluster-wide: a new connection with the
// key takes over and the old one is closed with 4001, also when the two are
// on different ingest nodes (they meet on the speaker.<room> key of the
// state bucket). The speaker sees its level and the room's channel states
// while it talks.
package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/access"
	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/kvlease"
	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/internal/option"
	"github.com/babelcast/babelcast/internal/question"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/wire"
)

// Defaults of Options.
const (
	DefaultMaxFrame       = 64 << 10
	DefaultFrameDuration  = 100 * time.Millisecond
	DefaultLevelInterval  = 200 * time.Millisecond
	DefaultStatusInterval = 2 * time.Second
)

const (
	writeWait    = 5 * time.Second  // per message written to a speaker
	pongWait     = 60 * time.Second // silence from the speaker before we give up
	pingInterval = 20 * time.Second
	closeGrace   = 2 * time.Second // wait for the peer's close reply
	sendQueue    = 32              // text messages waiting for a slow speaker
	roleName     = "ingest"
)

// Options configure the ingest role.
type Options struct {
	NC    *nats.Conn
	Rooms *room.Store
	// State is the livestate.Bucket bucket.
	State jetstream.KeyValue
	// Questions are the audience's questions: an accepted one speaks with
	// its token, as mic "q-<id>".
	Questions *question.Store
	// Node names this process in speaker.<room> entries.
	Node string
	Log  *slog.Logger
	// MaxFrame is the largest binary message accepted, in bytes
	// (default 64 KiB); bigger ones close the connection with 1009.
	MaxFrame int
	// FrameDuration is the length of the frames published (default 100 ms).
	FrameDuration time.Duration
	// LevelInterval and StatusInterval pace the level and status messages
	// sent to the speaker (defaults 200 ms and 2 s).
	LevelInterval  time.Duration
	StatusInterval time.Duration
	// Refresh is how often speaker.<room> is rewritten and the room
	// re-checked (default livestate.Refresh).
	Refresh time.Duration
}

// Server is the ingest role.
type Server struct {
	o        Options
	log      *slog.Logger
	upgrader websocket.Upgrader
	frame    int // samples per published frame at 24 kHz

	base   context.Context // ends when Run's context does
	cancel context.CancelFunc

	mu       sync.Mutex
	speakers map[micID]*speaker // the current connection of each mic on this node
	active   int                // connections being served
	stopping bool               // Run is shutting down: refuse new ones
	idle     chan struct{}      // closed when active drops to 0 while stopping
	booths   boothSet           // interpreters' connections (booth.go)
}

// New builds the ingest role.
func New(o Options) (*Server, error) {
	if o.NC == nil || o.Rooms == nil || o.State == nil || o.Questions == nil {
		return nil, errors.New("ingest: NC, Rooms, State and Questions are required")
	}
	if o.Node == "" {
		return nil, errors.New("ingest: Node is required")
	}
	o.Log = cmp.Or(o.Log, slog.Default())
	o.MaxFrame = option.Default(o.MaxFrame, DefaultMaxFrame)
	o.FrameDuration = option.Default(o.FrameDuration, DefaultFrameDuration)
	o.LevelInterval = option.Default(o.LevelInterval, DefaultLevelInterval)
	o.StatusInterval = option.Default(o.StatusInterval, DefaultStatusInterval)
	o.Refresh = option.Default(o.Refresh, livestate.Refresh)
	base, cancel := context.WithCancel(context.Background())
	s := &Server{
		o:   o,
		log: o.Log,
		upgrader: websocket.Upgrader{
			ReadBufferSize:  16 << 10,
			WriteBufferSize: 4 << 10,
			// The speaker key is presented explicitly (header,
			// subprotocol or query), never by the browser on its own as a
			// cookie would be, so a page on another origin gains nothing
			// it did not already hold: any origin may connect.
			CheckOrigin: func(*http.Request) bool { return true },
			// The speaker page offers "babelcast" and its key as a second
			// subprotocol; the server selects "babelcast".
			Subprotocols: []string{access.Protocol},
		},
		frame:    max(1, int(int64(audio.Rate)*int64(o.FrameDuration)/int64(time.Second))),
		base:     base,
		cancel:   cancel,
		speakers: map[micID]*speaker{},
	}
	return s, nil
}

// Mount registers the speaker WebSocket.
func (s *Server) Mount(r chi.Router) {
	r.Get("/api/v1/rooms/{id}/speak", s.handleSpeak)
	r.Get("/api/v1/rooms/{id}/booth/{lang}", s.handleBooth)
}

// Run keeps the speakers' state entries fresh and watches for room
// deletions, key rotations and takeovers from other nodes. When ctx ends it
// closes every speaker with 1001, deletes their state entries and returns.
func (s *Server) Run(ctx context.Context) error {
	defer s.cancel()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); s.watchRooms(ctx) }()
	go func() { defer wg.Done(); s.watchSpeakers(ctx) }()
	go func() { defer wg.Done(); s.heartbeat(ctx) }()
	<-ctx.Done()
	s.mu.Lock()
	s.stopping = true // new connections are refused from here on
	idle := make(chan struct{})
	if s.active == 0 {
		close(idle)
	} else {
		s.idle = idle
	}
	s.mu.Unlock()
	s.cancel()
	for _, sp := range s.current() {
		sp.close(wire.CloseShutdown, wire.CodeShuttingDown, "the server is shutting down; reconnect in a moment")
	}
	for _, c := range s.booths.of("") {
		c.close(wire.CloseShutdown, wire.CodeShuttingDown, "the server is shutting down; reconnect in a moment")
	}
	select {
	case <-idle:
	case <-time.After(2 * closeGrace):
		s.log.Warn("speaker connections still closing at shutdown")
	}
	wg.Wait()
	return nil
}

// micID names a mic: its room and its id within the room.
type micID struct{ room, mic string }

func (s *Server) current() []*speaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*speaker, 0, len(s.speakers))
	for _, sp := range s.speakers {
		out = append(out, sp)
	}
	return out
}

func (s *Server) speakerOf(id micID) *speaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.speakers[id]
}

// roomSpeakers are the connections of a room's mics on this node.
func (s *Server) roomSpeakers(roomID string) []*speaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*speaker
	for id, sp := range s.speakers {
		if id.room == roomID {
			out = append(out, sp)
		}
	}
	return out
}

// roomForMic checks that mic may join rm's live mics: it is one of them
// already (a takeover), or the room has fewer than max_mics.
func (s *Server) roomForMic(ctx context.Context, rm *room.Room, mic string) error {
	rctx, cancel := context.WithTimeout(ctx, writeWait)
	defer cancel()
	live, err := livestate.ReadRoom(rctx, s.o.State, rm.ID)
	if err != nil {
		// Cannot count: let the mic in rather than refuse a speaker over
		// a hiccup of the state bucket.
		s.log.Warn("mics not counted", "room", rm.ID, "err", err)
		return nil
	}
	if _, ok := live.Mics[mic]; ok || strings.HasPrefix(mic, question.MicPrefix) {
		return nil // a takeover, or a question: the moderators let it in
	}
	max := option.Default(rm.MaxMics, room.DefaultMaxMics)
	if n := len(live.Mics); n >= max {
		return fmt.Errorf("the room has %d mics live, its maximum (max_mics); a mic must hang up first, or the organizers raise max_mics", n)
	}
	return nil
}

// speakerKey takes the key from "Authorization: Bearer …", the WebSocket
// subprotocol (the speaker page: no load balancer logs it there), or
// ?key= (clients that can do neither).
func speakerKey(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if k, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(k)
		}
		return ""
	}
	if k, ok := access.Credential(r, access.KindKey); ok {
		return k
	}
	return r.URL.Query().Get("key")
}

// admit reads the key a request to ingest offers (what names it: "speaker"
// or "booth") and loads the room it names, answering 401 (no key), 404 (no
// such room) or 503 (the store does not answer) when it cannot.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, what string) (key string, rm *room.Room, log *slog.Logger, ok bool) {
	roomID := chi.URLParam(r, "id")
	log = s.log.With("room", roomID)
	if key = speakerKey(r); key == "" {
		metrics.Errors.WithLabelValues(roleName, "auth").Inc()
		httperr.Unauthorized(w, fmt.Sprintf("a %s key is required: Authorization: Bearer <%s_key> or ?key=", what, what))
		return "", nil, nil, false
	}
	gctx, cancel := context.WithTimeout(r.Context(), writeWait)
	rm, _, err := s.o.Rooms.Get(gctx, roomID)
	cancel()
	if errors.Is(err, room.ErrNotFound) {
		httperr.NotFound(w, fmt.Sprintf("room %q does not exist", roomID))
		return "", nil, nil, false
	}
	if err != nil {
		log.Error(what+": load room", "err", err)
		httperr.Unavailable(w, 2*time.Second, "the room store is not answering right now; try again shortly")
		return "", nil, nil, false
	}
	return key, rm, log, true
}

func (s *Server) handleSpeak(w http.ResponseWriter, r *http.Request) {
	key, rm, log, ok := s.admit(w, r, "speaker")
	if !ok {
		return
	}
	var q *question.Question
	var err error
	if id := question.IDOfToken(key); id != "" {
		// An audience question, accepted, speaks with its own token.
		q, _, err = s.o.Questions.Get(r.Context(), rm.ID, id)
		if err != nil || !q.CheckToken(key) {
			metrics.Errors.WithLabelValues(roleName, "auth").Inc()
			httperr.Unauthorized(w, "no such question in this room")
			return
		}
		if q.State != question.Accepted {
			httperr.Forbidden(w, "the question is "+q.State+", not accepted: it may speak once the organizers or the speaker accept it")
			return
		}
	} else if !rm.CheckSpeakerKey(key) {
		metrics.Errors.WithLabelValues(roleName, "auth").Inc()
		log.Warn("speaker refused: wrong key", "remote", r.RemoteAddr)
		httperr.Unauthorized(w, "wrong speaker key for this room")
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		// A plain GET checks the key: the speaker page asks before it
		// opens the microphone, to tell a stale link from a network error.
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, "{\"room\":%q,\"key\":\"valid\"}\n", rm.ID)
		return
	}
	conn, ok := s.upgrade(w, r)
	if !ok {
		return
	}
	defer s.leave()
	sp := newSpeaker(s, conn, rm, key, log)
	sp.question = q
	sp.serve()
}

// upgrade counts a connection in and upgrades it (the caller calls leave
// when it ends), or answers why not: the server is stopping, or the
// request is no WebSocket handshake (the upgrader answers).
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) (*websocket.Conn, bool) {
	if !s.enter() {
		httperr.Write(w, http.StatusServiceUnavailable, "unavailable", "the server is shutting down")
		return nil, false
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.leave()
		return nil, false
	}
	return conn, true
}

// enter counts a connection in, unless the server is stopping.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.active++
	return true
}

func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.active == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

// takeOver makes sp the room's speaker on this node and in the state
// bucket, closing whoever held it before.
func (s *Server) takeOver(sp *speaker) {
	// Write the entry first, so that by the time sp is registered its
	// revision is known and the speaker watch can tell older writes (from
	// a node whose connection we replace) from newer ones.
	ctx, cancel := context.WithTimeout(s.base, writeWait)
	defer cancel()
	if err := sp.slot.Take(ctx, sp.stateValue()); err != nil {
		metrics.Errors.WithLabelValues(roleName, "state").Inc()
		sp.log.Warn("speaker state not written; will retry", "err", err)
	}
	s.mu.Lock()
	old := s.speakers[sp.id()]
	s.speakers[sp.id()] = sp
	s.mu.Unlock()
	if old != nil {
		old.close(wire.CloseReplaced, wire.CodeReplaced, "a newer connection of this mic took over")
	}
	if s.base.Err() != nil { // Run's shutdown sweep may have missed sp
		sp.close(wire.CloseShutdown, wire.CodeShuttingDown, "the server is shutting down; reconnect in a moment")
	}
}

// release forgets sp as the room's speaker and deletes its state entry,
// unless a newer connection (here or elsewhere) already replaced it.
func (s *Server) release(sp *speaker) {
	s.mu.Lock()
	mine := s.speakers[sp.id()] == sp
	if mine {
		delete(s.speakers, sp.id())
	}
	s.mu.Unlock()
	if !mine {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeWait)
	defer cancel()
	if err := sp.slot.Release(ctx); err != nil {
		metrics.Errors.WithLabelValues(roleName, "state").Inc()
		sp.log.Warn("speaker state not deleted; it expires by itself", "err", err)
	}
}

// holdSlot keeps sp's entry in the room's speaker slot (speaker.<room>)
// while sp is connected, until ctx ends. An entry lost without anyone
// taking it (NATS away for longer than the TTL) is claimed again; one that
// another connection holds means sp was replaced.
func (s *Server) holdSlot(ctx context.Context, sp *speaker) {
	// Until a first write goes through, sp takes the slot over whatever
	// holds it, as a new connection does.
	written := sp.slot.Revision() != 0
	for ctx.Err() == nil {
		var err error
		switch {
		case sp.slot.Revision() != 0:
			err = sp.slot.Keep(ctx)
		case written:
			err = sp.slot.Claim(ctx, sp.stateValue())
		default:
			err = sp.slot.Take(ctx, sp.stateValue())
			written = err == nil
		}
		var held *kvlease.HeldError
		switch {
		case ctx.Err() != nil || err == nil:
		case errors.As(err, &held):
			if !s.mayRetake(sp, held.Value) {
				return
			}
			written = false
		case errors.Is(err, kvlease.ErrGone):
			// Claim it again at once, unless someone else does first.
		default:
			metrics.Errors.WithLabelValues(roleName, "state").Inc()
			sp.log.Warn("speaker state not written; will retry", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(s.o.Refresh):
			}
		}
	}
}

// mayRetake decides, when the speaker slot holds value rather than sp's
// entry, whether sp may write it again. Another node's connection has
// replaced sp, which closes. One of this node's: two connections raced and
// the one registered last is the speaker.
func (s *Server) mayRetake(sp *speaker, value []byte) bool {
	if st, ok := livestate.Decode[livestate.Mic](value); ok && st.Node != s.o.Node {
		sp.close(wire.CloseReplaced, wire.CodeReplaced, "a newer connection of this mic took over on another node")
		return false
	}
	return s.speakerOf(sp.id()) == sp
}

// heartbeat re-checks the speakers' rooms every Refresh (the room watch
// may miss a deletion that raced a connect).
func (s *Server) heartbeat(ctx context.Context) {
	livestate.Every(ctx, s.o.Refresh, func() {
		for _, sp := range s.current() {
			gctx, cancel := context.WithTimeout(ctx, writeWait)
			rm, _, err := s.o.Rooms.Get(gctx, sp.roomID)
			cancel()
			switch {
			case errors.Is(err, room.ErrNotFound):
				sp.close(wire.CloseRoomGone, wire.CodeRoomDeleted, "the room was deleted")
			case err == nil:
				s.roomChanged(sp, rm)
			case ctx.Err() == nil:
				metrics.Errors.WithLabelValues(roleName, "state").Inc()
				sp.log.Warn("speaker room not re-checked", "err", err)
			}
		}
	})
}

// roomChanged applies a new version of a speaker's room.
func (s *Server) roomChanged(sp *speaker, rm *room.Room) {
	if sp.question == nil && !rm.CheckSpeakerKey(sp.key) {
		sp.close(wire.CloseBadMessage, wire.CodeKeyRotated, "the room's speaker key was changed; reconnect with the new key")
		return
	}
	sp.setRoom(rm)
}

// watchRooms closes speakers whose room is deleted or whose key changes.
func (s *Server) watchRooms(ctx context.Context) {
	for ev := range livestate.WatchRooms(ctx, s.o.Rooms, s.log) {
		s.boothRoomChanged(ev.ID, ev.Room)
		for _, sp := range s.roomSpeakers(ev.ID) {
			if ev.Room == nil {
				sp.close(wire.CloseRoomGone, wire.CodeRoomDeleted, "the room was deleted")
				continue
			}
			s.roomChanged(sp, ev.Room)
		}
	}
}

// watchSpeakers notices at once when another ingest node takes one of
// this node's mics (holdSlot would only at its next renewal).
func (s *Server) watchSpeakers(ctx context.Context) {
	for u := range livestate.Watch(ctx, s.o.State, livestate.WatchOptions{
		Keys: []string{livestate.Mics()}, UpdatesOnly: true, Log: s.log, What: "mic watch",
	}) {
		for _, e := range u.Entries {
			k, ok := livestate.ParseKey(e.Key)
			if !ok || !e.Present {
				continue
			}
			sp := s.speakerOf(micID{k.Room, k.Mic})
			if sp == nil || e.Revision <= sp.slot.Revision() {
				continue
			}
			if st, ok := livestate.Decode[livestate.Mic](e.Value); ok && st.Node != s.o.Node {
				sp.close(wire.CloseReplaced, wire.CodeReplaced, "a newer connection of this mic took over on another node")
			}
		}
	}
}
