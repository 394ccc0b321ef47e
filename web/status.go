package web

import (
	"net/http"
	"time"

	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/livestate"
)

// Status is the body of GET /api/v1/rooms/{id}/status: the room's live
// state as the other roles report it in the State bucket.
type Status struct {
	Room      string           `json:"room"`
	Speaker   SpeakerStatus    `json:"speaker"`
	Floor     FloorStatus      `json:"floor"`
	Languages []LanguageStatus `json:"languages"`
}

// SpeakerStatus says whether the room's speaker is connected.
type SpeakerStatus struct {
	Connected  bool       `json:"connected"`
	Since      *time.Time `json:"since,omitempty"`
	Node       string     `json:"node,omitempty"`
	SampleRate int        `json:"sample_rate,omitempty"`
}

// FloorStatus counts the listeners of the untranslated source language.
type FloorStatus struct {
	Code      string `json:"code"`
	Listeners int    `json:"listeners"`
}

// LanguageStatus is one channel: its listeners over all fan-out nodes and
// its translator's state (idle when no translator reports it).
type LanguageStatus struct {
	Code           string  `json:"code"`
	Listeners      int     `json:"listeners"`
	State          string  `json:"state"`
	Error          string  `json:"error"`
	Kind           string  `json:"kind,omitempty"`
	Engine         string  `json:"engine,omitempty"`
	Node           string  `json:"node,omitempty"`
	SessionSeconds float64 `json:"session_seconds"`
}

func (s *Server) roomStatus(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.loadRoom(w, r)
	if !ok {
		return
	}
	ctx, cancel := kvContext(r)
	defer cancel()
	live, err := livestate.ReadRoom(ctx, s.state, rm.ID)
	if err != nil {
		s.log.Error("room status", "room", rm.ID, "err", err)
		httperr.Internal(w)
		return
	}
	ls := live.Status(rm)
	st := Status{
		Room:      rm.ID,
		Floor:     FloorStatus{Code: ls.Floor.Code, Listeners: ls.Floor.Listeners},
		Languages: make([]LanguageStatus, 0, len(ls.Languages)),
	}
	if sp := ls.Speaker; sp != nil {
		st.Speaker = SpeakerStatus{Connected: true, Node: sp.Node, SampleRate: sp.SampleRate}
		if !sp.Since.IsZero() {
			st.Speaker.Since = &sp.Since
		}
	}
	for _, l := range ls.Languages {
		st.Languages = append(st.Languages, LanguageStatus{
			Code: l.Code, Listeners: l.Listeners, State: l.State, Error: l.Error,
			Kind: l.Kind, Engine: l.Engine, Node: l.Node, SessionSeconds: l.SessionSeconds,
		})
	}
	writeJSON(w, http.StatusOK, st)
}
