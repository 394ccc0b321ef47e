package fanout

import (
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/httperr"
)

// handleWAV serves /api/v1/rooms/{id}/audio/{lang}.wav: the channel's audio
// as an endless WAV stream, for players and tools that are not browsers.
// The same queue and slow-listener rules apply; a closing reason (shutdown,
// room deleted, too slow) simply ends the stream.
func (s *Server) handleWAV(w http.ResponseWriter, r *http.Request) {
	roomID := chi.URLParam(r, "id")
	file := chi.URLParam(r, "file")
	lang, ok := strings.CutSuffix(file, ".wav")
	if !ok || lang == "" {
		httperr.NotFound(w, "no such stream; use /api/v1/rooms/{id}/audio/{lang}.wav")
		return
	}
	lang, floor, err := s.admit(r.Context(), roomID, lang, r.URL.Query().Get("passcode"))
	if err != nil {
		writeAdmitError(w, err)
		return
	}
	l := newListener(s, roomID, lang, floor, transportWAV)
	if err := s.hub.join(r.Context(), l); err != nil {
		s.joinFailed(w, err, roomID, lang)
		return
	}
	defer s.hub.leave(l)

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "audio/wav")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_ = rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
	if _, err := w.Write(audio.StreamHeader(SampleRate, 1)); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}
	var sent uint64
	for {
		select {
		case <-l.wake:
		case <-r.Context().Done():
			return // the client left
		}
		for {
			f, code, _ := l.next()
			if code != 0 {
				if code == CloseTooSlow {
					s.log.Info("WAV listener closed: too slow", "room", roomID, "lang", lang, "dropped_frames", l.droppedFrames())
				}
				return
			}
			if f == nil {
				break
			}
			_ = rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
			if _, err := w.Write(f.data); err != nil {
				return
			}
			sent++
		}
		if err := rc.Flush(); err != nil {
			return
		}
		framesOut.Add(float64(sent))
		sent = 0
	}
}
