package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/access"
	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/wire"
)

// maxClientMessage bounds what a listener may send us: we read nothing but
// control frames, so anything bigger is a misbehaving client.
const maxClientMessage = 4096

// delayEvery is how often a WebSocket listener is told its delay.
const delayEvery = time.Second

// admission is a listener request for a room and channel that exist,
// holding one of the client's connection slots. Its passcode is not
// checked yet: authorize does, when the endpoint is about to serve (after
// the upgrade, for a WebSocket), so that no answer before then differs
// between a right and a wrong passcode. Every endpoint that streams a
// channel goes through admit and authorize: the passcode limit and the
// connection caps come with them.
type admission struct {
	s           *Server
	room        *room.Room
	rev         uint64 // of the room the admission read
	lang        string // canonical, or wire.Floor
	passcode    string
	key         string // a speaker key, in place of the passcode
	passthrough bool
	codec       int // codecPCM, codecOpus or codecOgg
	client      string
	transport   string
	once        sync.Once
}

// admit checks a listener's request for channel lang of the room the path
// names: the room exists and serves lang (or lang is the floor), the
// query is sound, the client has not used up its passcode budget, and the
// connection caps allow one more. The passcode comes from the WebSocket
// subprotocol (the pages) or ?passcode= (other clients); the room's
// speaker key, which stands for it, only from the subprotocol.
func (s *Server) admit(r *http.Request, lang, transport string) (*admission, error) {
	if s.hub.isClosed() {
		return nil, &admitError{status: http.StatusServiceUnavailable, code: "unavailable", msg: "server shutting down"}
	}
	roomID := chi.URLParam(r, "id")
	q := r.URL.Query()
	passthrough := true
	switch v := q.Get("passthrough"); v {
	case "", "true", "1":
	case "false", "0":
		passthrough = false
	default:
		return nil, &admitError{status: http.StatusBadRequest, code: "invalid_request", msg: "passthrough must be true or false, not " + quote(v)}
	}
	codec := codecPCM
	switch v := q.Get("codec"); {
	case transport == transportOgg:
		codec = codecOgg
	case transport != transportWS, v == "", v == wire.CodecPCM:
	case v == wire.CodecOpus:
		codec = codecOpus
	default:
		return nil, &admitError{status: http.StatusBadRequest, code: "invalid_request", msg: "codec must be pcm or opus, not " + quote(v)}
	}
	rm, rev, err := s.lookup(r.Context(), roomID)
	if errors.Is(err, room.ErrNotFound) {
		return nil, &admitError{status: http.StatusNotFound, code: "not_found", msg: "no room " + quote(roomID)}
	}
	if err != nil {
		s.log.Error("room lookup failed", "room", roomID, "err", err)
		return nil, &admitError{status: http.StatusServiceUnavailable, code: "unavailable", msg: "room store unavailable; try again", retry: 2 * time.Second}
	}
	if pl, err := room.ParseLang(lang); err == nil && lang != wire.Floor {
		lang = pl.Code
	}
	if lang == "" || (lang != wire.Floor && !rm.Serves(lang)) {
		what := "lang is required"
		if lang != "" {
			what = "room " + quote(rm.ID) + " has no language " + quote(lang)
		}
		return nil, &admitError{status: http.StatusBadRequest, code: "invalid_request", msg: what + "; languages: " + fmtLangs(rm)}
	}
	client := access.Client(r)
	if rm.Passcode != "" {
		if blocked, after := s.passcodes.Blocked(client, rm.ID); blocked {
			return nil, &admitError{status: http.StatusTooManyRequests, code: "too_many_attempts",
				msg: "too many wrong passcodes from this address; try again later", retry: after}
		}
	}
	switch err := s.conns.Acquire(client); {
	case errors.Is(err, access.ErrClientFull):
		return nil, &admitError{status: http.StatusTooManyRequests, code: "too_many_listeners",
			msg: fmt.Sprintf("this address has %d listener connections open, the most allowed; close some", s.o.MaxListenersPerAddress), retry: 5 * time.Second}
	case err != nil:
		return nil, &admitError{status: http.StatusServiceUnavailable, code: "server_full",
			msg: "this server has as many listeners as it takes; try again shortly", retry: 5 * time.Second}
	}
	passcode, ok := access.Credential(r, access.KindPasscode)
	if !ok {
		passcode = q.Get("passcode")
	}
	key, _ := access.Credential(r, access.KindKey)
	return &admission{s: s, room: rm, rev: rev, lang: lang, passcode: passcode, key: key, passthrough: passthrough, codec: codec, client: client, transport: transport}, nil
}

// authorize checks the passcode (or the speaker key in its place),
// counting a wrong one against the client.
func (a *admission) authorize() bool {
	if a.room.AdmitsListener(a.passcode, a.key) {
		return true
	}
	a.s.passcodes.Fail(a.client, a.room.ID)
	a.s.log.Info("listener refused: wrong or missing passcode", "room", a.room.ID, "client", a.client, "transport", a.transport)
	return false
}

// listener is the admitted listener, to join.
func (a *admission) listener() *listener {
	l := newListener(a.s, a.room.ID, a.lang, a.lang == wire.Floor, a.transport)
	l.passcode, l.key, l.admittedAt, l.unsaid, l.passthrough = a.passcode, a.key, a.rev, a.room.SourceLanguage, a.passthrough
	l.codec = a.codec
	return l
}

// release gives the connection slot back; more calls do nothing.
func (a *admission) release() { a.once.Do(func() { a.s.conns.Release(a.client) }) }

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
		if ae.retry > 0 {
			access.RetryAfter(w, ae.retry)
		}
		httperr.Write(w, ae.status, ae.code, ae.msg)
		return
	}
	httperr.Internal(w)
}

