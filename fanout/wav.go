package fanout

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/wire"
)

// maxWAVClientBytes is how much a WAV client may send after its request
// before we hang up: players send nothing.
const maxWAVClientBytes = 64 << 10

// handleWAV serves /api/v1/rooms/{id}/audio/{lang}.wav and {lang}.ogg: the
// channel's audio as an endless WAV (PCM) or Ogg/Opus stream, for players
// and tools that are not browsers. Both are continuous (silence while
// nobody speaks), so a player never starves. The same queue and
// slow-listener rules apply; a closing reason (shutdown, room deleted, too
// slow) simply ends the stream.
func (s *Server) handleWAV(w http.ResponseWriter, r *http.Request) {
	roomID := chi.URLParam(r, "id")
	file := chi.URLParam(r, "file")
	transport, contentType := transportWAV, "audio/wav"
	// The WAV header opens the stream; an Ogg listener's header pages come
	// through its queue (opus.go), numbered to run into its first page.
	streamHead := audio.StreamHeader(wire.SampleRate, 1)
	lang, ok := strings.CutSuffix(file, ".wav")
	if !ok {
		if lang, ok = strings.CutSuffix(file, ".ogg"); ok {
			transport, contentType, streamHead = transportOgg, "audio/ogg", nil
		}
	}
	if !ok || lang == "" {
		httperr.NotFound(w, "no such stream; use /api/v1/rooms/{id}/audio/{lang}.wav or .ogg")
		return
	}
	adm, err := s.admit(r, lang, transport)
	if err != nil {
		writeAdmitError(w, err)
		return
	}
	if !adm.authorize() {
		adm.release()
		httperr.Write(w, http.StatusForbidden, "forbidden", "wrong or missing passcode")
		return
	}
	l := adm.listener()
	lang = l.lang
	if err := s.hub.join(r.Context(), l); err != nil {
		adm.release()
		s.joinFailed(w, err, roomID, lang)
		return
	}
	log := s.log.With("room", roomID, "lang", lang)
	head := "Content-Type: " + contentType + "\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"

	// HTTP/1: take the connection over, as for a WebSocket, so the handler
	// returns and net/http frees the request's buffers; the body is the
	// stream until the connection closes.
	if r.ProtoMajor == 1 {
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err == nil {
			go func() {
				defer adm.release()
				defer s.hub.leave(l)
				s.serveWAVConn(nc, brw, r.Proto, head, streamHead, l, log)
			}()
			return
		}
	}

	// Otherwise (HTTP/2) stream through the ResponseWriter.
	defer adm.release()
	defer s.hub.leave(l)
	for _, h := range strings.Split(strings.TrimSpace(head), "\r\n") {
		k, v, _ := strings.Cut(h, ": ")
		w.Header().Set(k, v)
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	bw := &batchWriter{w: w, deadline: rc.SetWriteDeadline, flush: rc.Flush, timeout: s.o.WriteTimeout}
	if streamHead != nil {
		bw.add(&frame{data: streamHead})
	} else if err := rc.Flush(); err != nil { // the headers, before the first page
		return
	}
	if err := bw.write(); err != nil {
		return
	}
	s.pump(bw, nil, l, r.Context().Done(), log)
}

// serveWAVConn streams to a hijacked HTTP/1 connection.
func (s *Server) serveWAVConn(nc net.Conn, brw *bufio.ReadWriter, proto, head string, streamHead []byte, l *listener, log *slog.Logger) {
	readDone := make(chan struct{})
	defer func() {
		_ = nc.Close()
		<-readDone
	}()
	if s.o.SendBuffer > 0 {
		if tc, ok := nc.(interface{ SetWriteBuffer(int) error }); ok {
			_ = tc.SetWriteBuffer(s.o.SendBuffer)
		}
	}
	if proto != "HTTP/1.0" {
		proto = "HTTP/1.1"
	}
	bw := newBatchWriter(nc, false, s.o.WriteTimeout)
	bw.add(&frame{data: []byte(proto + " 200 OK\r\n" + head + "Connection: close\r\n\r\n")})
	if streamHead != nil {
		bw.add(&frame{data: streamHead})
	}
	if err := bw.write(); err != nil {
		close(readDone)
		return
	}
	// The reader notices the client leaving (EOF) while no audio flows.
	go func() {
		defer close(readDone)
		buf := make([]byte, 512)
		total := brw.Reader.Buffered()
		for total < maxWAVClientBytes {
			n, err := nc.Read(buf)
			if err != nil {
				return
			}
			total += n
		}
	}()
	s.pump(bw, nil, l, readDone, log)
}
