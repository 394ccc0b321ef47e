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
	"context"
	"encoding/json"
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

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
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
	// State is the subject.BucketState bucket.
	State jetstream.KeyValue
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
	// re-checked (default subject.StateRefresh).
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
	speakers map[string]*speaker // current speaker per room on this node
	active   int                 // connections being served
	stopping bool                // Run is shutting down: refuse new ones
	idle     chan struct{}       // closed when active drops to 0 while stopping
}

// New builds the ingest role.
func New(o Options) (*Server, error) {
	if o.NC == nil || o.Rooms == nil || o.State == nil {
		return nil, errors.New("ingest: NC, Rooms and State are required")
	}
	if o.Node == "" {
		return nil, errors.New("ingest: Node is required")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.MaxFrame <= 0 {
		o.MaxFrame = DefaultMaxFrame
	}
	if o.FrameDuration <= 0 {
		o.FrameDuration = DefaultFrameDuration
	}
	if o.LevelInterval <= 0 {
		o.LevelInterval = DefaultLevelInterval
	}
	if o.StatusInterval <= 0 {
		o.StatusInterval = DefaultStatusInterval
	}
	if o.Refresh <= 0 {
		o.Refresh = subject.StateRefresh
	}
	base, cancel := context.WithCancel(context.Background())
	s := &Server{
		o:   o,
		log: o.Log,
		upgrader: websocket.Upgrader{
			ReadBufferSize:  16 << 10,
			WriteBufferSize: 4 << 10,
			// The speaker key is presented explicitly (header or query),
			// never by the browser on its own as a cookie would be, so a
			// page on another origin gains nothing it did not already
			// hold: any origin may connect.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		frame:    max(1, int(int64(audio.Rate)*int64(o.FrameDuration)/int64(time.Second))),
		base:     base,
		cancel:   cancel,
		speakers: map[string]*speaker{},
	}
	return s, nil
}

// Mount registers the speaker WebSocket.
func (s *Server) Mount(r chi.Router) {
	r.Get("/api/v1/rooms/{id}/speak", s.handleSpeak)
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
	select {
	case <-idle:
	case <-time.After(2 * closeGrace):
		s.log.Warn("speaker connections still closing at shutdown")
	}
	wg.Wait()
	return nil
}

func (s *Server) current() []*speaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*speaker, 0, len(s.speakers))
	for _, sp := range s.speakers {
		out = append(out, sp)
	}
	return out
}

func (s *Server) speakerOf(roomID string) *speaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.speakers[roomID]
}

// speakerKey takes the key from "Authorization: Bearer …" or ?key=.
func speakerKey(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if k, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(k)
		}
		return ""
	}
	return r.URL.Query().Get("key")
}

func (s *Server) handleSpeak(w http.ResponseWriter, r *http.Request) {
	roomID := chi.URLParam(r, "id")
	log := s.log.With("room", roomID)
	key := speakerKey(r)
	if key == "" {
		metrics.Errors.WithLabelValues(roleName, "auth").Inc()
		httperr.Unauthorized(w, "a speaker key is required: Authorization: Bearer <speaker_key> or ?key=")
		return
	}
	rm, _, err := s.o.Rooms.Get(r.Context(), roomID)
	if errors.Is(err, room.ErrNotFound) {
		httperr.NotFound(w, fmt.Sprintf("room %q does not exist", roomID))
		return
	}
	if err != nil {
		log.Error("speaker: load room", "err", err)
		httperr.Internal(w)
		return
	}
	if !rm.CheckSpeakerKey(key) {
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
	if !s.enter() {
		httperr.Write(w, http.StatusServiceUnavailable, "unavailable", "the server is shutting down")
		return
	}
	defer s.leave()
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	sp := newSpeaker(s, conn, rm, key, log)
	sp.serve()
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
	rev, err := s.o.State.Put(ctx, subject.SpeakerKey(sp.roomID), sp.stateValue())
	if err != nil {
		metrics.Errors.WithLabelValues(roleName, "state").Inc()
		sp.log.Warn("speaker state not written; will retry", "err", err)
	}
	sp.setRev(rev)
	s.mu.Lock()
	old := s.speakers[sp.roomID]
	s.speakers[sp.roomID] = sp
	s.mu.Unlock()
	if old != nil {
		old.close(wire.CloseReplaced, wire.CodeReplaced, "a newer connection of this room's speaker took over")
	}
	if s.base.Err() != nil { // Run's shutdown sweep may have missed sp
		sp.close(wire.CloseShutdown, wire.CodeShuttingDown, "the server is shutting down; reconnect in a moment")
	}
}

// release forgets sp as the room's speaker and deletes its state entry,
// unless a newer connection (here or elsewhere) already replaced it.
func (s *Server) release(sp *speaker) {
	s.mu.Lock()
	mine := s.speakers[sp.roomID] == sp
	if mine {
		delete(s.speakers, sp.roomID)
	}
	s.mu.Unlock()
	if !mine {
		return
	}
	rev := sp.getRev()
	if rev == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeWait)
	defer cancel()
	err := s.o.State.Delete(ctx, subject.SpeakerKey(sp.roomID), jetstream.LastRevision(rev))
	if err != nil && !isRevisionMismatch(err) {
		metrics.Errors.WithLabelValues(roleName, "state").Inc()
		sp.log.Warn("speaker state not deleted; it expires by itself", "err", err)
	}
}

