package fanout

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/wire"
)

// maxClientMessage bounds what a listener may send us: we read nothing but
// control frames, so anything bigger is a misbehaving client.
const maxClientMessage = 4096

// delayEvery is how often a WebSocket listener is told its delay.
const delayEvery = time.Second

// admitRequest admits the listener r asks to be, to channel lang.
func (s *Server) admitRequest(r *http.Request, lang, transport string) (*listener, error) {
	q := r.URL.Query()
	passthrough := true
	switch v := q.Get("passthrough"); v {
	case "", "true", "1":
	case "false", "0":
		passthrough = false
	default:
		return nil, &admitError{http.StatusBadRequest, "invalid_request", "passthrough must be true or false, not " + quote(v)}
	}
	l, err := s.admit(r.Context(), chi.URLParam(r, "id"), lang, q.Get("passcode"), transport)
	if err == nil {
		l.passthrough = passthrough
	}
	return l, err
}

// admit checks a listener's request: the room exists, serves lang (or lang
// is the floor), and the passcode (if any) matches. It returns the
// listener to join, on the canonical language code.
func (s *Server) admit(ctx context.Context, roomID, lang, passcode, transport string) (*listener, error) {
	r, rev, err := s.lookup(ctx, roomID)
	if errors.Is(err, room.ErrNotFound) {
		return nil, &admitError{http.StatusNotFound, "not_found", "no room " + quote(roomID)}
	}
	if err != nil {
		s.log.Error("room lookup failed", "room", roomID, "err", err)
		return nil, &admitError{http.StatusServiceUnavailable, "unavailable", "room store unavailable; try again"}
	}
	if pl, err := room.ParseLang(lang); err == nil && lang != wire.Floor {
		lang = pl.Code
	}
	if lang == "" || (lang != wire.Floor && !r.Serves(lang)) {
		what := "lang is required"
		if lang != "" {
			what = "room " + quote(r.ID) + " has no language " + quote(lang)
		}
		return nil, &admitError{http.StatusBadRequest, "invalid_request", what + "; languages: " + fmtLangs(r)}
	}
	if !r.CheckPasscode(passcode) {
		return nil, &admitError{http.StatusForbidden, "forbidden", "wrong or missing passcode"}
	}
	l := newListener(s, roomID, lang, lang == wire.Floor, transport)
	l.passcode, l.admittedAt, l.unsaid = passcode, rev, r.SourceLanguage
	return l, nil
}

// lookupTimeout bounds reading a listener's room from the store.
const lookupTimeout = 3 * time.Second

// lookup reads the room from the store. When the store does not answer in
// time (its servers down or electing leaders), it takes the room as the
// rooms watch last saw it: listeners join a room that nobody can change
// meanwhile, and a change the watch brings later is applied to them then.
func (s *Server) lookup(ctx context.Context, id string) (*room.Room, uint64, error) {
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	r, rev, err := s.o.Rooms.Get(lctx, id)
	if err == nil || errors.Is(err, room.ErrNotFound) || ctx.Err() != nil {
		return r, rev, err
	}
	if r, rev, ok := s.hub.watched(id); ok {
		s.log.Warn("room store not answering; admitting from the rooms watch", "room", id, "err", err)
		return r, rev, nil
	}
	return nil, 0, err
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return `"` + s + `"`
}

func writeAdmitError(w http.ResponseWriter, err error) {
	var ae *admitError
	if errors.As(err, &ae) {
		httperr.Write(w, ae.status, ae.code, ae.msg)
		return
	}
	httperr.Internal(w)
}

// handleListen serves the listener WebSocket.
func (s *Server) handleListen(w http.ResponseWriter, r *http.Request) {
	roomID := chi.URLParam(r, "id")
	l, err := s.admitRequest(r, r.URL.Query().Get("lang"), transportWS)
	if err != nil {
		writeAdmitError(w, err)
		return
	}
	l.pushText(textFrame(wire.Hello{Type: wire.TypeHello, Room: roomID, Lang: l.lang, SampleRate: wire.SampleRate,
		Floor: l.floor || l.lang == l.unsaid, Passthrough: l.passthrough}))
	if err := s.hub.join(r.Context(), l); err != nil {
		s.joinFailed(w, err, roomID, l.lang)
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.hub.leave(l)
		return // the upgrader has answered
	}
	if s.o.SendBuffer > 0 {
		if tc, ok := conn.NetConn().(interface{ SetWriteBuffer(int) error }); ok {
			_ = tc.SetWriteBuffer(s.o.SendBuffer)
		}
	}
	// The connection gets its own goroutine, and this handler returns so
	// net/http lets go of the request, its buffers and its deep stack: an
	// idle listener should cost little. The hub's WaitGroup (join/leave)
	// still accounts for the goroutine.
	go func() {
		defer s.hub.leave(l)
		s.serveWS(conn, l, s.log.With("room", roomID, "lang", l.lang))
	}()
}

// joinFailed answers a request the hub refused, before any upgrade.
func (s *Server) joinFailed(w http.ResponseWriter, err error, roomID, lang string) {
	switch {
	case errors.Is(err, errShuttingDown):
		httperr.Write(w, http.StatusServiceUnavailable, "unavailable", "server shutting down")
	case errors.Is(err, errRoomGone):
		httperr.NotFound(w, "no room "+quote(roomID))
	case errors.Is(err, errLangGone):
		httperr.BadRequest(w, "room "+quote(roomID)+" no longer has language "+quote(lang))
	case errors.Is(err, errPasscode):
		httperr.Write(w, http.StatusForbidden, "forbidden", "wrong or missing passcode")
	default:
		s.log.Error("listener join failed", "room", roomID, "lang", lang, "err", err)
		httperr.Write(w, http.StatusServiceUnavailable, "unavailable", "cannot subscribe to the channel; try again")
	}
}

// serveWS runs a listener connection: this goroutine writes, a second one
// reads (discarding what the client sends, answering pings, noticing the
// close). It returns when the connection is over.
func (s *Server) serveWS(conn *websocket.Conn, l *listener, log *slog.Logger) {
	readDone := make(chan struct{})
	defer func() {
		_ = conn.Close()
		<-readDone
	}()
	go s.readWS(conn, readDone)
	s.pump(newBatchWriter(conn.NetConn(), true, s.o.WriteTimeout), conn, l, readDone, log)
}

// closeWS sends a close frame and waits briefly for the client's reply.
func (s *Server) closeWS(conn *websocket.Conn, readDone <-chan struct{}, code int, reason string) {
	msg := websocket.FormatCloseMessage(code, reason)
	if err := conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(s.o.WriteTimeout)); err != nil {
		return
	}
	select {
	case <-readDone:
	case <-time.After(2 * time.Second):
	}
}

// readWS reads and discards what the client sends until the connection
// fails or closes; pongs and messages prove the peer is alive.
func (s *Server) readWS(conn *websocket.Conn, done chan<- struct{}) {
	defer close(done)
	conn.SetReadLimit(maxClientMessage)
	alive := func() { _ = conn.SetReadDeadline(time.Now().Add(s.o.PongWait)) }
	alive()
	conn.SetPongHandler(func(string) error { alive(); return nil })
	for {
		if _, _, err := conn.NextReader(); err != nil {
			return
		}
		alive()
	}
}
