package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/question"
	"github.com/babelcast/babelcast/internal/room"
)

// Limits on questions.
const (
	maxQuestionName = 64
	// maxWaiting bounds the questions a room holds waiting: the queue a
	// moderator can read, and what one attendee can flood.
	maxWaiting = 50
)

// questionJSON is a question as the API shows it; the asker's token only
// once, when asking.
type questionJSON struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	Language string `json:"language"`
	State    string `json:"state"`
	Asked    string `json:"asked"`
	// Mic is the mic the question speaks through once accepted.
	Mic   string `json:"mic"`
	Token string `json:"token,omitempty"`
}

func showQuestion(q *question.Question) questionJSON {
	return questionJSON{ID: q.ID, Name: q.Name, Language: q.Language, State: q.State,
		Asked: q.Asked.Format("2006-01-02T15:04:05Z07:00"), Mic: q.Mic()}
}

// mountQuestions registers the audience's questions: anyone may ask in a
// room that takes questions; the organizers and the speaker (with the
// speaker key) see the queue and accept or end them; the asker follows and
// ends their own with the token they got.
func (s *Server) mountQuestions(r chi.Router) {
	r.Post("/api/v1/rooms/{id}/questions", s.askQuestion)
	r.Get("/api/v1/rooms/{id}/questions", s.listQuestions)
	r.Get("/api/v1/rooms/{id}/questions/{qid}", s.getQuestion)
	r.Post("/api/v1/rooms/{id}/questions/{qid}/accept", s.questionState(question.Accepted))
	r.Post("/api/v1/rooms/{id}/questions/{qid}/end", s.questionState(question.Ended))
}

type askRequest struct {
	Name     string `json:"name"`
	Language string `json:"language"`
	Passcode string `json:"passcode"`
}

func (s *Server) askQuestion(w http.ResponseWriter, r *http.Request) {
	var req askRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	ctx, cancel := kvContext(r)
	defer cancel()
	rm, ok := s.loadRoomCtx(ctx, w, chi.URLParam(r, "id"))
	if !ok {
		return
	}
	if !rm.Questions {
		httperr.Forbidden(w, "this room does not take questions from the audience")
		return
	}
	// The passcode's guesses are limited as the listener endpoints' are.
	if !s.checkPasscode(w, r, rm, req.Passcode) {
		return
	}
	lang, err := rm.SpeakerLanguage(req.Language)
	if req.Language == "" {
		lang, err = rm.SourceLanguage, nil
	}
	if err != nil {
		httperr.BadRequest(w, "language: "+err.Error())
		return
	}
	name := strings.Join(strings.FieldsFunc(req.Name, func(c rune) bool { return unicode.IsSpace(c) || !unicode.IsPrint(c) }), " ")
	if utf8.RuneCountInString(name) > maxQuestionName {
		httperr.BadRequest(w, "name: longer than 64 characters")
		return
	}
	qs, err := s.questions.List(ctx, rm.ID)
	if err != nil {
		s.storeFailed(w, "list questions", err)
		return
	}
	waiting := 0
	for _, q := range qs {
		if q.State == question.Waiting {
			waiting++
		}
	}
	if waiting >= maxWaiting {
		httperr.Write(w, http.StatusTooManyRequests, "too_many_questions", "the queue of questions is full; try again later")
		return
	}
	q, token, err := s.questions.Ask(ctx, rm.ID, name, lang)
	if err != nil {
		s.storeFailed(w, "ask question", err)
		return
	}
	s.log.Info("question asked", "room", rm.ID, "question", q.ID, "language", lang)
	out := showQuestion(q)
	out.Token = token
	writeJSON(w, http.StatusCreated, out)
}

// questionAccess is who a request speaks for.
type questionAccess int

const (
	accessNone      questionAccess = iota
	accessAsker                    // the question's own token
	accessModerator                // the admin token or the room's speaker key
)

// access says who r is for question qid of rm ("" for the room's queue).
func (s *Server) access(r *http.Request, rm *room.Room, q *question.Question) questionAccess {
	token, ok := bearer(r)
	if !ok {
		return accessNone
	}
	if len(s.adminToken) > 0 && subtle.ConstantTimeCompare([]byte(token), s.adminToken) == 1 {
		return accessModerator
	}
	if rm.CheckSpeakerKey(token) {
		return accessModerator
	}
	if q != nil && q.CheckToken(token) {
		return accessAsker
	}
	return accessNone
}

func (s *Server) listQuestions(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := kvContext(r)
	defer cancel()
	rm, ok := s.loadRoomCtx(ctx, w, chi.URLParam(r, "id"))
	if !ok {
		return
	}
	if s.access(r, rm, nil) != accessModerator {
		s.refuse(w, r)
		return
	}
	qs, err := s.questions.List(ctx, rm.ID)
	if err != nil {
		s.storeFailed(w, "list questions", err)
		return
	}
	out := struct {
		Questions []questionJSON `json:"questions"`
	}{Questions: make([]questionJSON, 0, len(qs))}
	for _, q := range qs {
		out.Questions = append(out.Questions, showQuestion(q))
	}
	writeJSON(w, http.StatusOK, out)
}

// loadQuestion loads the question of the request, and says who asks.
func (s *Server) loadQuestion(ctx context.Context, w http.ResponseWriter, r *http.Request) (*room.Room, *question.Question, questionAccess, bool) {
	rm, ok := s.loadRoomCtx(ctx, w, chi.URLParam(r, "id"))
	if !ok {
		return nil, nil, accessNone, false
	}
	q, _, err := s.questions.Get(ctx, rm.ID, chi.URLParam(r, "qid"))
	if errors.Is(err, question.ErrNotFound) {
		if s.access(r, rm, nil) != accessModerator {
			s.refuse(w, r) // no telling strangers which ids exist
			return nil, nil, accessNone, false
		}
		httperr.NotFound(w, "no such question")
		return nil, nil, accessNone, false
	}
	if err != nil {
		s.storeFailed(w, "get question", err)
		return nil, nil, accessNone, false
	}
	a := s.access(r, rm, q)
	if a == accessNone {
		s.refuse(w, r)
		return nil, nil, accessNone, false
	}
	return rm, q, a, true
}

func (s *Server) getQuestion(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := kvContext(r)
	defer cancel()
	if _, q, _, ok := s.loadQuestion(ctx, w, r); ok {
		writeJSON(w, http.StatusOK, showQuestion(q))
	}
}

// questionState moves a question to state: accept is the moderators'; end
// is theirs and the asker's (withdrawing).
func (s *Server) questionState(state string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := kvContext(r)
		defer cancel()
		rm, q, a, ok := s.loadQuestion(ctx, w, r)
		if !ok {
			return
		}
		if state == question.Accepted && a != accessModerator {
			httperr.Forbidden(w, "only the organizers or the speaker accept a question")
			return
		}
		q, err := s.questions.SetState(ctx, rm.ID, q.ID, state)
		if errors.Is(err, question.ErrState) {
			httperr.Write(w, http.StatusConflict, "question_"+q.State, "the question is "+q.State)
			return
		}
		if err != nil {
			s.storeFailed(w, "update question", err)
			return
		}
		s.log.Info("question "+state, "room", rm.ID, "question", q.ID)
		writeJSON(w, http.StatusOK, showQuestion(q))
	}
}

// refuse answers a request without the right key.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request) {
	if _, ok := bearer(r); !ok {
		httperr.Unauthorized(w, "a key is required: Authorization: Bearer <admin token, speaker key or question token>")
		return
	}
	httperr.Forbidden(w, "this key does not give access to that")
}