func isRevisionMismatch(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence)
}

// refresh rewrites sp's state entry, only if it is still the one sp wrote.
// If another node's connection wrote it since, sp has been replaced.
func (s *Server) refresh(ctx context.Context, sp *speaker) {
	key := subject.SpeakerKey(sp.roomID)
	ctx, cancel := context.WithTimeout(ctx, writeWait)
	defer cancel()
	val := sp.stateValue()
	rev := sp.getRev()
	var err error
	var nrev uint64
	if rev == 0 {
		nrev, err = s.o.State.Put(ctx, key, val) // the first write failed
	} else {
		nrev, err = s.o.State.Update(ctx, key, val, rev)
	}
	if err == nil {
		sp.setRev(nrev)
		return
	}
	if !isRevisionMismatch(err) {
		metrics.Errors.WithLabelValues(roleName, "state").Inc()
		sp.log.Warn("speaker state not refreshed", "err", err)
		return
	}
	e, gerr := s.o.State.Get(ctx, key)
	switch {
	case errors.Is(gerr, jetstream.ErrKeyNotFound):
		// Expired (we were cut off from NATS for a while): claim it again,
		// unless someone else does first (the next refresh sees who).
		nrev, err := s.o.State.Create(ctx, key, val)
		switch {
		case err == nil:
			sp.setRev(nrev)
		case !errors.Is(err, jetstream.ErrKeyExists):
			metrics.Errors.WithLabelValues(roleName, "state").Inc()
			sp.log.Warn("speaker state not re-created", "err", err)
		}
	case gerr != nil:
		sp.log.Warn("speaker state not readable", "err", gerr)
	default:
		var st subject.SpeakerState
		if json.Unmarshal(e.Value(), &st) == nil && st.Node != s.o.Node {
			sp.close(wire.CloseReplaced, wire.CodeReplaced, "a newer connection of this room's speaker took over on another node")
			return
		}
		// Written by this node: two connections raced and sp, the one
		// registered last, is the speaker. Make the entry say so.
		if s.speakerOf(sp.roomID) == sp {
			nrev, err := s.o.State.Put(ctx, key, val)
			if err != nil {
				metrics.Errors.WithLabelValues(roleName, "state").Inc()
				sp.log.Warn("speaker state not refreshed", "err", err)
				return
			}
			sp.setRev(nrev)
		}
	}
}

// heartbeat refreshes the speakers' state entries and re-checks their
// rooms (the room watch may miss a deletion that raced a connect).
func (s *Server) heartbeat(ctx context.Context) {
	t := time.NewTicker(s.o.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, sp := range s.current() {
			s.refresh(ctx, sp)
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
	}
}

// roomChanged applies a new version of a speaker's room.
func (s *Server) roomChanged(sp *speaker, rm *room.Room) {
	if !rm.CheckSpeakerKey(sp.key) {
		sp.close(wire.CloseBadMessage, wire.CodeKeyRotated, "the room's speaker key was changed; reconnect with the new key")
		return
	}
	sp.setRoom(rm)
}

// watchRooms closes speakers whose room is deleted or whose key changes.
func (s *Server) watchRooms(ctx context.Context) {
	retry(ctx, s.log, "room watch", func() error {
		events, err := s.o.Rooms.Watch(ctx)
		if err != nil {
			return err
		}
		for ev := range events {
			sp := s.speakerOf(ev.ID)
			if sp == nil {
				continue
			}
			if ev.Room == nil {
				sp.close(wire.CloseRoomGone, wire.CodeRoomDeleted, "the room was deleted")
				continue
			}
			s.roomChanged(sp, ev.Room)
		}
		return ctx.Err()
	})
}

// watchSpeakers notices when another ingest node takes a room's speaker.
func (s *Server) watchSpeakers(ctx context.Context) {
	retry(ctx, s.log, "speaker watch", func() error {
		w, err := s.o.State.Watch(ctx, "speaker.*", jetstream.UpdatesOnly())
		if err != nil {
			return err
		}
		defer w.Stop()
		for {
			var e jetstream.KeyValueEntry
			var ok bool
			select {
			case <-ctx.Done():
				return nil
			case e, ok = <-w.Updates():
			}
			if !ok {
				return errors.New("watch ended")
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			sp := s.speakerOf(strings.TrimPrefix(e.Key(), "speaker."))
			if sp == nil || e.Revision() <= sp.getRev() {
				continue
			}
			var st subject.SpeakerState
			if json.Unmarshal(e.Value(), &st) == nil && st.Node != s.o.Node {
				sp.close(wire.CloseReplaced, wire.CodeReplaced, "a newer connection of this room's speaker took over on another node")
			}
		}
	})
}

// retry runs f until ctx ends, waiting between failures.
func retry(ctx context.Context, log *slog.Logger, what string, f func() error) {
	wait := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := f()
		if ctx.Err() != nil {
			return
		}
		log.Warn(what+" stopped; restarting", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
