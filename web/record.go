package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/babelcast/babelcast/internal/access"
	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/record"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/wire"
)

// recordTimeout bounds reading a transcript or a recording's list; a
// download streams as long as it takes.
const recordTimeout = 30 * time.Second

// mountRecord registers the record of an event: transcripts (admin, or
// attendees where the room has "public_transcript":true, with its
// passcode), the list of recordings and their downloads (admin).
func (s *Server) mountRecord(r chi.Router) {
	r.Get("/api/v1/rooms/{id}/transcript", s.recordHandler(s.transcript))
	admin := r.With(s.requireAdmin)
	admin.Get("/api/v1/rooms/{id}/recordings", s.recordHandler(s.listRecordings))
	admin.Get("/api/v1/rooms/{id}/recordings/{file}", s.recordHandler(s.downloadRecording))
}

// recordHandler serves a request about a room's record: it loads the room
// the URL names, answering 404 when there is none, and hands it to h with a
// context bounded by recordTimeout (a download streams past it on r's own).
func (s *Server) recordHandler(h func(ctx context.Context, w http.ResponseWriter, r *http.Request, rm *room.Room)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), recordTimeout)
		defer cancel()
		if rm, ok := s.loadRoomCtx(ctx, w, chi.URLParam(r, "id")); ok {
			h(ctx, w, r, rm)
		}
	}
}

// recordLang checks a channel named in a request: floor, the source
// language or one of the room's languages.
func recordLang(w http.ResponseWriter, rm *room.Room, lang *string) bool {
	if pl, err := room.ParseLang(*lang); err == nil && *lang != wire.Floor {
		*lang = pl.Code // pt-br → pt-BR
	}
	if *lang == wire.Floor || rm.Serves(*lang) {
		return true
	}
	langs := []string{wire.Floor, rm.SourceLanguage}
	for _, l := range rm.Languages {
		langs = append(langs, l.Code)
	}
	what := fmt.Sprintf("unknown language %q", *lang)
	if *lang == "" {
		what = "lang is required"
	}
	httperr.Write(w, http.StatusBadRequest, "bad_language", what+"; this room's channels are "+strings.Join(langs, ", "))
	return false
}

func (s *Server) transcript(ctx context.Context, w http.ResponseWriter, r *http.Request, rm *room.Room) {
	if _, hasToken := bearer(r); hasToken || !rm.PublicTranscript {
		if !s.isAdmin(w, r) {
			return
		}
	} else {
		passcode := r.Header.Get(wire.HeaderPasscode) // out of URLs and access logs
		if passcode == "" {
			passcode = r.URL.Query().Get("passcode")
		}
		if !s.checkPasscode(w, r, rm, passcode) {
			return
		}
	}
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "json"
	}
	ctype, known := record.Formats[format]
	if !known {
		httperr.Write(w, http.StatusBadRequest, "bad_format", fmt.Sprintf("unknown format %q; formats are vtt, srt, txt, json", format))
		return
	}
	lang := q.Get("lang")
	if !recordLang(w, rm, &lang) {
		return
	}
	cues, err := s.record.ReadCues(ctx, rm.ID, lang)
	if err != nil {
		s.storeFailed(w, "read transcript", err, "room", rm.ID)
		return
	}
	zero, err := s.record.Zero(ctx, rm.ID)
	if err != nil {
		s.storeFailed(w, "read transcript", err, "room", rm.ID)
		return
	}
	body, err := record.Format(rm.ID, lang, cues, zero, format)
	if err != nil {
		s.log.Error("format transcript", "err", err)
		httperr.Internal(w)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-store")
	if format != "json" {
		w.Header().Set("Content-Disposition", fmt.Sprintf("inline; filename=%q", rm.ID+"-"+lang+"."+format))
	}
	_, _ = w.Write(body)
}

// recordingsJSON is the list of a room's recordings; Pruned, when the
// room lost audio to --record-max-bytes.
type recordingsJSON struct {
	Recordings []record.Recording `json:"recordings"`
	Pruned     *record.Pruned     `json:"pruned,omitempty"`
}

func (s *Server) listRecordings(ctx context.Context, w http.ResponseWriter, r *http.Request, rm *room.Room) {
	segs, err := s.record.Segments(ctx, rm.ID)
	if err != nil {
		s.storeFailed(w, "list recordings", err, "room", rm.ID)
		return
	}
	out := recordingsJSON{Recordings: record.Recordings(segs)}
	if out.Pruned, err = s.record.PrunedOf(ctx, rm.ID); err != nil {
		s.storeFailed(w, "list recordings", err, "room", rm.ID)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) downloadRecording(ctx context.Context, w http.ResponseWriter, r *http.Request, rm *room.Room) {
	file := chi.URLParam(r, "file")
	lang, isOgg := strings.CutSuffix(file, ".ogg")
	if !isOgg {
		httperr.NotFound(w, fmt.Sprintf("no recording %q: recordings are <lang>.ogg", file))
		return
	}
	if !recordLang(w, rm, &lang) {
		return
	}
	zero, err := s.record.Zero(ctx, rm.ID)
	if err != nil {
		s.storeFailed(w, "read recording", err, "room", rm.ID)
		return
	}
	// The download streams as long as it takes, the first read bounded.
	sent := &lazyHeader{w: w, set: func() {
		w.Header().Set("Content-Type", "audio/ogg")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", rm.ID+"-"+lang+".ogg"))
	}}
	found, err := s.record.WriteOgg(context.WithoutCancel(r.Context()), sent, rm.ID, lang, zero)
	switch {
	case !found && err == nil:
		httperr.NotFound(w, fmt.Sprintf("room %q has no recording of %s", rm.ID, lang))
	case err != nil && !sent.wrote:
		s.storeFailed(w, "read recording", err, "room", rm.ID)
	case err != nil:
		s.log.Warn("recording download cut short", "room", rm.ID, "lang", lang, "err", err)
	}
}

// lazyHeader sets the headers of a download on its first byte, so a
// failure before it can still answer with an error.
type lazyHeader struct {
	w     http.ResponseWriter
	set   func()
	wrote bool
}

func (l *lazyHeader) Write(b []byte) (int, error) {
	if !l.wrote {
		l.wrote = true
		l.set()
	}
	return l.w.Write(b)
}

// checkPasscode admits a request with the room's passcode, where it has
// one, under the same budget of wrong guesses per client and room as the
// listener endpoints: 429 past it, 403 for a wrong one.
func (s *Server) checkPasscode(w http.ResponseWriter, r *http.Request, rm *room.Room, passcode string) bool {
	client := access.Client(r)
	if rm.Passcode != "" {
		if blocked, after := s.passcodes.Blocked(client, rm.ID); blocked {
			access.RetryAfter(w, after)
			httperr.Write(w, http.StatusTooManyRequests, "too_many_attempts", "too many wrong passcodes from this address; try again later")
			return false
		}
	}
	if !rm.CheckPasscode(passcode) {
		s.passcodes.Fail(client, rm.ID)
		httperr.Forbidden(w, "wrong or missing passcode")
		return false
	}
	return true
}

// isAdmin answers a request that lacks the admin token as requireAdmin
// does, and reports whether it has it.
func (s *Server) isAdmin(w http.ResponseWriter, r *http.Request) bool {
	ok := false
	s.requireAdmin(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ok = true })).ServeHTTP(w, r)
	return ok
}