// handleListen serves the listener WebSocket. Before the upgrade, the
// answer tells whether the room and language exist, never whether a
// passcode is right: a plain GET gets 426 Upgrade Required with the right
// passcode and a wrong one alike. Once upgraded, a wrong passcode is closed
// with 4403 before the hello (and counts against the client's budget).
func (s *Server) handleListen(w http.ResponseWriter, r *http.Request) {
	roomID := chi.URLParam(r, "id")
	adm, err := s.admit(r, r.URL.Query().Get("lang"), transportWS)
	if err != nil {
		writeAdmitError(w, err)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		adm.release()
		httperr.Write(w, http.StatusUpgradeRequired, "upgrade_required",
			"this is the listener WebSocket: open it with a WebSocket client (a passcode is checked once connected)")
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		adm.release()
		return // the upgrader has answered
	}
	if !adm.authorize() {
		adm.release()
		s.refuse(conn, wire.ClosePasscodeChanged, "wrong or missing passcode")
		return
	}
	l := adm.listener()
	codec, rate := wire.CodecPCM, wire.SampleRate
	if l.codec == codecOpus {
		codec, rate = wire.CodecOpus, wire.OpusClockRate
	}
	l.pushText(textFrame(wire.Hello{Type: wire.TypeHello, Room: roomID, Lang: l.lang, SampleRate: rate, Codec: codec,
		Floor: l.floor || l.lang == l.unsaid, Passthrough: l.passthrough}))
	s.sendEarlier(r.Context(), l)
	if err := s.hub.join(r.Context(), l); err != nil {
		adm.release()
		code, reason := s.joinRefusal(err, roomID, l.lang)
		s.refuse(conn, code, reason)
		return
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
		defer adm.release()
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

// joinRefusal is the close code and reason for a WebSocket the hub
// refused after the upgrade.
func (s *Server) joinRefusal(err error, roomID, lang string) (int, string) {
	switch {
	case errors.Is(err, errShuttingDown):
		return wire.CloseShutdown, "server shutting down"
	case errors.Is(err, errRoomGone):
		return wire.CloseRoomGone, "room deleted"
	case errors.Is(err, errLangGone):
		return wire.CloseRoomGone, "language removed"
	case errors.Is(err, errPasscode):
		return wire.ClosePasscodeChanged, "passcode changed"
	default:
		s.log.Error("listener join failed", "room", roomID, "lang", lang, "err", err)
		return websocket.CloseTryAgainLater, "cannot subscribe to the channel; try again"
	}
}

// refuse closes a just-upgraded connection with code and reason.
func (s *Server) refuse(conn *websocket.Conn, code int, reason string) {
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(s.o.WriteTimeout))
	_ = conn.Close()
}

// serveWS runs a listener connection: this goroutine writes, a second one
// reads (discarding what the client sends, answering pings, noticing the
// close). It returns when the connection is over.
func (s *Server) serveWS(conn *websocket.Conn, l *listener, log *slog.Logger) {
	peer := &wsPeer{conn: conn, done: make(chan struct{})}
	defer func() {
		_ = conn.Close()
		<-peer.done
	}()
	go s.readWS(peer)
	s.pump(newBatchWriter(conn.NetConn(), true, s.o.WriteTimeout), peer, l, peer.done, log)
}

// wsPeer is a listener's WebSocket as its writer sees it. The writer
// (pump) answers the client's close: data frames go out in batches beside
// gorilla's writer, so a close written by the reader could land between
// two batches, and a data frame after a close frame breaks the protocol.
// (gorilla's reader still closes by itself on a protocol error or an
// oversized message: only a misbehaving client sees data after that.)
type wsPeer struct {
	conn *websocket.Conn
	done chan struct{} // closed when the reader has returned
	// closeReply answers the client's close frame; the reader sets it (nil
	// if the client did not close) before done closes.
	closeReply []byte
}

// closeWS sends a close frame and waits briefly for the client's reply.
func (s *Server) closeWS(peer *wsPeer, code int, reason string) {
	msg := websocket.FormatCloseMessage(code, reason)
	if err := peer.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(s.o.WriteTimeout)); err != nil {
		return
	}
	select {
	case <-peer.done:
	case <-time.After(2 * time.Second):
	}
}

// answerClose replies to the client's close frame, if it sent one; the
// writer calls it once it has written its last data frame.
func (s *Server) answerClose(peer *wsPeer) {
	if peer.closeReply != nil {
		_ = peer.conn.WriteControl(websocket.CloseMessage, peer.closeReply, time.Now().Add(s.o.WriteTimeout))
	}
}

// readWS reads and discards what the client sends until the connection
// fails or closes; pongs and messages prove the peer is alive. A close
// from the client is noted for the writer to answer (see wsPeer).
func (s *Server) readWS(peer *wsPeer) {
	defer close(peer.done)
	conn := peer.conn
	conn.SetReadLimit(maxClientMessage)
	alive := func() { _ = conn.SetReadDeadline(time.Now().Add(s.o.PongWait)) }
	alive()
	conn.SetPongHandler(func(string) error { alive(); return nil })
	conn.SetCloseHandler(func(code int, _ string) error {
		peer.closeReply = []byte{}
		if code != websocket.CloseNoStatusReceived {
			peer.closeReply = websocket.FormatCloseMessage(code, "")
		}
		return nil
	})
	for {
		if _, _, err := conn.NextReader(); err != nil {
			return
		}
		alive()
	}
}
