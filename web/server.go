// Package web is the api role: the organizer API under /api/v1/rooms (rooms
// kept in JetStream KV through room.Store), the public room and engine
// information attendees' pages need, and the pages themselves (pages.go).
//
// Routes mounted by Server.Mount (JSON unless said otherwise; errors are
// {"error":{"code","message"}} from internal/httperr):
//
//	admin (Authorization: Bearer <admin token>):
//	  POST   /api/v1/rooms                      create → 201 room
//	  GET    /api/v1/rooms                      {"rooms":[room…]} sorted by id
//	  GET    /api/v1/rooms/{id}                 room
//	  PATCH  /api/v1/rooms/{id}                 present fields replace; {"rotate_speaker_key":true}
//	  DELETE /api/v1/rooms/{id}                 204
//	  GET    /api/v1/rooms/{id}/status          speaker, floor and per-language listeners and translator state
//	  GET    /api/v1/rooms/{id}/links           {"listen":"…","speak":"…"}
//	  GET    /api/v1/rooms/{id}/qr.png?for=listen|speak[&size=N]  PNG QR code of a link
//	public:
//	  GET    /api/v1/rooms/{id}/public          room.Public
//	  GET    /api/v1/engines                    what the live translator nodes can serve
//
// Admin room responses are room.Room (with speaker_key and passcode) plus
// "links"; nothing else ever shows a key, and the admin token is never echoed.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/access"
	"github.com/babelcast/babelcast/internal/bus"
	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/question"
	"github.com/babelcast/babelcast/internal/record"
	"github.com/babelcast/babelcast/internal/room"
)

// Options configures the api role.
type Options struct {
	// Rooms is where rooms are kept.
	Rooms *room.Store
	// Questions is where the audience's questions are kept.
	Questions *question.Store
	// State is the livestate.Bucket bucket: speaker, channel, listener
	// and engine entries written by the other roles.
	State jetstream.KeyValue
	// AdminToken guards the organizer API. Empty disables it (every admin
	// request is refused) rather than leaving it open.
	AdminToken string
	// PublicURL is the base URL of share links ("https://talks.example.org");
	// empty derives it from each request's Host and X-Forwarded-Proto.
	PublicURL string
	// Log receives request failures and every room mutation.
	Log *slog.Logger
	// Record is the record of events: transcripts and recordings.
	Record *record.Store
}

// Server serves the organizer API and the pages.
type Server struct {
	rooms      *room.Store
	questions  *question.Store
	state      jetstream.KeyValue
	adminToken []byte
	publicURL  string
	log        *slog.Logger
	authFails  *access.Failures
	passcodes  *access.Passcodes // wrong passcodes of askers and transcript readers, by client and room
	record     *record.Store
}

// minTokenLen is the shortest admin token taken without a warning.
const minTokenLen = 20

// kvTimeout bounds the KV work of one request, so a stalled NATS does not
// hold requests forever.
const kvTimeout = 5 * time.Second

// New builds the api role.
func New(o Options) (*Server, error) {
	if o.Rooms == nil || o.State == nil || o.Questions == nil || o.Record == nil {
		return nil, errors.New("web: Options.Rooms, Options.Questions, Options.State and Options.Record are required")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	s := &Server{
		rooms:      o.Rooms,
		questions:  o.Questions,
		state:      o.State,
		adminToken: []byte(o.AdminToken),
		publicURL:  strings.TrimRight(strings.TrimSpace(o.PublicURL), "/"),
		log:        o.Log,
		authFails:  access.NewFailures(authFailBurst, authFailEvery),
		passcodes:  access.NewPasscodes(),
		record:     o.Record,
	}
	if o.AdminToken == "" {
		s.log.Warn("no admin token configured: the organizer API refuses every request")
	} else if len(o.AdminToken) < minTokenLen {
		// The brute-force limit slows wrong guesses but never refuses the
		// right token: only a token nobody can guess is safe behind it.
		s.log.Warn("the admin token is short enough to be guessed; use a long random one (or let babelcast generate it)", "length", len(o.AdminToken))
	}
	return s, nil
}

// Mount registers the API routes on r. Every path is registered in full on
// r itself (no sub-router), so other roles can add their own routes under
// /api/v1/rooms/{id}/… on the same router.
func (s *Server) Mount(r chi.Router) {
	admin := r.With(s.requireAdmin)
	admin.Post("/api/v1/rooms", s.createRoom)
	admin.Get("/api/v1/rooms", s.listRooms)
	admin.Get("/api/v1/rooms/{id}", s.getRoom)
	admin.Patch("/api/v1/rooms/{id}", s.patchRoom)
	admin.Delete("/api/v1/rooms/{id}", s.deleteRoom)
	admin.Get("/api/v1/rooms/{id}/status", s.roomStatus)
	admin.Get("/api/v1/rooms/{id}/links", s.roomLinks)
	admin.Get("/api/v1/rooms/{id}/qr.png", s.roomQR)

	r.Get("/api/v1/rooms/{id}/public", s.publicRoom)
	r.Get("/api/v1/engines", s.listEngines)
	s.mountQuestions(r)
	s.mountRecord(r)
}

// Run waits for ctx, forgetting stale brute-force counters once a minute.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.authFails.Prune(time.Now())
			s.passcodes.Prune(time.Now())
		}
	}
}

// writeJSON sends v with status. Admin responses may hold keys, so no
// response of this API is cacheable.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// storeFailed answers a request whose work on the NATS cluster failed: 503
// while the cluster cannot answer (a leader being elected, servers down;
// the client should try again shortly), 413 for a room too large to keep,
// else 500. what and attrs go to the log.
func (s *Server) storeFailed(w http.ResponseWriter, what string, err error, attrs ...any) {
	attrs = append(attrs, "err", err)
	switch {
	case errors.Is(err, room.ErrTooLarge):
		s.log.Warn(what+": too large", attrs...)
		httperr.Write(w, http.StatusRequestEntityTooLarge, "too_large",
			fmt.Sprintf("the room is too large to store (at most %d KiB encoded); shorten its glossary or notes", room.MaxStored>>10))
	case bus.Unavailable(err):
		s.log.Warn(what+": the cluster is not answering", attrs...)
		httperr.Unavailable(w, storeRetryAfter, "the cluster that keeps rooms, questions and live state is not answering right now; try again in a few seconds")
	default:
		s.log.Error(what, attrs...)
		httperr.Internal(w)
	}
}

// storeRetryAfter is what a 503 asks the client to wait: about a JetStream
// leader election.
const storeRetryAfter = 2 * time.Second

// kvContext bounds a request's KV work.
func kvContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), kvTimeout)
}
